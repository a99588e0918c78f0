// The hooks runner with real /bin/sh commands on a real io_context: order,
// environment, outcomes as logged, timeouts that kill the whole process
// group, the bounded queue, and stop(). Waits are bounded polls.
#include "election/node/hooks.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <thread>

using namespace redvip;
using namespace redvip::election;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "redvip-hooks-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Alive and not a zombie (an orphan may wait for a slow init to reap it).
bool process_alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return false;
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Polls pred every 10 ms; false after `limit`.
bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

struct Harness {
    TempDir dir;
    std::unique_ptr<boost::asio::io_context> ioc = std::make_unique<boost::asio::io_context>();
    std::ostringstream log_text;
    std::shared_ptr<spdlog::logger> log;
    std::shared_ptr<HookRunner> runner;

    explicit Harness(conf::HooksConfig config) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text);
        sink->set_pattern("%l %v");
        log = std::make_shared<spdlog::logger>("hooks", sink);
        log->set_level(spdlog::level::debug);
        runner = HookRunner::create(ioc->get_executor(), std::move(config), "redis-a", log);
    }

    // Runs the io_context until pred holds; false after `limit`.
    bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            ioc->restart();
            if (ioc->run_one_for(20ms) == 0)
                std::this_thread::sleep_for(1ms);
        }
        return true;
    }

    bool logged(const std::string& text) const { return log_text.str().find(text) != std::string::npos; }
};

conf::HooksConfig hooks(std::string on_master, std::string on_backup = "", std::string on_fault = "",
                        std::string on_stop = "", std::chrono::milliseconds timeout = 5000ms) {
    conf::HooksConfig c;
    c.on_master = std::move(on_master);
    c.on_backup = std::move(on_backup);
    c.on_fault = std::move(on_fault);
    c.on_stop = std::move(on_stop);
    c.timeout = timeout;
    return c;
}

} // namespace

TEST_CASE("hooks run one at a time, in the order fired, off the caller's path") {
    TempDir files;
    const std::string out = files.file("order"), lock = files.file("lock");
    // mkdir as a lock: a second hook running at once would record OVERLAP.
    auto append = [&](const char* tag) {
        return "mkdir " + lock + " 2>/dev/null || echo OVERLAP >> " + out + "; echo " + tag +
               " \"$REDVIP_REASON\" >> " + out + "; sleep 0.01; rmdir " + lock;
    };
    Harness h(hooks(append("master"), append("backup"), append("fault")));
    std::string expected;
    for (int i = 0; i < 12; ++i) {
        HookEvent event = i % 3 == 0 ? HookEvent::master : i % 3 == 1 ? HookEvent::backup : HookEvent::fault;
        h.runner->fire(event, "redis-b", fmt::format("r{}", i));
        expected += fmt::format("{} r{}\n", to_string(event), i);
    }
    CHECK(h.runner->counters().started == 0); // fire() only queued
    CHECK(h.runner->busy());
    REQUIRE_MESSAGE(h.run_until([&] { return h.runner->counters().succeeded == 12; }), h.log_text.str());
    CHECK(read_file(out) == expected);
    auto c = h.runner->counters();
    CHECK(c.started == 12);
    CHECK(c.failed + c.timed_out + c.dropped == 0);
    CHECK_FALSE(h.runner->busy());
    CHECK(h.logged("info hook on_fault: exit status 0 after "));
}

TEST_CASE("a hook gets its REDVIP_ variables, the inherited environment, /dev/null and its own group") {
    TempDir files;
    const std::string out = files.file("env");
    ::setenv("REDVIP_HOOK_TEST_INHERITED", "yes", 1);
    ::setenv("REDVIP_EVENT", "stale", 1); // replaced, not doubled
    const std::string dump = "env | grep ^REDVIP_ | sort >> " + out + "; echo stdin=$(readlink /proc/$$/fd/0) >> " +
                             out + "; echo own_group=$(( $(cut -d' ' -f5 /proc/$$/stat) == $$ )) >> " + out +
                             "; if test -e /proc/$$/fd/50; then echo LEAKED >> " + out + "; fi";
    // A descriptor of the daemon without O_CLOEXEC (Asio's sockets are such)
    // must not reach the hook.
    int leaky = ::dup2(STDERR_FILENO, 50);
    REQUIRE(leaky == 50);
    Harness h(hooks(dump, dump));
    h.runner->fire(HookEvent::master, "redis-a", "won the election (priority 100)");
    h.runner->fire(HookEvent::backup, "", "no master known yet");
    REQUIRE_MESSAGE(h.run_until([&] { return h.runner->counters().succeeded == 2; }), h.log_text.str());
    ::unsetenv("REDVIP_EVENT");
    ::unsetenv("REDVIP_HOOK_TEST_INHERITED");
    ::close(leaky);
    CHECK(read_file(out) == "REDVIP_EVENT=master\n"
                            "REDVIP_HOOK_TEST_INHERITED=yes\n"
                            "REDVIP_MASTER=redis-a\n"
                            "REDVIP_NODE=redis-a\n"
                            "REDVIP_REASON=won the election (priority 100)\n"
                            "stdin=/dev/null\n"
                            "own_group=1\n"
                            "REDVIP_EVENT=backup\n"
                            "REDVIP_HOOK_TEST_INHERITED=yes\n"
                            "REDVIP_MASTER=\n"
                            "REDVIP_NODE=redis-a\n"
                            "REDVIP_REASON=no master known yet\n"
                            "stdin=/dev/null\n"
                            "own_group=1\n");
}

TEST_CASE("a non-zero exit and a death by signal are failures, logged as such") {
    Harness h(hooks("exit 3", "kill -9 $$", "true"));
    h.runner->fire(HookEvent::master, "redis-a", "test");
    h.runner->fire(HookEvent::backup, "redis-b", "test");
    h.runner->fire(HookEvent::fault, "", "test");
    h.runner->fire(HookEvent::stop, "", "no on_stop configured: nothing happens");
    REQUIRE_MESSAGE(h.run_until([&] { return !h.runner->busy(); }), h.log_text.str());
    auto c = h.runner->counters();
    CHECK(c.started == 3);
    CHECK(c.failed == 2);
    CHECK(c.succeeded == 1);
    CHECK(c.dropped == 0);
    CHECK(h.logged("warning hook on_master: exit status 3 after "));
    CHECK(h.logged("warning hook on_backup: killed by signal 9 (SIGKILL) after "));
    CHECK(h.logged("info hook on_fault: exit status 0 after "));
}

TEST_CASE("a hook past its timeout is killed with its whole process group") {
    TempDir files;
    const std::string pids = files.file("pids");
    SUBCASE("SIGTERM is enough") {
        Harness h(hooks("sleep 100 & echo $! > " + pids + "; sleep 100", "", "", "", 200ms));
        h.runner->fire(HookEvent::master, "redis-a", "test");
        auto started = std::chrono::steady_clock::now();
        REQUIRE_MESSAGE(h.run_until([&] { return h.runner->counters().timed_out == 1; }), h.log_text.str());
        auto took = std::chrono::steady_clock::now() - started;
        CHECK(took >= 200ms);
        CHECK(took < HookRunner::kKillGrace);
        CHECK(h.logged("warning hook on_master: still running after 200 ms; SIGTERM to its process group "));
        CHECK(h.logged("warning hook on_master: timed out after 200 ms, ended by signal 15 (SIGTERM) after "));
        pid_t background = std::stoi(read_file(pids));
        CHECK(poll_until([&] { return !process_alive(background); }, 3s));
        CHECK(h.runner->counters().failed == 0);
    }
    SUBCASE("a group that ignores SIGTERM gets SIGKILL after the grace") {
        Harness h(hooks("trap '' TERM; sleep 100 & echo $! > " + pids + "; while :; do sleep 0.05; done", "", "",
                        "", 200ms));
        h.runner->fire(HookEvent::master, "redis-a", "test");
        REQUIRE_MESSAGE(h.run_until([&] { return h.runner->counters().timed_out == 1; }), h.log_text.str());
        CHECK(h.logged("warning hook on_master: still running 2000 ms after SIGTERM; SIGKILL to its process group "));
        CHECK(h.logged("warning hook on_master: timed out after 200 ms, ended by signal 9 (SIGKILL) after "));
        pid_t background = std::stoi(read_file(pids));
        CHECK(poll_until([&] { return !process_alive(background); }, 3s));
    }
}

TEST_CASE("a full queue drops, counts and logs; the caller never waits") {
    Harness h(hooks("true"));
    for (std::size_t i = 0; i < HookRunner::kMaxQueued + 3; ++i)
        h.runner->fire(HookEvent::master, "redis-a", fmt::format("flap {}", i));
    CHECK(h.runner->counters().dropped == 3);
    CHECK_MESSAGE(h.logged("warning hook on_master (master redis-a, flap 32) dropped: 32 hooks are already waiting"),
                  h.log_text.str());
    REQUIRE_MESSAGE(h.run_until([&] { return !h.runner->busy(); }), h.log_text.str());
    auto c = h.runner->counters();
    CHECK(c.started == HookRunner::kMaxQueued);
    CHECK(c.succeeded == HookRunner::kMaxQueued);
    CHECK(c.dropped == 3);
}

TEST_CASE("stop() lets the running hook finish, drops the queued ones, runs on_stop, then completes") {
    TempDir files;
    const std::string out = files.file("out");
    Harness h(hooks("sleep 0.3; echo master >> " + out, "echo backup >> " + out, "",
                    "echo \"stop $REDVIP_REASON\" >> " + out));
    h.runner->fire(HookEvent::master, "redis-a", "test");
    REQUIRE(h.run_until([&] { return h.runner->counters().started == 1; }));
    h.runner->fire(HookEvent::backup, "redis-b", "test"); // queued behind it
    h.runner->fire(HookEvent::stop, "redis-b", "shutdown");
    int done = 0;
    h.runner->stop([&] { ++done; });
    CHECK(done == 0);
    CHECK(h.runner->counters().dropped == 1); // the backup hook
    h.runner->fire(HookEvent::fault, "", "late"); // nothing configured: not even counted
    h.runner->fire(HookEvent::backup, "", "late");
    CHECK(h.runner->counters().dropped == 2);
    REQUIRE_MESSAGE(h.run_until([&] { return done == 1; }), h.log_text.str());
    CHECK(read_file(out) == "master\nstop shutdown\n");
    auto c = h.runner->counters();
    CHECK(c.succeeded == 2);
    CHECK(c.started == 2);

    h.runner->fire(HookEvent::stop, "", "after stop"); // stopped: dropped
    CHECK(h.runner->counters().dropped == 3);
    h.runner->stop([&] { ++done; }); // again: completes at once
    REQUIRE(h.run_until([&] { return done == 2; }));
}

TEST_CASE("stop() with a hook past its timeout completes once it is killed") {
    Harness h(hooks("sleep 100", "", "", "", 200ms));
    h.runner->fire(HookEvent::master, "redis-a", "test");
    REQUIRE(h.run_until([&] { return h.runner->counters().started == 1; }));
    bool done = false;
    h.runner->stop([&] { done = true; });
    REQUIRE_MESSAGE(h.run_until([&] { return done; }, 5s), h.log_text.str());
    CHECK(h.runner->counters().timed_out == 1);
}

TEST_CASE("stop() with nothing to run completes at once, still posted") {
    Harness h(hooks(""));
    h.runner->fire(HookEvent::master, "redis-a", "no command");
    CHECK(h.runner->counters().started + h.runner->counters().dropped == 0);
    bool done = false;
    h.runner->stop([&] { done = true; });
    CHECK_FALSE(done);
    REQUIRE(h.run_until([&] { return done; }));
}

TEST_CASE("dropping the runner and its executor kills a hook still running") {
    TempDir files;
    const std::string pids = files.file("pids");
    Harness h(hooks("sleep 100 & echo $! $$ > " + pids + "; sleep 100"));
    h.runner->fire(HookEvent::master, "redis-a", "test");
    REQUIRE(h.run_until([&] { return read_file(pids).find(' ') != std::string::npos; }));
    std::istringstream text(read_file(pids));
    pid_t background = 0, shell = 0;
    text >> background >> shell;
    REQUIRE(process_alive(shell));
    h.runner.reset();
    h.ioc.reset(); // its pending handlers held the last reference
    CHECK_FALSE(process_alive(shell)); // killed and reaped by the destructor
    CHECK(poll_until([&] { return !process_alive(background); }, 3s));
}
