// The plans: which steps each goal runs, in order (controller.hpp's Goal and
// RoleStep). Pure; the controller starts one per transition.
#pragma once

#include "election/role/controller.hpp"

#include <optional>
#include <vector>

namespace redvip::election {

std::vector<RoleStep> build_plan(Goal goal, const std::optional<conf::Endpoint>& master);

// A step the driver runs (SetProxy is applied at once, HoldVip timed by the
// controller itself).
bool is_async(const RoleStep& step);

} // namespace redvip::election
