// The RESP-aware proxy: clients connect to [proxy] listen (the VIP) and their
// commands reach the local Redis, transparently.
//
// Each client session is bound to one backend connection at its first command
// and keeps it for life, so every Redis feature (MULTI, blocking commands,
// pub/sub, SELECT, HELLO 3, CLIENT REPLY...) behaves as if connected directly.
// The election drives the serving state; with no [vrrp] the proxy is always
// serving.
#pragma once

#include "conf/config.hpp"
#include "proxy/command.hpp"
#include "proxy/health.hpp"
#include "proxy/prometheus.hpp"
#include "proxy/share_policy.hpp"

#include <utility> // Boost 1.74's Asio uses std::exchange without including it
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace redvip::proxy {

enum class ServingState : std::uint8_t {
    serving, // forward every command
    holding, // queue commands (bounded), so a promotion shows as latency, not errors
    fenced,  // this node is not the master: nothing reaches the local Redis
    // This node handed the master role to a peer (a switchover): commands go
    // to that peer's Redis, so clients see latency, not READONLY, until the
    // VIP has moved. Nothing reaches the local Redis.
    relaying,
    // The VIP is about to leave for that peer (a switchover's hand-off is
    // done, or the peer took over from this node's dead Redis): relaying
    // still (new connections too), and each connection closes once it is
    // quiet (every reply written, nothing unread), right after a reply or
    // kClosingPatience after this state began (session.hpp), so its client
    // reconnects to the new master between two requests. Without a relay,
    // as FENCED.
    closing,
};

std::string_view to_string(ServingState state) noexcept;

// How long when_drained() waits for requests in flight: a Redis that has not
// answered by then is not answering (the backend timeout ends those sessions).
inline constexpr std::chrono::milliseconds kDrainTimeout{1000};

// Counters summed over the proxy's threads; exported to metrics in one place.
struct ProxyStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_rejected = 0; // max_clients, or fenced
    std::uint64_t connections_active = 0;
    std::uint64_t commands = 0;
    std::uint64_t bytes_from_clients = 0;
    std::uint64_t bytes_to_clients = 0;
    std::uint64_t protocol_errors = 0;
    std::uint64_t auth_failures = 0;
    std::uint64_t backend_errors = 0;   // a session lost or could not get its backend
    std::uint64_t backend_timeouts = 0;
    std::uint64_t idle_timeouts = 0;
    std::uint64_t fenced_replies = 0;   // commands refused while fenced
    std::uint64_t hold_expired_replies = 0; // commands held past hold_timeout, then refused
    std::uint64_t state_changes = 0;
    std::uint64_t relayed_sessions = 0; // sessions that moved to the Redis relayed to
    std::uint64_t retired_sessions = 0; // closed because their state could not move
    // Multiplexed mode: open sessions by mode, sessions pinned by reason, the shared links.
    std::uint64_t sessions_shared = 0, sessions_pinned = 0;
    std::array<std::uint64_t, kPinReasons> pins{}; // by PinReason
    std::uint64_t shared_links_ready = 0;
    std::uint64_t shared_link_connects = 0, shared_link_failures = 0, shared_link_pauses = 0;
    std::uint64_t shared_link_requests = 0, shared_link_writes = 0, shared_link_reads = 0;
    ServingState state = ServingState::serving;
    // Reply latency of forwarded requests, indexed by CommandClass.
    std::array<LatencyHistogram, kCommandClasses> latency{};
};

// What the backend pools observe, as it happens: the health checker's fast path.
struct BackendObserver {
    std::function<void(const std::string& error)> on_failure; // refused, timed out, closed
    std::function<void()> on_success;
};

class Proxy {
public:
    Proxy(const conf::Config& config, std::shared_ptr<spdlog::logger> log, BackendObserver observer = {});
    ~Proxy();
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    // Health of the local Redis (health.hpp): every [health] interval_ms a
    // check's report (PING + INFO replication, [health] timeout_ms), and at once
    // each connection a pool fails to make or sees closed. Set before start();
    // without it no checks run. Always called on the proxy's first thread, one
    // call at a time, never after stop() returns: keep it short (post the
    // report to your own executor).
    void on_health(HealthCallback callback);

    // Binds the listener (before the VIP exists, with IP_FREEBIND) and starts
    // the threads. Throws std::system_error naming the address on failure.
    void start();
    // Closes the listener and every session, joins the threads. Idempotent.
    void stop();

    // SERVING, HOLDING, FENCED or CLOSING. SERVING and FENCED end relaying
    // (sessions point at the local Redis again; FENCED refuses them);
    // HOLDING and CLOSING keep where sessions point.
    void set_state(ServingState state);
    // RELAYING to `redis` (a peer's Redis, now the master): a clean session
    // moves its next command to a connection there; one whose connection holds
    // state (SELECT, MULTI, subscriptions...) is answered READONLY and closed
    // once its earlier replies are out (closed as soon as it is quiet, if it
    // is). New connections are served too. `then` CLOSING relays the same
    // way and closes each session once quiet; relaying to the same Redis
    // already, only the state changes (a RELAYING always starts anew).
    void relay_to(const conf::Endpoint& redis, ServingState then = ServingState::relaying);
    ServingState state() const noexcept;
    // `done(busy)` once no session has a request on the local Redis awaiting
    // its reply (blocking commands and subscriptions aside), or after
    // kDrainTimeout with `busy` the sessions still waiting. With HOLDING set
    // first, nothing more is sent: a switchover then pauses Redis's writes
    // knowing none of ours is caught in the pause. Called on a proxy thread.
    void when_drained(std::function<void(std::size_t busy)> done);

    boost::asio::ip::tcp::endpoint local_endpoint() const;
    // Sums every thread's counters: asks each thread and waits for it, so call
    // it from any thread but the proxy's own (e.g. the metrics thread, through
    // render_prometheus(stats())), and not during stop().
    ProxyStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace redvip::proxy
