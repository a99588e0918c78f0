// What the request and reply framers both use to read a line: the search for
// its end and the parse of its length (Redis's string2ll). Internal to the
// framers (resp_request.cpp, resp_reply.cpp): inline, so each keeps the hot
// paths free of calls.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace redvip::proxy::detail {

inline constexpr std::size_t npos = std::string_view::npos;

// Below this many bytes a line is searched by a plain loop rather than memchr.
inline constexpr std::size_t kShortScan = 64;

// Redis's string2ll, which decides every length Redis accepts: an optional '-', no
// '+', spaces or leading zeros, fewer than 21 bytes, within int64. Every length
// of every frame passes here, so the common case costs no division: 18 digits
// cannot overflow, and only a longer run is checked digit by digit. Inlined:
// called, GCC builds the optional in memory a byte at a time and reads it back
// whole, a store-forwarding stall that cost more than the parse (perf).
[[gnu::always_inline]] inline std::optional<std::int64_t>
parse_length(std::string_view s) noexcept {
    if (s.empty() || s.size() >= 21) return std::nullopt;
    if (s.size() == 1 && s[0] == '0') return 0;
    const bool negative = s[0] == '-';
    std::size_t i = negative ? 1 : 0;
    if (i == s.size() || s[i] < '1' || s[i] > '9') return std::nullopt;
    const bool may_overflow = s.size() - i > 18;
    std::uint64_t v = 0;
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(s[i] - '0');
        if (may_overflow && v > (UINT64_MAX - digit) / 10) return std::nullopt;
        v = v * 10 + digit;
    }
    constexpr auto max = static_cast<std::uint64_t>(INT64_MAX);
    if (negative) {
        if (v > max + 1) return std::nullopt;
        return v == max + 1 ? INT64_MIN : -static_cast<std::int64_t>(v);
    }
    if (v > max) return std::nullopt;
    return static_cast<std::int64_t>(v);
}

// The index of the first `term` in buf[start, start + window), resuming after the
// `scanned` bytes earlier calls searched; npos if it is not there (yet). With
// `blocked`, a NUL before the terminator hides it for good, as from Redis, which
// searches with strchr.
inline std::size_t find_term(std::string_view buf, std::size_t start, std::size_t window, char term,
                             std::size_t& scanned, bool* blocked, std::uint64_t& counter) noexcept {
    if (blocked != nullptr && *blocked) return npos;
    const std::size_t from = start + scanned;
    const std::size_t to = std::min(buf.size(), start + window);
    if (from >= to) return npos;
    const char* base = buf.data();
    if (to - from <= kShortScan) {
        // Header lines ("*3", "$16") are a few bytes: one pass, no calls.
        std::size_t i = from;
        for (; i < to && base[i] != term; ++i)
            if (blocked != nullptr && base[i] == '\0') {
                *blocked = true;
                counter += 2 * (i - from);
                return npos;
            }
        counter += (blocked != nullptr ? 2 : 1) * (i - from);
        scanned = i - start;
        return i < to ? i : npos;
    }
    const auto* hit = static_cast<const char*>(std::memchr(base + from, term, to - from));
    const std::size_t end = hit != nullptr ? static_cast<std::size_t>(hit - base) : to;
    counter += end - from;
    if (blocked != nullptr) {
        counter += end - from;
        if (std::memchr(base + from, '\0', end - from) != nullptr) {
            *blocked = true;
            return npos;
        }
    }
    scanned = end - start;
    return hit != nullptr ? end : npos;
}

// A plain length line's value, at buf[at] (just after its '*' or '$'): "0", or
// 1 to 9 digits with no leading zero, then CR and the byte Redis skips after it.
// Moves `at` past them. False for anything else (a sign, a long or odd number,
// a line not all here), which the state machine then reads as Redis would.
inline bool plain_length(std::string_view buf, std::size_t& at, std::int64_t& value) noexcept {
    std::size_t i = at;
    const std::size_t digits_end = std::min(buf.size(), at + 9);
    if (i >= digits_end || buf[i] < '0' || buf[i] > '9') return false;
    std::int64_t v = buf[i++] - '0';
    if (v != 0)
        for (; i < digits_end && buf[i] >= '0' && buf[i] <= '9'; ++i)
            v = v * 10 + (buf[i] - '0');
    if (i + 1 >= buf.size() || buf[i] != '\r') return false;
    at = i + 2;
    value = v;
    return true;
}

} // namespace redvip::proxy::detail
