// The daemon's command line (command_line.hpp), with CLI11.
#include "conf/command_line.hpp"

#include <CLI/CLI.hpp>
#include <sstream>

namespace redvip::conf {

CommandLineParse parse_command_line(int argc, const char* const* argv, const std::string& version) {
    CLI::App app{
        "redvip: a high-availability sidecar for a Redis pair (VRRP election, VIP, RESP proxy)"};
    app.set_version_flag("--version", "redvip " + version);
    CommandLine c;
    std::string check_path;
    auto* run =
        app.add_option("-c,--config", c.config_path, "Run the daemon with this configuration file");
    app.add_option("--check-config", check_path,
                   "Validate FILE, print the effective configuration, exit 0 (valid) or 1")
        ->excludes(run);
    app.add_option("--log-level", c.log_level, "Override [log] level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    auto* status = app.add_subcommand("status", "Ask the running daemon for its state");
    status->add_flag("--json", c.json, "Print JSON instead of a table");
    auto* switchover = app.add_subcommand(
        "switchover",
        "Move the master role to a peer with no acknowledged write lost (run on the master)");
    switchover->add_option("--to", c.to,
                           "The [[peer]] name to hand over to (default: the best caught-up one)");
    auto* promote = app.add_subcommand("promote", "Let this node take the master role although a "
                                                  "dead peer held data it lacks (loses that data)");
    promote->add_flag("--force", c.force, "Accept losing what the unreachable peers held");
    for (auto* command : {status, switchover, promote})
        command->add_option("-c,--config", c.config_path, "The daemon's configuration file")
            ->required();

    CommandLineParse result;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::ostringstream out, err;
        result.exit_code = app.exit(e, out, err);
        result.out = out.str();
        result.err = err.str();
        return result;
    }
    if (!check_path.empty()) {
        c.action = CommandLine::Action::check_config;
        c.config_path = check_path;
    } else if (*status) {
        c.action = CommandLine::Action::status;
    } else if (*switchover) {
        c.action = CommandLine::Action::switchover;
    } else if (*promote) {
        c.action = CommandLine::Action::promote;
    } else if (c.config_path.empty()) {
        result.exit_code = 2;
        result.err = app.help();
        return result;
    }
    result.command = std::move(c);
    return result;
}

} // namespace redvip::conf
