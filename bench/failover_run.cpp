#include "bench/failover_run.hpp"

#include "bench/connection.hpp"
#include "bench/fault.hpp"
#include "bench/run_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>
#include <memory>
#include <random>

namespace redvip::bench {

namespace {

using asio::redirect_error;
using asio::use_awaitable;
using std::chrono::duration_cast;

Clock::time_point at_ns(std::int64_t ns) {
    return Clock::time_point(std::chrono::nanoseconds(ns));
}

// Outside the coroutine: g++ 12 miscompiles an initializer_list temporary in a coroutine frame.
std::string set_request(const std::string& prefix, std::uint64_t seq) {
    const std::string value = std::to_string(seq);
    return encode_command({"SET", prefix + value, value});
}

struct Writer {
    explicit Writer(asio::io_context& io) : link(io), timer(io) {}
    RedisLink link;
    asio::steady_timer timer;
    bool last_ok = true; // the last write was acknowledged, or the link made anew since
};

class FailoverRun {
public:
    explicit FailoverRun(const FailoverOptions& options)
        : options_(options)
        , group_(io_)
        , ticker_(io_)
        , fault_timer_(io_)
        , main_timer_(io_)
        , verify_link_(io_)
        , progress_(options.progress) {
        std::random_device random;
        prefix_ = fmt::format("redvip-bench:failover:{:08x}{:08x}:", random(), random());
        for (std::uint64_t i = 0; i < options.connections; ++i)
            writers_.push_back(std::make_unique<Writer>(io_));
    }

    FailoverReport run() {
        asio::co_spawn(io_, main(), [this](std::exception_ptr e) {
            if (e) failure_ = e;
        });
        io_.run();
        progress_.clear();
        if (failure_) std::rethrow_exception(failure_);
        FailoverReport report;
        report.target = options_.target.text();
        report.verify = options_.verify.value_or(options_.target).text();
        report.connections = options_.connections;
        report.rate = options_.rate;
        report.duration_s = options_.duration_s;
        report.record = std::move(record_);
        report.verdict = judge_failover(report.record, present_, writers_.size());
        if (fault_) report.fault_exit_status = fault_->poll();
        return report;
    }

private:
    void count(ErrorKind kind) { ++record_.errors[static_cast<std::size_t>(kind)]; }

    asio::awaitable<void> main() {
        for (auto& w : writers_)
            co_await open_or_fail(w->link, options_.target);
        start_ns_ = now_ns();
        end_ns_ = start_ns_ + seconds(options_.duration_s).count();
        group_.add(writers_.size());
        for (std::size_t i = 0; i < writers_.size(); ++i)
            asio::co_spawn(io_, write_loop(*writers_[i], i), [this](std::exception_ptr e) {
                if (e && !failure_) failure_ = e;
                group_.done();
            });
        asio::co_spawn(io_, tick(), asio::detached);
        if (options_.fault_at_s) asio::co_spawn(io_, run_fault(), asio::detached);
        co_await group_.wait();
        record_.end_ns = end_ns_ - start_ns_;
        fault_timer_.cancel();
        for (auto& w : writers_)
            w->link.close();
        co_await reap_fault();
        co_await read_back();
    }

    asio::awaitable<void> open_or_fail(RedisLink& link, const Endpoint& target) {
        try {
            co_await link.open(target, options_.password, seconds(options_.connect_timeout_s));
        } catch (const LinkError& e) {
            throw BenchError(e.what());
        }
    }

    asio::awaitable<void> sleep_until(asio::steady_timer& timer, std::int64_t when_ns) {
        timer.expires_at(at_ns(when_ns));
        boost::system::error_code ec;
        co_await timer.async_wait(redirect_error(use_awaitable, ec));
    }

    // Fixed rate per connection; a slot missed while blocked is skipped, not
    // made up in a burst afterwards.
    asio::awaitable<void> write_loop(Writer& w, std::size_t index) {
        const auto interval =
            static_cast<std::int64_t>(1e9 * static_cast<double>(writers_.size()) / options_.rate);
        std::int64_t next = start_ns_ + interval * static_cast<std::int64_t>(index) /
                                            static_cast<std::int64_t>(writers_.size());
        while (true) {
            co_await sleep_until(w.timer, next);
            if (now_ns() >= end_ns_) break;
            if (!w.link.is_open()) {
                co_await reconnect(w); // after an error: this slot goes to reconnecting
                w.last_ok = w.link.is_open(); // its PING answered: a close before the next write is
                                              // a pool's stale connection, made again at once
            } else {
                if (w.link.closed_by_peer()) {
                    w.link.close();
                    co_await reconnect(w, w.last_ok); // after an error reply: with backoff
                }
                if (w.link.is_open()) w.last_ok = co_await write_one(w.link, static_cast<std::uint32_t>(index));
            }
            next = std::max(next + interval, now_ns());
        }
    }

    // True when the write was acknowledged.
    asio::awaitable<bool> write_one(RedisLink& link, std::uint32_t connection) {
        const std::uint64_t seq = record_.issued++;
        const std::string request = set_request(prefix_, seq);
        const std::int64_t sent = now_ns();
        try {
            const OwnedValue reply = co_await link.call(request, seconds(options_.reply_timeout_s));
            if (reply.kind == ValueKind::error) {
                count(classify_error_reply(reply.text));
                co_return false;
            }
            record_.acks.push_back({seq, sent - start_ns_, now_ns() - start_ns_, connection});
            co_return true;
        } catch (const LinkError& e) {
            count(e.kind());
        }
        co_return false;
    }

    // After an error, from kMinBackoff on; a connection the server closed
    // between calls is made again at once and used without a PING first
    // (`at_once`), as a client's pool would.
    asio::awaitable<void> reconnect(Writer& w, bool at_once = false) {
        auto backoff = duration_cast<Clock::duration>(kMinBackoff);
        bool fresh = at_once;
        while (now_ns() < end_ns_) {
            if (!std::exchange(at_once, false))
                co_await sleep_until(w.timer, now_ns() + std::chrono::nanoseconds(backoff).count());
            try {
                const bool ping = !std::exchange(fresh, false);
                co_await w.link.open(options_.target, options_.password,
                                     seconds(options_.connect_timeout_s), ping);
                ++record_.reconnects;
                co_return;
            } catch (const LinkError& e) {
                count(e.kind());
            }
            backoff = std::min(backoff * 2, duration_cast<Clock::duration>(kMaxBackoff));
        }
    }

    asio::awaitable<void> run_fault() {
        co_await sleep_until(fault_timer_, start_ns_ + seconds(*options_.fault_at_s).count());
        const std::int64_t now = now_ns();
        if (now >= end_ns_) co_return; // the run ended first (or --fault-at lies beyond it)
        record_.fault_ns = now - start_ns_;
        try {
            fault_ = FaultProcess::start(options_.fault_command);
        } catch (const BenchError&) {
            if (!failure_) failure_ = std::current_exception();
        }
    }

    // Draws the progress line until the run ends.
    asio::awaitable<void> tick() {
        for (std::int64_t next = start_ns_ + 1'000'000'000;; next += 1'000'000'000) {
            co_await sleep_until(ticker_, std::min(next, end_ns_));
            const std::int64_t now = now_ns();
            if (now >= end_ns_) break;
            progress_.show(fmt::format("failover: {:.1f} s, {} acked, {} reconnects",
                                       static_cast<double>(now - start_ns_) / 1e9,
                                       record_.acks.size(), record_.reconnects));
        }
    }

    // Gives the fault command a few seconds to finish, for its exit status.
    asio::awaitable<void> reap_fault() {
        for (int i = 0; fault_ && !fault_->poll() && i < 50; ++i)
            co_await sleep_until(main_timer_, now_ns() + 100'000'000);
    }

    asio::awaitable<void> open_verify(RedisLink& link, const Endpoint& target) {
        const std::int64_t give_up = now_ns() + seconds(options_.verify_wait_s).count();
        while (true) {
            try {
                co_await link.open(target, options_.password, seconds(options_.connect_timeout_s));
                co_return;
            } catch (const LinkError& e) {
                const bool transient =
                    e.kind() == ErrorKind::refused || e.kind() == ErrorKind::loading ||
                    e.kind() == ErrorKind::closed || e.kind() == ErrorKind::reset;
                if (!transient || now_ns() >= give_up)
                    throw BenchError(fmt::format("verify: {}", e.what()));
            }
            co_await sleep_until(main_timer_, now_ns() + 200'000'000);
        }
    }

    asio::awaitable<void> read_back() {
        const Endpoint target = options_.verify.value_or(options_.target);
        RedisLink& link = verify_link_;
        co_await open_verify(link, target);
        present_.assign(record_.issued, false);
        for (std::uint64_t first = 0; first < record_.issued; first += kVerifyBatch) {
            const std::uint64_t last =
                std::min<std::uint64_t>(record_.issued, first + kVerifyBatch);
            std::vector<std::string> args(1, "MGET");
            for (std::uint64_t seq = first; seq < last; ++seq)
                args.push_back(prefix_ + std::to_string(seq));
            OwnedValue reply;
            try {
                reply = co_await link.call(encode_command(args), seconds(5));
            } catch (const LinkError& e) {
                throw BenchError(fmt::format("verify: {}", e.what()));
            }
            if (reply.kind != ValueKind::array || reply.elements.size() != last - first)
                throw BenchError(
                    fmt::format("verify: {}: MGET failed: {}", target.text(), reply.text));
            for (std::uint64_t seq = first; seq < last; ++seq) {
                const OwnedValue& value = reply.elements[seq - first];
                present_[seq] = value.kind == ValueKind::bulk && value.text == std::to_string(seq);
            }
        }
        link.close();
    }

    const FailoverOptions& options_;
    asio::io_context io_;
    WaitGroup group_;
    asio::steady_timer ticker_;
    asio::steady_timer fault_timer_;
    asio::steady_timer main_timer_;
    RedisLink verify_link_;
    ProgressLine progress_;
    std::vector<std::unique_ptr<Writer>> writers_;
    std::string prefix_;
    FailoverRecord record_;
    std::vector<bool> present_;
    std::optional<FaultProcess> fault_;
    std::exception_ptr failure_;
    std::int64_t start_ns_ = 0;
    std::int64_t end_ns_ = 0;
};

} // namespace

FailoverReport run_failover(const FailoverOptions& options) {
    FailoverRun run(options);
    return run.run();
}

} // namespace redvip::bench
