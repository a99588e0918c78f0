// What a command does to the backend connection it runs on: what the session and
// the pool must know before forwarding it. A data table (command.cpp), looked up by
// the uppercase name and subcommand RequestFramer reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redvip::proxy {

enum class Trait : std::uint8_t {
    // Leaves state on the backend connection (database, name, transaction,
    // subscriptions, tracking, protocol, user): RESET it before another client
    // uses it.
    connection_state = 1 << 0,
    // Answered by the proxy, never forwarded: credentials are the proxy's own (the
    // backend link authenticates with the backend's), QUIT would close a pooled
    // link, RESET would log it out. HELLO may carry AUTH arguments.
    intercepted = 1 << 1,
    // May hold the connection until its timeout, so no idle or backend timeout
    // shorter than the command's own may cut it.
    blocking = 1 << 2,
    // Blocking only when a BLOCK option is given (XREAD, XREADGROUP): the session
    // looks at the arguments (request_args) to know.
    blocking_with_option = 1 << 3,
    // (Un)subscribes: Redis answers once per channel, and in RESP2 the connection
    // then accepts only pub/sub commands, PING, QUIT and RESET.
    pubsub = 1 << 4,
    // After it, replies stop being one per request: subscription messages, the
    // MONITOR feed, CLIENT REPLY OFF/SKIP, a replication stream.
    unpaired_replies = 1 << 5,
    // Changes this node's replication role: with an election, roles are
    // redvip's to set, and a client's REPLICAOF through the VIP would undo them.
    role_change = 1 << 6,
};

struct CommandTraits {
    std::uint8_t bits = 0;
    constexpr bool has(Trait t) const noexcept {
        return (bits & static_cast<std::uint8_t>(t)) != 0;
    }
    constexpr bool plain() const noexcept { return bits == 0; }
};

// `name` and `subcommand` uppercase, as RequestFramer reports them; a row for the
// subcommand wins over the command's own row. Unknown commands are plain.
CommandTraits classify(std::string_view name, std::string_view subcommand) noexcept;

// What an operator asks of latency: are reads slow, writes slow, or is it the
// blocking commands (whose latency is the client's own timeout)? Each request's
// reply latency is recorded under one class (metrics).
enum class CommandClass : std::uint8_t {
    read,     // Redis's @read commands that do not block (GET, HGETALL, ZRANGE, SCAN...)
    write,    // @write commands that do not block (SET, DEL, INCR, XADD...)
    blocking, // BLPOP and friends, WAIT, XREAD/XREADGROUP with BLOCK
    other,    // the rest: connection, server, scripting, transactions, pub/sub, unknown
};
inline constexpr std::size_t kCommandClasses = 4;

std::string_view to_string(CommandClass c) noexcept;

// `blocking`: the session's verdict (Trait::blocking, or a BLOCK option given).
CommandClass command_class(std::string_view name, bool blocking) noexcept;

} // namespace redvip::proxy
