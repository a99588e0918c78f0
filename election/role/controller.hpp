// The role controller: makes the local Redis, the proxy and the VIP follow
// the election. Pure (docs/style.md, practice 7): the election's outcomes, step
// completions, health and replication facts go in with `now`; ordered actions
// come out. It reads no clock, opens no socket and arms no timer: the driver
// (driver.hpp) runs the steps, asks next_deadline() and calls
// handle_timeout(now).
//
// Sequences (one plan per outcome; each async step is confirmed before the
// next starts):
//   Master:           proxy HOLDING -> read peers -> REPLICAOF NO ONE, or the
//                     hand-over from a peer's live master (ROLE = master)
//                     -> VIP acquire -> proxy SERVING
//   Backup, Fault:    proxy FENCED -> VIP release -> REPLICAOF <master's Redis>
//                     (ROLE = slave of it)
//   Fault of a master, nobody heard yet: proxy HOLDING, the VIP kept; the new
//                     master heard: its Redis polled until master -> proxy
//                     CLOSING relayed to it -> VIP kept vip_overlap -> VIP
//                     release -> proxy FENCED -> REPLICAOF
//   Stopped (SIGTERM): proxy FENCED -> VIP release
//   Switchover away:  proxy HOLDING -> drain -> hand-off to the peer -> proxy
//                     CLOSING relayed to it (each session closes after a
//                     reply); then Backup: VIP kept vip_overlap -> VIP
//                     release -> proxy FENCED -> REPLICAOF
// Every step is idempotent, so a plan always runs whole rather than trusting
// a belief about what the previous one left behind.
//
// A new outcome supersedes the running plan at once: its leading proxy step
// is applied immediately (fencing is always safe, and waiting for a Redis
// step that may take seconds would leave clients writing to a node that lost
// the election); its first async step waits until the old plan's step in
// flight has completed, so two steps never race on Redis or the VIP.
#pragma once

#include "conf/config.hpp"
#include "election/role/data_safety.hpp"
#include "election/vrrp/state.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace redvip::election {

// The proxy's serving states, declared here because the election does not
// include proxy/ (main maps them onto proxy::ServingState one to one).
// relaying: after a switchover, commands go to the new master's Redis (`relay`);
// closing: still relaying while the VIP leaves, each connection closed once quiet.
enum class ProxyMode : std::uint8_t { serving, holding, fenced, relaying, closing };
std::string_view to_string(ProxyMode mode);

// The steps. SetProxy is synchronous (Proxy::set_state applies at once and
// cannot fail); the others are asynchronous and complete exactly once.
struct SetProxy {
    ProxyMode mode = ProxyMode::fenced;
    std::optional<conf::Endpoint> relay; // RELAYING: to this Redis
    friend bool operator==(const SetProxy&, const SetProxy&) = default;
};
struct AcquireVip {
    friend bool operator==(const AcquireVip&, const AcquireVip&) = default;
};
struct ReleaseVip {
    friend bool operator==(const ReleaseVip&, const ReleaseVip&) = default;
};
struct PromoteRedis { // REPLICAOF NO ONE, confirmed by ROLE = master
    friend bool operator==(const PromoteRedis&, const PromoteRedis&) = default;
};
struct ReplicateRedis { // REPLICAOF host port, confirmed by ROLE = slave of host:port
    conf::Endpoint master;
    friend bool operator==(const ReplicateRedis&, const ReplicateRedis&) = default;
};
// Wait until no command sent through the proxy awaits its reply from the local
// Redis (HOLDING sends no more), so pausing Redis's writes catches none of
// them: they would meet READONLY once it follows the new master.
struct DrainProxy {
    friend bool operator==(const DrainProxy&, const DrainProxy&) = default;
};
// Keep the VIP `vip_overlap` longer (after a switchover, the new master
// announcing it): a request in flight to it still reaches this node, which
// relays it, rather than being dropped here and reset there. The controller
// times it itself (next_deadline()); it never reaches the driver.
struct HoldVip {
    friend bool operator==(const HoldVip&, const HoldVip&) = default;
};
// Read the local Redis and every peer's afresh (on_replication and on_peer
// before the step completes): a promotion decides on facts, not memories.
struct CheckPeers {
    friend bool operator==(const CheckPeers&, const CheckPeers&) = default;
};
// The two hand-overs are named by the direction the role goes: TakeOverFrom
// a peer's Redis to ours, HandOffTo a peer's Redis from ours.
// The hand-over from `master` (a peer's Redis that is still master) to ours:
// writes paused there until ours holds every byte, ours promoted, theirs
// following (RedisExecutor::async_switch_to); confirmed by our ROLE = master.
struct TakeOverFrom {
    conf::Endpoint master;
    friend bool operator==(const TakeOverFrom&, const TakeOverFrom&) = default;
};
// The switchover: writes paused on our Redis, `to` caught up and promoted,
// ours following it (RedisExecutor::async_switch_to); fails with our Redis
// still master when `to` could not be promoted.
struct HandOffTo {
    conf::Endpoint to;
    friend bool operator==(const HandOffTo&, const HandOffTo&) = default;
};
// Preempting: the master we preempt hands its role to us (its HandOffTo,
// after draining its proxy, as `redvip switchover` does); wait until our
// Redis is master, polling it. Fails after switchover_timeout.
struct AwaitPromotion {
    conf::Endpoint from;
    friend bool operator==(const AwaitPromotion&, const AwaitPromotion&) = default;
};
// A master whose Redis failed holds its clients' commands while the peer
// takes over; once that peer is heard as master, wait until its Redis is
// master (polling it) before they are relayed there. Fails after
// switchover_timeout.
struct AwaitPeerMaster {
    conf::Endpoint redis;
    friend bool operator==(const AwaitPeerMaster&, const AwaitPeerMaster&) = default;
};
using RoleStep = std::variant<SetProxy, AcquireVip, ReleaseVip, PromoteRedis, ReplicateRedis,
                              CheckPeers, TakeOverFrom, HandOffTo, DrainProxy, HoldVip, AwaitPromotion,
                              AwaitPeerMaster>;
std::string describe(const RoleStep& step); // "proxy FENCED", "REPLICAOF 10.0.0.2:6379"

struct StepResult {
    bool ok = true;
    std::string error; // why it failed, for logs and status

    static StepResult success() { return {}; }
    static StepResult failure(std::string error) { return {false, std::move(error)}; }
};

// What the controller aims at.
// handoff: a switchover away from this master, until the peer holds the role.
enum class Goal : std::uint8_t { none, master, backup, fault, stopped, handoff };
std::string_view to_string(Goal goal);

// Actions, for the driver to carry out in the order given.
struct RunStep { // start it; report on_step_done(id, result) exactly once
    std::uint64_t id = 0;
    RoleStep step;
    friend bool operator==(const RunStep&, const RunStep&) = default;
};
struct RoleFault { // tell the election (through HealthTracker::on_role_fault)
    bool fault = false;
    std::string reason;
    friend bool operator==(const RoleFault&, const RoleFault&) = default;
};
struct Notice { // a decision worth a warning in the log
    std::string text;
    friend bool operator==(const Notice&, const Notice&) = default;
};
struct SetEligible { // ineligible: the election runs this node at priority 1
    Eligibility eligibility;
    friend bool operator==(const SetEligible&, const SetEligible&) = default;
};
struct SwitchoverDone { // the answer to request_switchover, exactly once per request
    bool ok = false;
    std::string text;
    friend bool operator==(const SwitchoverDone&, const SwitchoverDone&) = default;
};
struct TransitionDone { // a plan ran to its end: hooks and the state file follow
    Goal goal = Goal::none;
    std::string master; // the followed peer's name, when there is one
    std::string cause;
    friend bool operator==(const TransitionDone&, const TransitionDone&) = default;
};
using ControllerAction =
    std::variant<SetProxy, RunStep, RoleFault, Notice, SetEligible, SwitchoverDone, TransitionDone>;
using ControllerActions = std::vector<ControllerAction>;

// One step of a transition, as status shows it.
enum class StepStatus : std::uint8_t { running, done, failed };
std::string_view to_string(StepStatus status);
struct StepRecord {
    std::string name;
    TimePoint started{};
    Duration took{}; // first start to last completion, retries included
    int attempts = 0;
    StepStatus status = StepStatus::running;
    std::string error; // the last failure's text
};

enum class Outcome : std::uint8_t { running, done, superseded, abandoned };
std::string_view to_string(Outcome outcome);
struct RoleTransition {
    std::uint64_t seq = 0;
    Goal goal = Goal::none;
    std::optional<conf::Endpoint> master; // backup/fault: whom the local Redis follows
    std::string cause;                    // "elected master", "repair: ..."
    TimePoint started{};
    std::optional<TimePoint> finished;
    Outcome outcome = Outcome::running;
    std::vector<StepRecord> steps;
};

struct ControllerConfig {
    conf::Endpoint self_redis;           // never replicate from this
    std::vector<conf::PeerConfig> peers; // VRRP source address -> that node's Redis
    // Backoff between attempts of a failed step: first, doubling, capped.
    Duration retry_first = std::chrono::milliseconds{100};
    Duration retry_max = std::chrono::seconds{2};
    // A master-path step (promote, VIP acquire) failing this many times in a
    // row makes the controller give up and report a fault: a master that
    // cannot take the role must hand it over rather than hold clients.
    int master_attempts = 3;
    // How long that fault is held before the node may try again: long enough
    // for a healthy peer to take over and be followed, short enough that a
    // lone node retries.
    Duration role_fault_hold = std::chrono::seconds{10};
    // [failover]: a replica this close to its master's offset is caught up.
    std::int64_t catch_up_bytes = 1 << 20;
    // A switchover not finished by then (the peer never took the role) is
    // reported as failed; the node recovers through the election.
    Duration switchover_timeout = std::chrono::seconds{5};
    // A peer's facts older than this are not evidence (3 health intervals).
    Duration peer_facts_max_age = std::chrono::milliseconds{300};
    // How long a former master keeps the VIP (fenced) while no new master is
    // heard: a little over Master_Down_Interval.
    Duration vip_hold = std::chrono::seconds{4};
    // How long a node that relays to the new master keeps the VIP after
    // hearing it (HoldVip): its announcement is out by then (2 adverts).
    Duration vip_overlap = std::chrono::milliseconds{200};
    // How long the local Redis may stay master while we follow a peer
    // before it is set back (a hand-over to us resolves well within it).
    Duration follower_master_grace = std::chrono::seconds{2};
    // [vrrp] preempt: a node that switched over away runs at priority 1
    // until master again, so that it does not take the role straight back.
    // Without preemption nothing needs suspending, and it keeps its priority
    // (a takeover after Skew_Time of it, not of priority 1).
    bool preempt = true;

    static ControllerConfig from(const conf::Config& config);
};

class Controller {
public:
    static constexpr std::size_t kHistorySize = 16;

    explicit Controller(ControllerConfig config);

    // The election's outcome (SendAdvert is ignored).
    ControllerActions on_election(const Action& action, TimePoint now);
    ControllerActions on_step_done(std::uint64_t id, const StepResult& result, TimePoint now);
    // Facts read by a poll sent at `polled_at` (not after the last completed
    // transition: ignored for repairs, so a reply racing a step is no drift).
    ControllerActions on_replication(const ReplicationFacts& facts, TimePoint polled_at,
                                     TimePoint now);
    // A peer's Redis as just read (`facts` empty: it did not answer).
    ControllerActions on_peer(const PeerFacts& peer, TimePoint now);
    // The witnesses: false when none is reachable (split-brain protection).
    ControllerActions on_witness(bool reachable, std::string detail, TimePoint now);
    // `redvip switchover [--to NAME]`: answered by one SwitchoverDone, now
    // (refused) or when the peer holds the role (or did not in time).
    ControllerActions request_switchover(const std::string& to, TimePoint now);
    // `redvip promote --force`: forget what peers that no longer answer held
    // (accepting its loss), so this node may take the master role; `text`
    // says what was forgotten.
    ControllerActions force_promotion(TimePoint now, std::string& text);
    // The health tracker's verdict: when the local Redis is back, a step
    // waiting out its backoff is retried at once.
    ControllerActions on_health(bool healthy, TimePoint now);
    ControllerActions handle_timeout(TimePoint now);
    std::optional<TimePoint> next_deadline() const;

    Goal goal() const { return goal_; }
    const std::optional<conf::Endpoint>& goal_master() const { return goal_master_; }
    ProxyMode proxy_mode() const { return proxy_mode_; }
    const std::optional<conf::Endpoint>& proxy_relay() const { return proxy_relay_; }
    bool vip_held() const { return vip_held_; } // after a failed acquire: true (some may stay)
    bool role_fault() const { return role_fault_reported_; }
    bool settled() const; // no plan running, no step in flight
    const std::optional<ReplicationFacts>& facts() const { return facts_; }
    const std::vector<PeerFacts>& peers() const { return peer_facts_; }
    const Eligibility& eligibility() const { return eligibility_; }
    bool preempt_suspended() const { return preempt_suspended_; }
    bool witness_ok() const { return witness_ok_; }
    std::int64_t divergent_bytes_total() const { return divergence_.total; }
    const std::string& last_divergence() const { return divergence_.last; }
    bool switchover_running() const { return switchover_.has_value(); }
    const std::deque<RoleTransition>& transitions() const { return transitions_; }
    const ControllerConfig& config() const { return config_; }

private:
    struct InFlight {
        std::uint64_t id = 0;
        std::uint64_t seq = 0;  // the transition it belongs to
        std::size_t record = 0; // its StepRecord in that transition
        RoleStep step;
        bool stale = false; // its transition was superseded
    };

    // Why a plan runs, where that changes its steps.
    enum class PlanReason : std::uint8_t {
        ordinary,
        preempting, // a master plan preempting a live master: it waits for that
                    // master's hand-off (AwaitPromotion) instead of taking over
        preempted,  // a hand-off answering a peer's preemption: done or failed,
                    // this node follows that peer
        vip_hold_over, // a former master heard nobody within vip_hold: this
                       // plan releases the VIP it kept
    };
    void start(Goal goal, std::optional<conf::Endpoint> master, std::string cause, TimePoint now,
               ControllerActions& out, PlanReason reason = PlanReason::ordinary);
    bool same_goal(Goal goal, const std::optional<conf::Endpoint>& master) const;
    std::optional<std::string> promotion_refusal() const;
    void decide_promotion(TimePoint now, ControllerActions& out);
    void decide_follow(TimePoint now, ControllerActions& out);
    void yield_if_stale(const PeerFacts& peer, TimePoint now, ControllerActions& out);
    void keep_relaying();
    void keep_vip_while_announced();
    void hold_for_takeover(bool holding_before);
    std::optional<PeerFacts> preempted_by(const std::optional<MasterInfo>& master, TimePoint now) const;
    void apply_proxy(const SetProxy& set, TimePoint now, ControllerActions& out);
    void update_eligibility(TimePoint now, ControllerActions& out);
    void update_role_fault(const std::string& reason, ControllerActions& out);
    void resign(const std::string& reason, ControllerActions& out);
    void heard_master(const IpAddr& address, TimePoint now, ControllerActions& out);
    void finish_switchover(bool ok, std::string text, ControllerActions& out);
    std::string switchover_name() const;
    void check_divergence(const PeerFacts& peer, ControllerActions& out);
    std::vector<PeerFacts> fresh_peers(TimePoint now) const;
    // fresh_peers(), with a peer that does not answer as it last did (remembered).
    std::vector<PeerFacts> known_peers(TimePoint now) const;
    const conf::PeerConfig* peer_by_redis(const conf::Endpoint& redis) const;
    void follow(Goal goal, const std::optional<MasterInfo>& master, std::string cause,
                TimePoint now, ControllerActions& out);
    std::optional<conf::Endpoint> resolve(const std::optional<MasterInfo>& master,
                                          ControllerActions& out) const;
    void advance(TimePoint now, ControllerActions& out);
    void launch(const RoleStep& step, TimePoint now, ControllerActions& out);
    void note_effect(const RoleStep& step, const StepResult& result);
    void fail_step(const StepResult& result, TimePoint now, ControllerActions& out);
    void give_up_master(const std::string& reason, TimePoint now, ControllerActions& out);
    void check_drift(TimePoint now, ControllerActions& out);
    RoleTransition* current();
    RoleTransition* find(std::uint64_t seq);
    Duration backoff(int attempts) const;

    ControllerConfig config_;
    std::vector<std::pair<IpAddr, conf::Endpoint>> peers_;
    Goal goal_ = Goal::none;
    std::optional<conf::Endpoint> goal_master_;
    std::optional<MasterInfo> known_master_; // the election's, for EnterFault
    // The running plan: its steps, how far it got, and why it runs.
    struct Run {
        std::vector<RoleStep> plan;
        std::size_t next = 0;       // plan's next step to start
        int attempts = 0;           // of plan[next] so far
        int handover_failures = 0;  // TakeOverFrom attempts of this master plan
        std::optional<InFlight> in_flight;
        std::optional<TimePoint> retry_at;
        PlanReason reason = PlanReason::ordinary;
    };
    Run run_;
    std::optional<TimePoint> role_fault_until_; // give_up_master's hold
    std::optional<TimePoint> vip_release_at_;   // a former master's VIP, unfollowed
    std::optional<TimePoint> hold_vip_until_;   // a HoldVip step's end
    bool takeover_hold_ = false;                // HOLDING clients' commands for the peer's takeover
    bool role_fault_reported_ = false;          // what the election was last told
    bool resigned_ = false; // mastership handed to a peer: fault until a master is heard
    bool witness_ok_ = true;
    std::string witness_detail_;
    std::optional<ReplicationFacts> facts_;
    std::optional<TimePoint> facts_at_;
    std::vector<PeerFacts> peer_facts_; // one per [[peer]], config order
    // Beside each of peer_facts_: when it was read, and the last facts the
    // peer answered with, kept while it does not answer; forgotten once this
    // node is master (or forced).
    struct PeerMemory {
        TimePoint read_at{};
        std::optional<ReplicationFacts> last_answer;
    };
    std::vector<PeerMemory> peer_memory_;
    Eligibility eligibility_{false, "not assessed yet"};
    bool eligibility_reported_ = false;
    bool preempt_suspended_ = false;        // after a switchover away, until master again
    std::optional<TimePoint> follower_master_since_;
    // What a lost partition could have acknowledged, computed from our last
    // facts as master and those of the peer we follow since.
    struct Divergence {
        std::optional<ReplicationFacts> last_as_master;
        std::optional<conf::Endpoint> peer; // followed since; checked once it is master
        std::int64_t total = 0;             // bytes found so far
        std::string last;                   // the last finding, for status
    };
    Divergence divergence_;
    struct Switchover {
        std::string name;
        conf::Endpoint redis;
        IpAddr vrrp;
        TimePoint started;
        TimePoint deadline;
    };
    std::optional<Switchover> switchover_;
    ProxyMode proxy_mode_ = ProxyMode::fenced; // main starts the proxy fenced with [vrrp]
    std::optional<conf::Endpoint> proxy_relay_; // RELAYING, and HOLDING or CLOSING after it
    bool vip_held_ = false;                    // main removes stale VIPs at start
    std::uint64_t next_id_ = 0;
    std::uint64_t next_seq_ = 0;
    std::deque<RoleTransition> transitions_; // the last kHistorySize, oldest first
};

} // namespace redvip::election
