#include "proxy/backend.hpp"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>

namespace redvip::proxy {

namespace {

// Backoff between failed attempts to refill spares: fast at first, so a
// restarted Redis is used within 50 ms, capped so a dead one costs little.
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

// An AUTH reply is "+OK" or a short error; anything longer is not Redis.
constexpr std::size_t kMaxAuthReply = 512;

} // namespace

std::string encode_command(std::initializer_list<std::string_view> args) {
    std::string out = fmt::format("*{}\r\n", args.size());
    for (auto arg : args)
        out += fmt::format("${}\r\n{}\r\n", arg.size(), arg);
    return out;
}

// One connection being made: connect, then AUTH if the pool has a password.
struct BackendPool::Attempt : std::enable_shared_from_this<Attempt> {
    Attempt(asio::io_context& io, Handler h) : socket(io), timer(io), handler(std::move(h)) {}

    void finish(const std::string& error) {
        if (!handler)
            return; // the other of timer and I/O already finished it
        timer.cancel();
        auto h = std::move(handler);
        handler = nullptr;
        if (!error.empty()) {
            boost::system::error_code ignored;
            socket.close(ignored);
        }
        h(std::move(socket), error);
    }

    void read_auth_reply(std::shared_ptr<Attempt> self) {
        reply.resize(std::min(got + 128, kMaxAuthReply)); // grown only if AUTH is used
        socket.async_read_some(asio::buffer(reply.data() + got, reply.size() - got),
                               [self](const boost::system::error_code& ec, std::size_t n) {
                                   if (ec)
                                       return self->finish(fmt::format("AUTH: {}", ec.message()));
                                   self->got += n;
                                   std::string_view text(self->reply.data(), self->got);
                                   auto end = text.find("\r\n");
                                   if (end == std::string_view::npos) {
                                       if (self->got == kMaxAuthReply)
                                           return self->finish("AUTH: reply too long, not a Redis server?");
                                       return self->read_auth_reply(self);
                                   }
                                   if (text.substr(0, end) != "+OK")
                                       return self->finish(fmt::format("AUTH: {}", text.substr(0, end)));
                                   self->finish("");
                               });
    }

    tcp::socket socket;
    asio::steady_timer timer;
    Handler handler;
    std::string reply;
    std::size_t got = 0;
};

BackendPool::BackendPool(asio::io_context& io, const conf::RedisConfig& redis, std::chrono::milliseconds timeout,
                         int spares, BackendEvents events)
    : io_(io)
    , address_(redis.address.host, redis.address.port)
    , timeout_(timeout)
    , spares_(static_cast<std::size_t>(spares))
    , events_(std::move(events))
    , backoff_(kFirstBackoff)
    , retry_(io)
    , alive_(std::make_shared<bool>(true)) {
    if (!redis.password.empty())
        auth_request_ = encode_command({"AUTH", redis.password});
}

BackendPool::~BackendPool() { *alive_ = false; }

void BackendPool::start() { refill(); }

void BackendPool::stop() {
    stopped_ = true;
    retry_.cancel();
    for (auto& spare : ready_) {
        boost::system::error_code ignored;
        spare.socket.close(ignored);
    }
    ready_.clear();
    for (auto& weak : attempts_)
        if (auto attempt = weak.lock())
            attempt->finish("the proxy is stopping");
    attempts_.clear();
}

void BackendPool::acquire(Handler handler) {
    if (!ready_.empty()) {
        tcp::socket socket = std::move(ready_.front().socket);
        ready_.pop_front();
        boost::system::error_code ignored;
        socket.cancel(ignored); // ends its watch; the handler finds no spare with its id
        refill();
        return handler(std::move(socket), "");
    }
    connect(std::move(handler));
    refill();
}

void BackendPool::give_back(tcp::socket socket) {
    if (stopped_ || ready_.size() >= spares_) {
        boost::system::error_code ignored;
        socket.close(ignored);
        return;
    }
    ready_.push_back(Spare{std::move(socket), ++next_id_});
    watch(ready_.back());
}

void BackendPool::connect(Handler handler) {
    // Every attempt's outcome is an event for the health checker: a refused
    // connection is news now, not at the next poll.
    auto report = [this, alive = alive_, handler = std::move(handler)](tcp::socket socket,
                                                                        const std::string& error) {
        if (*alive) {
            if (error.empty()) {
                backoff_ = kFirstBackoff;
                if (events_.on_success)
                    events_.on_success();
            } else if (events_.on_failure) {
                events_.on_failure(error);
            }
        }
        handler(std::move(socket), error);
    };
    auto attempt = std::make_shared<Attempt>(io_, std::move(report));
    std::erase_if(attempts_, [](const std::weak_ptr<Attempt>& a) { return a.expired(); });
    attempts_.push_back(attempt);
    attempt->timer.expires_after(timeout_);
    attempt->timer.async_wait([attempt](const boost::system::error_code& ec) {
        if (!ec)
            attempt->finish("connect timed out");
    });
    attempt->socket.async_connect(address_, [this, attempt, alive = alive_](const boost::system::error_code& ec) {
        if (ec)
            return attempt->finish(ec.message());
        boost::system::error_code ignored;
        attempt->socket.set_option(tcp::no_delay(true), ignored);
        if (!*alive || auth_request_.empty())
            return attempt->finish("");
        asio::async_write(attempt->socket, asio::buffer(auth_request_),
                          [attempt](const boost::system::error_code& ec, std::size_t) {
                              if (ec)
                                  return attempt->finish(fmt::format("AUTH: {}", ec.message()));
                              attempt->read_auth_reply(attempt);
                          });
    });
}

void BackendPool::refill() {
    while (!stopped_ && !retry_pending_ && ready_.size() + connecting_ < spares_) {
        ++connecting_;
        connect([this, alive = alive_](tcp::socket socket, const std::string& error) {
            if (!*alive)
                return;
            --connecting_;
            if (!error.empty())
                return schedule_refill();
            give_back(std::move(socket));
            refill();
        });
    }
}

void BackendPool::schedule_refill() {
    if (stopped_ || retry_pending_)
        return;
    retry_pending_ = true;
    retry_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    retry_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
        if (ec || !*alive)
            return;
        retry_pending_ = false;
        refill();
    });
}

// An idle spare is readable only when Redis closed it (or broke protocol):
// drop it and make another. The spare is found by id, since it may have been
// handed to a session (or replaced) while this wait was queued.
void BackendPool::watch(Spare& spare) {
    spare.socket.async_wait(tcp::socket::wait_read, [this, id = spare.id, alive = alive_](
                                                        const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !*alive || stopped_)
            return;
        auto it = std::find_if(ready_.begin(), ready_.end(), [id](const Spare& s) { return s.id == id; });
        if (it == ready_.end())
            return;
        ready_.erase(it);
        if (events_.on_failure)
            events_.on_failure("an idle connection was closed by the server");
        refill();
    });
}

} // namespace redvip::proxy
