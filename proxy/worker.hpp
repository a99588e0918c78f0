// One proxy thread: its event loop, listener, buffers, backend pool and
// sessions. Nothing here is shared with another thread except `Shared`.
#pragma once

#include "proxy/backend.hpp"
#include "proxy/buffer.hpp"
#include "proxy/linger.hpp"
#include "proxy/link.hpp"
#include "proxy/proxy.hpp"
#include "proxy/share_policy.hpp"
#include "proxy/shared_link.hpp"

#include "proxy/event_loop.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace spdlog {
class logger;
}

namespace redvip::proxy {

class Session;

// The reply to any command while this node is not the master.
inline constexpr std::string_view kFencedReply = "-READONLY redvip: this node is not the master\r\n";

// State every thread reads: the serving state and the client count that
// max_clients bounds.
struct Shared {
    const conf::Config& config;
    std::shared_ptr<spdlog::logger> log;
    std::atomic<ServingState> state{ServingState::serving};
    std::atomic<int> clients{0};
};

// Plain counters: only this worker's thread writes them; stats() reads them
// on that thread too.
struct WorkerCounters {
    std::uint64_t accepted = 0, rejected = 0, commands = 0, bytes_in = 0, bytes_out = 0;
    std::uint64_t protocol_errors = 0, auth_failures = 0, backend_errors = 0, backend_timeouts = 0;
    std::uint64_t idle_timeouts = 0, fenced_replies = 0, hold_expired_replies = 0;
    std::uint64_t relayed_sessions = 0, retired_sessions = 0;
    std::array<std::uint64_t, kPinReasons> pins{}; // by PinReason: sessions that left shared mode
    std::array<LatencyHistogram, kCommandClasses> latency{}; // by CommandClass
};

struct Worker {
    Worker(Shared& shared, int spares, BackendEvents events);
    // Stops the sessions still open and frees them before the loop goes.
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    Shared& shared;
    EventLoop loop; // first of what lives on it: it goes last
    BufferPool buffers;
    BackendPool backends;
    WorkerCounters counters;
    std::unordered_set<Session*> sessions;
    Timer sweep;
    Lingerer linger; // clients hung up on after a last line (refused, protocol error, QUIT...)
    // Multiplexed mode: the shared links to the local Redis, and what the
    // server's command table says may share (from the last link connected).
    std::vector<std::unique_ptr<SharedLink>> shared_links;
    std::size_t next_shared = 0;
    SharePolicy share_policy;
    ServingState state = ServingState::serving; // this thread's copy of shared.state
    std::chrono::steady_clock::time_point state_since{}; // when this thread saw it change
    // HOLDING lasts at most hold_timeout from when this thread saw it: past
    // hold_until the sweep sets hold_expired, and held and new commands get
    // kHoldExpired until the state changes (clients see latency, then an error
    // they can retry, never an unbounded wait).
    std::chrono::steady_clock::time_point hold_until{};
    bool hold_expired = false;
    bool stopping = false;                      // set by Proxy::stop() on this thread

    // Where sessions' links go: the local pool, or while relaying the pool to
    // the peer's Redis (links bound to it share it, so it lives until the
    // last of them ends). A session whose link is on another pool than this
    // moves at its next command when clean, or is retired.
    std::shared_ptr<BackendPool> relay;
    BackendPool& current_pool() noexcept { return relay ? *relay : backends; }
    // when_drained() callers, answered by check_drained().
    std::vector<std::function<void(std::size_t busy)>> drains;
    std::chrono::steady_clock::time_point drain_until{};

    // A link on current_pool(), for a session's next command.
    std::shared_ptr<BackendLink> new_link();
    // A share of one of the shared links (round robin), for a session in
    // shared mode; null without [proxy] multiplex.
    std::shared_ptr<BackendLink> shared_view();
    // Answers the drain waiters once no session is busy, or past drain_until.
    void check_drained(std::chrono::steady_clock::time_point now);
};

} // namespace redvip::proxy
