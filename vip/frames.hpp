// Announcement frames for a VIP that just moved: gratuitous ARP (IPv4) and
// unsolicited Neighbour Advertisement (IPv6). Pure: bytes in, bytes out; no
// sockets, so every byte is unit-tested against hand-computed frames.
#pragma once

#include <array>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

namespace redvip::vip {

using MacAddress = std::array<std::uint8_t, 6>;

// Ethernet header (14) + ARP for Ethernet/IPv4 (28). Not padded to 60: the
// driver pads short frames, as it does for keepalived's identical frame.
inline constexpr std::size_t kGarpFrameSize = 42;
// Ethernet (14) + IPv6 header (40) + NA (24) + target link-layer option (8).
inline constexpr std::size_t kNaFrameSize = 86;

using GarpFrame = std::array<std::uint8_t, kGarpFrameSize>;
using NaFrame = std::array<std::uint8_t, kNaFrameSize>;

// A gratuitous ARP as keepalived sends it: a broadcast ARP *request* whose
// sender and target protocol addresses are both the VIP (RFC 5227 section 3
// "ARP Announcement"; RFC 5944 section 4.6). A request rather than a reply
// because every stack, Linux included, updates an existing cache entry from
// a request, while some ignore unsolicited replies. Target hardware address
// ff:ff:ff:ff:ff:ff as keepalived and `arping -U` do (receivers ignore it).
GarpFrame build_garp(const MacAddress& source_mac, const boost::asio::ip::address_v4& vip);

// An unsolicited Neighbour Advertisement (RFC 4861 section 7.2.6) from the
// VIP to all-nodes ff02::1: Override set so that receivers replace a cached
// link-layer address (Linux keeps the old one without it), Solicited clear
// (it must be for a multicast destination), Router clear (we are no router),
// hop limit 255 (receivers drop ND with any other, section 7.1.2), and the
// Target Link-Layer Address option that carries the new MAC.
NaFrame build_unsolicited_na(const MacAddress& source_mac, const boost::asio::ip::address_v6& vip);

// The ICMPv6 checksum (RFC 8200 section 8.1): one's complement sum over the
// pseudo-header (source, destination, upper-layer length, next header 58)
// and `message` with its checksum field zero. Returned in host order.
std::uint16_t icmpv6_checksum(const boost::asio::ip::address_v6& source,
                              const boost::asio::ip::address_v6& destination,
                              std::span<const std::uint8_t> message);

} // namespace redvip::vip
