// A simulated LAN for VirtualRouters: every advert goes through the real
// encoder, a multicast "wire" with a fixed latency, the real decoder and the
// real instance check, all on a simulated clock. No sockets, no sleeping: a
// minute of VRRP runs in microseconds.
#pragma once

#include "election/vrrp/instance.hpp"
#include "election/vrrp/state.hpp"
#include "vrrp_test_support.hpp"

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace redvip::election::test {

class Lan {
public:
    struct Node {
        InstanceConfig config;
        std::optional<VirtualRouter> router; // nullopt: not running
        DiscardCounters discards;
        std::optional<MasterInfo> following; // as told by BecomeBackup / MasterChanged
        int adverts_sent = 0;
    };

    explicit Lan(Duration latency = 1ms) : latency_(latency) {}

    std::size_t add(InstanceConfig config) {
        nodes_.push_back(Node{std::move(config), std::nullopt, {}, std::nullopt, 0});
        return nodes_.size() - 1;
    }
    Node& node(std::size_t i) { return nodes_[i]; }
    VirtualRouter& router(std::size_t i) { return *nodes_[i].router; }
    TimePoint now() const { return now_; }

    void start(std::size_t i) {
        nodes_[i].router.emplace(nodes_[i].config);
        apply(i, nodes_[i].router->handle(Startup{}, now_));
    }
    void crash(std::size_t i) { nodes_[i].router.reset(); } // gone without a word
    void shutdown(std::size_t i) {
        apply(i, nodes_[i].router->handle(Shutdown{}, now_));
        nodes_[i].router.reset();
    }
    void event(std::size_t i, const Event& e) { apply(i, nodes_[i].router->handle(e, now_)); }

    // Adverts from `from` no longer reach `to` (and back with heal()).
    void cut(std::size_t from, std::size_t to) { cut_.insert({from, to}); }
    void heal() { cut_.clear(); }

    // Runs the clock to `until`. `on_quiet` is called at every instant after
    // which nothing is in flight: the settled points of the election.
    void run_until(TimePoint until, const std::function<void()>& on_quiet = {}) {
        while (auto next = next_event()) {
            if (*next > until) break;
            now_ = *next;
            fire_timers();
            deliver_due();
            if (in_flight_.empty() && on_quiet) on_quiet();
        }
        now_ = until;
    }
    void run_for(Duration d, const std::function<void()>& on_quiet = {}) {
        run_until(now_ + d, on_quiet);
    }

    std::vector<std::size_t> masters() const {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].router && nodes_[i].router->state() == State::master) out.push_back(i);
        return out;
    }

    // Runs for `d`, counting settled points without exactly one master.
    int run_counting_split(Duration d) {
        int bad = 0;
        run_for(d, [&] { bad += masters().size() == 1 ? 0 : 1; });
        return bad;
    }

private:
    struct Packet {
        TimePoint at;
        std::size_t from = 0;
        std::size_t to = 0;
        Bytes bytes;
    };

    static IpAddr group_of(Family family) {
        return family == Family::ipv4 ? kMulticastGroupV4 : kMulticastGroupV6;
    }

    std::optional<TimePoint> next_event() const {
        std::optional<TimePoint> next;
        auto consider = [&](TimePoint t) {
            if (!next || t < *next) next = t;
        };
        for (const auto& n : nodes_)
            if (n.router && n.router->next_deadline()) consider(*n.router->next_deadline());
        for (const auto& p : in_flight_)
            consider(p.at);
        return next;
    }

    // Timers before deliveries at the same instant: two routers whose timers
    // fire together both become Master before either hears the other.
    void fire_timers() {
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].router) apply(i, nodes_[i].router->handle_timeout(now_));
    }

    void deliver_due() {
        std::vector<Packet> due;
        std::erase_if(in_flight_, [&](Packet& p) {
            if (p.at > now_) return false;
            due.push_back(std::move(p));
            return true;
        });
        for (const auto& p : due)
            deliver(p);
    }

    void deliver(const Packet& p) {
        Node& to = nodes_[p.to];
        if (!to.router) return;
        const IpAddr& src = nodes_[p.from].config.primary_address;
        const auto decoded = decode(Datagram{p.bytes, src.family, src, group_of(src.family), 255});
        if (const auto* bad = std::get_if<Discard>(&decoded)) return to.discards.bump(bad->reason);
        const auto& advert = std::get<Advertisement>(decoded);
        if (const auto bad = check_for_instance(advert, to.config))
            return to.discards.bump(bad->reason);
        apply(p.to, to.router->handle(AdvertReceived::from(advert, src), now_));
    }

    void apply(std::size_t i, const Actions& actions) {
        for (const auto& action : actions) {
            if (const auto* send = std::get_if<SendAdvert>(&action)) multicast(i, send->priority);
            if (const auto* b = std::get_if<BecomeBackup>(&action)) nodes_[i].following = b->master;
            if (const auto* m = std::get_if<MasterChanged>(&action))
                nodes_[i].following = m->master;
        }
    }

    void multicast(std::size_t from, std::uint8_t priority) {
        const auto& config = nodes_[from].config;
        const Bytes bytes = encode_bytes(make_advert(config, priority), config.primary_address,
                                         group_of(config.family));
        ++nodes_[from].adverts_sent;
        for (std::size_t to = 0; to < nodes_.size(); ++to)
            if (to != from && !cut_.contains({from, to}))
                in_flight_.push_back(Packet{now_ + latency_, from, to, bytes});
    }

    Duration latency_;
    TimePoint now_{std::chrono::hours{1}};
    std::vector<Node> nodes_;
    std::vector<Packet> in_flight_;
    std::set<std::pair<std::size_t, std::size_t>> cut_;
};

} // namespace redvip::election::test
