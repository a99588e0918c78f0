#include "proxy/backend.hpp"

#include <fmt/format.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace redvip::proxy {

namespace {

// Backoff between failed attempts to refill spares: fast at first, so a
// restarted Redis is used within 50 ms, capped so a dead one costs little.
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

// How long a connection (and its AUTH) may take when backend_timeout_ms is 0:
// a local Redis accepts at once, so this only bounds one that is hung.
constexpr std::chrono::milliseconds kDefaultConnectTimeout{5000};

// An AUTH reply is "+OK" or a short error; anything longer is not Redis.
constexpr std::size_t kMaxAuthReply = 512;

} // namespace

conf::RedisConfig session_backend(const conf::Config& config, const conf::Endpoint& address) {
    conf::RedisConfig redis = config.redis;
    redis.address = address;
    if (config.proxy.password.empty())
        redis.password.clear();
    return redis;
}

// One connection being made: connect, then AUTH if the pool has a password.
// Held by the pool (attempts_) until it finishes.
class BackendPool::Attempt final : public IoHandler, public std::enable_shared_from_this<Attempt> {
public:
    // The pool's handler, told also whether the connection was refused
    // (nothing listens on Redis's port).
    using Outcome = std::function<void(Socket, const std::string& error, bool refused)>;

    Attempt(BackendPool& pool, Outcome handler) : pool_(pool), timer_(pool.loop_), handler_(std::move(handler)) {}

    void start() {
        timer_.after(pool_.timeout_, [this] { finish("connect timed out"); });
        const tcp::endpoint& to = pool_.address_;
        const int fd = ::socket(to.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return fail_soon(errno);
        // Registered once the connect is under way: an unconnected TCP socket
        // polls as hung up. It is connected at its first EPOLLOUT.
        if (::connect(fd, to.data(), static_cast<socklen_t>(to.size())) != 0 && errno != EINPROGRESS) {
            const int error = errno;
            ::close(fd);
            return fail_soon(error);
        }
        try {
            socket_ = Socket(pool_.loop_, fd, false);
        } catch (const std::system_error& e) {
            return fail_soon(e.code().value());
        }
        socket_.set_handler(this);
    }

    // Outcomes come from the loop, never from inside acquire().
    void fail_soon(int error) {
        refused_ = error == ECONNREFUSED;
        fail_soon(error_text(error));
    }
    void fail_soon(std::string error) {
        timer_.after(Clock::duration::zero(), [this, error = std::move(error)] { finish(error); });
    }

    void on_io() override {
        if (!handler_)
            return;
        if (!connected_) {
            if (!socket_.writable())
                return;
            if (const int error = socket_.connect_error()) {
                refused_ = error == ECONNREFUSED;
                return finish(error_text(error));
            }
            connected_ = true;
            socket_.set_no_delay();
            if (pool_.auth_request_.empty())
                return finish("");
        }
        const std::string_view auth = pool_.auth_request_;
        while (sent_ < auth.size()) {
            if (!socket_.writable())
                return;
            const IoResult r = socket_.write(auth.substr(sent_));
            if (r.failed())
                return finish(fmt::format("AUTH: {}", error_text(r.error)));
            sent_ += r.bytes;
        }
        while (socket_.readable()) {
            reply_.resize(std::min(got_ + 128, kMaxAuthReply)); // grown only if AUTH is used
            const IoResult r = socket_.read(reply_.data() + got_, reply_.size() - got_);
            if (r.eof)
                return finish("AUTH: connection closed by Redis");
            if (r.error != 0)
                return finish(fmt::format("AUTH: {}", error_text(r.error)));
            got_ += r.bytes;
            const std::string_view text(reply_.data(), got_);
            const auto end = text.find("\r\n");
            if (end == std::string_view::npos) {
                if (got_ == kMaxAuthReply)
                    return finish("AUTH: reply too long, not a Redis server?");
                continue;
            }
            if (text.substr(0, end) != "+OK")
                return finish(fmt::format("AUTH: {}", text.substr(0, end)));
            return finish("");
        }
    }

    void finish(const std::string& error) {
        if (!handler_)
            return;
        timer_.cancel();
        socket_.set_handler(nullptr);
        if (!error.empty())
            socket_.close();
        const auto self = shared_from_this(); // the pool lets go of it here
        Outcome handler = std::move(handler_);
        handler_ = nullptr;
        pool_.finished(*this);
        handler(std::move(socket_), error, refused_ && !error.empty());
    }

private:
    BackendPool& pool_;
    Socket socket_;
    Timer timer_;
    Outcome handler_;
    std::string reply_;
    std::size_t got_ = 0;
    std::size_t sent_ = 0;
    bool connected_ = false;
    bool refused_ = false;
};

BackendPool::BackendPool(EventLoop& loop, const conf::RedisConfig& redis, std::chrono::milliseconds timeout,
                         int spares, BackendEvents events)
    : loop_(loop)
    , address_(redis.address.host, redis.address.port)
    , timeout_(timeout.count() > 0 ? timeout : kDefaultConnectTimeout)
    , spares_(static_cast<std::size_t>(spares))
    , events_(std::move(events))
    , backoff_(kFirstBackoff)
    , retry_(loop) {
    if (!redis.password.empty())
        auth_request_ = encode_command({"AUTH", redis.password});
}

// Attempts still in flight end without calling their handlers.
BackendPool::~BackendPool() = default;

void BackendPool::start() { refill(); }

void BackendPool::stop() {
    stopped_ = true;
    retry_.cancel();
    ready_.clear();
    for (auto& attempt : std::vector(attempts_))
        attempt->finish("the proxy is stopping");
}

void BackendPool::acquire(Handler handler) {
    if (!ready_.empty()) {
        Socket socket = std::move(ready_.front().socket);
        ready_.pop_front();
        socket.set_handler(nullptr); // the spare it pointed to is gone
        refill();
        return handler(std::move(socket), "");
    }
    connect(std::move(handler));
    refill();
}

// Bytes already waiting on it (readable) are not a clean connection's.
void BackendPool::give_back(Socket socket) {
    if (stopped_ || ready_.size() >= spares_ || !socket.is_open() || socket.readable())
        return; // closed with it
    Spare& spare = ready_.emplace_back(*this, std::move(socket));
    spare.socket.set_handler(&spare);
}

void BackendPool::Spare::on_io() {
    if (socket.readable())
        pool.spare_closed(*this);
}

void BackendPool::spare_closed(Spare& spare) {
    ready_.remove_if([&](const Spare& s) { return &s == &spare; });
    if (events_.on_failure)
        events_.on_failure("an idle connection was closed by the server", false);
    refill();
}

void BackendPool::connect(Handler handler) {
    // Every attempt's outcome is an event for the health checker: a refused
    // connection is news now, not at the next poll.
    auto report = [this, handler = std::move(handler)](Socket socket, const std::string& error, bool refused) {
        if (error.empty()) {
            backoff_ = kFirstBackoff;
            if (events_.on_success)
                events_.on_success();
        } else if (events_.on_failure) {
            events_.on_failure(error, refused);
        }
        handler(std::move(socket), error);
    };
    auto attempt = std::make_shared<Attempt>(*this, std::move(report));
    attempts_.push_back(attempt);
    if (stopped_)
        attempt->fail_soon(std::string("the proxy is stopping"));
    else
        attempt->start();
}

void BackendPool::finished(Attempt& attempt) {
    std::erase_if(attempts_, [&](const std::shared_ptr<Attempt>& a) { return a.get() == &attempt; });
}

void BackendPool::refill() {
    while (!stopped_ && !retry_.pending() && ready_.size() + connecting_ < spares_) {
        ++connecting_;
        connect([this](Socket socket, const std::string& error) {
            --connecting_;
            if (!error.empty())
                return schedule_refill();
            give_back(std::move(socket));
            refill();
        });
    }
}

void BackendPool::schedule_refill() {
    if (stopped_ || retry_.pending())
        return;
    retry_.after(backoff_, [this] { refill(); });
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

} // namespace redvip::proxy
