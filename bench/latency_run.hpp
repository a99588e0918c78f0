#pragma once
// `redvip-bench latency`: the run's wiring (connections, rounds, watchdog).

#include "bench/endpoint.hpp"
#include "bench/report.hpp"
#include "bench/workload.hpp"

#include <optional>
#include <string>

namespace redvip::bench {

struct LatencyOptions {
    Endpoint target;
    std::optional<Endpoint> compare;
    std::string password;
    std::uint64_t connections = 50;
    std::uint64_t pipeline = 1;
    WorkloadSpec workload;
    std::optional<std::uint64_t> requests; // per target
    std::optional<double> duration_s;      // per target
    std::optional<double> rate;            // ops/s, open loop
    double connect_timeout_s = 3;
    double reply_timeout_s = 5;
    bool progress = false;
};

// With a compare target the load alternates between the two in this many
// rounds (ABBA order), so drift on the machine touches both alike.
constexpr std::uint64_t kCompareRounds = 6;

// Runs the benchmark; throws BenchError (exit 1) on a connection failure.
LatencyReport run_latency(const LatencyOptions& options);

} // namespace redvip::bench
