// The health tracker, pure: keepalived's rise/fall/weight, refused
// connections counted at once, and the controller's fault combined in.
#include "election/role/health.hpp"
#include "vrrp_test_support.hpp"

using namespace redvip::election;

namespace {

redvip::conf::HealthConfig health(int rise, int fall, int weight) {
    redvip::conf::HealthConfig c;
    c.rise = rise;
    c.fall = fall;
    c.weight = weight;
    return c;
}

std::optional<bool> fault_event(const HealthEvents& events) {
    for (const auto& e : events)
        if (const auto* h = std::get_if<HealthChanged>(&e)) return h->fault;
    return std::nullopt;
}

std::optional<int> priority_event(const HealthEvents& events) {
    for (const auto& e : events)
        if (const auto* p = std::get_if<PriorityChanged>(&e)) return p->priority;
    return std::nullopt;
}

} // namespace

TEST_CASE("weight 0: fall failures in a row enter Fault, rise successes leave it") {
    HealthTracker h(health(2, 3, 0), 100);
    CHECK(h.on_check(false, "timed out").empty());
    CHECK(h.on_check(false, "timed out").empty());
    CHECK(fault_event(h.on_check(false, "timed out")) == true);
    CHECK(h.fault());
    CHECK(h.last_error() == "timed out");
    CHECK(h.on_check(false).empty()); // already failing: no repeat
    CHECK(h.on_check(true).empty());
    CHECK(fault_event(h.on_check(true)) == false);
    CHECK_FALSE(h.fault());
    CHECK(h.effective_priority() == 100); // weight 0 never touches the priority
}

TEST_CASE("a success between failures starts the count again") {
    HealthTracker h(health(1, 2, 0), 100);
    CHECK(h.on_check(false).empty());
    CHECK(h.on_check(true).empty());
    CHECK(h.on_check(false).empty());
    CHECK(fault_event(h.on_check(false)) == true);
    CHECK(h.consecutive_failed() == 2);
}

TEST_CASE("rise needs successes in a row while failing") {
    HealthTracker h(health(3, 1, 0), 100);
    h.on_check(false);
    h.on_check(true);
    h.on_check(true);
    CHECK(h.on_check(false).empty());
    h.on_check(true);
    h.on_check(true);
    CHECK(fault_event(h.on_check(true)) == false);
}

TEST_CASE("a negative weight lowers the priority instead of a Fault") {
    HealthTracker h(health(1, 2, -30), 100);
    h.on_check(false);
    const auto events = h.on_check(false);
    CHECK(priority_event(events) == 70);
    CHECK(fault_event(events) == std::nullopt);
    CHECK_FALSE(h.fault());
    CHECK(h.effective_priority() == 70);
    CHECK(priority_event(h.on_check(true)) == 100);
}

TEST_CASE("the weight never takes the priority below 1 (0 means leaving)") {
    HealthTracker h(health(1, 1, -254), 100);
    CHECK(priority_event(h.on_check(false)) == 1);
}

TEST_CASE("a refused connection counts as fall failures at once") {
    HealthTracker h(health(3, 5, 0), 100);
    CHECK(fault_event(h.on_refused("Connection refused")) == true);
    CHECK(h.consecutive_failed() == 5);
    CHECK(h.on_refused("Connection refused").empty());
    h.on_check(true);
    h.on_check(true);
    CHECK(h.on_refused("Connection refused").empty()); // resets the rise count
    h.on_check(true);
    h.on_check(true);
    CHECK(fault_event(h.on_check(true)) == false);
}

TEST_CASE("a refused connection with a weight lowers the priority at once") {
    HealthTracker h(health(2, 3, -50), 150);
    CHECK(priority_event(h.on_refused("Connection refused")) == 100);
}

TEST_CASE("the controller's fault is a Fault whatever the weight, combined with checks") {
    HealthTracker h(health(1, 1, -10), 100);
    CHECK(fault_event(h.on_role_fault(true, "REPLICAOF NO ONE failed 3 times")) == true);
    CHECK(h.role_fault_reason() == "REPLICAOF NO ONE failed 3 times");
    CHECK(fault_event(h.on_role_fault(false, "")) == false);

    HealthTracker z(health(1, 1, 0), 100);
    CHECK(fault_event(z.on_check(false)) == true);
    CHECK(z.on_role_fault(true, "x").empty()); // already in Fault
    CHECK(z.on_role_fault(false, "").empty()); // still failing checks
    CHECK(z.fault());
    CHECK(fault_event(z.on_check(true)) == false);
}

TEST_CASE("the link is one input: coming back clears only its own part") {
    SUBCASE("link down, then up: Fault, then healthy") {
        HealthTracker h(health(2, 3, 0), 100);
        CHECK(fault_event(h.on_link(false, "carrier lost")) == true);
        CHECK(h.link_down_reason() == "interface down: carrier lost");
        CHECK(fault_event(h.on_link(true)) == false);
        CHECK_FALSE(h.fault());
    }
    SUBCASE("link down, Redis refused, link up: still Fault until the checks rise") {
        HealthTracker h(health(2, 3, 0), 100);
        CHECK(fault_event(h.on_link(false, "down")) == true);
        CHECK(h.on_refused("Connection refused").empty()); // already in Fault
        CHECK(h.on_link(true).empty());                   // the checks still fail
        CHECK(h.fault());
        CHECK(h.on_check(true).empty());
        CHECK(fault_event(h.on_check(true)) == false);
    }
    SUBCASE("checks recover while the link is down: still Fault until it is up") {
        HealthTracker h(health(1, 1, 0), 100);
        CHECK(fault_event(h.on_check(false, "timed out")) == true);
        CHECK(h.on_link(false, "down").empty());
        CHECK(h.on_check(true).empty());
        CHECK(h.fault());
        CHECK(fault_event(h.on_link(true)) == false);
    }
    SUBCASE("a role fault held across the link coming back") {
        HealthTracker h(health(1, 1, 0), 100);
        CHECK(fault_event(h.on_role_fault(true, "handed the master role away")) == true);
        CHECK(h.on_link(false, "down").empty());
        CHECK(h.on_link(true).empty());
        CHECK(h.fault());
        CHECK(fault_event(h.on_role_fault(false, "")) == false);
    }
    SUBCASE("with a weight, the link is a Fault all the same") {
        HealthTracker h(health(1, 1, -20), 100);
        CHECK(fault_event(h.on_link(false, "down")) == true);
        CHECK(h.effective_priority() == 100);
    }
}
