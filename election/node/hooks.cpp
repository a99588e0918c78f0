// The [hooks] runner (see hooks.hpp): posix_spawn into a new process group,
// a pidfd to hear the exit, one steady_timer for the timeout and the kill grace.
#include "election/node/hooks.hpp"

#include <boost/asio/post.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace redvip::election {
namespace {

using Clock = std::chrono::steady_clock;

long long millis_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? fmt::format("{} (SIG{})", sig, abbrev) : std::to_string(sig);
}

// The inherited environment, minus any stale REDVIP_* of ours, plus ours.
std::vector<std::string> hook_environment(std::vector<std::string> ours) {
    std::vector<std::string> env;
    for (char** entry = environ; entry && *entry; ++entry) {
        std::string_view text(*entry);
        bool replaced = false;
        for (const auto& own : ours)
            replaced = replaced || text.substr(0, text.find('=') + 1) == own.substr(0, own.find('=') + 1);
        if (!replaced)
            env.emplace_back(text);
    }
    for (auto& own : ours)
        env.push_back(std::move(own));
    return env;
}

// posix_spawn's attributes and file actions, destroyed on every path.
class SpawnSetup {
public:
    SpawnSetup() {
        posix_spawnattr_init(&attr_);
        posix_spawn_file_actions_init(&actions_);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions_);
        posix_spawnattr_destroy(&attr_);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    // 0 or an errno value.
    int prepare() {
        // Its own process group, so a timeout can signal everything it started.
        short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        // Ignored signals survive exec: a daemon ignoring SIGPIPE must not hand
        // that to a shell script.
        for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
            sigaddset(&defaults, sig);
        int rc = 0;
        (void)((rc = posix_spawnattr_setflags(&attr_, flags)) || (rc = posix_spawnattr_setpgroup(&attr_, 0)) ||
               (rc = posix_spawnattr_setsigmask(&attr_, &none)) ||
               (rc = posix_spawnattr_setsigdefault(&attr_, &defaults)) ||
               (rc = posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0)) ||
               (rc = posix_spawn_file_actions_adddup2(&actions_, 2, 1)) ||
               // The daemon's sockets (VRRP, listeners, admin) stay out of hooks
               // and whatever they leave running.
               (rc = posix_spawn_file_actions_addclosefrom_np(&actions_, 3)));
        return rc;
    }

    const posix_spawnattr_t* attr() const { return &attr_; }
    const posix_spawn_file_actions_t* actions() const { return &actions_; }

private:
    posix_spawnattr_t attr_;
    posix_spawn_file_actions_t actions_;
};

std::string_view master_text(const std::string& master) {
    return master.empty() ? std::string_view("unknown") : std::string_view(master);
}

// The whole process group, then the leader reaped (it dies at once).
void kill_and_reap(pid_t pid) {
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

} // namespace

std::string_view to_string(HookEvent event) {
    switch (event) {
    case HookEvent::master: return "master";
    case HookEvent::backup: return "backup";
    case HookEvent::fault: return "fault";
    case HookEvent::stop: return "stop";
    }
    return "unknown";
}

std::shared_ptr<HookRunner> HookRunner::create(boost::asio::any_io_executor executor, conf::HooksConfig config,
                                               std::string node_name, std::shared_ptr<spdlog::logger> log) {
    return std::shared_ptr<HookRunner>(
        new HookRunner(std::move(executor), std::move(config), std::move(node_name), std::move(log)));
}

HookRunner::HookRunner(boost::asio::any_io_executor executor, conf::HooksConfig config, std::string node_name,
                       std::shared_ptr<spdlog::logger> log)
    : executor_(executor), config_(std::move(config)), node_name_(std::move(node_name)), log_(std::move(log)),
      pidfd_(executor), timer_(executor) {}

HookRunner::~HookRunner() {
    // Only with a hook running when the executor dropped our handlers (shut
    // down without stop()): leave no process of ours behind, nor a zombie.
    if (running_)
        kill_and_reap(running_->pid);
}

const std::string& HookRunner::command_for(HookEvent event) const {
    switch (event) {
    case HookEvent::master: return config_.on_master;
    case HookEvent::backup: return config_.on_backup;
    case HookEvent::fault: return config_.on_fault;
    case HookEvent::stop: return config_.on_stop;
    }
    return config_.on_stop;
}

void HookRunner::fire(HookEvent event, std::string master, std::string reason) {
    if (command_for(event).empty())
        return;
    Job job{event, std::move(master), std::move(reason)};
    if (stopped_ || (stopping_ && event != HookEvent::stop))
        return drop(job, "redvip is stopping");
    if (queue_.size() >= kMaxQueued)
        return drop(job, fmt::format("{} hooks are already waiting", kMaxQueued));
    queue_.push_back(std::move(job));
    schedule_next();
}

void HookRunner::stop(std::function<void()> done) {
    stop_done_.push_back(std::move(done));
    if (!stopping_) {
        stopping_ = true;
        std::deque<Job> kept;
        for (auto& job : queue_) {
            if (job.event == HookEvent::stop)
                kept.push_back(std::move(job));
            else
                drop(job, "redvip is stopping");
        }
        queue_ = std::move(kept);
    }
    maybe_complete_stop();
}

void HookRunner::drop(const Job& job, std::string_view why) {
    ++counters_.dropped;
    log_->warn("hook on_{} (master {}, {}) dropped: {}", to_string(job.event), master_text(job.master), job.reason,
               why);
}

// The spawn is posted, never run inside fire(): the transition that fired the
// hook goes on at once.
void HookRunner::schedule_next() {
    if (running_ || next_scheduled_ || queue_.empty())
        return;
    next_scheduled_ = true;
    boost::asio::post(executor_, [self = shared_from_this()] { self->start_next(); });
}

void HookRunner::start_next() {
    next_scheduled_ = false;
    if (!running_ && !queue_.empty()) {
        Job job = std::move(queue_.front());
        queue_.pop_front();
        spawn(std::move(job));
    }
    maybe_complete_stop();
}

void HookRunner::spawn(Job job) {
    ++counters_.started;
    ++generation_;
    const std::string& command = command_for(job.event);
    const auto started = Clock::now();
    const std::string name = fmt::format("hook on_{}", to_string(job.event));
    auto fail = [&](const std::string& what, int err) {
        ++counters_.failed;
        log_->error("{}: could not be started: {}: {}", name, what, std::strerror(err));
        schedule_next();
    };

    std::vector<std::string> env = hook_environment({
        fmt::format("REDVIP_EVENT={}", to_string(job.event)),
        "REDVIP_NODE=" + node_name_,
        "REDVIP_MASTER=" + job.master,
        "REDVIP_REASON=" + job.reason,
    });
    std::vector<char*> envp;
    for (auto& entry : env)
        envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::string shell = "/bin/sh", dash_c = "-c", script = command;
    char* argv[] = {shell.data(), dash_c.data(), script.data(), nullptr};

    SpawnSetup setup;
    if (int rc = setup.prepare())
        return fail("posix_spawn attributes", rc);
    pid_t pid = -1;
    if (int rc = ::posix_spawn(&pid, "/bin/sh", setup.actions(), setup.attr(), argv, envp.data()))
        return fail("posix_spawn /bin/sh", rc);

    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        // Without a pidfd its exit could not be heard: do not leave it unwatched.
        int err = errno;
        kill_and_reap(pid);
        return fail("pidfd_open (Linux >= 5.3)", err);
    }
    boost::system::error_code ec;
    pidfd_.assign(fd, ec);
    if (ec) {
        ::close(fd);
        kill_and_reap(pid);
        return fail("watching its pidfd", ec.value());
    }
    running_ = Running{std::move(job), pid, started};
    log_->debug("{} started as pid {} (master {}, {}): {}", name, pid, master_text(running_->job.master),
                running_->job.reason, command);
    wait_exit();
    arm_timer(config_.timeout);
}

void HookRunner::wait_exit() {
    pidfd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
                          if (generation != self->generation_ || !self->running_ ||
                              ec == boost::asio::error::operation_aborted)
                              return;
                          if (ec)
                              return self->abandon(ec);
                          self->on_exit();
                      });
}

// The pidfd cannot be watched any more: rather than a hook nobody hears end
// (and a queue stuck behind it), end it now.
void HookRunner::abandon(const boost::system::error_code& ec) {
    Running& r = *running_;
    log_->error("hook on_{}: cannot wait for pid {}: {}; killing its process group", to_string(r.job.event), r.pid,
                ec.message());
    kill_and_reap(r.pid);
    ++counters_.failed;
    finish();
}

void HookRunner::arm_timer(Clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
        if (!ec && generation == self->generation_ && self->running_)
            self->on_timer();
    });
}

void HookRunner::on_timer() {
    Running& r = *running_;
    if (!r.terminated) {
        r.terminated = true;
        log_->warn("hook on_{}: still running after {} ms; SIGTERM to its process group {}", to_string(r.job.event),
                   config_.timeout.count(), r.pid);
        ::kill(-r.pid, SIGTERM);
        arm_timer(kKillGrace);
    } else if (!r.killed) {
        r.killed = true;
        log_->warn("hook on_{}: still running {} ms after SIGTERM; SIGKILL to its process group {}",
                   to_string(r.job.event), kKillGrace.count(), r.pid);
        ::kill(-r.pid, SIGKILL);
    }
}

void HookRunner::on_exit() {
    Running& r = *running_;
    if (r.terminated)
        // The leader is a zombie until reaped, so its group id cannot have been
        // reused: whatever it started and that outlived SIGTERM goes too.
        ::kill(-r.pid, SIGKILL);
    int status = 0;
    pid_t reaped = ::waitpid(r.pid, &status, WNOHANG);
    if (reaped == 0)
        return wait_exit(); // not exited after all: wait again
    if (reaped < 0 && errno == EINTR)
        return wait_exit();

    const std::string name = fmt::format("hook on_{}", to_string(r.job.event));
    const long long ms = millis_since(r.started);
    if (reaped < 0) {
        ++counters_.failed;
        log_->error("{}: pid {} could not be reaped: {} (is SIGCHLD ignored?), after {} ms", name, r.pid,
                    std::strerror(errno), ms);
    } else if (r.terminated) {
        ++counters_.timed_out;
        log_->warn("{}: timed out after {} ms, ended {} after {} ms", name, config_.timeout.count(),
                   WIFSIGNALED(status) ? "by signal " + signal_name(WTERMSIG(status))
                                       : fmt::format("with exit status {}", WEXITSTATUS(status)),
                   ms);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ++counters_.succeeded;
        log_->info("{}: exit status 0 after {} ms", name, ms);
    } else if (WIFEXITED(status)) {
        ++counters_.failed;
        log_->warn("{}: exit status {} after {} ms", name, WEXITSTATUS(status), ms);
    } else {
        ++counters_.failed;
        log_->warn("{}: killed by signal {} after {} ms", name, signal_name(WTERMSIG(status)), ms);
    }
    finish();
}

void HookRunner::finish() {
    boost::system::error_code ignored;
    pidfd_.close(ignored);
    timer_.cancel();
    running_.reset();
    ++generation_;
    schedule_next();
    maybe_complete_stop();
}

void HookRunner::maybe_complete_stop() {
    if (!stopping_ || running_ || !queue_.empty() || next_scheduled_)
        return;
    stopped_ = true;
    for (auto& done : std::exchange(stop_done_, {}))
        boost::asio::post(executor_, std::move(done));
}

} // namespace redvip::election
