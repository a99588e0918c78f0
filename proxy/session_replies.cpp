// The backend -> client direction of a session (session.hpp): the replies a
// request is owed, the link's calls (ReplySink), replies written to the
// client as Redis sends them, and the proxy's own replies, written once every
// earlier reply is. The client -> backend direction is in session.cpp.
#include "proxy/session.hpp"

#include <fmt/format.h>
#include <iterator>
#include <spdlog/spdlog.h>
#include <utility>

namespace redvip::proxy {

namespace {

using clock = std::chrono::steady_clock;

} // namespace

// --- replies owed ---

// A request went to Redis: its reply is owed, until a command after which
// replies stop pairing with requests (SUBSCRIBE, MONITOR, CLIENT REPLY OFF...;
// its own first reply is still owed). Requests still go through the framer
// after it, so QUIT and RESET stay the proxy's and a protocol error is caught.
void Session::expect(const PendingRequest& request, CommandTraits traits) {
    if (passthrough()) return;
    link_->expect(request);
    if (traits.has(Trait::unpaired_replies)) {
        pairing_ = Pairing::passthrough; // from here on replies flow unframed
        link_->unpaired();
    }
}

bool Session::owes_replies() const noexcept {
    return !passthrough() && !link_->pending().empty();
}

bool Session::replies_outstanding() const noexcept {
    return ready_ > 0 || in_flight_ > 0 || owes_replies() || link_->holds_replies() ||
           !local_.empty() || !local_writing_.empty();
}

// A request the proxy answers itself waited for every earlier reply: go on once
// they are out (or, for requests Redis answers with nothing, forwarded).
void Session::resume_if_quiet() {
    if (intake_ == Intake::waiting && !replies_outstanding()) intake_ = Intake::open;
}

// --- the link's calls ---

void Session::on_link_ready() {
    if (forward()) process_requests(); // as on_sent() does
}

void Session::on_sent() {
    sent();
    process_requests();
}

void Session::on_answered(const PendingRequest& answered, clock::time_point now) {
    w_.counters.latency[static_cast<std::size_t>(answered.cls)].record(
        std::chrono::duration_cast<std::chrono::microseconds>(now - answered.sent));
    if (!w_.drains.empty()) w_.check_drained(now);
}

void Session::on_replies(clock::time_point now) {
    backend_progress_ = now;
    write_client();
}

// The link failed. The client sees what it would see of Redis itself: a
// Redis that cannot be reached, or whose connection broke, is a closed
// connection (after the replies Redis sent before it), which every client
// library treats as a connection error it may retry or fail over on; an
// error reply would reach the application as a command's error instead
// (redis-py's ResponseError), where no retry logic looks. A backend timeout
// is the proxy's own decision, so there each request left gets a line that
// says so, then the close. Only the log and the metrics say why.
void Session::on_unanswered(const PendingRequest&, const LinkError& error) {
    if (error.kind != LinkFailure::timed_out || error.garbled)
        return; // (garbled: the client could not tell an error reply from the rest)
    fmt::format_to(std::back_inserter(local_), "-ERR redvip: connection to Redis lost: {}\r\n",
                   error.why);
}

void Session::on_link_failed(const LinkError& error) {
    if (stopped()) return;
    if (!w_.drains.empty()) w_.check_drained(clock::now());
    if (pairing_ == Pairing::quit_sent && error.kind == LinkFailure::lost) {
        emit_local("", true); // Redis answered the QUIT and closed, as asked
        return;
    }
    ++w_.counters.backend_errors;
    if (error.kind == LinkFailure::unreachable) // the pool reports it to the health checks as well
        SPDLOG_LOGGER_DEBUG(w_.shared.log, "cannot reach Redis at {}: {}: closing the client",
                            redis_name(), error.why);
    else if (shared()) // (the shared link said so once, for every session on it)
        SPDLOG_LOGGER_DEBUG(w_.shared.log, "session's shared link lost: {}: closing the client", error.why);
    else
        w_.shared.log->warn("session lost its Redis connection: {}", error.why);
    in_.consume(in_.size()); // (a read may be in flight into it)
    ready_ = in_flight_ = 0;
    frame_ = Frame::whole;
    emit_local("", true);
}

// --- replies to the client ---

// Replies are written at once when the client's socket takes them all (the
// common case); only the rest waits for EPOLLOUT.
void Session::write_client() {
    if (link_->replies_lent() || !link_->replies_ready() || stopped() || !local_writing_.empty())
        return;
    if (write_out(link_->lend_replies(), Writing::replies)) replies_delivered();
}

// True when the socket took every byte. Else the rest waits for EPOLLOUT
// (continue_write()), or the socket failed: the session stops from the loop,
// not inside its caller (and the lent bytes keep anything else from writing).
bool Session::write_out(std::string_view bytes, Writing kind) {
    const IoResult r = client_.write(bytes);
    if (r.error != 0) {
        later_.after(Clock::duration::zero(), [this, r] { client_gone(r); });
        return false;
    }
    w_.counters.bytes_out += r.bytes;
    if (r.bytes == bytes.size()) return true;
    unwritten_ = bytes.substr(r.bytes);
    writing_ = kind;
    return false;
}

void Session::continue_write() {
    const IoResult r = client_.write(unwritten_);
    if (r.error != 0) return client_gone(r);
    w_.counters.bytes_out += r.bytes;
    unwritten_.remove_prefix(r.bytes);
    if (!unwritten_.empty()) return;
    if (std::exchange(writing_, Writing::none) == Writing::replies)
        replies_delivered();
    else
        local_written();
}

void Session::replies_delivered() {
    backend_progress_ = clock::now();
    link_->replies_written();
    after_client_write();
    leave_if_quiet(Moment::after_reply);
}

void Session::after_client_write() {
    last_activity_ = clock::now();
    write_client();
    flush_local();
    resume_if_quiet();
    process_requests();
}

// --- the proxy's own replies ---

void Session::emit_local(std::string_view bytes, bool close_after) {
    local_.append(bytes);
    if (close_after) {
        intake_ = Intake::closing; // read and forward nothing more
    }
    flush_local();
}

// Written once every earlier reply is: nothing pending, nothing framed unsent.
void Session::flush_local() {
    if (!local_writing_.empty() || link_->replies_lent() || link_->replies_ready() ||
        owes_replies() || stopped())
        return;
    if (local_.empty()) {
        if (intake_ == Intake::closing) stop();
        return;
    }
    local_writing_.swap(local_);
    // Emitted while requests are framed: what follows a local reply runs
    // from the loop, never inside the framing that emitted it.
    if (write_out(local_writing_, Writing::local))
        later_.after(Clock::duration::zero(), [this] { local_written(); });
}

void Session::local_written() {
    local_writing_.clear();
    if (intake_ == Intake::closing && local_.empty()) return stop();
    after_client_write();
}

// A busy session keeps its buffers (reads go straight into them); one idle
// for kBufferIdle gives them back to the thread's pools, so an idle client
// costs no buffer (the next read takes one).
void Session::release_buffers() {
    const bool quiet = (link_->pending().empty() || passthrough()) && in_.empty() &&
                       in_flight_ == 0 && !link_->holds_replies() && !link_->replies_lent() &&
                       local_.empty() && local_writing_.empty() && frame_ == Frame::whole;
    if (!quiet || stopped()) return;
    w_.buffers.give_back(in_);
    link_->release_buffer(); // nothing is being sent: see quiet
    if (local_.capacity() > 32) std::string().swap(local_);
}

} // namespace redvip::proxy
