#include "proxy/command.hpp"

#include <algorithm>
#include <array>

namespace redvip::proxy {
namespace {

constexpr std::uint8_t operator|(Trait a, Trait b) noexcept {
    return static_cast<std::uint8_t>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr std::uint8_t operator|(std::uint8_t a, Trait b) noexcept {
    return static_cast<std::uint8_t>(a | static_cast<std::uint8_t>(b));
}
constexpr std::uint8_t bits(Trait t) noexcept {
    return static_cast<std::uint8_t>(t);
}

constexpr auto state = Trait::connection_state;
constexpr auto intercepted = Trait::intercepted;
constexpr auto blocking = Trait::blocking;
constexpr auto pubsub = Trait::pubsub;
constexpr auto unpaired = Trait::unpaired_replies;

struct Row {
    std::string_view name;
    std::string_view subcommand; // empty: the whole command
    std::uint8_t traits;
};

constexpr bool row_less(const Row& a, const Row& b) noexcept {
    return a.name != b.name ? a.name < b.name : a.subcommand < b.subcommand;
}

// Sorted by name, then subcommand (the command's own row first); Redis 7.0's
// commands plus the 7.2 ones that would matter if the backend is upgraded.
constexpr std::array kRows{
    Row{"ASKING", "", bits(state)}, // cluster: one-shot redirection flag
    Row{"AUTH", "", state | intercepted},
    Row{"BLMOVE", "", bits(blocking)},
    Row{"BLMPOP", "", bits(blocking)},
    Row{"BLPOP", "", bits(blocking)},
    Row{"BRPOP", "", bits(blocking)},
    Row{"BRPOPLPUSH", "", bits(blocking)},
    Row{"BZMPOP", "", bits(blocking)},
    Row{"BZPOPMAX", "", bits(blocking)},
    Row{"BZPOPMIN", "", bits(blocking)},
    Row{"CLIENT", "CACHING", bits(state)},
    Row{"CLIENT", "NO-EVICT", bits(state)},
    Row{"CLIENT", "NO-TOUCH", bits(state)}, // 7.2
    Row{"CLIENT", "REPLY", state | unpaired},
    Row{"CLIENT", "SETINFO", bits(state)}, // 7.2
    Row{"CLIENT", "SETNAME", bits(state)},
    Row{"CLIENT", "TRACKING", bits(state)},
    Row{"FAILOVER", "", bits(Trait::role_change)},
    Row{"HELLO", "", state | intercepted},
    Row{"MONITOR", "", state | unpaired},
    Row{"MULTI", "", bits(state)},
    Row{"PSUBSCRIBE", "", state | pubsub | unpaired},
    Row{"PSYNC", "", state | unpaired},
    Row{"PUNSUBSCRIBE", "", pubsub | unpaired},
    Row{"QUIT", "", bits(intercepted)},
    Row{"READONLY", "", bits(state)},
    Row{"READWRITE", "", bits(state)},
    Row{"REPLCONF", "", bits(state)},
    Row{"REPLICAOF", "", bits(Trait::role_change)},
    Row{"RESET", "", state | intercepted},
    Row{"SELECT", "", bits(state)},
    Row{"SLAVEOF", "", bits(Trait::role_change)},
    Row{"SSUBSCRIBE", "", state | pubsub | unpaired},
    Row{"SUBSCRIBE", "", state | pubsub | unpaired},
    Row{"SUNSUBSCRIBE", "", pubsub | unpaired},
    Row{"SYNC", "", state | unpaired},
    Row{"UNSUBSCRIBE", "", pubsub | unpaired},
    Row{"WAIT", "", bits(blocking)},
    Row{"WAITAOF", "", bits(blocking)}, // 7.2
    Row{"WATCH", "", bits(state)},
    Row{"XREAD", "", bits(Trait::blocking_with_option)},
    Row{"XREADGROUP", "", bits(Trait::blocking_with_option)},
};
static_assert(std::is_sorted(kRows.begin(), kRows.end(), row_less),
              "classify() binary-searches kRows");

} // namespace

CommandTraits classify(std::string_view name, std::string_view subcommand) noexcept {
    auto it = std::lower_bound(kRows.begin(), kRows.end(), Row{name, "", 0}, row_less);
    CommandTraits traits;
    for (; it != kRows.end() && it->name == name; ++it) {
        if (it->subcommand.empty())
            traits.bits = it->traits;
        else if (it->subcommand == subcommand)
            return {it->traits};
    }
    return traits;
}

} // namespace redvip::proxy
