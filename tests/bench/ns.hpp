#pragma once
// The bench's timestamps are nanoseconds: these tests write them as `5 * ms`.

#include <cstdint>

inline constexpr std::int64_t ms = 1'000'000;
