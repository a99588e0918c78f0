// Helpers shared by the election tests: addresses, an independent RFC 1071
// checksum (so golden packets are not checked against the code under test),
// doctest printers and a fake clock.
#pragma once

#include "conf/config.hpp"
#include "election/vrrp/packet.hpp"
#include "election/vrrp/state.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <doctest/doctest.h>
#include <string>
#include <tuple>
#include <vector>

namespace redvip::election::test {

using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

constexpr centiseconds operator""_cs(unsigned long long n) {
    return centiseconds{static_cast<centiseconds::rep>(n)};
}

inline conf::Endpoint ep(const char* host, std::uint16_t port) {
    return conf::Endpoint{boost::asio::ip::make_address(host), port};
}

inline IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return IpAddr::v4(a, b, c, d);
}

// fe80::<last> style addresses: prefix word, then the last 16 bits.
inline IpAddr v6(std::uint16_t first, std::uint16_t last) {
    std::array<std::uint8_t, 16> b{};
    b[0] = static_cast<std::uint8_t>(first >> 8);
    b[1] = static_cast<std::uint8_t>(first & 0xff);
    b[14] = static_cast<std::uint8_t>(last >> 8);
    b[15] = static_cast<std::uint8_t>(last & 0xff);
    return IpAddr::v6(b);
}

// Written apart from the codec on purpose: a plain 32-bit sum of 16-bit
// big-endian words, carries folded at the end.
inline std::uint16_t ones_complement_sum(const Bytes& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        const std::uint32_t hi = data[i];
        const std::uint32_t lo = i + 1 < data.size() ? data[i + 1] : 0;
        sum += hi << 8 | lo;
    }
    while (sum > 0xffff)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

// RFC 5798 §5.2.8's pseudo-header, built by hand.
inline Bytes pseudo_header(const IpAddr& src, const IpAddr& dst, std::size_t length) {
    Bytes out(src.octets().begin(), src.octets().end());
    out.insert(out.end(), dst.octets().begin(), dst.octets().end());
    if (src.family == Family::ipv4) {
        out.insert(out.end(), {0, 112, static_cast<std::uint8_t>(length >> 8),
                               static_cast<std::uint8_t>(length & 0xff)});
    } else {
        out.insert(out.end(), {0, 0, static_cast<std::uint8_t>(length >> 8),
                               static_cast<std::uint8_t>(length & 0xff), 0, 0, 0, 112});
    }
    return out;
}

// The checksum field value the message should carry.
inline std::uint16_t expected_checksum(Bytes message, const IpAddr& src, const IpAddr& dst) {
    message[6] = message[7] = 0;
    Bytes covered;
    if (message[0] >> 4 == 3) covered = pseudo_header(src, dst, message.size());
    covered.insert(covered.end(), message.begin(), message.end());
    return static_cast<std::uint16_t>(~ones_complement_sum(covered));
}

// Rewrites the checksum after a test edited a field on purpose.
inline Bytes with_checksum(Bytes message, const IpAddr& src, const IpAddr& dst) {
    const auto sum = expected_checksum(message, src, dst);
    message[6] = static_cast<std::uint8_t>(sum >> 8);
    message[7] = static_cast<std::uint8_t>(sum & 0xff);
    return message;
}

inline Bytes encode_bytes(const Advertisement& advert, const IpAddr& src, const IpAddr& dst) {
    Bytes out(kMaxPacketSize);
    const auto result = encode(advert, src, dst, out);
    REQUIRE(result);
    out.resize(result.size);
    return out;
}

inline DecodeResult decode_bytes(const Bytes& bytes, const IpAddr& src, const IpAddr& dst,
                                 std::uint8_t ttl = 255, DecodeOptions options = {}) {
    return decode(Datagram{bytes, src.family, src, dst, ttl}, options);
}

inline Advertisement advert_v3(std::uint8_t vrid, std::uint8_t priority,
                               std::initializer_list<IpAddr> addresses,
                               centiseconds interval = 100_cs) {
    Advertisement a;
    a.version = Version::v3;
    a.vrid = vrid;
    a.priority = priority;
    a.advert_interval = interval;
    for (const auto& address : addresses)
        REQUIRE(a.addresses.push_back(address));
    return a;
}

struct FakeClock {
    TimePoint now{std::chrono::hours{1}};
    void advance(Duration d) { now += d; }
};

} // namespace redvip::election::test

namespace doctest {

template <> struct StringMaker<redvip::election::IpAddr> {
    static String convert(const redvip::election::IpAddr& a) {
        return redvip::election::to_string(a).c_str();
    }
};
template <> struct StringMaker<redvip::election::State> {
    static String convert(redvip::election::State s) {
        return std::string(redvip::election::to_string(s)).c_str();
    }
};
template <> struct StringMaker<redvip::election::Reason> {
    static String convert(redvip::election::Reason r) {
        return std::string(redvip::election::to_string(r)).c_str();
    }
};
template <> struct StringMaker<redvip::election::DiscardReason> {
    static String convert(redvip::election::DiscardReason r) {
        return std::string(redvip::election::mib_name(r)).c_str();
    }
};

} // namespace doctest
