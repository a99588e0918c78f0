// What a node keeps of its role transitions: after each completed one, a
// [hooks] command fires and the state file is written (both off the
// transition's path). The rules are pure and unit-tested (which transition
// fires which hook, the state file's epoch); TransitionRecorder applies them
// with the hook runner and the file I/O.
#pragma once

#include "election/node/hooks.hpp"
#include "election/node/state_file.hpp"
#include "election/role/controller.hpp"

#include <memory>
#include <optional>
#include <string>

namespace spdlog {
class logger;
}

namespace redvip::election {

// ---- pure rules ---------------------------------------------------------------

struct HookCall {
    HookEvent event = HookEvent::fault;
    std::string master; // REDVIP_MASTER: the master's node name, or empty
    friend bool operator==(const HookCall&, const HookCall&) = default;
};

// The hook a completed transition fires, or none:
//   master    -> master, with this node's name;
//   backup    -> backup, with the master followed;
//   fault     -> fault;
//   handoff   -> fault: a completed switchover leaves this node fenced and
//                not yet following the new master; the backup hook fires
//                when the backup transition that follows completes;
//   stopped   -> stop;
//   none      -> nothing.
std::optional<HookCall> hook_for(const TransitionDone& done, const std::string& node_name);

// What the state file records after a completed transition.
struct TransitionRecord {
    std::string master;       // the master's node name (ours when we took the role); empty: none
    std::string master_redis; // its Redis endpoint; empty: none known
    std::optional<std::string> replid; // this Redis's master_replid, when read
    std::int64_t offset = 0;           // ... and its master_repl_offset
};
// `previous` updated by `record`: the epoch goes up by one whenever the
// master differs from the last one recorded (a change of master, including
// to or from none); replid and offset stay as they were when none was read.
NodeState next_node_state(NodeState previous, const TransitionRecord& record);

// The record of `done` as `controller` ended it, on node `node_name` whose
// Redis is `own_redis`.
TransitionRecord transition_record(const TransitionDone& done, const Controller& controller,
                                   const std::string& node_name, const conf::Endpoint& own_redis);

// ---- the adapter ------------------------------------------------------------------

class TransitionRecorder {
public:
    TransitionRecorder(std::string node_name, conf::Endpoint own_redis, std::string state_dir,
                       std::shared_ptr<HookRunner> hooks, std::shared_ptr<spdlog::logger> log);

    // Reads the last state file and logs it: what this node knew when it
    // stopped. No decision reads it (state_file.hpp says why).
    void load();
    // After `done` completed: its hook, then the state file (a short fsync).
    void record(const TransitionDone& done, const Controller& controller);

private:
    std::string node_name_;
    conf::Endpoint own_redis_;
    std::string state_dir_;
    std::shared_ptr<HookRunner> hooks_;
    std::shared_ptr<spdlog::logger> log_;
    NodeState state_;
};

} // namespace redvip::election
