#include "election/role/driver.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace redvip::election {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// How often AwaitPeerMaster reads the new master's Redis: its promotion
// takes milliseconds after it is elected, and clients' commands wait on it.
constexpr std::chrono::milliseconds kPeerMasterPoll{5};

void use_redis(RolePorts& ports, RedisExecutor& redis, bool poll) {
    ports.promote_redis = [&redis](StepDone done) { redis.async_promote(std::move(done)); };
    ports.replicate_redis = [&redis](const conf::Endpoint& master, StepDone done) {
        redis.async_replicate(master, std::move(done));
    };
    ports.confirm_role = [&redis](const std::optional<conf::Endpoint>& master,
                                  std::chrono::milliseconds within, StepDone done) {
        redis.async_confirm_role(master, within, std::move(done));
    };
    ports.hand_off = [&redis](const conf::Endpoint& to, std::chrono::milliseconds timeout,
                              StepDone done) { redis.async_switch_to(to, timeout, std::move(done)); };
    ports.read_local = [&redis](RedisExecutor::ReadDone done) {
        redis.async_read_replication(std::move(done));
    };
    ports.config_set = [&redis](std::vector<std::pair<std::string, std::string>> settings,
                                StepDone done) {
        redis.async_config_set(std::move(settings), std::move(done));
    };
    if (!poll) return;
    ports.read_replication = [&redis](RedisExecutor::ReadDone done) {
        redis.async_read_replication(std::move(done));
    };
}

PeerRedis::PeerRedis(asio::any_io_executor executor, const conf::Config& config,
                     std::shared_ptr<spdlog::logger> log) {
    const RedisExecutorTimeouts timeouts{std::chrono::milliseconds{300},
                                         std::chrono::milliseconds{500},
                                         std::chrono::milliseconds{3000},
                                         std::chrono::milliseconds{20}};
    for (const auto& peer : config.peers)
        executors_.emplace_back(peer.redis,
                                std::make_unique<RedisExecutor>(
                                    executor, conf::RedisConfig{peer.redis, config.redis.password, 1},
                                    timeouts, log));
}

RedisExecutor* PeerRedis::find(const conf::Endpoint& redis) {
    for (auto& [endpoint, executor] : executors_)
        if (endpoint == redis) return executor.get();
    return nullptr;
}

void PeerRedis::stop() {
    for (auto& entry : executors_)
        entry.second->stop();
}

void use_peers(RolePorts& ports, PeerRedis& peers) {
    ports.read_peer = [&peers](const conf::Endpoint& peer, RedisExecutor::ReadDone done) {
        peers.find(peer)->async_read_replication(std::move(done));
    };
    ports.peer_hand_over = [&peers](const conf::Endpoint& peer, const conf::Endpoint& to,
                                   std::chrono::milliseconds timeout, StepDone done) {
        peers.find(peer)->async_switch_to(to, timeout, std::move(done));
    };
}

class ControllerDriver::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::any_io_executor ex, const conf::Config& config, RolePorts ports,
         ElectionPort election, std::shared_ptr<spdlog::logger> log)
        : executor(ex)
        , controller(ControllerConfig::from(config))
        , health(config.health,
                 static_cast<std::uint8_t>(config.vrrp ? config.vrrp->priority : 100))
        , poll_interval(config.health.interval)
        , ports(std::move(ports))
        , election(std::move(election))
        , log(std::move(log))
        , deadline(ex)
        , poll_timer(ex)
        , peer_timer(ex)
        , witness_timer(ex)
        , self_redis(config.redis.address)
        , failover(config.failover) {
        for (const auto& peer : config.peers)
            peers.push_back(Peer{peer.name, peer.redis, false});
    }

    void on_election(const Action& action) { run(controller.on_election(action, Clock::now())); }

    // Carries out the controller's actions in order, then re-arms the timer.
    void run(const ControllerActions& actions) {
        for (const auto& action : actions) {
            if (const auto* proxy = std::get_if<SetProxy>(&action)) {
                log->info("step: {}", describe(RoleStep{*proxy}));
                ports.set_proxy(proxy->mode, proxy->relay);
            } else if (const auto* step = std::get_if<RunStep>(&action)) {
                start_step(*step);
            } else if (const auto* fault = std::get_if<RoleFault>(&action)) {
                apply(health.on_role_fault(fault->fault, fault->reason));
            } else if (const auto* notice = std::get_if<Notice>(&action)) {
                log->warn("{}", notice->text);
            } else if (const auto* e = std::get_if<SetEligible>(&action)) {
                eligible = e->eligibility.eligible;
                if (eligible)
                    log->info("eligible for the master role");
                else
                    log->warn("not eligible for the master role: {}", e->eligibility.reason);
                post([](Impl& self) { self.election.set_priority(self.election_priority()); });
            } else if (const auto* done = std::get_if<SwitchoverDone>(&action)) {
                (done->ok ? log->info("{}", done->text) : log->error("{}", done->text));
                if (auto reply = std::exchange(switchover_reply, nullptr)) reply(done->ok, done->text);
            } else if (const auto* t = std::get_if<TransitionDone>(&action)) {
                log->info("role {} reached{}{} ({})", to_string(t->goal),
                          t->master.empty() ? "" : ", following ", t->master, t->cause);
                if (on_transition) on_transition(*t);
            }
        }
        arm();
        notify_if_settled();
    }

    void start_step(const RunStep& run_step) {
        log->info("step: {}", describe(run_step.step));
        StepDone done = [weak = weak_from_this(), id = run_step.id,
                         name = describe(run_step.step)](const StepResult& result) {
            auto self = weak.lock();
            if (!self || self->stopped) return;
            if (result.ok)
                self->log->info("step: {}: done", name);
            else
                self->log->error("step: {}: {}", name, result.error);
            self->run(self->controller.on_step_done(id, result, Clock::now()));
        };
        struct Start {
            Impl& d;
            StepDone& done;
            void operator()(const SetProxy&) const {} // never a RunStep
            void operator()(const HoldVip&) const {}  // never a RunStep
            void operator()(const AcquireVip&) const { d.ports.acquire_vip(std::move(done)); }
            void operator()(const ReleaseVip&) const { d.ports.release_vip(std::move(done)); }
            void operator()(const PromoteRedis&) const { d.ports.promote_redis(std::move(done)); }
            void operator()(const ReplicateRedis& r) const {
                d.ports.replicate_redis(r.master, std::move(done));
            }
            void operator()(const CheckPeers&) const { d.check_peers(std::move(done)); }
            void operator()(const DrainProxy&) const { d.ports.drain_proxy(std::move(done)); }
            void operator()(const TakeOverFrom& h) const { d.take_over_from(h.master, std::move(done)); }
            void operator()(const HandOffTo& h) const {
                d.ports.hand_off(h.to, d.failover.switchover_timeout, std::move(done));
            }
            // ROLE polled until master: the preempted master's hand-off.
            void operator()(const AwaitPromotion&) const {
                d.ports.confirm_role(std::nullopt, d.failover.switchover_timeout, std::move(done));
            }
            void operator()(const AwaitPeerMaster& a) const {
                d.await_peer_master(a.redis, Clock::now() + d.failover.switchover_timeout, std::move(done));
            }
        };
        std::visit(Start{*this, done}, run_step.step);
    }

    // Health verdicts go to the election posted, never from inside one of its
    // listener calls (which is where most of them are decided).
    void apply(const HealthEvents& events) {
        for (const auto& event : events) {
            if (const auto* h = std::get_if<HealthChanged>(&event)) {
                log->warn("health: {}", h->fault ? "FAULT: " + fault_reason() : std::string("ok"));
                post([fault = h->fault](Impl& self) { self.election.set_fault(fault); });
                if (!h->fault && health.checks_ok()) run(controller.on_health(true, Clock::now()));
            } else if (const auto* p = std::get_if<PriorityChanged>(&event)) {
                log->warn("health: effective priority {} ({})", p->priority,
                          health.checks_ok() ? "checks ok" : health.last_error());
                post([](Impl& self) { self.election.set_priority(self.election_priority()); });
                if (health.checks_ok()) run(controller.on_health(true, Clock::now()));
            }
        }
    }

    // An ineligible node runs at priority 1: it never preempts, and still
    // takes over when the master goes silent (then the promotion decides).
    std::uint8_t election_priority() const {
        return eligible ? health.effective_priority() : std::uint8_t{1};
    }

    struct Peer {
        std::string name;
        conf::Endpoint redis;
        bool polling = false;
    };

    // Reads one peer's Redis; feeds the controller; then `then()`.
    void read_peer(Peer& peer, std::function<void()> then) {
        if (!ports.read_peer) {
            if (then) asio::post(executor, std::move(then));
            return;
        }
        peer.polling = true;
        ports.read_peer(peer.redis,
            [weak = weak_from_this(), &peer, then = std::move(then)](const ReplicationRead& read) {
                auto self = weak.lock();
                if (!self || self->stopped) return;
                peer.polling = false;
                self->run(self->controller.on_peer(
                    PeerFacts{peer.name, peer.redis, read.facts, read.error}, Clock::now()));
                if (then) then();
            });
    }

    void poll_peers() {
        for (auto& peer : peers)
            if (!peer.polling) read_peer(peer, {});
    }

    // The local Redis and every peer's, read now; the step completes when all
    // have answered (each read is bounded by its executor's timeouts).
    void check_peers(StepDone done) {
        auto remaining = std::make_shared<std::size_t>(peers.size() + 1);
        auto local_error = std::make_shared<std::string>();
        auto one_done = [remaining, local_error, done = std::move(done)] {
            if (--*remaining > 0) return;
            done(local_error->empty() ? StepResult::success()
                                      : StepResult::failure("INFO replication: " + *local_error));
        };
        const auto polled_at = Clock::now();
        ports.read_local([weak = weak_from_this(), one_done, local_error,
                          polled_at](const ReplicationRead& read) {
            auto self = weak.lock();
            if (!self || self->stopped) return;
            if (read.facts)
                self->run(self->controller.on_replication(*read.facts, polled_at, Clock::now()));
            else
                *local_error = read.error;
            one_done();
        });
        for (auto& peer : peers)
            read_peer(peer, one_done);
    }

    // The hand-over from the old master's Redis, then our ROLE until master.
    void take_over_from(const conf::Endpoint& master, StepDone done) {
        ports.peer_hand_over(
            master, self_redis, failover.switchover_timeout,
            [weak = weak_from_this(), done = std::move(done)](const StepResult& result) {
                auto self = weak.lock();
                if (!self || self->stopped) return;
                if (!result.ok) return done(result);
                self->ports.confirm_role(std::nullopt, std::chrono::milliseconds{3000}, done);
            });
    }

    // The peer's Redis read every kPeerMasterPoll until it is master.
    void await_peer_master(const conf::Endpoint& redis, Clock::time_point give_up, StepDone done) {
        if (!ports.read_peer) return done(StepResult::failure("no way to read the peer's Redis"));
        ports.read_peer(redis, [weak = weak_from_this(), redis, give_up,
                                done = std::move(done)](const ReplicationRead& read) mutable {
            auto self = weak.lock();
            if (!self || self->stopped) return;
            if (read.facts && read.facts->role == RedisRole::master) return done(StepResult::success());
            if (Clock::now() >= give_up)
                return done(StepResult::failure(read.facts ? "its role is " + std::string(proxy::redis_name(read.facts->role)) : read.error));
            auto timer = std::make_shared<asio::steady_timer>(self->executor, kPeerMasterPoll);
            timer->async_wait([weak, timer, redis, give_up, done = std::move(done)](
                                  const boost::system::error_code& ec) mutable {
                auto again = weak.lock();
                if (ec || !again || again->stopped) return;
                again->await_peer_master(redis, give_up, std::move(done));
            });
        });
    }

    // Runs `tick` on `timer` every `interval` until stop() cancels it.
    void every(asio::steady_timer& timer, std::chrono::milliseconds interval, void (Impl::*tick)()) {
        timer.expires_after(interval);
        timer.async_wait([weak = weak_from_this(), &timer, interval,
                          tick](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped) return;
            ((*self).*tick)();
            self->every(timer, interval, tick);
        });
    }

    // Split-brain protection: a witness answers when a TCP connect to it
    // succeeds or is refused (either way the host is there); silence is not.
    void probe_witnesses() {
        if (failover.witnesses.empty() || probing) return;
        probing = true;
        auto state = std::make_shared<WitnessRound>();
        state->remaining = failover.witnesses.size();
        for (const auto& w : failover.witnesses) {
            auto socket = std::make_shared<asio::ip::tcp::socket>(executor);
            auto timer = std::make_shared<asio::steady_timer>(executor, failover.witness_timeout);
            timer->async_wait([socket](const boost::system::error_code& ec) {
                if (!ec) socket->close();
            });
            socket->async_connect(
                asio::ip::tcp::endpoint(w.host, w.port),
                [weak = weak_from_this(), state, socket, timer,
                 text = w.to_string()](const boost::system::error_code& ec) {
                    timer->cancel();
                    const bool answered = !ec || ec == asio::error::connection_refused;
                    if (answered) state->reachable = true;
                    else state->detail += (state->detail.empty() ? "" : ", ") + text + ": " +
                                          (ec == asio::error::operation_aborted ? "timed out"
                                                                                 : ec.message());
                    if (--state->remaining > 0) return;
                    auto self = weak.lock();
                    if (!self || self->stopped) return;
                    self->probing = false;
                    self->run(self->controller.on_witness(state->reachable, state->detail,
                                                          Clock::now()));
                });
        }
    }

    struct WitnessRound {
        std::size_t remaining = 0;
        bool reachable = false;
        std::string detail;
    };

    std::string fault_reason() const {
        if (health.link_down()) return health.link_down_reason();
        return health.role_fault_reason().empty() ? health.last_error()
                                                  : health.role_fault_reason();
    }

    template <typename F> void post(F f) {
        asio::post(executor, [weak = weak_from_this(), f = std::move(f)] {
            if (auto self = weak.lock(); self && !self->stopped) f(*self);
        });
    }

    void arm() {
        const auto when = controller.next_deadline();
        if (when == armed_for) return;
        armed_for = when;
        deadline.cancel();
        if (!when) return;
        deadline.expires_at(*when);
        deadline.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped) return;
            self->armed_for.reset();
            self->run(self->controller.handle_timeout(Clock::now()));
        });
    }

    void poll() {
        if (stopped || polling || !ports.read_replication) return;
        polling = true;
        const auto polled_at = Clock::now();
        ports.read_replication([weak = weak_from_this(), polled_at](const ReplicationRead& read) {
            auto self = weak.lock();
            if (!self || self->stopped) return;
            self->polling = false;
            self->on_read(read, polled_at);
        });
    }

    void on_read(const ReplicationRead& read, Clock::time_point polled_at) {
        on_check(RedisCheck{true, read.facts.has_value(), read.error, {}, read.refused, read.facts}, polled_at);
    }

    void on_check(const RedisCheck& check, Clock::time_point polled_at) {
        if (!check.ok && check.refused)
            return apply(health.on_refused(check.error));
        if (!check.periodic) return log->debug("backend connection: {}", check.error);
        if (!check.ok) {
            log->debug("health check: {}", check.error);
            return apply(health.on_check(false, check.error));
        }
        apply(health.on_check(true));
        if (check.replication)
            run(controller.on_replication(*check.replication, polled_at, Clock::now()));
    }

    void notify_if_settled() {
        if (settled_waiters.empty() || !controller.settled()) return;
        for (auto& done : std::exchange(settled_waiters, {}))
            asio::post(executor, std::move(done));
    }

    asio::any_io_executor executor;
    Controller controller;
    HealthTracker health;
    std::chrono::milliseconds poll_interval;
    RolePorts ports;
    ElectionPort election;
    std::shared_ptr<spdlog::logger> log;
    asio::steady_timer deadline;
    std::optional<TimePoint> armed_for;
    asio::steady_timer poll_timer;
    asio::steady_timer peer_timer;
    asio::steady_timer witness_timer;
    conf::Endpoint self_redis;
    conf::FailoverConfig failover;
    std::vector<Peer> peers;
    SwitchoverReply switchover_reply; // the running switchover's requester
    std::function<void(const TransitionDone&)> on_transition;
    std::vector<std::function<void()>> settled_waiters;
    bool eligible = true; // until the controller says otherwise
    bool probing = false;
    bool polling = false;
    bool stopped = false;
};

ControllerDriver::ControllerDriver(asio::any_io_executor executor, const conf::Config& config,
                                   RolePorts ports, ElectionPort election,
                                   std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>(std::move(executor), config, std::move(ports),
                                   std::move(election), std::move(log))) {}

ControllerDriver::~ControllerDriver() {
    stop();
}

void ControllerDriver::start() {
    auto& d = *impl_;
    d.poll_peers();
    d.every(d.peer_timer, d.poll_interval, &Impl::poll_peers);
    if (!d.failover.witnesses.empty()) {
        d.probe_witnesses();
        d.every(d.witness_timer, d.failover.witness_interval, &Impl::probe_witnesses);
    }
    if (d.failover.min_replicas > 0 && d.ports.config_set) {
        // Split-brain protection in Redis itself: a master without enough
        // replicas refuses writes (what it would have to drop later).
        d.ports.config_set(
            {{"min-replicas-to-write", std::to_string(d.failover.min_replicas)},
             {"min-replicas-max-lag", std::to_string(d.failover.min_replicas_max_lag.count())}},
            [weak = std::weak_ptr<Impl>(impl_)](const StepResult& r) {
                if (auto self = weak.lock(); self && !r.ok)
                    self->log->error("setting min-replicas-to-write: {}", r.error);
            });
    }
    if (!d.ports.read_replication) return;
    d.poll();
    d.every(d.poll_timer, d.poll_interval, &Impl::poll);
}

void ControllerDriver::stop() {
    impl_->stopped = true;
    impl_->deadline.cancel();
    impl_->poll_timer.cancel();
    impl_->peer_timer.cancel();
    impl_->witness_timer.cancel();
}

void ControllerDriver::on_transition(std::function<void(const TransitionDone&)> callback) {
    impl_->on_transition = std::move(callback);
}

void ControllerDriver::switchover(const std::string& to, SwitchoverReply reply) {
    impl_->post([to, reply = std::move(reply)](Impl& self) {
        auto actions = self.controller.request_switchover(to, Clock::now());
        // Refused at once: the answer is this request's, not the running one's.
        if (!actions.empty() && std::holds_alternative<SwitchoverDone>(actions.front())) {
            const auto& refused = std::get<SwitchoverDone>(actions.front());
            self.log->warn("switchover refused: {}", refused.text);
            return reply(false, refused.text);
        }
        self.switchover_reply = std::move(reply);
        self.run(actions);
    });
}

void ControllerDriver::force_promotion(SwitchoverReply reply) {
    impl_->post([reply = std::move(reply)](Impl& self) {
        std::string text;
        self.run(self.controller.force_promotion(Clock::now(), text));
        reply(true, text);
    });
}

void ControllerDriver::become_master(bool preempting) {
    impl_->on_election(BecomeMaster{preempting});
}
void ControllerDriver::become_backup(const std::optional<MasterInfo>& master) {
    impl_->on_election(BecomeBackup{master});
}
void ControllerDriver::enter_fault() {
    impl_->on_election(EnterFault{});
}
void ControllerDriver::master_changed(const MasterInfo& master) {
    impl_->on_election(MasterChanged{master});
}
void ControllerDriver::stopped() {
    impl_->on_election(EnterInitialize{});
}

void ControllerDriver::on_redis_check(RedisCheck check) {
    // The check started `latency` before now: facts read before the last
    // completed plan are then not mistaken for drift.
    const auto polled_at =
        Clock::now() - std::chrono::duration_cast<Clock::duration>(check.latency);
    impl_->post(
        [check = std::move(check), polled_at](Impl& self) { self.on_check(check, polled_at); });
}

void ControllerDriver::on_link(bool up, std::string why) {
    impl_->post([up, why = std::move(why)](Impl& self) { self.apply(self.health.on_link(up, why)); });
}

void ControllerDriver::when_settled(std::function<void()> done) {
    impl_->settled_waiters.push_back(std::move(done));
    impl_->notify_if_settled();
}

RoleStatus ControllerDriver::status() const {
    return role_status(impl_->controller, impl_->health);
}

const Controller& ControllerDriver::controller() const {
    return impl_->controller;
}
const HealthTracker& ControllerDriver::health() const {
    return impl_->health;
}

} // namespace redvip::election
