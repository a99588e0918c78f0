// The reply framer: one complete RESP2/RESP3 value per frame (resp_reply.hpp).
#include "proxy/resp_reply.hpp"

#include "proxy/resp_scan.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace redvip::proxy {

using namespace detail;

namespace {

// A reply's length line holds at most a sign and 19 digits (or RESP3's '?').
constexpr std::size_t kReplyLengthLineWindow = 32;

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
    for (char c : kLineTypes)
        kinds[static_cast<unsigned char>(c)] = TypeKind::line;
    for (char c : kSizedTypes)
        kinds[static_cast<unsigned char>(c)] = TypeKind::sized;
    for (char c : kStreamedTypes)
        kinds[static_cast<unsigned char>(c)] = TypeKind::streamed;
    return kinds;
}();

static_assert(kMaxReplyAggregateLen <= UINT32_MAX,
              "ReplyFramer keeps counts in 32 bits (maps count pairs)");

} // namespace

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
        if (size - payload < len + 2 || p[payload + len] != '\r' || p[payload + len + 1] != '\n')
            break;
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
        return fail(kind == TypeKind::streamed ? ErrorCode::reply_streamed
                                               : ErrorCode::reply_unknown_type,
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
    const std::size_t cr =
        find_term(buf, pos_, kReplyLengthLineWindow, '\r', line_scanned_, nullptr, bytes_scanned_);
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
    const auto* cr =
        avail == 0 ? nullptr : static_cast<const char*>(std::memchr(from, '\r', avail));
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
    const Level opened{static_cast<std::uint32_t>(count), type == '%' || attribute, false,
                       attribute};
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

} // namespace redvip::proxy
