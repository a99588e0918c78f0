// The daemon process's services: a log sink with one logger per component,
// systemd's readiness and watchdog, the signals that stop it, and the order
// a node with an election stops in.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility> // Boost 1.74's Asio uses std::exchange without including it

namespace spdlog {
class logger;
namespace sinks {
class sink;
}
} // namespace spdlog

namespace redvip::election {

using LoggerPtr = std::shared_ptr<spdlog::logger>;

// One stderr sink; each component logs under its own name ("proxy", "vrrp", ...).
class Logs {
public:
    explicit Logs(const std::string& level); // spdlog's names: trace ... off
    LoggerPtr make(const std::string& component) const;

private:
    std::shared_ptr<spdlog::sinks::sink> sink_;
    int level_;
};

// Pings systemd's watchdog (WatchdogSec=) at half its interval from the
// main io_context, the one the election and controller run on: a hung event
// loop stops the pings and systemd restarts us. The proxy's worker threads
// run their own event loops, which this does not watch. Does nothing without
// a watchdog.
class Watchdog {
public:
    explicit Watchdog(boost::asio::io_context& io);

private:
    void arm();

    boost::asio::steady_timer timer_;
    std::chrono::microseconds interval_{};
};

// sd_notify READY=1: started, serving as the election decides.
void notify_ready();

// Calls `stop` once on SIGTERM or SIGINT (after sd_notify STOPPING=1);
// SIGHUP is logged (reloading is not supported) and waited past. `signals`
// must hold SIGINT, SIGTERM and SIGHUP and outlive the wait.
void handle_signals(boost::asio::signal_set& signals, const LoggerPtr& log,
                    std::function<void()> stop);

// ---- the stop order (pure) ---------------------------------------------------------

using Stage = std::function<void(std::function<void()> next)>;

struct NodeStopStages {
    Stage resign;      // the election sends priority 0 once: the peer takes over after Skew_Time
    Stage settle;      // the role steps that follows run out: proxy fenced, VIP released
    Stage release_vip; // the VIP again, in case a step left it
    std::function<void()> close; // everything else closes; the hooks' stop runs last
};

// Runs the stages in that order, each after the previous one's `next`, then
// `close`. A stage must call its `next` exactly once.
void stop_node(NodeStopStages stages);

} // namespace redvip::election
