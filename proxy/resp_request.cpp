// The request framer: RESP2 multibulk and inline requests as Redis 7.0 frames
// them, and request_args() (resp_request.hpp).
#include "proxy/resp_request.hpp"

#include "proxy/resp_scan.hpp"

#include <algorithm>
#include <optional>

namespace redvip::proxy {

using namespace detail;

namespace {

// Bytes searched for a header or inline line's end: Redis refuses the line once
// more than kMaxInlineLen bytes are pending without it (applied per byte, so the
// outcome does not depend on how TCP split the stream).
constexpr std::size_t kRequestLineWindow = kMaxInlineLen + 1;

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

} // namespace

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
    if (too_long_ || s.empty()) return;
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

// The common case in one pass: a whole multibulk frame in `buf`, every header
// line plain and within the caps. It frames exactly what the state machine
// would (the unit tests and the fuzz target compare the two); whatever it does
// not take, it leaves untouched for the state machine, which then starts the
// same frame afresh. Each frame start tries it once, so the work stays linear.
bool RequestFramer::frame_whole(std::string_view buf, RequestResult& out) noexcept {
    const std::int64_t max_count =
        authenticated_ ? kMaxMultibulkLen : kMaxUnauthenticatedMultibulkLen;
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
    if (head_known_ || (phase_ != Phase::bulk_line && phase_ != Phase::payload)) return;
    const std::int64_t read = static_cast<std::int64_t>(request_.argc) - args_left_;
    if (read < 2 && !request_.name.too_long() && !request_.subcommand.too_long()) return;
    head_ = request_;
    if (head_.name.too_long()) head_.subcommand.clear();
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
    if (payload_left_ > 0) return Step::need_more;
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
