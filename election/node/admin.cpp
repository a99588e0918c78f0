// The admin socket's server (Asio, one executor) and client (blocking POSIX,
// for the command line). The status and its renderings are in status.cpp.
#include "election/node/admin.hpp"
#include "election/node/status.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <ostream>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace redvip::election {

namespace asio = boost::asio;
using nlohmann::json;
using stream = asio::local::stream_protocol;
using std::chrono::milliseconds;

namespace {

json error_reply(std::string text) {
    return {{"error", std::move(text)}};
}

// A file descriptor closed on scope exit.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// sun_path holds 108 bytes including the terminating NUL.
bool fits_sun_path(const std::string& path) {
    return path.size() < sizeof(sockaddr_un{}.sun_path);
}

// Connects a blocking unix socket to `path`: the fd, or -1 with errno set.
int connect_unix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

std::string connect_error(const std::string& path, int err) {
    switch (err) {
    case ENOENT:
        return fmt::format("redvip is not running: no socket at {}", path);
    case ECONNREFUSED:
        return fmt::format("redvip is not running: nothing answers on {} (a stale socket)", path);
    case EACCES:
    case EPERM:
        return fmt::format("permission denied on {}: run as root or as redvip's user", path);
    default:
        return fmt::format("cannot connect to {}: {}", path, std::strerror(err));
    }
}

// "" when `path` is free to bind (absent, or a stale socket now removed).
std::string claim_path(const std::string& path, spdlog::logger& log) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return errno == ENOENT ? "" : fmt::format("{}: {}", path, std::strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return fmt::format("{} exists and is not a socket: refusing to replace it", path);
    Fd probe{connect_unix(path)};
    if (probe.fd >= 0)
        return fmt::format("another redvip is running: {} answers (stop it first)", path);
    if (errno != ECONNREFUSED) return fmt::format("{}: {}", path, std::strerror(errno));
    // Nothing listens: a crashed run's socket. Replace it.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return fmt::format("removing the stale socket {}: {}", path, std::strerror(errno));
    log.warn("removed a stale admin socket {} (a previous run did not stop cleanly)", path);
    return "";
}

std::string make_directory(const std::filesystem::path& dir) {
    std::error_code ec;
    if (dir.empty() || std::filesystem::exists(dir, ec)) return "";
    if (!std::filesystem::create_directories(dir, ec) && ec)
        return fmt::format("creating {}: {}", dir.string(), ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms(0750), ec);
    return ec ? fmt::format("chmod 0750 {}: {}", dir.string(), ec.message()) : "";
}

} // namespace

// ---- server ---------------------------------------------------------------------

class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
public:
    using Handlers = std::map<std::string, AdminServer::Handler>;

    AdminConnection(stream::socket socket, std::shared_ptr<const Handlers> handlers)
        : socket_(std::move(socket))
        , timer_(socket_.get_executor())
        , handlers_(std::move(handlers)) {}

    void start() { read(); }

    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
        timer_.cancel();
    }

    void send_and_close(const json& reply) {
        out_ = reply.dump() + "\n";
        asio::async_write(
            socket_, asio::buffer(out_),
            [self = shared_from_this()](boost::system::error_code, std::size_t) { self->close(); });
    }

private:
    void read() {
        timer_.expires_after(AdminServer::kIdleTimeout);
        timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            if (auto self = weak.lock(); self && !ec) self->close();
        });
        asio::async_read_until(
            socket_, asio::dynamic_buffer(in_, AdminServer::kMaxRequest), '\n',
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                self->timer_.cancel();
                if (ec == asio::error::not_found)
                    return self->send_and_close(error_reply(
                        fmt::format("request longer than {} bytes", AdminServer::kMaxRequest)));
                if (ec) return self->close(); // eof, closed, or idle timeout
                std::string line = self->in_.substr(0, n - 1);
                self->in_.erase(0, n);
                self->dispatch(line);
            });
    }

    void dispatch(const std::string& line) {
        auto request = json::parse(line, nullptr, false);
        if (request.is_discarded() || !request.is_object())
            return reply(error_reply("the request is not a JSON object"));
        const auto cmd = request.find("cmd");
        if (cmd == request.end() || !cmd->is_string())
            return reply(error_reply("the request has no \"cmd\" string"));
        const auto handler = handlers_->find(cmd->get<std::string>());
        if (handler == handlers_->end())
            return reply(error_reply(unknown(cmd->get<std::string>())));
        auto once = std::make_shared<bool>(false);
        handler->second(request, [self = shared_from_this(), once](json answer) {
            if (std::exchange(*once, true)) return; // exactly one reply per request
            self->reply(std::move(answer));
        });
    }

    std::string unknown(const std::string& cmd) const {
        std::string known;
        for (const auto& [name, _] : *handlers_)
            known += (known.empty() ? "" : ", ") + name;
        return fmt::format("unknown command \"{}\" (known: {})", cmd, known);
    }

    void reply(const json& answer) {
        out_ = answer.dump() + "\n";
        asio::async_write(
            socket_, asio::buffer(out_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                if (ec) return self->close();
                self->read(); // the next request on the same connection
            });
    }

    stream::socket socket_;
    asio::steady_timer timer_;
    std::shared_ptr<const Handlers> handlers_; // shared: a reply may come after the server stopped
    std::string in_;
    std::string out_;
};

class AdminServer::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::any_io_executor ex, std::string path, std::shared_ptr<spdlog::logger> log)
        : acceptor(ex)
        , path(std::move(path))
        , log(std::move(log)) {}

    std::string bind();
    void accept();

    stream::acceptor acceptor;
    std::string path;
    std::shared_ptr<spdlog::logger> log;
    std::shared_ptr<AdminConnection::Handlers> handlers =
        std::make_shared<AdminConnection::Handlers>();
    std::vector<std::weak_ptr<AdminConnection>> connections;
    ino_t inode = 0; // of the socket file we bound, so stop() removes only ours
    bool running = false;
};

// Binds under a temporary name, sets 0600, then renames into place: the
// socket is never reachable with looser permissions (no umask games, which
// are process-wide) and a client never finds a half-made socket.
std::string AdminServer::Impl::bind() {
    const std::filesystem::path final_path(path);
    const auto tmp =
        (final_path.parent_path() / fmt::format(".redvip-{}.tmp", ::getpid())).string();
    if (!fits_sun_path(path) || !fits_sun_path(tmp))
        return fmt::format("admin socket path too long ({} bytes; at most {})", path.size(),
                           sizeof(sockaddr_un{}.sun_path) - 1);
    if (auto error = make_directory(final_path.parent_path()); !error.empty()) return error;
    if (auto error = claim_path(path, *log); !error.empty()) return error;
    (void)::unlink(tmp.c_str());
    boost::system::error_code ec;
    acceptor.open(stream(), ec);
    if (!ec) acceptor.bind(stream::endpoint(tmp), ec);
    if (ec) return fmt::format("binding {}: {}", path, ec.message());
    struct stat st {};
    if (::chmod(tmp.c_str(), 0600) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0 ||
        ::lstat(path.c_str(), &st) != 0) {
        const int err = errno;
        (void)::unlink(tmp.c_str());
        acceptor.close(ec);
        return fmt::format("setting up {}: {}", path, std::strerror(err));
    }
    inode = st.st_ino;
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    return ec ? fmt::format("listen on {}: {}", path, ec.message()) : "";
}

void AdminServer::Impl::accept() {
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                      stream::socket socket) {
        if (!self->running) return;
        if (!ec) {
            std::erase_if(self->connections, [](const auto& c) { return c.expired(); });
            auto connection = std::make_shared<AdminConnection>(std::move(socket), self->handlers);
            if (self->connections.size() >= kMaxConnections) {
                connection->send_and_close(error_reply("too many admin connections"));
            } else {
                self->connections.push_back(connection);
                connection->start();
            }
        } else if (ec != asio::error::operation_aborted) {
            self->log->warn("admin socket accept: {}", ec.message());
        }
        self->accept();
    });
}

AdminServer::AdminServer(asio::any_io_executor executor, std::string path,
                         std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(path), std::move(log))) {}

AdminServer::~AdminServer() {
    stop();
}

void AdminServer::handle(const std::string& cmd, Handler handler) {
    (*impl_->handlers)[cmd] = std::move(handler);
}

std::string AdminServer::start() {
    if (impl_->running) return "";
    if (auto error = impl_->bind(); !error.empty()) return error;
    impl_->running = true;
    impl_->accept();
    impl_->log->info("admin socket on {}", impl_->path);
    return "";
}

void AdminServer::stop() {
    if (!impl_->running) return;
    impl_->running = false;
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto& weak : impl_->connections)
        if (auto c = weak.lock()) c->close();
    impl_->connections.clear();
    struct stat st {};
    if (::lstat(impl_->path.c_str(), &st) == 0 && st.st_ino == impl_->inode)
        (void)::unlink(impl_->path.c_str()); // not a successor's socket
}

const std::string& AdminServer::path() const {
    return impl_->path;
}

// ---- client ---------------------------------------------------------------------

namespace {

// Waits for `events` on fd until `deadline`: true when ready.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

// The reply line, or an error text (first = false).
std::pair<bool, std::string> exchange(int fd, const std::string& line, const std::string& path,
                                      milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto no_reply =
        fmt::format("no reply from redvip on {} within {} ms", path, timeout.count());
    for (std::size_t sent = 0; sent < line.size();) {
        if (!wait_for(fd, POLLOUT, deadline)) return {false, no_reply};
        const auto n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR)
            return {false, fmt::format("sending to {}: {}", path, std::strerror(errno))};
        if (n > 0) sent += static_cast<std::size_t>(n);
    }
    std::string in;
    char buffer[4096];
    while (in.find('\n') == std::string::npos) {
        // A status reply is a few KiB; the cap keeps a wrong peer from filling memory.
        if (in.size() > 4 * AdminServer::kMaxRequest) return {false, "the reply is too long"};
        if (!wait_for(fd, POLLIN, deadline)) return {false, no_reply};
        const auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) return {false, "redvip closed the connection without a reply"};
        if (n < 0 && errno != EINTR)
            return {false, fmt::format("reading from {}: {}", path, std::strerror(errno))};
        if (n > 0) in.append(buffer, static_cast<std::size_t>(n));
    }
    return {true, in.substr(0, in.find('\n'))};
}

} // namespace

AdminResult admin_request(const std::string& path, const json& request, milliseconds timeout) {
    if (!fits_sun_path(path))
        return {std::nullopt, fmt::format("admin socket path too long: {}", path)};
    // Connecting a unix socket never waits on the network: it succeeds or
    // fails at once (a full backlog is the listener's problem and rare here).
    Fd fd{connect_unix(path)};
    if (fd.fd < 0) return {std::nullopt, connect_error(path, errno)};
    const auto [ok, text] = exchange(fd.fd, request.dump() + "\n", path, timeout);
    if (!ok) return {std::nullopt, text};
    auto reply = json::parse(text, nullptr, false);
    if (reply.is_discarded()) return {std::nullopt, "redvip sent a reply that is not JSON"};
    return {std::move(reply), {}};
}

int status_command(const std::string& socket_path, bool as_json, std::ostream& out,
                   std::ostream& err, milliseconds timeout) {
    const auto result = admin_request(socket_path, json{{"cmd", "status"}}, timeout);
    if (!result.reply) {
        err << "redvip status: " << result.error << '\n';
        return 1;
    }
    const auto& reply = *result.reply;
    if (reply.is_object() && reply.contains("error")) {
        err << "redvip status: " << reply["error"].dump() << '\n';
        return 1;
    }
    if (as_json)
        out << reply.dump(2) << '\n';
    else
        out << render_status_text(reply);
    return 0;
}

int switchover_command(const std::string& socket_path, const std::string& to, std::ostream& out,
                       std::ostream& err, milliseconds timeout) {
    json request{{"cmd", "switchover"}};
    if (!to.empty()) request["to"] = to;
    const auto result = admin_request(socket_path, request, timeout);
    if (!result.reply) {
        err << "redvip switchover: " << result.error << '\n';
        return 1;
    }
    const auto& reply = *result.reply;
    if (!reply.is_object() || reply.contains("error")) {
        err << "redvip switchover: "
            << (reply.is_object() ? reply["error"].get<std::string>() : reply.dump()) << '\n';
        return 1;
    }
    const bool ok = reply.value("ok", false);
    (ok ? out : err) << (ok ? "" : "redvip switchover: ") << reply.value("text", std::string{})
                     << '\n';
    return ok ? 0 : 1;
}

int promote_command(const std::string& socket_path, bool force, std::ostream& out,
                    std::ostream& err) {
    const auto result = admin_request(socket_path, json{{"cmd", "promote"}, {"force", force}},
                                      std::chrono::seconds(5));
    const json* reply = result.reply ? &*result.reply : nullptr;
    if (!reply || !reply->is_object() || reply->contains("error")) {
        err << "redvip promote: "
            << (!reply ? result.error
                       : reply->is_object() ? reply->value("error", std::string{}) : reply->dump())
            << '\n';
        return 1;
    }
    const bool ok = reply->value("ok", false);
    (ok ? out : err) << (ok ? "" : "redvip promote: ") << reply->value("text", std::string{})
                     << '\n';
    return ok ? 0 : 1;
}

int admin_command(const conf::CommandLine& command, const conf::Config& config, std::ostream& out,
                  std::ostream& err) {
    const auto& socket = config.admin.socket;
    using Action = conf::CommandLine::Action;
    switch (command.action) {
    case Action::status: return status_command(socket, command.json, out, err);
    case Action::switchover:
        return switchover_command(socket, command.to, out, err,
                                  config.failover.switchover_timeout + std::chrono::seconds(5));
    case Action::promote: return promote_command(socket, command.force, out, err);
    default: err << "not an admin command\n"; return 2;
    }
}

} // namespace redvip::election
