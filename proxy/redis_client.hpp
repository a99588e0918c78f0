// A small Redis client for redvip's own requests: the election's role steps
// and peer reads (election/role/redis_executor.cpp) and redvip-bench's set-up
// and slow paths (bench/connection.cpp). One connection, Asio coroutines, one
// request at a time, every wait bounded by a deadline that closes the socket
// (docs/style.md, practice 11). Replies are decoded by the protocol library
// (resp_value.hpp). The proxy's own traffic never goes through it: the proxy
// runs its own event loop, and its health checks ride the backend pool.
//
// Errors are values: a typed failure, which is what callers act on (a refused
// connect means nothing listens on the port), and a short text for logs
// ("timed out after 300 ms", "connection closed by Redis").
//
// Threading: call it from coroutines on the executor it was made with. A
// deadline that fires after the client is gone does nothing.
#pragma once

#include "proxy/resp_value.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy {

enum class ClientFailure : std::uint8_t {
    none,
    refused,   // ECONNREFUSED: nothing listens on the port
    reset,     // ECONNRESET, EPIPE, ECONNABORTED
    closed,    // the server closed the connection (EOF)
    timed_out, // the deadline passed
    protocol,  // bytes that are not RESP, or a reply past the buffer's cap
    other,     // any other socket or resolver error
};

struct ClientError {
    ClientFailure failure = ClientFailure::none;
    std::string text; // for logs: "timed out after 300 ms", "Connection refused"

    explicit operator bool() const { return failure != ClientFailure::none; }
};

struct CallResult {
    OwnedValue value;  // when !error: the reply (an error reply is a value too)
    ClientError error;
};

// Received bytes not yet parsed: replies are parsed in place and consumed;
// free space is made by moving the unparsed tail to the front, and the
// storage grows only for a reply larger than it, up to `max_bytes`.
class ReadBuffer {
public:
    static constexpr std::size_t kInitialBytes = 64 * 1024;
    static constexpr std::size_t kMinReadBytes = 16 * 1024;

    explicit ReadBuffer(std::size_t max_bytes) : max_bytes_(max_bytes), storage_(kInitialBytes) {}
    std::string_view data() const { return {storage_.data() + begin_, end_ - begin_}; }
    void consume(std::size_t n);
    // Space for the next read; empty when the buffer may not grow any more.
    boost::asio::mutable_buffer prepare();
    void commit(std::size_t n) { end_ += n; }
    void clear() { begin_ = end_ = 0; }

private:
    std::size_t max_bytes_;
    std::vector<char> storage_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

class RedisClient {
public:
    // Replies to INFO, ROLE and the like stay far below the default; a client
    // that reads values sets the largest it accepts.
    static constexpr std::size_t kDefaultMaxReplyBytes = 1 << 20;

    explicit RedisClient(boost::asio::any_io_executor executor,
                         std::size_t max_reply_bytes = kDefaultMaxReplyBytes);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Resolves `host` (a name or an address), connects, sets TCP_NODELAY.
    // The error's text is "connect to HOST:PORT: why".
    boost::asio::awaitable<ClientError> connect(std::string host, std::uint16_t port,
                                                std::chrono::steady_clock::duration timeout);
    // Writes `request` (one or more encoded commands) and reads one reply.
    // Any error closes the connection.
    boost::asio::awaitable<CallResult> call(std::string_view request,
                                            std::chrono::steady_clock::duration timeout);
    // Waits, ended early by close().
    boost::asio::awaitable<void> sleep(std::chrono::steady_clock::duration duration);
    // Ends whatever waits (it completes with an error) and forgets buffered bytes.
    void close();

    bool is_open() const { return socket_.is_open(); }
    // Between calls: has the server closed the connection (its FIN, or bytes
    // nobody asked for, are waiting)? One non-blocking peek, as redis-py's
    // and go-redis's pools check a connection before reusing it.
    bool closed_by_peer();
    // For a caller that pipelines on its own (redvip-bench's load): the
    // socket and the buffer of bytes read but not parsed.
    boost::asio::ip::tcp::socket& socket() { return socket_; }
    ReadBuffer& buffer() { return in_; }

    // What an error code means, with the deadline's part (a timeout closes
    // the socket, so the pending operation ends with an error of its own).
    ClientError failure(const boost::system::error_code& ec) const;

private:
    void arm(std::chrono::steady_clock::duration timeout);
    void disarm();

    boost::asio::ip::tcp::socket socket_;
    boost::asio::ip::tcp::resolver resolver_;
    boost::asio::steady_timer deadline_;
    boost::asio::steady_timer pause_;
    ReadBuffer in_;
    std::chrono::steady_clock::duration deadline_after_{};
    std::uint64_t generation_ = 0;
    bool timed_out_ = false;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0); // deadlines hold it weakly
};

} // namespace redvip::proxy
