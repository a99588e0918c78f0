// Synchronous rtnetlink requests through libnl-route-3: the interface's
// index, MAC and flags, the host's address list, and adding or removing one
// address. Each call is one request and its ACK, a few microseconds in the
// kernel; VipManager runs them inside a post() (see vip.cpp for why).
#pragma once

#include "conf/config.hpp"
#include "vip/frames.hpp"
#include "vip/vip.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct nl_addr;
struct nl_sock;

namespace redvip::vip {

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    MacAddress mac{};
    unsigned flags = 0; // IFF_* as the kernel reports them

    // Usable for the VIP: administratively up and operationally running
    // (carrier present). IFF_RUNNING is the kernel's "operstate up".
    bool usable() const;
    std::string down_reason() const; // "administratively down", "no carrier"
};

struct AddressEntry {
    int ifindex = 0;
    std::string ifname; // resolved from the same dump, for messages
    conf::Prefix prefix;
    std::string label; // IPv4 only; empty for IPv6
};

struct NlSockDeleter {
    void operator()(nl_sock* sock) const;
};
using NlSockPtr = std::unique_ptr<nl_sock, NlSockDeleter>;

// A libnl address as an IP address; nullopt for anything else (a MAC).
std::optional<conf::IpAddress> from_nl_addr(nl_addr* addr);

class RouteSocket {
public:
    // Connects lazily: a failure shows up in the first call's Status.
    RouteSocket() = default;

    Status link(const std::string& name, LinkInfo& out);
    // Every address of every interface (the "in use elsewhere" check needs all).
    Status addresses(std::vector<AddressEntry>& out);

    // Adds `prefix` on `link`; EEXIST (already there) is success. IPv6 gets
    // IFA_F_NODAD: the VIP must answer at once, not after DAD's second or so,
    // and the election already guarantees a single holder (as keepalived).
    Status add(const LinkInfo& link, const conf::Prefix& prefix, const std::string& label);
    // Removes it; EADDRNOTAVAIL (not there) and ENODEV (interface gone, and
    // its addresses with it) are success.
    Status remove(int ifindex, const std::string& ifname, const conf::Prefix& prefix);

private:
    Status connect();
    NlSockPtr sock_;
};

} // namespace redvip::vip
