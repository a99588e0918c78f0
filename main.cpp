// redvip's daemon: parse arguments, load the config, wire the components,
// run. Behaviour lives in the folders; this file only connects them, adapting
// one side's port to the other's implementation in a few lines each.
#include "conf/config.hpp"
#include "election/node/admin.hpp"
#include "election/node/hooks.hpp"
#include "election/node/state_file.hpp"
#include "election/role/driver.hpp"
#include "election/vrrp/runner.hpp"
#include "election/role/redis_executor.hpp"
#include "proxy/metrics.hpp"
#include "proxy/prometheus.hpp"
#include "proxy/proxy.hpp"
#include "vip/vip.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <system_error>

namespace {

namespace asio = boost::asio;
namespace election = redvip::election;
namespace proxy = redvip::proxy;
using LoggerPtr = std::shared_ptr<spdlog::logger>;

// One stderr sink; each component logs under its own name ("proxy", "vrrp", ...).
class Logs {
public:
    explicit Logs(const std::string& level)
        : sink_(std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic))
        , level_(spdlog::level::from_str(level)) {
        sink_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-8l%$ [%n] %v");
    }

    LoggerPtr make(const std::string& component) const {
        auto logger = std::make_shared<spdlog::logger>(component, sink_);
        logger->set_level(level_);
        logger->flush_on(spdlog::level::warn);
        return logger;
    }

private:
    spdlog::sink_ptr sink_;
    spdlog::level::level_enum level_;
};

std::optional<redvip::conf::Config> load(const std::string& path) {
    auto result = redvip::conf::load_file(path);
    for (const auto& error : result.errors)
        std::cerr << error.to_string() << '\n';
    return std::move(result.config);
}

int check_config(const std::string& path) {
    auto config = load(path);
    if (!config)
        return 1;
    std::cout << "# " << path << ": valid; effective configuration with defaults:\n"
              << redvip::conf::to_toml(*config);
    return 0;
}

// --- adapters between the components' ports ---

proxy::ServingState to_serving(election::ProxyMode mode) {
    switch (mode) {
    case election::ProxyMode::serving: return proxy::ServingState::serving;
    case election::ProxyMode::holding: return proxy::ServingState::holding;
    case election::ProxyMode::fenced: return proxy::ServingState::fenced;
    case election::ProxyMode::relaying: return proxy::ServingState::relaying; // through relay_to()
    case election::ProxyMode::closing: return proxy::ServingState::closing;
    }
    return proxy::ServingState::fenced;
}

redvip::vip::Completion from_vip(election::StepDone done) {
    return [done = std::move(done)](const redvip::vip::Status& s) {
        done(s.ok() ? election::StepResult::success() : election::StepResult::failure(s.message));
    };
}

election::RedisCheck to_check(const proxy::HealthReport& report) {
    election::RedisCheck check;
    check.periodic = report.source == proxy::HealthReport::Source::check;
    check.ok = report.ok;
    check.error = report.error;
    check.latency = report.latency;
    if (report.ok && check.periodic) {
        const proxy::ReplicationInfo& r = report.replication;
        election::ReplicationFacts facts;
        facts.role = r.role == proxy::RedisRole::master ? "master" : "slave";
        facts.master_host = r.master_host;
        facts.master_port = r.master_port;
        if (r.master_link_status)
            facts.master_link_status = *r.master_link_status == proxy::MasterLink::up ? "up" : "down";
        facts.master_repl_offset = r.master_repl_offset;
        facts.master_replid = r.master_replid;
        facts.master_replid2 = r.master_replid2;
        facts.second_repl_offset = r.second_repl_offset;
        facts.connected_slaves = static_cast<int>(r.connected_slaves);
        check.replication = std::move(facts);
    }
    return check;
}

// The election's families for /metrics, from its status (the same numbers
// `redvip status` shows).
void render_election(const nlohmann::json& status, proxy::PrometheusText& out) {
    out.family("redvip_vrrp_state", "gauge", "1 for the VRRP state this node is in");
    for (const char* state : {"INIT", "BACKUP", "MASTER", "FAULT"})
        out.sample("redvip_vrrp_state", fmt::format("state=\"{}\"", state),
                   std::uint64_t{status.value("vrrp_state", "") == state});
    out.family("redvip_vrrp_priority", "gauge", "Configured and effective VRRP priority");
    out.sample("redvip_vrrp_priority", "kind=\"base\"", status.value("priority", std::uint64_t{0}));
    out.sample("redvip_vrrp_priority", "kind=\"effective\"", status.value("effective_priority", std::uint64_t{0}));
    out.family("redvip_vrrp_discards_total", "counter", "VRRP packets discarded, by RFC 6527 reason");
    if (auto it = status.find("discards"); it != status.end() && it->is_object())
        for (const auto& [reason, count] : it->items())
            out.sample("redvip_vrrp_discards_total", fmt::format("reason=\"{}\"", reason),
                       count.is_number() ? count.get<std::uint64_t>() : 0);
    out.family("redvip_eligible", "gauge",
               "1 while this node may take the master role; 0 with the reason's kind as label");
    out.sample("redvip_eligible",
               fmt::format("why=\"{}\"", status.value("ineligible_why", std::string("none"))),
               std::uint64_t{status.value("eligible", false)});
    out.family("redvip_vip_held", "gauge", "1 while this node holds the VIP");
    out.sample("redvip_vip_held", "", std::uint64_t{status.value("vip_held", false)});
}

// --- the node with an election: proxy, VIP, Redis roles, VRRP, admin ---

class ElectedNode {
public:
    ElectedNode(asio::io_context& io, const redvip::conf::Config& config, const Logs& logs)
        : io_(io)
        , config_(config)
        , log_(logs.make("main"))
        , proxy_(config, logs.make("proxy"))
        , vip_(io.get_executor(), *config.vip, logs.make("vip"), vip_events())
        , redis_(io.get_executor(), config.redis, {}, logs.make("redis"))
        , peer_redis_(io.get_executor(), config, logs.make("peers"))
        , driver_(io.get_executor(), config, ports(), election_port(), logs.make("controller"))
        , admin_(io.get_executor(), config.admin.socket, logs.make("admin"))
        , vrrp_log_(logs.make("vrrp"))
        , hooks_(election::HookRunner::create(io.get_executor(), config.hooks, config.node.name, logs.make("hooks"))) {}

    // Start safe: fenced until the election says master, stale VIPs removed
    // before the first advert.
    std::string start() {
        auto made = election::make_election(io_.get_executor(), config_, driver_, vrrp_log_);
        if (auto* error = std::get_if<std::string>(&made))
            return *error;
        election_ = std::get<std::shared_ptr<election::Election>>(made);
        proxy_.set_state(proxy::ServingState::fenced);
        load_state();
        driver_.on_transition([this](const election::TransitionDone& t) { after_transition(t); });
        proxy_.on_health([this](const proxy::HealthReport& r) { driver_.on_redis_check(to_check(r)); });
        proxy_.start();
        if (auto s = vip_.start_watch(); !s.ok())
            return s.message;
        admin_.handle("status", [this](const nlohmann::json&, election::AdminServer::Reply reply) {
            reply(status());
        });
        admin_.handle("switchover", [this](const nlohmann::json& request, election::AdminServer::Reply reply) {
            const auto to = request.contains("to") && request["to"].is_string() ? request["to"].get<std::string>()
                                                                                 : std::string{};
            driver_.switchover(to, [reply = std::move(reply)](bool ok, const std::string& text) {
                reply(nlohmann::json{{"ok", ok}, {"text", text}});
            });
        });
        admin_.handle("promote", [this](const nlohmann::json& request, election::AdminServer::Reply reply) {
            if (!request.value("force", false))
                return reply(nlohmann::json{{"ok", false}, {"text", "promote needs --force: it accepts losing "
                                                                    "what unreachable peers held"}});
            driver_.force_promotion([reply = std::move(reply)](bool ok, const std::string& text) {
                reply(nlohmann::json{{"ok", ok}, {"text", text}});
            });
        });
        if (auto error = admin_.start(); !error.empty())
            return error;
        if (config_.metrics.listen) {
            metrics_.emplace(*config_.metrics.listen, [this] { return render_metrics(); });
            metrics_->start();
        }
        vip_.async_cleanup_stale([this](const redvip::vip::Status& s) {
            if (!s.ok())
                log_->warn("removing stale VIPs: {}", s.message);
            driver_.start();
            election_->start();
        });
        return {};
    }

    // Rendered on the metrics thread: the status is read on the daemon's.
    std::string render_metrics() {
        auto promise = std::make_shared<std::promise<nlohmann::json>>();
        auto future = promise->get_future();
        asio::post(io_, [this, promise] { promise->set_value(status()); });
        proxy::PrometheusText out;
        proxy::render_proxy_stats(proxy_.stats(), out);
        if (future.wait_for(std::chrono::seconds(2)) == std::future_status::ready)
            render_election(future.get(), out);
        return out.take();
    }

    // The last state file, logged: what this node knew when it stopped.
    void load_state() {
        const auto loaded = election::load_node_state(config_.node.state_dir);
        using S = election::NodeStateLoad::Status;
        if (loaded.status == S::error)
            log_->warn("state file: {} (starting as if none)", loaded.error);
        else if (loaded.status == S::loaded)
            log_->info("state file: last master {} ({}), replication {}:{}, epoch {}",
                       loaded.state.last_master.empty() ? "unknown" : loaded.state.last_master,
                       loaded.state.master_redis, loaded.state.replid, loaded.state.offset, loaded.state.epoch);
        state_ = loaded.state;
    }

    // Hooks run after a transition completed, off its path; the state file
    // records whom we follow (or that we are master) and where Redis was.
    void after_transition(const election::TransitionDone& t) {
        using election::Goal;
        using election::HookEvent;
        if (t.goal == Goal::master)
            hooks_->fire(HookEvent::master, config_.node.name, t.cause);
        else if (t.goal == Goal::backup)
            hooks_->fire(HookEvent::backup, t.master, t.cause);
        else if (t.goal == Goal::fault || t.goal == Goal::handoff)
            hooks_->fire(HookEvent::fault, t.master, t.cause);
        else if (t.goal == Goal::stopped)
            hooks_->fire(HookEvent::stop, t.master, t.cause);
        const std::string master = t.goal == Goal::master ? config_.node.name : t.master;
        if (master != state_.last_master)
            ++state_.epoch;
        state_.last_master = master;
        const auto& goal_master = driver_.controller().goal_master();
        state_.master_redis = t.goal == Goal::master ? config_.redis.address.to_string()
                              : goal_master       ? goal_master->to_string()
                                                  : std::string{};
        if (const auto& facts = driver_.controller().facts()) {
            state_.replid = facts->master_replid;
            state_.offset = facts->master_repl_offset;
        }
        if (auto error = election::save_node_state(config_.node.state_dir, state_))
            log_->warn("state file: {}", *error);
    }

    // Priority 0 first (the peer takes over after Skew_Time), then the role
    // steps settle (fenced, VIP released), then everything closes.
    void stop(std::function<void()> done) {
        if (metrics_)
            metrics_->stop();
        election_->shutdown([this, done = std::move(done)]() mutable {
            driver_.when_settled([this, done = std::move(done)]() mutable {
                vip_.async_release([this, done = std::move(done)](const redvip::vip::Status& s) {
                    if (!s.ok())
                        log_->warn("releasing the VIP: {}", s.message);
                    driver_.stop();
                    redis_.stop();
                    peer_redis_.stop();
                    vip_.stop();
                    admin_.stop();
                    proxy_.stop();
                    hooks_->stop(std::move(done)); // on_stop ran with the stopped transition
                });
            });
        });
    }

private:
    redvip::vip::VipEvents vip_events() {
        redvip::vip::VipEvents events;
        // keepalived enters FAULT when its interface goes down; so do we.
        // The link is one input of the health verdict (with the checks and
        // the controller's role fault): coming back clears only its own part.
        events.on_link_down = [this](std::string_view why) {
            log_->warn("interface down ({}): entering Fault", why);
            driver_.on_link(false, std::string(why));
        };
        events.on_link_up = [this] {
            log_->info("interface up");
            driver_.on_link(true);
        };
        return events;
    }

    election::RolePorts ports() {
        election::RolePorts p;
        p.set_proxy = [this](election::ProxyMode mode, const std::optional<redvip::conf::Endpoint>& relay) {
            if (mode == election::ProxyMode::relaying && !relay)
                proxy_.set_state(proxy::ServingState::fenced);
            else if (relay && (mode == election::ProxyMode::relaying || mode == election::ProxyMode::closing))
                proxy_.relay_to(*relay, to_serving(mode));
            else
                proxy_.set_state(to_serving(mode));
        };
        p.drain_proxy = [this](election::StepDone done) {
            proxy_.when_drained([this, done = std::move(done)](std::size_t busy) {
                asio::post(io_, [this, done, busy] {
                    if (busy > 0)
                        log_->warn("proxy drain: {} sessions still awaiting Redis, going on", busy);
                    done(election::StepResult::success());
                });
            });
        };
        p.acquire_vip = [this](election::StepDone done) { vip_.async_acquire(from_vip(std::move(done))); };
        p.release_vip = [this](election::StepDone done) { vip_.async_release(from_vip(std::move(done))); };
        election::use_redis(p, redis_); // health and facts come from the proxy's checks
        election::use_peers(p, peer_redis_);
        return p;
    }

    election::ElectionPort election_port() {
        return {[this](bool fault) { election_->set_fault(fault); },
                [this](std::uint8_t priority) { election_->set_priority(priority); }};
    }

    nlohmann::json status() const {
        election::StatusClock clock{std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
        nlohmann::json s = election::election_status(election_->status(), clock);
        s.update(driver_.status());
        s["node"] = config_.node.name;
        s["proxy_serving_state"] = std::string(proxy::to_string(proxy_.state()));
        return s;
    }

    asio::io_context& io_;
    const redvip::conf::Config& config_;
    LoggerPtr log_;
    proxy::Proxy proxy_;
    redvip::vip::VipManager vip_;
    election::RedisExecutor redis_;
    election::PeerRedis peer_redis_;
    election::ControllerDriver driver_;
    election::AdminServer admin_;
    LoggerPtr vrrp_log_;
    std::shared_ptr<election::HookRunner> hooks_;
    election::NodeState state_;
    std::shared_ptr<election::Election> election_;
    std::optional<proxy::MetricsServer> metrics_;
};

// Stops on SIGTERM and SIGINT (through `stop`, once); SIGHUP is reserved for
// reloading the config.
void handle_signals(asio::signal_set& signals, const LoggerPtr& log, std::function<void()> stop) {
    signals.async_wait([&signals, log, stop = std::move(stop)](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        if (signo == SIGHUP) {
            log->warn("SIGHUP: reloading the configuration is not supported yet; restart to apply changes");
            return handle_signals(signals, log, stop);
        }
        log->info("{}: stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1");
        stop();
    });
}

// Pings systemd's watchdog (WatchdogSec=) at half its interval from the main
// io_context, the one the election and controller run on: a hung event loop
// stops the pings and systemd restarts us. The proxy's worker threads have
// their own io_contexts, which this does not watch. Does nothing without a
// watchdog.
class Watchdog {
public:
    explicit Watchdog(asio::io_context& io) : timer_(io) {
        std::uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
            return;
        interval_ = std::chrono::microseconds(usec / 2);
        arm();
    }

private:
    void arm() {
        timer_.expires_after(interval_);
        timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec)
                return;
            sd_notify(0, "WATCHDOG=1");
            arm();
        });
    }

    asio::steady_timer timer_;
    std::chrono::microseconds interval_{};
};

int run_plain(asio::io_context& io, asio::signal_set& signals, const redvip::conf::Config& config, const Logs& logs) {
    auto log = logs.make("main");
    proxy::Proxy proxy(config, logs.make("proxy"));
    std::optional<proxy::MetricsServer> metrics;
    try {
        proxy.start();
        if (config.metrics.listen) {
            metrics.emplace(*config.metrics.listen, [&proxy] { return proxy::render_prometheus(proxy.stats()); });
            metrics->start();
        }
    } catch (const std::system_error& e) {
        log->critical("{}", e.what());
        return 1;
    }
    handle_signals(signals, log, [&io] { io.stop(); });
    sd_notify(0, "READY=1");
    io.run();
    if (metrics)
        metrics->stop();
    proxy.stop();
    return 0;
}

int run_elected(asio::io_context& io, asio::signal_set& signals, const redvip::conf::Config& config,
                const Logs& logs) {
    auto log = logs.make("main");
    ElectedNode node(io, config, logs);
    std::string error;
    try {
        error = node.start();
    } catch (const std::system_error& e) {
        error = e.what();
    }
    if (!error.empty()) {
        log->critical("{}", error);
        return 1;
    }
    handle_signals(signals, log, [&io, &node] { node.stop([&io] { io.stop(); }); });
    sd_notify(0, "READY=1");
    io.run();
    return 0;
}

int run_daemon(const std::string& path, const std::string& level_override) {
    auto config = load(path);
    if (!config)
        return 1;
    // Signals first: a SIGTERM that arrives while starting must stop us cleanly.
    asio::io_context io;
    asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    Watchdog watchdog(io);
    Logs logs(level_override.empty() ? config->log.level : level_override);
    auto log = logs.make("main");
    log->info("redvip {} starting: node {}, proxy {} -> redis {}, {}", REDVIP_VERSION,
              config->node.name.empty() ? "(unnamed)" : config->node.name, config->proxy.listen.to_string(),
              config->redis.address.to_string(),
              config->vrrp ? "VRRP election" : "plain proxy (no [vrrp]: always serving)");
    int code = config->vrrp ? run_elected(io, signals, *config, logs) : run_plain(io, signals, *config, logs);
    log->info("stopped");
    return code;
}

int switchover(const std::string& path, const std::string& to) {
    auto config = load(path);
    if (!config)
        return 1;
    // FAILOVER's own timeout, then the election's hand-over (a few adverts).
    const auto timeout = config->failover.switchover_timeout + std::chrono::seconds(5);
    return election::switchover_command(config->admin.socket, to, std::cout, std::cerr, timeout);
}

int promote(const std::string& path, bool force) {
    auto config = load(path);
    if (!config)
        return 1;
    return election::promote_command(config->admin.socket, force, std::cout, std::cerr);
}

int status(const std::string& path, bool as_json) {
    auto config = load(path);
    if (!config)
        return 1;
    return election::status_command(config->admin.socket, as_json, std::cout, std::cerr);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"redvip: a high-availability sidecar for a Redis pair (VRRP election, VIP, RESP proxy)"};
    app.set_version_flag("--version", std::string("redvip ") + REDVIP_VERSION);
    std::string config_path, check_path, log_level;
    auto* run = app.add_option("-c,--config", config_path, "Run the daemon with this configuration file");
    auto* check = app.add_option("--check-config", check_path,
                                 "Validate FILE, print the effective configuration, exit 0 (valid) or 1");
    app.add_option("--log-level", log_level, "Override [log] level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    run->excludes(check);

    auto* status_cmd = app.add_subcommand("status", "Ask the running daemon for its state");
    std::string status_config;
    bool as_json = false;
    status_cmd->add_option("-c,--config", status_config, "The daemon's configuration file")->required();
    status_cmd->add_flag("--json", as_json, "Print JSON instead of a table");

    auto* switchover_cmd = app.add_subcommand(
        "switchover", "Move the master role to a peer with no acknowledged write lost (run on the master)");
    std::string switchover_config, switchover_to;
    switchover_cmd->add_option("-c,--config", switchover_config, "The daemon's configuration file")->required();
    switchover_cmd->add_option("--to", switchover_to, "The [[peer]] name to hand over to (default: the best caught-up one)");

    auto* promote_cmd = app.add_subcommand(
        "promote", "Let this node take the master role although a dead peer held data it lacks (loses that data)");
    std::string promote_config;
    bool promote_force = false;
    promote_cmd->add_option("-c,--config", promote_config, "The daemon's configuration file")->required();
    promote_cmd->add_flag("--force", promote_force, "Accept losing what the unreachable peers held");
    CLI11_PARSE(app, argc, argv);

    if (*status_cmd)
        return status(status_config, as_json);
    if (*switchover_cmd)
        return switchover(switchover_config, switchover_to);
    if (*promote_cmd)
        return promote(promote_config, promote_force);
    if (!check_path.empty())
        return check_config(check_path);
    if (!config_path.empty())
        return run_daemon(config_path, log_level);
    std::cerr << app.help();
    return 2;
}
