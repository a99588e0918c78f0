// At most one log line per key per period, and how many were held back: so a
// flood of bad packets (a misconfigured neighbour sends ten a second for
// days) costs one line per reason per period, while every one of them is
// still counted (docs/style.md, practice 5). Pure: the caller passes the time.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace redvip::election {

template <std::size_t Keys> class LogLimiter {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    explicit LogLimiter(std::chrono::steady_clock::duration period) : period_(period) {}

    // The number of lines suppressed since the last one, when `key` may log
    // at `now`; nullopt (and one more suppressed) when it may not.
    std::optional<std::uint64_t> admit(std::size_t key, TimePoint now) {
        Slot& slot = slots_[key];
        if (slot.logged && now < slot.last + period_) {
            ++slot.suppressed;
            return std::nullopt;
        }
        const auto held_back = slot.suppressed;
        slot = Slot{true, now, 0};
        return held_back;
    }

private:
    struct Slot {
        bool logged = false;
        TimePoint last{};
        std::uint64_t suppressed = 0;
    };
    std::chrono::steady_clock::duration period_;
    std::array<Slot, Keys> slots_{};
};

} // namespace redvip::election
