// The Redis executor's pure helpers: ROLE checks, INFO replication and
// encoding, on replies decoded by the protocol library.
#include "election/role/redis_executor.hpp"
#include "vrrp_test_support.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace redvip::election;
namespace proxy = redvip::proxy;
using redvip::election::test::ep;
using redvip::conf::Endpoint;

namespace {

// The one reply in `bytes`, owned.
proxy::OwnedValue one(const std::string& bytes) {
    const auto parsed = proxy::parse_value(bytes);
    REQUIRE(parsed.status == proxy::Status::done);
    REQUIRE(parsed.used == bytes.size());
    return proxy::own(parsed.value);
}

const std::string role_master = "*3\r\n$6\r\nmaster\r\n:3129659\r\n*0\r\n";
const std::string role_replica =
    "*5\r\n$5\r\nslave\r\n$8\r\n10.0.0.2\r\n:6379\r\n$9\r\nconnected\r\n:3167038\r\n";

} // namespace

TEST_CASE("commands are RESP arrays of bulk strings") {
    CHECK(encode_command({"REPLICAOF", "NO", "ONE"}) ==
          "*3\r\n$9\r\nREPLICAOF\r\n$2\r\nNO\r\n$3\r\nONE\r\n");
    CHECK(encode_command({"AUTH", ""}) == "*2\r\n$4\r\nAUTH\r\n$0\r\n\r\n");
}

TEST_CASE("INFO replication, parsed by the protocol library, says whom a replica follows") {
    // The parser's own cases are tests/proxy/info_test.cpp.
    const auto parsed = redvip::proxy::parse_info_replication(
        "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.2\r\nmaster_port:6379\r\n"
        "master_link_status:up\r\nconnected_slaves:0\r\n"
        "master_replid:8f3c1a0e0b6b4b5d9f0e2c7a1d3b5e7f9a1c3e5d\r\nmaster_repl_offset:118\r\n");
    REQUIRE(parsed.ok);
    const ReplicationFacts& f = parsed.info;
    CHECK(f.role == RedisRole::replica);
    CHECK(f.master_link_status == MasterLink::up);
    CHECK(replicates_from(f, ep("10.0.0.2", 6379)));
    CHECK_FALSE(replicates_from(f, ep("10.0.0.3", 6379)));
    CHECK_FALSE(replicates_from(f, ep("10.0.0.2", 6380)));
}

TEST_CASE("ROLE confirms master, or a replica of exactly the master asked for") {
    CHECK(check_role(one(role_master), std::nullopt).confirmed);
    CHECK_FALSE(check_role(one(role_master), ep("10.0.0.2", 6379)).confirmed);

    const auto replica = one(role_replica);
    CHECK(check_role(replica, ep("10.0.0.2", 6379)).confirmed);
    CHECK_FALSE(check_role(replica, ep("10.0.0.2", 6380)).confirmed);
    CHECK_FALSE(check_role(replica, ep("10.0.0.3", 6379)).confirmed);
    const auto not_master = check_role(replica, std::nullopt);
    CHECK_FALSE(not_master.confirmed);
    CHECK(not_master.seen == "slave of 10.0.0.2:6379 (connected)");
}

TEST_CASE("odd ROLE replies are never a confirmation") {
    CHECK(check_role(one("-NOAUTH Authentication required.\r\n"), std::nullopt).seen ==
          "NOAUTH Authentication required.");
    CHECK_FALSE(check_role(one("+OK\r\n"), std::nullopt).confirmed);
    CHECK_FALSE(check_role(one("*0\r\n"), std::nullopt).confirmed);
    CHECK_FALSE(check_role(one("*1\r\n$8\r\nsentinel\r\n"), std::nullopt).confirmed);
    CHECK_FALSE(check_role(one("*4\r\n$5\r\nslave\r\n$8\r\n10.0.0.2\r\n:70000\r\n$1\r\nx\r\n"),
                           ep("10.0.0.2", 6379))
                    .confirmed);
}
