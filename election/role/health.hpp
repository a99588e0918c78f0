// The local Redis's health, keepalived track_script style: `fall` failed
// checks in a row and the node either enters Fault ([health] weight = 0) or
// advertises its priority lowered by |weight|; `rise` good checks in a row
// and it recovers. Pure: check results go in, events for the VirtualRouter
// come out (HealthChanged, PriorityChanged), only when the verdict changes.
//
// Checks come from two places: the proxy's backend pool (every connection
// attempt, as it happens) and the driver's periodic INFO replication
// ([health] interval and timeout). Both count alike.
//
// A refused connection counts as `fall` failures at once. Refused means no
// process listens on the Redis port: the Redis is dead or restarting, which
// no later check can contradict within milliseconds, unlike a timeout (a slow
// fork, a long command) that `fall` exists to forgive. Waiting fall x interval
// would add that much to every failover for no information gained.
//
// The controller's own verdict (it could not take the master role) and the
// VRRP interface's link (down is a Fault, as in keepalived) are the other
// sources of Fault, combined here so the election hears one voice: each
// clears only its own part, so a link that comes back while Redis still
// fails its checks, or while a role fault is held, leaves the node in Fault.
#pragma once

#include "conf/config.hpp"
#include "election/bounded_vector.hpp"
#include "election/vrrp/state.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace redvip::election {

using HealthEvents = BoundedVector<Event, 2>; // at most a HealthChanged and a PriorityChanged

class HealthTracker {
public:
    // Starts healthy, as keepalived's scripts do: the VirtualRouter waits a
    // Master_Down_Interval (> 3 adverts) before taking mastership, and a dead
    // Redis is refused (or fails `fall` checks) well within it.
    HealthTracker(const conf::HealthConfig& config, std::uint8_t base_priority);

    HealthEvents on_check(bool ok, std::string_view error = {});
    HealthEvents on_refused(std::string_view error);
    HealthEvents on_role_fault(bool fault, std::string_view reason);
    HealthEvents on_link(bool up, std::string_view why = {});

    bool checks_ok() const { return checks_ok_; } // the rise/fall verdict alone
    bool fault() const;                           // what the election is told
    std::uint8_t effective_priority() const;
    int consecutive_ok() const { return ok_run_; }
    int consecutive_failed() const { return failed_run_; }
    const std::string& last_error() const { return last_error_; }
    const std::string& role_fault_reason() const { return role_fault_reason_; }
    bool link_down() const { return link_down_; }
    const std::string& link_down_reason() const { return link_down_reason_; }
    const conf::HealthConfig& config() const { return config_; }

private:
    HealthEvents changes(bool fault_before, std::uint8_t priority_before) const;

    conf::HealthConfig config_;
    std::uint8_t base_priority_;
    bool checks_ok_ = true;
    bool role_fault_ = false;
    bool link_down_ = false;
    std::string link_down_reason_;
    int ok_run_ = 0;
    int failed_run_ = 0;
    std::string last_error_;
    std::string role_fault_reason_;
};

} // namespace redvip::election
