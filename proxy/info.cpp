#include "proxy/info.hpp"

#include <charconv>

namespace redvip::proxy {

namespace {

// INFO replication is a few hundred bytes plus ~70 per replica; a reply past
// this is not from Redis, or from one with thousands of replicas we do not model.
constexpr std::size_t kMaxInfoText = 1024 * 1024;
// master_host may be a DNS name (RFC 1035: at most 253 bytes).
constexpr std::size_t kMaxHostLen = 255;
// master_replid is 40 hex digits (CONFIG_RUN_ID_SIZE).
constexpr std::size_t kReplidLen = 40;

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

bool is_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

struct Fields {
    ReplicationInfo info;
    bool has_role = false;
    std::string error;

    bool fail(std::string_view key, std::string_view value, std::string_view why) {
        error = std::string(key) + ":" + std::string(value.substr(0, 64)) + ": " + std::string(why);
        return false;
    }

    bool number(std::string_view key, std::string_view value, std::int64_t& out, std::int64_t min) {
        auto v = to_int(value);
        if (!v || *v < min)
            return fail(key, value, "not an integer in range");
        out = *v;
        return true;
    }

    // One "key:value" line; false on a malformed known field.
    bool take(std::string_view key, std::string_view value) {
        std::int64_t n = 0;
        if (key == "role") {
            if (value == "master")
                info.role = RedisRole::master;
            else if (value == "slave")
                info.role = RedisRole::replica;
            else
                return fail(key, value, "neither master nor slave");
            has_role = true;
        } else if (key == "master_replid") {
            if (value.size() != kReplidLen || !is_hex(value))
                return fail(key, value, "not 40 hex digits");
            info.master_replid = value;
        } else if (key == "master_replid2") {
            if (value.size() != kReplidLen || !is_hex(value))
                return fail(key, value, "not 40 hex digits");
            info.master_replid2 = value;
        } else if (key == "master_repl_offset") {
            return number(key, value, info.master_repl_offset, 0);
        } else if (key == "second_repl_offset") {
            return number(key, value, info.second_repl_offset, -1);
        } else if (key == "connected_slaves") {
            return number(key, value, info.connected_slaves, 0);
        } else if (key == "master_host") {
            if (value.empty() || value.size() > kMaxHostLen)
                return fail(key, value, "empty or too long");
            info.master_host = value;
        } else if (key == "master_port") {
            if (!number(key, value, n, 1) || n > 65535)
                return fail(key, value, "not a port");
            info.master_port = static_cast<std::uint16_t>(n);
        } else if (key == "master_link_status") {
            if (value != "up" && value != "down")
                return fail(key, value, "neither up nor down");
            info.master_link_status = value == "up" ? MasterLink::up : MasterLink::down;
        } else if (key == "slave_repl_offset") {
            if (!number(key, value, n, 0))
                return false;
            info.slave_repl_offset = n;
        } else if (key == "master_last_io_seconds_ago") {
            if (!number(key, value, n, -1))
                return false;
            info.master_last_io_seconds_ago = n < 0 ? std::nullopt : std::optional<std::int64_t>(n);
        }
        return true;
    }
};

} // namespace

InfoResult parse_info_replication(std::string_view text) {
    if (text.size() > kMaxInfoText)
        return {false, {}, "INFO replication: longer than 1 MiB"};
    Fields f;
    while (!text.empty()) {
        std::size_t lf = text.find('\n');
        std::string_view line = text.substr(0, lf);
        text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
        if (line.ends_with('\r'))
            line.remove_suffix(1);
        if (line.empty() || line.front() == '#')
            continue;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            return {false, {}, "INFO replication: a line without ':': " + std::string(line.substr(0, 64))};
        if (!f.take(line.substr(0, colon), line.substr(colon + 1)))
            return {false, {}, "INFO replication: " + f.error};
    }
    if (!f.has_role)
        return {false, {}, "INFO replication: no role"};
    if (f.info.role == RedisRole::master) {
        // A master's copy of these fields would be stale leftovers: keep the
        // struct's promise that they are set for replicas only.
        f.info.master_host.clear();
        f.info.master_port = 0;
        f.info.master_link_status.reset();
        f.info.slave_repl_offset.reset();
        f.info.master_last_io_seconds_ago.reset();
    } else if (f.info.master_host.empty() || f.info.master_port == 0 || !f.info.master_link_status) {
        return {false, {}, "INFO replication: a replica without master_host, master_port or master_link_status"};
    }
    return {true, std::move(f.info), {}};
}

std::string_view to_string(RedisRole role) noexcept {
    return role == RedisRole::master ? "master" : "replica";
}

std::string_view redis_name(RedisRole role) noexcept {
    return role == RedisRole::master ? "master" : "slave";
}

std::string_view to_string(MasterLink link) noexcept {
    return link == MasterLink::up ? "up" : "down";
}

} // namespace redvip::proxy
