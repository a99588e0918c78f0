// Connections to the local Redis, one pool per proxy thread (no locking).
//
// The pool keeps `spares` connections open and authenticated ahead of time,
// so a client's first command does not wait for a TCP handshake and AUTH. A
// session takes one for its whole life; when the session ends the connection
// comes back only if the session left no state on it, otherwise it is closed.
// Idle spares are watched, so a Redis that dies or closes them is noticed at
// once (the pool's event reaches the health checker without a poll).
#pragma once

#include "conf/config.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace redvip::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// What the pool tells its owner: a connection attempt failed (refused, timed
// out, AUTH rejected) or succeeded, and a spare was closed by the server.
struct BackendEvents {
    std::function<void(const std::string& error)> on_failure;
    std::function<void()> on_success;
};

class BackendPool {
public:
    // Called exactly once: a connected, authenticated socket, or an error text.
    using Handler = std::function<void(tcp::socket socket, const std::string& error)>;

    BackendPool(asio::io_context& io, const conf::RedisConfig& redis, std::chrono::milliseconds timeout,
                int spares, BackendEvents events);
    ~BackendPool();

    void start();
    void stop();

    void acquire(Handler handler);
    // A connection whose session left no state on it (and no reply due).
    void give_back(tcp::socket socket);

    std::size_t spare_count() const noexcept { return ready_.size(); }
    const tcp::endpoint& address() const noexcept { return address_; }

private:
    struct Attempt;
    struct Spare {
        tcp::socket socket;
        std::uint64_t id;
    };
    void connect(Handler handler);
    void refill();
    void watch(Spare& spare);
    void schedule_refill();

    asio::io_context& io_;
    tcp::endpoint address_;
    std::string auth_request_; // pre-encoded AUTH, empty without a password
    std::chrono::milliseconds timeout_;
    std::size_t spares_;
    BackendEvents events_;
    std::list<Spare> ready_;
    std::vector<std::weak_ptr<Attempt>> attempts_; // in flight, ended by stop()
    std::uint64_t next_id_ = 0;
    std::size_t connecting_ = 0;      // spare connections being made
    std::chrono::milliseconds backoff_;
    bool retry_pending_ = false;
    asio::steady_timer retry_;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_;     // handlers check it: the pool may be gone
};

// RESP encoding of a command (for the proxy's own requests: AUTH, RESET, INFO).
std::string encode_command(std::initializer_list<std::string_view> args);

} // namespace redvip::proxy
