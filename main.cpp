// redvip's daemon: parse arguments, load the config, wire the components,
// run. Behaviour lives in the folders; this file only connects them, adapting
// one side's port to the other's implementation in a few lines each.
#include "conf/command_line.hpp"
#include "conf/config.hpp"
#include "election/node/admin.hpp"
#include "election/node/daemon.hpp"
#include "election/node/node.hpp"
#include "proxy/metrics.hpp"
#include "proxy/prometheus.hpp"
#include "proxy/proxy.hpp"
#include "vip/vip.hpp"

#include <csignal>
#include <iostream>
#include <spdlog/spdlog.h>

namespace {

namespace asio = boost::asio;
namespace election = redvip::election;
namespace proxy = redvip::proxy;
using election::Logs;

// --- adapters between the components' ports, then the nodes, then main ---

proxy::ServingState to_serving(election::ProxyMode mode) {
    using M = election::ProxyMode;
    using S = proxy::ServingState;
    return mode == M::serving    ? S::serving
           : mode == M::holding  ? S::holding
           : mode == M::relaying ? S::relaying
           : mode == M::closing  ? S::closing
                                 : S::fenced;
}

redvip::vip::Completion from_vip(election::StepDone done) {
    return [done = std::move(done)](const redvip::vip::Status& s) {
        done(s.ok() ? election::StepResult::success() : election::StepResult::failure(s.message));
    };
}

// The proxy's health report; INFO's facts only from a periodic check.
election::RedisCheck to_check(const proxy::HealthReport& r) {
    const bool periodic = r.source == proxy::HealthReport::Source::check;
    return {periodic, r.ok, r.error, r.latency, r.refused,
            r.ok && periodic ? std::optional(r.replication) : std::nullopt};
}

// With [vrrp]: the proxy and the VIP wired to the election's node.
class ElectedNode {
public:
    ElectedNode(asio::io_context& io, const redvip::conf::Config& config, const Logs& logs)
        : log_(logs.make("main"))
        , proxy_(config, logs.make("proxy"))
        , vip_(io.get_executor(), *config.vip, logs.make("vip"), vip_events())
        , node_(io.get_executor(), config, logs, ports())
        , metrics_listen_(config.metrics.listen) {}

    // Start safe: fenced until the election says master, stale VIPs removed
    // before the first advert.
    std::string start() {
        proxy_.set_state(proxy::ServingState::fenced);
        if (auto error = node_.open(); !error.empty()) return error;
        proxy_.on_health(
            [this](const proxy::HealthReport& r) { node_.on_redis_check(to_check(r)); });
        proxy_.start();
        if (auto s = vip_.start_watch(); !s.ok()) return s.message;
        if (metrics_listen_)
            metrics_.emplace(*metrics_listen_, [this] { return metrics(); }).start();
        vip_.async_cleanup_stale([this](const redvip::vip::Status& s) {
            if (!s.ok()) log_->warn("removing stale VIPs: {}", s.message);
            node_.begin();
        });
        return {};
    }

    void stop(std::function<void()> done) {
        if (metrics_) metrics_->stop();
        node_.stop([this] { vip_.stop(), proxy_.stop(); }, std::move(done));
    }

private:
    std::string metrics() { // on the metrics server's thread
        proxy::PrometheusText out;
        proxy::render_proxy_stats(proxy_.stats(), out);
        if (auto status = node_.status_from_another_thread(std::chrono::seconds(2)))
            election::render_metrics(*status, {[&out](auto... a) { out.family(a...); },
                                               [&out](auto... a) { out.sample(a...); }});
        return out.take();
    }

    redvip::vip::VipEvents vip_events() {
        return {[this](std::string_view why) { node_.on_link(false, std::string(why)); },
                [this] { node_.on_link(true, {}); },
                {}};
    }

    election::NodePorts ports() {
        return {
            [this](election::ProxyMode mode, const std::optional<redvip::conf::Endpoint>& relay) {
                relay ? proxy_.relay_to(*relay, to_serving(mode))
                      : proxy_.set_state(to_serving(mode));
            },
            [this](auto done) { proxy_.when_drained(std::move(done)); },
            [this] { return std::string(proxy::to_string(proxy_.state())); },
            [this](auto done) { vip_.async_acquire(from_vip(std::move(done))); },
            [this](auto done) { vip_.async_release(from_vip(std::move(done))); },
            [this] { return vip_.counters(); }};
    }

    election::LoggerPtr log_;
    proxy::Proxy proxy_;
    redvip::vip::VipManager vip_;
    election::ElectionNode node_;
    std::optional<redvip::conf::Endpoint> metrics_listen_;
    std::optional<proxy::MetricsServer> metrics_;
};

// Without [vrrp]: the proxy alone, always serving.
class PlainNode {
public:
    PlainNode(asio::io_context&, const redvip::conf::Config& config, const Logs& logs)
        : proxy_(config, logs.make("proxy"))
        , metrics_listen_(config.metrics.listen) {}

    std::string start() {
        proxy_.start();
        if (metrics_listen_)
            metrics_
                .emplace(*metrics_listen_,
                         [this] { return proxy::render_prometheus(proxy_.stats()); })
                .start();
        return {};
    }

    void stop(std::function<void()> done) {
        if (metrics_) metrics_->stop();
        proxy_.stop();
        done();
    }

private:
    proxy::Proxy proxy_;
    std::optional<redvip::conf::Endpoint> metrics_listen_;
    std::optional<proxy::MetricsServer> metrics_;
};

// Starts the node, runs until SIGTERM or SIGINT has stopped it.
template <class Node> int serve(const redvip::conf::Config& config, const std::string& log_level) {
    // Signals first: a SIGTERM that arrives while starting must stop us cleanly.
    asio::io_context io;
    asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    election::Watchdog watchdog(io);
    Logs logs(log_level.empty() ? config.log.level : log_level);
    auto log = logs.make("main");
    log->info("redvip {} starting: node {}, proxy {} -> redis {}, {}", REDVIP_VERSION,
              config.node.name.empty() ? "(unnamed)" : config.node.name,
              config.proxy.listen.to_string(), config.redis.address.to_string(),
              config.vrrp ? "VRRP election" : "plain proxy (no [vrrp]: always serving)");
    Node node(io, config, logs);
    std::string error;
    try {
        error = node.start();
    } catch (const std::system_error& e) {
        error = e.what();
    }
    if (!error.empty()) return log->critical("{}", error), 1;
    election::handle_signals(signals, log, [&io, &node] { node.stop([&io] { io.stop(); }); });
    election::notify_ready();
    io.run();
    log->info("stopped");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const auto parsed = redvip::conf::parse_command_line(argc, argv, REDVIP_VERSION);
    std::cout << parsed.out;
    std::cerr << parsed.err;
    if (!parsed.command) return parsed.exit_code;
    const auto& command = *parsed.command;
    const auto loaded = redvip::conf::load_file(command.config_path);
    std::cerr << loaded.errors_text();
    if (!loaded) return 1;
    const auto& config = loaded.config;
    using Action = redvip::conf::CommandLine::Action;
    if (command.action == Action::check_config) {
        std::cout << "# " << command.config_path
                  << ": valid; effective configuration with defaults:\n"
                  << redvip::conf::to_toml(*config);
        return 0;
    }
    if (command.action != Action::run)
        return election::admin_command(command, *config, std::cout, std::cerr);
    return config->vrrp ? serve<ElectedNode>(*config, command.log_level)
                        : serve<PlainNode>(*config, command.log_level);
}
