// The role controller: makes the local Redis, the proxy and the VIP follow
// the election. Pure (STYLE.md practice 7): the election's outcomes, step
// completions, health and replication facts go in with `now`; ordered actions
// come out. It reads no clock, opens no socket and arms no timer: the driver
// (controller_driver.hpp) runs the steps, asks next_deadline() and calls
// handle_timeout(now).
//
// Sequences (one plan per outcome; each async step is confirmed before the
// next starts):
//   Master:            proxy HOLDING -> REPLICAOF NO ONE (ROLE = master) -> VIP acquire -> proxy
//   SERVING Backup, Fault:     proxy FENCED -> VIP release -> REPLICAOF <master's Redis> (ROLE =
//   slave of it) Stopped (SIGTERM): proxy FENCED -> VIP release
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
#include "election/vrrp_state.hpp"

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
enum class ProxyMode : std::uint8_t { serving, holding, fenced };
std::string_view to_string(ProxyMode mode);

// The steps. SetProxy is synchronous (Proxy::set_state applies at once and
// cannot fail); the others are asynchronous and complete exactly once.
struct SetProxy {
    ProxyMode mode = ProxyMode::fenced;
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
using RoleStep = std::variant<SetProxy, AcquireVip, ReleaseVip, PromoteRedis, ReplicateRedis>;
std::string describe(const RoleStep& step); // "proxy FENCED", "REPLICAOF 10.0.0.2:6379"

struct StepResult {
    bool ok = true;
    std::string error; // why it failed, for logs and status

    static StepResult success() { return {}; }
    static StepResult failure(std::string error) { return {false, std::move(error)}; }
};

// INFO replication, the fields the controller uses (redis_role.hpp parses them).
struct ReplicationFacts {
    std::string role;        // "master" or "slave"
    std::string master_host; // a replica's master, as Redis reports it
    std::uint16_t master_port = 0;
    std::string master_link_status; // "up" / "down"; empty on a master
    std::int64_t master_repl_offset = 0;
    std::string master_replid; // the history this node serves (stale-dataset rules)
    int connected_slaves = 0;
    friend bool operator==(const ReplicationFacts&, const ReplicationFacts&) = default;
};
// True when `facts` say "replica of exactly `master`" (addresses compared as
// addresses, so "::1" and "0:0::1" agree).
bool replicates_from(const ReplicationFacts& facts, const conf::Endpoint& master);

// What the controller aims at.
enum class Goal : std::uint8_t { none, master, backup, fault, stopped };
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
using ControllerAction = std::variant<SetProxy, RunStep, RoleFault, Notice>;
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

    static ControllerConfig from(const conf::Config& config);
};

class Controller {
public:
    static constexpr std::size_t history_size = 16;

    explicit Controller(ControllerConfig config);

    // The election's outcome (SendAdvert is ignored).
    ControllerActions on_election(const Action& action, TimePoint now);
    ControllerActions on_step_done(std::uint64_t id, const StepResult& result, TimePoint now);
    // Facts read by a poll sent at `polled_at` (not after the last completed
    // transition: ignored for repairs, so a reply racing a step is no drift).
    ControllerActions on_replication(const ReplicationFacts& facts, TimePoint polled_at,
                                     TimePoint now);
    // The health tracker's verdict: when the local Redis is back, a step
    // waiting out its backoff is retried at once.
    ControllerActions on_health(bool healthy, TimePoint now);
    ControllerActions handle_timeout(TimePoint now);
    std::optional<TimePoint> next_deadline() const;

    Goal goal() const { return goal_; }
    const std::optional<conf::Endpoint>& goal_master() const { return goal_master_; }
    ProxyMode proxy_mode() const { return proxy_mode_; }
    bool vip_held() const { return vip_held_; } // after a failed acquire: true (some may stay)
    bool role_fault() const { return role_fault_until_.has_value(); }
    bool settled() const; // no plan running, no step in flight
    const std::optional<ReplicationFacts>& facts() const { return facts_; }
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

    void start(Goal goal, std::optional<conf::Endpoint> master, std::string cause, TimePoint now,
               ControllerActions& out);
    bool same_goal(Goal goal, const std::optional<conf::Endpoint>& master) const;
    std::optional<std::string> promotion_refusal() const;
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
    std::vector<RoleStep> plan_;
    std::size_t next_ = 0; // plan_'s next step to start
    int attempts_ = 0;     // of plan_[next_] so far
    std::optional<InFlight> in_flight_;
    std::optional<TimePoint> retry_at_;
    std::optional<TimePoint> role_fault_until_;
    std::optional<ReplicationFacts> facts_;
    ProxyMode proxy_mode_ = ProxyMode::fenced; // main starts the proxy fenced with [vrrp]
    bool vip_held_ = false;                    // main removes stale VIPs at start
    std::uint64_t next_id_ = 0;
    std::uint64_t next_seq_ = 0;
    std::deque<RoleTransition> transitions_; // the last history_size, oldest first
};

} // namespace redvip::election
