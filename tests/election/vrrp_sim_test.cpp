// Two and three VirtualRouters on a simulated LAN (vrrp_sim.hpp): adverts
// through the real codec, a simulated clock, and exactly one master at every
// settled point once the election is over.
#include "vrrp_sim.hpp"

using namespace redvip::election;
using namespace redvip::election::test;

namespace {

InstanceConfig node(std::uint8_t priority, std::uint8_t host, bool preempt = true) {
    InstanceConfig c;
    c.version = Version::v3;
    c.vrid = 51;
    c.priority = priority;
    c.advertisement_interval = 100_cs;
    c.preempt = preempt;
    c.primary_address = v4(10, 0, 0, host);
    (void)c.addresses.push_back(v4(10, 0, 0, 100));
    return c;
}

InstanceConfig node_v2(std::uint8_t priority, std::uint8_t host, const char* password) {
    InstanceConfig c = node(priority, host);
    c.version = Version::v2;
    c.auth_type = AuthType::simple_text;
    for (std::size_t i = 0; password[i] != '\0' && i < kAuthDataSize; ++i)
        c.auth_data[i] = static_cast<std::uint8_t>(password[i]);
    return c;
}

InstanceConfig node_v6(std::uint8_t priority, std::uint16_t host) {
    InstanceConfig c = node(priority, 1);
    c.family = Family::ipv6;
    c.primary_address = v6(0xfe80, host);
    c.addresses.clear();
    (void)c.addresses.push_back(v6(0xfd00, 0x100));
    return c;
}

State state(Lan& lan, std::size_t i) {
    return lan.router(i).state();
}

} // namespace

TEST_SUITE("vrrp on a simulated LAN: two routers") {
    TEST_CASE("simultaneous start: the higher priority wins at its Master_Down_Interval") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        const TimePoint t0 = lan.now();
        CHECK(lan.run_counting_split(60s) <= 1); // none before the first timer fires
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.router(high).history().back().at == t0 + 3210ms);
        CHECK(lan.node(low).following == MasterInfo{v4(10, 0, 0, 1), 200});
        CHECK(lan.node(low).adverts_sent == 0);
        CHECK(lan.node(high).discards.total() + lan.node(low).discards.total() == 0);
        CHECK(lan.run_counting_split(10min) == 0);
    }

    TEST_CASE("simultaneous start with equal priorities: the higher address wins") {
        Lan lan;
        const auto a = lan.add(node(100, 1));
        const auto b = lan.add(node(100, 2));
        lan.start(a);
        lan.start(b);
        lan.run_for(3600ms);
        CHECK(lan.masters().size() == 2); // both timers fired before either advert arrived
        lan.run_for(10ms);
        CHECK(lan.masters() == std::vector<std::size_t>{b});
        CHECK(lan.router(a).history().back().reason == Reason::higher_address);
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("preemption: a higher router joining later takes over") {
        Lan lan;
        const auto low = lan.add(node(100, 2));
        const auto high = lan.add(node(200, 1));
        lan.start(low);
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        lan.start(high);
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.node(low).following == MasterInfo{v4(10, 0, 0, 1), 200});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("no preemption: the router joining later stays Backup") {
        Lan lan;
        const auto low = lan.add(node(100, 2));
        const auto high = lan.add(node(200, 1, false));
        lan.start(low);
        lan.run_for(10s);
        lan.start(high);
        CHECK(lan.run_counting_split(10min) == 0);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
    }

    TEST_CASE("preempt_delay: the higher router waits before taking over") {
        Lan lan;
        const auto low = lan.add(node(100, 2));
        auto config = node(200, 1);
        config.preempt_delay = 30s;
        const auto high = lan.add(config);
        lan.start(low);
        lan.run_for(10s);
        lan.start(high);
        lan.run_for(29s);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("lost adverts: the Backup takes over Master_Down_Interval after the last one") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        lan.run_for(30s);
        // Its last advert set the Backup's timer to arrival + Master_Down_Interval.
        const TimePoint deadline = *lan.router(low).next_deadline();
        lan.crash(high);
        lan.run_until(deadline - 1ns);
        CHECK(lan.masters().empty());
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        CHECK(lan.router(low).history().back().at == deadline);
        CHECK(lan.router(low).history().back().reason == Reason::master_down);
    }

    TEST_CASE("lost adverts on one path: both become Master, and one again once it heals") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        lan.run_for(10s);
        lan.cut(high, low);
        lan.run_for(10s);
        CHECK(lan.masters().size() == 2);
        lan.heal();
        lan.run_for(2s);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("graceful shutdown: priority 0, the Backup takes over after Skew_Time") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        lan.run_for(30s);
        const TimePoint stopped = lan.now();
        lan.shutdown(high);
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        const auto& took_over = lan.router(low).history().back();
        CHECK(took_over.reason == Reason::master_resigned);
        CHECK(took_over.at == stopped + 1ms + 600ms); // latency + Skew_Time(100)
    }

    TEST_CASE("a master that restarts gets its role back (preempt) after the Backup covered") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        lan.run_for(30s);
        lan.crash(high);
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        lan.start(high);
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(state(lan, low) == State::backup);
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("v3: a peer with another interval is learnt, and timed by it") {
        Lan lan;
        auto fast = node(200, 1);
        fast.advertisement_interval = 20_cs;
        const auto master = lan.add(fast);
        const auto backup = lan.add(node(100, 2));
        lan.start(master);
        lan.start(backup);
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{master});
        CHECK(lan.router(backup).master_adver_interval() == 20_cs);
        CHECK(lan.router(backup).master_down_interval() == 720ms); // 3 * 20 + 156 * 20 / 256 cs
        const TimePoint crashed = lan.now();
        lan.crash(master);
        lan.run_for(2s);
        CHECK(lan.masters() == std::vector<std::size_t>{backup});
        CHECK(lan.router(backup).history().back().at - crashed < 720ms);
    }

    TEST_CASE("the address owner (255) is Master from its first advert") {
        Lan lan;
        const auto other = lan.add(node(200, 2));
        lan.start(other);
        lan.run_for(10s);
        const auto owner = lan.add(node(kPriorityOwner, 1));
        lan.start(owner);
        lan.run_for(10ms);
        CHECK(lan.masters() == std::vector<std::size_t>{owner});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("fault and recovery: the faulty Master hands over in Skew_Time, then preempts back") {
        Lan lan;
        const auto high = lan.add(node(200, 1));
        const auto low = lan.add(node(100, 2));
        lan.start(high);
        lan.start(low);
        lan.run_for(30s);
        lan.event(high, HealthChanged{true});
        lan.run_for(700ms);
        CHECK(lan.masters() == std::vector<std::size_t>{low});
        CHECK(state(lan, high) == State::fault);
        lan.run_for(1min);
        CHECK(state(lan, high) == State::fault);
        CHECK(lan.node(high).following == MasterInfo{v4(10, 0, 0, 2), 100});
        lan.event(high, HealthChanged{false});
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("a health weight lowers the Master below the Backup: the Backup preempts") {
        Lan lan;
        const auto a = lan.add(node(150, 1));
        const auto b = lan.add(node(120, 2));
        lan.start(a);
        lan.start(b);
        lan.run_for(30s);
        lan.event(a, PriorityChanged{100});
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{b});
        CHECK(lan.run_counting_split(5min) == 0);
        lan.event(a, PriorityChanged{150});
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{a});
    }

    TEST_CASE("v2 with a password: the pair agrees; a wrong password is counted and ignored") {
        Lan lan;
        const auto high = lan.add(node_v2(200, 1, "secret"));
        const auto low = lan.add(node_v2(100, 2, "secret"));
        lan.start(high);
        lan.start(low);
        CHECK(lan.run_counting_split(1min) <= 1);
        CHECK(lan.masters() == std::vector<std::size_t>{high});
        CHECK(lan.router(high).history().back().at - lan.router(high).history()[0].at ==
              3s + 218750us); // Skew_Time(200) = 56/256 s
        const auto intruder = lan.add(node_v2(250, 3, "guess"));
        lan.start(intruder);
        lan.run_for(10s);
        CHECK(lan.node(low).discards.auth_failures > 0);
        CHECK(lan.node(intruder).discards.auth_failures > 0);
        CHECK(state(lan, low) == State::backup);
    }

    TEST_CASE("v3 over IPv6") {
        Lan lan;
        const auto a = lan.add(node_v6(100, 1));
        const auto b = lan.add(node_v6(100, 2));
        lan.start(a);
        lan.start(b);
        lan.run_for(1min);
        CHECK(lan.masters() == std::vector<std::size_t>{b});
        CHECK(lan.node(a).following == MasterInfo{v6(0xfe80, 2), 100});
        CHECK(lan.run_counting_split(5min) == 0);
    }

    TEST_CASE("another cluster reusing the VRID is ignored (address list)") {
        Lan lan;
        const auto ours = lan.add(node(100, 1));
        auto theirs = node(250, 9);
        theirs.addresses[0] = v4(10, 0, 0, 200);
        const auto other = lan.add(theirs);
        lan.start(ours);
        lan.start(other);
        lan.run_for(1min);
        CHECK(state(lan, ours) == State::master);
        CHECK(lan.node(ours).discards.address_list_errors > 0);
    }
}

TEST_SUITE("vrrp on a simulated LAN: three routers") {
    TEST_CASE("simultaneous start, master crash, restart: always one settled master") {
        Lan lan;
        const auto a = lan.add(node(200, 1));
        const auto b = lan.add(node(150, 2));
        const auto c = lan.add(node(100, 3));
        lan.start(a);
        lan.start(b);
        lan.start(c);
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{a});
        CHECK(lan.run_counting_split(2min) == 0);

        lan.crash(a);
        lan.run_for(5s); // b's Master_Down_Interval (3.41 s) ends before c's (3.6 s)
        CHECK(lan.masters() == std::vector<std::size_t>{b});
        CHECK(lan.node(c).following == MasterInfo{v4(10, 0, 0, 2), 150});
        CHECK(lan.node(c).adverts_sent == 0);
        CHECK(lan.run_counting_split(2min) == 0);

        lan.start(a);
        lan.run_for(5s);
        CHECK(lan.masters() == std::vector<std::size_t>{a});
        CHECK(lan.node(c).following == MasterInfo{v4(10, 0, 0, 1), 200});
        CHECK(lan.run_counting_split(2min) == 0);
    }

    TEST_CASE("equal priorities: the highest address wins, then the next on its crash") {
        Lan lan;
        const auto a = lan.add(node(100, 1));
        const auto b = lan.add(node(100, 2));
        const auto c = lan.add(node(100, 3));
        for (auto i : {a, b, c})
            lan.start(i);
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{c});
        CHECK(lan.run_counting_split(1min) == 0);
        lan.shutdown(c);
        lan.run_for(10s);
        CHECK(lan.masters() == std::vector<std::size_t>{b});
        CHECK(lan.run_counting_split(1min) == 0);
    }

    TEST_CASE("a staggered start under no-preempt keeps the first master") {
        Lan lan;
        const auto a = lan.add(node(100, 1, false));
        const auto b = lan.add(node(200, 2, false));
        const auto c = lan.add(node(150, 3, false));
        lan.start(a);
        lan.run_for(5s);
        lan.start(b);
        lan.run_for(1s);
        lan.start(c);
        CHECK(lan.run_counting_split(5min) == 0);
        CHECK(lan.masters() == std::vector<std::size_t>{a});
    }
}
