// The role controller, pure: election outcomes, fake step completions and
// replication facts at explicit times. Every sequence, supersession,
// failures and backoff, an unknown master, never replicating from itself.
#include "election/role/controller.hpp"
#include "vrrp_test_support.hpp"

#include <string>
#include <vector>

using namespace redvip::election;
using namespace redvip::election::test;
using redvip::conf::Endpoint;

namespace {

const Endpoint self_redis = ep("10.0.0.1", 6379);
const Endpoint b_redis = ep("10.0.0.2", 6379);
const Endpoint c_redis = ep("10.0.0.3", 6380);
const IpAddr b_vrrp = v4(10, 0, 0, 2);
const IpAddr c_vrrp = v4(10, 0, 0, 3);

ControllerConfig config() {
    ControllerConfig c;
    c.self_redis = self_redis;
    c.peers = {{"b", boost::asio::ip::make_address("10.0.0.2"), b_redis},
               {"c", boost::asio::ip::make_address("10.0.0.3"), c_redis}};
    return c;
}

MasterInfo master(const IpAddr& address) {
    return MasterInfo{address, 100};
}

// One line per action, what a reader of the log would see.
std::string line(const ControllerAction& a) {
    if (const auto* p = std::get_if<SetProxy>(&a)) return describe(RoleStep{*p});
    if (const auto* r = std::get_if<RunStep>(&a)) return "run " + describe(r->step);
    if (const auto* f = std::get_if<RoleFault>(&a)) return f->fault ? "FAULT" : "fault cleared";
    if (const auto* s = std::get_if<SwitchoverDone>(&a))
        return s->ok ? "switchover done" : "switchover failed";
    if (std::holds_alternative<Notice>(a)) return "notice";
    return {}; // SetEligible, TransitionDone: asserted where they matter
}

using Lines = std::vector<std::string>;

// The controller, a fake clock and the step in flight (as a driver keeps it).
// CheckPeers is answered at once with `local` and no peer read (as if every
// peer were down), unless `manual_check` is set: tests of the data-safety
// rules drive it themselves.
struct Harness {
    Controller controller{config()};
    FakeClock clock;
    std::optional<std::uint64_t> running;
    std::optional<RoleStep> running_step;
    ControllerActions last;
    ControllerActions all; // every action since the last clear
    bool manual_check = false;
    ReplicationFacts local = replica_of_b();

    static ReplicationFacts replica_of_b() {
        ReplicationFacts f;
        f.role = RedisRole::replica;
        f.master_host = "10.0.0.2";
        f.master_port = 6379;
        f.master_link_status = MasterLink::down;
        return f;
    }

    Lines feed(const ControllerActions& actions) {
        last = actions;
        all.insert(all.end(), actions.begin(), actions.end());
        Lines out;
        for (const auto& a : actions) {
            if (const auto* r = std::get_if<RunStep>(&a)) {
                REQUIRE_FALSE(running); // one async step at a time
                running = r->id;
                running_step = r->step;
                if (!manual_check && std::holds_alternative<CheckPeers>(r->step)) {
                    controller.on_replication(local, clock.now, clock.now);
                    for (auto& l : complete()) out.push_back(l);
                    continue;
                }
            }
            if (auto l = line(a); !l.empty()) out.push_back(l);
        }
        last = actions;
        return out;
    }
    Lines elect(const Action& action) { return feed(controller.on_election(action, clock.now)); }
    Lines complete(bool ok = true, std::string error = "boom") {
        REQUIRE(running);
        const auto id = *running;
        running.reset();
        running_step.reset();
        return feed(controller.on_step_done(
            id, ok ? StepResult::success() : StepResult::failure(std::move(error)), clock.now));
    }
    Lines timeout() { return feed(controller.handle_timeout(clock.now)); }
    Lines facts(const ReplicationFacts& f, TimePoint polled_at) {
        return feed(controller.on_replication(f, polled_at, clock.now));
    }
    const RoleTransition& latest() const { return controller.transitions().back(); }
    // Runs the rest of the plan to completion, every step succeeding.
    void finish() {
        while (running)
            complete();
    }
};

ReplicationFacts replica_of(const char* host, std::uint16_t port) {
    ReplicationFacts f;
    f.role = RedisRole::replica;
    f.master_host = host;
    f.master_port = port;
    f.master_link_status = MasterLink::up;
    return f;
}

ReplicationFacts master_facts() {
    ReplicationFacts f;
    f.role = RedisRole::master;
    return f;
}

} // namespace

TEST_CASE("master: HOLDING, REPLICAOF NO ONE, VIP acquire, SERVING, each confirmed first") {
    Harness h;
    CHECK(h.elect(BecomeMaster{}) == Lines{"proxy HOLDING", "run REPLICAOF NO ONE"});
    CHECK(h.controller.proxy_mode() == ProxyMode::holding);
    h.clock.advance(5ms);
    CHECK(h.complete() == Lines{"run VIP acquire"});
    h.clock.advance(7ms);
    CHECK_FALSE(h.controller.settled());
    CHECK(h.complete() == Lines{"proxy SERVING"});
    CHECK(h.controller.settled());
    CHECK(h.controller.proxy_mode() == ProxyMode::serving);
    CHECK(h.controller.vip_held());

    const auto& t = h.latest();
    CHECK(t.goal == Goal::master);
    CHECK(t.outcome == Outcome::done);
    CHECK(*t.finished - t.started == 12ms);
    REQUIRE(t.steps.size() == 5);
    CHECK(t.steps[1].name == "read peers");
    CHECK(t.steps[2].name == "REPLICAOF NO ONE");
    CHECK(t.steps[2].took == 5ms);
    CHECK(t.steps[3].name == "VIP acquire");
    CHECK(t.steps[3].took == 7ms);
    CHECK(t.steps[4].status == StepStatus::done);
}

TEST_CASE("backup: FENCED, VIP release, REPLICAOF the winning advert's peer") {
    Harness h;
    CHECK(h.elect(BecomeBackup{master(c_vrrp)}) == Lines{"proxy FENCED", "run VIP release"});
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.3 6380"});
    CHECK(h.complete().empty());
    CHECK(h.controller.settled());
    CHECK(h.controller.goal() == Goal::backup);
    CHECK(h.controller.goal_master() == c_redis);
    CHECK_FALSE(h.controller.vip_held());
}

TEST_CASE("fault: fenced and released, still following the last master heard") {
    Harness h;
    h.elect(BecomeBackup{master(b_vrrp)});
    h.finish();
    CHECK(h.elect(EnterFault{}) == Lines{"proxy FENCED", "run VIP release"});
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    h.complete();
    CHECK(h.controller.goal() == Goal::fault);
    CHECK(h.latest().outcome == Outcome::done);
}

TEST_CASE("stopped: fenced and released, Redis left as it is") {
    Harness h;
    h.elect(BecomeMaster{});
    h.finish();
    CHECK(h.elect(EnterInitialize{}) == Lines{"proxy FENCED", "run VIP release"});
    CHECK(h.complete().empty());
    CHECK(h.controller.settled());
    CHECK_FALSE(h.controller.vip_held());
}

TEST_CASE("a master that is no [[peer]]: stay fenced, log, replicate from nothing new") {
    Harness h;
    CHECK(h.elect(BecomeBackup{master(v4(10, 0, 0, 9))}) ==
          Lines{"notice", "proxy FENCED", "run VIP release"});
    CHECK(std::get<Notice>(h.last[0]).text.find("10.0.0.9 is no [[peer]]") != std::string::npos);
    CHECK(h.complete().empty()); // no REPLICAOF at all
    CHECK(h.controller.goal_master() == std::nullopt);
    CHECK(h.controller.proxy_mode() == ProxyMode::fenced);
}

TEST_CASE("never replicating from itself, whatever [[peer]] says") {
    ControllerConfig c = config();
    c.peers.push_back({"me", boost::asio::ip::make_address("10.0.0.7"), self_redis});
    Controller controller(c);
    FakeClock clock;
    const auto actions = controller.on_election(BecomeBackup{master(v4(10, 0, 0, 7))}, clock.now);
    REQUIRE(actions.size() == 4); // notice, eligibility, proxy FENCED, VIP release
    CHECK(std::get<Notice>(actions[0]).text.find("never replicating from itself") !=
          std::string::npos);
    for (const auto& a : actions)
        if (const auto* r = std::get_if<RunStep>(&a))
            CHECK_FALSE(std::holds_alternative<ReplicateRedis>(r->step));
    CHECK(controller.goal_master() == std::nullopt);
}

TEST_CASE("backup before any master is heard, then MasterChanged adds the REPLICAOF") {
    Harness h;
    CHECK(h.elect(BecomeBackup{std::nullopt}) == Lines{"proxy FENCED", "run VIP release"});
    h.complete();
    CHECK(h.elect(MasterChanged{master(b_vrrp)}) == Lines{"proxy FENCED", "run VIP release"});
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    h.complete();
    CHECK(h.elect(MasterChanged{master(c_vrrp)}) == Lines{"proxy FENCED", "run VIP release"});
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.3 6380"});
}

TEST_CASE("the same outcome twice is one transition") {
    Harness h;
    h.elect(BecomeMaster{});
    CHECK(h.elect(BecomeMaster{}).empty()); // while running
    h.finish();
    CHECK(h.elect(BecomeMaster{}).empty()); // and once done
    h.elect(BecomeBackup{master(b_vrrp)});
    h.finish();
    CHECK(h.elect(MasterChanged{master(b_vrrp)}).empty());
    CHECK(h.controller.transitions().size() == 2);
}

TEST_CASE("MasterChanged while master is the election's business, not ours") {
    Harness h;
    h.elect(BecomeMaster{});
    h.finish();
    CHECK(h.elect(MasterChanged{master(b_vrrp)}).empty());
    CHECK(h.elect(SendAdvert{100}).empty());
}

TEST_CASE("master -> backup while promoting: fenced at once, the rest after the step in flight") {
    Harness h;
    h.elect(BecomeMaster{});
    h.clock.advance(3ms);
    CHECK(h.elect(BecomeBackup{master(b_vrrp)}) == Lines{"proxy FENCED"});
    CHECK(h.controller.proxy_mode() == ProxyMode::fenced);
    h.clock.advance(4ms);
    CHECK(h.complete() == Lines{"run VIP release"}); // the promotion's completion: stale
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    CHECK(h.complete().empty());

    const auto& history = h.controller.transitions();
    REQUIRE(history.size() == 2);
    CHECK(history[0].outcome == Outcome::superseded);
    CHECK(*history[0].finished - history[0].started == 3ms);
    CHECK(history[0].steps.back().name == "REPLICAOF NO ONE");
    CHECK(history[0].steps.back().took == 7ms); // recorded when it completed
    CHECK(history[1].outcome == Outcome::done);
    CHECK_FALSE(h.controller.vip_held());
}

TEST_CASE("master -> backup while acquiring the VIP: the VIP is released after") {
    Harness h;
    h.elect(BecomeMaster{});
    CHECK(h.complete() == Lines{"run VIP acquire"});
    CHECK(h.elect(EnterFault{}) == Lines{"proxy FENCED"});
    CHECK(h.complete() == Lines{"run VIP release"});
    CHECK(h.controller.vip_held()); // until the release completes
    CHECK(h.complete().empty());
    CHECK_FALSE(h.controller.vip_held());
    CHECK(h.controller.proxy_mode() == ProxyMode::fenced); // never SERVING on the way
}

TEST_CASE("backup -> master while demoting: HOLDING at once, promotion after the REPLICAOF") {
    Harness h;
    h.elect(BecomeBackup{master(b_vrrp)});
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    CHECK(h.elect(BecomeMaster{}) == Lines{"proxy HOLDING"});
    CHECK(h.complete(false) == Lines{"run REPLICAOF NO ONE"}); // a stale failure: no retry
    CHECK(h.complete() == Lines{"run VIP acquire"});
    CHECK(h.complete() == Lines{"proxy SERVING"});
}

TEST_CASE("outcomes flapping mid-sequence end in the last one's plan") {
    Harness h;
    h.elect(BecomeMaster{});
    h.elect(BecomeBackup{master(b_vrrp)});
    CHECK(h.elect(BecomeMaster{}) == Lines{"proxy HOLDING"});
    CHECK(h.complete() == Lines{"run REPLICAOF NO ONE"}); // the first promotion, stale
    h.finish();
    CHECK(h.controller.proxy_mode() == ProxyMode::serving);
    CHECK(h.controller.transitions().size() == 3);
}

TEST_CASE("a failed master step is retried with backoff, then given up as a fault") {
    Harness h;
    h.elect(BecomeMaster{});
    CHECK(h.complete(false, "connect: Connection refused").empty());
    CHECK(h.controller.next_deadline() == h.clock.now + 100ms);
    h.clock.advance(99ms);
    CHECK(h.timeout().empty());
    h.clock.advance(1ms);
    CHECK(h.timeout() == Lines{"run REPLICAOF NO ONE"});
    CHECK(h.complete(false).empty());
    CHECK(h.controller.next_deadline() == h.clock.now + 200ms);
    h.clock.advance(200ms);
    CHECK(h.timeout() == Lines{"run REPLICAOF NO ONE"});
    CHECK(h.complete(false, "ROLE still says slave") == Lines{"proxy FENCED", "notice", "FAULT"});
    CHECK(std::get<RoleFault>(h.last[2]).reason ==
          "REPLICAOF NO ONE failed 3 times: ROLE still says slave");

    const auto& t = h.latest();
    CHECK(t.outcome == Outcome::abandoned);
    CHECK(t.steps[2].attempts == 3);
    CHECK(t.steps[2].status == StepStatus::failed);
    CHECK(h.controller.role_fault());
    CHECK(h.controller.proxy_mode() == ProxyMode::fenced);
    // The fault is held, then cleared so the node may try again.
    CHECK(h.controller.next_deadline() == h.clock.now + 10s);
    h.clock.advance(10s);
    CHECK(h.timeout() == Lines{"fault cleared"});
    CHECK_FALSE(h.controller.role_fault());
    CHECK(h.controller.next_deadline() == std::nullopt);
}

TEST_CASE("after giving up, the election's Fault runs its plan and a new election retries") {
    Harness h;
    h.elect(BecomeMaster{});
    for (int i = 0; i < 3; ++i) {
        h.complete(false);
        h.clock.advance(2s);
        h.timeout();
    }
    REQUIRE(h.controller.role_fault());
    CHECK(h.elect(EnterFault{}) == Lines{"proxy FENCED", "run VIP release"});
    h.finish();
    CHECK(h.elect(BecomeMaster{}) == Lines{"proxy HOLDING", "run REPLICAOF NO ONE"});
}

TEST_CASE("a failed backup step is retried for as long as it takes, backoff capped") {
    Harness h;
    h.elect(BecomeBackup{master(b_vrrp)});
    h.complete(); // VIP released
    std::vector<Duration> waits;
    for (int i = 0; i < 8; ++i) {
        CHECK(h.complete(false, "Connection refused").empty());
        waits.push_back(*h.controller.next_deadline() - h.clock.now);
        h.clock.advance(waits.back());
        CHECK(h.timeout() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    }
    CHECK(waits == std::vector<Duration>{100ms, 200ms, 400ms, 800ms, 1600ms, 2s, 2s, 2s});
    CHECK_FALSE(h.controller.role_fault());
    CHECK(h.complete().empty());
    CHECK(h.latest().outcome == Outcome::done);
    CHECK(h.latest().steps.back().attempts == 9);
}

TEST_CASE("a Redis back to health ends the backoff at once") {
    Harness h;
    h.elect(BecomeBackup{master(b_vrrp)});
    h.complete();
    h.complete(false);
    CHECK(h.feed(h.controller.on_health(false, h.clock.now)).empty());
    CHECK(h.feed(h.controller.on_health(true, h.clock.now)) ==
          Lines{"run REPLICAOF 10.0.0.2 6379"});
    CHECK(h.controller.next_deadline() == std::nullopt);
    CHECK(h.feed(h.controller.on_health(true, h.clock.now)).empty()); // nothing waits now
}

TEST_CASE("replication drift after a completed plan is repaired; older facts are not drift") {
    Harness h;
    h.elect(BecomeBackup{master(b_vrrp)});
    const auto polled_before = h.clock.now;
    h.clock.advance(1ms);
    h.finish();
    CHECK(h.facts(master_facts(), h.clock.now).empty()); // sent as the plan finished: racing it
    h.clock.advance(1ms);
    CHECK(h.facts(master_facts(), polled_before).empty()); // sent before the REPLICAOF
    CHECK(h.facts(replica_of("10.0.0.2", 6379), h.clock.now).empty());
    // The local Redis restarted without its replicaof: it says master. A
    // hand-over to us would look alike for a moment: repaired after the grace.
    CHECK(h.facts(master_facts(), h.clock.now).empty());
    h.clock.advance(1999ms);
    CHECK(h.facts(master_facts(), h.clock.now).empty());
    h.clock.advance(1ms);
    CHECK(h.facts(master_facts(), h.clock.now) ==
          Lines{"notice", "proxy FENCED", "run VIP release"});
    CHECK(h.latest().cause == "repair: Redis was master");
    CHECK(h.complete() == Lines{"run REPLICAOF 10.0.0.2 6379"});
    // While a plan runs, facts are recorded but never start another.
    CHECK(h.facts(replica_of("10.0.0.3", 6380), h.clock.now).empty());
    CHECK(h.controller.facts() == replica_of("10.0.0.3", 6380));
}

TEST_CASE("a master whose Redis turned replica of a stranger is promoted again") {
    Harness h;
    h.elect(BecomeMaster{});
    h.finish();
    h.clock.advance(1ms);
    CHECK(h.facts(replica_of("10.0.0.9", 6379), h.clock.now) ==
          Lines{"notice", "proxy HOLDING", "run REPLICAOF NO ONE"});
}

TEST_CASE("a master whose Redis was handed over to a peer's fences and resigns") {
    Harness h;
    h.elect(BecomeMaster{});
    h.finish();
    h.clock.advance(1ms);
    CHECK(h.facts(replica_of("10.0.0.2", 6379), h.clock.now) ==
          Lines{"notice", "proxy FENCED", "FAULT"});
    // The VIP stays while the peer takes it over and announces it.
    h.clock.advance(h.controller.config().vip_overlap);
    CHECK(h.timeout() == Lines{"run VIP release"});
    CHECK(h.controller.goal() == Goal::fault);
    CHECK(h.controller.preempt_suspended());
    // The peer's adverts end the resignation.
    CHECK(h.elect(MasterChanged{master(b_vrrp)}) == Lines{"fault cleared"});
}

TEST_CASE("a completion with an unknown id changes nothing") {
    Harness h;
    h.elect(BecomeMaster{});
    CHECK(h.controller.on_step_done(999, StepResult::success(), h.clock.now).empty());
    CHECK(h.complete() == Lines{"run VIP acquire"});
}

TEST_CASE("a failed VIP acquire counts as held: some addresses may stay") {
    Harness h;
    h.elect(BecomeMaster{});
    h.complete();
    h.complete(false, "add 10.0.0.100/24 on eth0: No such device");
    CHECK(h.controller.vip_held());
}

TEST_CASE("the history keeps the last transitions") {
    Harness h;
    for (int i = 0; i < 20; ++i) {
        h.elect(i % 2 ? Action{BecomeMaster{}} : Action{BecomeBackup{master(b_vrrp)}});
        h.finish();
    }
    CHECK(h.controller.transitions().size() == Controller::kHistorySize);
    CHECK(h.controller.transitions().back().seq == 20);
}

TEST_CASE("replicates_from compares addresses, not spellings") {
    CHECK(replicates_from(replica_of("10.0.0.2", 6379), b_redis));
    CHECK_FALSE(replicates_from(replica_of("10.0.0.2", 6380), b_redis));
    CHECK_FALSE(replicates_from(master_facts(), b_redis));
    CHECK_FALSE(replicates_from(replica_of("redis-b", 6379), b_redis));
    CHECK(replicates_from(replica_of("fd77:0::2", 6379), ep("fd77::2", 6379)));
}
