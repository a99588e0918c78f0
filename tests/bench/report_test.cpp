#include "bench/report.hpp"

#include <doctest/doctest.h>

using namespace redvip::bench;

namespace {

LatencyFigures figures(const std::string& target, std::uint64_t base_us, double seconds) {
    Histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v)
        h.record(base_us + v);
    return latency_figures(target, h, 1000, 2, seconds);
}

} // namespace

TEST_CASE("latency figures come from the histogram and the elapsed time") {
    const LatencyFigures f = figures("a:1", 0, 0.5);
    CHECK(f.requests == 1000);
    CHECK(f.errors == 2);
    CHECK(f.throughput_rps == doctest::Approx(2000));
    CHECK(f.p50 == 500);
    CHECK(f.p90 == 900);
    CHECK(f.p99 == 990);
    CHECK(f.p999 == 999);
    CHECK(f.max == 1000);
}

TEST_CASE("latency JSON: the stable top-level keys, compare and ratio only when comparing") {
    LatencyReport report;
    report.settings = {50, 16, "get", 32, 100000, std::nullopt, 1};
    report.target = figures("proxy:1", 1000, 1.0);
    nlohmann::json j = latency_json(report);
    for (const char* key : {"throughput_rps", "requests", "errors", "latency_us"})
        CHECK(j.contains(key));
    for (const char* key : {"p50", "p90", "p99", "p999", "max"})
        CHECK(j["latency_us"][key].is_number_unsigned());
    CHECK_FALSE(j.contains("compare"));
    CHECK_FALSE(j.contains("ratio"));
    CHECK(j["settings"]["rate"].is_null());

    report.compare = figures("direct:1", 0, 0.5);
    j = latency_json(report);
    for (const char* key : {"throughput_rps", "requests", "errors", "latency_us"})
        CHECK(j["compare"].contains(key));
    CHECK(j["compare"]["target"] == "direct:1");
    CHECK(j["ratio"]["throughput_rps"].get<double>() == doctest::Approx(0.5));
    CHECK(j["ratio"]["latency_us"]["max"].get<double>() == doctest::Approx(2.0));
    CHECK(j["ratio"]["latency_us"]["p50"].get<double>() == doctest::Approx(1500.0 / 500.0));
}

TEST_CASE("a ratio over a zero figure is null, not infinity") {
    LatencyFigures zero;
    const nlohmann::json r = ratio_json(figures("a:1", 0, 1), zero);
    CHECK(r["throughput_rps"].is_null());
    CHECK(r["latency_us"]["p99"].is_null());
}

TEST_CASE("the latency table has one row per target and a ratio row") {
    LatencyReport report;
    report.settings = {1, 1, "ping", 32, 1, 5000.0, 6};
    report.target = figures("proxy:1", 0, 1);
    report.compare = figures("direct:1", 0, 1);
    const std::string table = latency_table(report);
    CHECK(table.find("open loop at 5000 ops/s") != std::string::npos);
    CHECK(table.find("proxy:1") != std::string::npos);
    CHECK(table.find("direct:1") != std::string::npos);
    CHECK(table.find("ratio") != std::string::npos);
}

TEST_CASE("failover JSON: the stable keys, every error kind counted") {
    FailoverReport report;
    report.target = "vip:6379";
    report.verify = "vip:6379";
    report.record.issued = 10;
    report.record.errors[static_cast<std::size_t>(ErrorKind::readonly)] = 3;
    report.record.reconnects = 2;
    report.record.fault_ns = 1'500'000'000;
    report.verdict.issued = 10;
    report.verdict.acked = 8;
    report.verdict.lost = 1;
    report.verdict.unacked_present = 1;
    report.verdict.window = Window{1'000'000'000, 1'250'000'000, true};
    report.verdict.connection_windows = {Window{1'000'000'000, 1'250'000'000, true},
                                         Window{1'000'000'000, 2'100'000'000, true}};
    report.verdict.worst_connection = 1;
    const nlohmann::json j = failover_json(report);
    for (const char* key :
         {"acked", "lost", "unacked_present", "window_ms", "errors", "reconnects"})
        CHECK(j.contains(key));
    CHECK(j["acked"] == 8);
    CHECK(j["lost"] == 1);
    CHECK(j["window_ms"].get<double>() == doctest::Approx(250.0));
    CHECK(j["fault_at_ms"].get<double>() == doctest::Approx(1500.0));
    CHECK(j["errors"].size() == kErrorKindCount);
    CHECK(j["errors"]["readonly"] == 3);
    CHECK(j["errors"]["timeout"] == 0);
    CHECK(j["reconnects"] == 2);
    CHECK(j["worst_connection_gap_ms"].get<double>() == doctest::Approx(1100.0));
    CHECK(j["connection_gaps_ms"].size() == 2);
    const std::string table = failover_table(report);
    CHECK(table.find("readonly=3") != std::string::npos);
    CHECK(table.find("250.0 ms") != std::string::npos);
    CHECK(table.find("worst connection gap        1100.0 ms (connection 2 of 2)") != std::string::npos);
}
