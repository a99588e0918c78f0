// redvip-bench: latency and failover benchmarks for redvip (and any Redis endpoint).
// Exit status: 0 the run completed, 1 usage or connection error, 3 (failover)
// acknowledged writes were lost.

#include "bench/connection.hpp"
#include "bench/failover_run.hpp"
#include "bench/latency_run.hpp"
#include "bench/run_support.hpp"
#include "bench/timeline.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>

namespace bench = redvip::bench;

namespace {

constexpr int kExitUsage = 1;
constexpr int kExitLost = 3;

// Caps on what the command line may ask for: beyond them a typo, not a benchmark.
constexpr std::uint64_t kMaxConnections = 10000;
constexpr std::uint64_t kMaxPipeline = 10000;
constexpr std::size_t kMaxValueSize = 16 * 1024 * 1024;

bench::Endpoint endpoint_or_throw(const std::string& text, const char* option) {
    auto endpoint = bench::parse_endpoint(text);
    if (!endpoint)
        throw bench::BenchError(fmt::format("{}: expected HOST:PORT, got \"{}\"", option, text));
    return *endpoint;
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out.flush()) throw bench::BenchError(fmt::format("cannot write {}", path));
}

struct LatencyArgs {
    std::string target, password, command = "get", compare, json;
    std::uint64_t connections = 50, pipeline = 1, keyspace = 100000, requests = 0;
    std::size_t value_size = 32;
    double duration = 0, rate = 0;
};

struct FailoverArgs {
    std::string target, password, fault, verify, json, svg;
    std::uint64_t connections = 4;
    double rate = 1000, duration = 0, fault_at = -1;
};

void add_latency(CLI::App& app, LatencyArgs& a) {
    app.add_option("--target", a.target, "HOST:PORT to load")->required();
    app.add_option("--password", a.password, "AUTH password");
    app.add_option("--connections,-c", a.connections, "connections per target")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, kMaxConnections));
    app.add_option("--pipeline,-P", a.pipeline, "requests in flight per connection")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, kMaxPipeline));
    app.add_option("--command", a.command, "ping|get|set|mix (mix: 80% GET, 20% SET)")
        ->capture_default_str()
        ->check(CLI::IsMember({"ping", "get", "set", "mix"}));
    app.add_option("--value-size", a.value_size, "SET value bytes")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{0}, kMaxValueSize));
    app.add_option("--keyspace", a.keyspace, "distinct keys (random uniform)")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000'000}));
    auto* requests = app.add_option("--requests,-n", a.requests, "requests per target")
                         ->check(CLI::Range(std::uint64_t{1}, UINT64_MAX / 2));
    auto* duration = app.add_option("--duration", a.duration, "seconds per target")
                         ->check(CLI::Range(0.001, 86400.0));
    requests->excludes(duration);
    app.add_option("--rate", a.rate, "open loop: offered ops/s per target")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("--compare", a.compare,
                   "HOST:PORT to run the same load against, alternating in rounds");
    app.add_option("--json", a.json, "write the report as JSON to FILE");
}

void add_failover(CLI::App& app, FailoverArgs& a) {
    app.add_option("--target", a.target, "HOST:PORT to write through")->required();
    app.add_option("--password", a.password, "AUTH password");
    app.add_option("--connections,-c", a.connections, "writing connections")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, kMaxConnections));
    app.add_option("--rate", a.rate, "writes/s over all connections")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 1e6));
    app.add_option("--duration", a.duration, "seconds of writing")
        ->required()
        ->check(CLI::Range(0.1, 86400.0));
    auto* at = app.add_option("--fault-at", a.fault_at, "seconds after the start to run --fault")
                   ->check(CLI::Range(0.0, 86400.0));
    auto* fault = app.add_option("--fault", a.fault, "shell command that causes the fault");
    at->needs(fault);
    fault->needs(at);
    app.add_option("--verify", a.verify, "HOST:PORT to read back from (default: the target)");
    app.add_option("--json", a.json, "write the report as JSON to FILE");
    app.add_option("--svg", a.svg, "write throughput and p99 per 100 ms as an SVG chart to FILE");
}

int run_latency(const LatencyArgs& a) {
    bench::LatencyOptions o;
    o.target = endpoint_or_throw(a.target, "--target");
    if (!a.compare.empty()) o.compare = endpoint_or_throw(a.compare, "--compare");
    if (a.requests == 0 && a.duration == 0)
        throw bench::BenchError("one of --requests or --duration is required");
    o.password = a.password;
    o.connections = a.connections;
    o.pipeline = a.pipeline;
    o.workload = {*bench::parse_command_mix(a.command), a.value_size, a.keyspace};
    if (a.requests > 0) o.requests = a.requests;
    if (a.duration > 0) o.duration_s = a.duration;
    if (a.rate > 0) o.rate = a.rate;
    o.progress = bench::stderr_is_terminal();
    const bench::LatencyReport report = bench::run_latency(o);
    std::fputs(bench::latency_table(report).c_str(), stdout);
    if (!a.json.empty()) write_file(a.json, bench::latency_json(report).dump(2) + "\n");
    return 0;
}

int run_failover(const FailoverArgs& a) {
    bench::FailoverOptions o;
    o.target = endpoint_or_throw(a.target, "--target");
    if (!a.verify.empty()) o.verify = endpoint_or_throw(a.verify, "--verify");
    o.password = a.password;
    o.connections = a.connections;
    o.rate = a.rate;
    o.duration_s = a.duration;
    if (a.fault_at >= 0) o.fault_at_s = a.fault_at;
    o.fault_command = a.fault;
    o.progress = bench::stderr_is_terminal();
    const bench::FailoverReport report = bench::run_failover(o);
    std::fputs(bench::failover_table(report).c_str(), stdout);
    if (!a.json.empty()) write_file(a.json, bench::failover_json(report).dump(2) + "\n");
    if (!a.svg.empty()) {
        const auto& w = report.verdict.window;
        bench::ChartMarkers markers;
        if (report.record.fault_ns)
            markers.fault_s = static_cast<double>(*report.record.fault_ns) / 1e9;
        if (w.recovered) markers.recovery_s = static_cast<double>(w.end_ns) / 1e9;
        if (report.record.fault_ns)
            for (const auto& c : report.verdict.connection_windows)
                markers.connections.push_back({static_cast<double>(c.start_ns) / 1e9,
                                               static_cast<double>(c.end_ns) / 1e9, c.recovered});
        const auto timeline = bench::build_timeline(report.record.acks, report.record.end_ns);
        write_file(a.svg,
                   bench::render_svg(timeline, markers, "redvip-bench failover: " + report.target));
    }
    return report.verdict.lost > 0 ? kExitLost : 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"redvip-bench: latency and failover benchmarks for redvip"};
    app.set_version_flag("--version", std::string("redvip-bench ") + REDVIP_VERSION);
    app.require_subcommand(1);
    LatencyArgs latency;
    FailoverArgs failover;
    CLI::App* latency_cmd =
        app.add_subcommand("latency", "throughput and latency percentiles under load");
    CLI::App* failover_cmd = app.add_subcommand(
        "failover", "acknowledged writes lost and unavailability during a fault");
    add_latency(*latency_cmd, latency);
    add_failover(*failover_cmd, failover);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUsage;
    }
    try {
        if (latency_cmd->parsed()) return run_latency(latency);
        return run_failover(failover);
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "redvip-bench: %s\n", e.what());
        return kExitUsage;
    }
}
