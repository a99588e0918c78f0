// The [hooks] runner: a user's shell command after a role change has
// completed, for alerts and local chores (keepalived's notify scripts), never
// part of the failover itself.
//
// fire() only queues and returns: the transition that fired it never waits on
// a hook. Hooks run one at a time, in the order fired, each as
// `/bin/sh -c CMD` in its own process group (posix_spawn), stdin /dev/null,
// stdout and stderr to the daemon's stderr, descriptors above 2 closed, with
// REDVIP_EVENT (master|backup|fault|stop), REDVIP_NODE, REDVIP_MASTER (node
// name or empty) and REDVIP_REASON added to the inherited environment. A hook
// still running after [hooks] timeout_ms gets SIGTERM on its process group,
// then SIGKILL after kKillGrace, and counts as timed out; once its shell has
// ended, the rest of its group gets SIGKILL too. (A hook that exits in time
// may leave background processes running: that is the user's choice.) Each
// outcome (exit status, signal, timeout or spawn error, and the duration) is
// logged: info for exit status 0, warning otherwise, error when it could not
// be started.
//
// The child's exit is observed without a SIGCHLD handler: a pidfd
// (pidfd_open, Linux >= 5.3) becomes readable, then waitpid reaps exactly that
// pid. The daemon must leave SIGCHLD at its default (not SIG_IGN, which would
// reap children behind waitpid's back) and must not waitpid(-1).
//
// Ownership and threading: create() returns a shared_ptr that pending waits
// and timers share, so the runner outlives the hook in flight even when its
// owner lets go. Every member must be called on the executor given to
// create() (the election's, single-threaded); handlers run there too. The
// last reference goes with a hook still running only when the executor drops
// the pending handlers (its io_context destroyed without stop()): the
// destructor then SIGKILLs that hook's process group and reaps it.
#pragma once

#include "conf/config.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace spdlog {
class logger;
}

namespace redvip::election {

enum class HookEvent { master, backup, fault, stop };

// "master", "backup", "fault", "stop": REDVIP_EVENT's value.
std::string_view to_string(HookEvent event);

// Plain counters, exported to metrics by whoever wires the runner.
// started == succeeded + failed + timed_out, plus one while a hook runs.
struct HookCounters {
    std::uint64_t started = 0;   // spawn attempted
    std::uint64_t succeeded = 0; // exited 0
    std::uint64_t failed = 0;    // non-zero exit, killed by a signal, or could not be spawned
    std::uint64_t timed_out = 0; // still running at [hooks] timeout_ms, killed
    std::uint64_t dropped = 0;   // fired with the queue full, or discarded by stop()
};

class HookRunner : public std::enable_shared_from_this<HookRunner> {
public:
    // Hooks waiting behind the running one. Beyond it a fired hook is dropped
    // (and counted): a flapping election must never block on, or grow memory
    // for, notifications.
    static constexpr std::size_t kMaxQueued = 32;
    // Between SIGTERM to a timed-out hook's process group and SIGKILL.
    static constexpr std::chrono::milliseconds kKillGrace{2000};

    static std::shared_ptr<HookRunner> create(boost::asio::any_io_executor executor, conf::HooksConfig config,
                                              std::string node_name, std::shared_ptr<spdlog::logger> log);
    ~HookRunner(); // a hook still running: SIGKILL to its process group, reaped
    HookRunner(const HookRunner&) = delete;
    HookRunner& operator=(const HookRunner&) = delete;

    // Queues the event's hook and returns at once (the spawn itself is
    // posted). No command configured for the event: nothing happens, nothing
    // is counted. `master` is the master's node name or empty; `reason` a
    // short text for REDVIP_REASON. Once stop() was called only
    // HookEvent::stop is accepted, until stop() completes.
    void fire(HookEvent event, std::string master, std::string reason);

    // Shutdown: the running hook may finish within its timeout, queued
    // master/backup/fault hooks are dropped (counted), queued stop hooks run
    // (each within its timeout), then `done` is posted once. So shutdown is
    // fire(HookEvent::stop, ...) then stop(done), bounded by about two hook
    // timeouts plus 2 x kKillGrace. Called again: that `done` is posted at the
    // same point (at once if already complete).
    void stop(std::function<void()> done);

    HookCounters counters() const { return counters_; }
    bool busy() const { return running_.has_value() || !queue_.empty(); }

private:
    struct Job {
        HookEvent event;
        std::string master;
        std::string reason;
    };
    struct Running {
        Job job;
        pid_t pid = -1;
        std::chrono::steady_clock::time_point started;
        bool terminated = false; // SIGTERM sent at the timeout
        bool killed = false;     // SIGKILL sent after the grace
    };

    HookRunner(boost::asio::any_io_executor executor, conf::HooksConfig config, std::string node_name,
               std::shared_ptr<spdlog::logger> log);

    const std::string& command_for(HookEvent event) const;
    void schedule_next();
    void start_next();
    void spawn(Job job);
    void wait_exit();
    void arm_timer(std::chrono::steady_clock::duration after);
    void on_exit();
    void abandon(const boost::system::error_code& ec);
    void on_timer();
    void finish();
    void drop(const Job& job, std::string_view why);
    void maybe_complete_stop();

    boost::asio::any_io_executor executor_;
    conf::HooksConfig config_;
    std::string node_name_;
    std::shared_ptr<spdlog::logger> log_;
    std::deque<Job> queue_;
    std::optional<Running> running_;
    boost::asio::posix::stream_descriptor pidfd_; // the running hook's pidfd
    boost::asio::steady_timer timer_;             // its timeout, then the kill grace
    std::uint64_t generation_ = 0;                // bumped per hook: late handlers see a newer one
    bool next_scheduled_ = false;
    bool stopping_ = false;
    bool stopped_ = false;
    std::vector<std::function<void()>> stop_done_;
    HookCounters counters_;
};

} // namespace redvip::election
