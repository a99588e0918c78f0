#include "proxy/resp.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>

namespace redvip::proxy {
namespace {

constexpr std::size_t npos = std::string_view::npos;

// Bytes searched for a header or inline line's end: Redis refuses the line once
// more than kMaxInlineLen bytes are pending without it (applied per byte, so the
// outcome does not depend on how TCP split the stream).
constexpr std::size_t kRequestLineWindow = kMaxInlineLen + 1;

// A reply's length line holds at most a sign and 19 digits (or RESP3's '?').
constexpr std::size_t kReplyLengthLineWindow = 32;

// Below this many bytes a line is searched by a plain loop rather than memchr.
constexpr std::size_t kShortScan = 64;

// RESP3's type bytes: for these the line is the value...
constexpr std::string_view kLineTypes = "+-:_,#(";
// ...these carry a length or count...
constexpr std::string_view kSizedTypes = "$!=*%~>|";
// ...and these are parts of streamed values, which Redis never sends.
constexpr std::string_view kStreamedTypes = ";.";

// The same, as a table indexed by the type byte: a reply of 600 elements asks 600 times.
enum class TypeKind : std::uint8_t { unknown, line, sized, streamed };
constexpr std::array<TypeKind, 256> kTypeKinds = [] {
    std::array<TypeKind, 256> kinds{};
    for (char c : kLineTypes) kinds[static_cast<unsigned char>(c)] = TypeKind::line;
    for (char c : kSizedTypes) kinds[static_cast<unsigned char>(c)] = TypeKind::sized;
    for (char c : kStreamedTypes) kinds[static_cast<unsigned char>(c)] = TypeKind::streamed;
    return kinds;
}();

static_assert(kMaxReplyAggregateLen <= UINT32_MAX, "ReplyFramer keeps counts in 32 bits (maps count pairs)");

// The C locale's isspace, which sdssplitargs uses.
constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

constexpr bool is_hex(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

constexpr char to_upper(char c) noexcept {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// Redis's string2ll, which decides every length Redis accepts: an optional '-', no
// '+', spaces or leading zeros, fewer than 21 bytes, within int64. Every length
// of every frame passes here, so the common case costs no division: 18 digits
// cannot overflow, and only a longer run is checked digit by digit. Inlined:
// called, GCC builds the optional in memory a byte at a time and reads it back
// whole, a store-forwarding stall that cost more than the parse (perf).
[[gnu::always_inline]] inline std::optional<std::int64_t> parse_length(std::string_view s) noexcept {
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
std::size_t find_term(std::string_view buf, std::size_t start, std::size_t window, char term,
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

char unescape(char c) noexcept {
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

// One quoted word of sdssplitargs, from the byte after its opening quote: emits its
// bytes and returns the index of the closing quote, or npos if the quoting breaks
// (no closing quote, or one not followed by a space or the end).
template <class Sink>
std::size_t quoted_word(std::string_view line, std::size_t i, char quote, Sink& sink) {
    auto at = [line](std::size_t k) { return k < line.size() ? line[k] : '\0'; };
    for (;; ++i) {
        const char c = at(i);
        if (c == '\0') return npos;
        if (c == quote) return at(i + 1) == '\0' || is_space(at(i + 1)) ? i : npos;
        if (c == '\\' && quote == '"' && at(i + 1) == 'x' && is_hex(at(i + 2)) &&
            is_hex(at(i + 3))) {
            sink.byte(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
            i += 3;
        } else if (c == '\\' && quote == '"' && at(i + 1) != '\0') {
            sink.byte(unescape(line[++i]));
        } else if (c == '\\' && quote == '\'' && at(i + 1) == '\'') {
            sink.byte(line[++i]);
        } else {
            sink.byte(c);
        }
    }
}

// sdssplitargs's grammar without its allocations: calls sink.begin() and then
// sink.byte() per byte of each word. Returns npos, or where the quoting broke. The
// line holds no NUL (find_term saw to that), so NUL stands for its end, as in Redis.
template <class Sink> std::size_t split_inline(std::string_view line, Sink& sink) {
    std::size_t i = 0;
    for (;;) {
        while (i < line.size() && is_space(line[i]))
            ++i;
        if (i == line.size()) return npos;
        sink.begin();
        // Only these end an unquoted word; '\v' and '\f' are skipped between words
        // but kept inside one, exactly as Redis does.
        for (; i < line.size(); ++i) {
            const char c = line[i];
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') break;
            if (c == '"' || c == '\'') {
                const std::size_t close = quoted_word(line, i + 1, c, sink);
                if (close == npos) return i;
                i = close + 1;
                break;
            }
            sink.byte(c);
        }
    }
}

// Counts a request's words and keeps the first two for classification.
struct TokenSink {
    Request& request;
    void begin() noexcept { ++request.argc; }
    void byte(char c) noexcept {
        if (request.argc == 1)
            request.name.append(c);
        else if (request.argc == 2)
            request.subcommand.append(c);
    }
};

struct ArgsSink {
    std::vector<std::string>& args;
    void begin() { args.emplace_back(); }
    void byte(char c) { args.back().push_back(c); }
};

std::string_view error_text(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::invalid_multibulk_length:
        return "-ERR Protocol error: invalid multibulk length\r\n";
    case ErrorCode::unauthenticated_multibulk_length:
        return "-ERR Protocol error: unauthenticated multibulk length\r\n";
    case ErrorCode::too_big_mbulk_count:
        return "-ERR Protocol error: too big mbulk count string\r\n";
    case ErrorCode::invalid_bulk_length:
        return "-ERR Protocol error: invalid bulk length\r\n";
    case ErrorCode::unauthenticated_bulk_length:
        return "-ERR Protocol error: unauthenticated bulk length\r\n";
    case ErrorCode::too_big_bulk_count:
        return "-ERR Protocol error: too big bulk count string\r\n";
    case ErrorCode::expected_dollar:
        return "-ERR Protocol error: expected '$', got '";
    case ErrorCode::too_big_inline:
        return "-ERR Protocol error: too big inline request\r\n";
    case ErrorCode::unbalanced_quotes:
        return "-ERR Protocol error: unbalanced quotes in request\r\n";
    case ErrorCode::reply_unknown_type:
        return "-ERR Protocol error from backend: unknown type\r\n";
    case ErrorCode::reply_streamed:
        return "-ERR Protocol error from backend: streamed type\r\n";
    case ErrorCode::reply_invalid_length:
        return "-ERR Protocol error from backend: invalid length\r\n";
    case ErrorCode::reply_missing_crlf:
        return "-ERR Protocol error from backend: missing CRLF\r\n";
    case ErrorCode::reply_line_too_long:
        return "-ERR Protocol error from backend: line too long\r\n";
    }
    return "-ERR Protocol error\r\n";
}

// "-ERR Protocol error: expected '$', got 'X'\r\n" for every byte X, made at
// compile time, so an error costs the framer no text buffer. Redis's
// addReplyErrorFormat turns CR and LF into spaces to keep the reply one line.
constexpr std::string_view kExpectedDollar = "-ERR Protocol error: expected '$', got '";
constexpr std::size_t kExpectedDollarLen = kExpectedDollar.size() + 4;
constexpr auto kExpectedDollarReplies = [] {
    std::array<std::array<char, kExpectedDollarLen>, 256> texts{};
    for (std::size_t c = 0; c < 256; ++c) {
        auto& t = texts[c];
        std::size_t i = 0;
        for (char p : kExpectedDollar)
            t[i++] = p;
        const char got = static_cast<char>(c);
        t[i++] = got == '\r' || got == '\n' ? ' ' : got;
        t[i++] = '\'';
        t[i++] = '\r';
        t[i++] = '\n';
    }
    return texts;
}();

} // namespace

ProtocolError::ProtocolError(ErrorCode code, std::size_t offset, char got) noexcept
    : code_(code)
    , got_(got)
    , offset_(offset) {}

std::string_view ProtocolError::reply() const noexcept {
    if (code_ != ErrorCode::expected_dollar)
        return error_text(code_);
    const auto& text = kExpectedDollarReplies[static_cast<unsigned char>(got_)];
    return {text.data(), text.size()};
}

void CommandToken::append(char c) noexcept {
    if (too_long_) return;
    if (size_ == kMaxCommandToken) {
        size_ = 0;
        too_long_ = true;
        return;
    }
    bytes_[size_++] = to_upper(c);
}

void CommandToken::append(std::string_view s) noexcept {
    if (too_long_ || s.empty())
        return;
    if (s.size() > kMaxCommandToken - size_) {
        size_ = 0;
        too_long_ = true;
        return;
    }
    // size_ once, after the loop: stored per byte, it is reloaded per byte too
    // (a char store may alias it), and this loop runs for every request.
    char* out = bytes_.data() + size_;
    for (std::size_t i = 0; i < s.size(); ++i)
        out[i] = to_upper(s[i]);
    size_ = static_cast<std::uint8_t>(size_ + s.size());
}

// --- RequestFramer ---

RequestResult RequestFramer::feed(std::string_view buf) noexcept {
    // Shorter than last time breaks the contract; waiting is the harmless answer.
    if (phase_ != Phase::failed && buf.size() < pos_) return {};
    for (;;) {
        Step step = Step::next;
        switch (phase_) {
        case Phase::start:
            if (buf.empty()) return {};
            if (RequestResult whole; buf[0] == '*' && frame_whole(buf, whole)) return whole;
            request_.is_inline = buf[0] != '*';
            phase_ = request_.is_inline ? Phase::inline_line : Phase::count_line;
            break;
        case Phase::inline_line:
            step = read_inline(buf);
            break;
        case Phase::count_line:
            step = read_count_line(buf);
            break;
        case Phase::bulk_line:
            step = read_bulk_line(buf);
            break;
        case Phase::payload:
            step = read_payload(buf);
            break;
        case Phase::complete:
            return finish();
        case Phase::failed:
            return {Status::error, {}, error_};
        }
        if (step == Step::need_more) {
            note_head();
            return {};
        }
    }
}

namespace {

// A plain length line's value, at buf[at] (just after its '*' or '$'): "0", or
// 1 to 9 digits with no leading zero, then CR and the byte Redis skips after it.
// Moves `at` past them. False for anything else (a sign, a long or odd number,
// a line not all here), which the state machine then reads as Redis would.
bool plain_length(std::string_view buf, std::size_t& at, std::int64_t& value) noexcept {
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

} // namespace

// The common case in one pass: a whole multibulk frame in `buf`, every header
// line plain and within the caps. It frames exactly what the state machine
// would (the unit tests and the fuzz target compare the two); whatever it does
// not take, it leaves untouched for the state machine, which then starts the
// same frame afresh. Each frame start tries it once, so the work stays linear.
bool RequestFramer::frame_whole(std::string_view buf, RequestResult& out) noexcept {
    const std::int64_t max_count = authenticated_ ? kMaxMultibulkLen : kMaxUnauthenticatedMultibulkLen;
    const std::int64_t max_bulk = authenticated_ ? kMaxBulkLen : kMaxUnauthenticatedBulkLen;
    std::size_t at = 1;
    std::int64_t count = 0;
    if (!plain_length(buf, at, count) || count == 0 || count > max_count) return false;
    std::size_t lines = at - 2; // each line up to its CR, as find_term counts it
    Request& request = out.request;
    for (std::int64_t i = 0; i < count; ++i) {
        if (at >= buf.size() || buf[at] != '$') return false;
        const std::size_t line = at++;
        std::int64_t len = 0;
        if (!plain_length(buf, at, len) || len > max_bulk) return false;
        lines += at - 2 - line;
        const auto size = static_cast<std::size_t>(len);
        if (buf.size() - at < size + 2) return false;
        if (i < 2) (i == 0 ? request.name : request.subcommand).append(buf.substr(at, size));
        at += size + 2; // the CRLF after a payload goes unchecked, as in Redis
    }
    request.argc = static_cast<std::uint32_t>(count);
    request.size = at;
    out.status = Status::done;
    bytes_scanned_ += 2 * lines; // searched twice there: for the CR and for a NUL
    return true;
}

// The head is final once argv[0] and argv[1] are read, or once one of them is too
// long to name anything (a name that long makes the subcommand irrelevant, so it
// is left empty: the head is the same however the bytes were cut).
void RequestFramer::note_head() noexcept {
    if (head_known_ || (phase_ != Phase::bulk_line && phase_ != Phase::payload))
        return;
    const std::int64_t read = static_cast<std::int64_t>(request_.argc) - args_left_;
    if (read < 2 && !request_.name.too_long() && !request_.subcommand.too_long())
        return;
    head_ = request_;
    if (head_.name.too_long())
        head_.subcommand.clear();
    head_known_ = true;
}

RequestFramer::Step RequestFramer::read_inline(std::string_view buf) noexcept {
    const std::size_t lf =
        find_term(buf, 0, kRequestLineWindow, '\n', line_scanned_, &line_blocked_, bytes_scanned_);
    if (lf == npos) {
        if (buf.size() > kMaxInlineLen) return fail(ErrorCode::too_big_inline, 0);
        return Step::need_more;
    }
    const std::size_t end = lf > 0 && buf[lf - 1] == '\r' ? lf - 1 : lf;
    bytes_scanned_ += end;
    TokenSink sink{request_};
    if (const std::size_t bad = split_inline(buf.substr(0, end), sink); bad != npos)
        return fail(ErrorCode::unbalanced_quotes, bad);
    pos_ = lf + 1;
    phase_ = Phase::complete;
    return Step::next;
}

RequestFramer::Step RequestFramer::read_count_line(std::string_view buf) noexcept {
    const std::size_t cr = find_term(buf, pos_, kRequestLineWindow, '\r', line_scanned_,
                                     &line_blocked_, bytes_scanned_);
    if (cr == npos) {
        if (buf.size() - pos_ > kMaxInlineLen) return fail(ErrorCode::too_big_mbulk_count, pos_);
        return Step::need_more;
    }
    // Redis acts once one byte follows the CR, and skips that byte unseen.
    if (cr + 1 >= buf.size()) return Step::need_more;
    const auto count = parse_length(buf.substr(pos_ + 1, cr - pos_ - 1));
    // Checked in Redis 7's order, so each count gets Redis's error text.
    if (!count || *count > kMaxMultibulkLen) return fail(ErrorCode::invalid_multibulk_length, pos_);
    if (*count > kMaxUnauthenticatedMultibulkLen && !authenticated_)
        return fail(ErrorCode::unauthenticated_multibulk_length, pos_);
    next_element(cr + 2);
    if (*count <= 0) {
        phase_ = Phase::complete; // argc 0: Redis skips it and sends nothing
        return Step::next;
    }
    request_.argc = static_cast<std::uint32_t>(*count);
    args_left_ = *count;
    phase_ = Phase::bulk_line;
    return Step::next;
}

RequestFramer::Step RequestFramer::read_bulk_line(std::string_view buf) noexcept {
    const std::size_t cr = find_term(buf, pos_, kRequestLineWindow, '\r', line_scanned_,
                                     &line_blocked_, bytes_scanned_);
    if (cr == npos) {
        if (buf.size() - pos_ > kMaxInlineLen) return fail(ErrorCode::too_big_bulk_count, pos_);
        return Step::need_more;
    }
    if (cr + 1 >= buf.size()) return Step::need_more;
    if (buf[pos_] != '$') return fail(ErrorCode::expected_dollar, pos_, buf[pos_]);
    const auto len = parse_length(buf.substr(pos_ + 1, cr - pos_ - 1));
    if (!len || *len < 0 || *len > kMaxBulkLen) return fail(ErrorCode::invalid_bulk_length, pos_);
    if (*len > kMaxUnauthenticatedBulkLen && !authenticated_)
        return fail(ErrorCode::unauthenticated_bulk_length, pos_);
    payload_left_ = static_cast<std::size_t>(*len) + 2;
    next_element(cr + 2);
    phase_ = Phase::payload;
    return Step::next;
}

// Taken as it arrives, so a caller may pass a payload on before its end; only the
// first two arguments' first bytes are kept (for classification).
RequestFramer::Step RequestFramer::read_payload(std::string_view buf) noexcept {
    const std::size_t take = std::min(buf.size() - pos_, payload_left_);
    const std::int64_t index = static_cast<std::int64_t>(request_.argc) - args_left_;
    if (index < 2) {
        const std::size_t data_left = payload_left_ > 2 ? payload_left_ - 2 : 0;
        CommandToken& token = index == 0 ? request_.name : request_.subcommand;
        token.append(buf.substr(pos_, std::min(take, data_left)));
    }
    pos_ += take;
    payload_left_ -= take;
    if (payload_left_ > 0)
        return Step::need_more;
    // Redis takes the two bytes after a payload as its CRLF without looking at them;
    // checking them here would let the proxy and Redis disagree on frames.
    next_element(pos_);
    phase_ = --args_left_ == 0 ? Phase::complete : Phase::bulk_line;
    return Step::next;
}

void RequestFramer::next_element(std::size_t pos) noexcept {
    pos_ = pos;
    line_scanned_ = 0;
    line_blocked_ = false;
}

RequestFramer::Step RequestFramer::fail(ErrorCode code, std::size_t offset, char got) noexcept {
    error_ = ProtocolError(code, offset, got);
    phase_ = Phase::failed;
    head_known_ = false;
    return Step::next;
}

RequestResult RequestFramer::finish() noexcept {
    RequestResult result{Status::done, request_, {}};
    result.request.size = pos_;
    request_ = Request{};
    phase_ = Phase::start;
    head_known_ = false;
    next_element(0);
    args_left_ = 0;
    payload_left_ = 0;
    return result;
}

// --- ReplyFramer ---

ReplyResult ReplyFramer::feed(std::string_view buf) noexcept {
    if (phase_ != Phase::failed && buf.size() < pos_) return {};
    for (;;) {
        Step step = Step::need_more;
        switch (phase_) {
        case Phase::value:
            if (depth_ > 0) skip_plain_blobs(buf);
            step = read_value(buf);
            break;
        case Phase::line:
            step = read_line(buf);
            break;
        case Phase::blob:
            step = read_blob(buf);
            break;
        case Phase::failed:
            return {Status::error, {}, error_};
        }
        if (step == Step::need_more) return {};
        if (step == Step::complete) {
            const Reply reply{pos_, type_ == '>' ? ReplyKind::push : ReplyKind::reply, type_};
            next_element(0);
            type_ = 0;
            if (far_.capacity() > kReplyKeptDepth - kReplyInlineDepth)
                std::vector<Level>().swap(far_); // a deep reply's levels go back
            return {Status::done, reply, {}};
        }
    }
}

// Arrays of blobs are the bulk of large replies (LRANGE, MGET, SMEMBERS, RESP2's
// HGETALL): their whole elements with plain length lines are skipped here in one
// tight loop, at a few cycles each. Anything else (a sign, a long number, a
// missing CRLF, an element not all here, the array's last element, which closes
// it) is left to the state machine, so frames and errors stay the same.
void ReplyFramer::skip_plain_blobs(std::string_view buf) noexcept {
    Level& open = top();
    if (open.paired || open.attribute) return;
    const char* p = buf.data();
    const std::size_t size = buf.size();
    std::uint32_t left = open.left;
    std::size_t at = pos_;
    std::uint64_t scanned = 0;
    for (; left > 1 && at < size && p[at] == '$'; --left) {
        std::size_t payload = at + 1;
        std::int64_t value = 0;
        // A reply's length line ends in CRLF, checked (a request's is not).
        if (!plain_length(buf, payload, value) || p[payload - 1] != '\n') break;
        const auto len = static_cast<std::size_t>(value);
        if (size - payload < len + 2 || p[payload + len] != '\r' || p[payload + len + 1] != '\n') break;
        scanned += payload - 2 - at; // as find_term counts the length line
        at = payload + len + 2;
    }
    if (at == pos_) return; // nothing taken: a length line read in part keeps its progress
    open.left = left;
    bytes_scanned_ += scanned;
    next_element(at);
}

ReplyFramer::Step ReplyFramer::read_value(std::string_view buf) noexcept {
    if (pos_ >= buf.size()) return Step::need_more;
    const char type = buf[pos_];
    const TypeKind kind = kTypeKinds[static_cast<unsigned char>(type)];
    const bool simple = kind == TypeKind::line;
    if (kind == TypeKind::unknown || kind == TypeKind::streamed)
        return fail(kind == TypeKind::streamed ? ErrorCode::reply_streamed : ErrorCode::reply_unknown_type,
                    pos_);
    if (simple) {
        // The line is the value and may be long (a script's status reply): it is
        // passed on as it is searched, like a blob.
        if (depth_ == 0) type_ = type;
        line_start_ = pos_;
        line_len_ = 0;
        ++pos_;
        phase_ = Phase::line;
        return Step::next;
    }
    const std::size_t cr = find_term(buf, pos_, kReplyLengthLineWindow, '\r', line_scanned_,
                                     nullptr, bytes_scanned_);
    if (cr == npos) {
        if (buf.size() - pos_ < kReplyLengthLineWindow) return Step::need_more;
        return fail(ErrorCode::reply_invalid_length, pos_);
    }
    if (cr + 1 >= buf.size()) return Step::need_more;
    if (buf[cr + 1] != '\n') return fail(ErrorCode::reply_missing_crlf, cr);
    if (depth_ == 0 && type != '|') type_ = type;
    const std::size_t start = pos_;
    const std::string_view line = buf.substr(pos_ + 1, cr - pos_ - 1);
    next_element(cr + 2);
    if (line.size() == 1 && line[0] == '?') return fail(ErrorCode::reply_streamed, start);
    const auto len = parse_length(line);
    if (!len) return fail(ErrorCode::reply_invalid_length, start);
    // `$-1` and `*-1` are RESP2's nulls; no other type has a negative length.
    if (*len == -1 && (type == '$' || type == '*')) return value_done();
    if (type == '$' || type == '!' || type == '=') {
        if (*len < 0 || *len > kMaxReplyBulkLen)
            return fail(ErrorCode::reply_invalid_length, start);
        blob_left_ = static_cast<std::size_t>(*len);
        phase_ = Phase::blob;
        // Most blobs are small and here whole: finish them without a round
        // through the loop (what read_blob() would do).
        if (buf.size() - pos_ >= blob_left_ + 2) return read_blob(buf);
        return Step::next;
    }
    return open_aggregate(type, *len, start);
}

// A simple line after its type byte: searched once, byte by byte as it arrives.
// It ends at its first CR, which must come within kMaxReplyLineLen bytes of the
// type byte and be followed by LF.
ReplyFramer::Step ReplyFramer::read_line(std::string_view buf) noexcept {
    const std::size_t avail = buf.size() - pos_;
    const char* from = buf.data() + pos_;
    const auto* cr = avail == 0 ? nullptr : static_cast<const char*>(std::memchr(from, '\r', avail));
    const std::size_t n = cr != nullptr ? static_cast<std::size_t>(cr - from) : avail;
    bytes_scanned_ += n;
    line_len_ += n;
    pos_ += n;
    if (line_len_ >= kMaxReplyLineLen) return fail(ErrorCode::reply_line_too_long, line_start_);
    if (cr == nullptr || pos_ + 1 >= buf.size()) return Step::need_more; // pos_ stays on the CR
    if (buf[pos_ + 1] != '\n') return fail(ErrorCode::reply_missing_crlf, pos_);
    next_element(pos_ + 2);
    phase_ = Phase::value;
    return value_done();
}

// A blob's payload is skipped as it arrives; its CRLF is checked.
ReplyFramer::Step ReplyFramer::read_blob(std::string_view buf) noexcept {
    const std::size_t take = std::min(buf.size() - pos_, blob_left_);
    pos_ += take;
    blob_left_ -= take;
    if (blob_left_ > 0 || buf.size() - pos_ < 2) return Step::need_more;
    if (buf[pos_] != '\r' || buf[pos_ + 1] != '\n')
        return fail(ErrorCode::reply_missing_crlf, pos_);
    next_element(pos_ + 2);
    phase_ = Phase::value;
    return value_done();
}

void ReplyFramer::discard(std::size_t n) noexcept {
    n = std::min(n, droppable());
    pos_ -= n;
    line_start_ -= std::min(line_start_, n);
}

ReplyFramer::Step ReplyFramer::open_aggregate(char type, std::int64_t count,
                                              std::size_t start) noexcept {
    if (count < 0 || count > kMaxReplyAggregateLen)
        return fail(ErrorCode::reply_invalid_length, start);
    const bool attribute = type == '|';
    if (count == 0) return attribute ? Step::next : value_done();
    const Level opened{static_cast<std::uint32_t>(count), type == '%' || attribute, false, attribute};
    if (depth_ < kReplyInlineDepth)
        near_[depth_] = opened;
    else
        far_.push_back(opened); // this level's header is on the wire: 4 bytes at least
    ++depth_;
    return Step::next;
}

// A value ended: it is one element of the innermost aggregate, which may end too.
ReplyFramer::Step ReplyFramer::value_done() noexcept {
    while (depth_ > 0) {
        Level& open = top();
        // A map's (or attribute's) count is of pairs: its key, then its value.
        if (open.paired && !open.key_read) {
            open.key_read = true;
            return Step::next;
        }
        open.key_read = false;
        if (--open.left > 0) return Step::next;
        const bool attribute = open.attribute;
        if (--depth_ >= kReplyInlineDepth) far_.pop_back();
        // An attribute is no element of its parent: the value it annotates follows.
        if (attribute) return Step::next;
    }
    return Step::complete;
}

void ReplyFramer::next_element(std::size_t pos) noexcept {
    pos_ = pos;
    line_scanned_ = 0;
}

ReplyFramer::Step ReplyFramer::fail(ErrorCode code, std::size_t offset) noexcept {
    error_ = ProtocolError(code, offset);
    phase_ = Phase::failed;
    return Step::next;
}

// --- request_args ---

std::vector<std::string> request_args(std::string_view frame) {
    std::vector<std::string> args;
    if (frame.empty()) return args;
    if (frame[0] != '*') {
        const std::size_t lf = std::min(frame.find('\n'), frame.size());
        const std::size_t end = lf > 0 && frame[lf - 1] == '\r' ? lf - 1 : lf;
        ArgsSink sink{args};
        if (split_inline(frame.substr(0, end), sink) != npos) args.clear();
        return args;
    }
    // The framer accepted this frame, so its header lines are well formed; still,
    // nothing below reads out of bounds if they are not.
    std::size_t cr = frame.find('\r');
    const auto count = cr == npos ? std::nullopt : parse_length(frame.substr(1, cr - 1));
    std::size_t pos = cr + 2;
    for (std::int64_t i = 0; count && i < *count && pos < frame.size(); ++i) {
        cr = frame.find('\r', pos);
        if (cr == npos || cr == pos) break;
        const auto len = parse_length(frame.substr(pos + 1, cr - pos - 1));
        pos = cr + 2;
        if (!len || *len < 0 || pos > frame.size() ||
            frame.size() - pos < static_cast<std::size_t>(*len))
            break;
        args.emplace_back(frame.substr(pos, static_cast<std::size_t>(*len)));
        pos += static_cast<std::size_t>(*len) + 2;
    }
    return args;
}

} // namespace redvip::proxy
