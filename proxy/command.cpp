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
              "kept sorted for the reader");

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

// Every request is looked up here, so the three tables become one open
// addressing hash table, built at compile time: a name costs one FNV-1a hash
// and, mostly, one comparison. A name with subcommand rows (CLIENT) then
// scans its few rows.
struct Entry {
    std::string_view name;  // empty: a free slot
    std::uint8_t traits = 0; // the command's own row (no subcommand)
    bool subcommands = false;
    CommandClass command_class = CommandClass::other;
};

constexpr std::size_t kSlots = 512; // a power of two, over twice the names
static_assert(kRows.size() + kReads.size() + kWrites.size() < kSlots / 2);

constexpr std::uint32_t hash(std::string_view name) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : name)
        h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h;
}

// string_view's == calls memcmp for names of run-time length; names are a
// few bytes, compared once or twice per request, so a plain loop is cheaper.
constexpr bool same(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i])
            return false;
    return true;
}

constexpr std::size_t slot_of(const std::array<Entry, kSlots>& table, std::string_view name) noexcept {
    std::size_t i = hash(name) & (kSlots - 1);
    while (!table[i].name.empty() && !same(table[i].name, name))
        i = (i + 1) & (kSlots - 1);
    return i;
}

constexpr auto kTable = [] {
    std::array<Entry, kSlots> table{};
    auto entry = [&table](std::string_view name) -> Entry& {
        Entry& e = table[slot_of(table, name)];
        e.name = name;
        return e;
    };
    for (const Row& row : kRows) {
        Entry& e = entry(row.name);
        if (row.subcommand.empty())
            e.traits = row.traits;
        else
            e.subcommands = true;
    }
    for (std::string_view name : kReads)
        entry(name).command_class = CommandClass::read;
    for (std::string_view name : kWrites)
        entry(name).command_class = CommandClass::write;
    return table;
}();

const Entry* find(std::string_view name) noexcept {
    const Entry& e = kTable[slot_of(kTable, name)];
    return e.name.empty() ? nullptr : &e;
}

} // namespace

CommandTraits classify(std::string_view name, std::string_view subcommand) noexcept {
    const Entry* e = find(name);
    if (e == nullptr)
        return {};
    if (e->subcommands)
        for (const Row& row : kRows)
            if (same(row.name, name) && same(row.subcommand, subcommand))
                return {row.traits};
    return {e->traits};
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
    const Entry* e = find(name);
    return e == nullptr ? CommandClass::other : e->command_class;
}

} // namespace redvip::proxy
