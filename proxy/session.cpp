#include "proxy/session.hpp"

#include "proxy/command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

namespace redvip::proxy {

namespace {

using clock = std::chrono::steady_clock;

// Redis 7's own texts, so that clients and their tests see no difference.
constexpr std::string_view kNoAuth = "-NOAUTH Authentication required.\r\n";
constexpr std::string_view kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
constexpr std::string_view kNoPasswordSet =
    "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
    "configuration is correct?\r\n";
constexpr std::string_view kHelloNoAuth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
    "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at the "
    "same time\r\n";

// A frame larger than a standard buffer grows its buffer up to this (Redis's
// proto-max-bulk-len plus room for the headers of a multi-argument command).
constexpr std::size_t kMaxFrameBuffer = static_cast<std::size_t>(kMaxBulkLen) + 64 * 1024;

// Password comparison that takes the same time wherever the first difference is.
bool same_secret(std::string_view a, std::string_view b) {
    if (b.empty())
        return a.empty();
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i % b.size()]);
    return diff == 0;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
           });
}

// XREAD and XREADGROUP block only with a BLOCK option: look for the argument.
bool has_block_option(std::string_view frame) {
    for (std::size_t at = frame.find("\r\n"); at != std::string_view::npos; at = frame.find("\r\n", at + 2)) {
        if (iequals(frame.substr(at + 2, 5), "BLOCK") && frame.substr(at + 7, 2) == "\r\n")
            return true;
    }
    return false;
}

std::string encode(const std::vector<std::string>& args) {
    std::string out = fmt::format("*{}\r\n", args.size());
    for (const auto& a : args)
        out += fmt::format("${}\r\n{}\r\n", a.size(), a);
    return out;
}

} // namespace

Session::Session(Worker& worker, tcp::socket client)
    : w_(worker)
    , client_(std::move(client))
    , backend_(worker.io)
    , requests_(worker.shared.config.proxy.password.empty())
    , last_activity_(clock::now())
    , authenticated_(worker.shared.config.proxy.password.empty()) {
    w_.sessions.insert(this);
}

Session::~Session() {
    w_.sessions.erase(this);
    w_.shared.clients.fetch_sub(1, std::memory_order_relaxed);
    w_.buffers.give_back(in_);
    w_.buffers.give_back(out_);
}

void Session::start() {
    error_code ignored;
    client_.set_option(tcp::no_delay(true), ignored);
    client_.non_blocking(true, ignored);
    read_client();
}

void Session::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    error_code ignored;
    client_.close(ignored);
    // A connection with no state and no reply due is as good as new.
    bool reusable = link_ == Link::bound && !dirty_ && !passthrough_ && pending_.empty() && in_flight_ == 0 &&
                    out_.size() == 0 && !reading_backend_;
    if (reusable)
        w_.backends.give_back(std::move(backend_));
    else
        backend_.close(ignored);
}

// A socket reported readable: one non-blocking read into `buffer`, taken from
// the pool only now, so a connection that waits holds no buffer.
std::size_t Session::read_ready(tcp::socket& socket, Buffer& buffer, error_code& ec) {
    if (!buffer.allocated())
        buffer = w_.buffers.take();
    std::size_t n = socket.read_some(asio::buffer(buffer.write_ptr(), buffer.write_space()), ec);
    if (!ec)
        buffer.commit(n);
    return n;
}

// --- client -> backend ---

void Session::read_client() {
    if (reading_client_ || stopped_ || waiting_ || pending_.full())
        return;
    // The partial frame fills the buffer: grow it, but not while a write
    // still points into it.
    if (in_.allocated() && in_.write_space() == 0) {
        if (in_flight_ > 0)
            return;
        in_.compact();
        if (in_.write_space() == 0) {
            if (in_.capacity() >= kMaxFrameBuffer)
                return; // cannot happen: the framer refuses larger frames first
            in_.reserve(std::min(in_.capacity() * 2, kMaxFrameBuffer));
        }
    }
    reading_client_ = true;
    // Wait for readability without a buffer: an idle client holds none.
    client_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& ec) { self->on_client_readable(ec); });
}

void Session::on_client_readable(const error_code& ec) {
    reading_client_ = false;
    if (stopped_)
        return;
    if (ec)
        return stop();
    error_code rec;
    std::size_t n = read_ready(client_, in_, rec);
    if (rec == asio::error::would_block)
        return read_client();
    if (rec)
        return stop(); // EOF or reset: Redis too drops what it has not answered
    w_.counters.bytes_in += n;
    last_activity_ = clock::now();
    process_requests();
}

void Session::process_requests() {
    auto now = clock::now();
    while (!stopped_ && !waiting_ && local_writing_.empty() && ready_ < in_.size()) {
        if (passthrough_) {
            ready_ = in_.size(); // no framing: bytes go as they come
            break;
        }
        if (pending_.full() || w_.state == ServingState::holding)
            break;
        RequestResult r = requests_.feed(in_.data().substr(ready_));
        if (r.status == Status::need_more)
            break;
        if (r.status == Status::error) {
            ++w_.counters.protocol_errors;
            SPDLOG_LOGGER_DEBUG(w_.shared.log, "client protocol error: {}", r.error.reply());
            in_.truncate(ready_);
            emit_local(r.error.reply(), true);
            break;
        }
        if (!dispatch(r.request, in_.data().substr(ready_, r.request.size), now))
            break;
    }
    forward();
    read_client();
}

// Returns false when processing must pause (a reply of the proxy's own is due).
bool Session::dispatch(const Request& request, std::string_view frame, clock::time_point now) {
    if (request.argc == 0) { // an empty inline line or *0: Redis skips it, so do we
        ready_ += request.size;
        return true;
    }
    ++w_.counters.commands;
    CommandTraits traits = classify(request.name.view(), request.subcommand.view());
    bool refused = traits.has(Trait::role_change) && w_.shared.config.vrrp.has_value();
    if (traits.has(Trait::intercepted) || refused || !authenticated_ || w_.state == ServingState::fenced) {
        if (replies_outstanding()) {
            waiting_ = true; // resumed by after_client_write() once earlier replies are out
            return false;
        }
        if (refused && authenticated_) {
            in_.consume(request.size);
            emit_local(fmt::format("-ERR redvip: {} is refused, the election decides replication roles "
                                   "(use redvip switchover)\r\n",
                                   request.name.view()));
            return false;
        }
        return run_local(request, frame);
    }
    bool blocking = traits.has(Trait::blocking) ||
                    (traits.has(Trait::blocking_with_option) && has_block_option(frame));
    pending_.push(PendingRequest{now, blocking});
    ready_ += request.size;
    if (traits.has(Trait::connection_state))
        dirty_ = true;
    if (traits.has(Trait::unpaired_replies))
        passthrough_ = true; // from here on bytes flow both ways unframed
    return true;
}

bool Session::replies_outstanding() const noexcept {
    return ready_ > 0 || in_flight_ > 0 || !pending_.empty() || out_.size() > 0 || !local_.empty() ||
           !local_writing_.empty();
}

// Commands the proxy answers itself. Every earlier reply has been written.
bool Session::run_local(const Request& request, std::string_view frame) {
    std::string_view name = request.name.view();
    bool fenced = w_.state == ServingState::fenced;
    if (name == "QUIT") { // allowed before AUTH, as in Redis
        in_.consume(request.size);
        emit_local("+OK\r\n", true);
        return false;
    }
    if (name == "AUTH") {
        auto args = request_args(frame);
        in_.consume(request.size);
        return run_auth(args);
    }
    if (fenced) {
        ++w_.counters.fenced_replies;
        in_.consume(request.size);
        emit_local(kFencedReply);
        return false;
    }
    if (name == "HELLO")
        return run_hello(request_args(frame), request.size);
    in_.consume(request.size);
    if (name == "RESET") {
        // The backend connection's state goes with it; the next command binds
        // a clean one. The client is logged out, as Redis does.
        if (link_ == Link::bound) {
            error_code ignored;
            backend_.close(ignored);
            link_ = Link::none;
        }
        dirty_ = false;
        authenticated_ = w_.shared.config.proxy.password.empty();
        requests_.set_authenticated(authenticated_);
        emit_local("+RESET\r\n");
        return false;
    }
    emit_local(kNoAuth); // any other command before AUTH
    return false;
}

bool Session::run_auth(const std::vector<std::string>& args) {
    const std::string& password = w_.shared.config.proxy.password;
    if (args.size() < 2 || args.size() > 3) {
        emit_local("-ERR wrong number of arguments for 'auth' command\r\n");
        return false;
    }
    if (password.empty() && args.size() == 2) {
        emit_local(kNoPasswordSet);
        return false;
    }
    bool user_ok = args.size() == 2 || args[1] == "default";
    if (!user_ok || (!password.empty() && !same_secret(args.back(), password))) {
        ++w_.counters.auth_failures;
        emit_local(kWrongPass);
        return false;
    }
    authenticated_ = true;
    requests_.set_authenticated(true);
    emit_local("+OK\r\n");
    return false;
}

// HELLO [protover [AUTH user pass] [SETNAME name]]: the proxy checks AUTH and
// forwards the rest, so the backend switches protocol and takes the name.
bool Session::run_hello(std::vector<std::string> args, std::size_t frame_size) {
    std::size_t auth_at = 0;
    for (std::size_t i = 2; i + 2 < args.size() && auth_at == 0; ++i)
        if (iequals(args[i], "AUTH"))
            auth_at = i;
    if (auth_at == 0 && !authenticated_) {
        in_.consume(frame_size);
        emit_local(kHelloNoAuth);
        return false;
    }
    if (auth_at != 0) {
        const std::string& password = w_.shared.config.proxy.password;
        bool ok = args[auth_at + 1] == "default" && (password.empty() || same_secret(args[auth_at + 2], password));
        if (!ok) {
            ++w_.counters.auth_failures;
            in_.consume(frame_size);
            emit_local(kWrongPass);
            return false;
        }
        authenticated_ = true;
        requests_.set_authenticated(true);
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(auth_at),
                   args.begin() + static_cast<std::ptrdiff_t>(auth_at + 3));
        std::string rewritten = encode(args);
        in_.replace_front(frame_size, rewritten); // shorter than what it replaces
        frame_size = rewritten.size();
    }
    // Forwarded like any command from here (ready_ is 0: nothing was before it).
    pending_.push(PendingRequest{clock::now(), false});
    ready_ = frame_size;
    dirty_ = true;
    return true;
}

void Session::forward() {
    if (ready_ == in_flight_ || in_flight_ > 0 || stopped_)
        return;
    if (link_ == Link::none)
        return bind_backend();
    if (link_ == Link::connecting)
        return;
    in_flight_ = ready_;
    asio::async_write(backend_, asio::buffer(in_.data().data(), in_flight_),
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->backend_lost(ec.message());
                          self->in_.consume(self->in_flight_);
                          self->ready_ -= self->in_flight_;
                          self->in_flight_ = 0;
                          self->process_requests();
                      });
}

void Session::bind_backend() {
    link_ = Link::connecting;
    w_.backends.acquire([self = shared_from_this()](tcp::socket socket, const std::string& error) {
        if (self->stopped_) {
            error_code ignored;
            socket.close(ignored);
            return;
        }
        if (!error.empty()) {
            self->link_ = Link::none;
            return self->fail_unsent(error);
        }
        self->backend_ = std::move(socket);
        self->link_ = Link::bound;
        self->replies_ = ReplyFramer();
        self->read_backend();
        self->forward();
    });
}

// The backend could not be reached: every request waiting for it gets an
// error, in order, and the session stays, unbound, for the next command.
void Session::fail_unsent(const std::string& error) {
    ++w_.counters.backend_errors;
    auto text = fmt::format("-ERR redvip: cannot reach Redis at {}: {}\r\n",
                            w_.shared.config.redis.address.to_string(), error);
    std::string replies;
    for (; !pending_.empty(); pending_.pop())
        replies += text;
    in_.consume(ready_);
    ready_ = 0;
    passthrough_ = false;
    dirty_ = false;
    emit_local(replies);
}

// --- backend -> client ---

void Session::read_backend() {
    if (reading_backend_ || stopped_ || link_ != Link::bound)
        return;
    if (out_.allocated() && out_.write_space() == 0) {
        if (out_flight_ > 0)
            return; // resumed when the client has taken what is being written
        out_.compact();
        if (out_.write_space() == 0)
            out_.reserve(std::min(out_.capacity() * 2, kMaxFrameBuffer));
        if (out_.write_space() == 0)
            return backend_lost("a reply larger than the proxy's frame limit");
    }
    reading_backend_ = true;
    backend_.async_wait(tcp::socket::wait_read,
                        [self = shared_from_this()](const error_code& ec) { self->on_backend_readable(ec); });
}

void Session::on_backend_readable(const error_code& ec) {
    reading_backend_ = false;
    if (stopped_ || ec == asio::error::operation_aborted)
        return;
    if (ec)
        return backend_lost(ec.message());
    error_code rec;
    read_ready(backend_, out_, rec);
    if (rec == asio::error::would_block)
        return read_backend();
    if (rec)
        return backend_lost(rec == asio::error::eof ? "connection closed by Redis" : rec.message());
    if (passthrough_) {
        replied_ = out_.size();
    } else {
        while (replied_ < out_.size()) {
            ReplyResult r = replies_.feed(out_.data().substr(replied_));
            if (r.status == Status::need_more)
                break;
            if (r.status == Status::error)
                return backend_lost(fmt::format("protocol error from Redis: {}", r.error.reply()));
            replied_ += r.reply.size;
            if (r.reply.kind == ReplyKind::reply) {
                if (pending_.empty())
                    return backend_lost("Redis sent a reply nobody asked for");
                pending_.pop();
            }
        }
    }
    write_client();
    read_backend();
}

void Session::write_client() {
    if (out_flight_ > 0 || replied_ == 0 || stopped_ || !local_writing_.empty())
        return;
    out_flight_ = replied_;
    asio::async_write(client_, asio::buffer(out_.data().data(), out_flight_),
                      [self = shared_from_this()](const error_code& ec, std::size_t n) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->stop();
                          self->w_.counters.bytes_out += n;
                          self->out_.consume(self->out_flight_);
                          self->replied_ -= self->out_flight_;
                          self->out_flight_ = 0;
                          self->after_client_write();
                      });
}

void Session::after_client_write() {
    last_activity_ = clock::now();
    write_client();
    read_backend();
    flush_local();
    if (waiting_ && !close_after_local_ && !replies_outstanding())
        waiting_ = false;
    process_requests();
    go_idle_if_quiet();
}

// The bound connection broke: replies already framed still go out, then every
// request left unanswered gets one error, then the client is closed (its
// connection state is gone with the backend's).
void Session::backend_lost(const std::string& why) {
    if (stopped_)
        return;
    ++w_.counters.backend_errors;
    w_.shared.log->warn("session lost its Redis connection: {}", why);
    error_code ignored;
    backend_.close(ignored);
    link_ = Link::none;
    in_.reset();
    ready_ = in_flight_ = 0;
    if (passthrough_) {
        for (; !pending_.empty(); pending_.pop()) {
        }
        emit_local("", true);
        return;
    }
    out_.truncate(replied_);
    std::string replies;
    auto text = fmt::format("-ERR redvip: connection to Redis lost: {}\r\n", why);
    for (; !pending_.empty(); pending_.pop())
        replies += text;
    emit_local(replies, true);
}

// --- the proxy's own replies ---

void Session::emit_local(std::string_view bytes, bool close_after) {
    local_.append(bytes);
    if (close_after) {
        close_after_local_ = true;
        waiting_ = true; // read and forward nothing more
    }
    flush_local();
}

// Written once every earlier reply is: nothing pending, nothing framed unsent.
void Session::flush_local() {
    if (!local_writing_.empty() || out_flight_ > 0 || replied_ > 0 || !pending_.empty() || stopped_)
        return;
    if (local_.empty()) {
        if (close_after_local_)
            stop();
        return;
    }
    local_writing_.swap(local_);
    asio::async_write(client_, asio::buffer(local_writing_),
                      [self = shared_from_this()](const error_code& ec, std::size_t n) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->stop();
                          self->w_.counters.bytes_out += n;
                          self->local_writing_.clear();
                          if (self->close_after_local_ && self->local_.empty())
                              return self->stop();
                          self->after_client_write();
                      });
}

// Nothing in flight either way: give the buffers back to the thread's pool.
// (Reads wait for readability without a buffer, so only writes pin one.)
void Session::go_idle_if_quiet() {
    if (in_.empty() && in_flight_ == 0)
        w_.buffers.give_back(in_);
    if (out_.empty() && out_flight_ == 0)
        w_.buffers.give_back(out_);
    pending_.release_if_empty();
    if (local_.empty() && local_.capacity() > 32)
        std::string().swap(local_);
}

void Session::on_state_change() {
    if (stopped_)
        return;
    process_requests();
}

void Session::check_timeouts(clock::time_point now) {
    if (stopped_)
        return;
    const auto& cfg = w_.shared.config.proxy;
    if (!passthrough_ && !pending_.empty() && !pending_.front().blocking &&
        now - pending_.front().sent > cfg.backend_timeout) {
        ++w_.counters.backend_timeouts;
        w_.shared.log->warn("Redis did not answer within {} ms; closing the session", cfg.backend_timeout.count());
        return stop();
    }
    // Like Redis's timeout: not for clients waiting on a reply or subscribed.
    if (cfg.idle_timeout.count() > 0 && pending_.empty() && !passthrough_ &&
        now - last_activity_ > cfg.idle_timeout) {
        ++w_.counters.idle_timeouts;
        stop();
    }
}

} // namespace redvip::proxy
