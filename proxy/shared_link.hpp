// Multiplexed mode ([proxy] multiplex): a few connections per proxy thread,
// each pipelined among many sessions, so many small clients cost Redis a few
// connections, and the requests of every session read in one loop turn reach
// Redis in one write (Redis then reads them in one read and answers them in
// one write), where 1:1 connections cost a read and a write each, on both
// sides.
//
// SharedLink is one such connection. Sessions send whole requests only
// (share_policy.hpp says which commands pin a session instead), copied into
// the link's write queue with the session's place in the link's order: a
// FIFO of (view, replies due). Replies come back in that order: each whole
// reply is copied into the buffer of the view at the FIFO's head, whose
// session writes it to its client. The bytes stay verbatim both ways; no
// allocation per request (the queues are rings that grow to their high-water
// mark and stay).
//
// SharedView is a session's share (link.hpp's BackendLink contract): its
// pending requests, its reply buffer, its place in the order.
//
// Head-of-line bounds. A reply waits for every reply before it on the link,
// so: at most kLinkInFlight requests and kLinkQueued bytes are in flight on
// a link (sessions past them wait to send); a view whose buffer is full
// because its client does not read stops the link's reading (bounded memory,
// as a 1:1 connection's backpressure) and its session is told to pin at its
// next command, as is one that received a reply of kLargeReply or more.
//
// Failure. A session that goes away with replies due: they are read and
// dropped, the link stays. A connection that breaks (Redis restarted, CLIENT
// KILL) fails every request waiting on it exactly once, oldest first per
// session, then each such session's on_link_failed(); the next request
// connects a new one. A link connects when a session first needs it, and
// first reads the server's command table (COMMAND) into the share policy.
#pragma once

#include "proxy/backend.hpp"
#include "proxy/buffer.hpp"
#include "proxy/link.hpp"
#include "proxy/resp_reply.hpp"
#include "proxy/share_policy.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace redvip::proxy {

// Requests in flight on one link, and bytes queued for it, before sessions
// wait to send: what a reply may have to wait behind.
inline constexpr std::size_t kLinkInFlight = 1024;
inline constexpr std::size_t kLinkQueued = 1024 * 1024;
// The link's read buffer: one read takes the replies of a whole turn's batch.
inline constexpr std::size_t kLinkBuffer = 64 * 1024;

class SharedLink;

// A ring of T that grows to a power of two on demand and keeps its storage:
// no allocation once a link has seen its busiest moment.
template <class T>
class Ring {
public:
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    T& front() noexcept { return slots_[head_]; }
    T& back() noexcept { return slots_[(head_ + count_ - 1) & (slots_.size() - 1)]; }
    void push(T value) {
        if (count_ == slots_.size())
            grow();
        slots_[(head_ + count_) & (slots_.size() - 1)] = std::move(value);
        ++count_;
    }
    void pop() noexcept {
        slots_[head_] = T();
        head_ = (head_ + 1) & (slots_.size() - 1);
        --count_;
    }

private:
    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
        for (std::size_t i = 0; i < count_; ++i)
            bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
        slots_ = std::move(bigger);
        head_ = 0;
    }
    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
};

class SharedView final : public BackendLink, public std::enable_shared_from_this<SharedView> {
public:
    SharedView(SharedLink& link, BufferPool& buffers) : link_(link), buffers_(buffers) {}
    ~SharedView() override;

    void attach(ReplySink& sink, std::weak_ptr<void> keepalive) override;
    void detach() noexcept override { sink_ = nullptr; }

    bool connected() const noexcept override;
    bool connecting() const noexcept override { return waiting_ == Waiting::connection; }
    void connect() override;
    void expect(const PendingRequest& request) override {
        pending_.push(request);
        ++unordered_;
    }
    bool send(std::string_view bytes) override;
    void unpaired() override; // never: a session pins before (share_policy.hpp)
    const PendingQueue& pending() const noexcept override { return pending_; }

    std::string_view lend_replies() override;
    void replies_written() override;
    bool replies_lent() const noexcept override { return lent_ > 0; }
    bool replies_ready() const noexcept override { return replied_ > lent_; }
    bool holds_replies() const noexcept override { return out_.size() > 0; }

    bool holds_buffer() const noexcept override { return out_.allocated(); }
    void release_buffer() override;
    void release(bool clean) override;
    void abort(std::string_view why) override;
    void stop_waiting(std::string_view why) override;
    PinReason pin_advice() const noexcept override { return advice_; }

private:
    friend class SharedLink;
    enum class Waiting : std::uint8_t { none, connection, room };

    // --- the link's calls
    // Copies what fits of a reply's bytes (all of them once dropping);
    // `ends`: they end the reply.
    std::size_t take(std::string_view bytes, bool ends, std::chrono::steady_clock::time_point now);
    void link_ready();
    void room(); // a send that waited goes into the link's queue now
    void fail(const LinkError& error);
    bool dropping() const noexcept { return sink_ == nullptr || dead_; }

    SharedLink& link_;
    BufferPool& buffers_;
    ReplySink* sink_ = nullptr;
    std::weak_ptr<void> keepalive_;
    PendingQueue pending_;
    std::size_t unordered_ = 0; // expected, not yet in the link's order
    std::string_view unsent_;   // a send waiting for room in the link's queue
    Buffer out_;                // [0, replied_) replies to lend; then part of one
    std::size_t replied_ = 0;
    std::size_t lent_ = 0;
    std::size_t reply_bytes_ = 0; // of the reply being taken
    Waiting waiting_ = Waiting::none;
    PinReason advice_ = PinReason::none;
    bool reply_started_ = false; // part of a reply is taken, not its end
    bool dead_ = false;          // failed, aborted or released: replies due are dropped
};

// What a link tells its worker.
struct SharedLinkEvents {
    // The server's command table was read (on each new connection).
    std::function<void(SharePolicy policy)> on_policy;
    // The connection broke (once per connection), with why.
    std::function<void(const std::string& why)> on_failure;
};

struct SharedLinkCounters {
    std::uint64_t connects = 0, failures = 0, writes = 0, requests = 0, reads = 0, pauses = 0;
};

class SharedLink final : private IoHandler, private TurnEnd {
public:
    // `wait`: how long a session's first request waits for a Redis that
    // cannot be reached before it fails (as BoundLink's).
    SharedLink(EventLoop& loop, BackendPool& pool, BufferPool& buffers, std::chrono::milliseconds wait,
               SharedLinkEvents events);
    ~SharedLink();
    SharedLink(const SharedLink&) = delete;
    SharedLink& operator=(const SharedLink&) = delete;

    // A new session's share of this link.
    std::shared_ptr<SharedView> view() { return std::make_shared<SharedView>(*this, buffers_); }

    bool ready() const noexcept { return state_ == State::ready; }
    std::size_t in_flight() const noexcept { return in_flight_; }
    const SharedLinkCounters& counters() const noexcept { return counters_; }

private:
    friend class SharedView;
    enum class State : std::uint8_t { idle, connecting, reading_table, ready };
    struct Due {
        std::shared_ptr<SharedView> view;
        std::size_t replies = 0;
    };

    // --- the views' calls
    void want_connection(SharedView& view);
    void forget(SharedView& view) noexcept; // no longer waiting for anything
    // False: no room now; the view waits (SharedView::room() later).
    bool enqueue(SharedView& view, std::string_view bytes);
    void append(SharedView& view, std::string_view bytes);
    void resume(SharedView& view); // the view's buffer has room again

    void on_io() override;
    void on_turn_end() override;
    void attempt();
    void retry_or_give_up(const std::string& why);
    void connected(Socket socket);
    void read_table();
    void table_read(const Value& reply);
    bool room() const noexcept;
    void flush();
    void admit_waiters();
    void go_on();
    void read();
    void deliver(std::chrono::steady_clock::time_point now);
    void fail(LinkFailure kind, const std::string& why);

    EventLoop& loop_;
    BackendPool& pool_;
    BufferPool& buffers_;
    SharedLinkEvents events_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // for the pool's callback
    Socket socket_;
    Timer soon_;  // a read past its turn's budget
    Timer retry_; // the next connection attempt while Redis cannot be reached
    std::chrono::milliseconds wait_;
    std::chrono::steady_clock::time_point give_up_{};
    std::chrono::milliseconds retry_delay_{};
    State state_ = State::idle;
    std::vector<std::shared_ptr<SharedView>> waiters_; // for the connection or for room, in order
    // Requests: bytes queued, [written_, size) not yet taken by the socket.
    std::string queued_;
    std::size_t written_ = 0;
    bool flush_due_ = false;
    // Replies: the order they come in, and where the current one goes.
    Ring<Due> order_;
    std::size_t in_flight_ = 0;
    Buffer in_{kLinkBuffer};
    ReplyFramer replies_;
    std::size_t part_left_ = 0;  // bytes at in_'s front that belong to order_.front()'s view
    bool part_ends_ = false;     // ...and end its reply
    std::shared_ptr<SharedView> paused_on_; // a view with no room: reading waits for it
    std::string table_;          // the reply to COMMAND, while it is read
    bool delivering_ = false;
    bool reading_ = false;
    SharedLinkCounters counters_;
};

} // namespace redvip::proxy
