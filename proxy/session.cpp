#include "proxy/session.hpp"

#include "proxy/command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

namespace redvip::proxy {

namespace {

using clock = std::chrono::steady_clock;

// Redis 7's own texts, so that clients and their tests see no difference.
constexpr std::string_view kNoAuth = "-NOAUTH Authentication required.\r\n";
constexpr std::string_view kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
constexpr std::string_view kNoPasswordSet =
    "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
    "configuration is correct?\r\n";
constexpr std::string_view kHelloNoAuth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH "
    "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at the "
    "same time\r\n";

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

// Password comparison that takes the same time wherever the first difference is.
bool same_secret(std::string_view a, std::string_view b) {
    if (b.empty())
        return a.empty();
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i % b.size()]);
    return diff == 0;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
           });
}

// XREAD and XREADGROUP block only with a BLOCK option: look for the argument.
bool has_block_option(std::string_view frame) {
    for (std::size_t at = frame.find("\r\n"); at != std::string_view::npos; at = frame.find("\r\n", at + 2)) {
        if (iequals(frame.substr(at + 2, 5), "BLOCK") && frame.substr(at + 7, 2) == "\r\n")
            return true;
    }
    return false;
}

std::string encode(const std::vector<std::string>& args) {
    std::string out = fmt::format("*{}\r\n", args.size());
    for (const auto& a : args)
        out += fmt::format("${}\r\n{}\r\n", a.size(), a);
    return out;
}

} // namespace

Session::Session(Worker& worker, tcp::socket client)
    : w_(worker)
    , client_(std::move(client))
    , backend_(worker.io)
    , requests_(worker.shared.config.proxy.password.empty())
    , last_activity_(clock::now())
    , backend_progress_(last_activity_)
    , authenticated_(worker.shared.config.proxy.password.empty()) {
    w_.sessions.insert(this);
}

Session::~Session() {
    w_.sessions.erase(this);
    w_.shared.clients.fetch_sub(1, std::memory_order_relaxed);
    w_.buffers.give_back(in_);
    w_.buffers.give_back(out_);
}

void Session::start() {
    error_code ignored;
    client_.set_option(tcp::no_delay(true), ignored);
    client_.non_blocking(true, ignored);
    read_client();
}

void Session::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    error_code ignored;
    client_.close(ignored);
    // A connection with no state, no request half-sent and no reply due is as
    // good as new. Its read (into our buffer) is cancelled before the pool
    // takes it; the aborted handler finds the session stopped.
    bool reusable = link_ == Link::bound && !dirty_ && !passthrough_ && !streaming_ && !reply_started_ &&
                    pending_.empty() && in_flight_ == 0 && out_.size() == 0;
    if (reusable) {
        backend_.cancel(ignored);
        w_.backends.give_back(std::move(backend_));
    } else {
        backend_.close(ignored);
    }
}

// A socket reported readable: one non-blocking read into `buffer`, taken from
// the pool only now, so a connection that waits holds no buffer.
std::size_t Session::read_ready(tcp::socket& socket, Buffer& buffer, error_code& ec) {
    if (!buffer.allocated())
        buffer = w_.buffers.take();
    std::size_t n = socket.read_some(asio::buffer(buffer.write_ptr(), buffer.write_space()), ec);
    if (!ec)
        buffer.commit(n);
    return n;
}

// --- client -> backend ---

void Session::read_client() {
    if (reading_client_ || stopped_ || waiting_ || pending_.full())
        return;
    reading_client_ = true;
    if (!in_.allocated()) {
        // Idle: wait for readability without a buffer.
        client_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this()](const error_code& ec) { self->on_client_readable(ec); });
        return;
    }
    if (in_flight_ == 0)
        in_.make_room();
    // A full buffer: wait for the write to the backend to drain it (its
    // completion reads again). Only bytes the framer holds (a request being
    // held whole, or a header line) fill it alone: grow it, up to kMaxHeldFrame,
    // where process_requests() stops holding.
    if (in_.write_space() == 0) {
        if (in_flight_ > 0 || ready_ > 0 || in_.capacity() >= kMaxHeldFrame) {
            reading_client_ = false;
            return;
        }
        in_.reserve(std::min(in_.capacity() * 2, kMaxHeldFrame));
    }
    // Busy: read straight into the buffer. Asio tries the read at once only
    // after an event, so this costs no syscall until data comes (async_wait
    // would re-arm epoll each time).
    client_.async_read_some(asio::buffer(in_.write_ptr(), in_.write_space()),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) {
                                self->on_client_read(ec, n);
                            });
}

// The client closed, reset, or broke a write: nothing to tell it. EOF and
// resets are what clients do; anything else is worth a line at debug.
void Session::client_gone(const error_code& ec) {
    if (ec != asio::error::eof && ec != asio::error::connection_reset && ec != asio::error::broken_pipe)
        SPDLOG_LOGGER_DEBUG(w_.shared.log, "client connection: {}", ec.message());
    stop();
}

void Session::on_client_readable(const error_code& ec) {
    reading_client_ = false;
    if (stopped_)
        return;
    if (ec)
        return client_gone(ec);
    error_code rec;
    std::size_t n = read_ready(client_, in_, rec);
    if (rec == asio::error::would_block)
        return read_client();
    if (rec)
        return client_gone(rec); // EOF or reset: Redis too drops what it has not answered
    on_client_data(n);
}

void Session::on_client_read(const error_code& ec, std::size_t n) {
    reading_client_ = false;
    if (stopped_)
        return;
    if (ec == asio::error::operation_aborted)
        return release_buffers(); // the sweep found the session idle
    if (ec)
        return client_gone(ec);
    if (close_after_local_)
        return; // its input is done with (and in_ may have been cut under the read)
    in_.commit(n);
    on_client_data(n);
}

void Session::on_client_data(std::size_t n) {
    w_.counters.bytes_in += n;
    last_activity_ = clock::now();
    process_requests();
}

void Session::process_requests() {
    auto now = clock::now();
    while (!stopped_ && !waiting_ && local_writing_.empty() && local_.empty() && ready_ < in_.size()) {
        if (passthrough_) {
            ready_ = in_.size(); // no framing: bytes go as they come
            break;
        }
        const bool mid_frame = streaming_ || dropping_;
        if (!mid_frame && (pending_.full() || w_.state == ServingState::holding))
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
    forward();
    read_client();
}

void Session::protocol_error(const ProtocolError& error) {
    ++w_.counters.protocol_errors;
    SPDLOG_LOGGER_DEBUG(w_.shared.log, "client protocol error: {}", error.reply());
    // Redis may hold the head of the bad frame (streamed): it never completes,
    // is owed no reply, and the connection goes with the session.
    if (streaming_)
        dirty_ = true;
    streaming_ = dropping_ = false;
    drop_reply_.clear();
    in_.truncate(ready_);
    emit_local(error.reply(), true);
}

// A request ended. Returns false when processing must pause.
bool Session::end_of_frame(const Request& request, clock::time_point now) {
    if (streaming_) {
        // Its head went on long ago; the backend timeout runs from its last byte.
        streaming_ = false;
        ready_ += request.size;
        pending_.push(PendingRequest{now, frame_blocking_, frame_class_});
        return true;
    }
    if (dropping_) { // its head was at the front: nothing was due before it
        dropping_ = false;
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
    CommandTraits traits = classify(request.name.view(), request.subcommand.view());
    if (answered_locally(traits)) {
        if (replies_outstanding()) {
            waiting_ = true; // resumed by resume_if_quiet() once earlier replies are out
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
    ++w_.counters.commands;
    frame_blocking_ = traits.has(Trait::blocking) ||
                      (traits.has(Trait::blocking_with_option) && has_block_option(frame));
    begin_forward(traits);
    pending_.push(PendingRequest{now, frame_blocking_, command_class(request.name.view(), frame_blocking_)});
    ready_ += request.size;
    return true;
}

bool Session::answered_locally(CommandTraits traits) const noexcept {
    bool refused = traits.has(Trait::role_change) && w_.shared.config.vrrp.has_value();
    return traits.has(Trait::intercepted) || refused || !authenticated_ || w_.state == ServingState::fenced;
}

void Session::begin_forward(CommandTraits traits) {
    if (traits.has(Trait::connection_state))
        dirty_ = true;
    if (traits.has(Trait::unpaired_replies))
        passthrough_ = true; // from here on bytes flow both ways unframed
}

// A request not yet complete, whose head (command and subcommand) the framer
// may know: decide whether its bytes may go on as they arrive. Returns true
// once they may (streamed to Redis, or dropped and answered by the proxy).
bool Session::start_partial() {
    const Request* head = requests_.head();
    if (head == nullptr)
        return false; // classified later; the framer refuses a head past 192 KiB
    const bool full = in_.size() - ready_ >= kMaxHeldFrame;
    CommandTraits traits = classify(head->name.view(), head->subcommand.view());
    if (answered_locally(traits)) {
        if (!full)
            return false; // held whole
        if (replies_outstanding()) {
            waiting_ = true;
            return false;
        }
        ++w_.counters.commands;
        dropping_ = true;
        if (head->name.view() == "AUTH" && traits.has(Trait::intercepted)) {
            ++w_.counters.auth_failures; // no password of ours is that long
            drop_reply_ = kWrongPass;
        } else if (w_.state == ServingState::fenced) {
            ++w_.counters.fenced_replies;
            drop_reply_ = kFencedReply;
        } else {
            drop_reply_ = kTooLarge;
        }
        return true;
    }
    frame_blocking_ = traits.has(Trait::blocking);
    if (traits.has(Trait::blocking_with_option)) {
        if (!full)
            return false;
        // BLOCK comes before STREAMS in XREAD's syntax, so it is in what is held.
        frame_blocking_ = has_block_option(in_.data().substr(ready_));
    }
    ++w_.counters.commands;
    begin_forward(traits);
    frame_class_ = command_class(head->name.view(), frame_blocking_);
    streaming_ = true;
    return true;
}

// What the framer is done with of the current request goes to Redis (or is
// dropped); only a header line or so stays behind.
void Session::pass_on_partial() {
    const std::size_t n = requests_.droppable();
    requests_.discard(n);
    if (streaming_)
        ready_ += n;
    else
        in_.consume(n); // dropping: the frame is at the front (ready_ is 0)
}

bool Session::replies_outstanding() const noexcept {
    return ready_ > 0 || in_flight_ > 0 || !pending_.empty() || out_.size() > 0 || !local_.empty() ||
           !local_writing_.empty();
}

// A request the proxy answers itself waited for every earlier reply: go on once
// they are out (or, for requests Redis answers with nothing, forwarded).
void Session::resume_if_quiet() {
    if (waiting_ && !close_after_local_ && !replies_outstanding())
        waiting_ = false;
}

// Commands the proxy answers itself. Every earlier reply has been written.
bool Session::run_local(const Request& request, std::string_view frame) {
    std::string_view name = request.name.view();
    bool fenced = w_.state == ServingState::fenced;
    if (name == "QUIT") { // allowed before AUTH, as in Redis
        in_.consume(request.size);
        emit_local("+OK\r\n", true);
        return false;
    }
    if (name == "AUTH") {
        auto args = request_args(frame);
        in_.consume(request.size);
        return run_auth(args);
    }
    if (fenced) {
        ++w_.counters.fenced_replies;
        in_.consume(request.size);
        emit_local(kFencedReply);
        return false;
    }
    if (name == "HELLO")
        return run_hello(request_args(frame), request.size);
    in_.consume(request.size);
    if (name == "RESET") {
        // The backend connection's state goes with it; the next command binds
        // a clean one. The client is logged out, as Redis does.
        if (link_ == Link::bound) {
            error_code ignored;
            backend_.close(ignored);
            link_ = Link::none;
        }
        dirty_ = false;
        authenticated_ = w_.shared.config.proxy.password.empty();
        requests_.set_authenticated(authenticated_);
        emit_local("+RESET\r\n");
        return false;
    }
    emit_local(kNoAuth); // any other command before AUTH
    return false;
}

bool Session::run_auth(const std::vector<std::string>& args) {
    const std::string& password = w_.shared.config.proxy.password;
    if (args.size() < 2 || args.size() > 3) {
        emit_local("-ERR wrong number of arguments for 'auth' command\r\n");
        return false;
    }
    if (password.empty() && args.size() == 2) {
        emit_local(kNoPasswordSet);
        return false;
    }
    bool user_ok = args.size() == 2 || args[1] == "default";
    if (!user_ok || (!password.empty() && !same_secret(args.back(), password))) {
        ++w_.counters.auth_failures;
        emit_local(kWrongPass);
        return false;
    }
    authenticated_ = true;
    requests_.set_authenticated(true);
    emit_local("+OK\r\n");
    return false;
}

// HELLO [protover [AUTH user pass] [SETNAME name]]: the proxy checks AUTH and
// forwards the rest, so the backend switches protocol and takes the name.
bool Session::run_hello(std::vector<std::string> args, std::size_t frame_size) {
    std::size_t auth_at = 0;
    for (std::size_t i = 2; i + 2 < args.size() && auth_at == 0; ++i)
        if (iequals(args[i], "AUTH"))
            auth_at = i;
    if (auth_at == 0 && !authenticated_) {
        in_.consume(frame_size);
        emit_local(kHelloNoAuth);
        return false;
    }
    if (auth_at != 0) {
        const std::string& password = w_.shared.config.proxy.password;
        bool ok = args[auth_at + 1] == "default" && (password.empty() || same_secret(args[auth_at + 2], password));
        if (!ok) {
            ++w_.counters.auth_failures;
            in_.consume(frame_size);
            emit_local(kWrongPass);
            return false;
        }
        authenticated_ = true;
        requests_.set_authenticated(true);
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(auth_at),
                   args.begin() + static_cast<std::ptrdiff_t>(auth_at + 3));
        std::string rewritten = encode(args);
        in_.replace_front(frame_size, rewritten); // shorter than what it replaces
        frame_size = rewritten.size();
    }
    // Forwarded like any command from here (ready_ is 0: nothing was before it).
    pending_.push(PendingRequest{clock::now(), false, CommandClass::other});
    ready_ = frame_size;
    dirty_ = true;
    return true;
}

void Session::forward() {
    if (ready_ == in_flight_ || in_flight_ > 0 || stopped_)
        return;
    if (link_ == Link::none)
        return bind_backend();
    if (link_ == Link::connecting)
        return;
    in_flight_ = ready_;
    asio::async_write(backend_, asio::buffer(in_.data().data(), in_flight_),
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->backend_lost(ec.message());
                          self->in_.consume(self->in_flight_);
                          self->ready_ -= self->in_flight_;
                          self->in_flight_ = 0;
                          self->resume_if_quiet();
                          self->process_requests();
                      });
}

void Session::bind_backend() {
    link_ = Link::connecting;
    w_.backends.acquire([self = shared_from_this()](tcp::socket socket, const std::string& error) {
        if (self->stopped_) {
            error_code ignored;
            socket.close(ignored);
            return;
        }
        if (!error.empty()) {
            self->link_ = Link::none;
            return self->fail_unsent(error);
        }
        self->backend_ = std::move(socket);
        self->link_ = Link::bound;
        self->replies_ = ReplyFramer();
        self->reply_started_ = false;
        self->read_backend();
        self->forward();
    });
}

// The backend could not be reached: every request waiting for it gets an
// error, in order, and the session stays, unbound, for the next command.
void Session::fail_unsent(const std::string& error) {
    ++w_.counters.backend_errors;
    auto text = fmt::format("-ERR redvip: cannot reach Redis at {}: {}\r\n",
                            w_.shared.config.redis.address.to_string(), error);
    std::string replies;
    for (; !pending_.empty(); pending_.pop())
        replies += text;
    in_.consume(ready_);
    ready_ = 0;
    if (passthrough_) {
        // Bytes went unframed: frame afresh from what comes next.
        requests_ = RequestFramer(authenticated_);
        streaming_ = false;
    } else if (streaming_) {
        // The request whose head was on its way is owed the same error: drop
        // the rest of it as it arrives, then answer.
        streaming_ = false;
        dropping_ = true;
        drop_reply_ = text;
    }
    passthrough_ = false;
    dirty_ = false;
    emit_local(replies);
}

// --- backend -> client ---

void Session::read_backend() {
    if (reading_backend_ || stopped_ || link_ != Link::bound)
        return;
    if (!out_.allocated()) {
        reading_backend_ = true;
        backend_.async_wait(tcp::socket::wait_read,
                            [self = shared_from_this()](const error_code& ec) { self->on_backend_readable(ec); });
        return;
    }
    if (out_flight_ == 0 && replied_ == 0)
        out_.make_room();
    // Replies stream, so the framer holds at most a length line: a full buffer
    // is one being written to the client (whose completion reads again).
    if (out_.write_space() == 0) {
        if (out_flight_ > 0 || replied_ > 0)
            return;
        out_.compact();
        if (out_.write_space() == 0)
            return backend_lost("the reply framer stalled"); // cannot happen: see above
    }
    reading_backend_ = true;
    backend_.async_read_some(asio::buffer(out_.write_ptr(), out_.write_space()),
                             [self = shared_from_this()](const error_code& ec, std::size_t n) {
                                 self->on_backend_read(ec, n);
                             });
}

void Session::on_backend_read(const error_code& ec, std::size_t n) {
    reading_backend_ = false;
    if (stopped_ || link_ != Link::bound)
        return;
    if (ec == asio::error::operation_aborted)
        return release_buffers(); // the sweep found the session idle
    if (ec)
        return backend_lost(ec == asio::error::eof ? "connection closed by Redis" : ec.message());
    out_.commit(n);
    on_backend_data();
}

void Session::on_backend_readable(const error_code& ec) {
    reading_backend_ = false;
    if (stopped_ || ec == asio::error::operation_aborted)
        return;
    if (ec)
        return backend_lost(ec.message());
    error_code rec;
    read_ready(backend_, out_, rec);
    if (rec == asio::error::would_block)
        return read_backend();
    if (rec)
        return backend_lost(rec == asio::error::eof ? "connection closed by Redis" : rec.message());
    on_backend_data();
}

void Session::on_backend_data() {
    backend_progress_ = clock::now();
    if (passthrough_)
        replied_ = out_.size();
    else
        frame_replies(backend_progress_);
    if (stopped_ || link_ != Link::bound)
        return;
    write_client();
    read_backend();
}

// Whole replies pop their requests; the part of an unfinished one the framer
// is done with goes to the client at once.
void Session::frame_replies(clock::time_point now) {
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
            return backend_lost(fmt::format("protocol error from Redis: {}", r.error.reply()));
        replied_ += r.reply.size;
        reply_started_ = false;
        if (r.reply.kind == ReplyKind::reply) {
            if (pending_.empty())
                return backend_lost("Redis sent a reply nobody asked for");
            const PendingRequest& answered = pending_.front();
            w_.counters.latency[static_cast<std::size_t>(answered.cls)].record(
                std::chrono::duration_cast<std::chrono::microseconds>(now - answered.sent));
            pending_.pop();
        }
    }
}

void Session::write_client() {
    if (out_flight_ > 0 || replied_ == 0 || stopped_ || !local_writing_.empty())
        return;
    out_flight_ = replied_;
    asio::async_write(client_, asio::buffer(out_.data().data(), out_flight_),
                      [self = shared_from_this()](const error_code& ec, std::size_t n) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->client_gone(ec);
                          self->w_.counters.bytes_out += n;
                          self->backend_progress_ = clock::now();
                          self->out_.consume(self->out_flight_);
                          self->replied_ -= self->out_flight_;
                          self->out_flight_ = 0;
                          self->after_client_write();
                      });
}

void Session::after_client_write() {
    last_activity_ = clock::now();
    write_client();
    read_backend();
    flush_local();
    resume_if_quiet();
    process_requests();
}

// The bound connection broke: replies already framed still go out, then every
// request left unanswered gets one error, then the client is closed (its
// connection state is gone with the backend's).
void Session::backend_lost(const std::string& why) {
    if (stopped_)
        return;
    ++w_.counters.backend_errors;
    w_.shared.log->warn("session lost its Redis connection: {}", why);
    error_code ignored;
    backend_.close(ignored);
    link_ = Link::none;
    in_.consume(in_.size()); // (a read may be in flight into it)
    ready_ = in_flight_ = 0;
    streaming_ = dropping_ = false;
    out_.truncate(replied_);
    // Unframed bytes, or a reply cut in the middle: the client could not tell
    // an error reply from the rest of it, so it is only closed.
    if (passthrough_ || reply_started_) {
        for (; !pending_.empty(); pending_.pop()) {
        }
        emit_local("", true);
        return;
    }
    std::string replies;
    auto text = fmt::format("-ERR redvip: connection to Redis lost: {}\r\n", why);
    for (; !pending_.empty(); pending_.pop())
        replies += text;
    emit_local(replies, true);
}

// --- the proxy's own replies ---

void Session::emit_local(std::string_view bytes, bool close_after) {
    local_.append(bytes);
    if (close_after) {
        close_after_local_ = true;
        waiting_ = true; // read and forward nothing more
    }
    flush_local();
}

// Written once every earlier reply is: nothing pending, nothing framed unsent.
void Session::flush_local() {
    if (!local_writing_.empty() || out_flight_ > 0 || replied_ > 0 || !pending_.empty() || stopped_)
        return;
    if (local_.empty()) {
        if (close_after_local_)
            stop();
        return;
    }
    local_writing_.swap(local_);
    asio::async_write(client_, asio::buffer(local_writing_),
                      [self = shared_from_this()](const error_code& ec, std::size_t n) {
                          if (self->stopped_)
                              return;
                          if (ec)
                              return self->client_gone(ec);
                          self->w_.counters.bytes_out += n;
                          self->local_writing_.clear();
                          if (self->close_after_local_ && self->local_.empty())
                              return self->stop();
                          self->after_client_write();
                      });
}

// A busy session keeps its buffers (reads go straight into them); one idle
// for kBufferIdle gives them back to the thread's pools, so an idle client
// costs no buffer. A read in flight into a buffer is cancelled first: its
// handler comes back here once the buffer is free.
void Session::release_buffers() {
    const bool quiet = (pending_.empty() || passthrough_) && in_.empty() && in_flight_ == 0 && out_.empty() && out_flight_ == 0 &&
                       local_.empty() && local_writing_.empty() && !streaming_ && !dropping_;
    if (!quiet || stopped_) {
        read_client();
        read_backend();
        return;
    }
    error_code ignored;
    if (reading_client_ && in_.allocated())
        client_.cancel(ignored); // nothing else is in flight on it
    else
        w_.buffers.give_back(in_);
    if (reading_backend_ && out_.allocated())
        backend_.cancel(ignored);
    else
        w_.buffers.give_back(out_);
    if (local_.capacity() > 32)
        std::string().swap(local_);
    read_client(); // without a buffer now, unless its cancel is still due
    read_backend();
}

void Session::on_state_change() {
    if (stopped_)
        return;
    process_requests();
}

void Session::check_timeouts(clock::time_point now) {
    if (stopped_)
        return;
    if (now - std::max(last_activity_, backend_progress_) > kBufferIdle &&
        (in_.allocated() || out_.allocated()))
        release_buffers();
    const auto& cfg = w_.shared.config.proxy;
    // From the request's last byte, or Redis's last sign of life; not while the
    // proxy itself waits for the client to take a reply (a slow reader makes
    // Redis wait, not the other way round).
    const bool client_blocked = out_flight_ > 0 || !local_writing_.empty();
    if (!passthrough_ && !client_blocked && !pending_.empty() && !pending_.front().blocking &&
        now - std::max(pending_.front().sent, backend_progress_) > cfg.backend_timeout) {
        ++w_.counters.backend_timeouts;
        w_.shared.log->warn("Redis did not answer within {} ms; closing the session", cfg.backend_timeout.count());
        return stop();
    }
    // Like Redis's timeout: not for clients waiting on a reply or subscribed.
    if (cfg.idle_timeout.count() > 0 && pending_.empty() && !passthrough_ &&
        now - last_activity_ > cfg.idle_timeout) {
        ++w_.counters.idle_timeouts;
        stop();
    }
}

} // namespace redvip::proxy
