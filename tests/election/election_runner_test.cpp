// The runner (election/vrrp/runner.hpp) with a FakeTransport on a real io_context: what
// it decodes, counts, reports and sends, and that shutdown says priority 0
// once. 10 ms adverts keep each case to tens of milliseconds. The log
// limiter, being pure, is driven by hand.
#include "election/vrrp/runner.hpp"
#include "vrrp_test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <utility> // Asio 1.18's headers need it first under g++ 12

namespace redvip::election::test {
namespace {

const IpAddr us = v4(10, 77, 0, 1);
const IpAddr peer = v4(10, 77, 0, 2);
const IpAddr stranger = v4(10, 77, 0, 3);
const IpAddr vip = v4(10, 77, 0, 100);

class FakeTransport final : public VrrpTransport {
public:
    void start(DatagramHandler on_datagram) override { handler_ = std::move(on_datagram); }
    SendResult send(const Advertisement& advert) override {
        sent.push_back(advert);
        return fail_sends ? SendResult{0, 1, ENETDOWN} : SendResult{1, 0, 0};
    }
    void close() override { closed = true; }

    // As the socket would: the bytes of `advert` from `source`, TTL `ttl`.
    void deliver(const Advertisement& advert, const IpAddr& source, std::uint8_t ttl = 255,
                 const IpAddr& destination = kMulticastGroupV4) {
        deliver_bytes(encode_bytes(advert, source, destination), source, ttl, destination);
    }
    void deliver_bytes(const Bytes& bytes, const IpAddr& source, std::uint8_t ttl = 255,
                       const IpAddr& destination = kMulticastGroupV4) {
        REQUIRE(handler_);
        if (!closed) handler_(Datagram{bytes, Family::ipv4, source, destination, ttl});
    }

    std::vector<Advertisement> sent;
    bool closed = false;
    bool fail_sends = false;

private:
    DatagramHandler handler_;
};

class Recorder final : public RoleListener {
public:
    void become_master(bool) override {
        events.push_back("master");
        if (on_master) on_master();
    }
    void become_backup(const std::optional<MasterInfo>& m) override {
        events.push_back(m ? "backup " + to_string(m->address) : "backup");
    }
    void enter_fault() override { events.push_back("fault"); }
    void master_changed(const MasterInfo& m) override {
        events.push_back("changed " + to_string(m.address));
    }
    void stopped() override { events.push_back("stopped"); }
    std::vector<std::string> events;
    std::function<void()> on_master;
};

InstanceConfig instance(std::uint8_t priority = 100) {
    InstanceConfig c;
    c.vrid = 51;
    c.priority = priority;
    c.advertisement_interval = 1_cs;
    c.preempt = true;
    REQUIRE(c.addresses.push_back(vip));
    c.primary_address = us;
    return c;
}

struct Fixture {
    boost::asio::io_context io;
    std::shared_ptr<FakeTransport> transport = std::make_shared<FakeTransport>();
    Recorder recorder;
    std::shared_ptr<Election> election;

    explicit Fixture(std::uint8_t priority = 100, std::vector<IpAddr> unicast_peers = {}) {
        auto log = std::make_shared<spdlog::logger>(
            "test", std::make_shared<spdlog::sinks::null_sink_st>());
        election = Election::create(io.get_executor(),
                                    ElectionSettings{instance(priority), "eth0", unicast_peers},
                                    transport, recorder, log);
        election->start();
    }
    // Runs the loop until `done` or a generous bound (a failure, not a hang).
    template <typename F> bool run_until(F done) {
        for (int i = 0; i < 200 && !done(); ++i)
            io.run_for(std::chrono::milliseconds(5));
        return done();
    }
    Advertisement advert(std::uint8_t priority) const { return make_advert(instance(), priority); }
};

} // namespace

TEST_CASE("runner: no master heard, it becomes master and advertises every interval") {
    Fixture f;
    CHECK(f.recorder.events == std::vector<std::string>{"backup"});
    REQUIRE(f.run_until([&] { return f.transport->sent.size() >= 3; }));
    CHECK(f.recorder.events == std::vector<std::string>{"backup", "master"});
    CHECK(f.transport->sent.front() == make_advert(instance(), 100));
    const auto status = f.election->status();
    CHECK(status.state == State::master);
    CHECK(status.counters.adverts_sent == f.transport->sent.size());
}

TEST_CASE("runner: a higher priority advert demotes it; bad packets are counted, not obeyed") {
    Fixture f;
    REQUIRE(f.run_until([&] { return f.election->status().state == State::master; }));
    auto bad = encode_bytes(f.advert(200), peer, kMulticastGroupV4);
    bad[7] ^= 1;
    f.transport->deliver_bytes(bad, peer);                  // checksum
    f.transport->deliver(f.advert(200), peer, 64);          // TTL
    f.transport->deliver(make_advert(instance(), 200), us); // our own address: ignored
    CHECK(f.election->status().state == State::master);
    f.transport->deliver(f.advert(200), peer);
    const auto status = f.election->status();
    CHECK(status.state == State::backup);
    CHECK(f.recorder.events.back() == "backup 10.77.0.2");
    REQUIRE(status.master);
    CHECK(status.master->priority == 200);
    CHECK(status.discards.checksum_errors == 1);
    CHECK(status.discards.ip_ttl_errors == 1);
    CHECK(status.discards.total() == 2);
    CHECK(status.counters.datagrams_received == 4);
    CHECK(status.counters.adverts_accepted == 2);
}

TEST_CASE("runner: shutdown as master sends priority 0 once, then completes once") {
    Fixture f;
    REQUIRE(f.run_until([&] { return f.election->status().state == State::master; }));
    const auto before = f.transport->sent.size();
    int completions = 0;
    f.election->shutdown([&] { ++completions; });
    REQUIRE(f.transport->sent.size() == before + 1);
    CHECK(f.transport->sent.back().priority == kPriorityStop);
    CHECK(f.transport->closed);
    CHECK(f.recorder.events.back() == "stopped");
    f.election->shutdown([&] { ++completions; });
    f.io.run_for(std::chrono::milliseconds(50)); // no timer may fire any more
    CHECK(completions == 2);
    CHECK(f.transport->sent.size() == before + 1);
    CHECK(f.election->status().state == State::initialize);
}

TEST_CASE("runner: fault as master resigns with priority 0; clearing it rejoins as backup") {
    Fixture f;
    REQUIRE(f.run_until([&] { return f.election->status().state == State::master; }));
    f.election->set_fault(true);
    CHECK(f.transport->sent.back().priority == kPriorityStop);
    CHECK(f.recorder.events.back() == "fault");
    const auto sent = f.transport->sent.size();
    f.io.run_for(std::chrono::milliseconds(50));
    CHECK(f.transport->sent.size() == sent); // Fault never advertises
    f.election->set_fault(false);
    CHECK(f.recorder.events.back() == "backup");
    CHECK(f.election->status().state == State::backup);
}

TEST_CASE("runner: a master's new priority is advertised at once") {
    Fixture f;
    REQUIRE(f.run_until([&] { return f.election->status().state == State::master; }));
    f.election->set_priority(90);
    CHECK(f.transport->sent.back().priority == 90);
    CHECK(f.election->status().effective_priority == 90);
    CHECK(f.election->status().base_priority == 100);
}

TEST_CASE("runner: unicast accepts only its peers, and their adverts whatever the TTL") {
    Fixture f(100, {peer});
    f.transport->deliver(f.advert(200), stranger, 255, us);
    CHECK(f.election->status().counters.unknown_peer == 1);
    CHECK(f.recorder.events == std::vector<std::string>{"backup"});
    f.transport->deliver(f.advert(200), peer, 64, us); // routed: keepalived accepts it too
    CHECK(f.recorder.events.back() == "changed 10.77.0.2");
    CHECK(f.election->status().discards.total() == 0);
}

TEST_CASE("runner: an event from inside a listener callback waits for the current one") {
    Fixture f;
    f.recorder.on_master = [&] { f.election->set_fault(true); };
    REQUIRE(f.run_until([&] { return f.recorder.events.size() >= 3; }));
    CHECK(f.recorder.events == std::vector<std::string>{"backup", "master", "fault"});
    CHECK(f.transport->sent.back().priority == kPriorityStop);
}

TEST_CASE("runner: send errors are counted") {
    Fixture f;
    f.transport->fail_sends = true;
    REQUIRE(f.run_until([&] { return f.election->status().counters.send_errors >= 2; }));
    CHECK(f.election->status().counters.adverts_sent == 0);
}

TEST_CASE("runner: released without shutdown, it closes its transport") {
    Fixture f;
    f.election.reset();
    CHECK(f.transport->closed);
    f.io.run_for(std::chrono::milliseconds(50)); // the queued timer finds nothing
}

TEST_CASE("log limiter: one line per key per period, then the number held back") {
    LogLimiter<2> limiter{std::chrono::seconds(10)};
    const TimePoint t0{std::chrono::hours(1)};
    CHECK(limiter.admit(0, t0) == std::optional<std::uint64_t>{0});
    CHECK_FALSE(limiter.admit(0, t0 + 1s));
    CHECK_FALSE(limiter.admit(0, t0 + 9s));
    CHECK(limiter.admit(1, t0 + 9s) == std::optional<std::uint64_t>{0}); // keys are independent
    CHECK(limiter.admit(0, t0 + 10s) == std::optional<std::uint64_t>{2});
    CHECK_FALSE(limiter.admit(0, t0 + 11s));
    CHECK(limiter.admit(0, t0 + 30s) == std::optional<std::uint64_t>{1});
}

} // namespace redvip::election::test
