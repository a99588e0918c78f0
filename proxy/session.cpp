// A session (session.hpp): its life from start() to stop(), and the client ->
// backend direction: reading the client, framing and classifying requests,
// holding, streaming or dropping them, forwarding them on the link; the
// serving state's effects (moving or retiring, closing once quiet) and the
// sweep's timeouts. The replies, Redis's and the proxy's own, are in
// session_replies.cpp; the commands the proxy answers itself in
// session_commands.cpp.
#include "proxy/session.hpp"

#include "proxy/command.hpp"
#include "proxy/redis_texts.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace redvip::proxy {

namespace {

using clock = std::chrono::steady_clock;

// The most of one request the proxy holds before it must decide what to do
// with it (the rest streams): a request before AUTH (Redis's caps, 10 x 16 KiB),
// an inline or header line (64 KiB), or AUTH, HELLO and XREAD, which the proxy
// reads whole. A request it would answer itself that grows past this is
// dropped as it arrives and answered from its head (oversized_reply).
constexpr std::size_t kMaxHeldFrame = 16 * kBufferSize;
static_assert(kMaxHeldFrame > 10 * (kMaxUnauthenticatedBulkLen + 32) + 32 &&
                  kMaxHeldFrame > kMaxInlineLen + 2,
              "a request the proxy must see whole fits");

// How long a session keeps its buffers after its last byte either way: long
// enough that a client in a request/reply loop never gives them back, short
// enough that thousands of idle clients hold none.
constexpr std::chrono::milliseconds kBufferIdle{200};

constexpr std::string_view kTooLarge = "-ERR redvip: request too large for the proxy to answer\r\n";

// XREAD and XREADGROUP block only with a BLOCK option: look for the argument.
bool has_block_option(std::string_view frame) {
    for (std::size_t at = frame.find("\r\n"); at != std::string_view::npos; at = frame.find("\r\n", at + 2)) {
        if (iequals(frame.substr(at + 2, 5), "BLOCK") && frame.substr(at + 7, 2) == "\r\n")
            return true;
    }
    return false;
}

// The link of a session that has sent Redis nothing yet: it holds nothing
// and is never connected (bind_link() replaces it first), so one immutable
// instance serves every thread.
class NoLink final : public BackendLink {
public:
    void attach(ReplySink&, std::weak_ptr<void>) override {}
    void detach() noexcept override {}
    bool connected() const noexcept override { return false; }
    bool connecting() const noexcept override { return false; }
    void connect() override {}
    void expect(const PendingRequest&) override {}
    bool send(std::string_view) override { return false; }
    void unpaired() override {}
    const PendingQueue& pending() const noexcept override { return none_; }
    std::string_view lend_replies() override { return {}; }
    void replies_written() override {}
    bool replies_lent() const noexcept override { return false; }
    bool replies_ready() const noexcept override { return false; }
    bool holds_replies() const noexcept override { return false; }
    bool holds_buffer() const noexcept override { return false; }
    void release_buffer() override {}
    void release(bool) override {}
    void abort(std::string_view) override {}
    void stop_waiting(std::string_view) override {}

private:
    PendingQueue none_;
};

NoLink kNoLink;

std::shared_ptr<BackendLink> no_link() {
    return std::shared_ptr<BackendLink>(std::shared_ptr<void>(), &kNoLink); // owns nothing
}

} // namespace

Session::Session(Worker& worker, Socket client, std::shared_ptr<BackendLink> link)
    : w_(worker)
    , client_(std::move(client))
    , soon_(worker.loop)
    , later_(worker.loop)
    , link_(link ? std::move(link) : no_link())
    , link_pool_(link_.get() == &kNoLink ? nullptr : &worker.backends)
    , requests_(worker.shared.config.proxy.password.empty())
    , last_activity_(clock::now())
    , backend_progress_(last_activity_)
    , authenticated_(worker.shared.config.proxy.password.empty()) {
    if (link_pool_ == nullptr && worker.shared.config.proxy.multiplex)
        sharing_ = Sharing::shared;
    w_.sessions.insert(this);
}

Session::~Session() {
    w_.sessions.erase(this);
    w_.shared.clients.fetch_sub(1, std::memory_order_relaxed);
    w_.buffers.give_back(in_);
}

void Session::start() {
    self_ = shared_from_this();
    client_.set_no_delay();
    client_.set_keepalive(w_.shared.config.proxy.tcp_keepalive);
    client_.set_handler(this);
    link_->attach(*this, weak_from_this());
    read_client();
}

void Session::stop() {
    if (life_ == Life::stopped)
        return;
    const bool half_closed = life_ == Life::half_closed;
    life_ = Life::stopped;
    if (!w_.drains.empty())
        w_.check_drained(clock::now());
    // After a last line of the proxy's own, the client still gets it when it
    // wrote more meanwhile (a close with unread bytes would reset it).
    if (intake_ == Intake::closing && local_writing_.empty() && !half_closed)
        w_.linger.adopt(std::move(client_));
    client_.close();
    soon_.cancel();
    later_.cancel();
    // Back to the pool only with no state left on it and no request half-sent
    // (the link adds: no reply due).
    link_->release(!dirty_ && !streaming() && in_flight_ == 0);
    link_->detach();
    // Freed once the loop's turn is over: a caller up the stack may be ours.
    if (self_)
        w_.loop.release_later(std::move(self_));
}

// The client socket changed: finish a write it held back, read what came.
void Session::on_io() {
    if (stopped())
        return;
    if (!unwritten_.empty() && client_.writable())
        continue_write();
    read_client();
}

// --- client -> backend ---

// Reads while the client has bytes and the session room for them. The
// buffer is taken only now, so a client that sends nothing holds none. A full
// buffer waits for the link to take what is framed (on_sent() reads again).
// Only bytes the framer holds (a request being held whole, or a header line)
// fill it alone: it grows, up to kMaxHeldFrame, where process_requests() stops
// holding. HOLDING leaves requests in the buffer, so a held client is read
// until it is full, then again once the state changes.
void Session::read_client() {
    if (reading_client_)
        return; // the loop below is on the stack: it goes on
    reading_client_ = true;
    for (int reads = 0;
         life_ == Life::open && intake_ == Intake::open && !link_->pending().full() && client_.readable();
         ++reads) {
        if (reads == kReadsPerTurn) {
            soon_.after(Clock::duration::zero(), [this] { read_client(); }); // let the others in first
            break;
        }
        if (!in_.allocated())
            in_ = w_.buffers.take();
        if (in_flight_ == 0)
            in_.make_room();
        if (in_.write_space() == 0) {
            if (in_flight_ > 0 || ready_ > 0 || in_.capacity() >= kMaxHeldFrame)
                break;
            in_.reserve(std::min(in_.capacity() * 2, kMaxHeldFrame));
        }
        const IoResult r = client_.read(in_.write_ptr(), in_.write_space());
        if (r.eof) {
            reading_client_ = false;
            return client_done();
        }
        if (r.failed()) {
            reading_client_ = false;
            return client_gone(r); // a reset: Redis too drops what it has not answered
        }
        if (r.bytes == 0)
            break;
        in_.commit(r.bytes);
        on_client_data(r.bytes);
    }
    reading_client_ = false;
}

// The client closed, reset, or broke a write: nothing to tell it. EOF and
// resets are what clients do; anything else is worth a line at debug.
void Session::client_gone(const IoResult& result) {
    if (!result.eof && result.error != ECONNRESET && result.error != EPIPE)
        SPDLOG_LOGGER_DEBUG(w_.shared.log, "client connection: {}", error_text(result.error));
    client_.close(); // nothing to linger for
    stop();
}

void Session::on_client_data(std::size_t n) {
    w_.counters.bytes_in += n;
    last_activity_ = clock::now();
    process_requests();
}

// Frames what the client sent and forwards it; a send the link takes at
// once (the usual case) frees the room for the next round at once.
void Session::process_requests() {
    do
        frame_requests();
    while (forward());
    read_client();
    end_if_done();
}

// The client sent its last byte (a half-close: `nc -N`, a script's
// shutdown(SHUT_WR)). As Redis does, the commands it sent whole are answered,
// then the connection is closed; a request cut short is dropped unanswered.
void Session::client_done() {
    life_ = Life::half_closed; // (read_client() reads only while open)
    process_requests();
}

// After a half-close: closes once every reply is written, or at once when the
// client is blocked or subscribed (Redis frees such a client at EOF).
void Session::end_if_done() {
    if (life_ != Life::half_closed)
        return;
    const PendingQueue& pending = link_->pending();
    const bool blocked = passthrough() || (!pending.empty() && pending.front().blocking);
    if (blocked || (!replies_outstanding() && !holding()))
        stop();
}

void Session::frame_requests() {
    auto now = clock::now();
    while (!stopped() && intake_ == Intake::open && local_writing_.empty() && local_.empty() &&
           ready_ < in_.size()) {
        const bool mid_frame = frame_ != Frame::whole;
        // A link on a pool no longer current (relaying began or ended) is
        // left only once everything sent on it is answered and written to
        // the client: then the session moves or retires.
        if (!mid_frame && (link_->pending().full() || holding() || (stale() && replies_outstanding())))
            break;
        RequestResult r = requests_.feed(in_.data().substr(ready_));
        if (r.status == Status::error) {
            protocol_error(r.error);
            break;
        }
        if (r.status == Status::done) {
            if (!end_of_frame(r.request, now))
                break;
            continue;
        }
        if (mid_frame || start_partial())
            pass_on_partial();
        break;
    }
}

void Session::protocol_error(const ProtocolError& error) {
    ++w_.counters.protocol_errors;
    SPDLOG_LOGGER_DEBUG(w_.shared.log, "client protocol error: {}", error.reply());
    // Redis may hold the head of the bad frame (streamed): it never completes,
    // is owed no reply, and the connection goes with the session.
    if (streaming())
        dirty_ = true;
    frame_ = Frame::whole;
    drop_reply_.clear();
    in_.truncate(ready_);
    emit_local(error.reply(), true);
}

// A request ended. Returns false when processing must pause.
bool Session::end_of_frame(const Request& request, clock::time_point now) {
    if (streaming()) {
        // Its head went on long ago; the backend timeout runs from its last byte.
        const bool blocking = frame_ == Frame::streaming_blocking;
        frame_ = Frame::whole;
        ready_ += request.size;
        expect(PendingRequest{now, blocking, frame_class_}, frame_traits_);
        return true;
    }
    if (frame_ == Frame::dropping) { // its head was at the front: nothing was due before it
        frame_ = Frame::whole;
        in_.consume(request.size);
        emit_local(drop_reply_);
        drop_reply_.clear();
        return false;
    }
    return dispatch(request, in_.data().substr(ready_, request.size), now);
}

// A whole request. Returns false when processing must pause (a reply of the
// proxy's own is due).
bool Session::dispatch(const Request& request, std::string_view frame, clock::time_point now) {
    if (request.argc == 0) { // an empty inline line or *0: Redis skips it, so do we
        ready_ += request.size;
        return true;
    }
    const CommandTraits traits = traits_of(request);
    if (answered_locally(traits)) {
        if (replies_outstanding()) {
            intake_ = Intake::waiting; // resumed by resume_if_quiet() once earlier replies are out
            return false;
        }
        ++w_.counters.commands;
        if (traits.has(Trait::role_change) && w_.shared.config.vrrp.has_value() && authenticated_) {
            in_.consume(request.size);
            emit_local(fmt::format("-ERR redvip: {} is refused, the election decides replication roles "
                                   "(use redvip switchover)\r\n",
                                   request.name.view()));
            return false;
        }
        return run_local(request, frame);
    }
    const bool blocking = traits.has(Trait::blocking) ||
                          (traits.has(Trait::blocking_with_option) && has_block_option(frame));
    if (!pin_if_needed(request, traits, blocking))
        return false;
    ++w_.counters.commands;
    if (passthrough() && request.name.view() == "QUIT") // (only then does QUIT go on: traits_of())
        pairing_ = Pairing::quit_sent;
    begin_forward(traits);
    expect(PendingRequest{now, blocking, command_class(request.name.view(), blocking)}, traits);
    ready_ += request.size;
    return true;
}

// What the command does, as the proxy handles it. Without [proxy] password,
// clients authenticate to Redis itself: AUTH, HELLO and RESET (which logs the
// client out) go to Redis, and leave their user on the connection, so it is
// never reused by another client. RESET goes to Redis too once replies no
// longer pair with requests (after SUBSCRIBE, MONITOR...): only Redis's own
// answer, in its stream, says when the earlier replies are all out. So does
// QUIT then, whose close is then Redis's, and no lost connection.
CommandTraits Session::traits_of(const Request& request) const noexcept {
    CommandTraits traits = classify(request.name.view(), request.subcommand.view());
    if (!traits.has(Trait::intercepted))
        return traits; // (every command on the forwarding path: no name compared)
    const std::string_view name = request.name.view();
    const bool clients_own_auth = w_.shared.config.proxy.password.empty();
    if ((clients_own_auth && (name == "AUTH" || name == "HELLO")) ||
        (name == "RESET" && (clients_own_auth || passthrough())) || (name == "QUIT" && passthrough()))
        traits.bits &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(Trait::intercepted));
    return traits;
}

bool Session::answered_locally(CommandTraits traits) const noexcept {
    bool refused = traits.has(Trait::role_change) && w_.shared.config.vrrp.has_value();
    return traits.has(Trait::intercepted) || refused || !authenticated_ || !refusal().empty();
}

// What the serving state answers every command with, if anything: FENCED
// refuses; HOLDING, past its deadline (the worker's sweep), gives up.
std::string_view Session::refusal() const noexcept {
    // CLOSING relays as RELAYING does (sessions close once quiet).
    if (w_.state == ServingState::fenced || (w_.state == ServingState::closing && !w_.relay))
        return kFencedReply;
    if (w_.state == ServingState::holding && w_.hold_expired)
        return kHoldExpired;
    if (stale() && !movable())
        return kFencedReply; // its state is on a Redis that is not the master now: retired
    return {};
}

std::string_view Session::count_refusal() noexcept {
    const std::string_view why = refusal();
    ++(why == kHoldExpired ? w_.counters.hold_expired_replies : w_.counters.fenced_replies);
    return why;
}

// Requests wait unframed in in_ (bounded by kMaxHeldFrame, then the client is
// not read) while this node is being made master.
bool Session::holding() const noexcept {
    return w_.state == ServingState::holding && !w_.hold_expired;
}

// The Redis this session's link goes to, for error texts.
std::string Session::redis_name() const {
    const auto& to = (link_pool_ ? *link_pool_ : w_.backends).address();
    if (to.address().is_v6())
        return fmt::format("[{}]:{}", to.address().to_string(), to.port());
    return fmt::format("{}:{}", to.address().to_string(), to.port());
}

// The link is on a pool that is no longer where commands go.
bool Session::stale() const noexcept {
    return link_pool_ != nullptr && link_pool_ != &w_.current_pool();
}

// Its connection holds nothing another cannot (asked once it owes no reply).
bool Session::movable() const noexcept {
    return !dirty_ && !passthrough() && !streaming() && in_flight_ == 0 && !link_->connecting() &&
           !link_->holds_replies() && !link_->replies_lent();
}

// Before a request goes to Redis: a session with no link yet, or one on a
// pool no longer current (and movable(), or refusal() had answered), takes a
// new link on the current pool.
//
// In shared mode the link is a share of one of the thread's shared links to
// the local Redis; relayed (RELAYING, CLOSING), a connection of its own.
void Session::bind_link() {
    BackendPool& pool = w_.current_pool();
    if (link_pool_ == &pool)
        return;
    if (link_pool_ != nullptr)
        drop_link();
    if (&pool != &w_.backends)
        ++w_.counters.relayed_sessions;
    std::shared_ptr<BackendLink> share = shared() && &pool == &w_.backends ? w_.shared_view() : nullptr;
    link_ = share ? std::move(share) : w_.new_link();
    link_pool_ = &pool;
    link_->attach(*this, weak_from_this());
}

// The link goes (its connection back to the pool when clean); the next
// request binds another.
void Session::drop_link() {
    link_->release(true);
    link_->detach();
    // Its call into this session may be on the stack.
    w_.loop.release_later(std::move(link_));
    link_ = no_link();
    link_pool_ = nullptr;
}

// In shared mode, a command that needs a connection of its own, or a session
// the shared link found slow or large, pins (share_policy.hpp). False while
// earlier replies are still due: processing resumes once they are out.
bool Session::pin_if_needed(const Request& request, CommandTraits traits, bool blocking) {
    if (!shared())
        return true;
    PinReason why =
        w_.share_policy.pin_reason(request.name.view(), request.subcommand.view(), traits, blocking);
    if (why == PinReason::none)
        why = link_->pin_advice();
    return why == PinReason::none || pin(why);
}

// Order is kept: the session leaves its shared link only once every reply due
// on it is written, and never comes back.
bool Session::pin(PinReason why) {
    if (replies_outstanding()) {
        intake_ = Intake::waiting; // resumed by resume_if_quiet()
        return false;
    }
    sharing_ = Sharing::pinned;
    ++w_.counters.pins[static_cast<std::size_t>(why)];
    if (link_pool_ != nullptr)
        drop_link();
    return true;
}

void Session::begin_forward(CommandTraits traits) {
    bind_link();
    if (traits.has(Trait::connection_state))
        dirty_ = true;
    else
        served_ = true;
}

// A request not yet complete, whose head (command and subcommand) the framer
// may know: decide whether its bytes may go on as they arrive. Returns true
// once they may (streamed to Redis, or dropped and answered by the proxy).
bool Session::start_partial() {
    const Request* head = requests_.head();
    if (head == nullptr)
        return false; // classified later; the framer refuses a head past 192 KiB
    const bool full = in_.size() - ready_ >= kMaxHeldFrame;
    const CommandTraits traits = traits_of(*head);
    if (answered_locally(traits)) {
        if (!full)
            return false; // held whole
        if (replies_outstanding()) {
            intake_ = Intake::waiting;
            return false;
        }
        ++w_.counters.commands;
        frame_ = Frame::dropping;
        if (head->name.view() == "AUTH" && traits.has(Trait::intercepted)) {
            ++w_.counters.auth_failures; // no password of ours is that long
            drop_reply_ = kWrongPass;
        } else if (!refusal().empty()) {
            drop_reply_ = count_refusal();
        } else {
            drop_reply_ = kTooLarge;
        }
        return true;
    }
    // A shared link takes whole requests only: one too large to hold streams
    // on a connection of the session's own.
    if (shared()) {
        if (!full)
            return false; // held whole
        if (!pin(PinReason::large_request))
            return false;
    }
    bool blocking = traits.has(Trait::blocking);
    if (traits.has(Trait::blocking_with_option)) {
        if (!full)
            return false;
        // BLOCK comes before STREAMS in XREAD's syntax, so it is in what is held.
        blocking = has_block_option(in_.data().substr(ready_));
    }
    ++w_.counters.commands;
    begin_forward(traits);
    frame_class_ = command_class(head->name.view(), blocking);
    frame_traits_ = traits;
    frame_ = blocking ? Frame::streaming_blocking : Frame::streaming;
    return true;
}

// What the framer is done with of the current request goes to Redis (or is
// dropped); only a header line or so stays behind.
void Session::pass_on_partial() {
    const std::size_t n = requests_.droppable();
    requests_.discard(n);
    if (streaming())
        ready_ += n;
    else
        in_.consume(n); // dropping: the frame is at the front (ready_ is 0)
}

// True when the link took every byte at once (no on_sent() follows).
bool Session::forward() {
    if (ready_ == in_flight_ || in_flight_ > 0 || stopped())
        return false;
    if (!link_->connected()) {
        if (!link_->connecting())
            link_->connect(); // on_link_ready() forwards
        return false;
    }
    in_flight_ = ready_;
    if (!link_->send(in_.data().substr(0, in_flight_)))
        return false;
    sent();
    return true;
}

void Session::sent() {
    in_.consume(in_flight_);
    ready_ -= in_flight_;
    in_flight_ = 0;
    resume_if_quiet();
}

// --- the serving state and the sweep ---

// A session whose connection cannot move to where commands go now closes
// once it owes its client nothing, between two requests, and the client
// reconnects (one whose pool checks a connection before reusing it, as
// redis-py's and go-redis's do, sees no error): in CLOSING, every session
// that has sent a command (the VIP is leaving for the new master; one that
// connected meanwhile gets its handshake through first); otherwise a
// session whose state is on a Redis no longer the master (its next command
// would be refused).
//
// When: a close that crosses a request already on the wire resets it, and
// the client cannot know whether it ran. A client that waits for its reply
// sends nothing more until it has read it, so the safest moment is right
// after a reply is written (`moment` = after_reply): the FIN follows the
// reply and the client reads both before its next request. A session that
// sends nothing for kClosingPatience after the state changed closes at the
// next sweep anyway (any moment is as likely to cross a request of a client
// that sends at random; the VIP leaves 2 advert intervals after CLOSING
// starts, so that the close comes before).
void Session::leave_if_quiet(Moment moment) {
    if (stopped())
        return;
    const bool leave = (w_.state == ServingState::closing && (stale() || served_)) ||
                       (stale() && (dirty_ || passthrough()));
    if (!leave)
        return;
    const bool due = moment == Moment::after_reply || clock::now() - w_.state_since >= kClosingPatience;
    if (!due)
        return;
    const bool writing = link_->replies_lent() || !local_writing_.empty();
    const bool quiet = passthrough() ? !writing
                                     : !replies_outstanding() && in_.empty() && frame_ == Frame::whole &&
                                           client_.available() == 0;
    if (quiet)
        stop();
}

bool Session::busy() const noexcept {
    if (stopped() || passthrough() || link_pool_ != &w_.backends)
        return false;
    const PendingQueue& pending = link_->pending();
    return in_flight_ > 0 || streaming() || (!pending.empty() && !pending.front().blocking);
}

void Session::on_state_change() {
    if (stopped())
        return;
    // Still waiting for a Redis that cannot be reached (BoundLink retries for
    // hold_timeout_ms) when commands are now refused here (FENCED: its Redis
    // died and a peer takes over) or go elsewhere: the wait can only end in a
    // close, so close now, and the client reconnects to where the VIP leads.
    if (link_->connecting() && (!refusal().empty() || stale()))
        return link_->stop_waiting("this node stopped serving from it");
    process_requests();
    leave_if_quiet(Moment::any);
}

void Session::check_timeouts(clock::time_point now) {
    leave_if_quiet(Moment::any);
    if (stopped())
        return;
    if (now - std::max(last_activity_, backend_progress_) > kBufferIdle &&
        (in_.allocated() || link_->holds_buffer()))
        release_buffers();
    const auto& cfg = w_.shared.config.proxy;
    // From the request's last byte, or Redis's last sign of life; not while the
    // proxy itself waits for the client to take a reply (a slow reader makes
    // Redis wait, not the other way round).
    const PendingQueue& pending = link_->pending();
    const bool client_blocked = link_->replies_lent() || !local_writing_.empty();
    if (cfg.backend_timeout.count() > 0 && !passthrough() && !client_blocked && !pending.empty() &&
        !pending.front().blocking &&
        now - std::max(pending.front().sent, backend_progress_) > cfg.backend_timeout) {
        // Each request left gets an error it can read, then the close (its
        // reply may still come: the connection cannot be used again).
        ++w_.counters.backend_timeouts;
        link_->abort(fmt::format("Redis did not answer within {} ms", cfg.backend_timeout.count()));
        if (!link_->pending().empty())
            stop(); // (no connection yet to abort)
        return;
    }
    // Like Redis's timeout: not for clients waiting on a reply, held or subscribed.
    const bool held = holding() && ready_ < in_.size();
    if (cfg.idle_timeout.count() > 0 && pending.empty() && !passthrough() && !held &&
        now - last_activity_ > cfg.idle_timeout) {
        ++w_.counters.idle_timeouts;
        stop();
    }
}

} // namespace redvip::proxy
