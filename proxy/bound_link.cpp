#include "proxy/bound_link.hpp"

#include <fmt/format.h>

#include <boost/asio/write.hpp>

namespace redvip::proxy {

using clock = std::chrono::steady_clock;

BoundLink::BoundLink(asio::io_context& io, BackendPool& pool, BufferPool& buffers,
                     std::shared_ptr<BackendPool> shared)
    : pool_(pool), shared_pool_(std::move(shared)), buffers_(buffers), socket_(io) {}

BoundLink::~BoundLink() { buffers_.give_back(out_); }

void BoundLink::attach(ReplySink& sink, std::weak_ptr<void> keepalive) {
    sink_ = &sink;
    keepalive_ = std::move(keepalive);
}

void BoundLink::detach() noexcept { sink_ = nullptr; }

void BoundLink::connect() {
    state_ = State::connecting;
    pool_.acquire([this, keep = keepalive_.lock()](tcp::socket socket, const std::string& error) {
        if (sink_ == nullptr) {
            error_code ignored;
            socket.close(ignored);
            return;
        }
        if (!error.empty()) {
            state_ = State::none;
            return fail(LinkFailure::unreachable, error);
        }
        error_code ec;
        socket.non_blocking(true, ec); // send() and read_ready() never block
        if (ec) {
            state_ = State::none;
            return fail(LinkFailure::unreachable, ec.message());
        }
        socket_ = std::move(socket);
        state_ = State::bound;
        replies_ = ReplyFramer();
        reply_started_ = false;
        read();
        sink_->on_link_ready();
    });
}

// The socket takes a request at once, as a rule: then no completion is posted
// and the event loop saves a turn (an epoll_wait) per request. What it does
// not take, or an error, goes the asynchronous way, which reports it.
bool BoundLink::send(std::string_view bytes) {
    error_code error;
    const std::size_t n = socket_.write_some(asio::buffer(bytes.data(), bytes.size()), error);
    if (!error && n == bytes.size())
        return true;
    bytes.remove_prefix(error ? 0 : n);
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [this, keep = keepalive_.lock()](const error_code& ec, std::size_t) {
                          if (!live())
                              return;
                          if (ec)
                              return fail(LinkFailure::lost, ec.message());
                          sink_->on_sent();
                      });
    return false;
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

// The session is idle (nothing sent, lent or due): a read in flight into the
// buffer is cancelled first, and its handler gives the buffer back.
void BoundLink::release_buffer() {
    if (!out_.empty() || lent_ > 0)
        return;
    error_code ignored;
    if (reading_ && out_.allocated())
        socket_.cancel(ignored);
    else
        buffers_.give_back(out_);
    read(); // without a buffer now, unless its cancel is still due
}

// A connection with no state, no request half-sent and no reply due is as
// good as new. Its read (into our buffer) is cancelled before the pool takes
// it; the aborted handler finds the link unbound.
void BoundLink::release(bool clean) {
    const bool reusable = clean && state_ == State::bound && !passthrough_ && !reply_started_ &&
                          pending_.empty() && out_.size() == 0;
    error_code ignored;
    if (reusable) {
        socket_.cancel(ignored);
        pool_.give_back(std::move(socket_));
    } else {
        socket_.close(ignored);
    }
    if (state_ == State::bound)
        state_ = State::none;
    passthrough_ = reply_started_ = false;
}

void BoundLink::read() {
    if (reading_ || !live())
        return;
    if (!out_.allocated()) {
        // Idle: wait for readability without a buffer.
        reading_ = true;
        socket_.async_wait(tcp::socket::wait_read,
                           [this, keep = keepalive_.lock()](const error_code& ec) { on_readable(ec); });
        return;
    }
    if (lent_ == 0 && replied_ == 0)
        out_.make_room();
    // Replies stream, so the framer holds at most a length line: a full buffer
    // is one lent to the client's write (whose completion reads again).
    if (out_.write_space() == 0) {
        if (lent_ > 0 || replied_ > 0)
            return;
        out_.compact();
        if (out_.write_space() == 0)
            return fail(LinkFailure::lost, "the reply framer stalled"); // cannot happen: see above
    }
    reading_ = true;
    socket_.async_read_some(asio::buffer(out_.write_ptr(), out_.write_space()),
                            [this, keep = keepalive_.lock()](const error_code& ec, std::size_t n) { on_read(ec, n); });
}

void BoundLink::on_read(const error_code& ec, std::size_t n) {
    reading_ = false;
    if (!live())
        return;
    if (ec == asio::error::operation_aborted) { // release_buffer() found the session idle
        if (out_.empty() && lent_ == 0)
            buffers_.give_back(out_);
        return read();
    }
    if (ec)
        return fail(LinkFailure::lost, ec == asio::error::eof ? "connection closed by Redis" : ec.message());
    out_.commit(n);
    on_data();
}

void BoundLink::on_readable(const error_code& ec) {
    reading_ = false;
    if (!live() || ec == asio::error::operation_aborted)
        return;
    if (ec)
        return fail(LinkFailure::lost, ec.message());
    error_code rec;
    read_ready(socket_, buffers_, out_, rec);
    if (rec == asio::error::would_block)
        return read();
    if (rec)
        return fail(LinkFailure::lost, rec == asio::error::eof ? "connection closed by Redis" : rec.message());
    on_data();
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
    read();
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
    if (sink_ == nullptr || (kind == LinkFailure::lost && state_ != State::bound))
        return;
    error_code ignored;
    socket_.close(ignored);
    state_ = State::none;
    out_.truncate(replied_);
    const LinkError error{kind, why, passthrough_ || reply_started_};
    passthrough_ = reply_started_ = false;
    ReplySink& sink = *sink_;
    pending_.fail_all([&](const PendingRequest& request) { sink.on_unanswered(request, error); });
    sink.on_link_failed(error);
}

} // namespace redvip::proxy
