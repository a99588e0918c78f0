// Prometheus text exposition (format 0.0.4), pure: the latency histogram the
// proxy threads record into, a writer for metric families, and the proxy's
// statistics rendered with it. The daemon's owner adds its own families
// (election, VIP) with the same writer, in one place, and serves the text
// (metrics.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace redvip::proxy {

struct ProxyStats;

// Upper bounds of the latency buckets, in microseconds: 100 us to 10 s in
// 1-2.5-5 steps, the span between a loopback GET and a backend timeout.
// Fixed, so histograms from every thread and every scrape add up.
inline constexpr std::array<std::uint64_t, 16> kLatencyBucketsUs{
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000};

// Plain counts: recorded by one thread, copied and merged to be read.
struct LatencyHistogram {
    std::array<std::uint64_t, kLatencyBucketsUs.size() + 1> buckets{}; // the last: past 10 s
    std::uint64_t count = 0;
    std::uint64_t sum_us = 0;

    void record(std::chrono::microseconds latency) noexcept {
        const auto us = static_cast<std::uint64_t>(latency.count() < 0 ? 0 : latency.count());
        std::size_t i = 0;
        while (i < kLatencyBucketsUs.size() && us > kLatencyBucketsUs[i])
            ++i; // most replies land in the first few buckets
        ++buckets[i];
        ++count;
        sum_us += us;
    }

    void merge(const LatencyHistogram& other) noexcept {
        for (std::size_t i = 0; i < buckets.size(); ++i)
            buckets[i] += other.buckets[i];
        count += other.count;
        sum_us += other.sum_us;
    }
};

class PrometheusText {
public:
    // Starts a family: its # HELP and # TYPE lines ("counter", "gauge", "histogram").
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample. `labels` without braces, e.g. R"(class="read")", or empty.
    void sample(std::string_view name, std::string_view labels, std::uint64_t value);
    void sample(std::string_view name, std::string_view labels, double value);
    // `name`_bucket (cumulative, le in seconds, +Inf last), `name`_sum (seconds), `name`_count.
    void histogram(std::string_view name, std::string_view labels, const LatencyHistogram& h);

    const std::string& text() const noexcept { return text_; }
    std::string take() noexcept { return std::move(text_); }

private:
    void line(std::string_view name, std::string_view labels, std::string_view value);

    std::string text_;
};

// Every ProxyStats field, as redvip_proxy_* families.
void render_proxy_stats(const ProxyStats& stats, PrometheusText& out);
std::string render_prometheus(const ProxyStats& stats);

} // namespace redvip::proxy
