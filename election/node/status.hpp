// The node's status: one typed snapshot, read on the daemon's thread, and
// its three renderings. JSON is what the admin socket answers `status` with
// (and what `redvip status --json` prints); the text table is what `redvip
// status` prints, rendered by the client from that JSON; the metric
// families are what /metrics adds to the proxy's. Every counter the node's
// parts keep is in the snapshot and in both JSON and metrics. Pure: the
// clock readings come in as a StatusClock.
#pragma once

#include "election/node/hooks.hpp"
#include "election/role/status.hpp"
#include "election/vrrp/runner.hpp"
#include "vip/counters.hpp" // a plain struct: the VIP manager itself stays out of election/

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace redvip::election {

struct NodeStatus {
    std::string node;        // [node] name
    std::string proxy_state; // the proxy's serving state, as the proxy names it
    ElectionStatus election;
    RoleStatus role;
    vip::VipCounters vip;
    HookCounters hooks;
};

// Turns the steady clock's time points into wall-clock text for status.
struct StatusClock {
    TimePoint steady_now;
    std::chrono::system_clock::time_point wall_now;

    std::string format(TimePoint t) const; // "2024-05-01T12:00:00.123Z"
};

// ---- JSON ---------------------------------------------------------------------

// The election's part: vrrp_state (INIT, BACKUP, MASTER or FAULT), priority,
// effective_priority, master ({address, priority} as last seen, or null),
// transitions ([{time, from, to, reason}]), discards ({reason: count}),
// vrrp_counters.
nlohmann::json election_status(const ElectionStatus& status, const StatusClock& clock);

// The controller's and health's part: proxy_state, vip_held, redis_role
// (INFO replication as last read, or null), role_goal, role_master,
// role_fault, role_settled, role_steps (the latest transition's steps),
// role_last_transition (the last completed one, with per-step durations),
// role_transitions (history), health ({ok, fault, effective_priority, ...}),
// eligibility, peers.
nlohmann::json role_status_json(const RoleStatus& status, const StatusClock& clock);

// Both parts, plus node, proxy_serving_state, vip_counters, hook_counters.
nlohmann::json to_json(const NodeStatus& status, const StatusClock& clock);

// ---- text -------------------------------------------------------------------------

// A readable table of a status object (any subset of the keys above) for
// `redvip status` without --json.
std::string render_status_text(const nlohmann::json& status);

// ---- metrics ------------------------------------------------------------------------

// Where metric families go: the daemon hands in its Prometheus text writer
// (proxy/prometheus.hpp), which election/ does not include.
struct MetricsWriter {
    // A family's # HELP and # TYPE ("counter" or "gauge").
    std::function<void(std::string_view name, std::string_view type, std::string_view help)> family;
    // One sample; `labels` without braces, or empty.
    std::function<void(std::string_view name, std::string_view labels, std::uint64_t value)> sample;
};

// redvip_vrrp_*, redvip_role_*, redvip_health_*, redvip_vip_*, redvip_hooks_*.
void render_metrics(const NodeStatus& status, const MetricsWriter& out);

} // namespace redvip::election
