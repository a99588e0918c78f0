// The election runner: one VRRP virtual router on the network. It owns the
// pure VirtualRouter (state.hpp), a transport (socket.hpp) and ONE
// steady_timer armed from next_deadline(); it decodes and checks every
// datagram (packet.hpp, then instance.hpp), counts every discard by
// reason and logs it rate-limited, feeds the router, sends the adverts it
// asks for and reports every other action to a RoleListener. It never
// touches Redis, the VIP or the proxy: whoever owns it does, through the
// listener (docs/style.md: components never include each other).
#pragma once

#include "conf/config.hpp"
#include "election/log_limiter.hpp"
#include "election/vrrp/socket.hpp"
#include "election/vrrp/state.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <spdlog/logger.h>
#include <string>
#include <utility> // Asio 1.18's headers need it first under g++ 12
#include <variant>
#include <vector>

namespace redvip::election {

// Told what the election decided, on the election's executor, once per
// action and in the order the state machine gave them. The listener must
// outlive the Election; it must not destroy the Election from a callback.
// It may call set_fault() / set_priority() from one: the event is posted and
// handled after the current one's actions.
class RoleListener {
public:
    virtual ~RoleListener() = default;
    // `preempting`: a lower-priority master still advertises (BecomeMaster).
    virtual void become_master(bool preempting) = 0;
    // `master`: the router whose adverts we follow, when one was heard within
    // a Master_Down_Interval (replicate from it).
    virtual void become_backup(const std::optional<MasterInfo>& master) = 0;
    virtual void enter_fault() = 0;
    // While Backup or Fault, adverts now come from another master.
    virtual void master_changed(const MasterInfo& master) = 0;
    // Initialize again after shutdown(): release everything.
    virtual void stopped() = 0;
};

struct ElectionSettings {
    InstanceConfig instance;
    std::string interface;             // for the status and logs
    std::vector<IpAddr> unicast_peers; // empty: multicast; else adverts only from these
};

// Counters of the runner itself; discards by reason are in DiscardCounters.
struct ElectionCounters {
    std::uint64_t datagrams_received = 0; // everything the transport handed over
    std::uint64_t adverts_accepted = 0;   // passed both checks and went to the router
    std::uint64_t adverts_sent = 0;       // one per destination the kernel accepted
    std::uint64_t send_errors = 0;        // one per destination it refused
    std::uint64_t unknown_peer = 0;       // unicast mode: from an address not in unicast_peers

    friend bool operator==(const ElectionCounters&, const ElectionCounters&) = default;
};

// A snapshot for `redvip status` and metrics.
struct ElectionStatus {
    State state = State::initialize;
    std::uint8_t base_priority = 0;      // configured
    std::uint8_t effective_priority = 0; // after set_priority()
    bool fault = false;
    Version version = Version::v3;
    std::uint8_t vrid = 0;
    std::string interface;
    bool unicast = false;
    IpAddr primary_address;
    std::optional<MasterInfo> master; // the other router last followed: address, priority
    centiseconds master_adver_interval{0};
    Duration skew_time{0};
    Duration master_down_interval{0};
    History transitions; // oldest first
    DiscardCounters discards;
    ElectionCounters counters;
};

class Election : public std::enable_shared_from_this<Election> {
public:
    // A discard reason, an unknown unicast peer or a send error logs at most
    // one line per this period (with the number held back).
    static constexpr std::chrono::seconds kLogPeriod{10};

    static std::shared_ptr<Election> create(boost::asio::any_io_executor executor,
                                            ElectionSettings settings,
                                            std::shared_ptr<VrrpTransport> transport,
                                            RoleListener& listener,
                                            std::shared_ptr<spdlog::logger> log);
    ~Election();
    Election(const Election&) = delete;
    Election& operator=(const Election&) = delete;

    // Starts receiving and sends Startup (Initialize -> Backup, or Master at 255).
    void start();
    // Graceful stop: a Master sends priority 0 once (RFC 5798 §6.4.3), the
    // listener hears stopped(), the transport closes; then `completion` is
    // posted, exactly once. Later calls only post their completion.
    void shutdown(std::function<void()> completion);
    // true: the local Redis cannot serve (Fault; a Master resigns with
    // priority 0 first); false: it can again (Fault -> Backup).
    void set_fault(bool fault);
    // The effective priority (base minus a health weight); 0 counts as 1.
    void set_priority(std::uint8_t effective);
    ElectionStatus status() const;

    // Public for make_shared only; use create().
    struct Private {};
    Election(Private, boost::asio::any_io_executor executor, ElectionSettings settings,
             std::shared_ptr<VrrpTransport> transport, RoleListener& listener,
             std::shared_ptr<spdlog::logger> log);

private:
    // Log keys: one per DiscardReason, then these.
    static constexpr std::size_t kKeyUnknownPeer = kDiscardReasonCount;
    static constexpr std::size_t kKeySendError = kDiscardReasonCount + 1;
    using Limiter = LogLimiter<kDiscardReasonCount + 2>;

    void on_datagram(const Datagram& datagram);
    void discard(const Discard& discard, const IpAddr& source);
    void submit(const Event& event);
    void feed(const Event& event);
    void on_timer(boost::system::error_code ec);
    void execute(const Actions& actions);
    void execute_one(const Action& action);
    void send_advert(std::uint8_t priority);
    void log_transition();
    void arm_timer();

    ElectionSettings settings_;
    VirtualRouter router_;
    std::shared_ptr<VrrpTransport> transport_;
    RoleListener& listener_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::steady_timer timer_;
    std::optional<TimePoint> armed_for_;
    DiscardCounters discards_;
    ElectionCounters counters_;
    Limiter limiter_{kLogPeriod};
    bool started_ = false;
    bool stopped_ = false;
    bool executing_ = false; // inside a listener callback: new events are posted
};

// Everything make_election needs to know from conf::Config, resolved at
// start: the primary address (vrrp.unicast_src, or the interface's, see
// interface_primary_address) and the instance. An error sentence when the
// [vrrp] and [vip] sections cannot make one virtual router here.
std::variant<ElectionSettings, std::string> settings_from_config(const conf::Config& config);

// settings_from_config, then the raw socket on `executor`, then the Election
// (not started). Needs CAP_NET_RAW.
std::variant<std::shared_ptr<Election>, std::string>
make_election(boost::asio::any_io_executor executor, const conf::Config& config,
              RoleListener& listener, std::shared_ptr<spdlog::logger> log);

} // namespace redvip::election
