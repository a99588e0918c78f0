// The plans each goal runs (the steps, in order, and why that order) and
// the names of goals, steps, modes and outcomes for logs and status. Pure.
#include "election/role/plan.hpp"

namespace redvip::election {

std::vector<RoleStep> build_plan(Goal goal, const std::optional<conf::Endpoint>& master) {
    switch (goal) {
    case Goal::master:
        // HOLDING first: commands wait (bounded) while the local Redis is
        // still a replica, so they never meet READONLY; SERVING last, once
        // Redis is confirmed master and the VIP routes clients here.
        // CheckPeers decides how PromoteRedis is done (data_safety.hpp):
        // it may become a TakeOverFrom (a peer's Redis), or a refusal.
        return {SetProxy{ProxyMode::holding, {}}, CheckPeers{}, PromoteRedis{}, AcquireVip{},
                SetProxy{ProxyMode::serving, {}}};
    case Goal::handoff:
        // Commands wait while Redis hands over, so none meets READONLY
        // (those already sent are answered first: DrainProxy); the election
        // then resigns us. The VIP stays until the peer is heard as master
        // (see start()).
        // Then CLOSING: held and new commands go to the new master's Redis
        // until the VIP has moved (see keep_relaying()), and each connection
        // closes right after a reply (Session::leave_if_quiet), so clients
        // have moved before the new master announces the VIP (Skew_Time
        // later): a request sent on a connection here after the VIP moved
        // would be reset there.
        return {SetProxy{ProxyMode::holding, {}}, DrainProxy{}, HandOffTo{*master},
                SetProxy{ProxyMode::closing, *master}};
    case Goal::backup:
    case Goal::fault: {
        // FENCED first: nothing may write to this Redis once it is not the
        // master; the VIP goes before Redis changes role so clients move on.
        std::vector<RoleStep> plan{SetProxy{ProxyMode::fenced, {}}, ReleaseVip{}};
        if (master) plan.emplace_back(ReplicateRedis{*master});
        return plan;
    }
    case Goal::stopped:
        return {SetProxy{ProxyMode::fenced, {}}, ReleaseVip{}};
    case Goal::none:
        break;
    }
    return {};
}

// Steps the driver runs (SetProxy is applied at once, HoldVip timed here).
bool is_async(const RoleStep& step) {
    return !std::holds_alternative<SetProxy>(step) && !std::holds_alternative<HoldVip>(step);
}


std::string_view to_string(ProxyMode mode) {
    switch (mode) {
    case ProxyMode::serving:
        return "SERVING";
    case ProxyMode::holding:
        return "HOLDING";
    case ProxyMode::fenced:
        return "FENCED";
    case ProxyMode::relaying:
        return "RELAYING";
    case ProxyMode::closing:
        return "CLOSING";
    }
    return "?";
}

std::string_view to_string(Goal goal) {
    switch (goal) {
    case Goal::none:
        return "none";
    case Goal::master:
        return "master";
    case Goal::backup:
        return "backup";
    case Goal::fault:
        return "fault";
    case Goal::stopped:
        return "stopped";
    case Goal::handoff:
        return "handoff";
    }
    return "?";
}

std::string_view to_string(StepStatus status) {
    switch (status) {
    case StepStatus::running:
        return "running";
    case StepStatus::done:
        return "done";
    case StepStatus::failed:
        return "failed";
    }
    return "?";
}

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::running:
        return "running";
    case Outcome::done:
        return "done";
    case Outcome::superseded:
        return "superseded";
    case Outcome::abandoned:
        return "abandoned";
    }
    return "?";
}

std::string describe(const RoleStep& step) {
    struct Describe {
        std::string operator()(const SetProxy& s) const {
            return "proxy " + std::string(to_string(s.mode)) +
                   (s.relay ? " to " + s.relay->to_string() : std::string{});
        }
        std::string operator()(const DrainProxy&) const { return "proxy drain"; }
        std::string operator()(const HoldVip&) const { return "VIP overlap"; }
        std::string operator()(const AcquireVip&) const { return "VIP acquire"; }
        std::string operator()(const ReleaseVip&) const { return "VIP release"; }
        std::string operator()(const PromoteRedis&) const { return "REPLICAOF NO ONE"; }
        std::string operator()(const ReplicateRedis& r) const {
            return "REPLICAOF " + r.master.host.to_string() + " " + std::to_string(r.master.port);
        }
        std::string operator()(const CheckPeers&) const { return "read peers"; }
        std::string operator()(const TakeOverFrom& h) const {
            return "hand-over from " + h.master.to_string();
        }
        std::string operator()(const HandOffTo& h) const {
            return "switch to " + h.to.to_string();
        }
        std::string operator()(const AwaitPromotion& a) const {
            return "await the hand-off from " + a.from.to_string();
        }
        std::string operator()(const AwaitPeerMaster& a) const {
            return "await " + a.redis.to_string() + " as master";
        }
    };
    return std::visit(Describe{}, step);
}

} // namespace redvip::election
