// A small daemon for the proxy's integration tests of what main.cpp does not
// wire yet: runs a Proxy from a config file, prints each health report as a
// JSON line on stdout, serves [metrics] listen with render_prometheus(), and
// takes commands on stdin ("state serving|holding|fenced|closing", "relay HOST:PORT",
// "drain" -> {"event":"drained","busy":N}, "quit").
//
//   proxy_driver CONFIG   -> {"event":"ready","metrics_port":N} then reports
#include "conf/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/proxy.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

using namespace redvip;

namespace {

std::mutex out_mutex;

void emit(const nlohmann::json& j) {
    std::lock_guard lock(out_mutex);
    std::cout << j.dump() << std::endl;
}

std::int64_t mono_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

nlohmann::json to_json(const proxy::HealthReport& r) {
    nlohmann::json j{{"event", "health"},
                     {"mono_ns", mono_ns()},
                     {"source", r.source == proxy::HealthReport::Source::check ? "check" : "pool"},
                     {"ok", r.ok},
                     {"error", r.error},
                     {"refused", r.refused},
                     {"latency_us", r.latency.count()}};
    if (r.ok) {
        const auto& i = r.replication;
        j["role"] = proxy::to_string(i.role);
        j["master_replid"] = i.master_replid;
        j["master_repl_offset"] = i.master_repl_offset;
        j["second_repl_offset"] = i.second_repl_offset;
        j["connected_slaves"] = i.connected_slaves;
        if (i.role == proxy::RedisRole::replica) {
            j["master_host"] = i.master_host;
            j["master_port"] = i.master_port;
            j["master_link_status"] = proxy::to_string(*i.master_link_status);
            if (i.slave_repl_offset)
                j["slave_repl_offset"] = *i.slave_repl_offset;
            if (i.master_last_io_seconds_ago)
                j["master_last_io_seconds_ago"] = *i.master_last_io_seconds_ago;
        }
    }
    return j;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: proxy_driver CONFIG\n";
        return 2;
    }
    auto loaded = conf::load_file(argv[1]);
    if (!loaded) {
        for (const auto& e : loaded.errors)
            std::cerr << e.to_string() << '\n';
        return 1;
    }
    const conf::Config& config = *loaded.config;
    auto log = std::make_shared<spdlog::logger>("proxy", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    proxy::Proxy px(config, log);
    px.on_health([](const proxy::HealthReport& r) { emit(to_json(r)); });
    std::optional<proxy::MetricsServer> metrics;
    if (config.metrics.listen)
        metrics.emplace(*config.metrics.listen, [&px] { return proxy::render_prometheus(px.stats()); });
    try {
        px.start();
        if (metrics)
            metrics->start();
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    emit({{"event", "ready"}, {"metrics_port", metrics ? metrics->port() : 0}});
    std::string line;
    while (std::getline(std::cin, line) && line != "quit") {
        if (line == "state serving")
            px.set_state(proxy::ServingState::serving);
        else if (line == "state holding")
            px.set_state(proxy::ServingState::holding);
        else if (line == "state fenced")
            px.set_state(proxy::ServingState::fenced);
        else if (line == "state closing")
            px.set_state(proxy::ServingState::closing);
        else if (line.starts_with("relay ")) {
            auto target = conf::parse_endpoint(line.substr(6));
            if (!target) {
                std::cerr << "relay: not HOST:PORT: " << line.substr(6) << '\n';
                return 2;
            }
            px.relay_to(*target);
        } else if (line == "drain")
            px.when_drained([](std::size_t busy) {
                emit({{"event", "drained"}, {"busy", busy}, {"mono_ns", mono_ns()}});
            });
        emit({{"event", "ack"}, {"command", line}});
    }
    if (metrics)
        metrics->stop(); // before the proxy its render reads
    px.stop();
    return 0;
}
