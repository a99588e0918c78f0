#pragma once
// Small pieces both benchmark runs share: a wait group for coroutines, the
// clock as nanoseconds, and the progress line on a terminal.

#include "bench/connection.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <string>
#include <type_traits>

namespace redvip::bench {

// The runs mix Clock durations and *_ns integers (seconds(x).count() is a
// nanosecond count): both hold only while the clock ticks in nanoseconds.
static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);

// A duration given in seconds (an option), on the clock.
inline Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

// Waits for `add`ed tasks to call done(): a timer that the last done() cancels.
class WaitGroup {
public:
    explicit WaitGroup(asio::io_context& io) : timer_(io) {}
    void add(std::size_t n) { pending_ += n; }
    void done() {
        if (--pending_ == 0) timer_.cancel();
    }
    asio::awaitable<void> wait() {
        while (pending_ > 0) {
            timer_.expires_at(Clock::time_point::max());
            boost::system::error_code ec;
            co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

private:
    asio::steady_timer timer_;
    std::size_t pending_ = 0;
};

// A progress line rewritten in place on stderr, only when stderr is a terminal.
class ProgressLine {
public:
    explicit ProgressLine(bool enabled) : enabled_(enabled) {}
    void show(const std::string& text);
    void clear();

private:
    bool enabled_;
    bool shown_ = false;
};

bool stderr_is_terminal();

} // namespace redvip::bench
