// Drives a framer over a byte stream as a session does: bytes arrive in pieces,
// each feed() gets everything received since the last frame ended (or, when
// streaming, since the last discard), a done frame is dropped and framing
// resumes after it. Used by the unit tests and the fuzzer
// to compare a stream fed whole with the same stream cut anywhere; it also checks
// the contract on every call (sizes and offsets inside the input, sticky errors).
#pragma once

#include "proxy/resp_reply.hpp"
#include "proxy/resp_request.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy::test {

struct Event {
    Status status = Status::need_more; // need_more: the stream ended inside a frame
    std::size_t start = 0;             // the frame's offset in the stream
    std::size_t size = 0;              // done: the frame's size; need_more: bytes left over
    std::string what;                  // the rest, as text (see describe_*)

    bool operator==(const Event&) const = default;
};

struct Run {
    std::vector<Event> events;
    std::uint64_t scanned = 0; // the framer's bytes_scanned()
    std::size_t feeds = 0;
    std::size_t max_held = 0; // discard mode: the most bytes the caller had to keep
    std::string violation; // a broken contract, empty if none

    // "done 14 argc=1 PING | need_more 3": what the golden tables compare.
    std::string text() const {
        std::string s;
        for (const Event& e : events) {
            if (!s.empty()) s += " | ";
            s += e.what;
        }
        return violation.empty() ? s : s + " | VIOLATION " + violation;
    }
};

// `shift`: bytes of the frame discarded before the buffer the offset is in, so
// that offsets compare across runs that discard and runs that do not.
inline std::string describe_error(const ProtocolError& e, std::size_t shift = 0) {
    std::string_view reply = e.reply();
    if (reply.ends_with("\r\n")) reply.remove_suffix(2);
    return "error@" + std::to_string(e.offset() + shift) + " " + std::string(reply);
}

inline std::string describe_token(const CommandToken& t) {
    return t.too_long() ? std::string("<long>") : std::string(t.view());
}

inline std::string describe(const RequestResult& r, std::size_t shift = 0) {
    if (r.status == Status::error) return describe_error(r.error, shift);
    const Request& q = r.request;
    std::string s = "done " + std::to_string(q.size + shift) + (q.is_inline ? " inline" : "") +
                    " argc=" + std::to_string(q.argc);
    if (q.argc >= 1) s += " " + describe_token(q.name);
    if (q.argc >= 2) s += " " + describe_token(q.subcommand);
    return s;
}

inline std::string describe(const ReplyResult& r, std::size_t shift = 0) {
    if (r.status == Status::error) return describe_error(r.error, shift);
    std::string s = "done " + std::to_string(r.reply.size + shift) + " " + std::string(1, r.reply.type);
    if (r.reply.kind == ReplyKind::push) s += " push";
    return s;
}

inline std::size_t size_of(const RequestResult& r) {
    return r.request.size;
}
inline std::size_t size_of(const ReplyResult& r) {
    return r.reply.size;
}

inline bool same_token(const CommandToken& a, const CommandToken& b) {
    return a.view() == b.view() && a.too_long() == b.too_long();
}

// A request's head, once reported, must not change and must be what the whole
// frame turns out to hold; an inline request has none.
inline std::string check_head(const Request& head, const Request& done) {
    if (done.is_inline) return "head of an inline request";
    if (head.argc != done.argc || !same_token(head.name, done.name))
        return "head " + describe_token(head.name) + " vs frame " + describe_token(done.name);
    if (!done.name.too_long() && !same_token(head.subcommand, done.subcommand))
        return "head subcommand " + describe_token(head.subcommand);
    return {};
}

enum class Mode : bool {
    hold,    // every frame is fed whole from its first byte
    discard, // after each need_more the caller drops everything droppable()
};

// `cuts`: where the pieces end (ascending; the stream's end is implied).
// `on_done` runs after each frame, as the session would (e.g. to accept AUTH).
// Sizes and offsets in the events are the stream's, whatever the mode.
template <class Framer, class OnDone>
Run drive(Framer& framer, std::string_view stream, const std::vector<std::size_t>& cuts,
          OnDone on_done, Mode mode = Mode::hold) {
    constexpr bool has_head = requires { framer.head(); };
    Run run;
    std::size_t start = 0, avail = 0, next_cut = 0;
    std::size_t dropped = 0; // of the current frame, in discard mode
    std::optional<Request> head;
    auto arrive = [&] {
        avail = next_cut < cuts.size() ? std::clamp(cuts[next_cut++], avail, stream.size())
                                       : stream.size();
    };
    arrive();
    for (;;) {
        const std::string_view pending = stream.substr(start + dropped, avail - start - dropped);
        const auto result = framer.feed(pending);
        ++run.feeds;
        if (result.status == Status::done) {
            const std::size_t size = size_of(result);
            if (size + dropped == 0 || size > pending.size()) {
                run.violation =
                    "frame size " + std::to_string(size) + " of " + std::to_string(pending.size());
                break;
            }
            if constexpr (has_head) {
                if (head) run.violation = check_head(*head, result.request);
                if (!run.violation.empty()) break;
                head.reset();
            }
            run.events.push_back({Status::done, start, size + dropped, describe(result, dropped)});
            on_done(framer, result, stream.substr(start, dropped + size)); // the whole frame
            start += dropped + size;
            dropped = 0;
            continue;
        }
        if (result.status == Status::error) {
            if (result.error.offset() > pending.size())
                run.violation = "error offset past the input";
            run.events.push_back({Status::error, start, 0, describe(result, dropped)});
            // Sticky: more bytes change nothing.
            const auto again = framer.feed(stream.substr(start + dropped));
            if (again.status != Status::error || describe(again) != describe(result))
                run.violation = "error not sticky";
            if (framer.droppable() != 0) run.violation = "droppable after an error";
            break;
        }
        if constexpr (has_head) {
            if (const Request* h = framer.head()) {
                if (!head) head = *h;
                if (std::string v = check_head(*head, *h); !v.empty()) {
                    run.violation = "head changed: " + v;
                    break;
                }
            }
        }
        if (mode == Mode::discard) {
            const std::size_t n = framer.droppable();
            if (n > pending.size()) {
                run.violation = "droppable past the input";
                break;
            }
            framer.discard(n);
            dropped += n;
            run.max_held = std::max(run.max_held, pending.size() - n);
        }
        if (avail == stream.size()) {
            const std::size_t left = avail - start;
            if (left > 0)
                run.events.push_back(
                    {Status::need_more, start, left, "need_more " + std::to_string(left)});
            break;
        }
        arrive();
    }
    run.scanned = framer.bytes_scanned();
    return run;
}

// Requests; an AUTH frame authenticates what follows, as the proxy would once it
// accepted the password.
inline Run run_requests(std::string_view stream, const std::vector<std::size_t>& cuts,
                        bool authenticated, Mode mode = Mode::hold) {
    RequestFramer framer(authenticated);
    return drive(
        framer, stream, cuts,
        [](RequestFramer& f, const RequestResult& r, std::string_view) {
            if (r.request.name.view() == "AUTH") f.set_authenticated(true);
        },
        mode);
}

inline Run run_replies(std::string_view stream, const std::vector<std::size_t>& cuts,
                       Mode mode = Mode::hold) {
    ReplyFramer framer;
    return drive(
        framer, stream, cuts, [](ReplyFramer&, const ReplyResult&, std::string_view) {}, mode);
}

// Pieces of `chunk` bytes each.
inline std::vector<std::size_t> every(std::size_t chunk, std::size_t total) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = chunk; at < total; at += chunk)
        cuts.push_back(at);
    return cuts;
}

} // namespace redvip::proxy::test
