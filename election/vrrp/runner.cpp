#include "election/vrrp/runner.hpp"

#include "election/vrrp/conf.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>
#include <fmt/format.h>

namespace redvip::election {

namespace {

std::string describe(const std::optional<MasterInfo>& master) {
    if (!master) return "none heard";
    return fmt::format("{} priority {}", to_string(master->address), master->priority);
}

template <typename... Fs> struct Overloaded : Fs... { using Fs::operator()...; };
template <typename... Fs> Overloaded(Fs...) -> Overloaded<Fs...>;

} // namespace

std::shared_ptr<Election> Election::create(boost::asio::any_io_executor executor,
                                           ElectionSettings settings,
                                           std::shared_ptr<VrrpTransport> transport,
                                           RoleListener& listener,
                                           std::shared_ptr<spdlog::logger> log) {
    return std::make_shared<Election>(Private{}, std::move(executor), std::move(settings),
                                      std::move(transport), listener, std::move(log));
}

Election::Election(Private, boost::asio::any_io_executor executor, ElectionSettings settings,
                   std::shared_ptr<VrrpTransport> transport, RoleListener& listener,
                   std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings))
    , router_(settings_.instance)
    , transport_(std::move(transport))
    , listener_(listener)
    , log_(std::move(log))
    , timer_(std::move(executor)) {}

Election::~Election() {
    // Without shutdown() the owner gives up silently: no priority 0, but the
    // socket stops receiving so its queued handler finds nothing to feed.
    transport_->close();
}

void Election::start() {
    if (started_ || stopped_) return;
    started_ = true;
    // A weak reference: datagrams that arrive after the owner let go are dropped.
    transport_->start([weak = weak_from_this()](const Datagram& d) {
        if (auto self = weak.lock()) self->on_datagram(d);
    });
    log_->info("VRRPv{} VRID {} on {} from {}{}: priority {}, advert interval {} ms",
               static_cast<int>(settings_.instance.version), settings_.instance.vrid,
               settings_.interface, to_string(settings_.instance.primary_address),
               settings_.unicast_peers.empty() ? "" : " (unicast)", settings_.instance.priority,
               std::chrono::milliseconds(settings_.instance.advertisement_interval).count());
    feed(Startup{});
}

void Election::shutdown(std::function<void()> completion) {
    if (!stopped_) {
        stopped_ = true;
        if (started_) feed(Shutdown{}); // a Master sends priority 0 here, synchronously
        transport_->close();
        timer_.cancel();
        armed_for_.reset();
    }
    boost::asio::post(timer_.get_executor(), std::move(completion));
}

void Election::set_fault(bool fault) {
    submit(HealthChanged{fault});
}

void Election::set_priority(std::uint8_t effective) {
    submit(PriorityChanged{effective});
}

// A listener that answers become_master() with set_fault() would otherwise
// run the new event in the middle of the old one's actions: it waits its turn.
void Election::submit(const Event& event) {
    if (stopped_) return;
    if (!executing_) return feed(event);
    boost::asio::post(timer_.get_executor(), [weak = weak_from_this(), event] {
        if (auto self = weak.lock(); self && !self->stopped_) self->feed(event);
    });
}

// --- Receiving ----------------------------------------------------------------

void Election::on_datagram(const Datagram& d) {
    if (stopped_) return;
    ++counters_.datagrams_received;
    // keepalived accepts unicast adverts only from its unicast_peer list; a
    // stranger must not be able to demote us by claiming a higher priority.
    if (!settings_.unicast_peers.empty() &&
        std::find(settings_.unicast_peers.begin(), settings_.unicast_peers.end(), d.source) ==
            settings_.unicast_peers.end()) {
        ++counters_.unknown_peer;
        if (auto held = limiter_.admit(kKeyUnknownPeer, std::chrono::steady_clock::now()))
            log_->warn("discarded VRRP packet from {}: not a unicast peer ({} more not logged)",
                       to_string(d.source), *held);
        return;
    }
    // keepalived checks the TTL only for multicast: a unicast peer may be routed.
    const auto decoded = decode(d, DecodeOptions{settings_.unicast_peers.empty()});
    if (const auto* bad = std::get_if<Discard>(&decoded)) return discard(*bad, d.source);
    const auto& advert = std::get<Advertisement>(decoded);
    if (auto bad = check_for_instance(advert, settings_.instance)) return discard(*bad, d.source);
    ++counters_.adverts_accepted;
    feed(AdvertReceived::from(advert, d.source));
}

void Election::discard(const Discard& discard, const IpAddr& source) {
    discards_.bump(discard.reason);
    const auto key = static_cast<std::size_t>(discard.reason);
    if (auto held = limiter_.admit(key, std::chrono::steady_clock::now()))
        log_->warn("discarded VRRP packet from {}: {} at byte {}, {} ({} more not logged)",
                   to_string(source), discard.detail, discard.offset, mib_name(discard.reason),
                   *held);
}

// --- The state machine and its timer -------------------------------------------

void Election::feed(const Event& event) {
    execute(router_.handle(event, std::chrono::steady_clock::now()));
    arm_timer();
}

void Election::arm_timer() {
    const auto deadline = router_.next_deadline();
    if (deadline == armed_for_) return;
    armed_for_ = deadline;
    if (!deadline) {
        timer_.cancel();
        return;
    }
    timer_.expires_at(*deadline); // cancels the previous wait: it sees operation_aborted
    timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto self = weak.lock()) self->on_timer(ec);
    });
}

void Election::on_timer(boost::system::error_code ec) {
    if (ec || stopped_) return;
    // A wait that completed just before a re-arm may still run here: the
    // router ignores a timeout before its deadline, and arm_timer() re-arms.
    armed_for_.reset();
    execute(router_.handle_timeout(std::chrono::steady_clock::now()));
    arm_timer();
}

// --- Actions ----------------------------------------------------------------------

void Election::execute(const Actions& actions) {
    const bool outer = std::exchange(executing_, true); // shutdown() may nest here
    for (const auto& action : actions)
        execute_one(action);
    executing_ = outer;
}

void Election::execute_one(const Action& action) {
    std::visit(Overloaded{
                   [&](const SendAdvert& a) { send_advert(a.priority); },
                   [&](const BecomeMaster& a) {
                       log_transition();
                       listener_.become_master(a.preempting);
                   },
                   [&](const BecomeBackup& a) {
                       log_transition();
                       listener_.become_backup(a.master);
                   },
                   [&](const EnterFault&) {
                       log_transition();
                       listener_.enter_fault();
                   },
                   [&](const EnterInitialize&) {
                       log_transition();
                       listener_.stopped();
                   },
                   [&](const MasterChanged& a) {
                       log_->info("master is now {}", describe(a.master));
                       listener_.master_changed(a.master);
                   },
               },
               action);
}

void Election::send_advert(std::uint8_t priority) {
    const auto result = transport_->send(make_advert(settings_.instance, priority));
    counters_.adverts_sent += result.sent;
    counters_.send_errors += result.failed;
    if (result.failed == 0) return;
    if (auto held = limiter_.admit(kKeySendError, std::chrono::steady_clock::now()))
        log_->error("sending a VRRP advert (priority {}) failed for {} of {} destinations: {} "
                    "({} more not logged)",
                    priority, result.failed, result.failed + result.sent,
                    std::strerror(result.error), *held);
}

void Election::log_transition() {
    if (router_.history().empty()) return;
    const auto& t = router_.history().back();
    log_->info("{} -> {} ({}); master: {}", to_string(t.from), to_string(t.to), to_string(t.reason),
               t.to == State::master ? std::string("this node") : describe(router_.last_master()));
}

ElectionStatus Election::status() const {
    ElectionStatus s;
    const auto& config = router_.config();
    s.state = router_.state();
    s.base_priority = config.priority;
    s.effective_priority = router_.priority();
    s.fault = router_.fault();
    s.version = config.version;
    s.vrid = config.vrid;
    s.interface = settings_.interface;
    s.unicast = !settings_.unicast_peers.empty();
    s.primary_address = config.primary_address;
    s.master = router_.last_master();
    s.master_adver_interval = router_.master_adver_interval();
    s.skew_time = router_.skew_time();
    s.master_down_interval = router_.master_down_interval();
    s.transitions = router_.history();
    s.discards = discards_;
    s.counters = counters_;
    return s;
}

// --- From the configuration ---------------------------------------------------------

std::variant<ElectionSettings, std::string> settings_from_config(const conf::Config& config) {
    if (!config.vrrp) return "no [vrrp] section";
    if (!config.vip || config.vip->addresses.empty()) return "[vrrp] needs [vip] addresses";
    const auto& vrrp = *config.vrrp;
    std::vector<IpAddr> vips;
    for (const auto& prefix : config.vip->addresses)
        vips.push_back(to_ip_addr(prefix.address));
    IpAddr primary;
    if (vrrp.unicast_src) {
        primary = to_ip_addr(*vrrp.unicast_src);
    } else {
        auto found = interface_primary_address(vrrp.interface, vips.front().family, vips);
        if (auto* error = std::get_if<std::string>(&found)) return *error;
        primary = std::get<IpAddr>(found);
    }
    auto instance = make_instance_config(vrrp, config.vip->addresses, primary);
    if (auto* error = std::get_if<std::string>(&instance)) return *error;
    ElectionSettings settings{std::get<InstanceConfig>(std::move(instance)), vrrp.interface, {}};
    for (const auto& peer : vrrp.unicast_peers)
        settings.unicast_peers.push_back(to_ip_addr(peer));
    return settings;
}

std::variant<std::shared_ptr<Election>, std::string>
make_election(boost::asio::any_io_executor executor, const conf::Config& config,
              RoleListener& listener, std::shared_ptr<spdlog::logger> log) {
    auto settings = settings_from_config(config);
    if (auto* error = std::get_if<std::string>(&settings)) return *error;
    auto& s = std::get<ElectionSettings>(settings);
    auto socket = VrrpSocket::open(
        executor, SocketConfig{s.interface, s.instance.primary_address, s.unicast_peers});
    if (auto* error = std::get_if<std::string>(&socket)) return *error;
    return Election::create(std::move(executor), std::move(s),
                            std::get<std::shared_ptr<VrrpSocket>>(std::move(socket)), listener,
                            std::move(log));
}

} // namespace redvip::election
