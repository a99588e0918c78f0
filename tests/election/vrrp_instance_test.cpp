// The second validation layer: is a well-formed advert for this virtual router?
#include "election/vrrp/instance.hpp"
#include "vrrp_test_support.hpp"

using namespace redvip::election;
using namespace redvip::election::test;

namespace {

InstanceConfig v2_config() {
    InstanceConfig c;
    c.version = Version::v2;
    c.vrid = 7;
    c.advertisement_interval = 1s;
    c.auth_type = AuthType::simple_text;
    c.auth_data = {'p', 'w', 0, 0, 0, 0, 0, 0};
    REQUIRE(c.addresses.push_back(v4(10, 0, 0, 100)));
    REQUIRE(c.addresses.push_back(v4(10, 0, 0, 101)));
    c.primary_address = v4(10, 0, 0, 1);
    return c;
}

InstanceConfig v3_config() {
    InstanceConfig c = v2_config();
    c.version = Version::v3;
    c.auth_type = AuthType::none;
    c.auth_data = {};
    return c;
}

std::optional<DiscardReason> reason(const Advertisement& a, const InstanceConfig& c) {
    const auto d = check_for_instance(a, c);
    return d ? std::optional{d->reason} : std::nullopt;
}

} // namespace

TEST_SUITE("vrrp instance check") {
    TEST_CASE("our own advert is for us, whatever the address order") {
        for (const auto& config : {v2_config(), v3_config()}) {
            auto advert = make_advert(config, 100);
            CHECK_FALSE(check_for_instance(advert, config));
            std::swap(advert.addresses[0], advert.addresses[1]);
            CHECK_FALSE(check_for_instance(advert, config));
        }
    }

    TEST_CASE("make_advert carries the config and the priority asked for") {
        const auto advert = make_advert(v2_config(), 0);
        CHECK(advert.priority == 0);
        CHECK(advert.vrid == 7);
        CHECK(advert.auth_type == AuthType::simple_text);
        CHECK(advert.addresses == v2_config().addresses);
        CHECK(make_advert(v3_config(), 1).auth_type == AuthType::none);
    }

    TEST_CASE("another version") {
        CHECK(reason(make_advert(v3_config(), 100), v2_config()) == DiscardReason::version);
    }

    TEST_CASE("another VRID") {
        auto advert = make_advert(v3_config(), 100);
        advert.vrid = 8;
        CHECK(reason(advert, v3_config()) == DiscardReason::vrid);
    }

    TEST_CASE("v2: another auth type") {
        auto advert = make_advert(v2_config(), 100);
        advert.auth_type = AuthType::none;
        CHECK(reason(advert, v2_config()) == DiscardReason::auth_type_mismatch);
        advert.auth_type = AuthType::ip_ah; // we never speak AH
        CHECK(reason(advert, v2_config()) == DiscardReason::auth_type_mismatch);
    }

    TEST_CASE("v2: a wrong password, at any byte") {
        for (std::size_t i = 0; i < kAuthDataSize; ++i) {
            auto advert = make_advert(v2_config(), 100);
            advert.auth_data[i] ^= 1;
            const auto d = check_for_instance(advert, v2_config());
            REQUIRE(d);
            CHECK(d->reason == DiscardReason::auth_failure);
            CHECK(d->offset == 16); // after the two addresses
        }
    }

    TEST_CASE("v2 without auth ignores the auth data (RFC 3768 §5.3.10)") {
        auto config = v2_config();
        config.auth_type = AuthType::none;
        config.auth_data = {};
        auto advert = make_advert(config, 100);
        advert.auth_data = {1, 2, 3, 4, 5, 6, 7, 8};
        CHECK_FALSE(check_for_instance(advert, config));
    }

    TEST_CASE("v2: another advertisement interval is dropped") {
        auto advert = make_advert(v2_config(), 100);
        advert.advert_interval = 2s;
        CHECK(reason(advert, v2_config()) == DiscardReason::adv_interval);
    }

    TEST_CASE("v3: another interval is fine, a Backup learns it") {
        auto advert = make_advert(v3_config(), 100);
        advert.advert_interval = 35_cs;
        CHECK_FALSE(check_for_instance(advert, v3_config()));
    }

    TEST_CASE("another address list is dropped, in both versions") {
        for (const auto& config : {v2_config(), v3_config()}) {
            auto fewer = make_advert(config, 100);
            fewer.addresses.clear();
            REQUIRE(fewer.addresses.push_back(v4(10, 0, 0, 100)));
            CHECK(reason(fewer, config) == DiscardReason::address_list);

            auto other = make_advert(config, 100);
            other.addresses[1] = v4(10, 0, 0, 102);
            CHECK(reason(other, config) == DiscardReason::address_list);

            auto more = make_advert(config, 100);
            REQUIRE(more.addresses.push_back(v4(10, 0, 0, 102)));
            CHECK(reason(more, config) == DiscardReason::address_list);
        }
    }
}
