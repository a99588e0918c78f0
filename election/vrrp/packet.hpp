// The VRRP advertisement codec: RFC 3768 (VRRPv2, IPv4) and RFC 5798 (VRRPv3,
// IPv4 and IPv6). Pure: bytes in, struct out; no sockets, no clock, no
// exceptions, no allocation.
//
// This layer answers one question: "is this a well-formed VRRP packet?"
// (one check, one reason each). Whether it is for this virtual router is the
// next layer's question (instance.hpp), and what to do about it the state
// machine's (state.hpp). See docs/style.md, practice 6.
#pragma once

#include "election/bounded_vector.hpp"

#include <array>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace redvip::election {

enum class Family : std::uint8_t { ipv4, ipv6 };

// An address in network byte order; IPv4 uses bytes[0..3], the rest stay zero.
// The defaulted ordering is numeric within a family, which is what RFC 5798
// §6.4.3's "primary IPvX address of the sender greater than" compares.
struct IpAddr {
    Family family = Family::ipv4;
    std::array<std::uint8_t, 16> bytes{};

    static constexpr IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        return IpAddr{Family::ipv4, {a, b, c, d}};
    }
    static constexpr IpAddr v6(const std::array<std::uint8_t, 16>& b) {
        return IpAddr{Family::ipv6, b};
    }
    constexpr std::size_t size() const { return family == Family::ipv4 ? 4 : 16; }
    std::span<const std::uint8_t> octets() const { return {bytes.data(), size()}; }

    friend bool operator==(const IpAddr&, const IpAddr&) = default;
    friend std::strong_ordering operator<=>(const IpAddr&, const IpAddr&) = default;
};

std::string to_string(const IpAddr& address); // "10.0.0.1", "fe80::1"

// RFC 5798 §5.1.1.2 / §5.1.2.2: where adverts go unless unicast peers are set.
constexpr IpAddr kMulticastGroupV4 = IpAddr::v4(224, 0, 0, 18);
constexpr IpAddr kMulticastGroupV6 =
    IpAddr::v6({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12});

enum class Version : std::uint8_t { v2 = 2, v3 = 3 };

// RFC 3768 §5.3.6 keeps only 0 and reserves 1 and 2; keepalived still speaks
// RFC 2338's 1 (simple text password), which is why it is here.
enum class AuthType : std::uint8_t { none = 0, simple_text = 1, ip_ah = 2 };
using AuthData = std::array<std::uint8_t, 8>; // RFC 3768 §5.3.10: always 8 bytes

using centiseconds = std::chrono::duration<std::int64_t, std::centi>; // the common unit
using MaxAdverInt = std::chrono::duration<std::uint16_t, std::centi>; // v3 wire field, 12 bits
using AdverInt = std::chrono::duration<std::uint8_t>;                 // v2 wire field, seconds

constexpr std::uint8_t kIpProtocolVrrp = 112;
constexpr std::uint8_t kRequiredTtl = 255;       // RFC 5798 §5.1.1.3, §5.1.2.3
constexpr std::size_t kHeaderSize = 8;           // version/type .. checksum
constexpr std::size_t kAuthDataSize = 8;        // v2 only, after the addresses
constexpr MaxAdverInt kMaxMaxAdverInt{0x0fff}; // RFC 5798 §5.2.7: 12 bits
constexpr std::uint8_t kPriorityOwner = 255;     // RFC 5798 §5.2.4: the address owner
constexpr std::uint8_t kPriorityStop = 0;        // RFC 5798 §5.2.4: the master is leaving

// How many addresses one advert may list. The wire allows 255, but a redvip
// instance carries a handful of VIPs and an IPv6 advert of 1500 bytes holds
// at most 90; an advert listing more than this can never match our list, so
// the codec refuses it (address list error) before storing anything.
constexpr std::size_t kMaxAddresses = 64;
constexpr std::size_t kMaxPacketSize = kHeaderSize + kMaxAddresses * 16;

using AddressList = BoundedVector<IpAddr, kMaxAddresses>;

// A decoded advertisement. Encoding it again gives back the same bytes, except
// that v3's reserved nibble is always sent as zero (RFC 5798 §5.2.6).
struct Advertisement {
    Version version = Version::v3;
    std::uint8_t vrid = 0;
    std::uint8_t priority = 0;
    // v3: Max Adver Int (1..4095 cs); v2: Adver Int (1..255 whole seconds).
    centiseconds advert_interval{100};
    AuthType auth_type = AuthType::none; // v2 only; v3 has no authentication
    AuthData auth_data{};                // v2 only; sent as is, zeros for none
    AddressList addresses;               // all of the datagram's family

    friend bool operator==(const Advertisement&, const Advertisement&) = default;
};

// What the raw-socket adapter hands over for one received datagram.
struct Datagram {
    std::span<const std::uint8_t> payload; // the VRRP message, IP header already stripped
    Family family = Family::ipv4;          // source and destination must be of it
    IpAddr source;
    IpAddr destination;   // multicast group or our unicast address
    std::uint8_t ttl = 0; // IPv4 TTL or IPv6 hop limit (from cmsg)
};

struct DecodeOptions {
    // keepalived skips the TTL check for unicast peers, whose adverts may be
    // routed; multicast adverts must never have crossed a router.
    bool check_ttl = true;
};

// Why a packet was dropped, named after the counter that RFC 6527 (VRRPv3-MIB)
// or, for v2's authentication, RFC 2787 (VRRP-MIB) keeps for it.
enum class DiscardReason : std::uint8_t {
    ip_ttl,             // vrrpv3StatisticsIpTtlErrors
    version,            // vrrpv3RouterVersionErrors
    packet_length,      // vrrpv3StatisticsPacketLengthErrors
    checksum,           // vrrpv3RouterChecksumErrors
    invalid_type,       // vrrpv3StatisticsRcvdInvalidTypePackets
    adv_interval,       // vrrpv3StatisticsAdvIntervalErrors
    invalid_auth_type,  // vrrpStatsInvalidAuthType
    auth_type_mismatch, // vrrpStatsAuthTypeMismatch
    auth_failure,       // vrrpStatsAuthFailures
    vrid,               // vrrpv3RouterVrIdErrors
    address_list,       // vrrpv3StatisticsAddressListErrors
};
constexpr std::size_t kDiscardReasonCount = 11;

std::string_view mib_name(DiscardReason reason); // "vrrpv3RouterChecksumErrors"

struct Discard {
    DiscardReason reason = DiscardReason::packet_length;
    std::size_t offset = 0;  // byte of the VRRP message the check looked at
    std::string_view detail; // a static sentence for the (rate-limited) log

    friend bool operator==(const Discard& a, const Discard& b) {
        return a.reason == b.reason && a.offset == b.offset;
    }
};

// A datagram arrives whole, so there is no "need more": a short one is a
// packet length error like any other malformed one.
using DecodeResult = std::variant<Advertisement, Discard>;

DecodeResult decode(const Datagram& datagram, DecodeOptions options = {});

enum class EncodeError : std::uint8_t {
    none,
    buffer_too_small,
    v2_over_ipv6,         // RFC 3768 is IPv4 only
    address_family,       // an address or the destination is not of the source's family
    interval_range,       // v3: 1..4095 cs; v2: 1..255 s
    interval_not_seconds, // v2 counts whole seconds
    auth_needs_v2,        // v3 has no authentication fields
};

struct EncodeResult {
    std::size_t size = 0; // bytes written to the front of `out`
    EncodeError error = EncodeError::none;

    explicit operator bool() const { return error == EncodeError::none; }
};

// The VRRP message for `advert` sent from `source` to `destination` (which the
// v3 checksum covers), written to the front of `out` with its checksum.
EncodeResult encode(const Advertisement& advert, const IpAddr& source, const IpAddr& destination,
                    std::span<std::uint8_t> out);

// The VRRP message's length on the wire for this version, family and count.
constexpr std::size_t message_size(Version version, Family family, std::size_t count) {
    const std::size_t width = family == Family::ipv4 ? 4 : 16;
    return kHeaderSize + count * width + (version == Version::v2 ? kAuthDataSize : 0);
}

// One counter per discard reason, always compiled in (docs/style.md, practice 5).
struct DiscardCounters {
    std::uint64_t ip_ttl_errors = 0;
    std::uint64_t version_errors = 0;
    std::uint64_t packet_length_errors = 0;
    std::uint64_t checksum_errors = 0;
    std::uint64_t invalid_type_packets = 0;
    std::uint64_t adv_interval_errors = 0;
    std::uint64_t invalid_auth_type = 0;
    std::uint64_t auth_type_mismatch = 0;
    std::uint64_t auth_failures = 0;
    std::uint64_t vrid_errors = 0;
    std::uint64_t address_list_errors = 0;

    std::uint64_t& operator[](DiscardReason reason);
    std::uint64_t operator[](DiscardReason reason) const;
    void bump(DiscardReason reason) { ++(*this)[reason]; }
    std::uint64_t total() const;

    friend bool operator==(const DiscardCounters&, const DiscardCounters&) = default;
};

} // namespace redvip::election
