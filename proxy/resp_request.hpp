// The request framer (client -> proxy) and request_args(); the contract both
// framers follow, and the caps, are in resp.hpp.
#pragma once

#include "proxy/resp.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy {

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
    bool line_blocked_ = false; // a NUL came before the line's end: Redis never sees past it
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

// The arguments of a request frame that RequestFramer reported done, inline quoting
// undone. Allocates: only for the few requests the proxy answers itself (AUTH,
// HELLO, SELECT...), never on the forwarding path.
std::vector<std::string> request_args(std::string_view frame);

} // namespace redvip::proxy
