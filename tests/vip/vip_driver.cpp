// Test driver for vip/: runs VipManager against the real kernel, for
// test_vip.py to start inside a network namespace.
//
//   vip_driver add     -i eth0 -a 10.77.0.100/24 [-a fd77::100/64] [--label eth0:vip]
//   vip_driver remove  -i eth0 -a ...
//   vip_driver cleanup -i eth0 -a ...
//   vip_driver hold    -i eth0 -a ... [--refresh-ms N]
//
// add/remove/cleanup run one operation and exit 0, or 1 with the error on
// stderr. hold watches, cleans up, acquires, prints one line per event
// ("acquired", "link_down <reason>", "link_up", "repaired <prefix> ok|<error>")
// and on SIGTERM releases, prints "released" and exits.
#include "vip/vip.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace {

using redvip::vip::Status;
using redvip::vip::VipManager;

struct Options {
    redvip::conf::VipConfig vip;
    std::vector<std::string> addresses;
    int garp_interval_ms = 100;
    int refresh_ms = 0;
    bool verbose = false;
};

void add_common(CLI::App& cmd, Options& o) {
    cmd.add_option("-i,--interface", o.vip.interface)->required();
    cmd.add_option("-a,--address", o.addresses)->required();
    cmd.add_option("--label", o.vip.label);
    cmd.add_option("--garp-count", o.vip.garp_count);
    cmd.add_option("--garp-interval-ms", o.garp_interval_ms);
    cmd.add_option("--refresh-ms", o.refresh_ms);
    cmd.add_flag("-v,--verbose", o.verbose);
}

void say(const std::string& line) {
    std::cout << line << std::endl;
} // flushed: the test polls the file

int run_once(const Options& o, const std::string& command, std::shared_ptr<spdlog::logger> log) {
    boost::asio::io_context io;
    VipManager vip(io.get_executor(), o.vip, std::move(log));
    Status result = Status::from_errno(EINPROGRESS, "not completed");
    auto done = [&](const Status& s) { result = s; };
    if (command == "add")
        vip.async_acquire(done);
    else if (command == "remove")
        vip.async_release(done);
    else
        vip.async_cleanup_stale(done);
    io.run(); // returns once the burst's timers are done too
    if (!result.ok()) {
        std::cerr << result.message << std::endl;
        return 1;
    }
    say("ok");
    return 0;
}

int hold(const Options& o, std::shared_ptr<spdlog::logger> log) {
    boost::asio::io_context io;
    redvip::vip::VipEvents events;
    events.on_link_down = [](std::string_view reason) { say("link_down " + std::string(reason)); };
    events.on_link_up = [] { say("link_up"); };
    events.on_repaired = [](const redvip::conf::Prefix& p, const Status& s) {
        say("repaired " + p.to_string() + " " + (s.ok() ? "ok" : s.message));
    };
    VipManager vip(io.get_executor(), o.vip, std::move(log), std::move(events));
    int exit_code = 0;
    auto fail = [&](const Status& s) {
        std::cerr << s.message << std::endl;
        exit_code = 1;
        io.stop();
    };
    if (Status s = vip.start_watch(); !s.ok()) {
        fail(s);
        return exit_code;
    }
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](boost::system::error_code, int) {
        vip.async_release([&](const Status& s) {
            if (!s.ok()) return fail(s);
            say("released");
            io.stop();
        });
    });
    vip.async_cleanup_stale([&](const Status& cleaned) {
        if (!cleaned.ok()) return fail(cleaned);
        vip.async_acquire([&](const Status& s) { s.ok() ? say("acquired") : fail(s); });
    });
    io.run();
    return exit_code;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app("vip_driver: VipManager on the real kernel, for tests");
    app.require_subcommand(1);
    Options o;
    for (const char* name : {"add", "remove", "cleanup", "hold"})
        add_common(*app.add_subcommand(name), o);
    CLI11_PARSE(app, argc, argv);

    for (const std::string& text : o.addresses) {
        const auto prefix = redvip::conf::parse_prefix(text);
        if (!prefix) {
            std::cerr << "not a prefix: " << text << std::endl;
            return 2;
        }
        o.vip.addresses.push_back(*prefix);
    }
    o.vip.garp_interval = std::chrono::milliseconds(o.garp_interval_ms);
    o.vip.garp_refresh = std::chrono::milliseconds(o.refresh_ms);
    auto log =
        std::make_shared<spdlog::logger>("vip", std::make_shared<spdlog::sinks::stderr_sink_st>());
    log->set_level(o.verbose ? spdlog::level::debug : spdlog::level::info);

    const std::string command = app.get_subcommands().front()->get_name();
    return command == "hold" ? hold(o, log) : run_once(o, command, log);
}
