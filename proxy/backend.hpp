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
#include "proxy/event_loop.hpp"
#include "proxy/resp_value.hpp" // encode_command, for the proxy's own requests (AUTH)

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/ip/tcp.hpp>

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
// `refused`: the connect was refused, nothing listens on Redis's port (the
// health verdict acts on that at once).
struct BackendEvents {
    std::function<void(const std::string& error, bool refused)> on_failure;
    std::function<void()> on_success;
};

// `timeout` bounds each connection attempt (connect and AUTH); 0: a default.
class BackendPool {
public:
    // Called exactly once, from the loop (never inside acquire() unless a
    // spare is ready): a connected, authenticated socket, or an error text.
    // Not called if the pool is destroyed first.
    using Handler = std::function<void(Socket socket, const std::string& error)>;

    BackendPool(EventLoop& loop, const conf::RedisConfig& redis, std::chrono::milliseconds timeout, int spares,
                BackendEvents events);
    ~BackendPool();
    BackendPool(const BackendPool&) = delete;
    BackendPool& operator=(const BackendPool&) = delete;

    void start();
    void stop();

    void acquire(Handler handler);
    // A connection whose session left no state on it (and no reply due).
    void give_back(Socket socket);

    std::size_t spare_count() const noexcept { return ready_.size(); }
    const tcp::endpoint& address() const noexcept { return address_; }

private:
    class Attempt;
    // An idle spare is readable only when Redis closed it (or broke protocol).
    struct Spare final : IoHandler {
        Spare(BackendPool& pool, Socket s) : pool(pool), socket(std::move(s)) {}
        void on_io() override;
        BackendPool& pool;
        Socket socket;
    };
    void connect(Handler handler);
    void finished(Attempt& attempt);
    void refill();
    void schedule_refill();
    void spare_closed(Spare& spare);

    EventLoop& loop_;
    tcp::endpoint address_;
    std::string auth_request_; // pre-encoded AUTH, empty without a password
    std::chrono::milliseconds timeout_;
    std::size_t spares_;
    BackendEvents events_;
    std::list<Spare> ready_;
    std::vector<std::shared_ptr<Attempt>> attempts_; // in flight
    std::size_t connecting_ = 0;      // spare connections being made
    std::chrono::milliseconds backoff_;
    Timer retry_;
    bool stopped_ = false;
};

// The Redis that sessions' connections go to, with the credentials they
// carry. With [proxy] password the proxy checks clients' passwords itself and
// its connections authenticate with [redis] password; without it, clients
// authenticate to Redis themselves (AUTH and HELLO pass through), so
// sessions' connections carry none: Redis's requirepass and ACL users apply
// to every client exactly as they would directly.
conf::RedisConfig session_backend(const conf::Config& config, const conf::Endpoint& address);

} // namespace redvip::proxy
