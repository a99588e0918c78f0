#include "election/vrrp/instance.hpp"

#include <algorithm>

namespace redvip::election {

namespace {

// Compares every byte whatever the first difference, so that the time taken
// says nothing about how much of a guessed password was right.
bool equal_constant_time(const AuthData& a, const AuthData& b) {
    unsigned difference = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        difference |= static_cast<unsigned>(a[i] ^ b[i]);
    return difference == 0;
}

// Same count and every configured address present, in any order (keepalived
// compares the same way).
bool same_addresses(const AddressList& received, const AddressList& configured) {
    if (received.size() != configured.size()) return false;
    return std::all_of(configured.begin(), configured.end(), [&](const IpAddr& address) {
        return std::find(received.begin(), received.end(), address) != received.end();
    });
}

Discard reject(DiscardReason reason, std::size_t offset, std::string_view detail) {
    return Discard{reason, offset, detail};
}

std::optional<Discard> check_v2_auth_and_interval(const Advertisement& advert,
                                                  const InstanceConfig& config) {
    // RFC 3768 §7.1: "MUST verify that the Auth Type matches".
    if (advert.auth_type != config.auth_type)
        return reject(DiscardReason::auth_type_mismatch, 4, "auth type differs from ours");
    if (config.auth_type == AuthType::simple_text &&
        !equal_constant_time(advert.auth_data, config.auth_data))
        return reject(DiscardReason::auth_failure,
                      message_size(Version::v2, Family::ipv4, advert.addresses.size()) -
                          kAuthDataSize,
                      "wrong password");
    // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the
    // same as the locally configured for this virtual router".
    if (advert.advert_interval != config.advertisement_interval)
        return reject(DiscardReason::adv_interval, 5, "advertisement interval differs from ours");
    return std::nullopt;
}

} // namespace

Advertisement make_advert(const InstanceConfig& config, std::uint8_t priority) {
    Advertisement advert;
    advert.version = config.version;
    advert.vrid = config.vrid;
    advert.priority = priority;
    advert.advert_interval = config.advertisement_interval;
    if (config.version == Version::v2) {
        advert.auth_type = config.auth_type;
        advert.auth_data = config.auth_data;
    }
    advert.addresses = config.addresses;
    return advert;
}

std::optional<Discard> check_for_instance(const Advertisement& advert,
                                          const InstanceConfig& config) {
    if (advert.version != config.version)
        return reject(DiscardReason::version, 0, "version differs from ours");
    if (advert.vrid != config.vrid) return reject(DiscardReason::vrid, 1, "another VRID");
    if (config.version == Version::v2) {
        if (auto bad = check_v2_auth_and_interval(advert, config)) return bad;
    }
    if (!same_addresses(advert.addresses, config.addresses))
        return reject(DiscardReason::address_list, 3, "address list differs from ours");
    return std::nullopt;
}

} // namespace redvip::election
