// The VRRP codec: golden packets with hand-computed checksums, round trips of
// every field, every truncation, each malformed input its own case, and the
// encoder's refusals.
#include "vrrp_test_support.hpp"

#include <set>

using namespace redvip::election;
using namespace redvip::election::test;

namespace {

const IpAddr src4 = v4(10, 0, 0, 1);
const IpAddr dst4 = kMulticastGroupV4;
const IpAddr src6 = v6(0xfe80, 0x0001);
const IpAddr dst6 = kMulticastGroupV6;

Discard discard_of(const DecodeResult& result) {
    REQUIRE(std::holds_alternative<Discard>(result));
    return std::get<Discard>(result);
}

Advertisement advert_of(const DecodeResult& result) {
    if (const auto* d = std::get_if<Discard>(&result)) FAIL("discarded: " << d->detail);
    return std::get<Advertisement>(result);
}

// v2, VRID 51, priority 100, no auth, 1 s, 192.168.1.100. Checksum by hand:
// 2133 + 6401 + 0001 + c0a8 + 0164 = 1_4741 -> 4742 -> ~ = b8bd.
const Bytes golden_v2_none = {0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0xb8, 0xbd, 0xc0, 0xa8,
                              0x01, 0x64, 0,    0,    0,    0,    0,    0,    0,    0};

// v2, VRID 1, priority 150, PASS "secret", 1 s, 10.0.0.100. By hand:
// 2101 + 9601 + 0101 + 0a00 + 0064 + 7365 + 6372 + 6574 = 1_feb2 -> feb3 -> ~ = 014c.
const Bytes golden_v2_pass = {0x21, 0x01, 0x96, 0x01, 0x01, 0x01, 0x01, 0x4c, 0x0a, 0x00,
                              0x00, 0x64, 's',  'e',  'c',  'r',  'e',  't',  0,    0};

// v3 over IPv4, 10.0.0.1 -> 224.0.0.18, VRID 51, priority 100, 100 cs,
// 10.0.0.100. Pseudo-header 0a00 0001 e000 0012 0070 000c = ea8f; message
// 3133 6401 0064 0a00 0064; total 1_8a8b -> 8a8c -> ~ = 7573.
const Bytes golden_v3_ipv4 = {0x31, 0x33, 0x64, 0x01, 0x00, 0x64,
                              0x75, 0x73, 0x0a, 0x00, 0x00, 0x64};

// v3 over IPv6, fe80::1 -> ff02::12, VRID 1, priority 200, 100 cs,
// 2001:db8::100. Pseudo-header fe80 0001 ff02 0012 0000 0018 0000 0070;
// message 3101 c801 0064 2001 0db8 0100; total 3_263c -> 263f -> ~ = d9c0.
const Bytes golden_v3_ipv6 = {0x31, 0x01, 0xc8, 0x01, 0x00, 0x64, 0xd9, 0xc0,
                              0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,
                              0,    0,    0,    0,    0,    0,    0x01, 0x00};

Advertisement golden_v2_none_advert() {
    Advertisement a;
    a.version = Version::v2;
    a.vrid = 51;
    a.priority = 100;
    a.advert_interval = 1s;
    REQUIRE(a.addresses.push_back(v4(192, 168, 1, 100)));
    return a;
}

Advertisement golden_v2_pass_advert() {
    Advertisement a;
    a.version = Version::v2;
    a.vrid = 1;
    a.priority = 150;
    a.advert_interval = 1s;
    a.auth_type = AuthType::simple_text;
    a.auth_data = {'s', 'e', 'c', 'r', 'e', 't', 0, 0};
    REQUIRE(a.addresses.push_back(v4(10, 0, 0, 100)));
    return a;
}

IpAddr doc6(std::uint16_t last) {
    auto a = v6(0x2001, last);
    a.bytes[2] = 0x0d;
    a.bytes[3] = 0xb8;
    return a;
}

} // namespace

TEST_SUITE("vrrp codec: golden packets") {
    TEST_CASE("the independent checksum agrees with the hand-computed goldens") {
        CHECK(expected_checksum(golden_v2_none, src4, dst4) == 0xb8bd);
        CHECK(expected_checksum(golden_v2_pass, src4, dst4) == 0x014c);
        CHECK(expected_checksum(golden_v3_ipv4, src4, dst4) == 0x7573);
        CHECK(expected_checksum(golden_v3_ipv6, src6, dst6) == 0xd9c0);
    }

    TEST_CASE("v2 without authentication") {
        CHECK(encode_bytes(golden_v2_none_advert(), src4, dst4) == golden_v2_none);
        CHECK(advert_of(decode_bytes(golden_v2_none, src4, dst4)) == golden_v2_none_advert());
    }

    TEST_CASE("v2 with a simple text password") {
        CHECK(encode_bytes(golden_v2_pass_advert(), src4, dst4) == golden_v2_pass);
        CHECK(advert_of(decode_bytes(golden_v2_pass, src4, dst4)) == golden_v2_pass_advert());
    }

    TEST_CASE("v2's checksum covers the message only, not the addresses around it") {
        CHECK(advert_of(decode_bytes(golden_v2_none, v4(192, 0, 2, 9), v4(192, 0, 2, 10))) ==
              golden_v2_none_advert());
    }

    TEST_CASE("a checksum of ffff is the other one's-complement zero: accepted, sent as 0000") {
        // 2101 + 9601 + 0101 + 0a00 + 01b0 + 7365 + 6372 + 6574 = 1_fffe -> ffff:
        // the checksum field must add zero, which 0000 and ffff both do (RFC 1071).
        Advertisement advert = golden_v2_pass_advert();
        advert.addresses.clear();
        REQUIRE(advert.addresses.push_back(v4(10, 0, 1, 176)));
        Bytes packet = encode_bytes(advert, src4, dst4);
        REQUIRE(packet.size() == 20);
        CHECK(packet[6] == 0x00);
        CHECK(packet[7] == 0x00);
        CHECK(advert_of(decode_bytes(packet, src4, dst4)) == advert);
        packet[6] = packet[7] = 0xff;
        CHECK(advert_of(decode_bytes(packet, src4, dst4)) == advert);
    }

    TEST_CASE("v3 over IPv4") {
        const auto advert = advert_v3(51, 100, {v4(10, 0, 0, 100)});
        CHECK(encode_bytes(advert, src4, dst4) == golden_v3_ipv4);
        CHECK(advert_of(decode_bytes(golden_v3_ipv4, src4, dst4)) == advert);
    }

    TEST_CASE("v3 over IPv6") {
        const auto advert = advert_v3(1, 200, {doc6(0x0100)});
        CHECK(encode_bytes(advert, src6, dst6) == golden_v3_ipv6);
        CHECK(advert_of(decode_bytes(golden_v3_ipv6, src6, dst6)) == advert);
    }

    TEST_CASE("v3's checksum covers the pseudo-header: another destination fails it") {
        // A unicast advert checked against the multicast group, as an old
        // keepalived (old_unicast_checksum) would have computed it.
        const auto d = discard_of(decode_bytes(golden_v3_ipv4, src4, v4(10, 0, 0, 2)));
        CHECK(d.reason == DiscardReason::checksum);
        CHECK(d.offset == 6);
        CHECK(discard_of(decode_bytes(golden_v3_ipv6, v6(0xfe80, 2), dst6)).reason ==
              DiscardReason::checksum);
    }
}

TEST_SUITE("vrrp codec: round trips") {
    TEST_CASE("every field of v3 round-trips, both families, 0..max addresses") {
        for (const Family family : {Family::ipv4, Family::ipv6}) {
            const IpAddr src = family == Family::ipv4 ? src4 : src6;
            const IpAddr dst = family == Family::ipv4 ? v4(10, 0, 0, 2) : v6(0xfe80, 2);
            for (std::size_t count :
                 {std::size_t{0}, std::size_t{1}, std::size_t{7}, kMaxAddresses}) {
                for (const centiseconds interval : {1_cs, 100_cs, 4095_cs}) {
                    Advertisement a;
                    a.vrid = static_cast<std::uint8_t>(count + 1);
                    a.priority = static_cast<std::uint8_t>(255 - count);
                    a.advert_interval = interval;
                    for (std::size_t i = 0; i < count; ++i) {
                        const auto n = static_cast<std::uint8_t>(i);
                        REQUIRE(a.addresses.push_back(family == Family::ipv4 ? v4(192, 0, 2, n)
                                                                             : doc6(n)));
                    }
                    const Bytes bytes = encode_bytes(a, src, dst);
                    CHECK(bytes.size() == message_size(Version::v3, family, count));
                    CHECK(expected_checksum(bytes, src, dst) == (bytes[6] << 8 | bytes[7]));
                    CHECK(advert_of(decode_bytes(bytes, src, dst)) == a);
                }
            }
        }
    }

    TEST_CASE("every field of v2 round-trips") {
        for (const auto auth : {AuthType::none, AuthType::simple_text, AuthType::ip_ah}) {
            for (const std::chrono::seconds interval : {1s, 3s, 255s}) {
                for (const int priority : {0, 1, 100, 254, 255}) {
                    auto a = golden_v2_pass_advert();
                    a.auth_type = auth;
                    a.advert_interval = interval;
                    a.priority = static_cast<std::uint8_t>(priority);
                    REQUIRE(a.addresses.push_back(v4(10, 0, 0, 101)));
                    CHECK(advert_of(decode_bytes(encode_bytes(a, src4, dst4), src4, dst4)) == a);
                }
            }
        }
    }

    TEST_CASE("v3's reserved nibble is ignored on reception and sent as zero") {
        Bytes bytes = golden_v3_ipv4;
        bytes[4] |= 0xf0;
        bytes = with_checksum(bytes, src4, dst4);
        const auto advert = advert_of(decode_bytes(bytes, src4, dst4));
        CHECK(advert.advert_interval == 100_cs);
        CHECK(encode_bytes(advert, src4, dst4) == golden_v3_ipv4);
    }

    TEST_CASE("the wire units are in the types") {
        CHECK(centiseconds{MaxAdverInt{4095}} == 40950ms);
        CHECK(centiseconds{AdverInt{255}} == 255s);
    }
}

TEST_SUITE("vrrp codec: malformed input, one case each") {
    TEST_CASE("every truncation of a valid packet is a length error, never a decode") {
        for (const auto& [golden, src, dst] :
             {std::tuple{golden_v2_pass, src4, dst4}, std::tuple{golden_v3_ipv4, src4, dst4},
              std::tuple{golden_v3_ipv6, src6, dst6}}) {
            for (std::size_t n = 0; n < golden.size(); ++n) {
                const Bytes prefix(golden.begin(), golden.begin() + static_cast<std::ptrdiff_t>(n));
                const auto d = discard_of(decode_bytes(prefix, src, dst));
                CHECK(d.reason == DiscardReason::packet_length);
                CHECK(d.offset == n);
            }
        }
    }

    TEST_CASE("a trailing byte is a length error") {
        Bytes bytes = golden_v3_ipv4;
        bytes.push_back(0);
        CHECK(discard_of(decode_bytes(bytes, src4, dst4)).reason == DiscardReason::packet_length);
    }

    TEST_CASE("an address count larger than the payload is a length error") {
        Bytes bytes = golden_v3_ipv4;
        bytes[3] = 2;
        const auto d = discard_of(decode_bytes(bytes, src4, dst4));
        CHECK(d.reason == DiscardReason::packet_length);
        CHECK(d.offset == bytes.size());
    }

    TEST_CASE("a TTL other than 255 is a TTL error, unless told to skip it (unicast)") {
        for (const int ttl : {0, 1, 64, 254}) {
            const auto ttl8 = static_cast<std::uint8_t>(ttl);
            CHECK(discard_of(decode_bytes(golden_v3_ipv4, src4, dst4, ttl8)).reason ==
                  DiscardReason::ip_ttl);
            CHECK(std::holds_alternative<Advertisement>(
                decode_bytes(golden_v3_ipv4, src4, dst4, ttl8, DecodeOptions{.check_ttl = false})));
        }
    }

    TEST_CASE("versions other than 2 and 3 are version errors") {
        for (const int version : {0, 1, 4, 15}) {
            Bytes bytes = golden_v3_ipv4;
            bytes[0] = static_cast<std::uint8_t>(version << 4 | 1);
            CHECK(discard_of(decode_bytes(with_checksum(bytes, src4, dst4), src4, dst4)).reason ==
                  DiscardReason::version);
        }
    }

    TEST_CASE("VRRPv2 over IPv6 is a version error") {
        const Bytes bytes = {0x21, 0x01, 0x64, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        CHECK(discard_of(decode_bytes(bytes, src6, dst6)).reason == DiscardReason::version);
    }

    TEST_CASE("any corrupted byte is a checksum error") {
        for (const auto& [golden, src, dst] :
             {std::tuple{golden_v2_pass, src4, dst4}, std::tuple{golden_v3_ipv4, src4, dst4},
              std::tuple{golden_v3_ipv6, src6, dst6}}) {
            // Byte 0 and 3 decide the layout (version, count); they fail earlier checks.
            for (std::size_t i = 1; i < golden.size(); ++i) {
                if (i == 3) continue;
                Bytes bytes = golden;
                bytes[i] ^= 0x5a;
                const auto d = discard_of(decode_bytes(bytes, src, dst));
                CHECK(d.reason == DiscardReason::checksum);
                CHECK(d.offset == 6);
            }
        }
    }

    TEST_CASE("a type other than 1 (advertisement) is an invalid type") {
        for (const int type : {0, 2, 15}) {
            Bytes bytes = golden_v3_ipv4;
            bytes[0] = static_cast<std::uint8_t>(0x30 | type);
            CHECK(discard_of(decode_bytes(with_checksum(bytes, src4, dst4), src4, dst4)).reason ==
                  DiscardReason::invalid_type);
        }
    }

    TEST_CASE("a v2 auth type above 2 is an invalid auth type") {
        Bytes bytes = golden_v2_none;
        bytes[4] = 3;
        const auto d = discard_of(decode_bytes(with_checksum(bytes, src4, dst4), src4, dst4));
        CHECK(d.reason == DiscardReason::invalid_auth_type);
        CHECK(d.offset == 4);
    }

    TEST_CASE("a zero advertisement interval is an interval error") {
        Bytes v2 = golden_v2_none;
        v2[5] = 0;
        CHECK(discard_of(decode_bytes(with_checksum(v2, src4, dst4), src4, dst4)).reason ==
              DiscardReason::adv_interval);
        Bytes v3 = golden_v3_ipv4;
        v3[4] = 0xf0; // reserved bits set, interval still zero
        v3[5] = 0;
        CHECK(discard_of(decode_bytes(with_checksum(v3, src4, dst4), src4, dst4)).reason ==
              DiscardReason::adv_interval);
    }

    TEST_CASE("more addresses than kMaxAddresses is an address list error") {
        Bytes bytes = {0x21, 0x01, 0x64, static_cast<std::uint8_t>(kMaxAddresses + 1), 0, 1, 0, 0};
        bytes.resize(message_size(Version::v2, Family::ipv4, kMaxAddresses + 1), 7);
        const auto d = discard_of(decode_bytes(with_checksum(bytes, src4, dst4), src4, dst4));
        CHECK(d.reason == DiscardReason::address_list);
        CHECK(d.offset == 3);
    }
}

TEST_SUITE("vrrp codec: encoder refusals") {
    TEST_CASE("a buffer one byte short at every size") {
        const auto advert = golden_v2_pass_advert();
        Bytes out(golden_v2_pass.size());
        for (std::size_t n = 0; n < out.size(); ++n) {
            const auto result = encode(advert, src4, dst4, std::span(out).first(n));
            CHECK(result.error == EncodeError::buffer_too_small);
            CHECK(result.size == 0);
        }
        CHECK(encode(advert, src4, dst4, out).size == out.size());
    }

    TEST_CASE("what the wire cannot carry") {
        Bytes out(kMaxPacketSize);
        auto v2 = golden_v2_none_advert();
        CHECK(encode(v2, src6, dst6, out).error == EncodeError::v2_over_ipv6);
        CHECK(encode(v2, src4, dst6, out).error == EncodeError::address_family);
        v2.advert_interval = 150_cs;
        CHECK(encode(v2, src4, dst4, out).error == EncodeError::interval_not_seconds);
        v2.advert_interval = 256s;
        CHECK(encode(v2, src4, dst4, out).error == EncodeError::interval_range);
        v2.advert_interval = 0s;
        CHECK(encode(v2, src4, dst4, out).error == EncodeError::interval_range);

        auto v3 = advert_v3(1, 100, {v4(10, 0, 0, 100)});
        CHECK(encode(v3, src6, dst6, out).error == EncodeError::address_family);
        v3.advert_interval = 4096_cs;
        CHECK(encode(v3, src4, dst4, out).error == EncodeError::interval_range);
        v3.advert_interval = 0_cs;
        CHECK(encode(v3, src4, dst4, out).error == EncodeError::interval_range);
        v3.advert_interval = 100_cs;
        v3.auth_type = AuthType::simple_text;
        CHECK(encode(v3, src4, dst4, out).error == EncodeError::auth_needs_v2);
    }
}

TEST_SUITE("vrrp codec: discard counters") {
    TEST_CASE("one named counter per reason, bumped by reason") {
        DiscardCounters counters;
        std::set<std::string_view> names;
        for (std::size_t i = 0; i < kDiscardReasonCount; ++i) {
            const auto reason = static_cast<DiscardReason>(i);
            for (std::size_t n = 0; n <= i; ++n)
                counters.bump(reason);
            names.insert(mib_name(reason));
        }
        CHECK(names.size() == kDiscardReasonCount);
        for (std::size_t i = 0; i < kDiscardReasonCount; ++i)
            CHECK(counters[static_cast<DiscardReason>(i)] == i + 1);
        CHECK(counters.checksum_errors == 4);
        CHECK(counters.address_list_errors == 11);
        CHECK(counters.total() == kDiscardReasonCount * (kDiscardReasonCount + 1) / 2);
    }

    TEST_CASE("addresses print as text") {
        CHECK(to_string(v4(192, 168, 1, 100)) == "192.168.1.100");
        CHECK(to_string(kMulticastGroupV6) == "ff02::12");
    }
}
