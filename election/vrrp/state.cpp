// Every transition of the VRRP state machine is in this file: the table in
// handler_for() names one cell per (state, event), and the cells below it
// cite the RFC 5798 §6.4 paragraph they implement.
#include "election/vrrp/state.hpp"

#include <algorithm>

namespace redvip::election {

namespace {

enum Column : std::size_t {
    on_startup,
    on_advert,
    on_timeout,
    on_fault,
    on_health,
    on_priority,
    on_shutdown
};
constexpr std::size_t kColumnCount = 7;

} // namespace

std::string_view to_string(State state) {
    switch (state) {
    case State::initialize:
        return "Initialize";
    case State::backup:
        return "Backup";
    case State::master:
        return "Master";
    case State::fault:
        return "Fault";
    }
    return "?";
}

std::string_view to_string(Reason reason) {
    switch (reason) {
    case Reason::startup:
        return "startup";
    case Reason::address_owner:
        return "address owner";
    case Reason::master_down:
        return "master down";
    case Reason::master_resigned:
        return "master resigned";
    case Reason::preempt:
        return "preempting a lower priority master";
    case Reason::higher_priority:
        return "higher priority advert";
    case Reason::higher_address:
        return "equal priority, higher address";
    case Reason::fault:
        return "fault";
    case Reason::fault_cleared:
        return "fault cleared";
    case Reason::shutdown:
        return "shutdown";
    }
    return "?";
}

VirtualRouter::Handler VirtualRouter::handler_for(State state, const Input& input) {
    using V = VirtualRouter;
    // clang-format off
    static constexpr Handler table[4][kColumnCount] = {
        //               Startup      AdvertReceived     Timeout             Health: fault     Health: ok        PriorityChanged      Shutdown
        /* Initialize */ {&V::start,  &V::ignore,        &V::ignore,         &V::note_health,  &V::note_health,  &V::change_priority, &V::ignore},
        /* Backup     */ {&V::ignore, &V::backup_advert, &V::backup_timeout, &V::backup_fault, &V::note_health,  &V::change_priority, &V::stop},
        /* Master     */ {&V::ignore, &V::master_advert, &V::master_timeout, &V::master_fault, &V::note_health,  &V::master_priority, &V::master_shutdown},
        /* Fault      */ {&V::ignore, &V::fault_advert,  &V::ignore,         &V::note_health,  &V::leave_fault,  &V::change_priority, &V::stop},
    };
    // clang-format on
    const Column column = std::visit(
        [](const auto& e) {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<E, Startup>)
                return on_startup;
            else if constexpr (std::is_same_v<E, AdvertReceived>)
                return on_advert;
            else if constexpr (std::is_same_v<E, Timeout>)
                return on_timeout;
            else if constexpr (std::is_same_v<E, HealthChanged>)
                return e.fault ? on_fault : on_health;
            else if constexpr (std::is_same_v<E, PriorityChanged>)
                return on_priority;
            else
                return on_shutdown;
        },
        input);
    return table[static_cast<std::size_t>(state)][column];
}

VirtualRouter::VirtualRouter(InstanceConfig config)
    : config_(std::move(config))
    , priority_(std::max<std::uint8_t>(config_.priority, 1))
    , master_adver_interval_(config_.advertisement_interval) {}

Actions VirtualRouter::handle(const Event& event, TimePoint now) {
    // Our own advert, looped back by the kernel: never a peer's opinion.
    if (const auto* a = std::get_if<AdvertReceived>(&event);
        a != nullptr && a->source == config_.primary_address)
        return {};
    const Input input = std::visit([](const auto& e) { return Input{e}; }, event);
    Step step{now, {}};
    (this->*handler_for(state_, input))(step, input);
    return step.actions;
}

Actions VirtualRouter::handle_timeout(TimePoint now) {
    if (!deadline_ || now < *deadline_) return {};
    const Input input{Timeout{}};
    Step step{now, {}};
    (this->*handler_for(state_, input))(step, input);
    return step.actions;
}

Duration VirtualRouter::skew_time() const {
    if (config_.version == Version::v3) return skew_time_v3(priority_, master_adver_interval_);
    return skew_time_v2(priority_);
}

Duration VirtualRouter::master_down_interval() const {
    if (config_.version == Version::v3)
        return master_down_interval_v3(priority_, master_adver_interval_);
    // v2 intervals are whole seconds (the codec and from_conf make sure).
    const auto interval = std::chrono::duration_cast<std::chrono::seconds>(master_adver_interval_);
    return master_down_interval_v2(priority_, interval);
}

// --- Initialize (RFC 5798 §6.4.1) -------------------------------------------

void VirtualRouter::start(Step& step, const Input&) {
    if (fault_) return transition(step, State::fault, Reason::fault);
    begin(step, Reason::startup);
}

void VirtualRouter::begin(Step& step, Reason reason) {
    preempt_time_.reset();
    if (priority_ == kPriorityOwner) {
        // "If the Priority = 255 ... Send an ADVERTISEMENT ... Set the
        // Adver_Timer to Advertisement_Interval ... transition to the Master state"
        send_advert(step, priority_);
        deadline_ = step.now + config_.advertisement_interval;
        return transition(step, State::master, Reason::address_owner);
    }
    // "Set Master_Adver_Interval to Advertisement_Interval; Set the
    // Master_Down_Timer to Master_Down_Interval; transition to the Backup state"
    master_adver_interval_ = config_.advertisement_interval;
    deadline_ = step.now + master_down_interval();
    down_reason_ = Reason::master_down;
    transition(step, State::backup, reason);
}

// --- Backup (RFC 5798 §6.4.2) -----------------------------------------------

void VirtualRouter::backup_advert(Step& step, const Input& input) {
    const auto& advert = std::get<AdvertReceived>(input);
    if (advert.priority == kPriorityStop) {
        // "If the Priority in the ADVERTISEMENT is zero, then: Set the
        // Master_Down_Timer to Skew_Time"
        deadline_ = step.now + skew_time();
        down_reason_ = Reason::master_resigned;
        return note_master(step, advert, false, true);
    }
    if (!accepts(advert, step.now)) {
        // Preempting a lower priority: "discard the ADVERTISEMENT"; the
        // Master_Down_Timer runs on and we take over when it fires.
        return note_master(step, advert, false, true);
    }
    // "Set Master_Adver_Interval to Adver Interval contained in the
    // ADVERTISEMENT; Recompute the Master_Down_Interval; Reset the
    // Master_Down_Timer to Master_Down_Interval". v2 has no such field: the
    // instance check made sure the master's interval is ours.
    if (config_.version == Version::v3) master_adver_interval_ = advert.max_adver_interval;
    deadline_ = step.now + master_down_interval();
    down_reason_ = Reason::master_down;
    track_preempt_delay(advert, step.now);
    note_master(step, advert, true, true);
}

// "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is
// greater than or equal to the local Priority", plus keepalived's
// preempt_delay: a lower master is still followed until preempt_time_.
bool VirtualRouter::accepts(const AdvertReceived& advert, TimePoint now) const {
    if (!config_.preempt || advert.priority >= priority_) return true;
    return config_.preempt_delay > Duration::zero() && (!preempt_time_ || *preempt_time_ > now);
}

// keepalived's preempt_delay: the delay starts with the first lower-priority
// advert after startup (or after a higher master went away) and is cancelled
// by any master at least as high as we are.
void VirtualRouter::track_preempt_delay(const AdvertReceived& advert, TimePoint now) {
    if (config_.preempt_delay <= Duration::zero()) return;
    if (advert.priority >= priority_)
        preempt_time_.reset();
    else if (!preempt_time_)
        preempt_time_ = now + config_.preempt_delay;
}

void VirtualRouter::backup_timeout(Step& step, const Input&) {
    // "If the Master_Down_Timer fires, then: Send an ADVERTISEMENT ... Set the
    // Adver_Timer to Advertisement_Interval ... Transition to the Master state"
    send_advert(step, priority_);
    deadline_ = step.now + config_.advertisement_interval;
    // Preempt_Mode: the lower master's adverts were discarded, not missed.
    const auto live = fresh_master(step.now);
    const bool preempting = down_reason_ == Reason::master_down && live && live->priority > 0 &&
                            live->priority < priority_;
    transition(step, State::master, preempting ? Reason::preempt : down_reason_);
}

void VirtualRouter::backup_fault(Step& step, const Input&) {
    fault_ = true;
    deadline_.reset();
    transition(step, State::fault, Reason::fault);
}

// --- Master (RFC 5798 §6.4.3) -----------------------------------------------

void VirtualRouter::master_advert(Step& step, const Input& input) {
    const auto& advert = std::get<AdvertReceived>(input);
    // "If the Priority in the ADVERTISEMENT is greater than the local Priority
    // or the Priority in the ADVERTISEMENT is equal to the local Priority and
    // the primary IPvX Address of the sender is greater than the local
    // primary IPvX Address, then: Cancel Adver_Timer; Set Master_Adver_Interval
    // ...; Recompute the Skew_Time and the Master_Down_Interval; Set
    // Master_Down_Timer to Master_Down_Interval; Transition to the Backup state"
    const bool higher = advert.priority > priority_;
    if (higher || (advert.priority == priority_ && advert.source > config_.primary_address)) {
        if (config_.version == Version::v3) master_adver_interval_ = advert.max_adver_interval;
        deadline_ = step.now + master_down_interval();
        down_reason_ = Reason::master_down;
        note_master(step, advert, true, false); // BecomeBackup carries it
        return transition(step, State::backup,
                          higher ? Reason::higher_priority : Reason::higher_address);
    }
    // Priority zero: "Send an ADVERTISEMENT; Reset the Adver_Timer". keepalived
    // does the same for a strictly lower priority (unless lower_prio_no_advert),
    // so a second master yields after one trip, not one interval. Equal
    // priority from a lower address is discarded as the RFC says.
    if (advert.priority < priority_) {
        send_advert(step, priority_);
        deadline_ = step.now + config_.advertisement_interval;
    }
}

void VirtualRouter::master_timeout(Step& step, const Input&) {
    // "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset the
    // Adver_Timer to Advertisement_Interval"
    send_advert(step, priority_);
    deadline_ = step.now + config_.advertisement_interval;
}

// keepalived leaves MASTER for FAULT with a priority 0 advert, so that a
// backup takes over after Skew_Time instead of Master_Down_Interval.
void VirtualRouter::master_fault(Step& step, const Input&) {
    fault_ = true;
    send_advert(step, kPriorityStop);
    deadline_.reset();
    transition(step, State::fault, Reason::fault);
}

// Not in the RFC (priority is static there): a master whose priority changed
// says so at once, so a preempting backup does not wait an interval to learn it.
void VirtualRouter::master_priority(Step& step, const Input& input) {
    const auto before = priority_;
    change_priority(step, input);
    if (priority_ == before) return;
    send_advert(step, priority_);
    deadline_ = step.now + config_.advertisement_interval;
}

void VirtualRouter::master_shutdown(Step& step, const Input&) {
    // "If a Shutdown event is received, then: Cancel the Adver_Timer; Send an
    // ADVERTISEMENT with Priority = 0; Transition to the Initialize state"
    send_advert(step, kPriorityStop);
    deadline_.reset();
    transition(step, State::initialize, Reason::shutdown);
}

// --- Fault (keepalived's FAULT; not in the RFCs) -----------------------------

// No adverts and no timers; we only keep track of who is master, for the
// controller and for the moment health comes back.
void VirtualRouter::fault_advert(Step& step, const Input& input) {
    const auto& advert = std::get<AdvertReceived>(input);
    note_master(step, advert, advert.priority != kPriorityStop, true);
}

void VirtualRouter::leave_fault(Step& step, const Input&) {
    fault_ = false;
    begin(step, Reason::fault_cleared);
}

// --- Any state ----------------------------------------------------------------

void VirtualRouter::note_health(Step&, const Input& input) {
    fault_ = std::get<HealthChanged>(input).fault;
}

void VirtualRouter::change_priority(Step&, const Input& input) {
    // 0 on the wire means "leaving"; a health weight never gets us there.
    priority_ = std::max<std::uint8_t>(std::get<PriorityChanged>(input).priority, 1);
}

void VirtualRouter::stop(Step& step, const Input&) {
    // Backup: "If a Shutdown event is received, then: Cancel the
    // Master_Down_Timer; Transition to the Initialize state"
    deadline_.reset();
    transition(step, State::initialize, Reason::shutdown);
}

// --- Helpers ------------------------------------------------------------------

void VirtualRouter::transition(Step& step, State to, Reason reason) {
    if (history_.full()) { // drop the oldest: a shift of 16 small records
        std::move(history_.begin() + 1, history_.end(), history_.begin());
        history_.pop_back();
    }
    (void)history_.push_back(Transition{step.now, state_, to, reason});
    state_ = to;
    switch (to) {
    case State::master:
        // Whoever was master before (perhaps a router that resigned to us)
        // is history: the next advert heard from it is a new master, even at
        // the priority it had then (a switchover back to it).
        last_master_.reset();
        return step.emit(BecomeMaster{reason == Reason::preempt});
    case State::backup:
        return step.emit(BecomeBackup{fresh_master(step.now)});
    case State::fault:
        return step.emit(EnterFault{});
    case State::initialize:
        return step.emit(EnterInitialize{});
    }
}

void VirtualRouter::send_advert(Step& step, std::uint8_t priority) {
    step.emit(SendAdvert{priority});
}

// The master we heard within one Master_Down_Interval, if any.
std::optional<MasterInfo> VirtualRouter::fresh_master(TimePoint now) const {
    if (!last_master_ || now >= last_master_at_ + master_down_interval()) return std::nullopt;
    return last_master_;
}

// Records the sender as the master we know of. An advert we followed always
// counts; one we discarded only if it comes from the known master, outranks
// it, or the known one has gone quiet: so a lower router's brief claim while
// the election settles does not look like a change of master.
void VirtualRouter::note_master(Step& step, const AdvertReceived& advert, bool followed,
                                bool announce) {
    const bool same = last_master_ && last_master_->address == advert.source;
    const bool quiet = !fresh_master(step.now);
    if (!(followed || same || quiet || advert.priority >= last_master_->priority)) return;
    // A router that resigned (priority 0) and advertises again is a master
    // anew: its Redis may have changed role meanwhile (a switchover back).
    const bool back = same && last_master_->priority == 0 && advert.priority > 0;
    last_master_ = MasterInfo{advert.source, advert.priority};
    last_master_at_ = step.now;
    if (announce && (!same || back)) step.emit(MasterChanged{*last_master_});
}

} // namespace redvip::election
