// The role controller's decisions. The plans are in build_plan(); the one
// place that decides "may this node become master?" is promotion_refusal().
#include "election/controller.hpp"

#include "election/vrrp_conf.hpp"

#include <algorithm>

namespace redvip::election {

namespace {

std::vector<RoleStep> build_plan(Goal goal, const std::optional<conf::Endpoint>& master) {
    switch (goal) {
    case Goal::master:
        // HOLDING first: commands wait (bounded) while the local Redis is
        // still a replica, so they never meet READONLY; SERVING last, once
        // Redis is confirmed master and the VIP routes clients here.
        return {SetProxy{ProxyMode::holding}, PromoteRedis{}, AcquireVip{},
                SetProxy{ProxyMode::serving}};
    case Goal::backup:
    case Goal::fault: {
        // FENCED first: nothing may write to this Redis once it is not the
        // master; the VIP goes before Redis changes role so clients move on.
        std::vector<RoleStep> plan{SetProxy{ProxyMode::fenced}, ReleaseVip{}};
        if (master) plan.emplace_back(ReplicateRedis{*master});
        return plan;
    }
    case Goal::stopped:
        return {SetProxy{ProxyMode::fenced}, ReleaseVip{}};
    case Goal::none:
        break;
    }
    return {};
}

bool is_async(const RoleStep& step) {
    return !std::holds_alternative<SetProxy>(step);
}

} // namespace

std::string_view to_string(ProxyMode mode) {
    switch (mode) {
    case ProxyMode::serving:
        return "SERVING";
    case ProxyMode::holding:
        return "HOLDING";
    case ProxyMode::fenced:
        return "FENCED";
    }
    return "?";
}

std::string_view to_string(Goal goal) {
    switch (goal) {
    case Goal::none:
        return "none";
    case Goal::master:
        return "master";
    case Goal::backup:
        return "backup";
    case Goal::fault:
        return "fault";
    case Goal::stopped:
        return "stopped";
    }
    return "?";
}

std::string_view to_string(StepStatus status) {
    switch (status) {
    case StepStatus::running:
        return "running";
    case StepStatus::done:
        return "done";
    case StepStatus::failed:
        return "failed";
    }
    return "?";
}

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::running:
        return "running";
    case Outcome::done:
        return "done";
    case Outcome::superseded:
        return "superseded";
    case Outcome::abandoned:
        return "abandoned";
    }
    return "?";
}

std::string describe(const RoleStep& step) {
    struct Describe {
        std::string operator()(const SetProxy& s) const {
            return "proxy " + std::string(to_string(s.mode));
        }
        std::string operator()(const AcquireVip&) const { return "VIP acquire"; }
        std::string operator()(const ReleaseVip&) const { return "VIP release"; }
        std::string operator()(const PromoteRedis&) const { return "REPLICAOF NO ONE"; }
        std::string operator()(const ReplicateRedis& r) const {
            return "REPLICAOF " + r.master.host.to_string() + " " + std::to_string(r.master.port);
        }
    };
    return std::visit(Describe{}, step);
}

bool replicates_from(const ReplicationFacts& facts, const conf::Endpoint& master) {
    if (facts.role != "slave" || facts.master_port != master.port) return false;
    boost::system::error_code ec;
    const auto host = boost::asio::ip::make_address(facts.master_host, ec);
    return !ec && host == master.host;
}

ControllerConfig ControllerConfig::from(const conf::Config& config) {
    ControllerConfig c;
    c.self_redis = config.redis.address;
    c.peers = config.peers;
    return c;
}

Controller::Controller(ControllerConfig config) : config_(std::move(config)) {
    for (const auto& peer : config_.peers)
        peers_.emplace_back(to_ip_addr(peer.vrrp_address), peer.redis);
}

ControllerActions Controller::on_election(const Action& action, TimePoint now) {
    ControllerActions out;
    if (std::holds_alternative<BecomeMaster>(action)) {
        if (!same_goal(Goal::master, std::nullopt))
            start(Goal::master, std::nullopt, "elected master", now, out);
    } else if (const auto* backup = std::get_if<BecomeBackup>(&action)) {
        known_master_ = backup->master;
        follow(Goal::backup, backup->master, "backup", now, out);
    } else if (std::holds_alternative<EnterFault>(action)) {
        const auto master = resolve(known_master_, out);
        if (!same_goal(Goal::fault, master)) start(Goal::fault, master, "fault", now, out);
    } else if (const auto* changed = std::get_if<MasterChanged>(&action)) {
        known_master_ = changed->master;
        if (goal_ == Goal::backup || goal_ == Goal::fault)
            follow(goal_, changed->master, "master changed", now, out);
    } else if (std::holds_alternative<EnterInitialize>(action)) {
        if (!same_goal(Goal::stopped, std::nullopt))
            start(Goal::stopped, std::nullopt, "stopped", now, out);
    }
    return out; // SendAdvert: the election's own business
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

// "May this node become master?" Every master plan passes here first. The
// data-safety rules (replication caught up, a stale or empty dataset, a
// switchover in progress, no quorum) belong here: a reason refuses, and the
// refusal is handled like a failed promotion (fenced, fault reported).
std::optional<std::string> Controller::promotion_refusal() const {
    return std::nullopt;
}

void Controller::start(Goal goal, std::optional<conf::Endpoint> master, std::string cause,
                       TimePoint now, ControllerActions& out) {
    if (auto* t = current(); t && t->outcome == Outcome::running) {
        t->outcome = Outcome::superseded;
        t->finished = now;
    }
    if (in_flight_) in_flight_->stale = true; // completes later; its effect is noted then
    retry_at_.reset();
    attempts_ = 0;
    goal_ = goal;
    goal_master_ = std::move(master);
    next_ = 0;
    transitions_.push_back(RoleTransition{++next_seq_,
                                          goal,
                                          goal_master_,
                                          std::move(cause),
                                          now,
                                          std::nullopt,
                                          Outcome::running,
                                          {}});
    if (transitions_.size() > history_size) transitions_.pop_front();
    if (goal == Goal::master) {
        if (auto refusal = promotion_refusal()) {
            plan_.clear();
            return give_up_master(*refusal, now, out);
        }
    }
    plan_ = build_plan(goal, goal_master_);
    advance(now, out);
}

// Applies proxy steps at once and starts the next async step when nothing is
// in flight and no backoff is running; closes the transition at the end.
void Controller::advance(TimePoint now, ControllerActions& out) {
    auto* t = current();
    if (!t || t->outcome != Outcome::running) return;
    while (next_ < plan_.size()) {
        const RoleStep step = plan_[next_];
        if (is_async(step)) {
            if (!in_flight_ && !retry_at_) launch(step, now, out);
            return;
        }
        const auto mode = std::get<SetProxy>(step).mode;
        out.emplace_back(SetProxy{mode});
        proxy_mode_ = mode;
        t->steps.push_back(StepRecord{describe(step), now, {}, 1, StepStatus::done, {}});
        ++next_;
    }
    t->outcome = Outcome::done;
    t->finished = now;
}

void Controller::launch(const RoleStep& step, TimePoint now, ControllerActions& out) {
    auto* t = current();
    ++attempts_;
    if (attempts_ == 1) {
        t->steps.push_back(StepRecord{describe(step), now, {}, 1, StepStatus::running, {}});
    } else { // a retry: the same record, which is the last one (nothing ran since)
        t->steps.back().attempts = attempts_;
        t->steps.back().status = StepStatus::running;
    }
    in_flight_ = InFlight{++next_id_, t->seq, t->steps.size() - 1, step, false};
    out.emplace_back(RunStep{in_flight_->id, step});
}

ControllerActions Controller::on_step_done(std::uint64_t id, const StepResult& result,
                                           TimePoint now) {
    ControllerActions out;
    if (!in_flight_ || in_flight_->id != id) return out; // not ours: a driver bug, ignored
    const InFlight done = *in_flight_;
    in_flight_.reset();
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
        attempts_ = 0;
        ++next_;
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
// master that cannot serve); everywhere else, retry with backoff for as long
// as it takes (the node is fenced already, and the step is what makes the
// local Redis safe, e.g. following the new master).
void Controller::fail_step(const StepResult& result, TimePoint now, ControllerActions& out) {
    if (goal_ == Goal::master && attempts_ >= config_.master_attempts) {
        return give_up_master(describe(plan_[next_]) + " failed " + std::to_string(attempts_) +
                                  " times: " + result.error,
                              now, out);
    }
    retry_at_ = now + backoff(attempts_);
}

void Controller::give_up_master(const std::string& reason, TimePoint now, ControllerActions& out) {
    auto* t = current();
    t->outcome = Outcome::abandoned;
    t->finished = now;
    plan_.clear();
    next_ = 0;
    attempts_ = 0;
    retry_at_.reset();
    out.emplace_back(SetProxy{ProxyMode::fenced}); // clients must not wait on us
    proxy_mode_ = ProxyMode::fenced;
    t->steps.push_back(StepRecord{"proxy FENCED", now, {}, 1, StepStatus::done, {}});
    role_fault_until_ = now + config_.role_fault_hold;
    out.emplace_back(Notice{"not taking the master role: " + reason + "; reporting a fault"});
    out.emplace_back(RoleFault{true, reason});
}

ControllerActions Controller::on_replication(const ReplicationFacts& facts, TimePoint polled_at,
                                             TimePoint now) {
    ControllerActions out;
    facts_ = facts;
    const auto* t = current();
    if (t && t->outcome == Outcome::done && t->finished && polled_at > *t->finished)
        check_drift(now, out);
    return out;
}

// The local Redis no longer has the role the last completed plan confirmed
// (restarted without its replicaof, or changed by hand): run the plan again.
void Controller::check_drift(TimePoint now, ControllerActions& out) {
    const auto& f = *facts_;
    const bool follower = goal_ == Goal::backup || goal_ == Goal::fault;
    std::string found = f.role == "slave"
                            ? "a replica of " + f.master_host + ":" + std::to_string(f.master_port)
                            : f.role;
    if (follower && goal_master_ && !replicates_from(f, *goal_master_)) {
        out.emplace_back(Notice{"the local Redis is " + found + ", not a replica of " +
                                goal_master_->to_string() + ": setting it again"});
        start(goal_, goal_master_, "repair: Redis was " + found, now, out);
    } else if (goal_ == Goal::master && f.role != "master") {
        out.emplace_back(Notice{"the local Redis is " + found + ", not master: promoting again"});
        start(Goal::master, std::nullopt, "repair: Redis was " + found, now, out);
    }
}

ControllerActions Controller::on_health(bool healthy, TimePoint now) {
    ControllerActions out;
    if (healthy && retry_at_ && *retry_at_ > now) {
        retry_at_.reset();
        advance(now, out);
    }
    return out;
}

ControllerActions Controller::handle_timeout(TimePoint now) {
    ControllerActions out;
    if (role_fault_until_ && now >= *role_fault_until_) {
        role_fault_until_.reset();
        out.emplace_back(RoleFault{false, "role fault held long enough: may try again"});
    }
    if (retry_at_ && now >= *retry_at_) {
        retry_at_.reset();
        advance(now, out);
    }
    return out;
}

std::optional<TimePoint> Controller::next_deadline() const {
    if (retry_at_ && role_fault_until_) return std::min(*retry_at_, *role_fault_until_);
    return retry_at_ ? retry_at_ : role_fault_until_;
}

bool Controller::settled() const {
    return !in_flight_ && (transitions_.empty() || transitions_.back().outcome != Outcome::running);
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
