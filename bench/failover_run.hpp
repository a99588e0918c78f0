#pragma once
// `redvip-bench failover`: uniquely numbered writes at a fixed rate through a
// target while a fault happens, then everything read back and judged.

#include "bench/endpoint.hpp"
#include "bench/report.hpp"

#include <optional>
#include <string>

namespace redvip::bench {

struct FailoverOptions {
    Endpoint target;
    std::string password;
    std::uint64_t connections = 4;
    double rate = 1000; // writes/s over all connections
    double duration_s = 10;
    std::optional<double> fault_at_s;
    std::string fault_command;
    std::optional<Endpoint> verify; // default: the target
    double connect_timeout_s = 1;
    double reply_timeout_s = 1;
    double verify_wait_s = 10; // how long the verify target may take to come up (LOADING, restart)
    bool progress = false;
};

// Reconnects back off from kMinBackoff, doubling up to kMaxBackoff: short,
// so the window measures the failover rather than our patience. Half an
// advert interval at most: a client whose backoff reaches 200 ms (or
// node-redis's 500 ms) may see up to that much more than the takeover.
constexpr std::chrono::milliseconds kMinBackoff{20};
constexpr std::chrono::milliseconds kMaxBackoff{50};
// Keys per MGET when reading back.
constexpr std::size_t kVerifyBatch = 1000;

// Runs the benchmark; throws BenchError (exit 1) when the target cannot be
// reached at the start or the verify target at the end.
FailoverReport run_failover(const FailoverOptions& options);

} // namespace redvip::bench
