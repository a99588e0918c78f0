#include "election/controller_driver.hpp"

#include "election/admin.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace redvip::election {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

void use_redis(RolePorts& ports, RedisExecutor& redis, bool poll) {
    ports.promote_redis = [&redis](StepDone done) { redis.async_promote(std::move(done)); };
    ports.replicate_redis = [&redis](const conf::Endpoint& master, StepDone done) {
        redis.async_replicate(master, std::move(done));
    };
    if (!poll) return;
    ports.read_replication = [&redis](RedisExecutor::ReadDone done) {
        redis.async_read_replication(std::move(done));
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
        , poll_timer(ex) {}

    void on_election(const Action& action) { run(controller.on_election(action, Clock::now())); }

    // Carries out the controller's actions in order, then re-arms the timer.
    void run(const ControllerActions& actions) {
        for (const auto& action : actions) {
            if (const auto* proxy = std::get_if<SetProxy>(&action)) {
                log->info("step: proxy {}", to_string(proxy->mode));
                ports.set_proxy(proxy->mode);
            } else if (const auto* step = std::get_if<RunStep>(&action)) {
                start_step(*step);
            } else if (const auto* fault = std::get_if<RoleFault>(&action)) {
                apply(health.on_role_fault(fault->fault, fault->reason));
            } else if (const auto* notice = std::get_if<Notice>(&action)) {
                log->warn("{}", notice->text);
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
            void operator()(const AcquireVip&) const { d.ports.acquire_vip(std::move(done)); }
            void operator()(const ReleaseVip&) const { d.ports.release_vip(std::move(done)); }
            void operator()(const PromoteRedis&) const { d.ports.promote_redis(std::move(done)); }
            void operator()(const ReplicateRedis& r) const {
                d.ports.replicate_redis(r.master, std::move(done));
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
                post(
                    [priority = p->priority](Impl& self) { self.election.set_priority(priority); });
                if (health.checks_ok()) run(controller.on_health(true, Clock::now()));
            }
        }
    }

    std::string fault_reason() const {
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
        on_check(RedisCheck{true, read.facts.has_value(), read.error, {}, read.facts}, polled_at);
    }

    void on_check(const RedisCheck& check, Clock::time_point polled_at) {
        if (!check.ok && is_connection_refused(check.error))
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

    void schedule_poll() {
        poll_timer.expires_after(poll_interval);
        poll_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped) return;
            self->poll();
            self->schedule_poll();
        });
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
    std::vector<std::function<void()>> settled_waiters;
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
    if (!impl_->ports.read_replication) return;
    impl_->poll();
    impl_->schedule_poll();
}

void ControllerDriver::stop() {
    impl_->stopped = true;
    impl_->deadline.cancel();
    impl_->poll_timer.cancel();
}

void ControllerDriver::become_master() {
    impl_->on_election(BecomeMaster{});
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

void ControllerDriver::when_settled(std::function<void()> done) {
    impl_->settled_waiters.push_back(std::move(done));
    impl_->notify_if_settled();
}

nlohmann::json ControllerDriver::status() const {
    return controller_status(impl_->controller, impl_->health,
                             StatusClock{Clock::now(), std::chrono::system_clock::now()});
}

const Controller& ControllerDriver::controller() const {
    return impl_->controller;
}
const HealthTracker& ControllerDriver::health() const {
    return impl_->health;
}

} // namespace redvip::election
