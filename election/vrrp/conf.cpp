#include "election/vrrp/conf.hpp"

#include <algorithm>

namespace redvip::election {

IpAddr to_ip_addr(const conf::IpAddress& address) {
    if (address.is_v4()) {
        const auto b = address.to_v4().to_bytes();
        return IpAddr::v4(b[0], b[1], b[2], b[3]);
    }
    const auto b = address.to_v6().to_bytes();
    std::array<std::uint8_t, 16> bytes{};
    std::copy(b.begin(), b.end(), bytes.begin());
    return IpAddr::v6(bytes);
}

conf::IpAddress to_boost(const IpAddr& address) {
    if (address.family == Family::ipv4) {
        const auto& b = address.bytes;
        return boost::asio::ip::address_v4(
            boost::asio::ip::address_v4::bytes_type{b[0], b[1], b[2], b[3]});
    }
    boost::asio::ip::address_v6::bytes_type bytes{};
    std::copy(address.bytes.begin(), address.bytes.end(), bytes.begin());
    return boost::asio::ip::address_v6(bytes);
}

namespace {

std::string check_interval(Version version, std::chrono::milliseconds interval) {
    if (version == Version::v2) {
        if (interval % std::chrono::seconds{1} != std::chrono::milliseconds::zero() ||
            interval < std::chrono::seconds{1} || interval > std::chrono::seconds{255})
            return "vrrp.advert_interval must be 1..255 whole seconds for VRRPv2";
        return {};
    }
    if (interval % centiseconds{1} != std::chrono::milliseconds::zero() ||
        interval < centiseconds{1} || interval > kMaxMaxAdverInt)
        return "vrrp.advert_interval must be 10..40950 ms in steps of 10 ms for VRRPv3";
    return {};
}

} // namespace

std::variant<InstanceConfig, std::string>
make_instance_config(const conf::VrrpConfig& vrrp, const std::vector<conf::Prefix>& vips,
                     const IpAddr& primary_address) {
    InstanceConfig c;
    if (vrrp.version != 2 && vrrp.version != 3) return "vrrp.version must be 2 or 3";
    c.version = static_cast<Version>(vrrp.version);
    if (vrrp.virtual_router_id < 1 || vrrp.virtual_router_id > 255)
        return "vrrp.virtual_router_id must be 1..255";
    c.vrid = static_cast<std::uint8_t>(vrrp.virtual_router_id);
    if (vrrp.priority < 1 || vrrp.priority > 255) return "vrrp.priority must be 1..255";
    c.priority = static_cast<std::uint8_t>(vrrp.priority);
    if (auto error = check_interval(c.version, vrrp.advert_interval); !error.empty()) return error;
    c.advertisement_interval = std::chrono::duration_cast<centiseconds>(vrrp.advert_interval);
    c.preempt = vrrp.preempt;
    c.preempt_delay = vrrp.preempt_delay;
    if (vrrp.auth_pass.size() > kAuthDataSize) return "vrrp.auth_pass is longer than 8 bytes";
    if (!vrrp.auth_pass.empty()) {
        if (c.version != Version::v2) return "vrrp.auth_pass needs VRRPv2";
        c.auth_type = AuthType::simple_text;
        std::copy(vrrp.auth_pass.begin(), vrrp.auth_pass.end(), c.auth_data.begin());
    }
    c.primary_address = primary_address;
    c.family = primary_address.family;
    if (c.version == Version::v2 && c.family == Family::ipv6) return "VRRPv2 is IPv4 only";
    for (const auto& vip : vips) {
        const IpAddr address = to_ip_addr(vip.address);
        if (address.family != c.family)
            return "every VIP must be of the VRRP source address's family";
        if (!c.addresses.push_back(address)) return "more VIPs than one advert may carry";
    }
    return c;
}

} // namespace redvip::election
