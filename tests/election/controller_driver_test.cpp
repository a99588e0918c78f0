// The controller's driver on a real io_context with FakeRolePorts: steps run
// in order on the ports, completions come back, backoff timers fire, health
// reaches the election posted, the proxy's pool events cross threads.
#include "election/role/driver.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <thread>

using namespace redvip::election;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using Calls = std::vector<std::string>;

// Records every call; the test completes the pending step or read when it
// chooses, always from the io_context (never inside the call).
struct FakeRolePorts {
    asio::io_context* io = nullptr; // where the reads' answers are posted
    Calls calls;
    StepDone pending;
    RedisExecutor::ReadDone pending_read;
    int reads = 0;

    // `poll`: offer read_replication (the driver then polls it itself).
    RolePorts ports(bool poll) {
        RolePorts p;
        p.drain_proxy = [this](StepDone d) { take("drain", std::move(d)); };
        p.set_proxy = [this](ProxyMode m, const std::optional<redvip::conf::Endpoint>&) {
            calls.push_back("proxy " + std::string(to_string(m)));
        };
        p.acquire_vip = [this](StepDone d) { take("VIP acquire", std::move(d)); };
        p.release_vip = [this](StepDone d) { take("VIP release", std::move(d)); };
        p.promote_redis = [this](StepDone d) { take("promote", std::move(d)); };
        p.replicate_redis = [this](const redvip::conf::Endpoint& e, StepDone d) {
            take("replicate " + e.to_string(), std::move(d));
        };
        // CheckPeers: the local Redis a replica whose master is gone, the
        // peer's Redis refusing: a plain promotion.
        p.read_local = [this](RedisExecutor::ReadDone d) {
            ReplicationFacts f;
            f.role = RedisRole::replica;
            f.master_host = "10.0.0.2";
            f.master_port = 6379;
            f.master_link_status = MasterLink::down;
            asio::post(*io, [d = std::move(d), f] { d({f, "", false}); });
        };
        p.read_peer = [this](const redvip::conf::Endpoint&, RedisExecutor::ReadDone d) {
            asio::post(*io, [d = std::move(d)] { d({std::nullopt, "Connection refused", true}); });
        };
        if (poll)
            p.read_replication = [this](RedisExecutor::ReadDone d) {
                ++reads;
                pending_read = std::move(d);
            };
        return p;
    }
    void take(std::string call, StepDone done) {
        REQUIRE_FALSE(pending); // one step at a time
        calls.push_back(std::move(call));
        pending = std::move(done);
    }
    void finish(const StepResult& result = StepResult::success()) {
        REQUIRE(pending);
        std::exchange(pending, nullptr)(result);
    }
};

redvip::conf::Config config() {
    redvip::conf::Config c;
    c.redis.address = {asio::ip::make_address("10.0.0.1"), 6379};
    c.vrrp.emplace();
    c.vrrp->priority = 120;
    c.peers = {
        {"b", asio::ip::make_address("10.0.0.2"), {asio::ip::make_address("10.0.0.2"), 6379}}};
    c.health.rise = 1;
    c.health.fall = 2;
    c.health.weight = 0;
    c.health.interval = std::chrono::milliseconds{20};
    return c;
}

struct Rig {
    asio::io_context io;
    FakeRolePorts fake;
    std::vector<std::string> election;   // what the election was told: faults
    std::vector<int> priorities;         // and priorities
    ControllerDriver driver;

    explicit Rig(bool poll = true)
        : fake{&io, {}, {}, {}, 0}
        , driver(io.get_executor(), config(), fake.ports(poll),
                 ElectionPort{[this](bool f) { election.push_back(f ? "fault" : "ok"); },
                              [this](std::uint8_t p) { priorities.push_back(p); }},
                 std::make_shared<spdlog::logger>(
                     "role", std::make_shared<spdlog::sinks::null_sink_mt>())) {}

    void settle() {
        io.restart();
        io.poll();
    }
    // Runs the context until `done()` or a bound passes.
    template <typename F> bool run_until(F done, std::chrono::milliseconds bound = 2s) {
        const auto end = std::chrono::steady_clock::now() + bound;
        while (!done() && std::chrono::steady_clock::now() < end) {
            io.restart();
            io.run_for(5ms);
        }
        return done();
    }
};

} // namespace

TEST_CASE("the master sequence runs on the ports, each step after the last completed") {
    Rig r;
    RoleListener& listener = r.driver;
    listener.become_master(false);
    CHECK(r.fake.calls == Calls{"proxy HOLDING"});
    r.settle(); // CheckPeers: the local Redis and the peer's are read
    CHECK(r.fake.calls == Calls{"proxy HOLDING", "promote"});
    r.fake.finish();
    CHECK(r.fake.calls.back() == "VIP acquire");
    bool settled = false;
    r.driver.when_settled([&] { settled = true; });
    r.settle();
    CHECK_FALSE(settled);
    r.fake.finish();
    r.settle();
    CHECK(settled);
    CHECK(r.fake.calls == Calls{"proxy HOLDING", "promote", "VIP acquire", "proxy SERVING"});
    CHECK(r.driver.status().proxy_mode == ProxyMode::serving);
}

TEST_CASE("a backup follows the peer's Redis; a stale completion is dropped after supersession") {
    Rig r;
    r.driver.become_master(false);
    r.settle();
    r.driver.become_backup(MasterInfo{IpAddr::v4(10, 0, 0, 2), 100});
    CHECK(r.fake.calls.back() == "proxy FENCED");
    r.fake.finish(); // the promotion
    r.fake.finish(); // the release
    CHECK(r.fake.calls == Calls{"proxy HOLDING", "promote", "proxy FENCED", "VIP release",
                                "replicate 10.0.0.2:6379"});
}

TEST_CASE("a promotion that keeps failing is retried on timers, then reported as a fault") {
    Rig r;
    r.driver.become_master(false);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        REQUIRE(r.run_until([&] { return r.fake.pending != nullptr; }));
        r.fake.finish(StepResult::failure("Connection refused"));
    }
    REQUIRE(r.run_until([&] { return !r.election.empty(); }));
    CHECK(r.election == std::vector<std::string>{"fault"});
    CHECK(r.fake.calls == Calls{"proxy HOLDING", "promote", "promote", "promote", "proxy FENCED"});
    CHECK(r.driver.health().fault());
    // The election answers with Fault: the fault plan runs.
    r.driver.enter_fault();
    CHECK(r.fake.calls == Calls{"proxy HOLDING", "promote", "promote", "promote", "proxy FENCED",
                                "proxy FENCED", "VIP release"});
}

TEST_CASE("health reports from a proxy thread reach the election, posted") {
    Rig r;
    std::thread proxy_thread([&] {
        r.driver.on_redis_check({false, false, "Connection refused", {}, true, std::nullopt});
    });
    proxy_thread.join();
    CHECK(r.election.empty()); // posted, not called from the proxy's thread
    r.settle();
    CHECK(r.election == std::vector<std::string>{"fault"});         // refused: at once
    r.driver.on_redis_check({true, true, "", 300us, false, std::nullopt}); // rise = 1
    r.settle();
    CHECK(r.election == std::vector<std::string>{"fault", "ok"});
    // A pool connection closed or timed out is left to the next check (the
    // refusal is a flag from the pool, not a match on the text)...
    r.driver.on_redis_check({false, false, "connection closed by Redis", {}, false, std::nullopt});
    r.driver.on_redis_check({false, false, "connect timed out", {}, false, std::nullopt});
    // ...and one failed periodic check is not yet fall = 2.
    r.driver.on_redis_check({true, false, "timed out after 500 ms", {}, false, std::nullopt});
    r.settle();
    CHECK(r.election.size() == 2);
    r.driver.on_redis_check({true, false, "timed out after 500 ms", {}, false, std::nullopt});
    r.settle();
    CHECK(r.election == std::vector<std::string>{"fault", "ok", "fault"});
}

TEST_CASE("a periodic check's facts drive drift repair") {
    Rig r;
    r.driver.become_backup(MasterInfo{IpAddr::v4(10, 0, 0, 2), 100});
    r.fake.finish();                  // release
    r.fake.finish();                  // replicate
    std::this_thread::sleep_for(2ms); // the next check starts after the plan completed
    ReplicationFacts facts;
    facts.role = RedisRole::replica; // set to follow someone else by hand
    facts.master_host = "10.0.0.9";
    facts.master_port = 6379;
    r.driver.on_redis_check({true, true, "", 100us, false, facts});
    r.settle();
    CHECK(r.fake.calls.back() == "VIP release");
    r.fake.finish();
    CHECK(r.fake.calls.back() == "replicate 10.0.0.2:6379");
    CHECK(r.driver.controller().facts() == facts);
}

TEST_CASE("without ports.read_replication the driver polls nothing") {
    Rig r(false);
    r.driver.start();
    r.run_until([] { return false; }, 60ms);
    CHECK(r.fake.reads == 0);
}

TEST_CASE("INFO replication is polled every interval and feeds health and facts") {
    Rig r;
    r.driver.start();
    CHECK(r.fake.reads == 1);
    r.fake.pending_read({std::nullopt, "connect to 10.0.0.1:6379: Connection refused", true});
    r.settle();
    CHECK(r.election == std::vector<std::string>{"fault"});
    REQUIRE(r.run_until([&] { return r.fake.reads >= 2; }));
    ReplicationFacts facts;
    facts.role = RedisRole::master;
    r.fake.pending_read({facts, "", false});
    r.settle();
    CHECK(r.election == std::vector<std::string>{"fault", "ok"});
    CHECK(r.driver.controller().facts() == facts);
    r.driver.stop();
    const int reads = r.fake.reads;
    r.fake.pending_read = nullptr;
    r.run_until([] { return false; }, 60ms);
    CHECK(r.fake.reads == reads); // stopped: no more polls
}
