// INFO replication, parsed: the replication facts the health checker reports
// (and the election's controller decides on). Pure: text in, struct or error
// out; no sockets, no clock, no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace redvip::proxy {

enum class RedisRole : std::uint8_t { master, replica };
enum class MasterLink : std::uint8_t { up, down };

// Redis 7's field names (src/replication.c, genRedisInfoString). Fields of
// the replica section are set only when role is replica.
struct ReplicationInfo {
    RedisRole role = RedisRole::master;
    std::string master_replid;             // 40 hex digits: the history this node serves
    std::string master_replid2;            // the history it continued from (all zeros: none)
    std::int64_t master_repl_offset = 0;   // bytes of that history this node has
    std::int64_t second_repl_offset = -1;  // where master_replid2's history ends; -1: none
    std::int64_t connected_slaves = 0;
    // Replicas only:
    std::string master_host;
    std::uint16_t master_port = 0;
    std::optional<MasterLink> master_link_status;
    std::optional<std::int64_t> slave_repl_offset;
    // Seconds since the last byte from the master; Redis says -1 while the
    // link is down, reported here as nullopt.
    std::optional<std::int64_t> master_last_io_seconds_ago;

    bool operator==(const ReplicationInfo&) const = default;
};

struct InfoResult {
    bool ok = false;
    ReplicationInfo info; // when ok
    std::string error;    // when not: which line or field, and why
};

// `text`: the bulk string INFO replication returns ("# Replication\r\n
// role:master\r\n..."), LF or CRLF line ends. Unknown fields (slave0:..., the
// backlog, failover state) are skipped, so newer Redis versions parse; a known
// field with a malformed value, a missing or unknown role, a replica without
// master_host/master_port/master_link_status, or a line past the caps is an
// error.
InfoResult parse_info_replication(std::string_view text);

std::string_view to_string(RedisRole role) noexcept; // "master", "replica"
// INFO's and ROLE's own word: "master" or "slave".
std::string_view redis_name(RedisRole role) noexcept;
std::string_view to_string(MasterLink link) noexcept;

} // namespace redvip::proxy
