// Multiplexed mode (shared_link.hpp) on real loopback sockets: several
// sessions share one link to a scripted Redis; each client gets exactly its
// own replies, in order; requests read in one loop turn reach Redis in one
// write; a round trip allocates nothing per request; a broken link fails each
// waiting request once and the next request connects anew.
#include "alloc_counter.hpp"
#include "tcp_pair.hpp"
#include "proxy/resp_request.hpp"
#include "proxy/session.hpp"
#include "proxy/worker.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>

using namespace redvip;
using namespace redvip::proxy;

namespace {

using clock = std::chrono::steady_clock;

// "GET kN" as a client sends it; Redis-the-script answers "+kN".
std::string get(int n) {
    const std::string key = "k" + std::to_string(n);
    return "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
}

// A listening socket on loopback standing for Redis: it accepts the proxy's
// connection, answers COMMAND with an error (the share policy keeps its list)
// and each GET with its key as a status line. It allocates nothing per
// request once its strings have grown.
struct ScriptedRedis {
    ScriptedRedis() {
        const auto [fd, address] = test::loopback_listener(SOCK_NONBLOCK);
        listener = fd;
        port = ntohs(address.sin_port);
        in.reserve(1 << 16);
        out.reserve(1 << 16);
    }
    ~ScriptedRedis() {
        drop();
        ::close(listener);
    }

    // Accepts, reads and answers what has come; true when it did anything.
    void serve() {
        if (conn < 0) {
            conn = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (conn < 0)
                return;
            ++accepted;
            table_asked = false;
        }
        char buf[8192];
        for (;;) {
            const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            ++reads;
            in.append(buf, static_cast<std::size_t>(n));
        }
        std::size_t used = 0;
        for (;;) {
            RequestResult r = framer.feed(std::string_view(in).substr(used));
            if (r.status != Status::done)
                break;
            const std::string_view frame = std::string_view(in).substr(used, r.request.size);
            used += r.request.size;
            if (r.request.name.view() == "COMMAND") {
                table_asked = true;
                out += "-ERR no table here\r\n";
                continue;
            }
            ++requests;
            if (hold)
                continue; // (asked, never answered: the link breaks first)
            // The key is the last argument: between the last length line and the final CRLF.
            const std::size_t key_end = frame.size() - 2;
            const std::size_t key_start = frame.rfind('\n', key_end - 1) + 1;
            out += '+';
            out += frame.substr(key_start, key_end - key_start);
            out += "\r\n";
        }
        in.erase(0, used);
        if (!out.empty()) {
            REQUIRE(::send(conn, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));
            out.clear();
        }
    }
    void drop() {
        if (conn >= 0)
            ::close(conn);
        conn = -1;
        in.clear();
        framer = RequestFramer(true);
    }

    int listener = -1, conn = -1;
    std::uint16_t port = 0;
    std::string in, out;
    RequestFramer framer{true};
    int accepted = 0, reads = 0, requests = 0;
    bool table_asked = false, hold = false;
};

conf::Config multiplexed(std::uint16_t port) {
    conf::Config c;
    c.proxy.multiplex = true;
    c.redis.address = conf::Endpoint{boost::asio::ip::make_address("127.0.0.1"), port};
    c.proxy.hold_timeout = std::chrono::milliseconds(500);
    return c;
}

struct Client {
    int fd = -1;
    std::shared_ptr<Session> session;
    std::string got;
    bool closed = false;
};

struct Rig {
    explicit Rig(int clients)
        : config(multiplexed(redis.port))
        , shared{config, std::make_shared<spdlog::logger>("test")}
        , worker(shared, 0, {}) {
        for (int i = 0; i < clients; ++i) {
            const auto [client_end, server_end] = test::tcp_pair();
            Client& c = this->clients[static_cast<std::size_t>(i)];
            c.fd = client_end;
            c.got.reserve(1 << 12);
            c.session = std::make_shared<Session>(worker, Socket(worker.loop, server_end, true));
            c.session->start();
        }
        shared.clients = clients;
        count = clients;
    }
    ~Rig() {
        for (int i = 0; i < count; ++i) {
            Client& c = clients[static_cast<std::size_t>(i)];
            c.session->stop();
            c.session.reset();
            ::close(c.fd);
        }
        worker.loop.run_once(std::chrono::milliseconds(0));
    }

    void send(int i, std::string_view bytes) {
        REQUIRE(::send(clients[static_cast<std::size_t>(i)].fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
    }
    // A template, not std::function: that would allocate in the round trips.
    template <class Done>
    void run_until(Done done) {
        const auto deadline = clock::now() + std::chrono::seconds(2);
        while (!done()) {
            REQUIRE(clock::now() < deadline);
            worker.loop.run_once(std::chrono::milliseconds(1));
            redis.serve();
        }
    }
    std::string& received(int i) {
        Client& c = clients[static_cast<std::size_t>(i)];
        char buf[4096];
        for (;;) {
            const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0)
                c.closed = true;
            if (n <= 0)
                break;
            c.got.append(buf, static_cast<std::size_t>(n));
        }
        return c.got;
    }

    ScriptedRedis redis;
    conf::Config config;
    Shared shared;
    Worker worker;
    std::array<Client, 4> clients;
    int count = 0;
};

} // namespace

TEST_CASE("sessions sharing one link each get their own replies, in order") {
    Rig rig(3);
    const std::string k0 = get(0) + get(1), k1 = get(10) + get(11) + get(12), k2 = get(20);
    rig.send(0, k0);
    rig.send(1, k1);
    rig.send(2, k2);
    rig.run_until([&] {
        return rig.received(0).size() >= 8 && rig.received(1).size() >= 15 && rig.received(2).size() >= 5;
    });
    CHECK(rig.received(0) == "+k0\r\n+k1\r\n");
    CHECK(rig.received(1) == "+k10\r\n+k11\r\n+k12\r\n");
    CHECK(rig.received(2) == "+k20\r\n");
    CHECK(rig.redis.accepted == 1); // one connection for the three
    CHECK(rig.redis.table_asked);
    CHECK(rig.worker.shared_links.front()->counters().requests == 6);
}

TEST_CASE("requests read in one turn reach Redis in one write") {
    Rig rig(3);
    rig.send(0, get(1)); // connects the link
    rig.run_until([&] { return rig.received(0).size() >= 5; });
    const auto writes = rig.worker.shared_links.front()->counters().writes;
    for (int i = 0; i < 3; ++i)
        rig.send(i, get(i));
    ::usleep(20000); // (all three are in the proxy's sockets before its next turn)
    rig.run_until([&] { return rig.received(2).size() >= 5 && rig.received(1).size() >= 5; });
    CHECK(rig.worker.shared_links.front()->counters().writes == writes + 1);
}

TEST_CASE("a shared round trip allocates nothing per request") {
    Rig rig(3);
    auto round_trips = [&](int rounds) {
        std::size_t allocated = 0;
        for (int round = 0; round < rounds; ++round) {
            for (int i = 0; i < 3; ++i)
                rig.clients[static_cast<std::size_t>(i)].got.clear();
            const auto before = test::allocations();
            rig.send(0, "*2\r\n$3\r\nGET\r\n$2\r\nk0\r\n");
            rig.send(1, "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
            rig.send(2, "*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n");
            rig.run_until([&] {
                return rig.received(0).size() == 5 && rig.received(1).size() == 10 && rig.received(2).size() == 5;
            });
            allocated += test::allocations() - before;
        }
        return allocated;
    };
    round_trips(50); // warm: buffers, rings, the link's queues
    CHECK(round_trips(200) == 0);
}

TEST_CASE("a broken link fails each waiting request once; the next request connects anew") {
    Rig rig(2);
    rig.send(0, get(1));
    rig.send(1, get(2));
    rig.run_until([&] { return rig.received(0).size() >= 5 && rig.received(1).size() >= 5; });
    rig.redis.hold = true;
    rig.send(0, get(3) + get(4)); // due when the link breaks
    rig.run_until([&] { return rig.redis.requests == 4; });
    rig.redis.drop(); // Redis closes the connection (CLIENT KILL, a restart)
    rig.run_until([&] {
        rig.received(0);
        return rig.clients[0].closed;
    });
    CHECK(rig.received(0) == "+k1\r\n"); // nothing for the two lost: the client sees a closed connection
    CHECK(rig.worker.shared_links.front()->counters().failures == 1);
    // The other session had nothing due: it goes on, on a new connection.
    rig.redis.hold = false;
    rig.send(1, get(5));
    rig.run_until([&] { return rig.received(1).size() >= 10; });
    CHECK(rig.received(1) == "+k2\r\n+k5\r\n");
    CHECK_FALSE(rig.clients[1].closed);
    CHECK(rig.redis.accepted == 2);
}
