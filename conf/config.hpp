// redvip's configuration: one TOML file into validated plain structs.
//
// Everything past load() can trust these values: ranges, address families and
// cross-field rules are checked here, once, and every error names the file,
// line, column, key and what was expected.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::conf {

using std::chrono::milliseconds;
using IpAddress = boost::asio::ip::address;

// "host:port" or "[v6]:port"; the host is an IP literal (no DNS at start-up:
// a failover must never wait on a resolver).
struct Endpoint {
    IpAddress host;
    std::uint16_t port = 0;

    std::string to_string() const;
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// "10.77.0.100/24" or "fd00::100/64".
struct Prefix {
    IpAddress address;
    std::uint8_t length = 0;

    std::string to_string() const;
    friend bool operator==(const Prefix&, const Prefix&) = default;
};

struct NodeConfig {
    std::string name;                          // how peers, logs and switchover name this node
    std::string state_dir = "/var/lib/redvip"; // last known master, replication id, epoch
};

struct ProxyConfig {
    Endpoint listen;                       // where clients connect: the VIP and port
    int threads = 2;                       // one event loop per thread
    int max_clients = 10000;
    std::string password;                  // empty: clients need no AUTH
    milliseconds idle_timeout{0};          // 0: none (blocking commands need it)
    // 0: none, as for a direct client. A busy Redis (a long script, CLIENT
    // PAUSE) answers late but answers; only the operator knows how late is dead.
    milliseconds backend_timeout{0};
    milliseconds hold_timeout{5000};       // HOLDING keeps commands this long, then answers TRYAGAIN
    // TCP keepalive on clients' connections, as Redis's tcp-keepalive: a
    // client that vanished (its host died, its cable cut) is found within
    // about twice this and its connection closed. 0: off.
    std::chrono::seconds tcp_keepalive{300};
    // Sessions share a few pipelined connections per thread until a command
    // needs one of their own (proxy/shared_link.hpp, docs/proxy.md); false:
    // every session has its own connection from its first command.
    bool multiplex = true;
};

struct RedisConfig {
    Endpoint address;                      // the local redis-server
    std::string password;
    // Connections kept open ahead of time (spread over the threads). 0: each
    // session connects at its first command, so Redis's INFO clients and
    // CLIENT LIST show exactly the clients, as without the proxy.
    int pool_size = 0;
    // With [proxy] multiplex: the shared connections per proxy thread.
    int shared_links = 1;
};

struct VrrpConfig {
    int version = 3;                       // 2 (RFC 3768) or 3 (RFC 5798)
    std::string interface;
    int virtual_router_id = 0;             // 1..255
    int priority = 100;                    // 1..254 (255 is the address owner's)
    milliseconds advert_interval{1000};    // v3: multiple of 10 ms; v2: whole seconds
    bool preempt = false;
    milliseconds preempt_delay{0};
    std::string auth_pass;                 // v2 simple password, at most 8 bytes
    std::optional<IpAddress> unicast_src;  // both set: unicast instead of multicast
    std::vector<IpAddress> unicast_peers;
};

struct PeerConfig {
    std::string name;                      // defaults to the VRRP address's text
    IpAddress vrrp_address;                // the source address of its adverts
    Endpoint redis;                        // what our Redis replicates from when it wins
};

struct VipConfig {
    std::string interface;                 // defaults to vrrp.interface
    std::vector<Prefix> addresses;
    std::string label;                     // optional IPv4 address label, e.g. "eth0:vip"
    int garp_count = 5;
    milliseconds garp_interval{100};
    milliseconds garp_refresh{0};          // 0: no periodic refresh while master
};

struct HealthConfig {
    milliseconds interval{100};
    milliseconds timeout{500};
    int rise = 3;
    int fall = 3;
    int weight = 0;                        // 0: enter Fault; < 0: lower the priority by it
};

// Safe failback, switchover and the opt-in split-brain protections (docs/failover.md).
struct FailoverConfig {
    // A replica with master_link_status up and its offset within this many
    // bytes of its master's counts as caught up (may take mastership).
    std::int64_t catch_up_bytes = 1048576;
    milliseconds switchover_timeout{5000};         // the longest a hand-over pauses writes
    // > 0: Redis min-replicas-to-write on the master, so a master cut off from
    // its replicas refuses writes (split brain) instead of taking ones it loses.
    int min_replicas = 0;
    std::chrono::seconds min_replicas_max_lag{10}; // min-replicas-max-lag
    // A master must reach at least one (a TCP connect that succeeds or is
    // refused both count) to become or stay master; empty: off.
    std::vector<Endpoint> witnesses;
    milliseconds witness_timeout{500};
    milliseconds witness_interval{1000};
};

// Shell commands run after a role transition completed, off the critical
// path (election/node/hooks.hpp); empty: none.
struct HooksConfig {
    std::string on_master, on_backup, on_fault, on_stop;
    milliseconds timeout{10000};
};

struct MetricsConfig {
    std::optional<Endpoint> listen;        // Prometheus /metrics; absent: off
};

struct AdminConfig {
    std::string socket = "/run/redvip/redvip.sock";
};

struct LogConfig {
    std::string level = "info";            // trace, debug, info, warn, error, critical, off
};

struct Config {
    std::string source;                    // the file it came from, for messages
    NodeConfig node;
    ProxyConfig proxy;
    RedisConfig redis;
    std::optional<VrrpConfig> vrrp;        // absent: a plain proxy, always serving
    std::vector<PeerConfig> peers;
    std::optional<VipConfig> vip;
    FailoverConfig failover;               // needs [vrrp] when written
    HooksConfig hooks;                     // needs [vrrp] when written
    HealthConfig health;
    MetricsConfig metrics;
    AdminConfig admin;
    LogConfig log;
};

struct Error {
    std::string source;                    // file name as given
    int line = 0;                          // 1-based; 0 when not tied to a place
    int column = 0;
    std::string message;                   // "vrrp.priority = 300: must be between 1 and 254"

    std::string to_string() const;         // "redvip.toml:12:12: vrrp.priority = 300: ..."
};

// Either a config or every error found (never both, never neither).
struct LoadResult {
    std::optional<Config> config;
    std::vector<Error> errors;

    explicit operator bool() const { return config.has_value(); }
    std::string errors_text() const; // each error's to_string(), a line each
};

LoadResult load_file(const std::string& path);
LoadResult load_string(std::string_view text, const std::string& source_name);

// The effective config, defaults filled in, as TOML that load_string accepts
// (passwords shown as "(redacted)" unless redact_secrets is false).
std::string to_toml(const Config& config, bool redact_secrets = true);

// Parses "host:port" / "[v6]:port"; nullopt on anything else.
std::optional<Endpoint> parse_endpoint(std::string_view text);
std::optional<Prefix> parse_prefix(std::string_view text);

} // namespace redvip::conf
