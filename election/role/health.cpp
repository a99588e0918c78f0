#include "election/role/health.hpp"

#include <algorithm>

namespace redvip::election {

HealthTracker::HealthTracker(const conf::HealthConfig& config, std::uint8_t base_priority)
    : config_(config)
    , base_priority_(base_priority) {}

bool HealthTracker::fault() const {
    return role_fault_ || link_down_ || (!checks_ok_ && config_.weight == 0);
}

std::uint8_t HealthTracker::effective_priority() const {
    if (checks_ok_ || config_.weight >= 0) return base_priority_;
    // A weight never takes the priority to 0: that means "the master is leaving".
    return static_cast<std::uint8_t>(std::max(1, int{base_priority_} + config_.weight));
}

HealthEvents HealthTracker::on_check(bool ok, std::string_view error) {
    const bool fault_before = fault();
    const auto priority_before = effective_priority();
    if (ok) {
        failed_run_ = 0;
        ++ok_run_;
        if (!checks_ok_ && ok_run_ >= config_.rise) checks_ok_ = true;
    } else {
        ok_run_ = 0;
        ++failed_run_;
        last_error_ = std::string(error);
        if (checks_ok_ && failed_run_ >= config_.fall) checks_ok_ = false;
    }
    return changes(fault_before, priority_before);
}

HealthEvents HealthTracker::on_refused(std::string_view error) {
    const bool fault_before = fault();
    const auto priority_before = effective_priority();
    ok_run_ = 0;
    failed_run_ = std::max(failed_run_ + 1, config_.fall);
    last_error_ = std::string(error);
    checks_ok_ = false;
    return changes(fault_before, priority_before);
}

HealthEvents HealthTracker::on_role_fault(bool fault, std::string_view reason) {
    const bool fault_before = this->fault();
    const auto priority_before = effective_priority();
    role_fault_ = fault;
    role_fault_reason_ = fault ? std::string(reason) : std::string{};
    return changes(fault_before, priority_before);
}

HealthEvents HealthTracker::on_link(bool up, std::string_view why) {
    const bool fault_before = fault();
    const auto priority_before = effective_priority();
    link_down_ = !up;
    link_down_reason_ = up ? std::string{} : "interface down: " + std::string(why);
    return changes(fault_before, priority_before);
}

HealthEvents HealthTracker::changes(bool fault_before, std::uint8_t priority_before) const {
    HealthEvents events;
    if (fault() != fault_before) (void)events.push_back(HealthChanged{fault()});
    if (effective_priority() != priority_before)
        (void)events.push_back(PriorityChanged{effective_priority()});
    return events;
}

} // namespace redvip::election
