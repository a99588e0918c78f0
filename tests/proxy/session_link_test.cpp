// The session against the BackendLink interface (link.hpp), with a fake link
// in memory and a real client socket on loopback (TCP): replies reach the client in
// request order, a closed link fails every pending request exactly once, an
// unreachable one leaves the session usable, and a pipelined round trip
// allocates nothing per request.
#include "alloc_counter.hpp"
#include "tcp_pair.hpp"
#include "proxy/link.hpp"
#include "proxy/session.hpp"
#include "proxy/worker.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <functional>
#include <string>
#include <vector>

using namespace redvip;
using namespace redvip::proxy;

namespace {

using clock = std::chrono::steady_clock;

// A link in memory: records what the session sends, answers when the test
// says. Its calls into the sink are posted, as a real link's come from its
// event loop.
class FakeBackendLink final : public BackendLink {
public:
    explicit FakeBackendLink(EventLoop& loop) : loop_(loop) { replies_.reserve(kReplyRoom); }

    void attach(ReplySink& sink, std::weak_ptr<void> keepalive) override {
        sink_ = &sink;
        keepalive_ = std::move(keepalive);
    }
    void detach() noexcept override { sink_ = nullptr; }

    bool connected() const noexcept override { return state_ == State::bound; }
    bool connecting() const noexcept override { return state_ == State::connecting; }
    void connect() override {
        state_ = State::connecting;
        ++connects;
        later([this] {
            if (refuse_connect) {
                state_ = State::none;
                return fail(LinkFailure::unreachable, "refused by the test");
            }
            state_ = State::bound;
            sink_->on_link_ready();
        });
    }
    void expect(const PendingRequest& request) override { pending_.push(request); }
    bool send(std::string_view bytes) override {
        REQUIRE(connected());
        sent.append(bytes);
        if (takes_at_once)
            return true; // as a socket that takes the whole request: no on_sent()
        later([this] { sink_->on_sent(); });
        return false;
    }
    void unpaired() override {}
    const PendingQueue& pending() const noexcept override { return pending_; }

    std::string_view lend_replies() override {
        if (lent_ > 0)
            return {};
        lent_ = replies_.size();
        return replies_;
    }
    void replies_written() override {
        replies_.erase(0, lent_);
        lent_ = 0;
    }
    bool replies_lent() const noexcept override { return lent_ > 0; }
    bool replies_ready() const noexcept override { return replies_.size() > lent_; }
    bool holds_replies() const noexcept override { return !replies_.empty(); }
    bool holds_buffer() const noexcept override { return false; }
    void release_buffer() override {}
    void release(bool clean) override {
        ++releases;
        released_clean = clean;
        state_ = State::none;
    }

    // The test's side: Redis answers the oldest request, or the link breaks.
    void answer(std::string_view reply) {
        REQUIRE(sink_ != nullptr);
        REQUIRE(!pending_.empty());
        REQUIRE(replies_.size() + reply.size() <= kReplyRoom); // lent bytes never move
        replies_.append(reply);
        const PendingRequest answered = pending_.front();
        pending_.pop();
        sink_->on_answered(answered, clock::now());
        sink_->on_replies(clock::now());
    }
    // As a real link does with one read holding several replies.
    void answer_batch(const std::vector<std::string_view>& replies) {
        for (std::string_view reply : replies) {
            REQUIRE(!pending_.empty());
            replies_.append(reply);
            const PendingRequest answered = pending_.front();
            pending_.pop();
            sink_->on_answered(answered, clock::now());
        }
        sink_->on_replies(clock::now());
    }
    void abort(std::string_view why) override { fail(LinkFailure::timed_out, why); }
    void stop_waiting(std::string_view why) override {
        if (state_ == State::connecting)
            fail(LinkFailure::unreachable, why);
    }
    void break_link(std::string_view why) { fail(LinkFailure::lost, why); }

    std::string sent;
    int connects = 0, releases = 0, unanswered = 0;
    bool refuse_connect = false, released_clean = false;
    bool takes_at_once = false; // send() returns true

private:
    static constexpr std::size_t kReplyRoom = 1 << 16;
    enum class State { none, connecting, bound };

    void later(std::function<void()> f) {
        loop_.post([this, keep = keepalive_.lock(), f = std::move(f)] {
            if (sink_ != nullptr)
                f();
        });
    }
    void fail(LinkFailure kind, std::string_view why) {
        state_ = State::none;
        const LinkError error{kind, why, false};
        pending_.fail_all([&](const PendingRequest& request) {
            ++unanswered;
            sink_->on_unanswered(request, error);
        });
        sink_->on_link_failed(error);
    }

    EventLoop& loop_;
    ReplySink* sink_ = nullptr;
    std::weak_ptr<void> keepalive_;
    State state_ = State::none;
    PendingQueue pending_;
    std::string replies_;
    std::size_t lent_ = 0;
};

// A worker with one session on a loopback connection whose client end the
// test holds, and whose link is a FakeBackendLink.
struct Rig {
    Rig() : shared{config, std::make_shared<spdlog::logger>("test")}, worker(shared, 1, {}) {
        const auto [client_end, server_end] = test::tcp_pair();
        client = client_end;
        shared.clients = 1;
        link = std::make_shared<FakeBackendLink>(worker.loop);
        session = std::make_shared<Session>(worker, Socket(worker.loop, server_end, true), link);
        session->start();
    }
    ~Rig() {
        if (session)
            session->stop();
        session.reset();
        worker.loop.run_once(std::chrono::milliseconds(0)); // the fake link's posts let go of the session
        ::close(client);
    }

    void send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(client, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            REQUIRE(n > 0);
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Runs the loop until `done` (or fails after 2 s): bounded, never a bare
    // sleep. (A template: a std::function would allocate in the round trips.)
    template <class Done>
    void run_until(Done done) {
        const auto deadline = clock::now() + std::chrono::seconds(2);
        while (!done()) {
            REQUIRE(clock::now() < deadline);
            worker.loop.run_once(std::chrono::milliseconds(1));
        }
    }

    // What the client has received so far (and whether the proxy closed it).
    std::string& received() {
        char buf[4096];
        for (;;) {
            const ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0)
                closed = true;
            if (n <= 0)
                break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return got;
    }
    void receive(std::size_t bytes) {
        run_until([&] { return received().size() >= bytes; });
    }

    conf::Config config;
    Shared shared;
    Worker worker;
    int client = -1;
    std::shared_ptr<FakeBackendLink> link;
    std::shared_ptr<Session> session;
    std::string got;
    bool closed = false;
};

std::string get(int i) {
    const std::string key = "k" + std::to_string(i);
    return "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
}

} // namespace

TEST_CASE("replies reach the client in request order, byte for byte") {
    Rig rig;
    SUBCASE("sends completed later") {}
    SUBCASE("sends taken at once") { rig.link->takes_at_once = true; }
    std::string pipeline;
    for (int i = 0; i < 5; ++i)
        pipeline += get(i);
    rig.send(pipeline);
    rig.run_until([&] { return rig.link->pending().size() == 5 && rig.link->sent.size() == pipeline.size(); });
    CHECK(rig.link->sent == pipeline); // forwarded verbatim, in order
    CHECK(rig.link->connects == 1);

    std::string expected;
    for (int i = 0; i < 5; ++i) {
        const std::string reply = "$2\r\nv" + std::to_string(i) + "\r\n";
        rig.link->answer(reply);
        expected += reply;
        if (i == 2) // some written while others are still owed
            rig.receive(expected.size());
    }
    rig.receive(expected.size());
    CHECK(rig.got == expected);
    CHECK(rig.link->pending().empty());
    CHECK_FALSE(rig.closed);
}

// A send taken at once (no on_sent() follows) must leave nothing counted in
// flight: the session reads and forwards the client's next request, and the
// link goes back clean.
TEST_CASE("after a send taken at once the session forwards the next request") {
    Rig rig;
    rig.link->takes_at_once = true;
    std::string all, expected;
    for (int i = 0; i < 3; ++i) {
        rig.send(get(i));
        all += get(i);
        rig.run_until([&] { return rig.link->sent.size() == all.size(); });
        rig.link->answer("+r" + std::to_string(i) + "\r\n");
        expected += "+r" + std::to_string(i) + "\r\n";
        rig.receive(expected.size());
    }
    CHECK(rig.link->sent == all);
    CHECK(rig.got == expected);
    rig.session->stop();
    CHECK(rig.link->released_clean); // nothing was left counted in flight
}

TEST_CASE("a closed link fails every pending request exactly once, after the replies before it") {
    Rig rig;
    std::string pipeline;
    for (int i = 0; i < 4; ++i)
        pipeline += get(i);
    rig.send(pipeline);
    rig.run_until([&] { return rig.link->pending().size() == 4; });
    rig.link->answer("+first\r\n");
    rig.link->break_link("boom");
    CHECK(rig.link->unanswered == 3);
    CHECK(rig.link->pending().empty());

    // As from Redis itself: the reply it sent, then the close (a connection
    // error to the client's library, which it may retry), no error reply.
    rig.run_until([&] { return rig.received().size() >= 8 && rig.closed; });
    CHECK(rig.got == "+first\r\n");
    CHECK(rig.worker.counters.backend_errors == 1);
    CHECK(rig.link->releases == 1); // the session stopped and released its link once
}

TEST_CASE("by default no backend timeout cuts a slow command") {
    Rig rig;
    rig.send(get(1));
    rig.run_until([&] { return rig.link->pending().size() == 1 && rig.link->sent.size() == get(1).size(); });
    rig.session->check_timeouts(clock::now() + std::chrono::hours(1));
    CHECK(rig.link->unanswered == 0);
    CHECK(rig.worker.counters.backend_timeouts == 0);
    CHECK(rig.link->pending().size() == 1);
}

// check_timeouts() is handed the time, so the timeout is tested without waiting.
TEST_CASE("a backend timeout answers each request left with an error, then closes") {
    Rig rig;
    rig.config.proxy.backend_timeout = std::chrono::milliseconds(5000);
    rig.send(get(1) + get(2));
    rig.run_until([&] { return rig.link->pending().size() == 2 && rig.link->sent.size() == 2 * get(1).size(); });
    const auto timeout = rig.config.proxy.backend_timeout;

    rig.session->check_timeouts(clock::now() + timeout / 2);
    CHECK(rig.link->unanswered == 0); // not yet
    rig.session->check_timeouts(clock::now() + timeout + std::chrono::milliseconds(1));
    CHECK(rig.link->unanswered == 2);
    CHECK(rig.worker.counters.backend_timeouts == 1);

    const std::string error = "-ERR redvip: connection to Redis lost: Redis did not answer within " +
                              std::to_string(timeout.count()) + " ms\r\n";
    rig.run_until([&] { return rig.received().size() >= 2 * error.size() && rig.closed; });
    CHECK(rig.got == error + error);
}

TEST_CASE("an unreachable Redis closes the client, as a refused connection would") {
    Rig rig;
    rig.link->refuse_connect = true;
    rig.send(get(1) + get(2));
    rig.run_until([&] { return rig.received().empty() && rig.closed; });
    CHECK(rig.got.empty());
    CHECK(rig.link->unanswered == 2);
    CHECK(rig.worker.counters.backend_errors == 1);
}

TEST_CASE("a subscriber whose Redis cannot be reached is closed, not left in normal mode") {
    Rig rig;
    rig.link->refuse_connect = true;
    rig.send("*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nx\r\n");
    rig.run_until([&] { return rig.received().empty() && rig.closed; });
    CHECK(rig.got.empty()); // so the client reconnects and subscribes again
}

TEST_CASE("QUIT after SUBSCRIBE goes to Redis, whose close is no lost link") {
    Rig rig;
    const std::string subscribe = "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nx\r\n";
    rig.send(subscribe);
    rig.run_until([&] { return rig.link->sent == subscribe; });
    rig.link->answer("*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n");
    // Replies no longer pair with requests: only Redis's +OK, in its stream,
    // comes after every earlier reply, so QUIT goes on (and so does RESET).
    const std::string ping_quit = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n";
    rig.send(ping_quit);
    rig.run_until([&] { return rig.link->sent == subscribe + ping_quit; });
    rig.link->break_link("connection closed by Redis");
    rig.run_until([&] {
        rig.received(); // (reads to the close)
        return rig.closed;
    });
    CHECK(rig.worker.counters.backend_errors == 0);
}

// As Redis does with `nc -N` or a script that shuts down its sending side:
// the commands sent whole are answered, the one cut short is dropped, then
// the close.
TEST_CASE("a half-closed client gets the replies to what it sent whole, then the close") {
    Rig rig;
    const std::string whole = get(1) + get(2);
    rig.send(whole + "*2\r\n$3\r\nGET");
    REQUIRE(::shutdown(rig.client, SHUT_WR) == 0);
    rig.run_until([&] { return rig.link->pending().size() == 2 && rig.link->sent.size() == whole.size(); });
    rig.received();
    CHECK_FALSE(rig.closed); // two replies are owed
    rig.link->answer("+a\r\n");
    rig.link->answer("+b\r\n");
    rig.run_until([&] { return rig.received().size() >= 8 && rig.closed; });
    CHECK(rig.got == "+a\r\n+b\r\n");
    CHECK(rig.link->sent == whole); // nothing of the cut request went on
}

TEST_CASE("a half-closed client blocked in a command is closed at once") {
    Rig rig;
    const std::string blpop = "*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n";
    rig.send(blpop);
    rig.run_until([&] { return rig.link->sent.size() == blpop.size(); });
    REQUIRE(::shutdown(rig.client, SHUT_WR) == 0);
    rig.run_until([&] { return rig.received().empty() && rig.closed; });
    CHECK(rig.link->releases == 1);
    CHECK(rig.link->pending().size() == 1); // still due: a real link closes such a connection
}

TEST_CASE("a clean session gives its link back as reusable") {
    Rig rig;
    rig.send(get(1));
    rig.run_until([&] { return rig.link->pending().size() == 1; });
    rig.link->answer("+ok\r\n");
    rig.receive(5);
    rig.session->stop();
    CHECK(rig.link->releases == 1);
    CHECK(rig.link->released_clean);
}

// A round trip (client read, send, reply, client write) allocates nothing in
// the event loop when the link takes sends at once, and only the fake link's
// posts otherwise; the session itself (framing, the pending ring, lending
// replies) must add none per request: 16 pipelined requests cost what one does.
TEST_CASE("a round trip allocates the same for 1 request as for 16 pipelined") {
    Rig rig;
    SUBCASE("sends completed later") {}
    SUBCASE("sends taken at once") { rig.link->takes_at_once = true; }
    rig.link->sent.reserve(1 << 22);
    rig.got.reserve(1 << 12);
    auto round_trips = [&](int requests) {
        std::string pipeline;
        for (int i = 0; i < requests; ++i)
            pipeline += get(i % 10);
        std::vector<std::string_view> replies(static_cast<std::size_t>(requests), "+OK\r\n");
        std::size_t allocated = 0;
        for (int round = 0; round < 100; ++round) {
            rig.got.clear();
            const std::size_t sent_before = rig.link->sent.size();
            const auto before = test::allocations();
            rig.send(pipeline);
            rig.run_until([&] { return rig.link->sent.size() == sent_before + pipeline.size(); });
            rig.link->answer_batch(replies);
            rig.receive(5 * replies.size());
            allocated += test::allocations() - before;
        }
        return allocated;
    };
    round_trips(1); // warm: buffers, the pending ring
    round_trips(16);
    const std::size_t one = round_trips(1);
    const std::size_t sixteen = round_trips(16);
    CHECK(sixteen == one); // nothing per request
    if (rig.link->takes_at_once)
        CHECK(one == 0); // and nothing per round trip
}
