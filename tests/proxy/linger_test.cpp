// The lingering close (proxy/linger.hpp) on real loopback TCP pairs: a client
// that wrote before reading still reads the proxy's last line and then the
// end of stream, never a reset; and each bound (time, bytes, count) closes.
#include "proxy/linger.hpp"
#include "tcp_pair.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

using namespace redvip::proxy;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kLine = "-ERR max number of clients reached\r\n";

// The client end of a pair whose server end went to the loop, with the line
// written on it, as the proxy does before it hangs up.
struct Refused {
    int client = -1;
    Socket server;
    Refused(EventLoop& loop, std::size_t sent_first) {
        auto [c, s] = test::tcp_pair();
        client = c;
        std::string command(sent_first, 'x');
        if (sent_first > 0)
            REQUIRE(::send(client, command.data(), command.size(), 0) == static_cast<ssize_t>(command.size()));
        server = Socket(loop, s, true);
        REQUIRE(server.write(kLine).bytes == kLine.size());
    }
    ~Refused() { ::close(client); }

    // Everything until the end of stream; errno's text when the read failed.
    std::string read_all(EventLoop& loop) const {
        std::string got;
        for (int tries = 0; tries < 200; ++tries) {
            loop.run_once(5ms);
            char buffer[4096];
            const ssize_t n = ::recv(client, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n == 0)
                return got;
            if (n > 0)
                got.append(buffer, static_cast<std::size_t>(n));
            else if (errno != EAGAIN)
                return got + "<" + error_text(errno) + ">";
        }
        return got + "<no end of stream>";
    }
};

bool settles(EventLoop& loop, const Lingerer& linger, std::size_t size) {
    for (int tries = 0; tries < 400 && linger.size() != size; ++tries)
        loop.run_once(5ms);
    return linger.size() == size;
}

} // namespace

TEST_CASE("a client that wrote before reading gets the last line, then the end of stream") {
    EventLoop loop;
    Lingerer linger(loop);
    Refused refused(loop, 100'000); // more than one read: unread when the proxy hangs up
    linger.adopt(std::move(refused.server));
    CHECK(linger.size() == 1);
    CHECK(refused.read_all(loop) == kLine);
    ::shutdown(refused.client, SHUT_WR); // the client closes in turn: so does the proxy
    CHECK(settles(loop, linger, 0));
}

TEST_CASE("closed at once the client would have lost the line (what the lingering is for)") {
    EventLoop loop;
    Refused refused(loop, 100'000);
    refused.server.close();
    CHECK(refused.read_all(loop) != kLine);
}

TEST_CASE("a client that never closes is closed after the wait") {
    EventLoop loop;
    Lingerer linger(loop, LingerLimits{.wait = 50ms});
    Refused refused(loop, 10);
    linger.adopt(std::move(refused.server));
    CHECK(settles(loop, linger, 0));
}

TEST_CASE("a client that keeps sending is closed past the byte budget") {
    EventLoop loop;
    Lingerer linger(loop, LingerLimits{.wait = 1h, .budget = 64 * 1024});
    Refused refused(loop, 0);
    linger.adopt(std::move(refused.server));
    REQUIRE(::fcntl(refused.client, F_SETFL, O_NONBLOCK) == 0);
    const std::string chunk(16 * 1024, 'x');
    std::size_t sent = 0;
    for (int tries = 0; tries < 400 && linger.size() == 1; ++tries) {
        const ssize_t n = ::send(refused.client, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0)
            sent += static_cast<std::size_t>(n);
        loop.run_once(1ms);
    }
    CHECK(linger.size() == 0);
    CHECK(sent > 64 * 1024);
}

TEST_CASE("past the most sockets lingering, one is closed at once") {
    EventLoop loop;
    Lingerer linger(loop, LingerLimits{.most = 1});
    Refused first(loop, 0), second(loop, 0);
    linger.adopt(std::move(first.server));
    linger.adopt(std::move(second.server));
    CHECK(linger.size() == 1);
    CHECK(second.read_all(loop) == kLine); // it had nothing unread: FIN after the line
}
