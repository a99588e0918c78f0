// The session/backend boundary: a session hands request frames to a link and
// gets their replies back, in order, whoever else uses the link.
//
// Three implementations: BoundLink (bound_link.hpp), the dedicated connection
// a session takes from the pool and keeps for life (MULTI, blocking commands,
// pub/sub and SELECT need it: a session that sends one is pinned);
// SharedView (shared_link.hpp), a session's share of a connection pipelined
// among many sessions ([proxy] multiplex); and the unit tests'
// FakeBackendLink.
//
// The contract, for every implementation:
// - Order: replies are answered to this sink's requests oldest first, one
//   reply per expect(); the entry is popped before on_answered() runs.
// - Exactly once: every request expect()ed gets exactly one on_answered() or,
//   when the link fails, exactly one on_unanswered(), oldest first, then one
//   on_link_failed(). Nothing is called after detach().
// - Zero copy: reply bytes stay in the link's buffer, lent to the session to
//   write to its client (lend_replies()) until replies_written(); request bytes
//   passed to send() stay in the session's buffer until on_sent(), or until
//   send() returns true. So the hot path allocates nothing and copies nothing,
//   as before the boundary.
// - Calls into the sink come from the link's event loop, never from inside a
//   call the session made (no re-entrance), with two exceptions, so that
//   neither costs a loop turn: connect() may call on_link_ready() before it
//   returns, when a pooled connection is ready; and replies_written() reads
//   on at once (the room it freed may be what Redis waited for), so it may
//   call on_answered() and on_replies(), or the failure calls when that read
//   finds the connection broken. The session treats them as from the loop.
#pragma once

#include "proxy/pending.hpp"
#include "proxy/share_policy.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace redvip::proxy {

// While Redis cannot be reached (restarting, or not up yet), a link's
// connection attempts go 20 ms apart at first, so a restart is seen at once,
// then at most 200 ms apart.
inline constexpr std::chrono::milliseconds kFirstRetry{20};
inline constexpr std::chrono::milliseconds kMaxRetry{200};

enum class LinkFailure : std::uint8_t {
    unreachable, // no connection could be made: nothing was sent, connect() may be tried again
    lost,        // the connection broke: what was sent may have run, its state is gone
    timed_out,   // abort(): Redis did not answer in time, the proxy ended the connection
};

struct LinkError {
    LinkFailure kind = LinkFailure::lost;
    std::string_view why;
    // Replies did not pair with requests (unpaired()) or one was cut in the
    // middle: the client could not tell an error reply from the rest.
    bool garbled = false;
};

// The session's side. The link holds a reference, valid until detach().
class ReplySink {
public:
    // connect() succeeded: send() may go on.
    virtual void on_link_ready() = 0;
    // The bytes of the last send() are written.
    virtual void on_sent() = 0;
    // A reply is whole: `answered` was this sink's oldest request (already popped).
    virtual void on_answered(const PendingRequest& answered, std::chrono::steady_clock::time_point now) = 0;
    // Bytes came from Redis (after their on_answered() calls): lend_replies() may have more.
    virtual void on_replies(std::chrono::steady_clock::time_point now) = 0;
    // The link failed: once per request left unanswered, oldest first (popped before the call)...
    virtual void on_unanswered(const PendingRequest& request, const LinkError& error) = 0;
    // ...then once. After `lost` the link is unbound; after `unreachable` too.
    virtual void on_link_failed(const LinkError& error) = 0;

protected:
    ~ReplySink() = default;
};

class BackendLink {
public:
    virtual ~BackendLink() = default;

    // The sink gets the link's calls; `keepalive` (the session) is held by
    // every operation in flight, so the sink outlives each call into it.
    virtual void attach(ReplySink& sink, std::weak_ptr<void> keepalive) = 0;
    // No call into the sink after this (the session has stopped).
    virtual void detach() noexcept = 0;

    // --- requests
    virtual bool connected() const noexcept = 0;
    virtual bool connecting() const noexcept = 0;
    // -> on_link_ready() or on_link_failed(unreachable).
    virtual void connect() = 0;
    // A request whose bytes go by send(), in order: its reply is owed.
    virtual void expect(const PendingRequest& request) = 0;
    // Whole frames, or the next part of one being streamed; one send at a time,
    // only while connected(). True: every byte is written already, and no
    // on_sent() follows. Else -> on_sent() or on_link_failed(lost).
    virtual bool send(std::string_view bytes) = 0;
    // From here on replies do not pair with requests (SUBSCRIBE, MONITOR...):
    // bytes pass as they come, and pending() no longer empties.
    virtual void unpaired() = 0;
    // This sink's requests awaiting a reply, oldest first.
    virtual const PendingQueue& pending() const noexcept = 0;

    // --- replies
    // The framed reply bytes not yet lent, or empty while a lend is out.
    virtual std::string_view lend_replies() = 0;
    // The lent bytes are written to the client: their room may be reused.
    virtual void replies_written() = 0;
    virtual bool replies_lent() const noexcept = 0;
    // Framed bytes waiting to be lent.
    virtual bool replies_ready() const noexcept = 0;
    // Any reply byte not yet written (framed or not).
    virtual bool holds_replies() const noexcept = 0;

    // --- buffers and the end
    virtual bool holds_buffer() const noexcept = 0;
    // The session is idle: give the reply buffer back (a read into it is
    // cancelled first) and wait for readability without one.
    virtual void release_buffer() = 0;
    // Ends the connection: back to the pool when `clean` (the session left no
    // state and no request half-sent) and nothing is due on it; else closed.
    // connect() may bind a new one later (RESET). No on_link_failed() for it.
    virtual void release(bool clean) = 0;
    // Ends the connection as if it broke (Redis did not answer in time): the
    // usual on_unanswered() per request, then on_link_failed(timed_out), with `why`.
    virtual void abort(std::string_view why) = 0;
    // A link still connecting (waiting for an unreachable Redis) stops: the
    // usual on_unanswered() per request, then on_link_failed(unreachable).
    // Nothing otherwise.
    virtual void stop_waiting(std::string_view why) = 0;
    // A shared link's advice: this session held the others up (its client did
    // not read, or a reply was large), so it should pin at its next command.
    virtual PinReason pin_advice() const noexcept { return PinReason::none; }
};

} // namespace redvip::proxy
