// The state file in [node] state_dir: a record, for operators, of what this
// node knew at its last completed transition (whom it followed, or that it
// was master; its Redis's replication id and offset; an epoch counting
// changes of master). It is logged at start; no decision reads it: a
// restarted node learns the roles and offsets from the Redis servers
// themselves, which cannot be out of date.
//
// Pure core: encode_node_state / decode_node_state (JSON, nlohmann). Decode
// never throws: garbage, a truncated file, a missing key or a wrong type is an
// error value with a reason. Thin adapter: save_node_state / load_node_state,
// blocking file I/O of a few hundred bytes (call them where a short fsync is
// acceptable: at start, and after a transition has completed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace redvip::election {

struct NodeState {
    std::string last_master;  // the master's node name ([node] name / peer name); empty: none known
    std::string master_redis; // its Redis endpoint, "10.77.0.2:6379"; empty: none known
    std::string replid;       // Redis master_replid: 40 hex digits, or empty
    std::int64_t offset = 0;  // master_repl_offset under replid, >= 0
    std::uint64_t epoch = 0;  // election epoch

    friend bool operator==(const NodeState&, const NodeState&) = default;
};

// The file's bytes: one JSON object and a newline, with "version": 1.
std::string encode_node_state(const NodeState& state);

struct NodeStateDecode {
    std::optional<NodeState> state; // set: decoded
    std::string error;              // otherwise why not: "offset: expected a non-negative integer"

    explicit operator bool() const { return state.has_value(); }
};
// Unknown keys are ignored (a newer redvip may add some); a "version" other
// than 1 is an error.
NodeStateDecode decode_node_state(std::string_view text);

// Atomically replaces dir/state.json: writes dir/state.json.tmp (mode 0600),
// fsyncs it, renames it over state.json, fsyncs dir. Creates dir (and missing
// parents) with mode 0700. On failure state.json is left as it was, the tmp
// file is removed, and the error text is returned ("cannot write
// /var/lib/redvip/state.json.tmp: No space left on device"); nullopt: saved.
std::optional<std::string> save_node_state(const std::string& dir, const NodeState& state);

struct NodeStateLoad {
    enum class Status {
        loaded, // state holds the file's contents
        none,   // no state.json yet (first start): start as if none
        error,  // unreadable or corrupt: error says why; log it, start as if none
    };
    Status status = Status::none;
    NodeState state;
    std::string error;
};
// Reads dir/state.json (a stale state.json.tmp is ignored).
NodeStateLoad load_node_state(const std::string& dir);

// Beyond this the file is not ours: a state is a few hundred bytes.
inline constexpr std::size_t kMaxNodeStateBytes = 64 * 1024;

} // namespace redvip::election
