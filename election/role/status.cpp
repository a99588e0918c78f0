// The role controller's and health tracker's state, copied (status.hpp).
#include "election/role/status.hpp"

namespace redvip::election {

RoleStatus role_status(const Controller& c, const HealthTracker& h) {
    RoleStatus s;
    s.proxy_mode = c.proxy_mode();
    s.vip_held = c.vip_held();
    s.facts = c.facts();
    s.goal = c.goal();
    s.goal_master = c.goal_master();
    s.role_fault = c.role_fault();
    s.settled = c.settled();
    s.transitions = c.transitions();
    s.health = {h.checks_ok(),          h.fault(),       h.effective_priority(), h.consecutive_ok(),
                h.consecutive_failed(), h.last_error(),  h.role_fault_reason(),  h.link_down(),
                h.link_down_reason(),   h.config().rise, h.config().fall,        h.config().weight};
    s.eligibility = c.eligibility();
    s.preempt_suspended = c.preempt_suspended();
    s.witness_ok = c.witness_ok();
    s.switchover_running = c.switchover_running();
    s.divergent_bytes_total = c.divergent_bytes_total();
    s.last_divergence = c.last_divergence();
    s.peers = c.peers();
    return s;
}

} // namespace redvip::election
