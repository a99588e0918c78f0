// The role controller's decisions on the election's input: which goal,
// which plan (plan.cpp), each step's outcome, retries and timeouts. The one
// place that decides "may this node become master?" is promotion_refusal().
// What it learns of Redis, the peers and the operator is controller_facts.cpp.
#include "election/role/controller.hpp"
#include "election/role/plan.hpp"

#include "election/vrrp/conf.hpp"

#include <algorithm>

namespace redvip::election {

ControllerConfig ControllerConfig::from(const conf::Config& config) {
    ControllerConfig c;
    c.self_redis = config.redis.address;
    c.peers = config.peers;
    c.catch_up_bytes = config.failover.catch_up_bytes;
    c.switchover_timeout = config.failover.switchover_timeout;
    c.peer_facts_max_age = 3 * config.health.interval + config.health.timeout;
    if (config.vrrp) c.vip_hold = 4 * config.vrrp->advert_interval; // > Master_Down_Interval
    if (config.vrrp) c.vip_overlap = 2 * config.vrrp->advert_interval;
    if (config.vrrp) c.preempt = config.vrrp->preempt;
    return c;
}

Controller::Controller(ControllerConfig config) : config_(std::move(config)) {
    for (const auto& peer : config_.peers) {
        peers_.emplace_back(to_ip_addr(peer.vrrp_address), peer.redis);
        peer_facts_.push_back(PeerFacts{peer.name, peer.redis, std::nullopt, "not read yet"});
        peer_memory_.emplace_back();
    }
}

ControllerActions Controller::on_election(const Action& action, TimePoint now) {
    ControllerActions out;
    if (std::holds_alternative<BecomeMaster>(action)) {
        // We are the master now: whoever we heard before (perhaps the peer
        // that resigned to us) is history, and a later Fault must not take
        // it for a new master and let the VIP go before anyone took it.
        known_master_.reset();
        const bool preempting = std::get<BecomeMaster>(action).preempting;
        if (!same_goal(Goal::master, std::nullopt)) {
            start(Goal::master, std::nullopt, preempting ? "preempting" : "elected master", now, out,
                  preempting ? PlanReason::preempting : PlanReason::ordinary);
        }
    } else if (const auto* backup = std::get_if<BecomeBackup>(&action)) {
        known_master_ = backup->master;
        if (backup->master) heard_master(backup->master->address, now, out);
        if (const auto peer = preempted_by(backup->master, now)) {
            // A switchover to it: drain, hand off, relay, close, VIP kept
            // until it announces it; it waits for our hand-off.
            start(Goal::handoff, peer->redis, "preempted by " + peer->name, now, out,
                  PlanReason::preempted);
            return out;
        }
        follow(Goal::backup, backup->master, "backup", now, out);
    } else if (std::holds_alternative<EnterFault>(action)) {
        const auto master = resolve(known_master_, out);
        if (!same_goal(Goal::fault, master)) start(Goal::fault, master, "fault", now, out);
    } else if (const auto* changed = std::get_if<MasterChanged>(&action)) {
        known_master_ = changed->master;
        heard_master(changed->master.address, now, out);
        if (goal_ == Goal::backup || goal_ == Goal::fault)
            follow(goal_, changed->master, "master changed", now, out);
    } else if (std::holds_alternative<EnterInitialize>(action)) {
        if (!same_goal(Goal::stopped, std::nullopt))
            start(Goal::stopped, std::nullopt, "stopped", now, out);
    }
    return out; // SendAdvert: the election's own business
}

// A settled master made backup by a higher-priority peer whose Redis
// replicates from ours, caught up and linked: a preemption to answer with a
// hand-off (the peer awaits it, AwaitPromotion) rather than a fence.
std::optional<PeerFacts> Controller::preempted_by(const std::optional<MasterInfo>& master,
                                                 TimePoint now) const {
    const auto* t = transitions_.empty() ? nullptr : &transitions_.back();
    if (!master || goal_ != Goal::master || !t || t->outcome != Outcome::done || !vip_held_ ||
        !facts_ || facts_->role != RedisRole::master)
        return std::nullopt;
    const auto it = std::find_if(peers_.begin(), peers_.end(),
                                 [&](const auto& p) { return p.first == master->address; });
    if (it == peers_.end()) return std::nullopt;
    for (auto& peer : fresh_peers(now)) {
        if (peer.redis != it->second || !peer.facts) continue;
        const auto& f = *peer.facts;
        if (replicates_from(f, config_.self_redis) && f.master_link_status == MasterLink::up &&
            f.master_replid == facts_->master_replid)
            return std::move(peer);
    }
    return std::nullopt;
}

// Backup or Fault, following `master`'s Redis.
void Controller::follow(Goal goal, const std::optional<MasterInfo>& master, std::string cause,
                        TimePoint now, ControllerActions& out) {
    auto endpoint = resolve(master, out);
    if (!same_goal(goal, endpoint)) start(goal, std::move(endpoint), std::move(cause), now, out);
}

// The master's Redis, from its adverts' source address through [[peer]].
// Anything else (no master heard, an address no [[peer]] names, or a peer
// whose Redis is ours) leaves replication as it is: following a guess could
// make this Redis resync from the wrong node and drop its dataset.
std::optional<conf::Endpoint> Controller::resolve(const std::optional<MasterInfo>& master,
                                                  ControllerActions& out) const {
    if (!master) return std::nullopt;
    const auto it = std::find_if(peers_.begin(), peers_.end(),
                                 [&](const auto& p) { return p.first == master->address; });
    if (it == peers_.end()) {
        out.emplace_back(Notice{"the master " + to_string(master->address) +
                                " is no [[peer]]: staying fenced, replication left as it is"});
        return std::nullopt;
    }
    if (it->second == config_.self_redis) {
        out.emplace_back(Notice{"the master " + to_string(master->address) + "'s Redis " +
                                it->second.to_string() +
                                " is this node's own: never replicating from itself"});
        return std::nullopt;
    }
    return it->second;
}

bool Controller::same_goal(Goal goal, const std::optional<conf::Endpoint>& master) const {
    const auto* t = transitions_.empty() ? nullptr : &transitions_.back();
    return goal == goal_ && master == goal_master_ && t &&
           (t->outcome == Outcome::running || t->outcome == Outcome::done);
}

// "May this node become master?" Every master plan passes here first; the
// rules that need fresh facts of the peers run after CheckPeers, in
// decide_promotion(). A reason refuses, handled like a failed promotion
// (fenced, fault reported).
std::optional<std::string> Controller::promotion_refusal() const {
    if (!witness_ok_) return "no witness reachable (" + witness_detail_ + ")";
    return std::nullopt;
}

// After CheckPeers: a peer's Redis still alive as master hands over to us
// (writes paused there until we hold every byte: no acknowledged write lost);
// a peer ahead of us refuses.
void Controller::decide_promotion(TimePoint now, ControllerActions& out) {
    const auto path = promotion_path(facts_, known_peers(now), config_.self_redis, config_.catch_up_bytes);
    if (const auto* refuse = std::get_if<RefusePromotion>(&path))
        return give_up_master(refuse->reason, now, out);
    if (const auto* hand = std::get_if<PromoteByTakeOver>(&path))
        run_.plan[run_.next] = run_.reason == PlanReason::preempting
                                   ? RoleStep{AwaitPromotion{hand->master}}
                                   : RoleStep{TakeOverFrom{hand->master}};
}

void Controller::start(Goal goal, std::optional<conf::Endpoint> master, std::string cause,
                       TimePoint now, ControllerActions& out, PlanReason reason) {
    if (auto* t = current(); t && t->outcome == Outcome::running) {
        t->outcome = Outcome::superseded;
        t->finished = now;
    }
    if (run_.in_flight) run_.in_flight->stale = true; // completes later; its effect is noted then
    run_.retry_at.reset();
    hold_vip_until_.reset();
    run_.attempts = 0;
    run_.handover_failures = 0;
    run_.reason = reason;
    follower_master_since_.reset();
    // Following someone after having been master (perhaps through a Fault
    // with nobody heard): what we acknowledged as master is checked against it.
    if (divergence_.last_as_master && (goal == Goal::backup || goal == Goal::fault) && master)
        divergence_.peer = master;
    goal_ = goal;
    goal_master_ = std::move(master);
    run_.next = 0;
    transitions_.push_back(RoleTransition{++next_seq_,
                                          goal,
                                          goal_master_,
                                          std::move(cause),
                                          now,
                                          std::nullopt,
                                          Outcome::running,
                                          {}});
    if (transitions_.size() > kHistorySize) transitions_.pop_front();
    if (goal == Goal::master) {
        if (auto refusal = promotion_refusal()) {
            run_.plan.clear();
            return give_up_master(*refusal, now, out);
        }
    }
    const bool holding_before = takeover_hold_ && proxy_mode_ == ProxyMode::holding;
    takeover_hold_ = false;
    run_.plan = build_plan(goal, goal_master_);
    // Leaving the master role with nobody to follow yet: keep the VIP (the
    // proxy is fenced, so nothing reaches Redis) until a master is heard or
    // vip_hold passes. Connections to the VIP are then refused at once and
    // clients retry within milliseconds, where with the VIP nowhere their SYN
    // is lost and the kernel resends it only after a second.
    vip_release_at_.reset();
    if ((goal == Goal::backup || goal == Goal::fault) && !goal_master_ && vip_held_ &&
        reason != PlanReason::vip_hold_over) {
        std::erase_if(run_.plan, [](const RoleStep& s) { return std::holds_alternative<ReleaseVip>(s); });
        vip_release_at_ = now + config_.vip_hold;
    }
    hold_for_takeover(holding_before);
    keep_relaying();
    keep_vip_while_announced();
    // A master Redis about to follow another: read both afresh first, for
    // ours may hold writes the other lacks (a healed partition).
    if (goal_master_ && facts_ && facts_->role == RedisRole::master && !run_.plan.empty() &&
        std::holds_alternative<ReplicateRedis>(run_.plan.back()))
        run_.plan.insert(run_.plan.end() - 1, CheckPeers{});
    update_eligibility(now, out);
    advance(now, out);
}

// A master leaving the role with nobody heard yet (its Redis died, or
// failed its checks): its clients' commands are held (HOLDING) rather than
// refused, while the VIP is kept and the peer takes over. Once that peer is
// heard, its Redis is polled until master, and they go there (CLOSING,
// relayed: each connection closes after a reply, and clients reconnect to
// the new master), so a client whose connection was not on the dead Redis
// sees ~one takeover of latency and no error, instead of READONLY and its
// own retries. If nobody is heard within vip_hold, or the peer's Redis does
// not become master in time, FENCED as before (the held commands answered
// READONLY).
void Controller::hold_for_takeover(bool holding_before) {
    if ((goal_ != Goal::backup && goal_ != Goal::fault) || !vip_held_ ||
        run_.reason == PlanReason::vip_hold_over || proxy_relay_)
        return;
    if (run_.plan.empty() || run_.plan.front() != RoleStep{SetProxy{ProxyMode::fenced, {}}}) return;
    if (!goal_master_ && (proxy_mode_ == ProxyMode::serving || holding_before)) {
        run_.plan.front() = SetProxy{ProxyMode::holding, {}};
        takeover_hold_ = true;
        return;
    }
    if (!goal_master_ || !holding_before) return;
    run_.plan.front() = SetProxy{ProxyMode::closing, goal_master_};
    run_.plan.insert(run_.plan.begin(), AwaitPeerMaster{*goal_master_});
    const auto release = std::find_if(run_.plan.begin(), run_.plan.end(), [](const RoleStep& s) {
        return std::holds_alternative<ReleaseVip>(s);
    });
    if (release == run_.plan.end()) return;
    run_.plan.insert(run_.plan.insert(release, HoldVip{}) + 2, SetProxy{ProxyMode::fenced, {}});
    takeover_hold_ = true; // until CLOSING is applied
}

// Relaying to the peer we handed the role to, and now backup or fault
// following it (or nobody yet): relaying never touches the local Redis, so
// it is as safe as fencing. With nobody heard the proxy goes on relaying
// while the VIP is kept (vip_hold). Once the VIP is to go: CLOSING (relayed
// still, each connection closed once quiet, so clients reconnect to the new
// master between two requests), the VIP kept vip_overlap longer while the
// new master announces it (requests on their way here are still answered),
// the VIP released, then FENCED.
void Controller::keep_relaying() {
    if (!proxy_relay_ || (goal_ != Goal::backup && goal_ != Goal::fault)) return;
    if (goal_master_ && goal_master_ != proxy_relay_) return; // someone else: fence at once
    if (run_.plan.empty() || run_.plan.front() != RoleStep{SetProxy{ProxyMode::fenced, {}}}) return;
    const auto is_release = [](const RoleStep& s) { return std::holds_alternative<ReleaseVip>(s); };
    auto release = std::find_if(run_.plan.begin(), run_.plan.end(), is_release);
    if (release == run_.plan.end()) {
        run_.plan.erase(run_.plan.begin()); // relaying (or closing) goes on
        return;
    }
    run_.plan.front() = SetProxy{ProxyMode::closing, proxy_relay_};
    release = run_.plan.insert(release, HoldVip{}) + 1;
    run_.plan.insert(release + 1, SetProxy{ProxyMode::fenced, {}});
}

// Following a master we have just heard while still holding the VIP (a
// Fault or a preemption): the new master adds the VIP and announces it a
// moment after its first advert. Released at once, the VIP would be nowhere
// for that moment, and a client reconnecting then sends its SYN to this host,
// whose kernel drops it; the client resends only after a second. Kept
// vip_overlap longer (fenced), such a connection is answered here at once and
// the next one goes to the new master.
void Controller::keep_vip_while_announced() {
    if ((goal_ != Goal::backup && goal_ != Goal::fault) || !goal_master_ || !vip_held_) return;
    if (std::any_of(run_.plan.begin(), run_.plan.end(),
                    [](const RoleStep& s) { return std::holds_alternative<HoldVip>(s); }))
        return; // keep_relaying() holds it already
    const auto release = std::find_if(run_.plan.begin(), run_.plan.end(), [](const RoleStep& s) {
        return std::holds_alternative<ReleaseVip>(s);
    });
    if (release == run_.plan.end()) return;
    run_.plan.insert(release, HoldVip{});
}

// A proxy step, applied at once and recorded. The proxy relays from
// RELAYING until SERVING or FENCED; so does the controller's memory of it.
void Controller::apply_proxy(const SetProxy& set, TimePoint now, ControllerActions& out) {
    out.emplace_back(set);
    proxy_mode_ = set.mode;
    if (set.mode != ProxyMode::holding) takeover_hold_ = false;
    if ((set.mode == ProxyMode::relaying || set.mode == ProxyMode::closing) && set.relay)
        proxy_relay_ = set.relay;
    else if (set.mode == ProxyMode::serving || set.mode == ProxyMode::fenced)
        proxy_relay_.reset();
    if (auto* t = current())
        t->steps.push_back(StepRecord{describe(RoleStep{set}), now, {}, 1, StepStatus::done, {}});
}

// After CheckPeers on the way to following `goal_master_`: a local Redis whose
// data is newer (it kept serving through a partition the other side lost)
// must not resync from the stale side. It stays master behind a fenced proxy
// until the stale master yields (see yield_if_stale) and the election
// promotes this node.
void Controller::decide_follow(TimePoint now, ControllerActions& out) {
    if (!facts_ || facts_->role != RedisRole::master || !goal_master_) return;
    for (const auto& peer : fresh_peers(now)) {
        if (peer.redis != *goal_master_ || !peer.facts) continue;
        // Its Redis still follows ours: the new master's hand-over (a
        // preemption) will make ours its replica. A REPLICAOF now would
        // have each Redis replicate from the other until then. If no
        // hand-over comes, drift repair sets it after follower_master_grace.
        if (replicates_from(*peer.facts, config_.self_redis)) {
            out.emplace_back(Notice{peer.name + "'s Redis still replicates from ours: " +
                                    "leaving ours to its hand-over"});
            run_.plan.resize(run_.next);
            return;
        }
        if (!history_ahead(*facts_, *peer.facts)) return;
        out.emplace_back(Notice{"not following " + peer.name + ": our Redis has newer data (" +
                                "offset " + std::to_string(facts_->master_repl_offset) +
                                ", theirs " + std::to_string(peer.facts->master_repl_offset) +
                                "); fenced until it yields"});
        run_.plan.resize(run_.next); // the REPLICAOF is dropped; the plan ends here
        return;
    }
}

// A master that sees a peer's Redis master with newer data was the stale side
// of a partition: it yields (fenced, follows, resigns) rather than make the
// newer side resync from it.
void Controller::yield_if_stale(const PeerFacts& peer, TimePoint now, ControllerActions& out) {
    const auto* t = current();
    if (goal_ != Goal::master || !t || t->outcome != Outcome::done || !facts_ || !peer.facts)
        return;
    if (peer.facts->role != RedisRole::master || !history_ahead(*peer.facts, *facts_)) return;
    out.emplace_back(Notice{peer.name + "'s Redis is master with newer data (offset " +
                            std::to_string(peer.facts->master_repl_offset) + ", ours " +
                            std::to_string(facts_->master_repl_offset) + "): yielding"});
    start(Goal::fault, peer.redis, "yield to newer data on " + peer.name, now, out);
    resign("yielding to " + peer.name + "'s newer data", out);
}

// Applies proxy steps at once and starts the next async step when nothing is
// in flight and no backoff is running; closes the transition at the end.
void Controller::advance(TimePoint now, ControllerActions& out) {
    auto* t = current();
    if (!t || t->outcome != Outcome::running) return;
    while (run_.next < run_.plan.size()) {
        const RoleStep step = run_.plan[run_.next];
        if (is_async(step)) {
            if (!run_.in_flight && !run_.retry_at) launch(step, now, out);
            return;
        }
        if (std::holds_alternative<HoldVip>(step)) {
            if (!hold_vip_until_) {
                hold_vip_until_ = now + config_.vip_overlap;
                t->steps.push_back(StepRecord{describe(step), now, {}, 1, StepStatus::running, {}});
            }
            if (now < *hold_vip_until_) return; // handle_timeout comes back
            hold_vip_until_.reset();
            t->steps.back().took = now - t->steps.back().started;
            t->steps.back().status = StepStatus::done;
            ++run_.next;
            continue;
        }
        apply_proxy(std::get<SetProxy>(step), now, out);
        ++run_.next;
    }
    t->outcome = Outcome::done;
    t->finished = now;
    const auto* peer = goal_master_ ? peer_by_redis(*goal_master_) : nullptr;
    out.emplace_back(TransitionDone{goal_, peer ? peer->name : std::string{}, t->cause});
    if (goal_ == Goal::master) {
        preempt_suspended_ = false;
        // Our data is the reference now: what a dead peer held before is
        // no reason to refuse the role another time.
        for (auto& memory : peer_memory_)
            memory.last_answer.reset();
        update_eligibility(now, out);
    }
    if (run_.reason == PlanReason::preempted) {
        // The peer is master already: follow it, relaying and closing
        // (keep_relaying) while it takes the VIP.
        const auto* to = goal_master_ ? peer_by_redis(*goal_master_) : nullptr;
        return start(Goal::backup, goal_master_,
                     "handed the master role to " + (to ? to->name : std::string("the peer")) +
                         ", which preempted",
                     now, out);
    }
    if (goal_ == Goal::handoff) resign("handed the master role to " + switchover_name(), out);
}

void Controller::launch(const RoleStep& step, TimePoint now, ControllerActions& out) {
    auto* t = current();
    ++run_.attempts;
    if (run_.attempts == 1) {
        t->steps.push_back(StepRecord{describe(step), now, {}, 1, StepStatus::running, {}});
    } else { // a retry: the same record, which is the last one (nothing ran since)
        t->steps.back().attempts = run_.attempts;
        t->steps.back().status = StepStatus::running;
    }
    run_.in_flight = InFlight{++next_id_, t->seq, t->steps.size() - 1, step, false};
    out.emplace_back(RunStep{run_.in_flight->id, step});
}

ControllerActions Controller::on_step_done(std::uint64_t id, const StepResult& result,
                                           TimePoint now) {
    ControllerActions out;
    if (!run_.in_flight || run_.in_flight->id != id) return out; // not ours: a driver bug, ignored
    const InFlight done = *run_.in_flight;
    run_.in_flight.reset();
    note_effect(done.step, result);
    if (auto* t = find(done.seq); t && done.record < t->steps.size()) {
        auto& record = t->steps[done.record];
        record.took = now - record.started;
        record.status = result.ok ? StepStatus::done : StepStatus::failed;
        record.error = result.ok ? std::string{} : result.error;
    }
    if (done.stale) {
        advance(now, out); // the plan that superseded it may start its first async step
    } else if (result.ok) {
        run_.attempts = 0;
        ++run_.next;
        if (std::holds_alternative<CheckPeers>(done.step)) {
            if (goal_ == Goal::master)
                decide_promotion(now, out);
            else
                decide_follow(now, out);
            if (current()->outcome != Outcome::running) return out; // refused
        }
        advance(now, out);
    } else {
        fail_step(result, now, out);
    }
    return out;
}

// What the world looks like after a step, stale or not: the VIP counts as
// held after a failed acquire, since the addresses added so far stay.
void Controller::note_effect(const RoleStep& step, const StepResult& result) {
    if (std::holds_alternative<AcquireVip>(step)) vip_held_ = true;
    if (std::holds_alternative<ReleaseVip>(step) && result.ok) vip_held_ = false;
}

// Failure policy: on the way to master, `master_attempts` tries then give up
// and report a fault (the peer should take over rather than clients wait on a
// master that cannot serve); a failed hand-over reads the peers again first,
// since the old master may just have died. A failed switchover is over: Redis
// rolled back, so this node serves again. Everywhere else, retry with backoff
// for as long as it takes (the node is fenced already, and the step is what
// makes the local Redis safe, e.g. following the new master).
void Controller::fail_step(const StepResult& result, TimePoint now, ControllerActions& out) {
    const RoleStep& step = run_.plan[run_.next];
    if (run_.reason == PlanReason::preempted) // rolled back: fence and follow it
        return start(Goal::backup, goal_master_, "hand-off to the preempting peer failed: " + result.error,
                     now, out);
    if (std::holds_alternative<AwaitPeerMaster>(step)) { // the held commands are refused, as without
        takeover_hold_ = false;
        return start(goal_, goal_master_, "the new master's Redis is not master (" + result.error + "): fencing",
                     now, out);
    }
    if (std::holds_alternative<AwaitPromotion>(step)) // it never handed off: take it ourselves
        return start(Goal::master, std::nullopt, "no hand-off came (" + result.error + "): taking over", now,
                     out);
    if (goal_ == Goal::handoff) {
        finish_switchover(false, "switchover failed: " + result.error, out);
        return start(Goal::master, std::nullopt, "switchover failed", now, out);
    }
    if (std::holds_alternative<TakeOverFrom>(step)) {
        if (++run_.handover_failures >= config_.master_attempts)
            return give_up_master(describe(step) + " failed " +
                                      std::to_string(run_.handover_failures) + " times: " + result.error,
                                  now, out);
        run_.plan = build_plan(Goal::master, std::nullopt);
        run_.next = 1; // CheckPeers again
        run_.attempts = 0;
        run_.retry_at = now + backoff(run_.handover_failures);
        return;
    }
    if (goal_ == Goal::master && run_.attempts >= config_.master_attempts) {
        return give_up_master(describe(step) + " failed " + std::to_string(run_.attempts) +
                                  " times: " + result.error,
                              now, out);
    }
    run_.retry_at = now + backoff(run_.attempts);
}

void Controller::give_up_master(const std::string& reason, TimePoint now, ControllerActions& out) {
    auto* t = current();
    t->outcome = Outcome::abandoned;
    t->finished = now;
    run_.plan.clear();
    run_.next = 0;
    run_.attempts = 0;
    run_.retry_at.reset();
    apply_proxy(SetProxy{ProxyMode::fenced, {}}, now, out); // clients must not wait on us
    role_fault_until_ = now + config_.role_fault_hold;
    out.emplace_back(Notice{"not taking the master role: " + reason + "; reporting a fault"});
    update_role_fault(reason, out);
    update_eligibility(now, out); // status says why, not "eligible"
}

// Mastership went to a peer (our switchover, or a peer's hand-over): the
// election must let it go at once (priority 0), and this node must not take
// it back until a master is heard.
void Controller::resign(const std::string& reason, ControllerActions& out) {
    preempt_suspended_ = config_.preempt;
    resigned_ = true;
    update_role_fault(reason, out);
}

// The election is told one verdict: a fault while any reason holds.
void Controller::update_role_fault(const std::string& reason, ControllerActions& out) {
    const bool wanted = role_fault_until_.has_value() || resigned_ || !witness_ok_;
    if (wanted == role_fault_reported_) return;
    role_fault_reported_ = wanted;
    out.emplace_back(RoleFault{wanted, reason});
}

ControllerActions Controller::on_health(bool healthy, TimePoint now) {
    ControllerActions out;
    if (healthy && run_.retry_at && *run_.retry_at > now) {
        run_.retry_at.reset();
        advance(now, out);
    }
    return out;
}

ControllerActions Controller::handle_timeout(TimePoint now) {
    ControllerActions out;
    if (role_fault_until_ && now >= *role_fault_until_) {
        role_fault_until_.reset();
        update_role_fault("role fault held long enough: may try again", out);
    }
    if (vip_release_at_ && now >= *vip_release_at_) {
        vip_release_at_.reset();
        if ((goal_ == Goal::backup || goal_ == Goal::fault) && !goal_master_ && vip_held_) {
            start(goal_, std::nullopt, "no master heard: releasing the VIP", now, out,
                  PlanReason::vip_hold_over);
        }
    }
    if (switchover_ && now >= switchover_->deadline) {
        finish_switchover(false, switchover_->name + " did not take the master role in time", out);
        // Nobody took it (the peer in Fault, or cut off): resigned, we would
        // leave the pair with no master. Stand again; the election's next
        // master takes the role back by hand-over from the peer's Redis.
        if (resigned_) {
            resigned_ = false;
            preempt_suspended_ = false;
            update_role_fault("the switchover failed: standing for the master role again", out);
            update_eligibility(now, out);
        }
    }
    if (run_.retry_at && now >= *run_.retry_at) {
        run_.retry_at.reset();
        advance(now, out);
    }
    if (hold_vip_until_ && now >= *hold_vip_until_) advance(now, out);
    return out;
}

std::optional<TimePoint> Controller::next_deadline() const {
    std::optional<TimePoint> when;
    for (const auto& t : {run_.retry_at, role_fault_until_, vip_release_at_, hold_vip_until_,
                          switchover_ ? std::optional<TimePoint>{switchover_->deadline}
                                      : std::optional<TimePoint>{}})
        if (t && (!when || *t < *when)) when = t;
    return when;
}

bool Controller::settled() const {
    return !run_.in_flight && (transitions_.empty() || transitions_.back().outcome != Outcome::running);
}

RoleTransition* Controller::current() {
    return transitions_.empty() ? nullptr : &transitions_.back();
}

RoleTransition* Controller::find(std::uint64_t seq) {
    for (auto& t : transitions_)
        if (t.seq == seq) return &t;
    return nullptr;
}

Duration Controller::backoff(int attempts) const {
    Duration d = config_.retry_first;
    for (int i = 1; i < attempts && d < config_.retry_max; ++i)
        d *= 2;
    return std::min(d, config_.retry_max);
}

} // namespace redvip::election
