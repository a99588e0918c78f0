// Which commands share a link and which pin their session (share_policy.hpp):
// the list alone, and the list with a server's command table (a COMMAND
// reply's shape: name, arity, flags, ..., subcommands at 9).
#include "proxy/resp_value.hpp"
#include "proxy/share_policy.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>

using namespace redvip::proxy;

namespace {

PinReason reason(const SharePolicy& p, std::string_view name, std::string_view sub = "", bool blocking = false) {
    return p.pin_reason(name, sub, classify(name, sub), blocking);
}

// A command row: *10 name arity flags first last step acl tips keyspecs subcommands.
std::string row(std::string_view name, std::initializer_list<std::string_view> flags,
                std::string_view subcommands = "*0\r\n") {
    std::string out = fmt::format("*10\r\n${}\r\n{}\r\n:2\r\n*{}\r\n", name.size(), name, flags.size());
    for (std::string_view f : flags)
        out += fmt::format("+{}\r\n", f);
    out += ":1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n";
    out += subcommands;
    return out;
}

} // namespace

TEST_CASE("the list alone: data commands share, connection state and blocking pin") {
    const SharePolicy p;
    CHECK(reason(p, "GET") == PinReason::none);
    CHECK(reason(p, "SET") == PinReason::none);
    CHECK(reason(p, "EVAL") == PinReason::none);
    CHECK(reason(p, "PING") == PinReason::none);
    CHECK(reason(p, "PUBLISH") == PinReason::none);
    CHECK(reason(p, "NOSUCHCOMMAND") == PinReason::none); // Redis answers an error: no state
    CHECK(reason(p, "SELECT") == PinReason::connection_state);
    CHECK(reason(p, "AUTH") == PinReason::connection_state);
    CHECK(reason(p, "HELLO") == PinReason::connection_state);
    CHECK(reason(p, "READONLY") == PinReason::connection_state);
    CHECK(reason(p, "CLIENT", "ID") == PinReason::connection_state);   // every subcommand
    CHECK(reason(p, "CLIENT", "LIST") == PinReason::connection_state);
    CHECK(reason(p, "CLIENT", "SETNAME") == PinReason::connection_state);
    CHECK(reason(p, "MULTI") == PinReason::transaction);
    CHECK(reason(p, "WATCH") == PinReason::transaction);
    CHECK(reason(p, "BLPOP", "", true) == PinReason::blocking);
    CHECK(reason(p, "WAIT", "", true) == PinReason::blocking);
    CHECK(reason(p, "XREAD") == PinReason::none);                   // without BLOCK
    CHECK(reason(p, "XREAD", "", true) == PinReason::blocking);     // with BLOCK
    CHECK(reason(p, "SUBSCRIBE") == PinReason::subscribe);
    CHECK(reason(p, "SSUBSCRIBE") == PinReason::subscribe);
    CHECK(reason(p, "MONITOR") == PinReason::subscribe);
    CHECK(reason(p, "CLIENT", "REPLY") == PinReason::subscribe);
    CHECK(reason(p, "SCRIPT", "KILL") == PinReason::server_flag);
    CHECK(reason(p, "FUNCTION", "KILL") == PinReason::server_flag);
    CHECK(reason(p, "SHUTDOWN") == PinReason::server_flag);
    CHECK(reason(p, "SCRIPT", "LOAD") == PinReason::none);
}

TEST_CASE("the server's table adds what its flags say: modules, allow_busy, no_multi, blocking") {
    const std::string subcommands =
        fmt::format("*2\r\n{}{}", row("thing|stop", {"allow_busy"}), row("thing|look", {"readonly"}));
    const std::string table =
        fmt::format("*6\r\n{}{}{}{}{}{}", row("get", {"readonly", "fast"}), row("mod.block", {"module", "write"}),
                    row("newblock", {"blocking"}), row("save", {"admin", "no_multi"}),
                    row("xread", {"readonly", "blocking"}), row("thing", {"readonly"}, subcommands));
    const ValueResult parsed = parse_value(table);
    REQUIRE(parsed.status == redvip::proxy::Status::done);
    const auto p = SharePolicy::from_command_table(parsed.value);
    REQUIRE(p.has_value());
    CHECK(p->commands() == 8);
    CHECK(p->flagged() == 5);
    CHECK(reason(*p, "GET") == PinReason::none);
    CHECK(reason(*p, "MOD.BLOCK") == PinReason::server_flag);
    CHECK(reason(*p, "NEWBLOCK") == PinReason::server_flag);
    CHECK(reason(*p, "SAVE") == PinReason::server_flag);
    CHECK(reason(*p, "THING", "STOP") == PinReason::server_flag);
    CHECK(reason(*p, "THING", "LOOK") == PinReason::none);
    CHECK(reason(*p, "XREAD") == PinReason::none);               // its BLOCK option decides
    CHECK(reason(*p, "XREAD", "", true) == PinReason::blocking);
    CHECK(reason(*p, "SELECT") == PinReason::connection_state); // the list still applies
}

TEST_CASE("a reply that is not a command table gives nothing") {
    for (std::string_view bad : {"-NOAUTH Authentication required.\r\n", "*0\r\n", "*1\r\n:1\r\n",
                                 "*1\r\n*2\r\n$3\r\nget\r\n:2\r\n", "*1\r\n*3\r\n:1\r\n:2\r\n*0\r\n"}) {
        CAPTURE(bad);
        const ValueResult parsed = parse_value(bad);
        REQUIRE(parsed.status == redvip::proxy::Status::done);
        CHECK_FALSE(SharePolicy::from_command_table(parsed.value).has_value());
    }
}
