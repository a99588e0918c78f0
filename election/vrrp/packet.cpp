#include "election/vrrp/packet.hpp"

#include <algorithm>
#include <arpa/inet.h>

namespace redvip::election {

namespace {

constexpr std::uint8_t type_advertisement = 1; // RFC 5798 §5.2.2: the only type
constexpr std::size_t kOffsetChecksum = 6;

// RFC 1071's one's-complement sum over big-endian 16-bit words. Every piece
// we feed is of even length except possibly the last, padded with a zero.
class OnesComplementSum {
public:
    void add(std::span<const std::uint8_t> bytes) {
        std::size_t i = 0;
        for (; i + 1 < bytes.size(); i += 2)
            sum_ += static_cast<std::uint32_t>(bytes[i] << 8 | bytes[i + 1]);
        if (i < bytes.size()) sum_ += static_cast<std::uint32_t>(bytes[i] << 8);
    }
    void add16(std::uint16_t word) { sum_ += word; }

    std::uint16_t folded() const {
        std::uint64_t s = sum_;
        while (s >> 16)
            s = (s & 0xffff) + (s >> 16);
        return static_cast<std::uint16_t>(s);
    }

private:
    std::uint64_t sum_ = 0;
};

// The checksum's coverage: RFC 3768 §5.3.8 is the VRRP message alone; RFC
// 5798 §5.2.8 adds the pseudo-header of RFC 2460 §8.1 (IPv6), which
// keepalived and FRR build for IPv4 as RFC 768's: src, dst, 0, 112, length.
OnesComplementSum sum_of(Version version, Family family, const IpAddr& source,
                         const IpAddr& destination, std::span<const std::uint8_t> message) {
    OnesComplementSum sum;
    if (version == Version::v3) {
        const std::size_t width = family == Family::ipv4 ? 4 : 16;
        sum.add({source.bytes.data(), width});
        sum.add({destination.bytes.data(), width});
        const auto length = static_cast<std::uint32_t>(message.size());
        if (family == Family::ipv6) sum.add16(static_cast<std::uint16_t>(length >> 16));
        sum.add16(static_cast<std::uint16_t>(length & 0xffff));
        sum.add16(kIpProtocolVrrp);
    }
    sum.add(message);
    return sum;
}

Discard discard(DiscardReason reason, std::size_t offset, std::string_view detail) {
    return Discard{reason, offset, detail};
}

centiseconds wire_interval(Version version, std::span<const std::uint8_t> m) {
    if (version == Version::v2) return AdverInt{m[5]};
    // RFC 5798 §5.2.6: the top nibble is reserved, ignored on reception.
    return MaxAdverInt{static_cast<std::uint16_t>((m[4] & 0x0f) << 8 | m[5])};
}

Advertisement parse_fields(Version version, Family family, std::span<const std::uint8_t> m) {
    Advertisement advert;
    advert.version = version;
    advert.vrid = m[1];
    advert.priority = m[2];
    advert.advert_interval = wire_interval(version, m);
    const std::size_t width = family == Family::ipv4 ? 4 : 16;
    std::size_t at = kHeaderSize;
    for (std::size_t i = 0; i < m[3]; ++i, at += width) {
        IpAddr address{family, {}};
        std::copy_n(m.begin() + static_cast<std::ptrdiff_t>(at), width, address.bytes.begin());
        (void)advert.addresses.push_back(address); // m[3] <= kMaxAddresses, checked before
    }
    if (version == Version::v2) {
        advert.auth_type = static_cast<AuthType>(m[4]); // <= 2, checked before
        std::copy_n(m.begin() + static_cast<std::ptrdiff_t>(at), kAuthDataSize,
                    advert.auth_data.begin());
    }
    return advert;
}

// Version, then length, then checksum: each needs the one before to be known
// good (the version decides the layout and the checksum's coverage).
std::variant<Version, Discard> check_framing(const Datagram& d, DecodeOptions options) {
    const auto m = d.payload;
    if (m.size() < kHeaderSize)
        return discard(DiscardReason::packet_length, m.size(), "shorter than the VRRP header");
    if (options.check_ttl && d.ttl != kRequiredTtl)
        return discard(DiscardReason::ip_ttl, 0, "TTL or hop limit is not 255");
    const int number = m[0] >> 4;
    if (number != 2 && number != 3)
        return discard(DiscardReason::version, 0, "version is neither 2 nor 3");
    const auto version = static_cast<Version>(number);
    if (version == Version::v2 && d.family == Family::ipv6)
        return discard(DiscardReason::version, 0, "VRRPv2 over IPv6");
    const std::size_t expected = message_size(version, d.family, m[3]);
    if (m.size() != expected)
        return discard(DiscardReason::packet_length, std::min(m.size(), expected),
                       "length does not match the address count");
    if (sum_of(version, d.family, d.source, d.destination, m).folded() != 0xffff)
        return discard(DiscardReason::checksum, kOffsetChecksum, "bad checksum");
    return version;
}

} // namespace

std::string to_string(const IpAddr& address) {
    char text[INET6_ADDRSTRLEN] = {};
    const int af = address.family == Family::ipv4 ? AF_INET : AF_INET6;
    if (inet_ntop(af, address.bytes.data(), text, sizeof text) == nullptr) return "?";
    return text;
}

std::string_view mib_name(DiscardReason reason) {
    switch (reason) {
    case DiscardReason::ip_ttl:
        return "vrrpv3StatisticsIpTtlErrors";
    case DiscardReason::version:
        return "vrrpv3RouterVersionErrors";
    case DiscardReason::packet_length:
        return "vrrpv3StatisticsPacketLengthErrors";
    case DiscardReason::checksum:
        return "vrrpv3RouterChecksumErrors";
    case DiscardReason::invalid_type:
        return "vrrpv3StatisticsRcvdInvalidTypePackets";
    case DiscardReason::adv_interval:
        return "vrrpv3StatisticsAdvIntervalErrors";
    case DiscardReason::invalid_auth_type:
        return "vrrpStatsInvalidAuthType";
    case DiscardReason::auth_type_mismatch:
        return "vrrpStatsAuthTypeMismatch";
    case DiscardReason::auth_failure:
        return "vrrpStatsAuthFailures";
    case DiscardReason::vrid:
        return "vrrpv3RouterVrIdErrors";
    case DiscardReason::address_list:
        return "vrrpv3StatisticsAddressListErrors";
    }
    return "unknown";
}

DecodeResult decode(const Datagram& d, DecodeOptions options) {
    const auto framing = check_framing(d, options);
    if (const auto* bad = std::get_if<Discard>(&framing)) return *bad;
    const auto version = std::get<Version>(framing);
    const auto m = d.payload;

    if ((m[0] & 0x0f) != type_advertisement)
        return discard(DiscardReason::invalid_type, 0, "type is not 1 (advertisement)");
    if (version == Version::v2 && m[4] > static_cast<std::uint8_t>(AuthType::ip_ah))
        return discard(DiscardReason::invalid_auth_type, 4, "unknown auth type");
    // Neither RFC allows a zero interval, and a zero would shrink the
    // receiver's Master_Down_Interval to its Skew_Time.
    if (wire_interval(version, m) == centiseconds::zero())
        return discard(DiscardReason::adv_interval, version == Version::v2 ? 5 : 4,
                       "advertisement interval is zero");
    if (m[3] > kMaxAddresses)
        return discard(DiscardReason::address_list, 3, "more addresses than kMaxAddresses");
    return parse_fields(version, d.family, m);
}

namespace {

EncodeError check_encodable(const Advertisement& a, const IpAddr& source,
                            const IpAddr& destination) {
    const Family family = source.family;
    if (a.version == Version::v2 && family == Family::ipv6) return EncodeError::v2_over_ipv6;
    if (destination.family != family) return EncodeError::address_family;
    for (const auto& address : a.addresses)
        if (address.family != family) return EncodeError::address_family;
    if (a.version == Version::v3) {
        if (a.auth_type != AuthType::none || a.auth_data != AuthData{})
            return EncodeError::auth_needs_v2;
        if (a.advert_interval < MaxAdverInt{1} || a.advert_interval > kMaxMaxAdverInt)
            return EncodeError::interval_range;
        return EncodeError::none;
    }
    if (a.advert_interval < AdverInt{1} || a.advert_interval > AdverInt{255})
        return EncodeError::interval_range;
    if (a.advert_interval % std::chrono::seconds{1} != centiseconds::zero())
        return EncodeError::interval_not_seconds;
    return EncodeError::none;
}

void write_fields(const Advertisement& a, std::span<std::uint8_t> m) {
    m[0] = static_cast<std::uint8_t>(static_cast<int>(a.version) << 4 | type_advertisement);
    m[1] = a.vrid;
    m[2] = a.priority;
    m[3] = static_cast<std::uint8_t>(a.addresses.size());
    if (a.version == Version::v2) {
        m[4] = static_cast<std::uint8_t>(a.auth_type);
        m[5] = static_cast<std::uint8_t>(a.advert_interval / std::chrono::seconds{1});
    } else {
        const auto cs = static_cast<unsigned>(a.advert_interval.count());
        m[4] = static_cast<std::uint8_t>(cs >> 8 & 0x0f);
        m[5] = static_cast<std::uint8_t>(cs & 0xff);
    }
    m[6] = m[7] = 0;
    auto out = m.begin() + kHeaderSize;
    for (const auto& address : a.addresses)
        out = std::copy_n(address.bytes.begin(), address.size(), out);
    if (a.version == Version::v2) std::copy(a.auth_data.begin(), a.auth_data.end(), out);
}

} // namespace

EncodeResult encode(const Advertisement& advert, const IpAddr& source, const IpAddr& destination,
                    std::span<std::uint8_t> out) {
    if (const auto error = check_encodable(advert, source, destination); error != EncodeError::none)
        return {0, error};
    const std::size_t size = message_size(advert.version, source.family, advert.addresses.size());
    if (out.size() < size) return {0, EncodeError::buffer_too_small};
    const auto m = out.first(size);
    write_fields(advert, m);
    const auto sum = sum_of(advert.version, source.family, source, destination, m);
    const auto checksum = static_cast<std::uint16_t>(~sum.folded());
    m[kOffsetChecksum] = static_cast<std::uint8_t>(checksum >> 8);
    m[kOffsetChecksum + 1] = static_cast<std::uint8_t>(checksum & 0xff);
    return {size, EncodeError::none};
}

namespace {

// One switch for both constnesses of DiscardCounters::operator[].
template <typename Counters> auto& counter_for(Counters& c, DiscardReason reason) {
    switch (reason) {
    case DiscardReason::ip_ttl:
        return c.ip_ttl_errors;
    case DiscardReason::version:
        return c.version_errors;
    case DiscardReason::packet_length:
        return c.packet_length_errors;
    case DiscardReason::checksum:
        return c.checksum_errors;
    case DiscardReason::invalid_type:
        return c.invalid_type_packets;
    case DiscardReason::adv_interval:
        return c.adv_interval_errors;
    case DiscardReason::invalid_auth_type:
        return c.invalid_auth_type;
    case DiscardReason::auth_type_mismatch:
        return c.auth_type_mismatch;
    case DiscardReason::auth_failure:
        return c.auth_failures;
    case DiscardReason::vrid:
        return c.vrid_errors;
    case DiscardReason::address_list:
        return c.address_list_errors;
    }
    return c.packet_length_errors; // unreachable: every enumerator is listed above
}

} // namespace

std::uint64_t& DiscardCounters::operator[](DiscardReason reason) {
    return counter_for(*this, reason);
}

std::uint64_t DiscardCounters::operator[](DiscardReason reason) const {
    return counter_for(*this, reason);
}

std::uint64_t DiscardCounters::total() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < kDiscardReasonCount; ++i)
        sum += (*this)[static_cast<DiscardReason>(i)];
    return sum;
}

} // namespace redvip::election
