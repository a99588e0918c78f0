// RESP framing for the proxy: where each request and each reply begins and ends.
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

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// An argument kept for classification: ASCII-uppercased, or empty and too_long()
// past kMaxCommandToken.
class CommandToken {
public:
    std::string_view view() const noexcept { return {bytes_.data(), size_}; }
    bool too_long() const noexcept { return too_long_; }

    void clear() noexcept { size_ = 0, too_long_ = false; }
    void append(char c) noexcept;
    // The next piece of the argument (a payload arrives in pieces).
    void append(std::string_view s) noexcept;

private:
    std::array<char, kMaxCommandToken> bytes_{};
    std::uint8_t size_ = 0;
    bool too_long_ = false;
};

struct Request {
    std::size_t size = 0;    // bytes of the frame, from the start of the buffer fed
                             // (what the caller discarded of it is not counted)
    std::uint32_t argc = 0;  // 0: an empty line or `*0`/`*-1`, which Redis skips without a reply
    bool is_inline = false;  // arguments are space-separated words, possibly quoted
    CommandToken name;       // argv[0]
    CommandToken subcommand; // argv[1]: the word that matters in CLIENT SETNAME, CONFIG SET...
};

struct RequestResult {
    Status status = Status::need_more;
    Request request;     // when done
    ProtocolError error; // when error
};

// Client -> proxy: RESP2 multibulk and inline requests, exactly as Redis 7.0 frames
// them (src/networking.c, processMultibulkBuffer and processInlineBuffer), so a frame
// the proxy forwards is the frame Redis executes. One deliberate difference,
// stricter: a header or inline line must end within kMaxInlineLen bytes however TCP
// split it (Redis decides per read).
class RequestFramer {
public:
    // Before AUTH the tighter kMaxUnauthenticated* caps apply, as in Redis 7.
    explicit RequestFramer(bool authenticated) noexcept : authenticated_(authenticated) {}

    // Takes effect from the next frame: set it after the proxy accepts AUTH or
    // HELLO ... AUTH, before feeding what follows (Redis runs AUTH before it parses
    // the next request).
    void set_authenticated(bool authenticated) noexcept { authenticated_ = authenticated; }
    bool authenticated() const noexcept { return authenticated_; }

    RequestResult feed(std::string_view buf) noexcept;

    // The current incomplete frame's argc, name and subcommand, once they are
    // final (argv[0] and argv[1] read, or one of them past kMaxCommandToken and
    // so no command's): what the caller classifies before it forwards any byte
    // of the frame. Null until then, for inline requests (framed whole: at most
    // kMaxInlineLen) and after an error. `size` is unset.
    const Request* head() const noexcept { return head_known_ ? &head_ : nullptr; }

    // Streaming (see the top of this file). droppable(): bytes at the front of
    // the buffer last fed that the framer needs no more (0 after an error and
    // for inline requests). discard(n), n <= droppable(): the caller dropped
    // them; the next feed() starts n bytes further into the stream.
    std::size_t droppable() const noexcept { return phase_ == Phase::failed ? 0 : pos_; }
    void discard(std::size_t n) noexcept { pos_ -= std::min(n, droppable()); }

    // Bytes examined so far (lines searched; payloads are skipped, not counted):
    // tests use it to show the work is linear in the input.
    std::uint64_t bytes_scanned() const noexcept { return bytes_scanned_; }

private:
    enum class Phase : std::uint8_t {
        start,
        inline_line,
        count_line,
        bulk_line,
        payload,
        complete,
        failed
    };
    enum class Step : std::uint8_t { next, need_more };

    bool frame_whole(std::string_view buf, RequestResult& out) noexcept;
    Step read_inline(std::string_view buf) noexcept;
    Step read_count_line(std::string_view buf) noexcept;
    Step read_bulk_line(std::string_view buf) noexcept;
    Step read_payload(std::string_view buf) noexcept;
    void next_element(std::size_t pos) noexcept;
    Step fail(ErrorCode code, std::size_t offset, char got = 0) noexcept;
    void note_head() noexcept;
    RequestResult finish() noexcept;

    Phase phase_ = Phase::start;
    bool authenticated_;
    bool line_blocked_ = false;    // a NUL came before the line's end: Redis never sees past it
    bool head_known_ = false;
    std::size_t pos_ = 0;          // start of the line being read, or the payload's next byte
    std::size_t line_scanned_ = 0; // bytes of the current line already searched
    std::int64_t args_left_ = 0;
    std::size_t payload_left_ = 0; // of the payload being read, its CRLF included
    Request request_;
    Request head_;
    ProtocolError error_;
    std::uint64_t bytes_scanned_ = 0;
};

enum class ReplyKind : std::uint8_t {
    reply, // answers the oldest pending request
    push,  // RESP3 `>` (invalidation, pub/sub message): answers nothing
};

struct Reply {
    std::size_t size = 0; // bytes of the frame, attributes included
    ReplyKind kind = ReplyKind::reply;
    char type = 0; // the value's type byte ('+', '*', '>', ...), after any attribute
    bool is_error() const noexcept { return type == '-' || type == '!'; }
};

struct ReplyResult {
    Status status = Status::need_more;
    Reply reply;
    ProtocolError error;
};

// Backend -> proxy: one complete RESP2/RESP3 value per frame, so the proxy can
// pair replies with requests. An attribute (`|`) belongs to the value it precedes.
// Checks only what framing depends on (type bytes, CRLF, lengths, counts, depth);
// the content of simple lines is for the client. Nesting: see kReplyInlineDepth.
class ReplyFramer {
public:
    ReplyResult feed(std::string_view buf) noexcept;

    // Streaming, as RequestFramer's: a blob or a simple line is passed on as it
    // arrives; at most a length line (32 bytes) or a CRLF is held back.
    std::size_t droppable() const noexcept { return phase_ == Phase::failed ? 0 : pos_; }
    void discard(std::size_t n) noexcept;

    std::uint64_t bytes_scanned() const noexcept { return bytes_scanned_; }

private:
    enum class Phase : std::uint8_t { value, line, blob, failed };
    enum class Step : std::uint8_t { next, need_more, complete };

    void skip_plain_blobs(std::string_view buf) noexcept;
    Step read_value(std::string_view buf) noexcept;
    Step read_line(std::string_view buf) noexcept;
    Step read_blob(std::string_view buf) noexcept;
    Step open_aggregate(char type, std::int64_t count, std::size_t start) noexcept;
    Step value_done() noexcept;
    void next_element(std::size_t pos) noexcept;
    Step fail(ErrorCode code, std::size_t offset) noexcept;

    Phase phase_ = Phase::value;
    char type_ = 0; // the frame's value type, once known
    // Per open aggregate: elements (or, for maps and attributes, pairs) still due.
    // 32 bits of count, so a level is 8 bytes.
    struct Level {
        std::uint32_t left = 0;
        bool paired = false;    // a map or attribute: counts pairs
        bool key_read = false;  // ...whose current pair has its key
        bool attribute = false;
    };
    Level& level(std::size_t i) noexcept { return i < kReplyInlineDepth ? near_[i] : far_[i - kReplyInlineDepth]; }
    Level& top() noexcept { return level(depth_ - 1); }
    std::size_t depth_ = 0;
    std::size_t pos_ = 0;          // start of the length line, or the next byte of a line or blob
    std::size_t line_scanned_ = 0;
    std::size_t line_start_ = 0;   // a simple line's type byte (for its error offset)
    std::size_t line_len_ = 0;     // bytes of a simple line searched so far
    std::size_t blob_left_ = 0;    // of the blob being read, before its CRLF
    std::array<Level, kReplyInlineDepth> near_{};
    std::vector<Level> far_; // levels past near_, as deep replies arrive
    ProtocolError error_;
    std::uint64_t bytes_scanned_ = 0;
};

// The arguments of a request frame that RequestFramer reported done, inline quoting
// undone. Allocates: only for the few requests the proxy answers itself (AUTH,
// HELLO, SELECT...), never on the forwarding path.
std::vector<std::string> request_args(std::string_view frame);

} // namespace redvip::proxy
