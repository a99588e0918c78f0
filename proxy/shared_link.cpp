#include "proxy/shared_link.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace redvip::proxy {

using clock = std::chrono::steady_clock;

namespace {

// The reply to COMMAND is about 90 KiB for Redis 7.0; anything far larger is
// not a command table.
constexpr std::size_t kMaxTable = 8 * 1024 * 1024;

constexpr std::string_view kCommandRequest = "*1\r\n$7\r\nCOMMAND\r\n";

} // namespace

// --- SharedView: a session's share ---

SharedView::~SharedView() { buffers_.give_back(out_); }

void SharedView::attach(ReplySink& sink, std::weak_ptr<void> keepalive) {
    sink_ = &sink;
    keepalive_ = std::move(keepalive);
}

bool SharedView::connected() const noexcept { return link_.ready() && !dead_; }

// A ready link answers at once (link.hpp allows on_link_ready() inside).
void SharedView::connect() {
    if (dead_)
        return; // (the session takes a new view: see Session::drop_link())
    if (link_.ready()) {
        if (sink_ != nullptr)
            sink_->on_link_ready();
        return;
    }
    waiting_ = Waiting::connection;
    link_.want_connection(*this);
}

bool SharedView::send(std::string_view bytes) {
    if (link_.enqueue(*this, bytes))
        return true;
    unsent_ = bytes;
    waiting_ = Waiting::room;
    return false;
}

// Replies that do not pair with requests cannot share a link: the session
// pins before such a command (share_policy.hpp), so this is a bug if it runs.
void SharedView::unpaired() {
    link_.forget(*this);
    fail(LinkError{LinkFailure::lost, "a shared link cannot carry unpaired replies", false});
}

std::string_view SharedView::lend_replies() {
    if (lent_ > 0)
        return {};
    lent_ = replied_;
    return out_.data().substr(0, lent_);
}

void SharedView::replies_written() {
    out_.consume(lent_);
    replied_ -= lent_;
    lent_ = 0;
    link_.resume(*this);
}

void SharedView::release_buffer() {
    if (out_.empty() && lent_ == 0)
        buffers_.give_back(out_);
}

// The connection is the link's, and stays: this share of it ends. Replies
// still due to it are read and dropped when they come.
void SharedView::release(bool) {
    link_.forget(*this);
    dead_ = true;
    waiting_ = Waiting::none;
    unsent_ = {};
}

// Redis did not answer this session in time: its requests fail, the replies
// due are dropped when they come, and the link goes on for the others.
void SharedView::abort(std::string_view why) {
    link_.forget(*this);
    fail(LinkError{LinkFailure::timed_out, why, false});
}

void SharedView::stop_waiting(std::string_view why) {
    if (waiting_ != Waiting::connection)
        return;
    link_.forget(*this);
    fail(LinkError{LinkFailure::unreachable, why, false});
}

std::size_t SharedView::take(std::string_view bytes, bool ends, clock::time_point now) {
    if (dropping()) {
        if (ends && !pending_.empty())
            pending_.pop(); // (released: its session is gone)
        return bytes.size();
    }
    if (!out_.allocated())
        out_ = buffers_.take();
    if (lent_ == 0)
        out_.make_room();
    const std::size_t n = std::min(bytes.size(), out_.write_space());
    out_.append(bytes.substr(0, n));
    replied_ += n;
    reply_bytes_ += n;
    if (n < bytes.size()) {
        reply_started_ = reply_started_ || n > 0;
        return n;
    }
    if (!ends) {
        reply_started_ = true;
        return n;
    }
    reply_started_ = false;
    if (reply_bytes_ >= kLargeReply && advice_ == PinReason::none)
        advice_ = PinReason::large_reply;
    reply_bytes_ = 0;
    if (!pending_.empty()) {
        const PendingRequest answered = pending_.front();
        pending_.pop();
        sink_->on_answered(answered, now);
    }
    return n;
}

void SharedView::link_ready() {
    waiting_ = Waiting::none;
    if (!dropping())
        sink_->on_link_ready();
}

void SharedView::room() {
    waiting_ = Waiting::none;
    link_.append(*this, std::exchange(unsent_, {}));
    if (!dropping())
        sink_->on_sent();
}

// Each request left fails once, oldest first, then the session hears of it
// once; replies already taken stay to be written (link.hpp's contract).
void SharedView::fail(const LinkError& error) {
    if (dead_)
        return;
    dead_ = true;
    waiting_ = Waiting::none;
    unsent_ = {};
    LinkError mine = error;
    mine.garbled = error.kind != LinkFailure::unreachable && reply_started_;
    reply_started_ = false;
    if (sink_ == nullptr) {
        pending_.fail_all([](const PendingRequest&) {});
        return;
    }
    ReplySink& sink = *sink_;
    pending_.fail_all([&](const PendingRequest& request) { sink.on_unanswered(request, mine); });
    sink.on_link_failed(mine);
}

// --- SharedLink: the connection ---

SharedLink::SharedLink(EventLoop& loop, BackendPool& pool, BufferPool& buffers, std::chrono::milliseconds wait,
                       SharedLinkEvents events)
    : loop_(loop)
    , pool_(pool)
    , buffers_(buffers)
    , events_(std::move(events))
    , soon_(loop)
    , retry_(loop)
    , wait_(wait) {}

SharedLink::~SharedLink() {
    loop_.cancel_turn_end(*this);
    socket_.close();
}

void SharedLink::want_connection(SharedView& view) {
    waiters_.push_back(view.shared_from_this());
    if (state_ != State::idle)
        return;
    state_ = State::connecting;
    give_up_ = clock::now() + wait_;
    retry_delay_ = kFirstRetry;
    attempt();
}

void SharedLink::attempt() {
    pool_.acquire([this, alive = std::weak_ptr<bool>(alive_)](Socket socket, const std::string& error) {
        if (alive.expired())
            return;
        if (error.empty())
            return connected(std::move(socket));
        retry_or_give_up(error);
    });
}

void SharedLink::retry_or_give_up(const std::string& why) {
    if (clock::now() + retry_delay_ < give_up_) {
        state_ = State::connecting;
        retry_.after(retry_delay_, [this] { attempt(); });
        retry_delay_ = std::min(retry_delay_ * 2, kMaxRetry);
        return;
    }
    // Nobody could be served: each session waiting fails as unreachable.
    state_ = State::idle;
    auto waiting = std::exchange(waiters_, {});
    for (auto& view : waiting)
        view->fail(LinkError{LinkFailure::unreachable, why, false});
}

// First the server's command table, then the sessions.
void SharedLink::connected(Socket socket) {
    socket_ = std::move(socket);
    socket_.set_handler(this);
    state_ = State::reading_table;
    table_.clear();
    const IoResult r = socket_.write(kCommandRequest);
    if (r.error != 0 || r.bytes != kCommandRequest.size()) {
        socket_.close();
        return retry_or_give_up("cannot send COMMAND");
    }
    read_table();
}

void SharedLink::read_table() {
    while (state_ == State::reading_table && socket_.readable()) {
        const std::size_t at = table_.size();
        table_.resize(at + kBufferSize);
        const IoResult r = socket_.read(table_.data() + at, kBufferSize);
        table_.resize(at + r.bytes);
        if (r.failed() || table_.size() > kMaxTable) {
            socket_.close();
            return retry_or_give_up(r.eof ? "connection closed by Redis" : "cannot read the command table");
        }
        if (r.bytes == 0)
            return;
        const ValueResult v = parse_value(table_);
        if (v.status == Status::need_more)
            continue;
        if (v.status == Status::error || v.used != table_.size()) {
            socket_.close();
            return retry_or_give_up("the reply to COMMAND is not RESP");
        }
        return table_read(v.value);
    }
}

// A server that refuses COMMAND (NOAUTH: it wants a password the link does
// not carry, so clients authenticate and pin) leaves the list alone.
void SharedLink::table_read(const Value& reply) {
    std::optional<SharePolicy> policy;
    if (reply.kind == ValueKind::array)
        policy = SharePolicy::from_command_table(reply);
    if (events_.on_policy)
        events_.on_policy(policy ? std::move(*policy) : SharePolicy());
    std::string().swap(table_);
    state_ = State::ready;
    ++counters_.connects;
    auto waiting = std::exchange(waiters_, {});
    for (auto& view : waiting)
        view->link_ready();
    read(); // (whatever came meanwhile)
}

void SharedLink::forget(SharedView& view) noexcept {
    waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                  [&](const std::shared_ptr<SharedView>& w) { return w.get() == &view; }),
                   waiters_.end());
    if (paused_on_.get() == &view) { // its replies are dropped now: reading goes on, from the loop
        paused_on_.reset();
        soon_.after(Clock::duration::zero(), [this] { go_on(); });
    }
}

bool SharedLink::room() const noexcept {
    return in_flight_ < kLinkInFlight && queued_.size() - written_ < kLinkQueued;
}

bool SharedLink::enqueue(SharedView& view, std::string_view bytes) {
    if (state_ != State::ready || !waiters_.empty() || !room()) {
        waiters_.push_back(view.shared_from_this());
        return false;
    }
    append(view, bytes);
    return true;
}

// The bytes go in the write queue, the view's expected replies in the order.
void SharedLink::append(SharedView& view, std::string_view bytes) {
    if (written_ > 0 && written_ >= queued_.size() / 2) {
        queued_.erase(0, written_);
        written_ = 0;
    }
    queued_.append(bytes);
    if (view.unordered_ > 0) {
        if (!order_.empty() && order_.back().view.get() == &view)
            order_.back().replies += view.unordered_;
        else
            order_.push(Due{view.shared_from_this(), view.unordered_});
        in_flight_ += view.unordered_;
        counters_.requests += view.unordered_;
        view.unordered_ = 0;
    }
    if (!flush_due_) {
        flush_due_ = true;
        loop_.at_turn_end(*this);
    }
}

void SharedLink::on_turn_end() {
    flush_due_ = false;
    flush();
}

// One write for every request queued this turn; what the socket does not
// take waits for EPOLLOUT.
void SharedLink::flush() {
    if (state_ != State::ready || written_ == queued_.size())
        return;
    const IoResult r = socket_.write(std::string_view(queued_).substr(written_));
    if (r.error != 0)
        return fail(LinkFailure::lost, error_text(r.error));
    ++counters_.writes;
    written_ += r.bytes;
    if (written_ == queued_.size()) {
        queued_.clear();
        written_ = 0;
    }
    admit_waiters();
}

// Sessions that waited for room send now, in the order they waited.
void SharedLink::admit_waiters() {
    while (state_ == State::ready && !waiters_.empty() && room()) {
        std::shared_ptr<SharedView> view = std::move(waiters_.front());
        waiters_.erase(waiters_.begin());
        view->room();
    }
}

void SharedLink::on_io() {
    if (state_ == State::reading_table)
        return read_table();
    if (state_ != State::ready)
        return;
    if (written_ < queued_.size() && socket_.writable())
        flush();
    read();
}

void SharedLink::resume(SharedView& view) {
    if (paused_on_.get() != &view)
        return;
    paused_on_.reset();
    if (!delivering_)
        go_on();
}

void SharedLink::go_on() {
    deliver(clock::now());
    read();
}

// Reads while Redis has bytes and no view is out of room.
void SharedLink::read() {
    if (reading_)
        return;
    reading_ = true;
    for (int reads = 0; state_ == State::ready && !paused_on_ && socket_.readable(); ++reads) {
        if (reads == kReadsPerTurn) {
            soon_.after(Clock::duration::zero(), [this] { go_on(); }); // let the others in first
            break;
        }
        in_.make_room();
        if (in_.write_space() == 0)
            in_.compact();
        if (in_.write_space() == 0)
            break; // (cannot happen: deliver() takes every whole reply unless paused)
        const IoResult r = socket_.read(in_.write_ptr(), in_.write_space());
        if (r.failed()) {
            reading_ = false;
            return fail(LinkFailure::lost, r.eof ? "connection closed by Redis" : error_text(r.error));
        }
        if (r.bytes == 0)
            break;
        in_.commit(r.bytes);
        ++counters_.reads;
        deliver(clock::now());
    }
    reading_ = false;
}

// Replies to the views at the head of the order, in order. A session hears
// of its replies (on_replies) once per run of them, so a pipelining client
// gets one write for the replies of one read.
void SharedLink::deliver(clock::time_point now) {
    if (delivering_ || state_ != State::ready)
        return;
    delivering_ = true;
    std::shared_ptr<SharedView> told; // whose replies its session has not heard of yet
    const auto tell = [&] {
        if (told && !told->dropping())
            told->sink_->on_replies(now);
        told.reset();
    };
    std::string failure;
    while (paused_on_ == nullptr && state_ == State::ready) {
        if (part_left_ > 0) {
            Due& due = order_.front();
            std::shared_ptr<SharedView> view = due.view;
            if (told && told != view)
                tell();
            // A reply larger than the view's buffer: its session writes what
            // it holds and the view takes more, while that makes progress. No
            // progress: its client does not read; the link waits for it.
            bool paused = false;
            for (bool first = true;; first = false) {
                const std::size_t n = view->take(in_.data().substr(0, part_left_), part_ends_, now);
                in_.consume(n);
                part_left_ -= n;
                if (part_left_ == 0)
                    break;
                if (n == 0 && !first) {
                    paused = true;
                    break;
                }
                told = view;
                tell();
            }
            if (paused) { // it holds the link up
                if (view->advice_ == PinReason::none)
                    view->advice_ = PinReason::slow_reader; // pinned at its next command
                paused_on_ = std::move(view);
                ++counters_.pauses;
                break;
            }
            told = view;
            if (part_ends_) {
                part_ends_ = false;
                --in_flight_;
                if (--order_.front().replies == 0)
                    order_.pop();
            }
            continue;
        }
        if (in_.empty())
            break;
        const ReplyResult r = replies_.feed(in_.data());
        if (r.status == Status::need_more) {
            const std::size_t n = replies_.droppable();
            if (n == 0)
                break;
            if (order_.empty()) {
                failure = "Redis sent a reply nobody asked for";
                break;
            }
            replies_.discard(n);
            part_left_ = n;
            continue;
        }
        if (r.status == Status::error) {
            failure = fmt::format("protocol error from Redis: {}", r.error.reply());
            break;
        }
        if (r.reply.kind != ReplyKind::reply || order_.empty()) {
            failure = "Redis sent a reply nobody asked for";
            break;
        }
        part_left_ = r.reply.size;
        part_ends_ = true;
    }
    tell();
    delivering_ = false;
    if (!failure.empty())
        return fail(LinkFailure::lost, failure);
    admit_waiters();
}

// The connection broke: every request waiting on it fails once, session by
// session in the order they sent, and the next request connects anew.
void SharedLink::fail(LinkFailure kind, const std::string& why) {
    if (state_ != State::ready)
        return;
    socket_.close();
    soon_.cancel();
    state_ = State::idle;
    queued_.clear();
    written_ = 0;
    in_.reset();
    replies_ = ReplyFramer();
    part_left_ = 0;
    part_ends_ = false;
    paused_on_.reset();
    in_flight_ = 0;
    ++counters_.failures;
    if (events_.on_failure)
        events_.on_failure(why);
    std::vector<std::shared_ptr<SharedView>> views;
    for (; !order_.empty(); order_.pop())
        views.push_back(std::move(order_.front().view));
    for (auto& view : std::exchange(waiters_, {}))
        views.push_back(std::move(view));
    const LinkError error{kind, why, false};
    for (auto& view : views)
        view->fail(error); // (once each: a view in the order twice is failed once)
}

} // namespace redvip::proxy
