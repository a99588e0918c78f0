// The controller's driver: the thin adapter between the pure Controller and
// HealthTracker and the world. It hears the election (as its RoleListener),
// runs each step on the ports main gives it and feeds completions back, arms
// one timer from next_deadline(), counts health reports (rise/fall) and
// tells the election what health decides.
//
// main constructs it with a RolePorts (proxy, VIP, Redis) and an
// ElectionPort, passes it to make_election as the listener, and feeds it the
// proxy's health reports (Proxy::on_health) through on_redis_check. Without
// the proxy's checker, ports.read_replication makes the driver poll INFO
// replication itself.
//
// Threading: everything runs on the executor given at construction, which
// must be the election's; only on_redis_check may be called from any thread.
#pragma once

#include "conf/config.hpp"
#include "election/role/controller.hpp"
#include "election/role/health.hpp"
#include "election/role/redis_executor.hpp"
#include "election/role/status.hpp"
#include "election/vrrp/runner.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility> // Boost 1.74's Asio uses std::exchange without including it

namespace spdlog {
class logger;
}

namespace redvip::election {

using StepDone = std::function<void(const StepResult&)>;

// What the controller drives. Each async member calls its StepDone exactly
// once, never from inside the call (VipManager and RedisExecutor promise both).
struct RolePorts {
    // Synchronous: Proxy::set_state, or Proxy::relay_to(*relay) for RELAYING.
    std::function<void(ProxyMode, const std::optional<conf::Endpoint>& relay)> set_proxy;
    // Proxy::when_drained: done once nothing awaits the local Redis's reply.
    std::function<void(StepDone)> drain_proxy;
    std::function<void(StepDone)> acquire_vip;
    std::function<void(StepDone)> release_vip;
    std::function<void(StepDone)> promote_redis;
    std::function<void(const conf::Endpoint&, StepDone)> replicate_redis;
    // The switchover: the hand-over from the local Redis to `to` (async_switch_to).
    std::function<void(const conf::Endpoint& to, std::chrono::milliseconds timeout, StepDone)>
        hand_off;
    // ROLE of the local Redis until master (nullopt) or replica of `master`.
    std::function<void(const std::optional<conf::Endpoint>&, std::chrono::milliseconds, StepDone)>
        confirm_role;
    // INFO replication of the local Redis now (CheckPeers reads it afresh).
    std::function<void(RedisExecutor::ReadDone)> read_local;
    // CONFIG SET on the local Redis ([failover] min_replicas at start).
    std::function<void(std::vector<std::pair<std::string, std::string>>, StepDone)> config_set;
    // A peer's Redis (by its [[peer]] redis address): INFO replication, and
    // the hand-over from it to `to` (RedisExecutor::async_switch_to).
    std::function<void(const conf::Endpoint& peer, RedisExecutor::ReadDone)> read_peer;
    std::function<void(const conf::Endpoint& peer, const conf::Endpoint& to,
                       std::chrono::milliseconds timeout, StepDone)>
        peer_hand_over;
    // Optional: when set, the driver polls it every [health] interval (facts
    // and a periodic check at once). Leave it empty when the proxy's health
    // checker feeds on_redis_check: one poller is enough.
    std::function<void(RedisExecutor::ReadDone)> read_replication;
};
// Fills promote_redis and replicate_redis from `redis` (and read_replication
// when `poll`); `redis` must outlive the driver.
void use_redis(RolePorts& ports, RedisExecutor& redis, bool poll = false);

// One RedisExecutor per [[peer]]'s Redis (with [redis] password), for
// read_peer and peer_hand_over; must outlive the driver. Timeouts are tighter
// than the local Redis's: a dead peer is known within a health interval or two.
class PeerRedis {
public:
    PeerRedis(boost::asio::any_io_executor executor, const conf::Config& config,
              std::shared_ptr<spdlog::logger> log);
    RedisExecutor* find(const conf::Endpoint& redis);
    void stop();

private:
    std::vector<std::pair<conf::Endpoint, std::unique_ptr<RedisExecutor>>> executors_;
};
void use_peers(RolePorts& ports, PeerRedis& peers);

// What the admin socket's "switchover" answers: ok, and a sentence.
using SwitchoverReply = std::function<void(bool ok, const std::string& text)>;

// One health report on the local Redis, in the election's terms (main
// translates proxy::HealthReport: Source::check is periodic, Source::pool not).
struct RedisCheck {
    bool periodic = true; // a periodic check: counts toward rise/fall
    bool ok = false;
    std::string error;
    std::chrono::microseconds latency{0};        // from the check's start to its answer
    bool refused = false; // a refused connect: Redis is gone, counted as `fall` failures at once
    std::optional<ReplicationFacts> replication; // a periodic check's facts, when ok
};

// What the driver tells the election (Election::set_fault / set_priority).
struct ElectionPort {
    std::function<void(bool fault)> set_fault;
    std::function<void(std::uint8_t effective_priority)> set_priority;
};

class ControllerDriver final : public RoleListener {
public:
    ControllerDriver(boost::asio::any_io_executor executor, const conf::Config& config,
                     RolePorts ports, ElectionPort election, std::shared_ptr<spdlog::logger> log);
    ~ControllerDriver() override; // stop()
    ControllerDriver(const ControllerDriver&) = delete;
    ControllerDriver& operator=(const ControllerDriver&) = delete;

    // Starts the INFO replication poll (the first one at once) if
    // ports.read_replication is set; otherwise nothing to start.
    void start();
    // Cancels the timers; completions that arrive later are dropped. Idempotent.
    void stop();

    // RoleListener: the election's outcomes.
    void become_master(bool preempting) override;
    void become_backup(const std::optional<MasterInfo>& master) override;
    void enter_fault() override;
    void master_changed(const MasterInfo& master) override;
    void stopped() override;

    // A health report (any thread: posted to the executor). Periodic checks
    // count toward rise/fall; a refused connection, periodic or from a pool,
    // counts as `fall` failures at once; other pool failures (an idle
    // connection closed by Redis's `timeout`, say) are left to the next check.
    void on_redis_check(RedisCheck check);

    // The VRRP interface's link went down (a Fault, as in keepalived) or came
    // back (which clears only that: failing checks or a role fault remain).
    void on_link(bool up, std::string why = {});

    // Moves mastership to the peer named `to` (empty: the best caught-up
    // one); `reply` once, when the peer holds the role or it failed.
    void switchover(const std::string& to, SwitchoverReply reply);

    // `redvip promote --force`: this node may take the master role although
    // a peer that no longer answers held data it lacks; `reply` at once.
    void force_promotion(SwitchoverReply reply);

    // Called after each completed role transition (hooks, the state file).
    void on_transition(std::function<void(const TransitionDone&)> callback);

    // `done` is posted once no plan runs and no step is in flight (at once if
    // so already): the shutdown path waits on it after Election::shutdown.
    void when_settled(std::function<void()> done);

    // The controller's and health's state, for `redvip status` and metrics.
    RoleStatus status() const;
    const Controller& controller() const;
    const HealthTracker& health() const;

private:
    class Impl;
    std::shared_ptr<Impl> impl_; // shared with posted handlers and completions
};

} // namespace redvip::election
