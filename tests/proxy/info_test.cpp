// INFO replication parsing, on texts captured from redis-server 7.0 (a fresh
// master, a master with an online replica, that replica with its link up and
// then down, a replica just promoted), then each malformed field its own case.
#include "proxy/info.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace redvip::proxy;

namespace {

// redis-cli printed these with LF; Redis sends CRLF.
std::string crlf(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\n')
            out += '\r';
        out += c;
    }
    return out;
}

// redis-server 7.0: fresh master
const std::string k_fresh_master = crlf(R"(# Replication
role:master
connected_slaves:0
master_failover_state:no-failover
master_replid:b3e4497b5f21ec45f237506aa5a2cf7fdc078473
master_replid2:0000000000000000000000000000000000000000
master_repl_offset:0
second_repl_offset:-1
repl_backlog_active:0
repl_backlog_size:1048576
repl_backlog_first_byte_offset:0
repl_backlog_histlen:0
)");

// redis-server 7.0: master with replica
const std::string k_master_with_replica = crlf(R"(# Replication
role:master
connected_slaves:1
slave0:ip=127.0.0.1,port=16401,state=online,offset=0,lag=1
master_failover_state:no-failover
master_replid:7d96af1a406b91ec96784999c4494258466585eb
master_replid2:0000000000000000000000000000000000000000
master_repl_offset:77
second_repl_offset:-1
repl_backlog_active:1
repl_backlog_size:1048576
repl_backlog_first_byte_offset:1
repl_backlog_histlen:77
)");

// redis-server 7.0: replica up
const std::string k_replica_up = crlf(R"(# Replication
role:slave
master_host:127.0.0.1
master_port:16400
master_link_status:up
master_last_io_seconds_ago:0
master_sync_in_progress:0
slave_read_repl_offset:77
slave_repl_offset:77
slave_priority:100
slave_read_only:1
replica_announced:1
connected_slaves:0
master_failover_state:no-failover
master_replid:7d96af1a406b91ec96784999c4494258466585eb
master_replid2:0000000000000000000000000000000000000000
master_repl_offset:77
second_repl_offset:-1
repl_backlog_active:1
repl_backlog_size:1048576
repl_backlog_first_byte_offset:1
repl_backlog_histlen:77
)");

// redis-server 7.0: replica down
const std::string k_replica_down = crlf(R"(# Replication
role:slave
master_host:127.0.0.1
master_port:16400
master_link_status:down
master_last_io_seconds_ago:-1
master_sync_in_progress:0
slave_read_repl_offset:114
slave_repl_offset:114
master_link_down_since_seconds:1
slave_priority:100
slave_read_only:1
replica_announced:1
connected_slaves:0
master_failover_state:no-failover
master_replid:7d96af1a406b91ec96784999c4494258466585eb
master_replid2:0000000000000000000000000000000000000000
master_repl_offset:114
second_repl_offset:-1
repl_backlog_active:1
repl_backlog_size:1048576
repl_backlog_first_byte_offset:1
repl_backlog_histlen:114
)");

// redis-server 7.0: promoted
const std::string k_promoted = crlf(R"(# Replication
role:master
connected_slaves:0
master_failover_state:no-failover
master_replid:a18a1334431fe51c054a401558117ed0dfde8837
master_replid2:6876b00c199b1c5ced9e2d97b6c960f6cf026b6a
master_repl_offset:0
second_repl_offset:1
repl_backlog_active:0
repl_backlog_size:1048576
repl_backlog_first_byte_offset:0
repl_backlog_histlen:0
)");

ReplicationInfo parse_ok(const std::string& text) {
    InfoResult r = parse_info_replication(text);
    REQUIRE_MESSAGE(r.ok, r.error);
    return r.info;
}

std::string parse_error(const std::string& text) {
    InfoResult r = parse_info_replication(text);
    REQUIRE_FALSE(r.ok);
    return r.error;
}

} // namespace

TEST_CASE("a fresh master") {
    const ReplicationInfo i = parse_ok(k_fresh_master);
    CHECK(i.role == RedisRole::master);
    CHECK(i.master_replid == "b3e4497b5f21ec45f237506aa5a2cf7fdc078473");
    CHECK(i.master_repl_offset == 0);
    CHECK(i.second_repl_offset == -1);
    CHECK(i.connected_slaves == 0);
    CHECK(i.master_host.empty());
    CHECK_FALSE(i.master_link_status.has_value());
    CHECK_FALSE(i.slave_repl_offset.has_value());
}

TEST_CASE("a master with an online replica") {
    const ReplicationInfo i = parse_ok(k_master_with_replica);
    CHECK(i.role == RedisRole::master);
    CHECK(i.connected_slaves == 1);
    CHECK(i.master_repl_offset == 77);
    CHECK(i.master_replid == "7d96af1a406b91ec96784999c4494258466585eb");
}

TEST_CASE("a replica with its link up, then down") {
    const ReplicationInfo up = parse_ok(k_replica_up);
    CHECK(up.role == RedisRole::replica);
    CHECK(up.master_host == "127.0.0.1");
    CHECK(up.master_port == 16400);
    CHECK(up.master_link_status == MasterLink::up);
    CHECK(up.master_last_io_seconds_ago == 0);
    CHECK(up.slave_repl_offset == 77);
    CHECK(up.master_repl_offset == 77);
    CHECK(up.master_replid == "7d96af1a406b91ec96784999c4494258466585eb");

    const ReplicationInfo down = parse_ok(k_replica_down);
    CHECK(down.master_link_status == MasterLink::down);
    CHECK_FALSE(down.master_last_io_seconds_ago.has_value()); // Redis says -1
    CHECK(down.slave_repl_offset == 114);
}

TEST_CASE("a promoted replica keeps its old history's end") {
    const ReplicationInfo i = parse_ok(k_promoted);
    CHECK(i.role == RedisRole::master);
    CHECK(i.second_repl_offset == 1);
    CHECK(i.master_replid == "a18a1334431fe51c054a401558117ed0dfde8837");
}

TEST_CASE("LF line ends and unknown fields are accepted") {
    const ReplicationInfo i =
        parse_ok("# Replication\nrole:master\nsome_future_field:x\nmaster_repl_offset:5\n");
    CHECK(i.master_repl_offset == 5);
}

TEST_CASE("malformed INFO replication") {
    struct Case {
        const char* name;
        std::string text;
        const char* error;
    };
    const Case cases[] = {
        {"empty", "", "INFO replication: no role"},
        {"no role", "master_repl_offset:1\r\n", "INFO replication: no role"},
        {"unknown role", "role:sentinel\r\n", "INFO replication: role:sentinel: neither master nor slave"},
        {"no colon", "role:master\r\ngarbage\r\n", "INFO replication: a line without ':': garbage"},
        {"offset not a number", "role:master\r\nmaster_repl_offset:12x\r\n",
         "INFO replication: master_repl_offset:12x: not an integer in range"},
        {"negative offset", "role:master\r\nmaster_repl_offset:-5\r\n",
         "INFO replication: master_repl_offset:-5: not an integer in range"},
        {"offset overflowing", "role:master\r\nmaster_repl_offset:99999999999999999999\r\n",
         "INFO replication: master_repl_offset:99999999999999999999: not an integer in range"},
        {"short replid", "role:master\r\nmaster_replid:abc\r\n",
         "INFO replication: master_replid:abc: not 40 hex digits"},
        {"port out of range", "role:slave\r\nmaster_host:h\r\nmaster_port:70000\r\nmaster_link_status:up\r\n",
         "INFO replication: master_port:70000: not a port"},
        {"link status", "role:slave\r\nmaster_link_status:sideways\r\n",
         "INFO replication: master_link_status:sideways: neither up nor down"},
        {"replica without its master", "role:slave\r\nmaster_link_status:up\r\n",
         "INFO replication: a replica without master_host, master_port or master_link_status"},
        {"longer than 1 MiB", "role:master\r\n" + std::string(1 << 20, '#'), "INFO replication: longer than 1 MiB"},
    };
    for (const Case& c : cases) {
        SUBCASE(c.name) { CHECK(parse_error(c.text) == c.error); }
    }
}
