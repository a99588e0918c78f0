// The election's side of a node, assembled: the VRRP runner, the role
// controller's driver with its Redis executors, the admin socket and its
// commands, the hooks, the state file, the node's status and its stop
// order. The daemon hands in what the node needs of the proxy and of the
// VIP (RolePorts' proxy and VIP members, and two readers for the status),
// and feeds it the proxy's health reports and the interface's link events.
//
// Threading: every member runs on the executor given at construction (the
// daemon's single-threaded io_context), except where a comment says so.
#pragma once

#include "conf/config.hpp"
#include "election/node/admin.hpp"
#include "election/node/daemon.hpp"
#include "election/node/hooks.hpp"
#include "election/node/records.hpp"
#include "election/node/status.hpp"
#include "election/role/driver.hpp"
#include "election/role/redis_executor.hpp"
#include "election/vrrp/runner.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace redvip::election {

// What the node needs of the parts it does not own: the proxy and the VIP.
struct NodePorts {
    // The proxy's serving state; `relay` is set only with relaying or
    // closing, and means Proxy::relay_to (relaying without a target is
    // turned into fenced before this is called).
    std::function<void(ProxyMode, const std::optional<conf::Endpoint>& relay)> set_proxy;
    // Proxy::when_drained: `done(busy)` once nothing awaits the local Redis
    // (or the drain gave up with `busy` sessions still waiting), on any thread.
    std::function<void(std::function<void(std::size_t busy)> done)> drain_proxy;
    std::function<std::string()> proxy_state; // the proxy's serving state, named
    std::function<void(StepDone)> acquire_vip;
    std::function<void(StepDone)> release_vip;
    std::function<vip::VipCounters()> vip_counters;
};

class ElectionNode {
public:
    // `config` must outlive the node.
    ElectionNode(boost::asio::any_io_executor executor, const conf::Config& config,
                 const Logs& logs, NodePorts ports);

    // Builds the VRRP instance and opens the admin socket; an error sentence
    // when either cannot start. The election itself waits for begin().
    std::string open();
    // The driver and the election start (after stale VIPs are removed).
    void begin();

    // The proxy's health reports (Proxy::on_health) and the interface's link.
    void on_redis_check(RedisCheck check);
    void on_link(bool up, std::string why);

    NodeStatus status() const;
    // From another thread (the metrics server's): the status read on the
    // node's executor, or nullopt when it did not answer within `within`.
    std::optional<NodeStatus> status_from_another_thread(std::chrono::milliseconds within);

    // The stop order (daemon.hpp, stop_node): priority 0, the role steps
    // settle, the VIP released, the node's parts close, `close_others` (the
    // proxy, the VIP manager), the hooks' stop; then `done`.
    void stop(std::function<void()> close_others, std::function<void()> done);

private:
    RolePorts role_ports();

    boost::asio::any_io_executor executor_;
    const conf::Config& config_;
    NodePorts ports_;
    LoggerPtr log_;
    RedisExecutor redis_;
    PeerRedis peer_redis_;
    ControllerDriver driver_;
    AdminServer admin_;
    LoggerPtr vrrp_log_;
    std::shared_ptr<HookRunner> hooks_;
    TransitionRecorder records_;
    std::shared_ptr<Election> election_;
};

} // namespace redvip::election
