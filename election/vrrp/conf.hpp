// Conversions between conf/'s validated structs (Boost addresses) and the
// election core's plain types. Kept apart so that the codec and the state
// machine never include Boost (the fuzz build compiles them alone with clang).
#pragma once

#include "conf/config.hpp"
#include "election/vrrp/instance.hpp"

#include <string>
#include <variant>
#include <vector>

namespace redvip::election {

IpAddr to_ip_addr(const conf::IpAddress& address);
conf::IpAddress to_boost(const IpAddr& address);

// The instance for `vrrp` advertising `vips` from `primary_address` (the
// interface's address, or vrrp.unicast_src). An error sentence when they
// cannot make one virtual router: mixed families, v2 over IPv6, more than
// kMaxAddresses VIPs, or an interval the version cannot carry.
std::variant<InstanceConfig, std::string>
make_instance_config(const conf::VrrpConfig& vrrp, const std::vector<conf::Prefix>& vips,
                     const IpAddr& primary_address);

} // namespace redvip::election
