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
#include "proxy/redis_client.hpp"
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
using proxy::ReadBuffer;
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

// The largest reply a link reads: the largest bulk we accept plus room for
// its header and the next reply.
inline constexpr std::size_t kMaxBufferBytes = proxy::kMaxValueBulk + 2 * proxy::kMaxValueLine;

// One connection to the target: the shared proxy::RedisClient, with the
// benchmark's failures (LinkError, by ErrorKind) thrown, and its set-up
// (AUTH, PING) in open().
class RedisLink {
public:
    explicit RedisLink(asio::io_context& io) : client_(io.get_executor(), kMaxBufferBytes) {}

    // Connects, sets TCP_NODELAY, AUTHs when a password is given and (with
    // `ping`) checks that PING answers PONG. Throws LinkError with a one-line
    // reason.
    asio::awaitable<void> open(const Endpoint& target, const std::string& password,
                               Clock::duration timeout, bool ping = true);
    // Writes `request` and reads one reply. Throws LinkError on a socket
    // error, a timeout or a protocol error (and closes the socket).
    asio::awaitable<OwnedValue> call(std::string_view request, Clock::duration timeout);
    void close() { client_.close(); }
    bool is_open() const { return client_.is_open(); }
    // Between calls: has the server closed the connection? (RedisClient's.)
    bool closed_by_peer() { return client_.closed_by_peer(); }

    tcp::socket& socket() { return client_.socket(); }
    ReadBuffer& buffer() { return client_.buffer(); }
    const Endpoint& target() const { return target_; }

    // The failure an error code stands for, as a kind and a message naming the target.
    LinkError failure(const boost::system::error_code& ec, std::string_view doing) const;

private:
    LinkError error(const proxy::ClientError& e, std::string_view doing) const;

    proxy::RedisClient client_;
    Endpoint target_;
};

} // namespace redvip::bench
