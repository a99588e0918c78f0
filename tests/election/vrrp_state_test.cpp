// One VirtualRouter driven by explicit events and a fake clock: every
// transition of RFC 5798 §6.4 (and RFC 3768's v2 timings), plus keepalived's
// Fault and preempt_delay.
#include "vrrp_test_support.hpp"

using namespace redvip::election;
using namespace redvip::election::test;

namespace {

const IpAddr self = v4(10, 0, 0, 5);
const IpAddr lower_peer = v4(10, 0, 0, 2);
const IpAddr higher_peer = v4(10, 0, 0, 9);

InstanceConfig config(std::uint8_t priority, Version version = Version::v3) {
    InstanceConfig c;
    c.version = version;
    c.vrid = 51;
    c.priority = priority;
    c.advertisement_interval = version == Version::v3 ? 100_cs : centiseconds{1s};
    c.preempt = true;
    c.primary_address = self;
    (void)c.addresses.push_back(v4(10, 0, 0, 100));
    return c;
}

AdvertReceived from(const IpAddr& source, std::uint8_t priority, centiseconds interval = 100_cs) {
    return AdvertReceived{source, priority, interval};
}

template <typename T> int count(const Actions& actions) {
    return static_cast<int>(std::count_if(actions.begin(), actions.end(), [](const Action& a) {
        return std::holds_alternative<T>(a);
    }));
}

// The priorities of the adverts the actions ask for, in order.
std::vector<int> sent(const Actions& actions) {
    std::vector<int> out;
    for (const auto& a : actions)
        if (const auto* s = std::get_if<SendAdvert>(&a)) out.push_back(s->priority);
    return out;
}

template <typename T> T only(const Actions& actions) {
    REQUIRE(count<T>(actions) == 1);
    for (const auto& a : actions)
        if (const auto* t = std::get_if<T>(&a)) return *t;
    return T{};
}

// A started Backup at clock.now.
VirtualRouter backup(FakeClock& clock, InstanceConfig c) {
    VirtualRouter r(std::move(c));
    const auto actions = r.handle(Startup{}, clock.now);
    REQUIRE(r.state() == State::backup);
    CHECK(only<BecomeBackup>(actions).master == std::nullopt);
    return r;
}

// A Master at clock.now: started, then its Master_Down_Timer fired.
VirtualRouter master(FakeClock& clock, InstanceConfig c) {
    VirtualRouter r = backup(clock, std::move(c));
    clock.now = *r.next_deadline();
    (void)r.handle_timeout(clock.now);
    REQUIRE(r.state() == State::master);
    return r;
}

} // namespace

TEST_SUITE("vrrp timers") {
    TEST_CASE("RFC 5798 §6.1: Skew_Time and Master_Down_Interval in centiseconds") {
        CHECK(skew_time_v3(100, 100_cs) == 60_cs); // 156 * 100 / 256 = 60.9, truncated
        CHECK(skew_time_v3(255, 100_cs) == 0_cs);
        CHECK(skew_time_v3(1, 100_cs) == 99_cs);
        CHECK(skew_time_v3(200, 35_cs) == 7_cs); // 56 * 35 / 256 = 7.6
        CHECK(master_down_interval_v3(100, 100_cs) == 360_cs);
        CHECK(master_down_interval_v3(254, 4095_cs) == 12285_cs + 31_cs);
    }

    TEST_CASE("RFC 3768 §6.1: v2's Skew_Time is exact in 1/256 s") {
        CHECK(skew_time_v2(100) == skew_unit_v2{156});
        CHECK(Duration{skew_time_v2(100)} == 609375us);
        CHECK(Duration{master_down_interval_v2(100, 1s)} == 3609375us);
        CHECK(Duration{master_down_interval_v2(255, 3s)} == 9s + 3906250ns);
    }

    TEST_CASE("the router's own values follow its version and priority") {
        const VirtualRouter v3(config(100));
        CHECK(v3.skew_time() == 600ms);
        CHECK(v3.master_down_interval() == 3600ms);
        const VirtualRouter v2(config(100, Version::v2));
        CHECK(v2.skew_time() == 609375us);
        CHECK(v2.master_down_interval() == 3609375us);
    }
}

TEST_SUITE("vrrp state machine: Initialize") {
    TEST_CASE("Startup: Backup with the Master_Down_Timer at Master_Down_Interval") {
        FakeClock clock;
        VirtualRouter r(config(100));
        CHECK(r.state() == State::initialize);
        CHECK(r.next_deadline() == std::nullopt);
        const auto actions = r.handle(Startup{}, clock.now);
        CHECK(actions.size() == 1);
        CHECK(only<BecomeBackup>(actions).master == std::nullopt);
        CHECK(r.state() == State::backup);
        CHECK(r.next_deadline() == clock.now + 3600ms);
        REQUIRE(r.history().size() == 1);
        CHECK(r.history()[0] ==
              Transition{clock.now, State::initialize, State::backup, Reason::startup});
    }

    TEST_CASE("the address owner (255) sends an advert and is Master at once") {
        FakeClock clock;
        VirtualRouter r(config(kPriorityOwner));
        const auto actions = r.handle(Startup{}, clock.now);
        CHECK(sent(actions) == std::vector<int>{255});
        CHECK(count<BecomeMaster>(actions) == 1);
        CHECK(std::holds_alternative<SendAdvert>(actions[0])); // advert first, as the RFC lists
        CHECK(r.state() == State::master);
        CHECK(r.next_deadline() == clock.now + 1s);
        CHECK(r.history()[0].reason == Reason::address_owner);
    }

    TEST_CASE("nothing but Startup and health moves it") {
        FakeClock clock;
        VirtualRouter r(config(100));
        CHECK(r.handle(from(higher_peer, 200), clock.now).empty());
        CHECK(r.handle(Shutdown{}, clock.now).empty());
        CHECK(r.handle_timeout(clock.now + 1h).empty());
        CHECK(r.handle(PriorityChanged{150}, clock.now).empty());
        CHECK(r.priority() == 150);
        CHECK(r.state() == State::initialize);
    }
}

TEST_SUITE("vrrp state machine: Backup") {
    TEST_CASE("lost adverts: takeover at Master_Down_Interval exactly, not before") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        clock.advance(1s);
        (void)r.handle(from(higher_peer, 200), clock.now);
        const TimePoint deadline = clock.now + 3600ms;
        CHECK(r.next_deadline() == deadline);
        CHECK(r.handle_timeout(deadline - 1ns).empty());
        CHECK(r.state() == State::backup);
        const auto actions = r.handle_timeout(deadline);
        CHECK(sent(actions) == std::vector<int>{100});
        CHECK(count<BecomeMaster>(actions) == 1);
        CHECK(r.state() == State::master);
        CHECK(r.next_deadline() == deadline + 1s);
        CHECK(r.history().size() == 2);
        CHECK(r.history()[1].reason == Reason::master_down);
    }

    TEST_CASE("each advert from the master restarts the Master_Down_Timer") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        for (int i = 0; i < 10; ++i) {
            clock.advance(1s);
            CHECK(r.handle_timeout(clock.now).empty());
            (void)r.handle(from(higher_peer, 200), clock.now);
            CHECK(r.next_deadline() == clock.now + 3600ms);
        }
        CHECK(r.state() == State::backup);
        CHECK(r.last_master() == MasterInfo{higher_peer, 200});
    }

    TEST_CASE("preempt: a lower master's adverts are discarded and we take over") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(200));
        const TimePoint deadline = *r.next_deadline(); // 3 s + 21 cs
        clock.advance(1s);
        CHECK(r.handle(from(lower_peer, 100), clock.now).size() == 1); // MasterChanged only
        CHECK(r.next_deadline() == deadline);
        CHECK(r.last_master() == MasterInfo{lower_peer, 100});
        const auto actions = r.handle_timeout(deadline);
        // The lower master still advertises: the controller asks it to hand
        // the role over rather than take it from a live master.
        CHECK(only<BecomeMaster>(actions).preempting);
        CHECK(r.history().back().reason == Reason::preempt);
    }

    TEST_CASE("a lower master that went silent is replaced, not preempted") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(200));
        (void)r.handle(from(lower_peer, 100), clock.now);
        clock.advance(10s); // silent past Master_Down_Interval
        const auto actions = r.handle_timeout(clock.now);
        CHECK_FALSE(only<BecomeMaster>(actions).preempting);
        CHECK(r.history().back().reason == Reason::master_down);
    }

    TEST_CASE("no preempt: a lower master is followed for as long as it speaks") {
        FakeClock clock;
        auto c = config(200);
        c.preempt = false;
        VirtualRouter r = backup(clock, c);
        for (int i = 0; i < 20; ++i) {
            clock.advance(1s);
            CHECK(r.handle_timeout(clock.now).empty());
            (void)r.handle(from(lower_peer, 100), clock.now);
        }
        CHECK(r.state() == State::backup);
    }

    TEST_CASE("preempt with an equal priority: no preemption (RFC: greater than or equal)") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        clock.advance(1s);
        (void)r.handle(from(lower_peer, 100), clock.now);
        CHECK(r.next_deadline() == clock.now + 3600ms);
    }

    TEST_CASE("priority 0: the Master_Down_Timer is set to Skew_Time") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        clock.advance(1s);
        (void)r.handle(from(higher_peer, 200), clock.now);
        clock.advance(500ms);
        CHECK(r.handle(from(higher_peer, kPriorityStop), clock.now).empty());
        CHECK(r.next_deadline() == clock.now + 600ms);
        CHECK(r.last_master() == MasterInfo{higher_peer, 0});
        clock.advance(600ms);
        const auto actions = r.handle_timeout(clock.now);
        CHECK(count<BecomeMaster>(actions) == 1);
        CHECK(r.history().size() == 2);
        CHECK(r.history()[1].reason == Reason::master_resigned);
    }

    TEST_CASE("v3: a Backup learns the master's interval") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        (void)r.handle(from(higher_peer, 200, 35_cs), clock.now);
        CHECK(r.master_adver_interval() == 35_cs);
        CHECK(r.skew_time() == 210ms);             // 156 * 35 / 256 = 21 cs
        CHECK(r.master_down_interval() == 1260ms); // 3 * 35 + 21 cs
        CHECK(r.next_deadline() == clock.now + 1260ms);
        // Once Master it sends at its own interval again.
        clock.now = *r.next_deadline();
        (void)r.handle_timeout(clock.now);
        CHECK(r.next_deadline() == clock.now + 1s);
    }

    TEST_CASE("v2: the interval is ours, the timer exact to the 1/256 s") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100, Version::v2));
        CHECK(r.next_deadline() == clock.now + 3609375us);
        (void)r.handle(from(higher_peer, 200, 100_cs), clock.now);
        CHECK(r.next_deadline() == clock.now + 3609375us);
    }

    TEST_CASE("preempt_delay: a lower master is followed until the delay has run") {
        FakeClock clock;
        auto c = config(200);
        c.preempt_delay = 10s;
        VirtualRouter r = backup(clock, c);
        const TimePoint first = clock.now + 1s;
        for (int k = 0; k <= 12; ++k) {
            clock.now = first + std::chrono::seconds{k};
            CHECK(r.handle_timeout(clock.now).empty());
            (void)r.handle(from(lower_peer, 100), clock.now);
        }
        // Adverts at first+0..9 s were followed; from first+10 s on they are
        // discarded, so the timer set at first+9 s fires 3.21 s later.
        CHECK(r.next_deadline() == first + 9s + 3210ms);
        clock.now = *r.next_deadline();
        CHECK(count<BecomeMaster>(r.handle_timeout(clock.now)) == 1);
    }

    TEST_CASE("preempt_delay: a master at least as high cancels the delay") {
        FakeClock clock;
        auto c = config(200);
        c.preempt_delay = 5s;
        VirtualRouter r = backup(clock, c);
        (void)r.handle(from(lower_peer, 100), clock.now); // delay runs to now + 5 s
        clock.advance(4s);
        (void)r.handle(from(higher_peer, 250), clock.now); // cancelled
        clock.advance(2s);
        (void)r.handle(from(lower_peer, 100), clock.now); // restarts: followed
        CHECK(r.next_deadline() == clock.now + 3210ms);
        clock.advance(4s);
        (void)r.handle(from(lower_peer, 100), clock.now); // still within 5 s: followed
        CHECK(r.next_deadline() == clock.now + 3210ms);
        clock.advance(1s);
        const auto before = r.next_deadline();
        (void)r.handle(from(lower_peer, 100), clock.now); // delay over: discarded
        CHECK(r.next_deadline() == before);
    }

    TEST_CASE("a lower router's claim during the election does not replace the known master") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(150));
        CHECK(only<MasterChanged>(r.handle(from(higher_peer, 200), clock.now)).master ==
              MasterInfo{higher_peer, 200});
        clock.advance(100ms);
        CHECK(r.handle(from(lower_peer, 100), clock.now).empty()); // discarded, not noted
        CHECK(r.last_master() == MasterInfo{higher_peer, 200});
        CHECK(r.handle(from(higher_peer, 200), clock.now).empty()); // same master: no news
    }

    TEST_CASE("our own advert, looped back, is ignored") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        const auto deadline = r.next_deadline();
        CHECK(r.handle(from(self, 250), clock.now).empty());
        CHECK(r.next_deadline() == deadline);
    }
}

TEST_SUITE("vrrp state machine: Master") {
    TEST_CASE("the Adver_Timer sends an advert every Advertisement_Interval") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        for (int i = 0; i < 5; ++i) {
            CHECK(r.handle_timeout(clock.now + 999ms).empty());
            clock.advance(1s);
            CHECK(sent(r.handle_timeout(clock.now)) == std::vector<int>{100});
            CHECK(r.next_deadline() == clock.now + 1s);
        }
    }

    TEST_CASE("a higher priority makes it Backup, following that master") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        clock.advance(300ms);
        const auto actions = r.handle(from(higher_peer, 200, 50_cs), clock.now);
        CHECK(actions.size() == 1);
        CHECK(only<BecomeBackup>(actions).master == MasterInfo{higher_peer, 200});
        CHECK(r.state() == State::backup);
        CHECK(r.master_adver_interval() == 50_cs);
        CHECK(r.next_deadline() == clock.now + 1800ms); // 3 * 50 + 156 * 50 / 256 = 150 + 30 cs
        CHECK(r.history().back() ==
              Transition{clock.now, State::master, State::backup, Reason::higher_priority});
    }

    TEST_CASE("equal priority: the higher primary address wins") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        CHECK(r.handle(from(lower_peer, 100), clock.now).empty()); // discarded, no reply
        CHECK(r.state() == State::master);
        const auto actions = r.handle(from(higher_peer, 100), clock.now);
        CHECK(count<BecomeBackup>(actions) == 1);
        CHECK(r.history().size() == 3);
        CHECK(r.history()[2].reason == Reason::higher_address);
    }

    TEST_CASE("a lower priority is answered at once (keepalived) and the Master stays") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(200));
        clock.advance(400ms);
        CHECK(sent(r.handle(from(higher_peer, 100), clock.now)) == std::vector<int>{200});
        CHECK(r.next_deadline() == clock.now + 1s);
        CHECK(r.state() == State::master);
    }

    TEST_CASE("priority 0 from another: send an advert and reset the Adver_Timer") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        clock.advance(400ms);
        CHECK(sent(r.handle(from(higher_peer, kPriorityStop), clock.now)) == std::vector<int>{100});
        CHECK(r.next_deadline() == clock.now + 1s);
    }

    TEST_CASE("a changed priority is advertised at once; 0 is raised to 1") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        clock.advance(300ms);
        CHECK(sent(r.handle(PriorityChanged{80}, clock.now)) == std::vector<int>{80});
        CHECK(r.next_deadline() == clock.now + 1s);
        CHECK(r.handle(PriorityChanged{80}, clock.now).empty());
        CHECK(sent(r.handle(PriorityChanged{0}, clock.now)) == std::vector<int>{1});
        CHECK(r.priority() == 1);
        CHECK(r.state() == State::master); // a master only yields to a higher advert
    }

    TEST_CASE("Shutdown: priority 0, then Initialize; a restart starts over as Backup") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        const auto actions = r.handle(Shutdown{}, clock.now);
        CHECK(sent(actions) == std::vector<int>{0});
        CHECK(count<EnterInitialize>(actions) == 1);
        CHECK(r.state() == State::initialize);
        CHECK(r.next_deadline() == std::nullopt);
        clock.advance(5s);
        (void)r.handle(Startup{}, clock.now);
        CHECK(r.state() == State::backup);
        CHECK(r.next_deadline() == clock.now + 3600ms);
    }
}

TEST_SUITE("vrrp state machine: Fault") {
    TEST_CASE("Backup -> Fault: no timer, no adverts; the master is still tracked") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        CHECK(count<EnterFault>(r.handle(HealthChanged{true}, clock.now)) == 1);
        CHECK(r.state() == State::fault);
        CHECK(r.next_deadline() == std::nullopt);
        const auto actions = r.handle(from(higher_peer, 200), clock.now);
        CHECK(only<MasterChanged>(actions).master == MasterInfo{higher_peer, 200});
        CHECK(sent(actions).empty());
        CHECK(r.handle(HealthChanged{true}, clock.now).empty());
        CHECK(r.handle(PriorityChanged{90}, clock.now).empty());
    }

    TEST_CASE("Master -> Fault sends priority 0 first, so a Backup takes over in Skew_Time") {
        FakeClock clock;
        VirtualRouter r = master(clock, config(100));
        const auto actions = r.handle(HealthChanged{true}, clock.now);
        CHECK(sent(actions) == std::vector<int>{0});
        CHECK(count<EnterFault>(actions) == 1);
        CHECK(r.next_deadline() == std::nullopt);
        CHECK(r.handle_timeout(clock.now + 1h).empty());
    }

    TEST_CASE("a master heard before this router's own mastership is a new master when heard again") {
        // A pair's history: b was master (priority 200), went silent, we took
        // over; then we resign (Fault) and b takes the role back at the same
        // priority. That advert must say so, or the controller never learns
        // that b is master (a switchover back would never complete).
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        CHECK(only<MasterChanged>(r.handle(from(higher_peer, 200), clock.now)).master ==
              MasterInfo{higher_peer, 200});
        clock.now = *r.next_deadline(); // b went silent
        CHECK(count<BecomeMaster>(r.handle_timeout(clock.now)) == 1);
        CHECK(r.last_master() == std::nullopt);
        clock.advance(30s);
        (void)r.handle(HealthChanged{true}, clock.now);
        REQUIRE(r.state() == State::fault);
        CHECK(only<MasterChanged>(r.handle(from(higher_peer, 200), clock.now)).master ==
              MasterInfo{higher_peer, 200});
    }

    TEST_CASE("recovery: Backup again, following the master heard meanwhile") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        (void)r.handle(HealthChanged{true}, clock.now);
        clock.advance(1s);
        (void)r.handle(from(higher_peer, 200), clock.now);
        const auto actions = r.handle(HealthChanged{false}, clock.now);
        CHECK(only<BecomeBackup>(actions).master == MasterInfo{higher_peer, 200});
        CHECK(r.state() == State::backup);
        CHECK(r.next_deadline() == clock.now + 3600ms);
        CHECK(r.history().back().reason == Reason::fault_cleared);
    }

    TEST_CASE("a fault known before Startup starts in Fault; the owner recovers to Master") {
        FakeClock clock;
        VirtualRouter r(config(kPriorityOwner));
        CHECK(r.handle(HealthChanged{true}, clock.now).empty());
        CHECK(count<EnterFault>(r.handle(Startup{}, clock.now)) == 1);
        CHECK(r.fault());
        const auto actions = r.handle(HealthChanged{false}, clock.now);
        CHECK(sent(actions) == std::vector<int>{255});
        CHECK(r.state() == State::master);
    }

    TEST_CASE("Shutdown from Fault or Backup goes to Initialize") {
        FakeClock clock;
        VirtualRouter r = backup(clock, config(100));
        CHECK(count<EnterInitialize>(r.handle(Shutdown{}, clock.now)) == 1);
        CHECK(r.next_deadline() == std::nullopt);
        (void)r.handle(HealthChanged{true}, clock.now);
        (void)r.handle(Startup{}, clock.now);
        CHECK(r.state() == State::fault);
        CHECK(count<EnterInitialize>(r.handle(Shutdown{}, clock.now)) == 1);
    }
}

TEST_SUITE("vrrp state machine: history") {
    TEST_CASE("the last kHistorySize transitions, oldest first") {
        FakeClock clock;
        VirtualRouter r(config(100));
        (void)r.handle(Startup{}, clock.now);
        for (int i = 0; i < 20; ++i) {
            clock.advance(1s);
            (void)r.handle(HealthChanged{i % 2 == 0}, clock.now);
        }
        const auto h = r.history();
        REQUIRE(h.size() == kHistorySize);
        for (std::size_t i = 1; i < h.size(); ++i)
            CHECK(h[i - 1].at < h[i].at);
        CHECK(h[h.size() - 1].at == clock.now);
        CHECK(h[h.size() - 1].to == State::backup);
    }
}
