// libFuzzer target for the VRRP codec (election/vrrp/packet.cpp).
//
// Input: byte 0 = flags (bit 0: IPv6, bit 1: skip the TTL check), byte 1 =
// TTL or hop limit, bytes 2..17 = source address, 18..33 = destination (the
// first 4 bytes of each for IPv4), the rest = the VRRP payload.
//
// Whatever decodes must encode again, to the very same bytes when the v3
// reserved nibble was zero, and decode again to the same Advertisement. The
// one allowed difference is the checksum field when it held ffff: one's
// complement has two zeros, the receiver accepts both, the sender writes 0000.
// A discard must name a known reason. Any crash, UB or mismatch is a finding.
#include "election/vrrp/packet.hpp"

#include <algorithm>
#include <cstdlib>
#include <span>

using namespace redvip::election;

namespace {

constexpr std::size_t prefix_size = 34;

IpAddr address_at(const std::uint8_t* data, Family family) {
    IpAddr a{family, {}};
    std::copy_n(data, family == Family::ipv4 ? 4 : 16, a.bytes.begin());
    return a;
}

void check(bool ok) {
    if (!ok) std::abort();
}

// The bytes are the same, but for a checksum sent as ffff and re-encoded as
// 0000 (the same one's-complement zero).
bool same_bytes(std::span<const std::uint8_t> sent, const std::uint8_t* again) {
    constexpr std::size_t checksum_at = 6;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        const bool zero_pair = (i == checksum_at || i == checksum_at + 1) &&
                               sent[checksum_at] == 0xff && sent[checksum_at + 1] == 0xff &&
                               again[i] == 0x00;
        if (sent[i] != again[i] && !zero_pair) return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < prefix_size) return 0;
    const Family family = (data[0] & 1) != 0 ? Family::ipv6 : Family::ipv4;
    const DecodeOptions options{.check_ttl = (data[0] & 2) == 0};
    const IpAddr source = address_at(data + 2, family);
    const IpAddr destination = address_at(data + 18, family);
    const std::span<const std::uint8_t> payload(data + prefix_size, size - prefix_size);

    const auto result = decode(Datagram{payload, family, source, destination, data[1]}, options);
    if (const auto* bad = std::get_if<Discard>(&result)) {
        DiscardCounters counters;
        counters.bump(bad->reason);
        check(counters.total() == 1 && mib_name(bad->reason) != "unknown");
        check(bad->offset <= payload.size());
        return 0;
    }
    const auto& advert = std::get<Advertisement>(result);
    std::array<std::uint8_t, kMaxPacketSize> out{};
    const auto encoded = encode(advert, source, destination, out);
    check(static_cast<bool>(encoded) && encoded.size == payload.size());
    const bool reserved_zero = advert.version == Version::v2 || (payload[4] & 0xf0) == 0;
    if (reserved_zero) check(same_bytes(payload, out.data()));

    const std::span<const std::uint8_t> again(out.data(), encoded.size);
    const auto redecoded = decode(Datagram{again, family, source, destination, 255});
    check(std::holds_alternative<Advertisement>(redecoded) &&
          std::get<Advertisement>(redecoded) == advert);
    return 0;
}
