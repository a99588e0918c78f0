// From conf/'s VrrpConfig (Boost addresses) to the core's InstanceConfig.
#include "election/vrrp/conf.hpp"
#include "vrrp_test_support.hpp"

using namespace redvip::election;
using namespace redvip::election::test;
using boost::asio::ip::make_address;
namespace conf = redvip::conf;

namespace {

conf::VrrpConfig base() {
    conf::VrrpConfig v;
    v.version = 3;
    v.interface = "eth0";
    v.virtual_router_id = 51;
    v.priority = 150;
    v.advert_interval = std::chrono::milliseconds{500};
    v.preempt = true;
    v.preempt_delay = std::chrono::milliseconds{30000};
    return v;
}

std::vector<conf::Prefix> vips(std::initializer_list<const char*> texts) {
    std::vector<conf::Prefix> out;
    for (const char* t : texts)
        out.push_back(conf::Prefix{make_address(t), 24});
    return out;
}

std::string error_of(const std::variant<InstanceConfig, std::string>& r) {
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
}

} // namespace

TEST_SUITE("vrrp conf conversion") {
    TEST_CASE("addresses convert both ways") {
        for (const char* text : {"10.1.2.3", "255.255.255.255", "fe80::1", "2001:db8::abcd"}) {
            const auto boost = make_address(text);
            CHECK(to_boost(to_ip_addr(boost)) == boost);
            CHECK(to_string(to_ip_addr(boost)) == text);
        }
        CHECK(to_ip_addr(make_address("10.0.0.1")) == v4(10, 0, 0, 1));
    }

    TEST_CASE("a v3 instance") {
        const auto r =
            make_instance_config(base(), vips({"10.0.0.100", "10.0.0.101"}), v4(10, 0, 0, 1));
        REQUIRE(std::holds_alternative<InstanceConfig>(r));
        const auto& c = std::get<InstanceConfig>(r);
        CHECK(c.version == Version::v3);
        CHECK(c.vrid == 51);
        CHECK(c.priority == 150);
        CHECK(c.advertisement_interval == 50_cs);
        CHECK(c.preempt);
        CHECK(c.preempt_delay == 30s);
        CHECK(c.auth_type == AuthType::none);
        CHECK(c.addresses.size() == 2);
        CHECK(c.family == Family::ipv4);
        CHECK(c.primary_address == v4(10, 0, 0, 1));
    }

    TEST_CASE("a v2 instance with a password") {
        auto v = base();
        v.version = 2;
        v.advert_interval = std::chrono::milliseconds{2000};
        v.auth_pass = "s3cret";
        const auto r = make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1));
        REQUIRE(std::holds_alternative<InstanceConfig>(r));
        const auto& c = std::get<InstanceConfig>(r);
        CHECK(c.auth_type == AuthType::simple_text);
        CHECK(c.auth_data == AuthData{'s', '3', 'c', 'r', 'e', 't', 0, 0});
        CHECK(c.advertisement_interval == 2s);
    }

    TEST_CASE("what cannot make one virtual router") {
        auto v = base();
        CHECK_FALSE(
            error_of(make_instance_config(v, vips({"10.0.0.100", "fd00::1"}), v4(10, 0, 0, 1)))
                .empty());
        v.version = 2;
        CHECK_FALSE(error_of(make_instance_config(v, vips({"fd00::1"}), v6(0xfe80, 1))).empty());
        CHECK_FALSE(error_of(make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1)))
                        .empty()); // 500 ms
        v = base();
        v.advert_interval = std::chrono::milliseconds{15};
        CHECK_FALSE(
            error_of(make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1))).empty());
        v.advert_interval = std::chrono::milliseconds{40960};
        CHECK_FALSE(
            error_of(make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1))).empty());
        // Strings built, not assigned from literals: g++ 12's -Wrestrict
        // false positive on std::string::operator=(const char*) (GCC bug 105329).
        v = base();
        v.auth_pass = std::string(1, 'x');
        CHECK_FALSE(
            error_of(make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1))).empty());
        v.version = 2;
        v.advert_interval = std::chrono::milliseconds{1000};
        v.auth_pass = std::string(kAuthDataSize + 1, 'x');
        CHECK_FALSE(
            error_of(make_instance_config(v, vips({"10.0.0.100"}), v4(10, 0, 0, 1))).empty());
        std::vector<conf::Prefix> many;
        for (std::size_t i = 0; i <= kMaxAddresses; ++i)
            many.push_back(conf::Prefix{
                boost::asio::ip::address_v4(static_cast<std::uint32_t>(0x0a000000 + i)), 8});
        v = base();
        CHECK_FALSE(error_of(make_instance_config(v, many, v4(10, 0, 0, 1))).empty());
    }
}
