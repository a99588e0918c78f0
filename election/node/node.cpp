// The election's side of a node, assembled (node.hpp).
#include "election/node/node.hpp"

#include "election/node/commands.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <spdlog/spdlog.h>
#include <variant>

namespace redvip::election {

ElectionNode::ElectionNode(boost::asio::any_io_executor executor, const conf::Config& config,
                           const Logs& logs, NodePorts ports)
    : executor_(executor)
    , config_(config)
    , ports_(std::move(ports))
    , log_(logs.make("main"))
    , redis_(executor, config.redis, {}, logs.make("redis"))
    , peer_redis_(executor, config, logs.make("peers"))
    , driver_(executor, config, role_ports(),
              {[this](bool fault) { election_->set_fault(fault); },
               [this](std::uint8_t priority) { election_->set_priority(priority); }},
              logs.make("controller"))
    , admin_(executor, config.admin.socket, logs.make("admin"))
    , vrrp_log_(logs.make("vrrp"))
    , hooks_(HookRunner::create(executor, config.hooks, config.node.name, logs.make("hooks")))
    , records_(config.node.name, config.redis.address, config.node.state_dir, hooks_, log_) {}

RolePorts ElectionNode::role_ports() {
    RolePorts p;
    p.set_proxy = [this](ProxyMode mode, const std::optional<conf::Endpoint>& relay) {
        const bool relayed = mode == ProxyMode::relaying || mode == ProxyMode::closing;
        if (mode == ProxyMode::relaying && !relay) mode = ProxyMode::fenced;
        ports_.set_proxy(mode, relayed ? relay : std::nullopt);
    };
    p.drain_proxy = [this](StepDone done) {
        ports_.drain_proxy([this, done = std::move(done)](std::size_t busy) {
            boost::asio::post(executor_, [this, done, busy] {
                if (busy > 0)
                    log_->warn("proxy drain: {} sessions still awaiting Redis, going on", busy);
                done(StepResult::success());
            });
        });
    };
    p.acquire_vip = ports_.acquire_vip;
    p.release_vip = ports_.release_vip;
    use_redis(p, redis_); // health and facts come from the proxy's checks
    use_peers(p, peer_redis_);
    return p;
}

std::string ElectionNode::open() {
    auto made = make_election(executor_, config_, driver_, vrrp_log_);
    if (auto* error = std::get_if<std::string>(&made)) return *error;
    election_ = std::get<std::shared_ptr<Election>>(made);
    records_.load();
    driver_.on_transition(
        [this](const TransitionDone& t) { records_.record(t, driver_.controller()); });
    serve_node_commands(admin_, driver_, [this] {
        return to_json(status(),
                       {std::chrono::steady_clock::now(), std::chrono::system_clock::now()});
    });
    return admin_.start();
}

void ElectionNode::begin() {
    driver_.start();
    election_->start();
}

void ElectionNode::on_redis_check(RedisCheck check) {
    driver_.on_redis_check(std::move(check));
}

// keepalived enters FAULT when its interface goes down; so do we. The link is
// one input of the health verdict: coming back clears only its part.
void ElectionNode::on_link(bool up, std::string why) {
    if (up)
        log_->info("interface up");
    else
        log_->warn("interface down ({}): entering Fault", why);
    driver_.on_link(up, std::move(why));
}

NodeStatus ElectionNode::status() const {
    return {config_.node.name, ports_.proxy_state(),  election_->status(),
            driver_.status(),  ports_.vip_counters(), hooks_->counters()};
}

std::optional<NodeStatus>
ElectionNode::status_from_another_thread(std::chrono::milliseconds within) {
    auto promise = std::make_shared<std::promise<NodeStatus>>();
    auto future = promise->get_future();
    boost::asio::post(executor_, [this, promise] { promise->set_value(status()); });
    if (future.wait_for(within) != std::future_status::ready) return std::nullopt;
    return future.get();
}

void ElectionNode::stop(std::function<void()> close_others, std::function<void()> done) {
    auto release_vip = [this](std::function<void()> next) {
        ports_.release_vip([this, next = std::move(next)](const StepResult& r) {
            if (!r.ok) log_->warn("releasing the VIP: {}", r.error);
            next();
        });
    };
    stop_node({[this](auto next) { election_->shutdown(std::move(next)); },
               [this](auto next) { driver_.when_settled(std::move(next)); }, std::move(release_vip),
               [this, close_others = std::move(close_others), done = std::move(done)] {
                   driver_.stop();
                   redis_.stop();
                   peer_redis_.stop();
                   admin_.stop();
                   close_others();
                   hooks_->stop(done); // on_stop ran with the stopped transition
               }});
}

} // namespace redvip::election
