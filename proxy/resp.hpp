// RESP framing for the proxy: where each request and each reply begins and ends.
// This header holds what the two framers share: the caps, the results and the
// protocol errors. The framers themselves: resp_request.hpp (client -> proxy)
// and resp_reply.hpp (backend -> proxy); together, the redvip_resp library.
//
// Pure: no sockets, no clock, no exceptions, nothing sized from the wire. The
// proxy forwards bytes verbatim, so the framers report sizes, never copies of
// payloads; the only bytes they keep are a request's command name and first
// argument, uppercased in fixed buffers, for classification (command.hpp).
//
// Both framers follow picohttpparser's contract: feed() is given the bytes of
// the current frame received so far (starting where the frame, or what the
// caller has not yet dropped of it, begins; growing between calls) and answers
// done (with the size of what is left of the frame), need_more, or error. The
// framer remembers how far it got, so a frame that arrives in many reads costs
// O(its bytes) in all, and a bulk payload is skipped by arithmetic, never
// scanned. After done the caller drops `size` bytes and feeds what follows;
// each frame starts afresh. An error is sticky: the connection is to be closed
// once the error reply is written.
//
// Streaming: a frame may be far larger than any buffer (a 512 MiB SET). While a
// frame is incomplete, droppable() says how many of its first bytes the framer
// will never look at again; the caller may pass them on and call discard(n),
// and then feeds the buffer from n bytes further on. Frames, sizes and errors
// are the same whether or not (and however often) the caller discards.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redvip::proxy {

// --- Caps. Each is checked before anything depends on the value. ---

// Redis's proto-max-bulk-len default: Redis refuses a longer argument with the
// same error (and the proxy streams it, so no buffer is sized from it).
inline constexpr std::int64_t kMaxBulkLen = 512LL * 1024 * 1024;

// Redis 7.0 takes any argument count up to INT_MAX (it stopped preallocating
// argv for large counts, so a count costs nothing until its arguments come):
// so does the proxy, which sizes nothing from it either. Past it, Redis's
// "invalid multibulk length".
inline constexpr std::int64_t kMaxMultibulkLen = INT_MAX;

// Redis's PROTO_INLINE_MAX_SIZE: the longest inline request, and the longest
// header line (`*N`, `$N`) Redis waits for before refusing it.
inline constexpr std::size_t kMaxInlineLen = 64 * 1024;

// CVE-2021-32675: before AUTH, Redis 7 takes at most 10 arguments of 16 KiB,
// so an anonymous peer cannot make anyone allocate 512 MiB with a few bytes.
inline constexpr std::int64_t kMaxUnauthenticatedMultibulkLen = 10;
inline constexpr std::int64_t kMaxUnauthenticatedBulkLen = 16 * 1024;

// Longer names or subcommands are nobody's (Redis 7's longest command name,
// GEORADIUSBYMEMBER_RO, has 20 bytes), so they classify as unknown.
inline constexpr std::size_t kMaxCommandToken = 32;

// Nesting of replies. Redis's own replies nest at most about 7 deep (COMMAND
// DOCS, XINFO STREAM FULL), but a script's nested tables go as deep as Lua's
// stack allows (thousands: `local a = {}; local b = {a}; a[1] = b; return a`
// ends with "-ERR reached lua stack limit" inside), and a module may nest
// deeper still. So depth has no cap of its own: each level costs 8 bytes of
// state and at least 4 bytes on the wire (`*1\r\n`), so the state is bounded
// by the bytes received. The first kReplyInlineDepth levels live in the framer
// (no allocation for any ordinary reply); deeper ones in a vector, given back
// when a reply that needed more than kReplyKeptDepth levels is done.
inline constexpr std::size_t kReplyInlineDepth = 8;
inline constexpr std::size_t kReplyKeptDepth = 1024;

// hiredis's default maxelements (redis-cli and hiredis clients refuse more).
// Counts drive no allocation here: this only detects a desynchronised stream.
inline constexpr std::int64_t kMaxReplyAggregateLen = (1LL << 32) - 1;

// A reply blob can exceed proto-max-bulk-len (DUMP of a large key, a raised
// proto-max-bulk-len); it drives no allocation here, so this only bounds a
// desynchronised stream. The caller's buffer cap is the real limit.
inline constexpr std::int64_t kMaxReplyBulkLen = 1LL << 32;

// Simple strings and errors have no length prefix; a script can put any string
// in one, itself bounded by proto-max-bulk-len.
inline constexpr std::size_t kMaxReplyLineLen = static_cast<std::size_t>(kMaxBulkLen);

// --- Results ---

enum class Status : std::uint8_t { done, need_more, error };

enum class ErrorCode : std::uint8_t {
    // From clients; reply() is exactly what Redis 7 answers before closing.
    invalid_multibulk_length,
    unauthenticated_multibulk_length,
    too_big_mbulk_count,
    invalid_bulk_length,
    unauthenticated_bulk_length,
    too_big_bulk_count,
    expected_dollar,
    too_big_inline,
    unbalanced_quotes,
    // From the backend: Redis never sends these, so the link is desynchronised.
    reply_unknown_type,
    reply_streamed, // RESP3 streamed strings and aggregates (`$?`, `*?`, `;`, `.`)
    reply_invalid_length,
    reply_missing_crlf,
    reply_line_too_long,
};

class ProtocolError {
public:
    ProtocolError() = default;
    // `got` is the byte found instead of '$' (expected_dollar only).
    ProtocolError(ErrorCode code, std::size_t offset, char got = 0) noexcept;

    ErrorCode code() const noexcept { return code_; }
    // Where the offending element starts, in the buffer given to feed(); 0 if it
    // began in bytes the caller already discarded (only a reply's simple line,
    // the one element discarded part-way, can).
    std::size_t offset() const noexcept { return offset_; }
    // The whole error reply, "-ERR Protocol error: ...\r\n", ready to write
    // (static text: it outlives the error).
    std::string_view reply() const noexcept;

private:
    ErrorCode code_ = ErrorCode::invalid_multibulk_length;
    char got_ = 0;
    std::size_t offset_ = 0;
};

} // namespace redvip::proxy
