#pragma once
// One connection of the latency benchmark: a writer coroutine that keeps up
// to `pipeline` requests in flight (closed loop) or sends each request when
// it is due (open loop), and a reader coroutine that parses replies in place
// and records each latency from its request's intended send time.

#include "bench/connection.hpp"
#include "bench/histogram.hpp"
#include "bench/workload.hpp"

#include <functional>
#include <optional>

namespace redvip::bench {

// What one target's connections record, shared by them (one thread).
struct TargetStats {
    Histogram histogram;
    std::uint64_t replies = 0;
    std::uint64_t errors = 0;
    double seconds = 0;
};

// One round of load against one target.
struct RoundPlan {
    std::int64_t start_ns = 0;
    std::optional<std::int64_t> deadline_ns;
    std::optional<double> rate;          // open loop when set (for the whole target)
    std::uint64_t requests = UINT64_MAX; // the round's budget for the whole target
    std::uint64_t* remaining = nullptr;  // closed loop: the budget left, shared by the connections
};

// The run's single failure path: the first failure stops every connection.
struct RunControl {
    bool failed = false;
    std::string failure;
    std::function<void()> stop_all;
    void fail(const std::string& message) {
        if (failed) return;
        failed = true;
        failure = message;
        if (stop_all) stop_all();
    }
};

class LoadConnection {
public:
    // Connection `index` of `connections` to one target; `seed` picks its keys.
    LoadConnection(asio::io_context& io, TargetStats& stats, RunControl& control,
                   const WorkloadSpec& workload, std::uint64_t seed, std::uint64_t index,
                   std::uint64_t connections, std::uint64_t pipeline);

    asio::awaitable<void> open(const Endpoint& target, const std::string& password,
                               Clock::duration timeout);
    // Spawns this round's writer and reader; `done` is called once by each when it ends.
    void start_round(const RoundPlan& plan, const std::function<void()>& done);
    void stop();

    // For the watchdog: requests in flight and when this connection last made progress.
    std::size_t in_flight() const { return inflight_count_; }
    std::int64_t last_progress_ns() const { return last_progress_ns_; }
    const Endpoint& target() const { return link_.target(); }

private:
    asio::awaitable<void> writer();
    asio::awaitable<void> reader();
    asio::awaitable<void> wait_until(std::optional<std::int64_t> when_ns);
    std::uint64_t sendable(std::int64_t now_ns) const;
    void push_inflight(std::int64_t intended_ns);
    std::int64_t pop_inflight();
    bool consume_replies(std::int64_t now);

    RedisLink link_;
    asio::steady_timer wake_;
    TargetStats& stats_;
    RunControl& control_;
    RequestGenerator generator_;
    std::uint64_t index_;
    std::uint64_t connections_;
    std::uint64_t pipeline_;
    std::string out_;
    // Intended send times of requests in flight, a ring of `pipeline` slots.
    std::vector<std::int64_t> inflight_;
    std::size_t inflight_head_ = 0;
    std::size_t inflight_count_ = 0;

    RoundPlan plan_;
    std::optional<SendSchedule> schedule_;
    std::uint64_t my_budget_ = 0; // open loop: this connection's share of the round
    std::uint64_t sent_ = 0;
    bool writer_done_ = false;
    bool writer_waiting_ = false;
    std::int64_t last_progress_ns_ = 0;
};

} // namespace redvip::bench
