#include "proxy/bound_link.hpp"

#include <fmt/format.h>

namespace redvip::proxy {

using clock = std::chrono::steady_clock;

BoundLink::BoundLink(EventLoop& loop, BackendPool& pool, BufferPool& buffers, std::chrono::milliseconds wait,
                     std::shared_ptr<BackendPool> shared)
    : pool_(pool)
    , shared_pool_(std::move(shared))
    , buffers_(buffers)
    , soon_(loop)
    , failing_(loop)
    , retry_(loop)
    , wait_(wait) {}

BoundLink::~BoundLink() { buffers_.give_back(out_); }

void BoundLink::attach(ReplySink& sink, std::weak_ptr<void> keepalive) {
    sink_ = &sink;
    keepalive_ = std::move(keepalive);
}

void BoundLink::detach() noexcept { sink_ = nullptr; }

// A Redis that cannot be reached (restarting, or not up yet) is waited for,
// as a promotion is: the client's commands wait, unsent, and go once it
// answers; past `wait_` the link fails (the session closes the client). A
// client of a Redis that is down for a moment sees latency, not an error;
// and its library, which may have written its whole offline queue on the
// connection the proxy accepted (node-redis does), loses none of it.
void BoundLink::connect() {
    state_ = State::connecting;
    give_up_ = clock::now() + wait_;
    retry_delay_ = kFirstRetry;
    attempt();
}

void BoundLink::attempt() {
    pool_.acquire([this, keep = keepalive_.lock()](Socket socket, const std::string& error) {
        if (sink_ == nullptr)
            return; // (the socket closes with its last owner, here)
        if (!error.empty()) {
            if (clock::now() + retry_delay_ < give_up_) {
                retry_.after(retry_delay_, [this] { attempt(); });
                retry_delay_ = std::min(retry_delay_ * 2, kMaxRetry);
                return;
            }
            state_ = State::none;
            return fail(LinkFailure::unreachable, error);
        }
        socket_ = std::move(socket);
        socket_.set_handler(this);
        state_ = State::bound;
        replies_ = ReplyFramer();
        reply_started_ = false;
        read();
        if (live())
            sink_->on_link_ready();
    });
}

// The socket takes a request at once, as a rule. What it does not take waits
// for EPOLLOUT; an error is reported from the loop, not inside this call.
bool BoundLink::send(std::string_view bytes) {
    const IoResult r = socket_.write(bytes);
    if (r.error != 0) {
        failing_.after(Clock::duration::zero(), [this, error = r.error] { fail(LinkFailure::lost, error_text(error)); });
        return false;
    }
    if (r.bytes == bytes.size())
        return true;
    unsent_ = bytes.substr(r.bytes);
    return false;
}

void BoundLink::on_io() {
    if (!live())
        return;
    if (!unsent_.empty() && socket_.writable()) {
        const IoResult r = socket_.write(unsent_);
        if (r.error != 0)
            return fail(LinkFailure::lost, error_text(r.error));
        unsent_.remove_prefix(r.bytes);
        if (unsent_.empty()) {
            sink_->on_sent();
            if (!live())
                return;
        }
    }
    read();
}

std::string_view BoundLink::lend_replies() {
    if (lent_ > 0)
        return {};
    lent_ = replied_;
    return out_.data().substr(0, lent_);
}

void BoundLink::replies_written() {
    out_.consume(lent_);
    replied_ -= lent_;
    lent_ = 0;
    read();
}

// The session is idle (nothing sent, lent or due).
void BoundLink::release_buffer() {
    if (!out_.empty() || lent_ > 0 || reading_)
        return;
    buffers_.give_back(out_);
}

// A connection with no state, no request half-sent and no reply due is as
// good as new.
void BoundLink::release(bool clean) {
    const bool reusable = clean && state_ == State::bound && !passthrough_ && !reply_started_ &&
                          pending_.empty() && out_.size() == 0 && unsent_.empty();
    if (reusable) {
        socket_.set_handler(nullptr);
        pool_.give_back(std::move(socket_));
    } else {
        socket_.close();
    }
    soon_.cancel();
    failing_.cancel();
    retry_.cancel();
    unsent_ = {};
    if (state_ != State::none)
        state_ = State::none; // (a connect still trying is abandoned)
    passthrough_ = reply_started_ = false;
}

// Reads while the socket has bytes and the buffer room: the buffer is taken
// only now, so an idle link holds none. Replies stream, so the framer holds at
// most a length line: a full buffer is one lent to the client's write (whose
// end reads again).
void BoundLink::read() {
    if (reading_)
        return; // the loop below is on the stack: it goes on
    reading_ = true;
    for (int reads = 0; live() && socket_.readable(); ++reads) {
        if (reads == kReadsPerTurn) {
            soon_.after(Clock::duration::zero(), [this] { read(); }); // let the others in first
            break;
        }
        if (!out_.allocated())
            out_ = buffers_.take();
        if (lent_ == 0 && replied_ == 0)
            out_.make_room();
        if (out_.write_space() == 0) {
            if (lent_ > 0 || replied_ > 0)
                break;
            out_.compact();
            if (out_.write_space() == 0) {
                reading_ = false;
                return fail(LinkFailure::lost, "the reply framer stalled"); // cannot happen: see above
            }
        }
        const IoResult r = socket_.read(out_.write_ptr(), out_.write_space());
        if (r.failed()) {
            reading_ = false;
            return fail(LinkFailure::lost, r.eof ? "connection closed by Redis" : error_text(r.error));
        }
        if (r.bytes == 0)
            break;
        out_.commit(r.bytes);
        on_data();
    }
    reading_ = false;
}

void BoundLink::on_data() {
    const auto now = clock::now();
    if (passthrough_)
        replied_ = out_.size();
    else
        frame_replies(now);
    if (!live())
        return;
    sink_->on_replies(now);
}

// Whole replies pop their requests; the part of an unfinished one the framer
// is done with goes to the client at once.
void BoundLink::frame_replies(clock::time_point now) {
    while (replied_ < out_.size()) {
        ReplyResult r = replies_.feed(out_.data().substr(replied_));
        if (r.status == Status::need_more) {
            const std::size_t n = replies_.droppable();
            replies_.discard(n);
            replied_ += n;
            reply_started_ = reply_started_ || n > 0;
            return;
        }
        if (r.status == Status::error)
            return fail(LinkFailure::lost, fmt::format("protocol error from Redis: {}", r.error.reply()));
        replied_ += r.reply.size;
        reply_started_ = false;
        if (r.reply.kind == ReplyKind::reply) {
            if (pending_.empty())
                return fail(LinkFailure::lost, "Redis sent a reply nobody asked for");
            const PendingRequest answered = pending_.front();
            pending_.pop();
            sink_->on_answered(answered, now);
        }
    }
}

// The connection is gone (or never came): replies already framed stay to be
// lent, every request left unanswered is failed once, oldest first.
void BoundLink::fail(LinkFailure kind, const std::string& why) {
    if (sink_ == nullptr || (kind != LinkFailure::unreachable && state_ != State::bound))
        return;
    socket_.close();
    soon_.cancel();
    failing_.cancel();
    unsent_ = {};
    state_ = State::none;
    out_.truncate(replied_);
    // Nothing was sent on a connection never made, so nothing can be garbled.
    const bool garbled = kind != LinkFailure::unreachable && (passthrough_ || reply_started_);
    const LinkError error{kind, why, garbled};
    passthrough_ = reply_started_ = false;
    ReplySink& sink = *sink_;
    pending_.fail_all([&](const PendingRequest& request) { sink.on_unanswered(request, error); });
    sink.on_link_failed(error);
}

} // namespace redvip::proxy
