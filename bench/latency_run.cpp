#include "bench/latency_run.hpp"

#include "bench/load_connection.hpp"
#include "bench/run_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>
#include <memory>

namespace redvip::bench {

namespace {

struct TargetLoad {
    Endpoint endpoint;
    TargetStats stats;
    std::vector<std::unique_ptr<LoadConnection>> connections;
};

class LatencyRun {
public:
    LatencyRun(const LatencyOptions& options)
        : options_(options)
        , group_(io_)
        , watchdog_(io_)
        , progress_(options.progress) {
        rounds_ = options.compare ? kCompareRounds : 1;
        if (options.requests)
            rounds_ = std::max<std::uint64_t>(1, std::min(rounds_, *options.requests));
        add_target(options.target);
        if (options.compare) add_target(*options.compare);
        control_.stop_all = [this] { stop_all(); };
    }

    LatencyReport run() {
        asio::co_spawn(io_, main(), [this](std::exception_ptr e) { finish(e); });
        asio::co_spawn(io_, watch(), asio::detached);
        io_.run();
        progress_.clear();
        if (control_.failed) throw BenchError(control_.failure);
        return report();
    }

private:
    void add_target(const Endpoint& endpoint) {
        auto& t = *targets_.emplace_back(std::make_unique<TargetLoad>());
        t.endpoint = endpoint;
        for (std::uint64_t i = 0; i < options_.connections; ++i)
            t.connections.push_back(std::make_unique<LoadConnection>(
                io_, t.stats, control_, options_.workload, 0x5eed0000 + 1000 * targets_.size() + i,
                i, options_.connections, options_.pipeline));
    }

    void finish(std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                control_.fail(ex.what());
            }
        }
        done_ = true;
        watchdog_.cancel();
        stop_all();
    }

    void stop_all() {
        for (auto& t : targets_)
            for (auto& c : t->connections)
                c->stop();
    }

    asio::awaitable<void> main() {
        const auto timeout = seconds(options_.connect_timeout_s);
        for (auto& t : targets_)
            for (auto& c : t->connections)
                co_await c->open(t->endpoint, options_.password, timeout);
        started_ns_ = now_ns();
        for (std::uint64_t round = 0; round < rounds_ && !control_.failed; ++round) {
            // ABBA: the target that goes second in one round goes first in the next.
            for (std::size_t k = 0; k < targets_.size() && !control_.failed; ++k)
                co_await run_round(*targets_[round % 2 == 0 ? k : targets_.size() - 1 - k], round);
        }
    }

    asio::awaitable<void> run_round(TargetLoad& t, std::uint64_t round) {
        RoundPlan plan;
        plan.start_ns = now_ns();
        plan.rate = options_.rate;
        std::uint64_t remaining = 0;
        if (options_.requests) {
            plan.requests = share_of(*options_.requests, round, rounds_);
            remaining = plan.requests;
            if (!plan.rate) plan.remaining = &remaining;
        }
        if (options_.duration_s)
            plan.deadline_ns = plan.start_ns +
                               seconds(*options_.duration_s / static_cast<double>(rounds_)).count();
        group_.add(2 * t.connections.size());
        for (auto& c : t.connections)
            c->start_round(plan, [this] { group_.done(); });
        co_await group_.wait();
        t.stats.seconds += static_cast<double>(now_ns() - plan.start_ns) / 1e9;
    }

    // Fails a connection whose requests went unanswered for too long, and
    // draws the progress line; one cheap timer for the whole run.
    asio::awaitable<void> watch() {
        const std::int64_t limit = seconds(options_.reply_timeout_s).count();
        while (!done_) {
            watchdog_.expires_after(std::chrono::milliseconds(200));
            boost::system::error_code ec;
            co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (done_) break;
            const std::int64_t now = now_ns();
            for (auto& t : targets_)
                for (auto& c : t->connections)
                    if (c->in_flight() > 0 && now - c->last_progress_ns() > limit)
                        control_.fail(fmt::format("{}: no reply within {:g} s", c->target().text(),
                                                  options_.reply_timeout_s));
            show_progress(now);
        }
    }

    void show_progress(std::int64_t now) {
        if (started_ns_ == 0 || now - progress_shown_ns_ < 1'000'000'000) return;
        progress_shown_ns_ = now;
        std::uint64_t replies = 0;
        for (auto& t : targets_)
            replies += t->stats.replies;
        const double elapsed = static_cast<double>(now - started_ns_) / 1e9;
        progress_.show(fmt::format("latency: {:.1f} s, {} replies, {:.0f} ops/s", elapsed, replies,
                                   elapsed > 0 ? static_cast<double>(replies) / elapsed : 0.0));
    }

    LatencyReport report() const {
        LatencyReport r;
        r.settings = {options_.connections,
                      options_.pipeline,
                      std::string(command_mix_name(options_.workload.command)),
                      options_.workload.value_size,
                      options_.workload.keyspace,
                      options_.rate,
                      rounds_};
        auto figures = [](const TargetLoad& t) {
            return latency_figures(t.endpoint.text(), t.stats.histogram, t.stats.replies,
                                   t.stats.errors, t.stats.seconds);
        };
        r.target = figures(*targets_[0]);
        if (targets_.size() > 1) r.compare = figures(*targets_[1]);
        return r;
    }

    const LatencyOptions& options_;
    asio::io_context io_;
    RunControl control_;
    WaitGroup group_;
    asio::steady_timer watchdog_;
    ProgressLine progress_;
    std::vector<std::unique_ptr<TargetLoad>> targets_;
    std::uint64_t rounds_ = 1;
    std::int64_t started_ns_ = 0;
    std::int64_t progress_shown_ns_ = 0;
    bool done_ = false;
};

} // namespace

LatencyReport run_latency(const LatencyOptions& options) {
    LatencyRun run(options);
    return run.run();
}

} // namespace redvip::bench
