// The VIP manager's counters, a plain struct of its own so that the node's
// status (election/node/status.hpp) can show them without the manager.
#pragma once

#include <cstdint>

namespace redvip::vip {

// Kept by VipManager, exported with the node's status (JSON and metrics).
struct VipCounters {
    std::uint64_t addresses_added = 0;
    std::uint64_t addresses_removed = 0;
    std::uint64_t garp_sent = 0;
    std::uint64_t na_sent = 0;
    std::uint64_t announce_errors = 0; // frames the kernel refused
    std::uint64_t repairs = 0;         // VIPs put back while held
    std::uint64_t link_down = 0;
    std::uint64_t netlink_overruns = 0; // event socket lost messages: full resync
};

} // namespace redvip::vip
