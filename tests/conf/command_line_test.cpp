// conf/command_line: the daemon's command line into a CommandLine, or an
// exit code with the text to print.
#include "conf/command_line.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

using namespace redvip::conf;
using Action = CommandLine::Action;

namespace {

CommandLineParse parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv{"redvip"};
    argv.insert(argv.end(), args);
    return parse_command_line(static_cast<int>(argv.size()), argv.data(), "9.9.9");
}

} // namespace

TEST_CASE("each action with its options") {
    auto r = parse({"-c", "a.toml", "--log-level", "debug"});
    REQUIRE(r.command);
    CHECK(r.command->action == Action::run);
    CHECK(r.command->config_path == "a.toml");
    CHECK(r.command->log_level == "debug");

    r = parse({"--check-config", "b.toml"});
    REQUIRE(r.command);
    CHECK(r.command->action == Action::check_config);
    CHECK(r.command->config_path == "b.toml");

    r = parse({"status", "-c", "a.toml", "--json"});
    REQUIRE(r.command);
    CHECK(r.command->action == Action::status);
    CHECK(r.command->json);

    r = parse({"switchover", "-c", "a.toml", "--to", "b"});
    REQUIRE(r.command);
    CHECK(r.command->action == Action::switchover);
    CHECK(r.command->to == "b");

    r = parse({"promote", "-c", "a.toml", "--force"});
    REQUIRE(r.command);
    CHECK(r.command->action == Action::promote);
    CHECK(r.command->force);
}

TEST_CASE("help, version, nothing asked and usage errors are exit codes with their text") {
    auto r = parse({"--version"});
    CHECK_FALSE(r.command);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("redvip 9.9.9") != std::string::npos);

    r = parse({});
    CHECK_FALSE(r.command);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--check-config") != std::string::npos);

    r = parse({"-c", "a.toml", "--check-config", "b.toml"}); // one or the other
    CHECK_FALSE(r.command);
    CHECK(r.exit_code != 0);
    CHECK_FALSE(r.err.empty());

    r = parse({"status"}); // -c is required
    CHECK_FALSE(r.command);
    CHECK(r.exit_code != 0);

    r = parse({"-c", "a.toml", "--log-level", "loud"});
    CHECK_FALSE(r.command);
    CHECK(r.exit_code != 0);
}
