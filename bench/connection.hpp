#pragma once
// One TCP connection to a Redis-speaking target, for the benchmarks' setup
// and slow paths: connect and every call run under a deadline (a steady_timer
// that closes the socket), so a silent or unreachable target cannot hang us.
// The latency benchmark's fast path uses socket() and buffer() directly.

// clang-format off
#include <utility> // g++ 12 with Asio 1.18 needs it before the Asio headers
// clang-format on

#include "bench/endpoint.hpp"
#include "bench/failover_analysis.hpp"
#include "proxy/resp_value.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace redvip::bench {

namespace asio = boost::asio;
// Replies and commands come from the protocol library (proxy/resp_value.hpp).
using proxy::encode_command;
using proxy::own;
using proxy::OwnedValue;
using proxy::parse_value;
using proxy::sanitize_sample;
using proxy::Status;
using proxy::Value;
using proxy::ValueKind;
using proxy::ValueResult;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A failure that ends the run with exit status 1 and this one-line message.
class BenchError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A connection-level failure: its kind (for the failover counts) and a one-line message.
class LinkError : public std::runtime_error {
public:
    LinkError(ErrorKind kind, const std::string& message)
        : std::runtime_error(message)
        , kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

// Received bytes not yet parsed: replies are parsed in place and consumed;
// free space is made by moving the unparsed tail to the front, and the
// storage grows only for a reply larger than it (up to kMaxBufferBytes).
class ReadBuffer {
public:
    static constexpr std::size_t kInitialBytes = 64 * 1024;
    static constexpr std::size_t kMinReadBytes = 16 * 1024;
    // The largest bulk we accept plus room for its header and the next reply.
    static constexpr std::size_t kMaxBufferBytes = proxy::kMaxValueBulk + 2 * proxy::kMaxValueLine;

    ReadBuffer() : storage_(kInitialBytes) {}
    std::string_view data() const { return {storage_.data() + begin_, end_ - begin_}; }
    void consume(std::size_t n);
    // Space for the next read; empty when the buffer may not grow any more.
    asio::mutable_buffer prepare();
    void commit(std::size_t n) { end_ += n; }
    void clear() { begin_ = end_ = 0; }

private:
    std::vector<char> storage_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};


class RedisLink {
public:
    explicit RedisLink(asio::io_context& io);

    // Connects, sets TCP_NODELAY, AUTHs when a password is given and (with
    // `ping`) checks that PING answers PONG. Throws LinkError with a one-line
    // reason.
    asio::awaitable<void> open(const Endpoint& target, const std::string& password,
                               Clock::duration timeout, bool ping = true);
    // Writes `request` and reads one reply. Throws LinkError on a socket
    // error, a timeout or a protocol error (and closes the socket).
    asio::awaitable<OwnedValue> call(std::string_view request, Clock::duration timeout);
    void close();
    bool is_open() const { return socket_.is_open(); }
    // Between calls: has the server closed the connection (its FIN, or bytes
    // nobody asked for, are waiting)? One non-blocking peek, as redis-py's
    // and go-redis's pools check a connection before reusing it, so a server
    // that closes idle connections (a proxy handing over) costs a reconnect,
    // not an error.
    bool closed_by_peer();

    tcp::socket& socket() { return socket_; }
    ReadBuffer& buffer() { return in_; }
    const Endpoint& target() const { return target_; }

    // The failure an error code stands for, as a kind and a message naming the target.
    LinkError failure(const boost::system::error_code& ec, std::string_view doing) const;

private:
    void arm_deadline(Clock::duration timeout);
    void disarm_deadline();
    asio::awaitable<void> connect(Clock::duration timeout);

    tcp::socket socket_;
    asio::steady_timer deadline_;
    std::uint64_t deadline_generation_ = 0;
    bool timed_out_ = false;
    Clock::duration deadline_after_{};
    Endpoint target_;
    tcp::resolver resolver_;
    ReadBuffer in_;
};


} // namespace redvip::bench
