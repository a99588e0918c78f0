// conf/: the loader's accept and reject paths. Every rejection asserts the
// whole message, so the file, line, column, key and expectation are checked.
#include "conf/config.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace redvip::conf;
using namespace std::chrono_literals;

namespace {

const std::string kPlain = R"([proxy]
listen = "127.0.0.1:7000"
[redis]
address = "127.0.0.1:6379"
)";

// A valid two-node election config; tests append or replace lines.
const std::string kPair = R"([node]
name = "redis-a"
[proxy]
listen = "10.77.0.100:6379"
[redis]
address = "10.77.0.1:6379"
[vrrp]
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_interval_ms = 100
[[peer]]
name = "redis-b"
vrrp_address = "10.77.0.2"
redis = "10.77.0.2:6379"
[vip]
addresses = ["10.77.0.100/24"]
)";

std::string errors(const LoadResult& r) {
    std::string all;
    for (const auto& e : r.errors)
        all += e.to_string() + "\n";
    return all;
}

// Loads text as "t.toml" and expects exactly one error with this text.
void expect_error(const std::string& text, const std::string& expected) {
    auto r = load_string(text, "t.toml");
    CHECK_FALSE(r.config.has_value());
    REQUIRE_MESSAGE(r.errors.size() == 1, errors(r));
    CHECK(r.errors[0].to_string() == expected);
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

} // namespace

TEST_CASE("a plain proxy needs only listen and address; everything else has a default") {
    auto r = load_string(kPlain, "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    const Config& c = *r.config;
    CHECK(c.proxy.listen.to_string() == "127.0.0.1:7000");
    CHECK(c.redis.address.port == 6379);
    CHECK(c.proxy.threads == 2);
    CHECK(c.proxy.max_clients == 10000);
    CHECK(c.proxy.idle_timeout == 0ms);
    CHECK(c.proxy.backend_timeout == 0ms); // none, as for a direct client
    CHECK(c.proxy.hold_timeout == 5000ms);
    CHECK(c.proxy.tcp_keepalive == std::chrono::seconds{300}); // Redis's tcp-keepalive
    CHECK(c.redis.pool_size == 0);
    CHECK(c.proxy.multiplex);
    CHECK(c.redis.shared_links == 1);
    CHECK_FALSE(c.vrrp.has_value());
    CHECK_FALSE(c.vip.has_value());
    CHECK(c.health.interval == 100ms);
    CHECK(c.health.weight == 0);
    REQUIRE(c.metrics.listen.has_value());
    CHECK(c.metrics.listen->to_string() == "127.0.0.1:9121");
    CHECK(c.admin.socket == "/run/redvip/redvip.sock");
    CHECK(c.log.level == "info");
}

TEST_CASE("an election config reads every section") {
    auto r = load_string(kPair, "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    const Config& c = *r.config;
    REQUIRE(c.vrrp.has_value());
    CHECK(c.vrrp->version == 3);
    CHECK(c.vrrp->virtual_router_id == 51);
    CHECK(c.vrrp->advert_interval == 100ms);
    REQUIRE(c.peers.size() == 1);
    CHECK(c.peers[0].name == "redis-b");
    CHECK(c.peers[0].redis.to_string() == "10.77.0.2:6379");
    REQUIRE(c.vip.has_value());
    CHECK(c.vip->interface == "eth0"); // defaulted from vrrp.interface
    REQUIRE(c.vip->addresses.size() == 1);
    CHECK(c.vip->addresses[0].to_string() == "10.77.0.100/24");
}

TEST_CASE("IPv6 endpoints and VIPs") {
    auto text = replace(replace(replace(replace(kPair, "10.77.0.100:6379", "[fd77::100]:6379"),
                                        "\"10.77.0.100/24\"", "\"fd77::100/64\""),
                                "vrrp_address = \"10.77.0.2\"", "vrrp_address = \"fd77::2\""),
                        "redis = \"10.77.0.2:6379\"", "redis = \"[fd77::2]:6379\"");
    auto r = load_string(text, "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    CHECK(r.config->proxy.listen.host.is_v6());
    CHECK(r.config->proxy.listen.to_string() == "[fd77::100]:6379");
    CHECK(r.config->vip->addresses[0].length == 64);
}

TEST_CASE("endpoint and prefix parsing") {
    CHECK(parse_endpoint("10.0.0.1:1").has_value());
    CHECK(parse_endpoint("[::1]:65535").has_value());
    CHECK_FALSE(parse_endpoint("::1:6379").has_value());      // IPv6 needs brackets
    CHECK_FALSE(parse_endpoint("[10.0.0.1]:6379").has_value()); // brackets are for IPv6
    CHECK_FALSE(parse_endpoint("10.0.0.1:0").has_value());
    CHECK_FALSE(parse_endpoint("10.0.0.1:65536").has_value());
    CHECK_FALSE(parse_endpoint("10.0.0.1:").has_value());
    CHECK_FALSE(parse_endpoint("10.0.0.1:+80").has_value());
    CHECK_FALSE(parse_endpoint("localhost:6379").has_value()); // no DNS at start-up
    CHECK_FALSE(parse_endpoint("10.0.0.1").has_value());
    CHECK(parse_prefix("10.0.0.1")->length == 32);
    CHECK(parse_prefix("fd00::1")->length == 128);
    CHECK_FALSE(parse_prefix("10.0.0.1/33").has_value());
    CHECK_FALSE(parse_prefix("10.0.0.1/0").has_value());
    CHECK_FALSE(parse_prefix("10.0.0.1/").has_value());
    CHECK_FALSE(parse_prefix("10.0.0.1/x").has_value());
}

TEST_CASE("out-of-range numbers name the key, the place and the range") {
    expect_error(replace(kPair, "priority = 100", "priority = 300"),
                 "t.toml:10:12: vrrp.priority = 300: must be between 1 and 254");
    expect_error(replace(kPair, "virtual_router_id = 51", "virtual_router_id = 0"),
                 "t.toml:9:21: vrrp.virtual_router_id = 0: must be between 1 and 255");
    expect_error(kPlain + "threads = 0\n", "t.toml:5:1: redis.threads: unknown key, expected one of: "
                                           "address, password, pool_size, shared_links");
    expect_error(replace(kPlain, "[redis]", "threads = 65\n[redis]"),
                 "t.toml:3:11: proxy.threads = 65: must be between 1 and 64");
    expect_error(kPlain + "[health]\nweight = 5\n", "t.toml:6:10: health.weight = 5: must be between -254 and 0");
    expect_error(replace(kPlain, "[redis]", "hold_timeout_ms = 0\n[redis]"),
                 "t.toml:3:19: proxy.hold_timeout_ms = 0: must be between 1 and 3600000");
    expect_error(replace(kPlain, "[redis]", "tcp_keepalive_s = -1\n[redis]"),
                 "t.toml:3:19: proxy.tcp_keepalive_s = -1: must be between 0 and 604800");
}

TEST_CASE("the hold bound is its own key, apart from the backend timeout") {
    auto r = load_string(replace(kPlain, "[redis]", "hold_timeout_ms = 1500\nbackend_timeout_ms = 30000\n[redis]"),
                         "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    CHECK(r.config->proxy.hold_timeout == 1500ms);
    CHECK(r.config->proxy.backend_timeout == 30000ms);
}

TEST_CASE("wrong types are errors, not coercions") {
    expect_error(replace(kPair, "priority = 100", "priority = \"100\""),
                 "t.toml:10:12: vrrp.priority = \"100\": expected an integer, not a string");
    expect_error(replace(kPair, "priority = 100", "priority = 100.0"),
                 "t.toml:10:12: vrrp.priority = 100.0: expected an integer, not a float");
    expect_error(kPair + "[log]\nlevel = 3\n", "t.toml:19:9: log.level = 3: expected a string, not an integer");
    expect_error(replace(kPair, "interface = \"eth0\"", "interface = \"eth0\"\npreempt = \"yes\""),
                 "t.toml:9:11: vrrp.preempt = \"yes\": expected true or false, not a string");
    expect_error(kPlain + "[vip]\naddresses = \"10.77.0.100/24\"\n",
                 "t.toml:6:13: vip.addresses = \"10.77.0.100/24\": expected an array of strings, not a string");
    expect_error("proxy = 1\n[redis]\naddress = \"127.0.0.1:6379\"\n",
                 "t.toml:1:9: proxy: expected a table [proxy], not an integer");
}

TEST_CASE("unknown keys and sections are errors, with a suggestion") {
    expect_error(replace(kPair, "priority = 100", "priorty = 100"),
                 "t.toml:10:1: vrrp.priorty: unknown key, did you mean 'priority'?");
    expect_error(kPlain + "[helth]\n", "t.toml:5:2: helth: unknown section, did you mean 'health'?");
    expect_error(kPlain + "[proxy2]\n", "t.toml:5:2: proxy2: unknown section, did you mean 'proxy'?");
}

TEST_CASE("missing required keys") {
    expect_error("[redis]\naddress = \"127.0.0.1:6379\"\n",
                 "t.toml:1:1: proxy.listen: required key missing");
    expect_error("[proxy]\nlisten = \"127.0.0.1:7000\"\n", "t.toml:1:1: redis.address: required key missing");
    expect_error(replace(kPair, "virtual_router_id = 51\n", ""),
                 "t.toml:7:1: vrrp.virtual_router_id: required key missing");
    expect_error(replace(kPair, "redis = \"10.77.0.2:6379\"\n", ""),
                 "t.toml:12:1: peer[0].redis: required key missing");
    expect_error(replace(kPair, "name = \"redis-a\"\n", ""),
                 "t.toml:1:1: node.name: required key missing (with [vrrp], peers and switchover name nodes)");
}

TEST_CASE("bad addresses") {
    expect_error(replace(kPlain, "127.0.0.1:7000", "127.0.0.1"),
                 "t.toml:2:10: proxy.listen = \"127.0.0.1\": expected \"host:port\" with an IP address, e.g. "
                 "\"10.77.0.1:6379\" or \"[fd00::1]:6379\"");
    expect_error(replace(kPair, "vrrp_address = \"10.77.0.2\"", "vrrp_address = \"10.77.0.256\""),
                 "t.toml:14:16: peer[0].vrrp_address = \"10.77.0.256\": expected an IP address, e.g. \"10.77.0.2\"");
    expect_error(replace(kPair, "[\"10.77.0.100/24\"]", "[\"10.77.0.100/24\", \"10.77.0.101/40\"]"),
                 "t.toml:17:32: vip.addresses[1] = \"10.77.0.101/40\": expected \"address/length\", e.g. "
                 "\"10.77.0.100/24\"");
}

TEST_CASE("cross-field rules") {
    SUBCASE("VRRPv2 has whole-second adverts") {
        expect_error(replace(kPair, "priority = 100", "priority = 100\nversion = 2"),
                     "t.toml:12:22: vrrp.advert_interval_ms = 100: VRRPv2 adverts are in whole seconds (1000 to "
                     "255000); use version = 3 for sub-second intervals");
    }
    SUBCASE("VRRPv3 has centisecond adverts") {
        expect_error(replace(kPair, "advert_interval_ms = 100", "advert_interval_ms = 105"),
                     "t.toml:11:22: vrrp.advert_interval_ms = 105: VRRPv3 needs a multiple of 10 ms between 10 "
                     "and 40950");
    }
    SUBCASE("VRRPv2 is IPv4 only") {
        auto text = replace(replace(kPair, "advert_interval_ms = 100", "advert_interval_ms = 1000\nversion = 2"),
                            "[\"10.77.0.100/24\"]", "[\"fd77::100/64\"]");
        auto r = load_string(text, "t.toml");
        INFO(errors(r)); CHECK(errors(r).find("t.toml:18:14: vip.addresses[0] = \"fd77::100/64\": VRRPv2 carries IPv4 only") !=
              std::string::npos);
    }
    SUBCASE("one family per virtual router") {
        expect_error(replace(kPair, "[\"10.77.0.100/24\"]", "[\"10.77.0.100/24\", \"fd77::100/64\"]"),
                     "t.toml:17:32: vip.addresses[1] = \"fd77::100/64\": one virtual router carries one address "
                     "family, and vip.addresses[0] is IPv4");
    }
    SUBCASE("the VIP is no node's own address") {
        expect_error(replace(kPair, "[\"10.77.0.100/24\"]", "[\"10.77.0.1/24\"]"),
                     "t.toml:17:14: vip.addresses[0] = \"10.77.0.1\": is the address of redis.address, a VIP must "
                     "be an address no node owns");
        expect_error(replace(kPair, "[\"10.77.0.100/24\"]", "[\"10.77.0.2/24\"]"),
                     "t.toml:17:14: vip.addresses[0] = \"10.77.0.2\": is the address of peer[0] (redis-b), a VIP "
                     "must be an address no node owns");
    }
    SUBCASE("a peer is never this node") {
        expect_error(replace(kPair, "name = \"redis-b\"", "name = \"redis-a\""),
                     "t.toml:12:1: peer[0]: name \"redis-a\" is this node's own name (node.name); list only the "
                     "other nodes");
        expect_error(replace(kPair, "redis = \"10.77.0.2:6379\"", "redis = \"10.77.0.1:6379\""),
                     "t.toml:15:9: peer[0].redis = \"10.77.0.1:6379\": is this node's own redis.address; a node "
                     "must never replicate from itself");
    }
    SUBCASE("a peer is listed once") {
        expect_error(kPair + "[[peer]]\nname = \"redis-b\"\nvrrp_address = \"10.77.0.3\"\nredis = \"10.77.0.3:6379\"\n",
                     "t.toml:18:1: peer[1]: \"redis-b\" (10.77.0.3) is listed twice");
    }
    SUBCASE("an election needs peers and a VIP") {
        auto no_peer = kPair.substr(0, kPair.find("[[peer]]")) + "[vip]\naddresses = [\"10.77.0.100/24\"]\n";
        expect_error(no_peer, "t.toml:7:1: peer: [vrrp] needs at least one [[peer]], so that this node knows which "
                              "Redis to replicate from when a peer wins");
        auto no_vip = kPair.substr(0, kPair.find("[vip]"));
        expect_error(no_vip, "t.toml:7:1: vip.addresses: [vrrp] needs [vip] with at least one address");
    }
    SUBCASE("VIP and peers need an election") {
        expect_error(kPlain + "[vip]\naddresses = [\"10.77.0.100/24\"]\n",
                     "t.toml:5:1: vip: [vip] needs [vrrp]: without an election nothing decides who holds the "
                     "address");
    }
    SUBCASE("unicast needs both ends, in one family, without itself") {
        expect_error(replace(kPair, "priority = 100", "priority = 100\nunicast_src = \"10.77.0.1\""),
                     "t.toml:11:15: vrrp.unicast_src and vrrp.unicast_peers: set both for unicast, or neither for "
                     "multicast");
        expect_error(replace(kPair, "priority = 100",
                             "priority = 100\nunicast_src = \"10.77.0.1\"\nunicast_peers = [\"10.77.0.1\"]"),
                     "t.toml:12:18: vrrp.unicast_peers[0] = \"10.77.0.1\": is unicast_src, this node itself");
    }
    SUBCASE("auth is VRRPv2's, 8 bytes") {
        expect_error(replace(kPair, "priority = 100", "priority = 100\nauth_pass = \"secret\""),
                     "t.toml:11:13: vrrp.auth_pass: authentication exists only in VRRPv2 (version = 2)");
        expect_error(replace(kPair, "advert_interval_ms = 100",
                             "advert_interval_ms = 1000\nversion = 2\nauth_pass = \"123456789\""),
                     "t.toml:13:13: vrrp.auth_pass: 9 bytes, at most 8 fit in a VRRPv2 packet");
    }
    SUBCASE("preempt_delay needs preempt") {
        expect_error(replace(kPair, "priority = 100", "priority = 100\npreempt_delay_ms = 500"),
                     "t.toml:11:20: vrrp.preempt_delay_ms: has no effect without preempt = true");
    }
    SUBCASE("the proxy never forwards to itself") {
        expect_error(replace(kPlain, "127.0.0.1:7000", "127.0.0.1:6379"),
                     "t.toml:2:10: proxy.listen = \"127.0.0.1:6379\": equals redis.address, the proxy would forward "
                     "to itself");
    }
}

// [failover] and [hooks] (docs/failover.md): the split-brain options, safe failback
// and the hooks run after role changes.
const std::string kFailoverAndHooks = R"([failover]
catch_up_bytes = 65536
switchover_timeout_ms = 2000
min_replicas = 1
min_replicas_max_lag_s = 5
witnesses = ["10.77.0.254:53", "[fd77::fe]:22"]
witness_timeout_ms = 200
witness_interval_ms = 300
[hooks]
on_master = "logger -t redvip \"now master: $REDVIP_REASON\""
on_backup = "/usr/local/bin/notify backup"
on_fault = ""
on_stop = "true"
timeout_ms = 3000
)";

TEST_CASE("[failover] and [hooks] default to off, with the documented values") {
    auto r = load_string(kPair, "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    const FailoverConfig& f = r.config->failover;
    CHECK(f.catch_up_bytes == 1048576);
    CHECK(f.switchover_timeout == 5000ms);
    CHECK(f.min_replicas == 0);
    CHECK(f.min_replicas_max_lag == 10s);
    CHECK(f.witnesses.empty());
    CHECK(f.witness_timeout == 500ms);
    CHECK(f.witness_interval == 1000ms);
    const HooksConfig& h = r.config->hooks;
    CHECK(h.on_master.empty());
    CHECK(h.on_backup.empty());
    CHECK(h.on_fault.empty());
    CHECK(h.on_stop.empty());
    CHECK(h.timeout == 10000ms);
}

TEST_CASE("[failover] and [hooks] read every key, and print back to the same config") {
    auto r = load_string(kPair + kFailoverAndHooks, "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    const FailoverConfig& f = r.config->failover;
    CHECK(f.catch_up_bytes == 65536);
    CHECK(f.switchover_timeout == 2000ms);
    CHECK(f.min_replicas == 1);
    CHECK(f.min_replicas_max_lag == 5s);
    REQUIRE(f.witnesses.size() == 2);
    CHECK(f.witnesses[0].to_string() == "10.77.0.254:53");
    CHECK(f.witnesses[1].to_string() == "[fd77::fe]:22");
    CHECK(f.witness_timeout == 200ms);
    CHECK(f.witness_interval == 300ms);
    const HooksConfig& h = r.config->hooks;
    CHECK(h.on_master == "logger -t redvip \"now master: $REDVIP_REASON\"");
    CHECK(h.on_backup == "/usr/local/bin/notify backup");
    CHECK(h.on_fault.empty());
    CHECK(h.on_stop == "true");
    CHECK(h.timeout == 3000ms);

    auto printed = to_toml(*r.config); // hook commands are not redacted
    CHECK(printed.find("on_master = \"logger -t redvip \\\"now master: $REDVIP_REASON\\\"\"") != std::string::npos);
    CHECK(printed.find("witnesses = [\"10.77.0.254:53\", \"[fd77::fe]:22\"]") != std::string::npos);
    auto second = load_string(printed, "printed.toml");
    REQUIRE_MESSAGE(second, std::string(errors(second) + printed));
    CHECK(to_toml(*second.config) == printed);
    CHECK(second.config->failover.witnesses == f.witnesses);
    CHECK(second.config->hooks.on_master == h.on_master);
}

TEST_CASE("[failover] and [hooks] ranges") {
    const std::string f = kPair + "[failover]\n"; // keys start on line 19
    expect_error(f + "catch_up_bytes = -1\n", "t.toml:19:18: failover.catch_up_bytes = -1: must be between 0 and "
                                              "1073741824");
    expect_error(f + "catch_up_bytes = 1073741825\n", "t.toml:19:18: failover.catch_up_bytes = 1073741825: must be "
                                                      "between 0 and 1073741824");
    expect_error(f + "switchover_timeout_ms = 99\n", "t.toml:19:25: failover.switchover_timeout_ms = 99: must be "
                                                     "between 100 and 60000");
    expect_error(f + "switchover_timeout_ms = 60001\n", "t.toml:19:25: failover.switchover_timeout_ms = 60001: "
                                                        "must be between 100 and 60000");
    expect_error(f + "min_replicas = -1\n", "t.toml:19:16: failover.min_replicas = -1: must be between 0 and 16");
    expect_error(f + "min_replicas = 17\n", "t.toml:19:16: failover.min_replicas = 17: must be between 0 and 16");
    expect_error(f + "min_replicas_max_lag_s = 0\n", "t.toml:19:26: failover.min_replicas_max_lag_s = 0: must be "
                                                     "between 1 and 3600");
    expect_error(f + "min_replicas_max_lag_s = 3601\n", "t.toml:19:26: failover.min_replicas_max_lag_s = 3601: "
                                                        "must be between 1 and 3600");
    expect_error(f + "witness_timeout_ms = 9\n", "t.toml:19:22: failover.witness_timeout_ms = 9: must be between "
                                                 "10 and 10000");
    expect_error(f + "witness_timeout_ms = 10001\n", "t.toml:19:22: failover.witness_timeout_ms = 10001: must be "
                                                     "between 10 and 10000");
    expect_error(f + "witness_interval_ms = 9\n", "t.toml:19:23: failover.witness_interval_ms = 9: must be between "
                                                  "10 and 60000");
    expect_error(f + "witness_interval_ms = 60001\n", "t.toml:19:23: failover.witness_interval_ms = 60001: must be "
                                                      "between 10 and 60000");
    const std::string h = kPair + "[hooks]\n";
    expect_error(h + "timeout_ms = 99\n", "t.toml:19:14: hooks.timeout_ms = 99: must be between 100 and 600000");
    expect_error(h + "timeout_ms = 600001\n", "t.toml:19:14: hooks.timeout_ms = 600001: must be between 100 and "
                                              "600000");
    // The bounds themselves are accepted.
    auto r = load_string(f + "catch_up_bytes = 0\nmin_replicas = 16\nmin_replicas_max_lag_s = 3600\n"
                             "switchover_timeout_ms = 100\n[hooks]\ntimeout_ms = 600000\n",
                         "t.toml");
    REQUIRE_MESSAGE(r, errors(r));
    CHECK(r.config->failover.min_replicas == 16);
    CHECK(r.config->hooks.timeout == 600000ms);
}

TEST_CASE("[failover] and [hooks] types are never coerced") {
    const std::string f = kPair + "[failover]\n";
    expect_error(f + "catch_up_bytes = \"1MiB\"\n", "t.toml:19:18: failover.catch_up_bytes = \"1MiB\": expected an "
                                                    "integer, not a string");
    expect_error(f + "min_replicas_max_lag_s = 1.5\n", "t.toml:19:26: failover.min_replicas_max_lag_s = 1.5: "
                                                       "expected an integer, not a float");
    expect_error(f + "min_replicas = true\n", "t.toml:19:16: failover.min_replicas = true: expected an integer, "
                                              "not a boolean");
    expect_error(f + "witnesses = \"10.77.0.254:53\"\n", "t.toml:19:13: failover.witnesses = \"10.77.0.254:53\": "
                                                         "expected an array of strings, not a string");
    expect_error(f + "witnesses = [\"10.77.0.254:53\", 53]\n", "t.toml:19:32: failover.witnesses[1] = 53: expected "
                                                               "\"host:port\" with an IP address, e.g. "
                                                               "\"10.77.0.1:6379\" or \"[fd00::1]:6379\"");
    expect_error(f + "witnesses = [\"gateway:53\"]\n", "t.toml:19:14: failover.witnesses[0] = \"gateway:53\": "
                                                       "expected \"host:port\" with an IP address, e.g. "
                                                       "\"10.77.0.1:6379\" or \"[fd00::1]:6379\"");
    expect_error(f + "witnesses = [\"10.77.0.254\"]\n", "t.toml:19:14: failover.witnesses[0] = \"10.77.0.254\": "
                                                        "expected \"host:port\" with an IP address, e.g. "
                                                        "\"10.77.0.1:6379\" or \"[fd00::1]:6379\"");
    const std::string h = kPair + "[hooks]\n";
    expect_error(h + "on_master = true\n", "t.toml:19:13: hooks.on_master = true: expected a string, not a boolean");
    expect_error(h + "on_stop = [\"echo\", \"bye\"]\n", "t.toml:19:11: hooks.on_stop = [ \"echo\", \"bye\" ]: "
                                                       "expected a string, not an array");
    expect_error(h + "timeout_ms = \"10s\"\n", "t.toml:19:14: hooks.timeout_ms = \"10s\": expected an integer, not "
                                               "a string");
    expect_error(h + "on_fault = \"echo a\\u0000b\"\n", "t.toml:19:12: hooks.on_fault = \"echo a\\u0000b\": expected "
                                                        "a shell command without NUL bytes, or \"\" for none");
    expect_error("failover = 1\n" + kPair, "t.toml:1:12: failover: expected a table [failover], not an integer");
}

TEST_CASE("[failover] and [hooks] unknown keys and sections") {
    expect_error(kPair + "[failover]\nwitness = [\"10.77.0.254:53\"]\n",
                 "t.toml:19:1: failover.witness: unknown key, did you mean 'witnesses'?");
    expect_error(kPair + "[failover]\nmin_replicas_max_lag_ms = 10\n",
                 "t.toml:19:1: failover.min_replicas_max_lag_ms: unknown key, did you mean 'min_replicas_max_lag_s'?");
    expect_error(kPair + "[hooks]\nnotify_master = \"true\"\n",
                 "t.toml:19:1: hooks.notify_master: unknown key, expected one of: on_master, on_backup, on_fault, "
                 "on_stop, timeout_ms");
    expect_error(kPair + "[hooks]\non_mster = \"true\"\n",
                 "t.toml:19:1: hooks.on_mster: unknown key, did you mean 'on_master'?");
    expect_error(kPair + "[hook]\n", "t.toml:18:2: hook: unknown section, did you mean 'hooks'?");
    expect_error(kPair + "[failovr]\n", "t.toml:18:2: failovr: unknown section, did you mean 'failover'?");
}

TEST_CASE("[failover] and [hooks] cross-field rules") {
    SUBCASE("both need an election") {
        expect_error(kPlain + "[failover]\nmin_replicas = 1\n",
                     "t.toml:5:1: failover: [failover] needs [vrrp]: without an election nothing fails over");
        expect_error(kPlain + "[hooks]\non_master = \"true\"\n",
                     "t.toml:5:1: hooks: [hooks] needs [vrrp]: without an election there are no role changes to "
                     "run them on");
        expect_error(kPlain + "[hooks]\n",
                     "t.toml:5:1: hooks: [hooks] needs [vrrp]: without an election there are no role changes to "
                     "run them on");
    }
    const std::string w = kPair + "[failover]\nwitnesses = ["; // items start on line 19, column 14
    SUBCASE("a witness is another host") {
        expect_error(w + "\"10.77.0.1:80\"]\n",
                     "t.toml:19:14: failover.witnesses[0] = \"10.77.0.1:80\": is this node's own address "
                     "(redis.address); a witness must be another host on the network");
        expect_error(w + "\"10.77.0.100:6379\"]\n",
                     "t.toml:19:14: failover.witnesses[0] = \"10.77.0.100:6379\": is a VIP (vip.addresses[0]), held "
                     "by whichever node is master; a witness must be another host on the network");
        expect_error(w + "\"127.0.0.1:53\"]\n",
                     "t.toml:19:14: failover.witnesses[0] = \"127.0.0.1:53\": is this host itself (loopback), always "
                     "reachable; a witness must be another host on the network");
        expect_error(w + "\"[::1]:53\"]\n",
                     "t.toml:19:14: failover.witnesses[0] = \"[::1]:53\": is this host itself (loopback), always "
                     "reachable; a witness must be another host on the network");
        expect_error(w + "\"10.77.0.2:22\"]\n",
                     "t.toml:19:14: failover.witnesses[0] = \"10.77.0.2:22\": is the address of peer[0] (redis-b); "
                     "when that peer fails no node could be master; a witness must be another host on the network");
        auto unicast = replace(kPair, "priority = 100",
                               "priority = 100\nunicast_src = \"10.77.0.11\"\nunicast_peers = [\"10.77.0.2\"]");
        expect_error(unicast + "[failover]\nwitnesses = [\"10.77.0.254:53\", \"10.77.0.11:53\"]\n",
                     "t.toml:21:32: failover.witnesses[1] = \"10.77.0.11:53\": is this node's own address "
                     "(vrrp.unicast_src); a witness must be another host on the network");
    }
    SUBCASE("a witness is listed once") {
        expect_error(w + "\"10.77.0.254:53\", \"10.77.0.9:53\", \"10.77.0.254:53\"]\n",
                     "t.toml:19:48: failover.witnesses[2] = \"10.77.0.254:53\": is listed twice");
        // The same host on another port is another probe, not a duplicate.
        auto r = load_string(w + "\"10.77.0.254:53\", \"10.77.0.254:22\"]\n", "t.toml");
        CHECK_MESSAGE(r, errors(r));
    }
    SUBCASE("every bad witness is reported") {
        auto r = load_string(w + "\"10.77.0.1:80\", \"10.77.0.254:53\", \"10.77.0.100:1\"]\n", "t.toml");
        CHECK(r.errors.size() == 2);
    }
}

TEST_CASE("every error is reported, not just the first") {
    auto text = replace(kPlain, "[redis]", "threads = 0\nmax_clients = -1\n[redis]");
    auto r = load_string(text, "t.toml");
    CHECK(r.errors.size() == 2);
}

TEST_CASE("not TOML, empty, missing") {
    expect_error("[proxy\nlisten = 1\n",
                 "t.toml:1:7: not valid TOML: Error while parsing table header: expected ']', saw '\\n'");
    expect_error("", "t.toml: empty configuration: at least [proxy] listen and [redis] address are required");
    expect_error("# only a comment\n",
                 "t.toml: empty configuration: at least [proxy] listen and [redis] address are required");
    auto r = load_file("/nonexistent/redvip.toml");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string() == "/nonexistent/redvip.toml: cannot open: No such file or directory");
}

TEST_CASE("to_toml prints the effective config, which loads back to the same values") {
    auto text = replace(kPair, "[redis]", "[redis]\npassword = \"s3cret\"");
    auto first = load_string(text, "t.toml");
    REQUIRE_MESSAGE(first, errors(first));
    CHECK(to_toml(*first.config).find("password = \"(redacted)\"") != std::string::npos);
    auto printed = to_toml(*first.config, false);
    auto second = load_string(printed, "printed.toml");
    REQUIRE_MESSAGE(second, std::string(errors(second) + printed));
    CHECK(to_toml(*second.config, false) == printed);
    CHECK(second.config->redis.password == "s3cret");
    CHECK(second.config->vip->interface == "eth0");
}

TEST_CASE("the shipped example configs load") {
    for (const char* name : {"redvip.example.toml", "node-a.toml", "node-b.toml"}) {
        CAPTURE(name);
        auto r = load_file(std::string(REDVIP_SOURCE_DIR "/conf/") + name);
        REQUIRE_MESSAGE(r, errors(r));
        CHECK(r.config->vrrp.has_value());
        CHECK(r.config->peers.size() == 1);
    }
    // The example sets every key, [failover] and [hooks] at their defaults.
    auto r = load_file(REDVIP_SOURCE_DIR "/conf/redvip.example.toml");
    REQUIRE_MESSAGE(r, errors(r));
    CHECK(r.config->failover.catch_up_bytes == 1048576);
    CHECK(r.config->failover.witnesses.empty());
    CHECK(r.config->hooks.timeout == 10000ms);
    CHECK(r.config->hooks.on_stop.empty());
}
