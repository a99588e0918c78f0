// proxy::RedisClient on loopback against a scripted server: each typed
// failure (refused, closed, timed out, not RESP) and a reply, decoded.
#include "proxy/redis_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

using namespace redvip::proxy;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A server on an ephemeral loopback port that answers the first request of
// its one client with `answer` (then closes if `close_after`), or never
// answers when `answer` is empty and !close_after.
struct Server {
    Server(asio::io_context& io, std::string answer, bool close_after)
        : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), client(io) {
        acceptor.async_accept(client, [this, answer, close_after](const boost::system::error_code& ec) {
            if (ec) return;
            client.async_read_some(asio::buffer(request), [this, answer, close_after](auto ec2, std::size_t) {
                if (ec2) return;
                if (!answer.empty()) {
                    boost::system::error_code ignored;
                    asio::write(client, asio::buffer(answer), ignored);
                }
                if (close_after) client.close();
            });
        });
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    tcp::acceptor acceptor;
    tcp::socket client;
    std::array<char, 256> request{};
};

// Connects to `port` and sends PING; the call's result.
CallResult ping(asio::io_context& io, std::uint16_t port, std::chrono::milliseconds timeout,
                ClientError* connect_error = nullptr) {
    CallResult out;
    RedisClient client(io.get_executor());
    // Encoded outside the coroutine: g++ 12 miscompiles an initializer_list
    // in a coroutine frame ("array used as initializer").
    const std::string request = encode_command({"PING"});
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            if (auto e = co_await client.connect("127.0.0.1", port, 1s)) {
                if (connect_error) *connect_error = e;
                out.error = e;
                co_return;
            }
            out = co_await client.call(request, timeout);
        },
        asio::detached);
    io.run_for(5s);
    return out;
}

} // namespace

TEST_CASE("a reply is decoded and owned") {
    asio::io_context io;
    Server server(io, "+PONG\r\n", false);
    const auto r = ping(io, server.port(), 1s);
    REQUIRE_FALSE(r.error);
    CHECK(r.value.kind == ValueKind::simple);
    CHECK(r.value.text == "PONG");
}

TEST_CASE("nothing listening is 'refused', with the address in the text") {
    asio::io_context io;
    std::uint16_t port = 0;
    {
        tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    } // closed: nothing listens there now
    ClientError e;
    ping(io, port, 1s, &e);
    CHECK(e.failure == ClientFailure::refused);
    CHECK(e.text == "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST_CASE("a server that closes is 'closed', one that says nothing 'timed out'") {
    {
        asio::io_context io;
        Server server(io, "", true);
        const auto r = ping(io, server.port(), 1s);
        CHECK(r.error.failure == ClientFailure::closed);
        CHECK(r.error.text == "connection closed by Redis");
    }
    {
        asio::io_context io;
        Server server(io, "", false);
        const auto r = ping(io, server.port(), 100ms);
        CHECK(r.error.failure == ClientFailure::timed_out);
        CHECK(r.error.text == "timed out after 100 ms");
    }
}

TEST_CASE("bytes that are not RESP are a protocol failure with a sample") {
    asio::io_context io;
    Server server(io, "HTTP/1.1 400 Bad Request\r\n\r\n", false);
    const auto r = ping(io, server.port(), 1s);
    CHECK(r.error.failure == ClientFailure::protocol);
    CHECK(r.error.text.find("HTTP/1.1") != std::string::npos);
}
