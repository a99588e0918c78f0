#include "bench/load_connection.hpp"

#include "bench/run_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

namespace redvip::bench {

using asio::redirect_error;
using asio::use_awaitable;

LoadConnection::LoadConnection(asio::io_context& io, TargetStats& stats, RunControl& control,
                               const WorkloadSpec& workload, std::uint64_t seed,
                               std::uint64_t index, std::uint64_t connections,
                               std::uint64_t pipeline)
    : link_(io)
    , wake_(io)
    , stats_(stats)
    , control_(control)
    , generator_(workload, seed)
    , index_(index)
    , connections_(connections)
    , pipeline_(pipeline)
    , inflight_(pipeline, 0) {}

asio::awaitable<void> LoadConnection::open(const Endpoint& target, const std::string& password,
                                           Clock::duration timeout) {
    co_await link_.open(target, password, timeout);
}

void LoadConnection::start_round(const RoundPlan& plan, const std::function<void()>& done) {
    plan_ = plan;
    sent_ = 0;
    writer_done_ = false;
    last_progress_ns_ = plan.start_ns;
    schedule_.reset();
    if (plan.rate) {
        schedule_.emplace(*plan.rate, index_, connections_);
        my_budget_ = share_of(plan.requests, index_, connections_);
    }
    auto on_end = [this, done](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                control_.fail(fmt::format("{}: {}", link_.target().text(), ex.what()));
            }
        }
        done();
    };
    asio::co_spawn(wake_.get_executor(), writer(), on_end);
    asio::co_spawn(wake_.get_executor(), reader(), on_end);
}

void LoadConnection::stop() {
    wake_.cancel();
    link_.close();
}

void LoadConnection::push_inflight(std::int64_t intended_ns) {
    inflight_[(inflight_head_ + inflight_count_) % pipeline_] = intended_ns;
    ++inflight_count_;
}

std::int64_t LoadConnection::pop_inflight() {
    const std::int64_t t = inflight_[inflight_head_];
    inflight_head_ = (inflight_head_ + 1) % pipeline_;
    --inflight_count_;
    return t;
}

// How many requests may go out now: room in the pipeline, the budget, and
// (open loop) how many are due.
std::uint64_t LoadConnection::sendable(std::int64_t now) const {
    const std::uint64_t room = pipeline_ - inflight_count_;
    if (!schedule_) return plan_.remaining ? std::min(*plan_.remaining, room) : room;
    const std::uint64_t due = std::min(schedule_->due_by(now - plan_.start_ns), my_budget_);
    return std::min(due - std::min(due, sent_), room);
}

asio::awaitable<void> LoadConnection::wait_until(std::optional<std::int64_t> when_ns) {
    if (plan_.deadline_ns) when_ns = std::min(when_ns.value_or(INT64_MAX), *plan_.deadline_ns);
    if (when_ns)
        wake_.expires_at(Clock::time_point(std::chrono::nanoseconds(*when_ns)));
    else
        wake_.expires_at(Clock::time_point::max());
    writer_waiting_ = true;
    boost::system::error_code ec;
    co_await wake_.async_wait(redirect_error(use_awaitable, ec));
    writer_waiting_ = false;
}

asio::awaitable<void> LoadConnection::writer() {
    while (!control_.failed) {
        const std::int64_t now = now_ns();
        if (plan_.deadline_ns && now >= *plan_.deadline_ns) break;
        if (schedule_ ? sent_ >= my_budget_ : (plan_.remaining && *plan_.remaining == 0)) break;
        const std::uint64_t n = sendable(now);
        if (n == 0) {
            // Closed loop, or open loop with a full pipeline: a reply wakes us.
            const bool full = inflight_count_ == pipeline_;
            co_await wait_until(schedule_ && !full
                                    ? std::optional(plan_.start_ns + schedule_->intended_ns(sent_))
                                    : std::nullopt);
            continue;
        }
        if (inflight_count_ == 0) last_progress_ns_ = now;
        out_.clear();
        for (std::uint64_t i = 0; i < n; ++i) {
            generator_.append_next(out_);
            push_inflight(schedule_ ? plan_.start_ns + schedule_->intended_ns(sent_ + i) : now);
        }
        sent_ += n;
        if (plan_.remaining) *plan_.remaining -= n;
        boost::system::error_code ec;
        co_await asio::async_write(link_.socket(), asio::buffer(out_),
                                   redirect_error(use_awaitable, ec));
        if (ec) control_.fail(link_.failure(ec, "sending requests").what());
    }
    writer_done_ = true;
    // Nothing left to read: wake the reader blocked in its read.
    boost::system::error_code ignored;
    if (inflight_count_ == 0) link_.socket().cancel(ignored);
}

// Parses every complete reply in the buffer; false on a protocol error.
bool LoadConnection::consume_replies(std::int64_t now) {
    ReadBuffer& in = link_.buffer();
    for (;;) {
        const ValueResult parsed = parse_value(in.data());
        if (parsed.status == Status::need_more) return true;
        if (parsed.status == Status::error || inflight_count_ == 0) {
            control_.fail(fmt::format(
                "{}: not a Redis server: {} at byte {} of \"{}\"", link_.target().text(),
                inflight_count_ == 0 ? "a reply nobody asked for" : parsed.reason, parsed.offset,
                sanitize_sample(in.data())));
            return false;
        }
        const std::int64_t latency_ns = now - pop_inflight();
        stats_.histogram.record(
            static_cast<std::uint64_t>(std::max<std::int64_t>(latency_ns + 500, 0) / 1000));
        ++stats_.replies;
        if (parsed.value.kind == ValueKind::error) ++stats_.errors;
        in.consume(parsed.used);
    }
}

asio::awaitable<void> LoadConnection::reader() {
    ReadBuffer& in = link_.buffer();
    while (!control_.failed && !(writer_done_ && inflight_count_ == 0)) {
        boost::system::error_code ec;
        const asio::mutable_buffer space = in.prepare();
        if (space.size() == 0)
            ec = asio::error::message_size;
        else
            in.commit(
                co_await link_.socket().async_read_some(space, redirect_error(use_awaitable, ec)));
        if (ec == asio::error::operation_aborted && writer_done_ && inflight_count_ == 0) break;
        if (ec) {
            control_.fail(link_.failure(ec, "waiting for replies").what());
            break;
        }
        const std::int64_t now = now_ns();
        last_progress_ns_ = now;
        if (!consume_replies(now)) break;
        if (writer_waiting_) wake_.cancel();
    }
}

} // namespace redvip::bench
