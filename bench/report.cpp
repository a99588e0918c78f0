#include "bench/report.hpp"

#include <fmt/format.h>

namespace redvip::bench {

namespace {

nlohmann::json figures_json(const LatencyFigures& f) {
    return {{"target", f.target},
            {"throughput_rps", f.throughput_rps},
            {"requests", f.requests},
            {"errors", f.errors},
            {"seconds", f.seconds},
            {"latency_us",
             {{"p50", f.p50}, {"p90", f.p90}, {"p99", f.p99}, {"p999", f.p999}, {"max", f.max}}}};
}

nlohmann::json ratio(double a, double b) {
    if (b == 0) return nullptr;
    return a / b;
}

double ms(std::int64_t ns) {
    return static_cast<double>(ns) / 1e6;
}

std::string figures_row(const LatencyFigures& f) {
    return fmt::format("{:<22} {:>12.0f} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}\n", f.target,
                       f.throughput_rps, f.requests, f.errors, f.p50, f.p90, f.p99, f.p999, f.max);
}

std::string ratio_cell(const nlohmann::json& r) {
    return r.is_null() ? std::string("-") : fmt::format("{:.2f}", r.get<double>());
}

} // namespace

LatencyFigures latency_figures(std::string target, const Histogram& histogram,
                               std::uint64_t requests, std::uint64_t errors, double seconds) {
    LatencyFigures f;
    f.target = std::move(target);
    f.requests = requests;
    f.errors = errors;
    f.seconds = seconds;
    f.throughput_rps = seconds > 0 ? static_cast<double>(requests) / seconds : 0;
    f.p50 = histogram.value_at_percentile(50);
    f.p90 = histogram.value_at_percentile(90);
    f.p99 = histogram.value_at_percentile(99);
    f.p999 = histogram.value_at_percentile(99.9);
    f.max = histogram.max();
    return f;
}

nlohmann::json ratio_json(const LatencyFigures& t, const LatencyFigures& c) {
    auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    return {{"throughput_rps", ratio(t.throughput_rps, c.throughput_rps)},
            {"latency_us",
             {{"p50", ratio(d(t.p50), d(c.p50))},
              {"p90", ratio(d(t.p90), d(c.p90))},
              {"p99", ratio(d(t.p99), d(c.p99))},
              {"p999", ratio(d(t.p999), d(c.p999))},
              {"max", ratio(d(t.max), d(c.max))}}}};
}

nlohmann::json latency_json(const LatencyReport& report) {
    nlohmann::json j = figures_json(report.target);
    const LatencySettings& s = report.settings;
    j["mode"] = "latency";
    j["settings"] = {{"connections", s.connections},
                     {"pipeline", s.pipeline},
                     {"command", s.command},
                     {"value_size", s.value_size},
                     {"keyspace", s.keyspace},
                     {"rounds", s.rounds},
                     {"rate", s.rate ? nlohmann::json(*s.rate) : nlohmann::json(nullptr)}};
    if (report.compare) {
        j["compare"] = figures_json(*report.compare);
        j["ratio"] = ratio_json(report.target, *report.compare);
    }
    return j;
}

std::string latency_table(const LatencyReport& report) {
    const LatencySettings& s = report.settings;
    std::string out =
        fmt::format("latency: {} connections, pipeline {}, {} ({} B values, {} keys), {}\n",
                    s.connections, s.pipeline, s.command, s.value_size, s.keyspace,
                    s.rate ? fmt::format("open loop at {:.0f} ops/s", *s.rate) : "closed loop");
    out += fmt::format("{:<22} {:>12} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}\n", "target (us)",
                       "ops/s", "requests", "errors", "p50", "p90", "p99", "p99.9", "max");
    out += figures_row(report.target);
    if (!report.compare) return out;
    out += figures_row(*report.compare);
    const nlohmann::json r = ratio_json(report.target, *report.compare);
    const nlohmann::json& l = r["latency_us"];
    out += fmt::format("{:<22} {:>12} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}\n", "ratio",
                       ratio_cell(r["throughput_rps"]), "", "", ratio_cell(l["p50"]),
                       ratio_cell(l["p90"]), ratio_cell(l["p99"]), ratio_cell(l["p999"]),
                       ratio_cell(l["max"]));
    return out;
}

nlohmann::json failover_json(const FailoverReport& report) {
    const FailoverVerdict& v = report.verdict;
    nlohmann::json errors = nlohmann::json::object();
    for (std::size_t i = 0; i < kErrorKindCount; ++i)
        errors[std::string(error_kind_name(static_cast<ErrorKind>(i)))] = report.record.errors[i];
    const auto& fault = report.record.fault_ns;
    nlohmann::json gaps = nlohmann::json::array();
    for (const Window& w : v.connection_windows)
        gaps.push_back(ms(w.length_ns()));
    return {{"mode", "failover"},
            {"target", report.target},
            {"verify", report.verify},
            {"connections", report.connections},
            {"rate", report.rate},
            {"duration_s", report.duration_s},
            {"issued", v.issued},
            {"acked", v.acked},
            {"lost", v.lost},
            {"unacked_present", v.unacked_present},
            {"window_ms", ms(v.window.length_ns())},
            {"window_start_ms", ms(v.window.start_ns)},
            {"window_end_ms", ms(v.window.end_ns)},
            {"recovered", v.window.recovered},
            {"worst_connection_gap_ms", v.worst() ? nlohmann::json(ms(v.worst()->length_ns())) : nlohmann::json(nullptr)},
            {"worst_connection_recovered", v.worst() ? v.worst()->recovered : true},
            {"connection_gaps_ms", gaps},
            {"fault_at_ms", fault ? nlohmann::json(ms(*fault)) : nlohmann::json(nullptr)},
            {"fault_exit_status", report.fault_exit_status
                                      ? nlohmann::json(*report.fault_exit_status)
                                      : nlohmann::json(nullptr)},
            {"errors", errors},
            {"reconnects", report.record.reconnects}};
}

std::string failover_table(const FailoverReport& report) {
    const FailoverVerdict& v = report.verdict;
    std::string out = fmt::format(
        "failover: {} via {} connections at {:.0f} writes/s for {:.1f} s, verified on {}\n",
        report.target, report.connections, report.rate, report.duration_s, report.verify);
    out += fmt::format("  writes sent             {:>10}\n", v.issued);
    out += fmt::format("  acknowledged            {:>10}\n", v.acked);
    out += fmt::format("  acknowledged but lost   {:>10}\n", v.lost);
    out += fmt::format("  present, never acked    {:>10}\n", v.unacked_present);
    out += fmt::format("  unavailability window   {:>10.1f} ms ({:.3f} s .. {:.3f} s{})\n",
                       ms(v.window.length_ns()), ms(v.window.start_ns) / 1000,
                       ms(v.window.end_ns) / 1000, v.window.recovered ? "" : ", not recovered");
    if (const Window* w = v.worst())
        out += fmt::format("  worst connection gap    {:>10.1f} ms (connection {} of {}{})\n", ms(w->length_ns()),
                           v.worst_connection + 1, v.connection_windows.size(), w->recovered ? "" : ", not recovered");
    if (report.record.fault_ns)
        out += fmt::format("  fault started at        {:>10.3f} s (exit status {})\n",
                           ms(*report.record.fault_ns) / 1000,
                           report.fault_exit_status ? std::to_string(*report.fault_exit_status)
                                                    : "unknown");
    out += fmt::format("  reconnects              {:>10}\n", report.record.reconnects);
    out += "  client errors:";
    bool any = false;
    for (std::size_t i = 0; i < kErrorKindCount; ++i) {
        if (report.record.errors[i] == 0) continue;
        out += fmt::format(" {}={}", error_kind_name(static_cast<ErrorKind>(i)),
                           report.record.errors[i]);
        any = true;
    }
    out += any ? "\n" : " none\n";
    return out;
}

} // namespace redvip::bench
