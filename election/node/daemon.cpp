// The daemon process's services (daemon.hpp).
#include "election/node/daemon.hpp"

#include <csignal>
#include <cstdint>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace redvip::election {

Logs::Logs(const std::string& level)
    : sink_(std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic))
    , level_(spdlog::level::from_str(level)) {
    sink_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-8l%$ [%n] %v");
}

LoggerPtr Logs::make(const std::string& component) const {
    auto logger = std::make_shared<spdlog::logger>(component, sink_);
    logger->set_level(static_cast<spdlog::level::level_enum>(level_));
    logger->flush_on(spdlog::level::warn);
    return logger;
}

Watchdog::Watchdog(boost::asio::io_context& io) : timer_(io) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    interval_ = std::chrono::microseconds(usec / 2);
    arm();
}

void Watchdog::arm() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        sd_notify(0, "WATCHDOG=1");
        arm();
    });
}

void notify_ready() {
    sd_notify(0, "READY=1");
}

void handle_signals(boost::asio::signal_set& signals, const LoggerPtr& log,
                    std::function<void()> stop) {
    signals.async_wait(
        [&signals, log, stop = std::move(stop)](const boost::system::error_code& ec, int signo) {
            if (ec) return;
            if (signo == SIGHUP) {
                log->warn("SIGHUP: reloading the configuration is not supported yet; restart to "
                          "apply changes");
                return handle_signals(signals, log, stop);
            }
            log->info("{}: stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
            sd_notify(0, "STOPPING=1");
            stop();
        });
}

void stop_node(NodeStopStages stages) {
    auto shared = std::make_shared<NodeStopStages>(std::move(stages));
    shared->resign([shared] {
        shared->settle([shared] { shared->release_vip([shared] { shared->close(); }); });
    });
}

} // namespace redvip::election
