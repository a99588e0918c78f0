// redvip's daemon: parse arguments, load the config, wire the components,
// run. Behaviour lives in the folders; this file only connects them.
#include "conf/config.hpp"
#include "proxy/proxy.hpp"
#include "proxy/proxy.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <system_error>
#include <system_error>

namespace {

namespace asio = boost::asio;
using LoggerPtr = std::shared_ptr<spdlog::logger>;

// One stderr sink; each component logs under its own name ("proxy", "vrrp", ...).
class Logs {
public:
    explicit Logs(const std::string& level)
        : sink_(std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic))
        , level_(spdlog::level::from_str(level)) {
        sink_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
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

void print_errors(const redvip::conf::LoadResult& result) {
    for (const auto& error : result.errors)
        std::cerr << error.to_string() << '\n';
}

int check_config(const std::string& path) {
    auto result = redvip::conf::load_file(path);
    if (!result) {
        print_errors(result);
        return 1;
    }
    std::cout << "# " << path << ": valid; effective configuration with defaults:\n"
              << redvip::conf::to_toml(*result.config);
    return 0;
}

// Stops on SIGTERM and SIGINT; SIGHUP is reserved for reloading the config.
void handle_signals(asio::signal_set& signals, asio::io_context& io, const LoggerPtr& log) {
    signals.async_wait([&signals, &io, log](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        if (signo == SIGHUP) {
            log->warn("SIGHUP: reloading the configuration is not supported yet; restart to apply changes");
            handle_signals(signals, io, log);
            return;
        }
        log->info("{}: stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1");
        io.stop();
    });
}

int run_daemon(const std::string& path, const std::string& level_override) {
    auto result = redvip::conf::load_file(path);
    if (!result) {
        print_errors(result);
        return 1;
    }
    const redvip::conf::Config& config = *result.config;
    // Signals first: a SIGTERM that arrives while starting must stop us cleanly.
    asio::io_context io;
    asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    Logs logs(level_override.empty() ? config.log.level : level_override);
    auto log = logs.make("main");
    log->info("redvip {} starting: node {}, proxy {} -> redis {}, {}", REDVIP_VERSION,
              config.node.name.empty() ? "(unnamed)" : config.node.name, config.proxy.listen.to_string(),
              config.redis.address.to_string(),
              config.vrrp ? "VRRP election" : "plain proxy (no [vrrp]: always serving)");

    handle_signals(signals, io, log);

    redvip::proxy::Proxy proxy(config, logs.make("proxy"));
    // Without an election this node is always the master. With one, it serves
    // nothing until the election says it is master (start safe).
    if (config.vrrp) {
        proxy.set_state(redvip::proxy::ServingState::fenced);
        log->warn("the VRRP election is not wired in yet: the proxy stays FENCED");
    }
    try {
        proxy.start();
    } catch (const std::system_error& e) {
        log->critical("{}", e.what());
        return 1;
    }

    sd_notify(0, "READY=1");
    io.run();
    proxy.stop();
    log->info("stopped");
    return 0;
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
    CLI11_PARSE(app, argc, argv);

    if (!check_path.empty())
        return check_config(check_path);
    if (!config_path.empty())
        return run_daemon(config_path, log_level);
    std::cerr << app.help();
    return 2;
}
