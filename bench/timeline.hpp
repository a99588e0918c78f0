#pragma once
// Per-interval throughput and p99 from a run's acknowledgements, and the SVG
// chart of them: pure functions of the records, no clock, no file.

#include "bench/failover_analysis.hpp"

#include <optional>
#include <string>
#include <vector>

namespace redvip::bench {

constexpr std::int64_t kTimelineBinNs = 100'000'000; // 100 ms, as the issue asks

struct TimelinePoint {
    double t_s = 0; // the bin's start, seconds since the run's start
    std::uint64_t acked = 0;
    double throughput_rps = 0;
    double p99_us = 0; // 0 for a bin without acknowledgements
};

// Bins [0, end_ns) into kTimelineBinNs slices; each ack belongs to the bin of its ack time.
std::vector<TimelinePoint> build_timeline(const std::vector<AckRecord>& acks, std::int64_t end_ns,
                                          std::int64_t bin_ns = kTimelineBinNs);

// One connection's outage: from its last acknowledgement before the fault
// to its first after it (or the run's end: not recovered).
struct ConnectionLane {
    double start_s = 0;
    double end_s = 0;
    bool recovered = true;
};

struct ChartMarkers {
    std::optional<double> fault_s;
    std::optional<double> recovery_s;
    std::vector<ConnectionLane> connections; // one lane each, in connection order
};

// A self-contained SVG: throughput (top panel) and p99 (second panel) over
// time, paths with ids "throughput" and "p99", vertical lines "fault" and
// "recovery" when given; then one lane per connection with its outage as a
// bar ("conn-0", "conn-1"...) labelled with its length, so the connection
// that waited longest shows beside those that recovered at once.
std::string render_svg(const std::vector<TimelinePoint>& points, const ChartMarkers& markers,
                       const std::string& title);

std::string xml_escape(std::string_view text);

} // namespace redvip::bench
