#include "proxy/prometheus.hpp"

#include "proxy/command.hpp"
#include "proxy/proxy.hpp"

#include <fmt/format.h>

#include <initializer_list>

namespace redvip::proxy {

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void PrometheusText::line(std::string_view name, std::string_view labels, std::string_view value) {
    if (labels.empty())
        fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    else
        fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
}

void PrometheusText::sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    line(name, labels, fmt::format("{}", value));
}

void PrometheusText::sample(std::string_view name, std::string_view labels, double value) {
    line(name, labels, fmt::format("{}", value));
}

void PrometheusText::histogram(std::string_view name, std::string_view labels, const LatencyHistogram& h) {
    const std::string bucket = fmt::format("{}_bucket", name);
    const std::string sep = labels.empty() ? "" : ",";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBucketsUs.size(); ++i) {
        cumulative += h.buckets[i];
        const double le = static_cast<double>(kLatencyBucketsUs[i]) / 1e6;
        line(bucket, fmt::format("{}{}le=\"{}\"", labels, sep, le), fmt::format("{}", cumulative));
    }
    cumulative += h.buckets.back();
    line(bucket, fmt::format("{}{}le=\"+Inf\"", labels, sep), fmt::format("{}", cumulative));
    line(fmt::format("{}_sum", name), labels, fmt::format("{}", static_cast<double>(h.sum_us) / 1e6));
    line(fmt::format("{}_count", name), labels, fmt::format("{}", h.count));
}

namespace {

struct Counter {
    std::string_view name, help;
    std::uint64_t value;
};

void render_counters(std::initializer_list<Counter> counters, PrometheusText& out) {
    for (const Counter& c : counters) {
        out.family(c.name, "counter", c.help);
        out.sample(c.name, "", c.value);
    }
}

// Multiplexed mode ([proxy] multiplex): what shares, what pinned and why, and
// how well the shared links batch (requests per write).
void render_multiplexing(const ProxyStats& s, PrometheusText& out) {
    out.family("redvip_proxy_sessions", "gauge",
               "Client sessions open now, by mode: sharing a link, or pinned to a connection of their own.");
    out.sample("redvip_proxy_sessions", "mode=\"shared\"", s.sessions_shared);
    out.sample("redvip_proxy_sessions", "mode=\"pinned\"", s.sessions_pinned);
    out.family("redvip_proxy_pins_total", "counter", "Sessions that left shared mode, by the reason.");
    for (std::size_t i = 1; i < kPinReasons; ++i) // (0 is none)
        out.sample("redvip_proxy_pins_total", fmt::format("reason=\"{}\"", to_string(static_cast<PinReason>(i))),
                   s.pins[i]);
    out.family("redvip_proxy_shared_links_ready", "gauge", "Shared links connected to Redis now.");
    out.sample("redvip_proxy_shared_links_ready", "", s.shared_links_ready);
    render_counters({
        {"redvip_proxy_shared_link_connects_total", "Shared links connected (and the command table read).",
         s.shared_link_connects},
        {"redvip_proxy_shared_link_failures_total", "Shared links whose connection broke.", s.shared_link_failures},
        {"redvip_proxy_shared_link_pauses_total", "Times a shared link stopped reading for a client that did not read.",
         s.shared_link_pauses},
        {"redvip_proxy_shared_link_requests_total", "Requests sent on shared links.", s.shared_link_requests},
        {"redvip_proxy_shared_link_writes_total", "Writes to shared links (requests / writes: the batching).",
         s.shared_link_writes},
        {"redvip_proxy_shared_link_reads_total", "Reads from shared links.", s.shared_link_reads},
    }, out);
}

} // namespace

void render_proxy_stats(const ProxyStats& s, PrometheusText& out) {
    render_counters({
        {"redvip_proxy_connections_accepted_total", "Client connections accepted.", s.connections_accepted},
        {"redvip_proxy_connections_rejected_total", "Client connections refused (max_clients, or fenced).",
         s.connections_rejected},
        {"redvip_proxy_commands_total", "Client commands handled (forwarded or answered by the proxy).", s.commands},
        {"redvip_proxy_client_bytes_received_total", "Bytes read from clients.", s.bytes_from_clients},
        {"redvip_proxy_client_bytes_sent_total", "Bytes written to clients.", s.bytes_to_clients},
        {"redvip_proxy_protocol_errors_total", "Clients closed for malformed RESP.", s.protocol_errors},
        {"redvip_proxy_auth_failures_total", "AUTH or HELLO AUTH with a wrong password.", s.auth_failures},
        {"redvip_proxy_backend_errors_total", "Sessions that lost, or could not get, their Redis connection.",
         s.backend_errors},
        {"redvip_proxy_backend_timeouts_total", "Sessions closed because Redis did not answer in time.",
         s.backend_timeouts},
        {"redvip_proxy_idle_timeouts_total", "Idle clients closed.", s.idle_timeouts},
        {"redvip_proxy_fenced_replies_total", "Commands refused while fenced.", s.fenced_replies},
        {"redvip_proxy_hold_expired_replies_total", "Commands held longer than hold_timeout_ms, then refused.",
         s.hold_expired_replies},
        {"redvip_proxy_state_changes_total", "Changes of the serving state.", s.state_changes},
        {"redvip_proxy_relayed_sessions_total", "Sessions sent to the new master's Redis after a switchover.",
         s.relayed_sessions},
        {"redvip_proxy_retired_sessions_total",
         "Sessions closed after a switchover because their connection state could not move.", s.retired_sessions},
    }, out);
    render_multiplexing(s, out);
    out.family("redvip_proxy_connections_active", "gauge", "Client connections open now.");
    out.sample("redvip_proxy_connections_active", "", s.connections_active);
    out.family("redvip_proxy_serving_state", "gauge",
               "The serving state: 1 for the current one of serving, holding, fenced, relaying, closing.");
    for (ServingState state : {ServingState::serving, ServingState::holding, ServingState::fenced,
                               ServingState::relaying, ServingState::closing})
        out.sample("redvip_proxy_serving_state", fmt::format("state=\"{}\"", to_string(state)),
                   std::uint64_t{s.state == state ? 1U : 0U});
    out.family("redvip_proxy_request_duration_seconds", "histogram",
               "From a request's last byte read to its reply's last byte from Redis, by command class.");
    for (std::size_t i = 0; i < kCommandClasses; ++i)
        out.histogram("redvip_proxy_request_duration_seconds",
                      fmt::format("class=\"{}\"", to_string(static_cast<CommandClass>(i))), s.latency[i]);
}

std::string render_prometheus(const ProxyStats& stats) {
    PrometheusText out;
    render_proxy_stats(stats, out);
    return out.take();
}

} // namespace redvip::proxy
