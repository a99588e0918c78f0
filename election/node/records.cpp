// Hooks and the state file after each completed transition (records.hpp).
#include "election/node/records.hpp"

#include <spdlog/spdlog.h>

namespace redvip::election {

std::optional<HookCall> hook_for(const TransitionDone& done, const std::string& node_name) {
    switch (done.goal) {
    case Goal::master:
        return HookCall{HookEvent::master, node_name};
    case Goal::backup:
        return HookCall{HookEvent::backup, done.master};
    case Goal::fault:
    case Goal::handoff:
        return HookCall{HookEvent::fault, done.master};
    case Goal::stopped:
        return HookCall{HookEvent::stop, done.master};
    case Goal::none:
        break;
    }
    return std::nullopt;
}

NodeState next_node_state(NodeState previous, const TransitionRecord& record) {
    if (record.master != previous.last_master) ++previous.epoch;
    previous.last_master = record.master;
    previous.master_redis = record.master_redis;
    if (record.replid) {
        previous.replid = *record.replid;
        previous.offset = record.offset;
    }
    return previous;
}

TransitionRecord transition_record(const TransitionDone& done, const Controller& controller,
                                   const std::string& node_name, const conf::Endpoint& own_redis) {
    TransitionRecord record;
    const bool master = done.goal == Goal::master;
    record.master = master ? node_name : done.master;
    if (master)
        record.master_redis = own_redis.to_string();
    else if (const auto& followed = controller.goal_master())
        record.master_redis = followed->to_string();
    if (const auto& facts = controller.facts()) {
        record.replid = facts->master_replid;
        record.offset = facts->master_repl_offset;
    }
    return record;
}

TransitionRecorder::TransitionRecorder(std::string node_name, conf::Endpoint own_redis,
                                       std::string state_dir, std::shared_ptr<HookRunner> hooks,
                                       std::shared_ptr<spdlog::logger> log)
    : node_name_(std::move(node_name))
    , own_redis_(std::move(own_redis))
    , state_dir_(std::move(state_dir))
    , hooks_(std::move(hooks))
    , log_(std::move(log)) {}

void TransitionRecorder::load() {
    const auto loaded = load_node_state(state_dir_);
    using S = NodeStateLoad::Status;
    if (loaded.status == S::error)
        log_->warn("state file: {} (starting as if none)", loaded.error);
    else if (loaded.status == S::loaded)
        log_->info("state file: last master {} ({}), replication {}:{}, epoch {}",
                   loaded.state.last_master.empty() ? "unknown" : loaded.state.last_master,
                   loaded.state.master_redis, loaded.state.replid, loaded.state.offset,
                   loaded.state.epoch);
    state_ = loaded.state;
}

void TransitionRecorder::record(const TransitionDone& done, const Controller& controller) {
    if (auto call = hook_for(done, node_name_)) hooks_->fire(call->event, call->master, done.cause);
    state_ = next_node_state(state_, transition_record(done, controller, node_name_, own_redis_));
    if (auto error = save_node_state(state_dir_, state_)) log_->warn("state file: {}", *error);
}

} // namespace redvip::election
