// Which commands may go on a shared link (multiplexed mode, shared_link.hpp)
// and which move their session to a pinned connection of its own, for the
// rest of its life. Pure: built from the server's own command table (the
// reply to COMMAND, read when a shared link connects) plus a list of what
// the table's flags do not say.
//
// A command pins its session when it changes or reads the state of the
// connection it runs on (SELECT, CLIENT anything, MULTI, WATCH, AUTH, HELLO,
// READONLY...), when it may block the connection (BLPOP, WAIT, XREAD with
// BLOCK: the server's `blocking` flag), when replies stop pairing with
// requests (SUBSCRIBE, MONITOR, CLIENT REPLY), when it must reach a busy
// server past a running script (`allow_busy`: SCRIPT KILL, FUNCTION KILL,
// SHUTDOWN), when the server cannot run it in a transaction (`no_multi`:
// SYNC, PSYNC, SAVE), and when a module defines it (`module`: its effect on
// the connection is unknown). Everything else, which is almost every command
// an application sends, shares.
#pragma once

#include "proxy/command.hpp"
#include "proxy/resp_value.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redvip::proxy {

// Why a session left shared mode; the metrics count pins by it.
enum class PinReason : std::uint8_t {
    none,             // shares
    connection_state, // SELECT, CLIENT, AUTH, HELLO, READONLY, RESET...
    transaction,      // MULTI, WATCH
    blocking,         // BLPOP and friends, WAIT, XREAD with BLOCK
    subscribe,        // replies stop pairing: SUBSCRIBE family, MONITOR, CLIENT REPLY
    server_flag,      // allow_busy, no_multi or module in the server's command table
    large_request,    // a request too large to hold whole (it streams)
    slow_reader,      // its client did not take its replies: they held the link up
    large_reply,      // a reply large enough to hold the link's other sessions up
};
inline constexpr std::size_t kPinReasons = 9;

std::string_view to_string(PinReason reason) noexcept;

// A reply at least this large marks its session to pin at its next command:
// bytes of one session's replies the link's others wait behind.
inline constexpr std::size_t kLargeReply = 64 * 1024;

class SharePolicy {
public:
    // The list alone: what the proxy knows without the server's table.
    SharePolicy() = default;
    // From the reply to COMMAND (the table of the Redis a link talks to); an
    // unexpected shape gives nothing, and the caller keeps the list alone.
    static std::optional<SharePolicy> from_command_table(const Value& reply);

    // `name` and `subcommand` uppercase, as the request framer reports them;
    // `traits` the session's classification; `blocking` its verdict (XREAD
    // with BLOCK).
    PinReason pin_reason(std::string_view name, std::string_view subcommand, CommandTraits traits,
                         bool blocking) const noexcept;

    // Commands and subcommands the server's flags pin.
    std::size_t flagged() const noexcept { return flagged_.size(); }
    // Commands in the table it was built from (0 for the list alone).
    std::size_t commands() const noexcept { return commands_; }

private:
    // (name, subcommand) uppercase, sorted; an empty subcommand: the whole command.
    std::vector<std::pair<std::string, std::string>> flagged_;
    std::size_t commands_ = 0;
};

} // namespace redvip::proxy
