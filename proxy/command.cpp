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

// Redis 7.0's @read and @write commands (COMMAND INFO flags), blocking ones
// left out (they are their own class). Sorted, for binary search. A few
// flagged @write only for a side effect an operator thinks of as a read
// (PFCOUNT caches its estimate) count as reads.
constexpr std::array<std::string_view, 80> kReads{
    "BITCOUNT", "BITFIELD_RO", "BITPOS", "DBSIZE", "DUMP", "EXISTS", "EXPIRETIME", "GEODIST",
    "GEOHASH", "GEOPOS", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH", "GET", "GETBIT",
    "GETRANGE", "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HRANDFIELD", "HSCAN",
    "HSTRLEN", "HVALS", "KEYS", "LCS", "LINDEX", "LLEN", "LPOS", "LRANGE", "MGET", "OBJECT",
    "PEXPIRETIME", "PFCOUNT", "PTTL", "RANDOMKEY", "SCAN", "SCARD", "SDIFF", "SINTER", "SINTERCARD",
    "SISMEMBER", "SMEMBERS", "SMISMEMBER", "SORT_RO", "SRANDMEMBER", "SSCAN", "STRLEN", "SUBSTR",
    "SUNION", "TOUCH", "TTL", "TYPE", "XINFO", "XLEN", "XPENDING", "XRANGE", "XREAD", "XREVRANGE",
    "ZCARD", "ZCOUNT", "ZDIFF", "ZINTER", "ZINTERCARD", "ZLEXCOUNT", "ZMSCORE", "ZRANDMEMBER",
    "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE", "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION",
};

constexpr std::array<std::string_view, 92> kWrites{
    "APPEND", "BITFIELD", "BITOP", "COPY", "DECR", "DECRBY", "DEL", "EXPIRE", "EXPIREAT",
    "FLUSHALL", "FLUSHDB", "GEOADD", "GEORADIUS", "GEORADIUSBYMEMBER", "GEOSEARCHSTORE", "GETDEL",
    "GETEX", "GETSET", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HMSET", "HSET", "HSETNX", "INCR",
    "INCRBY", "INCRBYFLOAT", "LINSERT", "LMOVE", "LMPOP", "LPOP", "LPUSH", "LPUSHX", "LREM", "LSET",
    "LTRIM", "MIGRATE", "MOVE", "MSET", "MSETNX", "PERSIST", "PEXPIRE", "PEXPIREAT", "PFADD",
    "PFDEBUG", "PFMERGE", "PSETEX", "RENAME", "RENAMENX", "RESTORE", "RESTORE-ASKING", "RPOP",
    "RPOPLPUSH", "RPUSH", "RPUSHX", "SADD", "SDIFFSTORE", "SET", "SETBIT", "SETEX", "SETNX",
    "SETRANGE", "SINTERSTORE", "SMOVE", "SORT", "SPOP", "SREM", "SUNIONSTORE", "SWAPDB", "UNLINK",
    "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XREADGROUP", "XSETID", "XTRIM",
    "ZADD", "ZDIFFSTORE", "ZINCRBY", "ZINTERSTORE", "ZMPOP", "ZPOPMAX", "ZPOPMIN", "ZRANGESTORE",
    "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZUNIONSTORE",
};
static_assert(std::is_sorted(kReads.begin(), kReads.end()) && std::is_sorted(kWrites.begin(), kWrites.end()),
              "kept sorted for the reader");

// The lookups run once per request: the tables are searched in (length, name)
// order, so most steps compare two integers rather than call memcmp (GET and
// SET, the commonest, meet no other name of their length in kRows).
constexpr bool shorter(std::string_view a, std::string_view b) noexcept {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
}

template <std::size_t N> constexpr std::array<std::string_view, N> by_length(std::array<std::string_view, N> names) {
    std::sort(names.begin(), names.end(), shorter);
    return names;
}

constexpr auto kRowsByLength = [] {
    auto rows = kRows;
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        return a.name != b.name ? shorter(a.name, b.name) : a.subcommand < b.subcommand;
    });
    return rows;
}();
constexpr auto kReadsByLength = by_length(kReads);
constexpr auto kWritesByLength = by_length(kWrites);

template <std::size_t N> bool contains(const std::array<std::string_view, N>& names, std::string_view name) noexcept {
    auto it = std::lower_bound(names.begin(), names.end(), name, shorter);
    return it != names.end() && *it == name;
}

} // namespace

CommandTraits classify(std::string_view name, std::string_view subcommand) noexcept {
    auto it = std::lower_bound(kRowsByLength.begin(), kRowsByLength.end(), name,
                               [](const Row& row, std::string_view n) { return shorter(row.name, n); });
    CommandTraits traits;
    for (; it != kRowsByLength.end() && it->name == name; ++it) {
        if (it->subcommand.empty())
            traits.bits = it->traits;
        else if (it->subcommand == subcommand)
            return {it->traits};
    }
    return traits;
}


std::string_view to_string(CommandClass c) noexcept {
    switch (c) {
    case CommandClass::read: return "read";
    case CommandClass::write: return "write";
    case CommandClass::blocking: return "blocking";
    case CommandClass::other: return "other";
    }
    return "other";
}

CommandClass command_class(std::string_view name, bool blocking) noexcept {
    if (blocking)
        return CommandClass::blocking;
    if (contains(kReadsByLength, name))
        return CommandClass::read;
    if (contains(kWritesByLength, name))
        return CommandClass::write;
    return CommandClass::other;
}

} // namespace redvip::proxy
