// What the role controller and its health tracker show: a copy of their
// state, taken on the daemon's thread, for `redvip status` and metrics
// (election/node/status.hpp renders it). Pure.
#pragma once

#include "election/role/controller.hpp"
#include "election/role/health.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace redvip::election {

struct HealthStatus {
    bool ok = false;    // the rise/fall verdict of the checks alone
    bool fault = false; // what the election is told
    std::uint8_t effective_priority = 0;
    int consecutive_ok = 0;
    int consecutive_failed = 0;
    std::string last_error;
    std::string role_fault_reason;
    bool link_down = false;
    std::string link_down_reason;
    int rise = 0;
    int fall = 0;
    int weight = 0;
};

struct RoleStatus {
    ProxyMode proxy_mode = ProxyMode::fenced;
    bool vip_held = false;
    std::optional<ReplicationFacts> facts; // INFO replication as last read
    Goal goal = Goal::none;
    std::optional<conf::Endpoint> goal_master;
    bool role_fault = false;
    bool settled = true;
    std::deque<RoleTransition> transitions; // oldest first
    HealthStatus health;
    Eligibility eligibility;
    bool preempt_suspended = false;
    bool witness_ok = false;
    bool switchover_running = false;
    std::int64_t divergent_bytes_total = 0;
    std::string last_divergence;
    std::vector<PeerFacts> peers;
};

RoleStatus role_status(const Controller& controller, const HealthTracker& health);

} // namespace redvip::election
