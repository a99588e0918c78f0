// The daemon's command line into a plain struct, like the config file:
//   redvip -c FILE [--log-level L]        run the daemon
//   redvip --check-config FILE            validate FILE, print it with defaults
//   redvip status -c FILE [--json]        ask the running daemon
//   redvip switchover -c FILE [--to NAME] move the master role (on the master)
//   redvip promote -c FILE --force        take the role, losing a dead peer's data
#pragma once

#include <optional>
#include <string>

namespace redvip::conf {

struct CommandLine {
    enum class Action { run, check_config, status, switchover, promote };
    Action action = Action::run;
    std::string config_path; // -c, or --check-config's FILE
    std::string log_level;   // empty: [log] level
    std::string to;          // switchover --to
    bool json = false;       // status --json
    bool force = false;      // promote --force
};

struct CommandLineParse {
    std::optional<CommandLine> command; // set: act on it
    int exit_code = 0;                  // otherwise exit with this, after:
    std::string out;                    // --help, --version (for stdout)
    std::string err; // a usage error, or the help when nothing was asked (stderr)
};

CommandLineParse parse_command_line(int argc, const char* const* argv, const std::string& version);

} // namespace redvip::conf
