// Config back to text: messages, and the effective config that
// `redvip --check-config` prints (valid TOML, in the example file's order).
#include "conf/config.hpp"

#include <fmt/format.h>

namespace redvip::conf {

std::string Endpoint::to_string() const {
    if (host.is_v6())
        return fmt::format("[{}]:{}", host.to_string(), port);
    return fmt::format("{}:{}", host.to_string(), port);
}

std::string Prefix::to_string() const { return fmt::format("{}/{}", address.to_string(), length); }

std::string Error::to_string() const {
    if (line == 0)
        return fmt::format("{}: {}", source, message);
    return fmt::format("{}:{}:{}: {}", source, line, column, message);
}

namespace {

// A TOML basic string: "..." with backslash escapes (TOML 1.0, 2.4).
std::string quote(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                out += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
            else
                out += c;
        }
    }
    return out + "\"";
}

template <typename List, typename Show>
std::string list(const List& items, Show show) {
    std::string out = "[";
    for (const auto& item : items)
        out += (out.size() > 1 ? ", " : "") + quote(show(item));
    return out + "]";
}

template <typename... Args>
void put(fmt::memory_buffer& out, fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

const char* boolean(bool b) { return b ? "true" : "false"; }

// Secrets stay out of terminals and logs unless asked for.
std::string secret(const std::string& value, bool redact) {
    return quote(redact && !value.empty() ? "(redacted)" : value);
}

// [failover] and [hooks] need [vrrp], so they are printed with it. Hook
// commands are not secrets: they are shown as written.
void format_failover(const Config& c, fmt::memory_buffer& out) {
    const FailoverConfig& f = c.failover;
    put(out, "\n[failover]\ncatch_up_bytes = {}\nswitchover_timeout_ms = {}\nmin_replicas = {}\n", f.catch_up_bytes,
        f.switchover_timeout.count(), f.min_replicas);
    put(out, "min_replicas_max_lag_s = {}\nwitnesses = {}\nwitness_timeout_ms = {}\nwitness_interval_ms = {}\n",
        f.min_replicas_max_lag.count(), list(f.witnesses, [](const Endpoint& e) { return e.to_string(); }),
        f.witness_timeout.count(), f.witness_interval.count());
    const HooksConfig& h = c.hooks;
    put(out, "\n[hooks]\non_master = {}\non_backup = {}\non_fault = {}\non_stop = {}\ntimeout_ms = {}\n",
        quote(h.on_master), quote(h.on_backup), quote(h.on_fault), quote(h.on_stop), h.timeout.count());
}

void format_election(const Config& c, bool redact, fmt::memory_buffer& out) {
    const VrrpConfig& v = *c.vrrp;
    put(out, "\n[vrrp]\nversion = {}\ninterface = {}\nvirtual_router_id = {}\npriority = {}\n", v.version,
        quote(v.interface), v.virtual_router_id, v.priority);
    put(out, "advert_interval_ms = {}\npreempt = {}\npreempt_delay_ms = {}\nauth_pass = {}\n", v.advert_interval.count(),
        boolean(v.preempt), v.preempt_delay.count(), secret(v.auth_pass, redact));
    put(out, "unicast_src = {}\nunicast_peers = {}\n", quote(v.unicast_src ? v.unicast_src->to_string() : ""),
        list(v.unicast_peers, [](const IpAddress& a) { return a.to_string(); }));
    for (const PeerConfig& p : c.peers)
        put(out, "\n[[peer]]\nname = {}\nvrrp_address = {}\nredis = {}\n", quote(p.name), quote(p.vrrp_address.to_string()),
            quote(p.redis.to_string()));
    if (c.vip) {
        const VipConfig& vip = *c.vip;
        put(out, "\n[vip]\ninterface = {}\naddresses = {}\nlabel = {}\n", quote(vip.interface),
            list(vip.addresses, [](const Prefix& p) { return p.to_string(); }), quote(vip.label));
        put(out, "garp_count = {}\ngarp_interval_ms = {}\ngarp_refresh_ms = {}\n", vip.garp_count,
            vip.garp_interval.count(), vip.garp_refresh.count());
    }
    format_failover(c, out);
}

} // namespace

std::string to_toml(const Config& c, bool redact_secrets) {
    fmt::memory_buffer out;
    put(out, "[node]\nname = {}\nstate_dir = {}\n", quote(c.node.name), quote(c.node.state_dir));
    put(out, "\n[proxy]\nlisten = {}\nthreads = {}\nmax_clients = {}\npassword = {}\n", quote(c.proxy.listen.to_string()),
        c.proxy.threads, c.proxy.max_clients, secret(c.proxy.password, redact_secrets));
    put(out, "idle_timeout_ms = {}\nbackend_timeout_ms = {}\nhold_timeout_ms = {}\ntcp_keepalive_s = {}\n",
        c.proxy.idle_timeout.count(), c.proxy.backend_timeout.count(), c.proxy.hold_timeout.count(),
        c.proxy.tcp_keepalive.count());
    put(out, "multiplex = {}\n", c.proxy.multiplex);
    put(out, "\n[redis]\naddress = {}\npassword = {}\npool_size = {}\nshared_links = {}\n",
        quote(c.redis.address.to_string()), secret(c.redis.password, redact_secrets), c.redis.pool_size,
        c.redis.shared_links);
    if (c.vrrp)
        format_election(c, redact_secrets, out);
    const HealthConfig& h = c.health;
    put(out, "\n[health]\ninterval_ms = {}\ntimeout_ms = {}\nrise = {}\nfall = {}\nweight = {}\n", h.interval.count(),
        h.timeout.count(), h.rise, h.fall, h.weight);
    put(out, "\n[metrics]\nlisten = {}\n", quote(c.metrics.listen ? c.metrics.listen->to_string() : ""));
    put(out, "\n[admin]\nsocket = {}\n", quote(c.admin.socket));
    put(out, "\n[log]\nlevel = {}\n", quote(c.log.level));
    return fmt::to_string(out);
}

} // namespace redvip::conf
