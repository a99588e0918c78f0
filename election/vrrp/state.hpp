// The VRRP state machine of one virtual router: RFC 5798 §6 (v3) and RFC 3768
// §6 (v2), plus keepalived's Fault state and preempt_delay. Pure: it is a
// function of (state, event, now) that returns actions; it reads no clock
// and arms no timer: the adapter asks next_deadline() and calls
// handle_timeout(now) when it passes (docs/style.md, practice 7).
#pragma once

#include "election/bounded_vector.hpp"
#include "election/vrrp/instance.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

namespace redvip::election {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = TimePoint::duration;

// RFC 3768's Skew_Time is (256 - Priority)/256 seconds: exact in this unit.
using skew_unit_v2 = std::chrono::duration<std::int64_t, std::ratio<1, 256>>;

// RFC 5798 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, in centiseconds.
constexpr centiseconds skew_time_v3(std::uint8_t priority, centiseconds master_adver_interval) {
    return centiseconds{(256 - priority) * master_adver_interval.count() / 256};
}
// RFC 5798 §6.1: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time.
constexpr centiseconds master_down_interval_v3(std::uint8_t priority,
                                               centiseconds master_adver_interval) {
    return 3 * master_adver_interval + skew_time_v3(priority, master_adver_interval);
}
// RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256, in seconds.
constexpr skew_unit_v2 skew_time_v2(std::uint8_t priority) {
    return skew_unit_v2{256 - priority};
}
// RFC 3768 §6.1: Master_Down_Interval = (3 * Advertisement_Interval) + Skew_Time.
constexpr skew_unit_v2 master_down_interval_v2(std::uint8_t priority,
                                               std::chrono::seconds advertisement_interval) {
    return 3 * advertisement_interval + skew_time_v2(priority);
}

enum class State : std::uint8_t { initialize, backup, master, fault };
std::string_view to_string(State state);

// Events.
struct Startup {};
struct Shutdown {}; // graceful: a Master says priority 0 so a Backup takes over after Skew_Time
struct HealthChanged {
    bool fault = false; // true: the local Redis cannot serve
};
struct PriorityChanged {
    std::uint8_t priority = 0; // the new effective priority; 0 is raised to 1 (0 means leaving)
};
// An advert that passed decode() and check_for_instance().
struct AdvertReceived {
    IpAddr source;
    std::uint8_t priority = 0;
    centiseconds max_adver_interval{100};

    static AdvertReceived from(const Advertisement& advert, const IpAddr& source) {
        return {source, advert.priority, advert.advert_interval};
    }
};
using Event = std::variant<Startup, AdvertReceived, HealthChanged, PriorityChanged, Shutdown>;

struct MasterInfo {
    IpAddr address;
    std::uint8_t priority = 0; // as last advertised; 0 once it resigned
    friend bool operator==(const MasterInfo&, const MasterInfo&) = default;
};

// Actions, for the adapter to carry out in the order given.
struct SendAdvert {
    std::uint8_t priority = 0; // send make_advert(config, priority)
    friend bool operator==(const SendAdvert&, const SendAdvert&) = default;
};
struct BecomeMaster { // take the VIPs (GARP/NA), make the local Redis the master
    // Preempting a lower-priority master that is still advertising (it will
    // hear us and step down), not replacing one that went silent.
    bool preempting = false;
    friend bool operator==(const BecomeMaster&, const BecomeMaster&) = default;
};
struct BecomeBackup { // release the VIPs; replicate from `master` when known
    std::optional<MasterInfo> master;
    friend bool operator==(const BecomeBackup&, const BecomeBackup&) = default;
};
struct EnterFault { // release the VIPs; the local Redis serves nothing
    friend bool operator==(const EnterFault&, const EnterFault&) = default;
};
struct EnterInitialize { // stopped after Shutdown: release everything
    friend bool operator==(const EnterInitialize&, const EnterInitialize&) = default;
};
struct MasterChanged { // while Backup or Fault, adverts now come from another master
    MasterInfo master;
    friend bool operator==(const MasterChanged&, const MasterChanged&) = default;
};
using Action = std::variant<SendAdvert, BecomeMaster, BecomeBackup, EnterFault, EnterInitialize,
                            MasterChanged>;
using Actions = BoundedVector<Action, 4>; // no event yields more than three

enum class Reason : std::uint8_t {
    startup,         // Initialize -> Backup
    address_owner,   // Initialize -> Master at priority 255
    master_down,     // Master_Down_Timer fired: no advert for Master_Down_Interval
    master_resigned, // Master_Down_Timer fired Skew_Time after a priority 0 advert
    preempt,         // Master_Down_Timer fired while a lower priority master advertises
    higher_priority, // a Master heard a higher priority
    higher_address,  // a Master heard its own priority from a higher address
    fault,           // health says the local Redis cannot serve
    fault_cleared,   // and now it can again
    shutdown,
};
std::string_view to_string(Reason reason);

struct Transition {
    TimePoint at;
    State from = State::initialize;
    State to = State::initialize;
    Reason reason = Reason::startup;
    friend bool operator==(const Transition&, const Transition&) = default;
};
constexpr std::size_t kHistorySize = 16;
using History = BoundedVector<Transition, kHistorySize>;

class VirtualRouter {
public:
    explicit VirtualRouter(InstanceConfig config);

    Actions handle(const Event& event, TimePoint now);
    // Fires the running timer (Adver_Timer or Master_Down_Timer) if `now` has
    // reached next_deadline(); otherwise does nothing.
    Actions handle_timeout(TimePoint now);
    std::optional<TimePoint> next_deadline() const { return deadline_; }

    State state() const { return state_; }
    std::uint8_t priority() const { return priority_; } // effective
    bool fault() const { return fault_; }
    // The other router whose adverts we last followed; never ourselves.
    const std::optional<MasterInfo>& last_master() const { return last_master_; }
    centiseconds master_adver_interval() const { return master_adver_interval_; }
    Duration skew_time() const;
    Duration master_down_interval() const;
    const History& history() const { return history_; } // the last kHistorySize, oldest first
    const InstanceConfig& config() const { return config_; }

private:
    struct Step {
        TimePoint now;
        Actions actions;
        void emit(const Action& action) { (void)actions.push_back(action); }
    };
    struct Timeout {};
    using Input =
        std::variant<Startup, AdvertReceived, HealthChanged, PriorityChanged, Shutdown, Timeout>;
    using Handler = void (VirtualRouter::*)(Step&, const Input&);
    static Handler handler_for(State state, const Input& input);

    // The transition table's cells (vrrp_state.cpp).
    void ignore(Step&, const Input&) {}
    void start(Step& step, const Input&);
    void backup_advert(Step& step, const Input& input);
    void master_advert(Step& step, const Input& input);
    void fault_advert(Step& step, const Input& input);
    void backup_timeout(Step& step, const Input&);
    void master_timeout(Step& step, const Input&);
    void note_health(Step& step, const Input& input);
    void backup_fault(Step& step, const Input&);
    void master_fault(Step& step, const Input&);
    void leave_fault(Step& step, const Input&);
    void change_priority(Step& step, const Input& input);
    void master_priority(Step& step, const Input& input);
    void master_shutdown(Step& step, const Input&);
    void stop(Step& step, const Input&);

    void begin(Step& step, Reason reason);
    void transition(Step& step, State to, Reason reason);
    void send_advert(Step& step, std::uint8_t priority);
    std::optional<MasterInfo> fresh_master(TimePoint now) const;
    bool accepts(const AdvertReceived& advert, TimePoint now) const;
    void track_preempt_delay(const AdvertReceived& advert, TimePoint now);
    void note_master(Step& step, const AdvertReceived& advert, bool followed, bool announce);

    InstanceConfig config_;
    State state_ = State::initialize;
    std::uint8_t priority_;
    bool fault_ = false;
    centiseconds master_adver_interval_;
    std::optional<TimePoint> deadline_;
    Reason down_reason_ = Reason::master_down; // what the Master_Down_Timer will say
    std::optional<TimePoint> preempt_time_;    // keepalived's: preempt only after it
    std::optional<MasterInfo> last_master_;
    TimePoint last_master_at_{};
    History history_;
};

} // namespace redvip::election
