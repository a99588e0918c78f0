// One VRRP virtual router's local settings, and the second validation layer:
// "is this well-formed advert for us?" (RFC 3768 §7.1, RFC 5798 §7.1). The
// codec (packet.hpp) has already said it is well-formed; the state
// machine (state.hpp) decides what to do with it.
#pragma once

#include "election/vrrp/packet.hpp"

#include <chrono>
#include <optional>

namespace redvip::election {

struct InstanceConfig {
    Version version = Version::v3;
    Family family = Family::ipv4;
    std::uint8_t vrid = 1;
    std::uint8_t priority = 100;                // 1..255; 255 only for the address owner
    centiseconds advertisement_interval{100};   // RFC 5798 §6.1 Advertisement_Interval
    bool preempt = true;                        // RFC 5798 §6.1 Preempt_Mode
    std::chrono::milliseconds preempt_delay{0}; // keepalived's, see VirtualRouter
    AuthType auth_type = AuthType::none;        // v2 only
    AuthData auth_data{};                       // v2 simple text password, zero-padded
    AddressList addresses;                      // the virtual addresses we advertise
    IpAddr primary_address;                     // our adverts' source: the tie-breaker
};

// The advert this router sends with `priority` (its own, or 0 when leaving).
Advertisement make_advert(const InstanceConfig& config, std::uint8_t priority);

// Checks, in RFC 3768 §7.1's order, that a decoded advert belongs to this
// virtual router: version, VRID, then for v2 the auth type, the password and
// the interval; last the address list. nullopt: process it.
//
// An address list that differs is dropped for both versions, as keepalived
// 2.2 does, although RFC 5798 §7.1 says to log it and process the advert: a
// different list almost always means another cluster reusing our VRID on the
// same LAN, and obeying its master would demote our Redis.
std::optional<Discard> check_for_instance(const Advertisement& advert,
                                          const InstanceConfig& config);

} // namespace redvip::election
