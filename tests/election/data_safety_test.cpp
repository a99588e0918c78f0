// The data-safety rules (data_safety.hpp) and how the controller applies
// them: eligibility, promotion by hand-over or refusal, the switchover,
// divergence after a lost partition, witnesses. Pure: facts in, actions out.
#include "election/role/controller.hpp"
#include "vrrp_test_support.hpp"

#include <string>

using namespace redvip::election;
using namespace redvip::election::test;
using redvip::conf::Endpoint;

namespace {

const Endpoint a_redis = ep("10.0.0.1", 6379); // this node
const Endpoint b_redis = ep("10.0.0.2", 6379);
const IpAddr b_vrrp = v4(10, 0, 0, 2);
const std::string r1(40, '1'), r2(40, '2'), r3(40, '3'), zeros(40, '0');

ReplicationFacts master_at(const std::string& replid, std::int64_t offset) {
    ReplicationFacts f;
    f.role = RedisRole::master;
    f.master_replid = replid;
    f.master_replid2 = zeros;
    f.master_repl_offset = offset;
    return f;
}

ReplicationFacts replica_at(const Endpoint& of, const std::string& replid, std::int64_t offset,
                            MasterLink link = MasterLink::up) {
    ReplicationFacts f;
    f.role = RedisRole::replica;
    f.master_host = of.host.to_string();
    f.master_port = of.port;
    f.master_link_status = link;
    f.master_replid = replid;
    f.master_replid2 = zeros;
    f.master_repl_offset = offset;
    return f;
}

PeerFacts peer_b(std::optional<ReplicationFacts> facts) {
    return PeerFacts{"b", b_redis, std::move(facts), facts ? "" : "Connection refused"};
}

ControllerConfig config() {
    ControllerConfig c;
    c.self_redis = a_redis;
    c.peers = {{"b", boost::asio::ip::make_address("10.0.0.2"), b_redis}};
    c.catch_up_bytes = 100;
    return c;
}

// The controller with every action kept; steps are completed by hand.
struct Node {
    Controller controller{config()};
    FakeClock clock;
    std::optional<RunStep> running;
    ControllerActions actions;

    void take(ControllerActions out) {
        for (auto& a : out) {
            if (const auto* r = std::get_if<RunStep>(&a)) running = *r;
            actions.push_back(std::move(a));
        }
    }
    void elect(const Action& a) { take(controller.on_election(a, clock.now)); }
    void local(const ReplicationFacts& f) {
        take(controller.on_replication(f, clock.now, clock.now));
    }
    void peer(std::optional<ReplicationFacts> f) { take(controller.on_peer(peer_b(f), clock.now)); }
    void complete(bool ok = true, std::string error = "boom") {
        REQUIRE(running);
        const auto id = running->id;
        running.reset();
        take(controller.on_step_done(
            id, ok ? StepResult::success() : StepResult::failure(std::move(error)), clock.now));
    }
    std::string step() const { return running ? describe(running->step) : "none"; }
    // The VIP kept while the new master announces it, then released.
    void overlap() {
        CHECK(step() == "none");
        clock.advance(controller.config().vip_overlap);
        take(controller.handle_timeout(clock.now));
    }
    template <typename T> std::vector<T> all() const {
        std::vector<T> out;
        for (const auto& a : actions)
            if (const auto* t = std::get_if<T>(&a)) out.push_back(*t);
        return out;
    }
    // A switchover to b from a master in sync with it, up to CLOSING (drain and switch done).
    void relay_after_switchover() {
        make_master();
        local(master_at(r1, 2000));
        peer(replica_at(a_redis, r1, 2000));
        take(controller.request_switchover("", clock.now));
        complete();
        complete();
        REQUIRE(controller.proxy_mode() == ProxyMode::closing);
    }
    // Runs a master plan to SERVING with b's Redis down.
    void make_master() {
        elect(BecomeMaster{});
        REQUIRE(step() == "read peers");
        local(master_at(r1, 1000));
        peer(std::nullopt);
        while (running)
            complete();
        REQUIRE(controller.proxy_mode() == ProxyMode::serving);
    }
};

} // namespace

TEST_CASE("history_ahead: same history, continued history, unrelated histories") {
    CHECK(history_ahead(master_at(r1, 500), master_at(r1, 400)));
    CHECK_FALSE(history_ahead(master_at(r1, 400), master_at(r1, 500)));
    CHECK_FALSE(history_ahead(master_at(r1, 450), master_at(r1, 400), 100)); // within slack
    // b was promoted at offset 400 of r1's history (second_repl_offset 401).
    auto promoted = master_at(r2, 900);
    promoted.master_replid2 = r1;
    promoted.second_repl_offset = 401;
    CHECK(history_ahead(promoted, master_at(r1, 400)));
    CHECK(history_ahead(promoted, master_at(r1, 300)));
    CHECK_FALSE(history_ahead(promoted, master_at(r1, 450))); // r1 went on: diverged
    CHECK_FALSE(history_ahead(master_at(r1, 400), promoted)); // the old one is never ahead
    // A Redis restarted empty: a new history at offset 0.
    CHECK(history_ahead(master_at(r1, 400), master_at(r3, 0)));
    CHECK_FALSE(history_ahead(master_at(r3, 0), master_at(r1, 400)));
}

TEST_CASE("eligibility: caught up with a live master, or nobody alive has newer data") {
    const auto local = replica_at(b_redis, r1, 950);
    CHECK(assess_eligibility(local, {peer_b(master_at(r1, 1000))}, 100).eligible);
    const auto behind = assess_eligibility(local, {peer_b(master_at(r1, 1200))}, 100);
    CHECK_FALSE(behind.eligible);
    CHECK(behind.reason == "catching up with b: 250 bytes behind");
    // Restarted empty: a new history, and the peer's data is newer by any byte.
    CHECK(assess_eligibility(master_at(r3, 0), {peer_b(master_at(r1, 10))}, 100).reason ==
          "b's Redis has newer data (offset 10, ours 0)");
    // A peer that is a replica (of a dead master) but holds more history.
    CHECK(assess_eligibility(master_at(r3, 0), {peer_b(replica_at(a_redis, r1, 1000, MasterLink::down))},
                             100)
              .reason == "b's Redis has newer data (offset 1000, ours 0)");
    // Two fresh masters, neither with data: priority decides, not this rule.
    CHECK(assess_eligibility(master_at(r3, 0), {peer_b(master_at(r1, 0))}, 100).eligible);
    // Nobody answers: nothing to lose by taking over.
    CHECK(assess_eligibility(master_at(r3, 0), {peer_b(std::nullopt)}, 100).eligible);
    CHECK_FALSE(assess_eligibility(std::nullopt, {}, 100).eligible);
}

TEST_CASE("promotion path: hand-over from a live master, refusal, or plain promotion") {
    const auto local = replica_at(b_redis, r1, 990);
    const auto via = promotion_path(local, {peer_b(master_at(r1, 1000))}, a_redis);
    REQUIRE(std::holds_alternative<PromoteByTakeOver>(via));
    CHECK(std::get<PromoteByTakeOver>(via).master == b_redis);
    CHECK(std::holds_alternative<PromoteLocally>(promotion_path(local, {peer_b(std::nullopt)}, a_redis)));
    const auto refused = promotion_path(master_at(r3, 0), {peer_b(master_at(r1, 1000))}, a_redis);
    REQUIRE(std::holds_alternative<RefusePromotion>(refused));
    CHECK(std::get<RefusePromotion>(refused).reason ==
          "b's Redis is alive with newer data (offset 1000, ours 0)");
    // A live master whose link to us is down and who is not ahead: ours wins.
    CHECK(std::holds_alternative<PromoteLocally>(
        promotion_path(replica_at(b_redis, r1, 1000, MasterLink::down), {peer_b(master_at(r1, 1000))}, a_redis)));
    // Our own replica, read after us while writes flow, is further along our
    // stream: no newer data (a switchover to us under load was refused so).
    CHECK(std::holds_alternative<PromoteLocally>(
        promotion_path(master_at(r1, 30873), {peer_b(replica_at(a_redis, r1, 30906))}, a_redis)));
    // Replicating from us on another history, or from someone else: it counts.
    CHECK(std::holds_alternative<RefusePromotion>(
        promotion_path(master_at(r3, 0), {peer_b(replica_at(a_redis, r1, 30906))}, a_redis)));
}

TEST_CASE("divergent bytes: what a lost master acknowledged beyond the fork") {
    auto winner = master_at(r2, 5000);
    winner.master_replid2 = r1;
    winner.second_repl_offset = 4001; // promoted at r1's offset 4000
    CHECK(divergent_bytes(master_at(r1, 4250), winner) == 250);
    CHECK(divergent_bytes(master_at(r1, 3900), winner) == 0);
    CHECK(divergent_bytes(master_at(r1, 4000), master_at(r1, 4100)) == 0);
    CHECK(divergent_bytes(master_at(r3, 10), winner) == std::nullopt);
}

TEST_CASE("elected while the old master's Redis lives: a hand-over from it, no REPLICAOF NO ONE") {
    Node n;
    n.elect(BecomeMaster{});
    CHECK(n.controller.proxy_mode() == ProxyMode::holding);
    CHECK(n.step() == "read peers");
    n.local(replica_at(b_redis, r1, 990));
    n.peer(master_at(r1, 1000));
    n.complete();
    CHECK(n.step() == "hand-over from 10.0.0.2:6379");
    n.complete();
    CHECK(n.step() == "VIP acquire");
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::serving);
}

TEST_CASE("elected with an empty dataset while the peer holds the data: refused, fenced, fault") {
    Node n;
    n.elect(BecomeMaster{});
    n.local(master_at(r3, 0));
    n.peer(replica_at(a_redis, r1, 8000, MasterLink::down));
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(n.controller.role_fault());
    REQUIRE(n.all<RoleFault>().size() == 1);
    CHECK(n.all<RoleFault>()[0].reason == "b's Redis is alive with newer data (offset 8000, ours 0)");
    CHECK(n.controller.transitions().back().outcome == Outcome::abandoned);
}

TEST_CASE("a failed hand-over reads the peers again; the old master died meanwhile") {
    Node n;
    n.elect(BecomeMaster{});
    n.local(replica_at(b_redis, r1, 990));
    n.peer(master_at(r1, 1000));
    n.complete();
    n.complete(false, "connect: Connection refused");
    REQUIRE(n.controller.next_deadline());
    n.clock.advance(*n.controller.next_deadline() - n.clock.now);
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.step() == "read peers");
    n.local(replica_at(b_redis, r1, 1000, MasterLink::down));
    n.peer(std::nullopt);
    n.complete();
    CHECK(n.step() == "REPLICAOF NO ONE");
}

TEST_CASE("an ineligible backup is reported, and eligible again once caught up") {
    Node n;
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    n.local(master_at(r3, 0)); // restarted empty
    n.peer(master_at(r1, 5000));
    auto seen = n.all<SetEligible>();
    REQUIRE_FALSE(seen.empty());
    CHECK_FALSE(seen.back().eligibility.eligible);
    CHECK(seen.back().eligibility.reason == "b's Redis has newer data (offset 5000, ours 0)");
    // The figures change at every read; only a change of verdict is reported
    // (and logged), while status shows the latest figures.
    const auto reported = n.all<SetEligible>().size();
    n.peer(master_at(r1, 6000));
    CHECK(n.all<SetEligible>().size() == reported);
    CHECK(n.controller.eligibility().reason == "b's Redis has newer data (offset 6000, ours 0)");
    CHECK(n.controller.eligibility().why == Ineligible::peer_newer);
    n.local(replica_at(b_redis, r1, 4990));
    n.peer(master_at(r1, 5000));
    CHECK(n.all<SetEligible>().back().eligibility.eligible);
    const auto count = n.all<SetEligible>().size();
    n.local(replica_at(b_redis, r1, 4995));
    CHECK(n.all<SetEligible>().size() == count); // only changes are reported
    // A peer that stops answering is remembered as it last was: its data
    // is out of reach, not out of account.
    n.local(master_at(r3, 0));
    CHECK_FALSE(n.controller.eligibility().eligible);
    n.clock.advance(std::chrono::seconds{1});
    n.peer(std::nullopt);
    n.local(master_at(r3, 0));
    CHECK_FALSE(n.controller.eligibility().eligible);
    CHECK(n.controller.eligibility().why == Ineligible::peer_was_newer);
    CHECK(n.controller.eligibility().reason.starts_with(
        "b's Redis, unreachable now, had data we lack when last read (offset 5000, ours 0)"));
    // The operator accepts the loss.
    std::string text;
    n.take(n.controller.force_promotion(n.clock.now, text));
    CHECK(text == "forgot what unreachable peers held: b (offset 5000)");
    CHECK(n.controller.eligibility().eligible);
}

TEST_CASE("a replica that never synced is not promoted when its master's Redis dies; --force promotes it") {
    // The pair just started: our first sync from b is still waiting, b's
    // Redis dies with everything acknowledged so far.
    Node n;
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    while (n.running)
        n.complete();
    n.local(replica_at(b_redis, r3, 0, MasterLink::down)); // no sync yet: our own empty history
    n.peer(master_at(r1, 144606));
    CHECK(n.controller.eligibility().why == Ineligible::peer_newer);
    n.clock.advance(std::chrono::milliseconds{500});
    n.peer(std::nullopt); // Connection refused
    n.elect(BecomeMaster{}); // b went silent (its Fault): the election picks us
    REQUIRE(n.step() == "read peers");
    n.local(replica_at(b_redis, r3, 0, MasterLink::down));
    n.peer(std::nullopt);
    n.complete();
    CHECK(n.step() == "none"); // no REPLICAOF NO ONE
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    REQUIRE_FALSE(n.all<RoleFault>().empty());
    CHECK(n.all<RoleFault>().back().fault);
    CHECK(n.controller.eligibility().why == Ineligible::peer_was_newer);
    // redvip promote --force: the fault is lifted and the next election promotes.
    std::string text;
    n.take(n.controller.force_promotion(n.clock.now, text));
    CHECK_FALSE(n.all<RoleFault>().back().fault);
    CHECK(n.controller.eligibility().eligible);
    n.elect(BecomeMaster{});
    REQUIRE(n.step() == "read peers");
    n.complete();
    CHECK(n.step() == "REPLICAOF NO ONE");
}

TEST_CASE("a caught-up replica whose master's Redis dies is promoted: the lag is within catch_up_bytes") {
    Node n;
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    while (n.running)
        n.complete();
    n.local(replica_at(b_redis, r1, 4990));
    n.peer(master_at(r1, 5000));
    n.clock.advance(std::chrono::milliseconds{500});
    n.peer(std::nullopt);
    n.local(replica_at(b_redis, r1, 4990, MasterLink::down));
    CHECK(n.controller.eligibility().eligible);
    n.elect(BecomeMaster{});
    n.complete();
    CHECK(n.step() == "REPLICAOF NO ONE");
}

TEST_CASE("switchover: HOLDING, drain, switch to the peer, CLOSING relayed to it, resign; done when it is "
          "master; then FENCED, the VIP overlap, VIP release") {
    Node n;
    n.make_master();
    n.local(master_at(r1, 2000));
    n.peer(replica_at(a_redis, r1, 2000));
    n.take(n.controller.request_switchover("", n.clock.now));
    CHECK(n.controller.proxy_mode() == ProxyMode::holding);
    CHECK(n.step() == "proxy drain"); // nothing of ours caught in the pause
    n.complete();
    CHECK(n.step() == "switch to 10.0.0.2:6379");
    n.complete();
    // CLOSING: relayed to b, each connection closed right after a reply, so
    // clients have moved before b announces the VIP.
    CHECK(n.controller.proxy_mode() == ProxyMode::closing);
    CHECK(n.controller.proxy_relay() == b_redis);
    CHECK(n.all<SetProxy>().back() == SetProxy{ProxyMode::closing, b_redis});
    CHECK(n.step() == "none"); // the VIP stays until b is heard
    REQUIRE_FALSE(n.all<RoleFault>().empty());
    CHECK(n.all<RoleFault>().back().fault); // the election resigns us: priority 0
    CHECK(n.all<SwitchoverDone>().empty());
    n.clock.advance(std::chrono::milliseconds{80});
    n.elect(EnterFault{});
    CHECK(n.step() == "none");
    CHECK(n.controller.vip_held());
    CHECK(n.controller.proxy_mode() == ProxyMode::closing); // clients still served, by b
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    // CLOSING: relayed still, sessions close once quiet; the VIP stays while
    // b announces it, so requests on their way here are still answered.
    CHECK(n.controller.proxy_mode() == ProxyMode::closing);
    CHECK(n.step() == "none");
    CHECK(n.controller.vip_held());
    REQUIRE(n.controller.next_deadline());
    CHECK(*n.controller.next_deadline() == n.clock.now + n.controller.config().vip_overlap);
    REQUIRE(n.all<SwitchoverDone>().size() == 1);
    CHECK(n.all<SwitchoverDone>()[0].ok);
    CHECK(n.all<SwitchoverDone>()[0].text == "switched over to b in 80 ms");
    CHECK_FALSE(n.all<RoleFault>().back().fault);
    CHECK(n.controller.preempt_suspended());
    CHECK_FALSE(n.controller.eligibility().eligible);
    n.clock.advance(n.controller.config().vip_overlap);
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK_FALSE(n.controller.proxy_relay());
    CHECK(n.step() == "read peers"); // our last facts say master: both sides read before following
}

TEST_CASE("relaying with nobody heard as master: after vip_hold, FENCED, the overlap, then the VIP goes") {
    Node n;
    n.relay_after_switchover();
    n.elect(EnterFault{});
    CHECK(n.step() == "none");
    n.clock.advance(n.controller.config().vip_hold);
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.controller.proxy_mode() == ProxyMode::closing);
    CHECK(n.step() == "none"); // the overlap first
    n.clock.advance(n.controller.config().vip_overlap);
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK_FALSE(n.controller.vip_held());
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
}

TEST_CASE("relaying, then a master plan given up: FENCED ends the relay, later backups fence first") {
    Node n;
    n.relay_after_switchover();
    // b never took the role; we are elected again, and may not take it (no witness).
    n.take(n.controller.on_witness(false, "10.0.0.254:1 unreachable", n.clock.now));
    n.elect(BecomeMaster{});
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced); // refused
    CHECK_FALSE(n.controller.proxy_relay());
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    CHECK(n.all<SetProxy>().back() == SetProxy{ProxyMode::fenced, {}}); // no relaying
    n.overlap();
    CHECK(n.step() == "VIP release");
}

TEST_CASE("without preemption a switchover suspends nothing: the old master keeps its priority") {
    // At priority 1 its takeover, should the new master fail, would wait
    // Skew_Time of priority 1 (~an advert interval) rather than of its own.
    ControllerConfig c = config();
    c.preempt = false;
    Node n;
    n.controller = Controller{c};
    n.make_master();
    n.local(master_at(r1, 2000));
    n.peer(replica_at(a_redis, r1, 2000));
    n.take(n.controller.request_switchover("", n.clock.now));
    n.complete();
    n.complete();
    n.elect(EnterFault{});
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    REQUIRE(n.all<SwitchoverDone>().size() == 1);
    CHECK_FALSE(n.controller.preempt_suspended());
    n.overlap();
    n.complete(); // VIP release
    n.local(replica_at(b_redis, r1, 2000));
    n.peer(master_at(r1, 2000));
    CHECK(n.controller.eligibility().eligible);
}

TEST_CASE("switchover refused: not master, unknown peer, peer not in sync") {
    Node n;
    n.take(n.controller.request_switchover("", n.clock.now));
    REQUIRE(n.all<SwitchoverDone>().size() == 1);
    CHECK(n.all<SwitchoverDone>()[0].text == "this node is not a settled master (goal none)");
    n.make_master();
    n.take(n.controller.request_switchover("zed", n.clock.now));
    CHECK(n.all<SwitchoverDone>().back().text == "cannot switch over: no [[peer]] named \"zed\"");
    n.peer(replica_at(a_redis, r1, 10, MasterLink::down));
    n.take(n.controller.request_switchover("b", n.clock.now));
    CHECK(n.all<SwitchoverDone>().back().text ==
          "cannot switch over: b's Redis is not a replica of ours with its link up");
    CHECK(n.controller.goal() == Goal::master);
}

TEST_CASE("a switchover that did not reach the peer: answered as failed, the node serves again") {
    Node n;
    n.make_master();
    n.peer(replica_at(a_redis, r1, 1000));
    n.take(n.controller.request_switchover("b", n.clock.now));
    n.complete(false, "switch to 10.0.0.2:6379: 10.0.0.2:6379 did not reach offset 1000 within 5000 ms");
    REQUIRE(n.all<SwitchoverDone>().size() == 1);
    CHECK_FALSE(n.all<SwitchoverDone>()[0].ok);
    CHECK(n.step() == "read peers");
    n.local(master_at(r1, 1000));
    n.complete();
    while (n.running)
        n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::serving);
}

TEST_CASE("a lost partition: the bytes acknowledged as master that the winner lacks are reported") {
    Node n;
    n.make_master();
    n.local(master_at(r1, 4250));
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    auto winner = master_at(r2, 6000);
    winner.master_replid2 = r1;
    winner.second_repl_offset = 4001;
    n.peer(winner);
    CHECK(n.controller.divergent_bytes_total() == 250);
    CHECK(n.controller.last_divergence() == "250 bytes acknowledged here as master are not in b's history");
}

TEST_CASE("witnesses: none reachable refuses mastership and resigns a master") {
    Node n;
    n.make_master();
    n.take(n.controller.on_witness(false, "10.0.0.254:1: timed out", n.clock.now));
    REQUIRE_FALSE(n.all<RoleFault>().empty());
    CHECK(n.all<RoleFault>().back().fault);
    n.elect(EnterFault{});
    n.take(n.controller.on_witness(true, "10.0.0.254:1", n.clock.now));
    CHECK_FALSE(n.all<RoleFault>().back().fault);
    // And a node that cannot see a witness refuses to be promoted.
    Node m;
    m.take(m.controller.on_witness(false, "10.0.0.254:1: timed out", m.clock.now));
    m.elect(BecomeMaster{});
    CHECK(m.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(m.controller.transitions().back().outcome == Outcome::abandoned);
}

TEST_CASE("a healed partition: the stale master yields, the newer side never resyncs from it") {
    // This node kept serving alone (b's side lost clients): its history
    // continued past the fork; b, the other master, is stale.
    Node n;
    n.make_master();
    auto ours = master_at(r2, 9000);
    ours.master_replid2 = r1;
    ours.second_repl_offset = 4001;
    n.local(ours);
    n.peer(master_at(r1, 4000)); // b: a master, never ahead of us
    CHECK(n.controller.goal() == Goal::master);
    // b has the higher priority: the election makes us backup of it.
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 200}});
    n.overlap();
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK(n.step() == "read peers");
    n.local(ours);
    n.peer(master_at(r1, 4000));
    n.complete();
    CHECK(n.step() == "none"); // no REPLICAOF: our writes would be wiped
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(n.controller.settled());
}

TEST_CASE("the stale master yields when it sees the peer's newer data") {
    Node n;
    n.make_master(); // r1 at 1000
    auto theirs = master_at(r2, 6000);
    theirs.master_replid2 = r1;
    theirs.second_repl_offset = 1001; // b was promoted at our offset 1000 and went on
    n.peer(theirs);
    CHECK(n.controller.goal() == Goal::fault);
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    REQUIRE_FALSE(n.all<RoleFault>().empty());
    CHECK(n.all<RoleFault>().back().fault); // priority 0: b takes over
    n.overlap();
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK(n.step() == "read peers");
    n.local(master_at(r1, 1000));
    n.peer(theirs);
    n.complete();
    CHECK(n.step() == "REPLICAOF 10.0.0.2 6379");
}

TEST_CASE("a master leaving with nobody to follow keeps the VIP, holding, until one is heard or vip_hold") {
    Node n;
    n.make_master();
    n.elect(EnterFault{}); // its Redis died: nobody heard yet
    // Clients' commands wait for the takeover rather than meet READONLY.
    CHECK(n.controller.proxy_mode() == ProxyMode::holding);
    CHECK(n.step() == "none");
    CHECK(n.controller.vip_held());
    REQUIRE(n.controller.next_deadline());
    CHECK(*n.controller.next_deadline() - n.clock.now == std::chrono::seconds{4});
    n.clock.advance(std::chrono::seconds{4});
    n.take(n.controller.handle_timeout(n.clock.now));
    // Nobody took over: the held commands are refused, then the VIP goes.
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK_FALSE(n.controller.vip_held());
    CHECK(n.controller.transitions().back().cause == "no master heard: releasing the VIP");
}

TEST_CASE("a master in Fault holds commands until the new master's Redis is master, then relays them there") {
    // Released the moment b is heard, the VIP would be nowhere until b has
    // added it: a client's SYN sent then reaches this host and is dropped.
    // Refused meanwhile (READONLY), every client would retry on its own
    // schedule; held, each command goes to b's Redis as soon as it is master.
    Node n;
    n.make_master();
    n.elect(EnterFault{});
    CHECK(n.controller.proxy_mode() == ProxyMode::holding);
    n.clock.advance(std::chrono::milliseconds{60});
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    CHECK(n.controller.proxy_mode() == ProxyMode::holding); // b elected; its Redis maybe not promoted yet
    CHECK(n.step() == "await 10.0.0.2:6379 as master");
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::closing);
    CHECK(n.controller.proxy_relay() == b_redis);
    CHECK(n.step() == "none");
    CHECK(*n.controller.next_deadline() - n.clock.now == n.controller.config().vip_overlap);
    n.clock.advance(n.controller.config().vip_overlap - std::chrono::milliseconds{1});
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.step() == "none");
    n.clock.advance(std::chrono::milliseconds{1});
    n.take(n.controller.handle_timeout(n.clock.now));
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(n.step() == "read peers"); // then REPLICAOF: ours was master
    CHECK(n.all<SetProxy>().back() == SetProxy{ProxyMode::fenced, {}});
}

TEST_CASE("a master in Fault whose successor's Redis does not become master: FENCED, as without the hold") {
    Node n;
    n.make_master();
    n.elect(EnterFault{});
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    CHECK(n.step() == "await 10.0.0.2:6379 as master");
    n.complete(false, "its role is slave");
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK_FALSE(n.controller.proxy_relay());
    CHECK(n.step() == "none"); // the VIP overlap while b announces it
    n.overlap();
    CHECK(n.step() == "VIP release");
}

TEST_CASE("a backup in Fault is fenced, not holding: only a master's clients wait for a takeover") {
    Node n;
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    while (n.running)
        n.complete();
    n.elect(EnterFault{});
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
}

TEST_CASE("a master that took over from a resigned peer does not take it for a new master later") {
    // b resigned to us (priority 0) at an earlier failover; when our Redis
    // dies much later, b's old advert is no master to follow: the VIP stays.
    Node n;
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 100}});
    while (n.running)
        n.complete();
    n.elect(MasterChanged{MasterInfo{b_vrrp, 0}});
    n.make_master();
    n.clock.advance(std::chrono::seconds{30});
    n.elect(EnterFault{});
    CHECK(n.step() == "none");
    CHECK(n.controller.vip_held());
    CHECK(*n.controller.next_deadline() - n.clock.now == n.controller.config().vip_hold);
}

TEST_CASE("a switchover nobody completes: the old master stands again instead of leaving no master") {
    Node n;
    n.relay_after_switchover();
    REQUIRE(n.all<RoleFault>().back().fault); // resigned: priority 0
    // b never takes the role (its election is in Fault): no advert comes.
    n.clock.advance(n.controller.config().switchover_timeout + std::chrono::seconds{3});
    n.take(n.controller.handle_timeout(n.clock.now));
    REQUIRE_FALSE(n.all<SwitchoverDone>().empty());
    CHECK_FALSE(n.all<SwitchoverDone>().back().ok);
    CHECK_FALSE(n.all<RoleFault>().back().fault);
    CHECK_FALSE(n.controller.preempt_suspended());
}

TEST_CASE("preempted: a switchover to the preempting peer, then relaying and closing, no resignation") {
    Node n;
    n.make_master(); // r1 at 1000, b read as down
    n.local(master_at(r1, 1000));
    n.peer(replica_at(a_redis, r1, 1000)); // b caught up, linked
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 200}}); // b preempts
    CHECK(n.controller.goal() == Goal::handoff);
    CHECK(n.controller.proxy_mode() == ProxyMode::holding);
    CHECK(n.step() == "proxy drain");
    n.complete();
    CHECK(n.step() == "switch to 10.0.0.2:6379");
    n.complete();
    // Handed off: following b, relaying then closing, the VIP kept while b announces it.
    CHECK(n.controller.goal() == Goal::backup);
    CHECK(n.controller.proxy_mode() == ProxyMode::closing);
    CHECK(n.controller.proxy_relay() == b_redis);
    CHECK(n.all<RoleFault>().empty()); // b is master already: nothing to resign
    CHECK_FALSE(n.controller.preempt_suspended());
    n.overlap();
    CHECK(n.step() == "VIP release");
    n.complete();
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
}

TEST_CASE("preempted, the hand-off fails: fenced and following, as without it") {
    Node n;
    n.make_master();
    n.local(master_at(r1, 1000));
    n.peer(replica_at(a_redis, r1, 1000));
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 200}});
    n.complete();                   // drain
    n.complete(false, "b did not reach offset 1000 in time"); // switch
    CHECK(n.controller.goal() == Goal::backup);
    CHECK(n.controller.proxy_mode() == ProxyMode::fenced);
    CHECK(n.all<SwitchoverDone>().empty());
}

TEST_CASE("preempting a live master: await its hand-off; none comes: take it by hand-over") {
    Node n;
    n.elect(BecomeMaster{true});
    REQUIRE(n.step() == "read peers");
    n.local(replica_at(b_redis, r1, 1000));
    n.peer(master_at(r1, 1000));
    n.complete();
    CHECK(n.step() == "await the hand-off from 10.0.0.2:6379");
    n.complete(false, "master: ROLE still says slave after 5000 ms");
    REQUIRE(n.step() == "read peers");
    n.local(replica_at(b_redis, r1, 1000));
    n.peer(master_at(r1, 1000));
    n.complete();
    CHECK(n.step() == "hand-over from 10.0.0.2:6379");
}

TEST_CASE("preempting: the hand-off came, then the VIP") {
    Node n;
    n.elect(BecomeMaster{true});
    n.local(replica_at(b_redis, r1, 1000));
    n.peer(master_at(r1, 1000));
    n.complete();
    REQUIRE(n.step() == "await the hand-off from 10.0.0.2:6379");
    n.complete();
    CHECK(n.step() == "VIP acquire");
}

TEST_CASE("preempted: the old master leaves its Redis to the new master's hand-over, never replicating from each other") {
    Node n;
    n.make_master();
    n.elect(BecomeBackup{MasterInfo{b_vrrp, 200}}); // b preempts, caught up
    n.overlap();
    REQUIRE(n.step() == "VIP release");
    n.complete();
    REQUIRE(n.step() == "read peers");
    n.local(master_at(r1, 5000));
    n.peer(replica_at(a_redis, r1, 5000)); // b's hand-over has not promoted it yet
    n.complete();
    CHECK(n.step() == "none"); // no REPLICAOF b: b still follows us
    CHECK(n.controller.settled());
    // b's hand-over: ours follows b now; nothing to repair.
    n.clock.advance(std::chrono::milliseconds{50});
    const auto before = n.actions.size();
    n.local(replica_at(b_redis, r1, 5000));
    CHECK(n.actions.size() - before <= 1); // at most a SetEligible, no REPLICAOF
    CHECK(n.step() == "none");
}

TEST_CASE("divergence counts a write acknowledged after our last read as master") {
    // The cut came between two reads: 70 bytes acknowledged just before it
    // show in our Redis only once we are in Fault.
    Node n;
    n.make_master();
    n.local(master_at(r1, 4000));
    n.elect(EnterFault{});
    n.local(master_at(r1, 4070));
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    auto winner = master_at(r2, 6000);
    winner.master_replid2 = r1;
    winner.second_repl_offset = 4001; // b was promoted at our offset 4000
    n.peer(winner);
    CHECK(n.controller.divergent_bytes_total() == 70);
}

TEST_CASE("divergence is checked when a former master follows, even after a Fault with nobody heard") {
    Node n;
    n.make_master();
    n.local(master_at(r1, 4250));
    n.elect(EnterFault{}); // cut off: nobody to follow yet
    n.elect(MasterChanged{MasterInfo{b_vrrp, 100}});
    auto winner = master_at(r2, 6000);
    winner.master_replid2 = r1;
    winner.second_repl_offset = 4001;
    n.peer(winner);
    CHECK(n.controller.divergent_bytes_total() == 250);
}
