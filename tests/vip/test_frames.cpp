// The announcement frames, byte for byte. Expected frames are written out by
// hand from RFC 826 / RFC 4861 / RFC 8200, not produced by the code under test.
#include "vip/frames.hpp"

#include <doctest/doctest.h>
#include <vector>

using namespace redvip::vip;
using boost::asio::ip::make_address_v4;
using boost::asio::ip::make_address_v6;

namespace {

const MacAddress mac{0x02, 0x00, 0x5e, 0x77, 0x00, 0x0a};

// The receiver's check, written independently of frames.cpp: sum the whole
// pseudo-header and message, checksum field included, in a wide accumulator
// folded once at the end; a correct checksum makes it 0xffff (RFC 1071).
bool receiver_accepts(std::span<const std::uint8_t> ipv6_packet) {
    const auto payload = ipv6_packet.subspan(40);
    std::vector<std::uint8_t> pseudo(ipv6_packet.begin() + 8,
                                     ipv6_packet.begin() + 40); // source, destination
    const auto length = static_cast<std::uint32_t>(payload.size());
    for (int shift : {24, 16, 8, 0})
        pseudo.push_back(static_cast<std::uint8_t>(length >> shift));
    pseudo.insert(pseudo.end(), {0, 0, 0, ipv6_packet[6]}); // next header from the packet
    pseudo.insert(pseudo.end(), payload.begin(), payload.end());
    if (pseudo.size() % 2 != 0) pseudo.push_back(0);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < pseudo.size(); i += 2)
        sum += static_cast<std::uint64_t>(pseudo[i]) * 256 + pseudo[i + 1];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

} // namespace

// One protocol field per line, by hand:
// clang-format off
TEST_CASE("gratuitous ARP is a broadcast request with sender IP = target IP = the VIP") {
    const GarpFrame expected{
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // Ethernet destination: broadcast
        0x02, 0x00, 0x5e, 0x77, 0x00, 0x0a,  // Ethernet source: our MAC
        0x08, 0x06,                          // EtherType ARP
        0x00, 0x01,                          // hardware type Ethernet
        0x08, 0x00,                          // protocol type IPv4
        0x06, 0x04,                          // hardware / protocol address lengths
        0x00, 0x01,                          // operation: request (as keepalived)
        0x02, 0x00, 0x5e, 0x77, 0x00, 0x0a,  // sender hardware address
        10, 77, 0, 100,                      // sender protocol address: the VIP
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // target hardware address (ignored)
        10, 77, 0, 100,                      // target protocol address: the VIP
    };
    CHECK(build_garp(mac, make_address_v4("10.77.0.100")) == expected);
}
// clang-format on

TEST_CASE("GARP carries a different VIP and MAC in every address field") {
    const MacAddress other{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    const GarpFrame f = build_garp(other, make_address_v4("10.77.255.1"));
    CHECK(std::equal(other.begin(), other.end(), f.begin() + 6));
    CHECK(std::equal(other.begin(), other.end(), f.begin() + 22));
    const std::array<std::uint8_t, 4> ip{10, 77, 255, 1};
    CHECK(std::equal(ip.begin(), ip.end(), f.begin() + 28));
    CHECK(std::equal(ip.begin(), ip.end(), f.begin() + 38));
}

// The checksum, by hand: the non-zero 16-bit words of pseudo-header and
// message are fd77 0100 (source) ff02 0001 (destination) 0020 (length 32)
// 003a (next header 58) 8800 (type 136, code 0) 2000 (flags: O) fd77 0100
// (target) 0201 (option 2, length 1) 0200 5e77 000a (MAC). Their sum is
// 0x406cd; folded 0x06cd + 0x4 = 0x06d1; complemented 0xf92e.
// clang-format off
TEST_CASE("unsolicited NA for fd77::100, byte-exact") {
    const NaFrame expected{
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01,  // Ethernet destination: ff02::1's multicast MAC
        0x02, 0x00, 0x5e, 0x77, 0x00, 0x0a,  // Ethernet source: our MAC
        0x86, 0xdd,                          // EtherType IPv6
        0x60, 0x00, 0x00, 0x00,              // version 6, traffic class 0, flow label 0
        0x00, 0x20,                          // payload length 32
        0x3a,                                // next header ICMPv6
        0xff,                                // hop limit 255
        0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,  // source fd77::100
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,  // destination ff02::1
        0x88, 0x00,                          // type 136 (NA), code 0
        0xf9, 0x2e,                          // checksum (see above)
        0x20, 0x00, 0x00, 0x00,              // R=0 S=0 O=1, reserved
        0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,  // target fd77::100
        0x02, 0x01,                          // option: target link-layer address, 8 bytes
        0x02, 0x00, 0x5e, 0x77, 0x00, 0x0a,  // our MAC
    };
    CHECK(build_unsolicited_na(mac, make_address_v6("fd77::100")) == expected);
}
// clang-format on

TEST_CASE("NA checksums verify with an independent receiver-side routine") {
    const MacAddress macs[] = {mac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, {0, 0, 0, 0, 0, 1}};
    const char* vips[] = {"fd77::100", "fd77:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                          "fd77::", "fd77:1:2:3::4"};
    for (const MacAddress& m : macs) {
        for (const char* v : vips) {
            CAPTURE(v);
            const NaFrame f = build_unsolicited_na(m, make_address_v6(v));
            CHECK(receiver_accepts(std::span<const std::uint8_t>(f).subspan(14)));
        }
    }
}

TEST_CASE("a corrupted NA fails the independent check (the check is not vacuous)") {
    NaFrame f = build_unsolicited_na(mac, make_address_v6("fd77::100"));
    f[14 + 40 + 8] ^= 0x01; // one bit of the target address
    CHECK_FALSE(receiver_accepts(std::span<const std::uint8_t>(f).subspan(14)));
}

TEST_CASE("icmpv6_checksum pads an odd-length message with a zero byte (RFC 1071)") {
    const auto src = make_address_v6("fd77::1");
    const auto dst = make_address_v6("fd77::2");
    // Words: fd77 0001 fd77 0002 0003 (length) 003a 0102 0300 -> sum 0x1ff30,
    // folded 0xff31, complemented 0x00ce.
    const std::array<std::uint8_t, 3> message{0x01, 0x02, 0x03};
    CHECK(icmpv6_checksum(src, dst, message) == 0x00ce);
}
