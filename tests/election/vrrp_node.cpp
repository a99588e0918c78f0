// Test driver for the election: one Election from a redvip TOML config, on a
// real raw socket, for test_election.py to run inside a network namespace.
//
//   vrrp_node --config FILE [--log-level debug]
//
// stdout, one flushed line per event, each ending with the steady clock
// (CLOCK_MONOTONIC, the clock of Python's time.monotonic()) in seconds:
//   BACKUP master=10.77.0.2 prio=100 t=1234.567890   (master=none: none heard)
//   MASTER t=...        FAULT t=...        STOPPED t=...
//   MASTER_CHANGED master=10.77.0.2 prio=100 t=...
//   STATUS {json}       on SIGHUP: the status snapshot
//   EXIT t=...          after SIGTERM/SIGINT's graceful shutdown completed
// SIGUSR1 enters fault, SIGUSR2 leaves it. Logs go to stderr.
#include "conf/config.hpp"
#include "election/vrrp/runner.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <utility> // Asio 1.18's headers need it first under g++ 12

namespace {

using namespace redvip::election;

void say(const std::string& line) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    std::cout << fmt::format("{} t={}.{:06}", line, us / 1'000'000, us % 1'000'000) << std::endl;
}

std::string master_text(const std::optional<MasterInfo>& master) {
    if (!master) return "master=none";
    return fmt::format("master={} prio={}", to_string(master->address), master->priority);
}

class Printer final : public RoleListener {
public:
    void become_master(bool) override { say("MASTER"); }
    void become_backup(const std::optional<MasterInfo>& master) override {
        say("BACKUP " + master_text(master));
    }
    void enter_fault() override { say("FAULT"); }
    void master_changed(const MasterInfo& master) override {
        say("MASTER_CHANGED " + master_text(master));
    }
    void stopped() override { say("STOPPED"); }
};

nlohmann::json discards_json(const DiscardCounters& counters) {
    nlohmann::json out = nlohmann::json::object();
    for (std::size_t i = 0; i < kDiscardReasonCount; ++i) {
        const auto reason = static_cast<DiscardReason>(i);
        out[std::string(mib_name(reason))] = counters[reason];
    }
    return out;
}

nlohmann::json status_json(const ElectionStatus& s) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    nlohmann::json transitions = nlohmann::json::array();
    for (const auto& t : s.transitions)
        transitions.push_back({{"from", to_string(t.from)},
                               {"to", to_string(t.to)},
                               {"reason", to_string(t.reason)}});
    nlohmann::json master = nullptr;
    if (s.master)
        master = {{"address", to_string(s.master->address)}, {"priority", s.master->priority}};
    const auto& c = s.counters;
    return {
        {"state", to_string(s.state)},
        {"base_priority", s.base_priority},
        {"effective_priority", s.effective_priority},
        {"fault", s.fault},
        {"version", static_cast<int>(s.version)},
        {"vrid", s.vrid},
        {"interface", s.interface},
        {"unicast", s.unicast},
        {"primary_address", to_string(s.primary_address)},
        {"master", master},
        {"master_adver_interval_ms", duration_cast<milliseconds>(s.master_adver_interval).count()},
        {"skew_time_us", duration_cast<std::chrono::microseconds>(s.skew_time).count()},
        {"master_down_interval_us",
         duration_cast<std::chrono::microseconds>(s.master_down_interval).count()},
        {"transitions", transitions},
        {"discards", discards_json(s.discards)},
        {"discards_total", s.discards.total()},
        {"counters",
         {{"datagrams_received", c.datagrams_received},
          {"adverts_accepted", c.adverts_accepted},
          {"adverts_sent", c.adverts_sent},
          {"send_errors", c.send_errors},
          {"unknown_peer", c.unknown_peer}}}};
}

// Re-arms itself after each signal until the graceful stop begins.
void handle_signals(boost::asio::signal_set& signals, Election& election) {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
        if (ec) return;
        if (signo == SIGTERM || signo == SIGINT) {
            election.shutdown([&] {
                say("EXIT");
                signals.cancel();
            });
            return;
        }
        if (signo == SIGUSR1) election.set_fault(true);
        if (signo == SIGUSR2) election.set_fault(false);
        if (signo == SIGHUP)
            std::cout << "STATUS " << status_json(election.status()).dump() << std::endl;
        handle_signals(signals, election);
    });
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Runs one VRRP election from a redvip config, printing its actions"};
    std::string config_path, level = "info";
    app.add_option("-c,--config", config_path)->required();
    app.add_option("--log-level", level);
    CLI11_PARSE(app, argc, argv);

    auto log = spdlog::stderr_logger_st("election");
    log->set_level(spdlog::level::from_str(level));
    const auto loaded = redvip::conf::load_file(config_path);
    if (!loaded) {
        for (const auto& e : loaded.errors)
            std::cerr << e.to_string() << '\n';
        return 2;
    }
    boost::asio::io_context io;
    Printer printer;
    auto made = make_election(io.get_executor(), *loaded.config, printer, log);
    if (auto* error = std::get_if<std::string>(&made)) {
        std::cerr << "vrrp_node: " << *error << std::endl;
        return 1;
    }
    auto election = std::get<std::shared_ptr<Election>>(std::move(made));
    boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    signals.add(SIGUSR1);
    signals.add(SIGUSR2);
    handle_signals(signals, *election);
    election->start();
    io.run(); // returns once the shutdown completed and the signal wait is cancelled
    return 0;
}
