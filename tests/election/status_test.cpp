// The node status: its JSON builders, the text table and the metric
// families, pure: fixed keys, wall-clock times from a StatusClock, tolerant
// rendering of partial objects, every counter exported.
#include "election/node/status.hpp"
#include "vrrp_test_support.hpp"
#include <map>
#include <set>
#include <string>

using namespace redvip::election;
using namespace redvip::election::test;
using nlohmann::json;

namespace {

// 2024-05-01T12:00:00.000Z on the wall clock is steady 1h + 10 s.
StatusClock clock_at(TimePoint steady_now) {
    return StatusClock{steady_now,
                       std::chrono::system_clock::time_point{std::chrono::seconds{1714564800}}};
}

ControllerConfig config() {
    ControllerConfig c;
    c.self_redis = {boost::asio::ip::make_address("10.0.0.1"), 6379};
    c.peers = {{"b",
                boost::asio::ip::make_address("10.0.0.2"),
                {boost::asio::ip::make_address("10.0.0.2"), 6379}}};
    return c;
}

} // namespace

TEST_CASE("StatusClock maps steady time points onto the wall clock") {
    FakeClock clock;
    const auto c = clock_at(clock.now);
    CHECK(c.format(clock.now) == "2024-05-01T12:00:00.000Z");
    CHECK(c.format(clock.now - 1500ms) == "2024-05-01T11:59:58.500Z");
}

TEST_CASE("the election's part has the issue's keys") {
    FakeClock clock;
    ElectionStatus s;
    s.state = State::master;
    s.base_priority = 100;
    s.effective_priority = 70;
    s.master = MasterInfo{v4(10, 0, 0, 2), 90};
    (void)s.transitions.push_back(
        Transition{clock.now - 2s, State::backup, State::master, Reason::master_down});
    s.discards.bump(DiscardReason::checksum);
    const auto j = election_status(s, clock_at(clock.now));
    CHECK(j["vrrp_state"] == "MASTER");
    CHECK(j["priority"] == 100);
    CHECK(j["effective_priority"] == 70);
    CHECK(j["master"] == json{{"address", "10.0.0.2"}, {"priority", 90}});
    CHECK(j["transitions"][0] == json{{"time", "2024-05-01T11:59:58.000Z"},
                                      {"from", "BACKUP"},
                                      {"to", "MASTER"},
                                      {"reason", "master down"}});
    CHECK(j["discards"][std::string(mib_name(DiscardReason::checksum))] == 1);
    s.state = State::initialize;
    s.master.reset();
    CHECK(election_status(s, clock_at(clock.now))["vrrp_state"] == "INIT");
    CHECK(election_status(s, clock_at(clock.now))["master"].is_null());
}

TEST_CASE("the controller's part: steps, durations, facts, health") {
    FakeClock clock;
    Controller c(config());
    HealthTracker h(redvip::conf::HealthConfig{}, 100);
    const auto step_id = [](const ControllerActions& actions) {
        for (const auto& a : actions)
            if (const auto* r = std::get_if<RunStep>(&a)) return r->id;
        FAIL("no step started");
        return std::uint64_t{0};
    };
    ReplicationFacts f;
    f.role = RedisRole::master;
    f.master_repl_offset = 77;
    auto run = c.on_election(BecomeMaster{}, clock.now);
    c.on_replication(f, clock.now, clock.now); // what CheckPeers reads
    run = c.on_step_done(step_id(run), StepResult::success(), clock.now);
    clock.advance(4ms);
    run = c.on_step_done(step_id(run), StepResult::success(), clock.now);
    clock.advance(6ms);
    c.on_step_done(step_id(run), StepResult::success(), clock.now);
    c.on_replication(f, clock.now, clock.now);

    const auto j = role_status_json(role_status(c, h), clock_at(clock.now));
    CHECK(j["proxy_state"] == "SERVING");
    CHECK(j["vip_held"] == true);
    CHECK(j["redis_role"]["role"] == "master");
    CHECK(j["redis_role"]["master_repl_offset"] == 77);
    CHECK(j["role_goal"] == "master");
    CHECK(j["role_settled"] == true);
    CHECK(j["role_steps"].size() == 5);
    CHECK(j["role_steps"][2]["name"] == "REPLICAOF NO ONE");
    CHECK(j["role_steps"][2]["duration_ms"] == doctest::Approx(4.0));
    CHECK(j["role_last_transition"]["duration_ms"] == doctest::Approx(10.0));
    CHECK(j["role_last_transition"]["time"] == "2024-05-01T11:59:59.990Z");
    CHECK(j["role_transitions"].size() == 1);
    CHECK(j["health"]["ok"] == true);
    CHECK(j["health"]["effective_priority"] == 100);
}

TEST_CASE("the text table shows what is there and skips what is not") {
    FakeClock clock;
    Controller c(config());
    HealthTracker h(redvip::conf::HealthConfig{}, 100);
    c.on_election(BecomeBackup{MasterInfo{v4(10, 0, 0, 2), 100}}, clock.now);
    h.on_refused("connect to 10.0.0.1:6379: Connection refused");
    json status = role_status_json(role_status(c, h), clock_at(clock.now));
    status["vrrp_state"] = "BACKUP";
    status["priority"] = 100;
    status["effective_priority"] = 100;
    status["master"] = {{"address", "10.0.0.2"}, {"priority", 100}};
    status["discards"] = {{"vrrpv3RouterChecksumErrors", 3}, {"vrrpv3RouterVrIdErrors", 0}};
    const auto text = render_status_text(status);
    CHECK(text.find("VRRP state          BACKUP (priority 100, effective 100)") !=
          std::string::npos);
    CHECK(text.find("master              10.0.0.2 (priority 100)") != std::string::npos);
    CHECK(text.find("proxy               FENCED") != std::string::npos);
    CHECK(text.find("role                backup of 10.0.0.2:6379 (in progress)") !=
          std::string::npos);
    CHECK(text.find("VIP release") != std::string::npos);
    CHECK(text.find("health              FAULT: connect to 10.0.0.1:6379: Connection refused") !=
          std::string::npos);
    CHECK(text.find("vrrpv3RouterChecksumErrors 3") != std::string::npos);
    CHECK(text.find("VrIdErrors") == std::string::npos); // zero counts are left out
    CHECK(render_status_text(json::object()).empty());
    CHECK(render_status_text(json{{"vrrp_state", "INIT"}, {"master", nullptr}}).find("INIT") !=
          std::string::npos);
}

namespace {

// The families and samples render_metrics wrote, as "name{labels} value".
struct Recorded {
    std::vector<std::string> families; // "name type"
    std::map<std::string, std::uint64_t> samples;

    MetricsWriter writer() {
        return {[this](std::string_view name, std::string_view type, std::string_view help) {
                    CHECK(!help.empty());
                    families.push_back(std::string(name) + " " + std::string(type));
                },
                [this](std::string_view name, std::string_view labels, std::uint64_t value) {
                    const auto key = labels.empty() ? std::string(name)
                                                    : std::string(name) + "{" + std::string(labels) + "}";
                    CHECK(samples.count(key) == 0); // each sample once
                    samples[key] = value;
                }};
    }
};

} // namespace

TEST_CASE("one node status: every counter in JSON and in metrics") {
    FakeClock clock;
    NodeStatus s;
    s.node = "a";
    s.proxy_state = "SERVING";
    s.election.state = State::backup;
    s.election.base_priority = 100;
    s.election.effective_priority = 90;
    s.election.discards.bump(DiscardReason::checksum);
    s.election.counters = {11, 12, 13, 14, 15};
    s.role.vip_held = true;
    s.role.eligibility = {false, "peer b is 10 bytes ahead", Ineligible::peer_was_newer};
    s.role.divergent_bytes_total = 42;
    s.role.health.consecutive_failed = 2;
    s.vip = {21, 22, 23, 24, 25, 26, 27, 28};
    s.hooks = {31, 32, 33, 34, 35};

    const json j = to_json(s, clock_at(clock.now));
    CHECK(j["node"] == "a");
    CHECK(j["proxy_serving_state"] == "SERVING");
    CHECK(j["vrrp_state"] == "BACKUP");
    CHECK(j["vrrp_counters"] == json{{"datagrams_received", 11}, {"adverts_accepted", 12}, {"adverts_sent", 13},
                                     {"send_errors", 14}, {"unknown_peer", 15}});
    CHECK(j["vip_counters"] == json{{"addresses_added", 21}, {"addresses_removed", 22}, {"garp_sent", 23},
                                    {"na_sent", 24}, {"announce_errors", 25}, {"repairs", 26},
                                    {"link_down", 27}, {"netlink_overruns", 28}});
    CHECK(j["hook_counters"] == json{{"started", 31}, {"succeeded", 32}, {"failed", 33},
                                     {"timed_out", 34}, {"dropped", 35}});
    CHECK(j["divergent_bytes_total"] == 42);
    CHECK(j["vip_held"] == true);

    Recorded r;
    render_metrics(s, r.writer());
    const auto& m = r.samples;
    CHECK(m.at("redvip_vrrp_state{state=\"BACKUP\"}") == 1);
    CHECK(m.at("redvip_vrrp_state{state=\"MASTER\"}") == 0);
    CHECK(m.at("redvip_vrrp_priority{kind=\"effective\"}") == 90);
    CHECK(m.at("redvip_vrrp_discards_total{reason=\"" + std::string(mib_name(DiscardReason::checksum)) +
               "\"}") == 1);
    CHECK(m.at("redvip_eligible{why=\"peer_was_newer\"}") == 0);
    CHECK(m.at("redvip_vip_held") == 1);
    CHECK(m.at("redvip_divergent_bytes_total") == 42);
    CHECK(m.at("redvip_health_consecutive_failed") == 2);
    // Every number of every counter struct appears exactly once.
    std::multiset<std::uint64_t> values;
    for (const auto& [key, value] : m)
        values.insert(value);
    for (std::uint64_t n : {11, 12, 13, 14, 15, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 34, 35})
        CHECK_MESSAGE(values.count(n) == 1, n);
    // Families are declared once each, counters end in _total.
    std::set<std::string> names;
    for (const auto& f : r.families) {
        const auto name = f.substr(0, f.find(' '));
        CHECK(names.insert(name).second);
        if (f.ends_with(" counter"))
            CHECK(name.ends_with("_total"));
    }
}
