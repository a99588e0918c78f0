// Cross-field rules: each one stops a configuration that parses but would
// misbehave at the worst moment (a failover), and says which key to change.
#include "conf/config_internal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace redvip::conf::detail {
namespace {

std::string family(const IpAddress& a) { return a.is_v4() ? "IPv4" : "IPv6"; }

void check_proxy(const Config& c, Diagnostics& diag) {
    if (c.proxy.listen == c.redis.address)
        diag.error_at("proxy.listen", fmt::format("proxy.listen = \"{}\": equals redis.address, the proxy would "
                                                  "forward to itself",
                                                  c.proxy.listen.to_string()));
}

void check_timing(const VrrpConfig& v, Diagnostics& diag) {
    auto ms = v.advert_interval.count();
    if (v.version == 2 && ms % 1000 != 0)
        // RFC 3768 5.3.7: Adver Int is in whole seconds.
        diag.error_at("vrrp.advert_interval_ms",
                      fmt::format("vrrp.advert_interval_ms = {}: VRRPv2 adverts are in whole seconds "
                                  "(1000 to 255000); use version = 3 for sub-second intervals",
                                  ms));
    if (v.version == 3 && (ms % 10 != 0 || ms > 40950))
        // RFC 5798 5.2.7: Max Adver Int is 12 bits of centiseconds.
        diag.error_at("vrrp.advert_interval_ms",
                      fmt::format("vrrp.advert_interval_ms = {}: VRRPv3 needs a multiple of 10 ms "
                                  "between 10 and 40950",
                                  ms));
    if (v.preempt_delay.count() > 0 && !v.preempt)
        diag.error_at("vrrp.preempt_delay_ms", "vrrp.preempt_delay_ms: has no effect without preempt = true");
}

void check_auth(const VrrpConfig& v, Diagnostics& diag) {
    if (v.auth_pass.empty())
        return;
    if (v.version == 3)
        // RFC 5798 removed authentication; keepalived ignores it for v3 too.
        diag.error_at("vrrp.auth_pass", "vrrp.auth_pass: authentication exists only in VRRPv2 (version = 2)");
    else if (v.auth_pass.size() > 8)
        // RFC 3768 5.3.6.1: simple text password, 8 octets.
        diag.error_at("vrrp.auth_pass",
                      fmt::format("vrrp.auth_pass: {} bytes, at most 8 fit in a VRRPv2 packet", v.auth_pass.size()));
}

void check_unicast(const VrrpConfig& v, Diagnostics& diag) {
    if (v.unicast_src.has_value() != !v.unicast_peers.empty()) {
        diag.error_at(v.unicast_src ? "vrrp.unicast_src" : "vrrp.unicast_peers",
                      "vrrp.unicast_src and vrrp.unicast_peers: set both for unicast, or neither for multicast");
        return;
    }
    for (std::size_t i = 0; i < v.unicast_peers.size(); ++i) {
        const auto& peer = v.unicast_peers[i];
        std::string key = fmt::format("vrrp.unicast_peers[{}]", i);
        if (peer == *v.unicast_src)
            diag.error_at(key, fmt::format("{} = \"{}\": is unicast_src, this node itself", key, peer.to_string()));
        else if (peer.is_v4() != v.unicast_src->is_v4())
            diag.error_at(key, fmt::format("{} = \"{}\": {} but unicast_src is {}", key, peer.to_string(),
                                           family(peer), family(*v.unicast_src)));
    }
}

// RFC 5798 5.2.9: one virtual router carries one address family. v2 is IPv4 only.
void check_vip_family(const VrrpConfig& v, const VipConfig& vip, Diagnostics& diag) {
    const IpAddress& first = vip.addresses.front().address;
    for (std::size_t i = 0; i < vip.addresses.size(); ++i) {
        const IpAddress& a = vip.addresses[i].address;
        std::string key = fmt::format("vip.addresses[{}]", i);
        if (v.version == 2 && a.is_v6())
            diag.error_at(key, fmt::format("{} = \"{}\": VRRPv2 carries IPv4 only; use version = 3 for IPv6", key,
                                           vip.addresses[i].to_string()));
        else if (a.is_v4() != first.is_v4())
            diag.error_at(key, fmt::format("{} = \"{}\": one virtual router carries one address family, and "
                                           "vip.addresses[0] is {}",
                                           key, vip.addresses[i].to_string(), family(first)));
    }
    if (v.unicast_src && v.unicast_src->is_v4() != first.is_v4())
        diag.error_at("vrrp.unicast_src", fmt::format("vrrp.unicast_src = \"{}\": {} adverts cannot carry {} "
                                                      "virtual addresses",
                                                      v.unicast_src->to_string(), family(*v.unicast_src),
                                                      family(first)));
}

// A VIP must be an address no node owns: the VIP moves, a node's own address does not.
void check_vip_not_owned(const Config& c, const VipConfig& vip, Diagnostics& diag) {
    for (std::size_t i = 0; i < vip.addresses.size(); ++i) {
        const IpAddress& a = vip.addresses[i].address;
        std::string key = fmt::format("vip.addresses[{}]", i);
        std::string owner;
        if (a == c.redis.address.host)
            owner = "redis.address";
        else if (c.vrrp->unicast_src && a == *c.vrrp->unicast_src)
            owner = "vrrp.unicast_src";
        for (std::size_t p = 0; owner.empty() && p < c.peers.size(); ++p)
            if (a == c.peers[p].vrrp_address || a == c.peers[p].redis.host)
                owner = fmt::format("peer[{}] ({})", p, c.peers[p].name);
        if (!owner.empty())
            diag.error_at(key, fmt::format("{} = \"{}\": is the address of {}, a VIP must be an address no node "
                                           "owns",
                                           key, a.to_string(), owner));
    }
}

void check_peers(const Config& c, Diagnostics& diag) {
    if (c.peers.empty()) {
        diag.error_at("vrrp", "peer: [vrrp] needs at least one [[peer]], so that this node knows which Redis to "
                              "replicate from when a peer wins");
        return;
    }
    std::set<std::string> names;
    std::set<IpAddress> addresses;
    const IpAddress& vip_family = c.vip->addresses.front().address;
    for (std::size_t i = 0; i < c.peers.size(); ++i) {
        const PeerConfig& p = c.peers[i];
        std::string key = fmt::format("peer[{}]", i);
        if (p.name == c.node.name)
            diag.error_at(key, fmt::format("{}: name \"{}\" is this node's own name (node.name); list only the "
                                           "other nodes",
                                           key, p.name));
        else if (p.redis == c.redis.address)
            diag.error_at(key + ".redis", fmt::format("{}.redis = \"{}\": is this node's own redis.address; a node "
                                                      "must never replicate from itself",
                                                      key, p.redis.to_string()));
        else if (c.vrrp->unicast_src && p.vrrp_address == *c.vrrp->unicast_src)
            diag.error_at(key + ".vrrp_address", fmt::format("{}.vrrp_address = \"{}\": is this node's own "
                                                             "vrrp.unicast_src",
                                                             key, p.vrrp_address.to_string()));
        else if (!names.insert(p.name).second || !addresses.insert(p.vrrp_address).second)
            diag.error_at(key, fmt::format("{}: \"{}\" ({}) is listed twice", key, p.name, p.vrrp_address.to_string()));
        else if (p.vrrp_address.is_v4() != vip_family.is_v4())
            diag.error_at(key + ".vrrp_address",
                          fmt::format("{}.vrrp_address = \"{}\": adverts for {} VIPs come from {} addresses", key,
                                      p.vrrp_address.to_string(), family(vip_family), family(vip_family)));
    }
}

// Who owns a witness's address, if this configuration knows: a witness tells
// "can this node still reach the network", so it must be some other host.
std::string witness_conflict(const Config& c, const IpAddress& a) {
    if (a.is_loopback() || a.is_unspecified())
        return "is this host itself (loopback), always reachable";
    if (a == c.redis.address.host)
        return "is this node's own address (redis.address)";
    if (c.vrrp->unicast_src && a == *c.vrrp->unicast_src)
        return "is this node's own address (vrrp.unicast_src)";
    for (std::size_t i = 0; i < c.vip->addresses.size(); ++i)
        if (a == c.vip->addresses[i].address)
            return fmt::format("is a VIP (vip.addresses[{}]), held by whichever node is master", i);
    for (std::size_t p = 0; p < c.peers.size(); ++p)
        if (a == c.peers[p].vrrp_address || a == c.peers[p].redis.host)
            // With the peer as the only witness, the survivor of that peer's
            // death would reach no witness and refuse to be master.
            return fmt::format("is the address of peer[{}] ({}); when that peer fails no node could be master",
                               p, c.peers[p].name);
    return {};
}

void check_witnesses(const Config& c, Diagnostics& diag) {
    const auto& witnesses = c.failover.witnesses;
    for (std::size_t i = 0; i < witnesses.size(); ++i) {
        std::string key = fmt::format("failover.witnesses[{}]", i);
        auto earlier = witnesses.begin() + static_cast<std::ptrdiff_t>(i);
        if (std::string why = witness_conflict(c, witnesses[i].host); !why.empty())
            diag.error_at(key, fmt::format("{} = \"{}\": {}; a witness must be another host on the network", key,
                                           witnesses[i].to_string(), why));
        else if (std::find(witnesses.begin(), earlier, witnesses[i]) != earlier)
            diag.error_at(key, fmt::format("{} = \"{}\": is listed twice", key, witnesses[i].to_string()));
    }
}

void check_election(Config& c, Diagnostics& diag) {
    VrrpConfig& v = *c.vrrp;
    if (c.node.name.empty())
        diag.error_at("node", "node.name: required key missing (with [vrrp], peers and switchover name nodes)");
    check_timing(v, diag);
    check_auth(v, diag);
    check_unicast(v, diag);
    if (!c.vip || c.vip->addresses.empty()) {
        // RFC 5798 5.2.5: an advert carries at least one address.
        diag.error_at("vrrp", "vip.addresses: [vrrp] needs [vip] with at least one address");
        return;
    }
    if (c.vip->interface.empty())
        c.vip->interface = v.interface;
    check_vip_family(v, *c.vip, diag);
    check_vip_not_owned(c, *c.vip, diag);
    check_peers(c, diag);
    check_witnesses(c, diag);
}

} // namespace

void check_config(Config& c, Diagnostics& diag) {
    check_proxy(c, diag);
    if (c.vrrp) {
        check_election(c, diag);
        return;
    }
    if (c.vip)
        diag.error_at("vip", "vip: [vip] needs [vrrp]: without an election nothing decides who holds the address");
    if (!c.peers.empty())
        diag.error_at("peer[0]", "peer: [[peer]] needs [vrrp]: without an election peers have no role");
    if (diag.has("failover"))
        diag.error_at("failover", "failover: [failover] needs [vrrp]: without an election nothing fails over");
    if (diag.has("hooks"))
        diag.error_at("hooks", "hooks: [hooks] needs [vrrp]: without an election there are no role changes to "
                               "run them on");
}

} // namespace redvip::conf::detail
