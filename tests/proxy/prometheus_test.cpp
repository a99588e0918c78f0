// Prometheus text: the histogram's buckets (edges inclusive, cumulative when
// rendered, +Inf equal to the count), the writer's lines, and ProxyStats
// rendered whole.
#include "proxy/prometheus.hpp"
#include "proxy/proxy.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace redvip::proxy;
using std::chrono::microseconds;

TEST_CASE("a latency lands in the first bucket whose bound it does not exceed") {
    LatencyHistogram h;
    h.record(microseconds(0));
    h.record(microseconds(100));     // le=0.0001: the bound is inclusive
    h.record(microseconds(101));     // le=0.00025
    h.record(microseconds(10'000'000));
    h.record(microseconds(10'000'001)); // past the last bound
    h.record(microseconds(-5));      // a clock step back counts as 0
    CHECK(h.buckets[0] == 3);
    CHECK(h.buckets[1] == 1);
    CHECK(h.buckets[kLatencyBucketsUs.size() - 1] == 1);
    CHECK(h.buckets.back() == 1);
    CHECK(h.count == 6);
    CHECK(h.sum_us == 0 + 100 + 101 + 10'000'000 + 10'000'001);
}

TEST_CASE("histograms merge by adding") {
    LatencyHistogram a, b;
    a.record(microseconds(50));
    b.record(microseconds(50));
    b.record(microseconds(3'000));
    a.merge(b);
    CHECK(a.count == 3);
    CHECK(a.buckets[0] == 2);
    CHECK(a.buckets[5] == 1); // le=0.005
    CHECK(a.sum_us == 3'100);
}

TEST_CASE("the writer's lines") {
    PrometheusText out;
    out.family("x_total", "counter", "Things.");
    out.sample("x_total", "", std::uint64_t{7});
    out.sample("x_total", "kind=\"a\"", 0.5);
    CHECK(out.text() == "# HELP x_total Things.\n# TYPE x_total counter\nx_total 7\nx_total{kind=\"a\"} 0.5\n");
}

TEST_CASE("a rendered histogram is cumulative and ends at its count") {
    LatencyHistogram h;
    h.record(microseconds(90));
    h.record(microseconds(400));
    h.record(microseconds(400));
    h.record(microseconds(20'000'000));
    PrometheusText out;
    out.histogram("lat_seconds", "class=\"read\"", h);
    const std::string& t = out.text();
    CHECK(t.find("lat_seconds_bucket{class=\"read\",le=\"0.0001\"} 1\n") != std::string::npos);
    CHECK(t.find("lat_seconds_bucket{class=\"read\",le=\"0.00025\"} 1\n") != std::string::npos);
    CHECK(t.find("lat_seconds_bucket{class=\"read\",le=\"0.0005\"} 3\n") != std::string::npos);
    CHECK(t.find("lat_seconds_bucket{class=\"read\",le=\"10\"} 3\n") != std::string::npos);
    CHECK(t.find("lat_seconds_bucket{class=\"read\",le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(t.find("lat_seconds_sum{class=\"read\"} 20.00089\n") != std::string::npos);
    CHECK(t.find("lat_seconds_count{class=\"read\"} 4\n") != std::string::npos);
}

TEST_CASE("ProxyStats rendered") {
    ProxyStats s;
    s.commands = 42;
    s.connections_active = 3;
    s.state = ServingState::fenced;
    s.latency[static_cast<std::size_t>(CommandClass::write)].record(microseconds(700));
    const std::string t = render_prometheus(s);
    CHECK(t.find("# TYPE redvip_proxy_commands_total counter\nredvip_proxy_commands_total 42\n") !=
          std::string::npos);
    CHECK(t.find("redvip_proxy_connections_active 3\n") != std::string::npos);
    CHECK(t.find("redvip_proxy_serving_state{state=\"FENCED\"} 1\n") != std::string::npos);
    CHECK(t.find("redvip_proxy_serving_state{state=\"SERVING\"} 0\n") != std::string::npos);
    CHECK(t.find("redvip_proxy_request_duration_seconds_bucket{class=\"write\",le=\"0.001\"} 1\n") !=
          std::string::npos);
    CHECK(t.find("redvip_proxy_request_duration_seconds_count{class=\"read\"} 0\n") != std::string::npos);
    // One HELP and TYPE per family, even with four classes.
    std::size_t types = 0;
    for (std::size_t at = t.find("# TYPE redvip_proxy_request_duration_seconds "); at != std::string::npos;
         at = t.find("# TYPE redvip_proxy_request_duration_seconds ", at + 1))
        ++types;
    CHECK(types == 1);
    CHECK(t.back() == '\n');
}

TEST_CASE("command classes") {
    CHECK(command_class("GET", false) == CommandClass::read);
    CHECK(command_class("ZRANGEBYSCORE", false) == CommandClass::read);
    CHECK(command_class("SET", false) == CommandClass::write);
    CHECK(command_class("XADD", false) == CommandClass::write);
    CHECK(command_class("BLPOP", true) == CommandClass::blocking);
    CHECK(command_class("XREAD", true) == CommandClass::blocking);
    CHECK(command_class("XREAD", false) == CommandClass::read);
    CHECK(command_class("PING", false) == CommandClass::other);
    CHECK(command_class("EVAL", false) == CommandClass::other);
    CHECK(command_class("XREADGROUP", false) == CommandClass::write); // a row and a write
    CHECK(command_class("GETEX", false) == CommandClass::write);
    CHECK(command_class("GE", false) == CommandClass::other);
    CHECK(command_class("", false) == CommandClass::other);
}
