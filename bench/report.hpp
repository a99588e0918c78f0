#pragma once
// Figures, tables and JSON of both benchmarks, built from plain records.
// The JSON top-level keys are the stable interface other tools read.

#include "bench/failover_analysis.hpp"
#include "bench/histogram.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace redvip::bench {

struct LatencyFigures {
    std::string target;
    std::uint64_t requests = 0; // replies received, errors included
    std::uint64_t errors = 0;   // error replies
    double seconds = 0;         // time spent sending to this target
    double throughput_rps = 0;
    std::uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0; // microseconds
};

LatencyFigures latency_figures(std::string target, const Histogram& histogram,
                               std::uint64_t requests, std::uint64_t errors, double seconds);

struct LatencySettings {
    std::uint64_t connections = 0;
    std::uint64_t pipeline = 0;
    std::string command;
    std::size_t value_size = 0;
    std::uint64_t keyspace = 0;
    std::optional<double> rate; // open loop when set
    std::uint64_t rounds = 1;
};

struct LatencyReport {
    LatencySettings settings;
    LatencyFigures target;
    std::optional<LatencyFigures> compare;
};

// target / compare per figure; null where the compare figure is 0.
nlohmann::json ratio_json(const LatencyFigures& target, const LatencyFigures& compare);
nlohmann::json latency_json(const LatencyReport& report);
std::string latency_table(const LatencyReport& report);

struct FailoverReport {
    std::string target;
    std::string verify;
    std::uint64_t connections = 0;
    double rate = 0;
    double duration_s = 0;
    FailoverRecord record;
    FailoverVerdict verdict;
    std::optional<int> fault_exit_status;
};

nlohmann::json failover_json(const FailoverReport& report);
std::string failover_table(const FailoverReport& report);

} // namespace redvip::bench
