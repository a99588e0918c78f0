#include "vip/frames.hpp"

#include <algorithm>

namespace redvip::vip {
namespace {

constexpr std::uint16_t ethertype_arp = 0x0806;
constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86dd;
constexpr std::uint16_t arp_hardware_ethernet = 1;
constexpr std::uint16_t arp_op_request = 1;
constexpr std::uint8_t next_header_icmpv6 = 58;
constexpr std::uint8_t nd_hop_limit = 255; // RFC 4861 section 7.1.2
constexpr std::uint8_t icmpv6_neighbour_advertisement = 136;
constexpr std::uint8_t na_flag_override = 0x20; // R=0x80, S=0x40, O=0x20
constexpr std::uint8_t nd_option_target_lladdr = 2;
constexpr std::size_t kEthernetHeaderSize = 14;
constexpr std::size_t kIpv6HeaderSize = 40;
constexpr std::size_t na_message_size = 32;   // NA (24) + option (8)
constexpr std::size_t kNaChecksumOffset = 2; // within the ICMPv6 message

constexpr MacAddress kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// RFC 2464 section 7: 33:33 followed by the low 32 bits of ff02::1.
constexpr MacAddress kAllNodesMac{0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

const boost::asio::ip::address_v6 all_nodes{boost::asio::ip::address_v6::bytes_type{
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}};

// Appends big-endian fields to a fixed frame; the frame sizes are constants,
// so the writer never has to grow or check anything at run time.
class Writer {
public:
    explicit Writer(std::span<std::uint8_t> out) : out_(out) {}

    Writer& u8(std::uint8_t v) {
        out_[at_++] = v;
        return *this;
    }
    Writer& u16(std::uint16_t v) {
        return u8(static_cast<std::uint8_t>(v >> 8)).u8(static_cast<std::uint8_t>(v));
    }
    Writer& u32(std::uint32_t v) {
        return u16(static_cast<std::uint16_t>(v >> 16)).u16(static_cast<std::uint16_t>(v));
    }
    template <std::size_t N> Writer& bytes(const std::array<std::uint8_t, N>& v) {
        std::copy(v.begin(), v.end(), out_.begin() + static_cast<std::ptrdiff_t>(at_));
        at_ += N;
        return *this;
    }

private:
    std::span<std::uint8_t> out_;
    std::size_t at_ = 0;
};

// 16-bit one's complement sum of big-endian words (RFC 1071), not folded.
std::uint32_t add_words(std::uint32_t sum, std::span<const std::uint8_t> data) {
    for (std::size_t i = 0; i + 1 < data.size(); i += 2)
        sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    if (data.size() % 2 != 0) sum += static_cast<std::uint32_t>(data.back() << 8);
    return sum;
}

} // namespace

GarpFrame build_garp(const MacAddress& source_mac, const boost::asio::ip::address_v4& vip) {
    GarpFrame frame{};
    const auto ip = vip.to_bytes();
    Writer w(frame);
    w.bytes(kBroadcastMac).bytes(source_mac).u16(ethertype_arp);
    w.u16(arp_hardware_ethernet).u16(ethertype_ipv4).u8(6).u8(4).u16(arp_op_request);
    w.bytes(source_mac).bytes(ip);    // sender: our MAC, the VIP
    w.bytes(kBroadcastMac).bytes(ip); // target: a MAC receivers ignore, the VIP again
    return frame;
}

NaFrame build_unsolicited_na(const MacAddress& source_mac, const boost::asio::ip::address_v6& vip) {
    NaFrame frame{};
    Writer w(frame);
    w.bytes(kAllNodesMac).bytes(source_mac).u16(ethertype_ipv6);
    w.u32(0x60000000); // version 6, traffic class 0, flow label 0
    w.u16(static_cast<std::uint16_t>(na_message_size)).u8(next_header_icmpv6).u8(nd_hop_limit);
    w.bytes(vip.to_bytes()).bytes(all_nodes.to_bytes());
    w.u8(icmpv6_neighbour_advertisement).u8(0).u16(0); // type, code, checksum (set below)
    w.u8(na_flag_override).u8(0).u16(0);               // flags, reserved
    w.bytes(vip.to_bytes());                           // target address
    w.u8(nd_option_target_lladdr).u8(1);               // option length in units of 8 bytes
    w.bytes(source_mac);

    const auto message =
        std::span<std::uint8_t>(frame).subspan(kEthernetHeaderSize + kIpv6HeaderSize);
    const std::uint16_t sum = icmpv6_checksum(vip, all_nodes, message);
    message[kNaChecksumOffset] = static_cast<std::uint8_t>(sum >> 8);
    message[kNaChecksumOffset + 1] = static_cast<std::uint8_t>(sum);
    return frame;
}

std::uint16_t icmpv6_checksum(const boost::asio::ip::address_v6& source,
                              const boost::asio::ip::address_v6& destination,
                              std::span<const std::uint8_t> message) {
    std::array<std::uint8_t, 8> length_and_next{};
    Writer(length_and_next)
        .u32(static_cast<std::uint32_t>(message.size()))
        .u16(0)
        .u8(0)
        .u8(next_header_icmpv6);

    std::uint32_t sum = 0;
    sum = add_words(sum, source.to_bytes());
    sum = add_words(sum, destination.to_bytes());
    sum = add_words(sum, length_and_next);
    sum = add_words(sum, message);
    while (sum > 0xffff)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

} // namespace redvip::vip
