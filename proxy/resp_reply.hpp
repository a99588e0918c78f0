// The reply framer (backend -> proxy); the contract both framers follow, and
// the caps, are in resp.hpp.
#pragma once

#include "proxy/resp.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace redvip::proxy {

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
        bool paired = false;   // a map or attribute: counts pairs
        bool key_read = false; // ...whose current pair has its key
        bool attribute = false;
    };
    Level& level(std::size_t i) noexcept {
        return i < kReplyInlineDepth ? near_[i] : far_[i - kReplyInlineDepth];
    }
    Level& top() noexcept { return level(depth_ - 1); }
    std::size_t depth_ = 0;
    std::size_t pos_ = 0; // start of the length line, or the next byte of a line or blob
    std::size_t line_scanned_ = 0;
    std::size_t line_start_ = 0; // a simple line's type byte (for its error offset)
    std::size_t line_len_ = 0;   // bytes of a simple line searched so far
    std::size_t blob_left_ = 0;  // of the blob being read, before its CRLF
    std::array<Level, kReplyInlineDepth> near_{};
    std::vector<Level> far_; // levels past near_, as deep replies arrive
    ProtocolError error_;
    std::uint64_t bytes_scanned_ = 0;
};

} // namespace redvip::proxy
