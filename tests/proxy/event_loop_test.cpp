// The proxy threads' event loop (proxy/event_loop.hpp): the timer queue alone
// on made-up times, then the loop with real socket pairs: what the socket
// says about readiness after each read and write, a FIN that arrives with the
// data, posts from another thread, stop(), and events for a socket closed in
// the same turn.
#include "proxy/event_loop.hpp"
#include "tcp_pair.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace redvip::proxy;
using namespace std::chrono_literals;

namespace {

const Clock::time_point t0{};

// Both ends of a connected stream socket pair; `a` goes to the loop.
struct Pair {
    int a = -1, b = -1;
    Pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        a = fds[0];
        b = fds[1];
    }
    ~Pair() {
        if (b >= 0)
            ::close(b);
    }
    void send(std::string_view bytes) const {
        REQUIRE(::send(b, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    }
};

// The same over TCP on loopback, as clients come.
struct TcpPair : Pair {
    TcpPair() {
        ::close(a);
        ::close(b);
        std::tie(b, a) = test::tcp_pair();
    }
};

struct Counter final : IoHandler {
    int calls = 0;
    std::function<void()> then;
    void on_io() override {
        ++calls;
        if (then)
            then();
    }
};

// Turns the loop until `done`, at most 2 s.
template <class Done>
void run_until(EventLoop& loop, Done done) {
    const auto deadline = Clock::now() + 2s;
    while (!done()) {
        REQUIRE(Clock::now() < deadline);
        loop.run_once(10ms);
    }
}

} // namespace

TEST_CASE("timers run earliest first, ties in the order added, cancelled ones never") {
    TimerQueue q;
    std::vector<int> ran;
    q.add(t0 + 30ms, [&] { ran.push_back(3); });
    q.add(t0 + 10ms, [&] { ran.push_back(1); });
    auto cancelled = q.add(t0 + 20ms, [&] { ran.push_back(99); });
    q.add(t0 + 20ms, [&] { ran.push_back(2); });
    CHECK(q.cancel(cancelled));
    CHECK_FALSE(q.cancel(cancelled)); // once
    REQUIRE(q.next().has_value());
    CHECK(*q.next() == t0 + 10ms);

    CHECK(q.run_due(t0 + 5ms) == 0);
    CHECK(q.run_due(t0 + 20ms) == 2);
    CHECK(ran == std::vector<int>{1, 2});
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(ran == std::vector<int>{1, 2, 3});
    CHECK_FALSE(q.next().has_value());
    CHECK_FALSE(q.cancel(TimerQueue::Handle{})); // the empty handle
}

TEST_CASE("a timer its callback adds waits for the next call, even when already due") {
    TimerQueue q;
    int runs = 0;
    std::function<void()> again = [&] {
        ++runs;
        q.add(t0, again); // due at once: would spin forever in one call
    };
    q.add(t0, again);
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(runs == 1);
    CHECK(q.size() == 1);
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK(runs == 2);
}

TEST_CASE("a callback may cancel a later timer that is due in the same call") {
    TimerQueue q;
    bool second = false;
    TimerQueue::Handle later;
    q.add(t0 + 1ms, [&] { q.cancel(later); });
    later = q.add(t0 + 2ms, [&] { second = true; });
    CHECK(q.run_due(t0 + 1s) == 1);
    CHECK_FALSE(second);
}

TEST_CASE("a short read means drained; the next data wakes the handler again") {
    EventLoop loop;
    Pair p;
    Socket s(loop, p.a, true);
    Counter h;
    s.set_handler(&h);
    CHECK_FALSE(s.readable());

    p.send("PING\r\n");
    run_until(loop, [&] { return s.readable(); });
    CHECK(h.calls >= 1);
    char buf[64];
    IoResult r = s.read(buf, sizeof buf);
    CHECK(r.bytes == 6);
    CHECK_FALSE(r.failed());
    CHECK_FALSE(s.readable()); // 6 < 64: nothing is left, and no read is tried to learn it

    const int before = h.calls;
    p.send("PING\r\n");
    run_until(loop, [&] { return h.calls > before; });
    CHECK(s.readable());
    CHECK(s.read(buf, sizeof buf).bytes == 6);
}

TEST_CASE("a full read leaves the socket readable; EAGAIN clears it") {
    EventLoop loop;
    Pair p;
    Socket s(loop, p.a, true);
    p.send("12345678");
    run_until(loop, [&] { return s.readable(); });
    char buf[4];
    CHECK(s.read(buf, 4).bytes == 4);
    CHECK(s.readable()); // exactly full: there may be more
    CHECK(s.read(buf, 4).bytes == 4);
    CHECK(s.readable());
    IoResult r = s.read(buf, 4);
    CHECK(r.bytes == 0);
    CHECK_FALSE(r.failed()); // would block
    CHECK_FALSE(s.readable());
}

TEST_CASE("a FIN that comes with the data is never missed") {
    EventLoop loop;
    Pair p;
    Socket s(loop, p.a, true);
    p.send("QUIT\r\n");
    REQUIRE(::shutdown(p.b, SHUT_WR) == 0); // both before the loop looks
    run_until(loop, [&] { return s.readable(); });
    char buf[64];
    IoResult r = s.read(buf, sizeof buf);
    CHECK(r.bytes == 6);
    CHECK(s.readable()); // short, but the peer closed: read on
    r = s.read(buf, sizeof buf);
    CHECK(r.eof);
}

TEST_CASE("a write the socket cannot take waits for EPOLLOUT") {
    EventLoop loop;
    Pair p;
    Socket s(loop, p.a, true);
    Counter h;
    s.set_handler(&h);
    const std::string chunk(64 * 1024, 'x');
    std::size_t written = 0;
    for (int i = 0; i < 1000 && s.writable(); ++i)
        written += s.write(chunk).bytes;
    REQUIRE_FALSE(s.writable()); // the pair's buffers are full
    loop.run_once(0ms);
    const int before = h.calls;
    std::string sink(written, '\0');
    std::size_t drained = 0;
    run_until(loop, [&] {
        const ssize_t n = ::recv(p.b, sink.data(), sink.size(), 0);
        if (n > 0)
            drained += static_cast<std::size_t>(n);
        return s.writable();
    });
    CHECK(h.calls > before);
    CHECK(drained > 0);
    CHECK(s.write("more").bytes == 4);
}

TEST_CASE("a write to a closed peer fails with EPIPE, never SIGPIPE") {
    EventLoop loop;
    Pair p;
    Socket s(loop, p.a, true);
    ::close(p.b);
    p.b = -1;
    IoResult r = s.write("x");
    CHECK(r.error == EPIPE);
}

TEST_CASE("posts from another thread run on the loop's thread, in order; stop() ends run()") {
    EventLoop loop;
    std::vector<int> ran;
    std::thread::id ran_on;
    std::thread poster([&] {
        for (int i = 0; i < 100; ++i)
            loop.post([&, i] {
                ran.push_back(i);
                ran_on = std::this_thread::get_id();
            });
        loop.post([&] { loop.stop(); });
    });
    loop.run(); // returns only after the stop
    poster.join();
    REQUIRE(ran.size() == 100);
    for (int i = 0; i < 100; ++i)
        CHECK(ran[static_cast<std::size_t>(i)] == i);
    CHECK(ran_on == std::this_thread::get_id());
}

// A new socket is queued writable at once; bytes that arrive later join
// that event, ahead of the eventfd of a post made in between. The post must
// still run first: a state change posted before a client's bytes arrive
// applies to them.
TEST_CASE("a post runs before a socket event the loop learns of after it") {
    EventLoop loop;
    loop.run_once(0ms); // what the kernel queued for the loop itself is taken
    TcpPair pair;
    Socket socket(loop, pair.a, true);
    std::vector<std::string> order;
    Counter handler;
    handler.then = [&] {
        if (socket.readable())
            order.push_back("read");
    };
    socket.set_handler(&handler);
    std::thread poster([&] { loop.post([&] { order.push_back("post"); }); });
    poster.join();
    pair.send("x");
    run_until(loop, [&] { return order.size() == 2; });
    CHECK(order == std::vector<std::string>{"post", "read"});
}

TEST_CASE("stop() from another thread wakes a loop that waits with no timer") {
    EventLoop loop;
    std::thread stopper([&] {
        std::this_thread::sleep_for(20ms);
        loop.stop();
    });
    loop.run();
    stopper.join();
    CHECK(loop.stopped());
}

TEST_CASE("a timer on the loop fires once its deadline passes, and not when cancelled") {
    EventLoop loop;
    Timer fired_timer(loop), cancelled(loop);
    bool fired = false, other = false;
    fired_timer.after(5ms, [&] { fired = true; });
    cancelled.after(5ms, [&] { other = true; });
    cancelled.cancel();
    CHECK(fired_timer.pending());
    run_until(loop, [&] { return fired; });
    CHECK_FALSE(fired_timer.pending());
    loop.run_once(10ms);
    CHECK_FALSE(other);
    {
        Timer gone(loop);
        gone.after(1ms, [&] { other = true; });
    } // destroyed: cancelled
    loop.run_once(10ms);
    CHECK_FALSE(other);
}

TEST_CASE("an event for a socket closed earlier in the same turn is dropped") {
    EventLoop loop;
    Pair p1, p2;
    auto s1 = std::make_unique<Socket>(loop, p1.a, true);
    auto s2 = std::make_unique<Socket>(loop, p2.a, true);
    loop.run_once(0ms); // the writable events of registration
    Counter h1, h2;
    // Whichever comes first closes the other: the other's event is dropped.
    h1.then = [&] { s2.reset(); };
    h2.then = [&] { s1.reset(); };
    s1->set_handler(&h1);
    s2->set_handler(&h2);
    p1.send("a");
    p2.send("b");
    ::usleep(1000);
    loop.run_once(100ms);
    CHECK(h1.calls + h2.calls == 1);
    // A new socket may take the freed slot: an old event never reaches it.
    Pair p3;
    Socket s3(loop, p3.a, true);
    Counter h3;
    s3.set_handler(&h3);
    loop.run_once(0ms);
    CHECK(h3.calls <= 1); // its own registration event at most
}

TEST_CASE("release_later keeps an object until the turn has dispatched every event") {
    EventLoop loop;
    auto object = std::make_shared<int>(7);
    std::weak_ptr<int> watch = object;
    loop.post([&] {
        loop.release_later(std::move(object));
        CHECK_FALSE(watch.expired()); // still here for the rest of the turn
    });
    run_until(loop, [&] { return watch.expired(); });
}
