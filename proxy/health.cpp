#include "proxy/health.hpp"

#include "proxy/resp_reply.hpp"

#include <fmt/format.h>

namespace redvip::proxy {

namespace {

// PING proves the event loop answers; INFO replication carries the facts.
constexpr std::string_view kCheckRequest = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";

// Between checks that fail after Redis closed the checks' idle connection.
constexpr std::chrono::milliseconds kRecheck{50};

// +PONG plus INFO replication (parse_info_replication refuses past 1 MiB).
constexpr std::size_t kMaxCheckReply = 1024 * 1024 + 64;

// The first line of an error reply, for the report ("-LOADING Redis is loading...").
std::string first_line(std::string_view frame) {
    std::string_view line = frame.substr(0, std::min(frame.find('\r'), std::size_t{200}));
    return std::string(line);
}

} // namespace

HealthChecker::HealthChecker(EventLoop& loop, BackendPool& pool, std::chrono::milliseconds interval,
                             std::chrono::milliseconds timeout, HealthCallback report, const std::string& password)
    : pool_(pool)
    , interval_(interval)
    , timeout_(timeout)
    , report_(std::move(report))
    , tick_(loop)
    , deadline_(loop)
    , alive_(std::make_shared<bool>(true)) {
    if (!password.empty())
        auth_request_ = encode_command({"AUTH", password});
}

HealthChecker::~HealthChecker() {
    *alive_ = false;
}

void HealthChecker::start() {
    run_check();
}

void HealthChecker::stop() {
    stopped_ = true;
    running_ = false;
    ++check_;
    tick_.cancel();
    deadline_.cancel();
    socket_.close();
}

void HealthChecker::run_check() {
    if (stopped_)
        return;
    ++check_;
    running_ = true;
    started_ = clock::now();
    reply_.clear();
    deadline_.after(timeout_, [this] { fail(fmt::format("no answer within {} ms", timeout_.count())); });
    if (socket_.is_open())
        return begin(std::move(socket_), false);
    pool_.acquire([this, id = check_, alive = alive_](Socket socket, const std::string& error) {
        if (!*alive)
            return;
        if (!running_ || id != check_) {
            if (error.empty() && !stopped_)
                pool_.give_back(std::move(socket)); // the check timed out meanwhile
            return;
        }
        if (!error.empty())
            return fail(error);
        begin(std::move(socket), true);
    });
}

// `fresh`: from the pool, not kept from the last check (so not authenticated yet).
void HealthChecker::begin(Socket socket, bool fresh) {
    auth_due_ = fresh && !auth_request_.empty();
    socket_ = std::move(socket);
    socket_.set_handler(this);
    request_.assign(auth_due_ ? auth_request_ : std::string_view{});
    request_.append(kCheckRequest);
    unsent_ = request_;
    send();
}

void HealthChecker::on_io() {
    if (!running_)
        return watch();
    if (!unsent_.empty() && socket_.writable())
        send();
    else
        read();
}

// The request goes at once as a rule; the rest, if any, at EPOLLOUT.
void HealthChecker::send() {
    const IoResult r = socket_.write(unsent_);
    if (r.error != 0)
        return fail(fmt::format("sending the check: {}", error_text(r.error)));
    unsent_.remove_prefix(r.bytes);
    if (unsent_.empty())
        read(); // (Redis has not answered yet, as a rule: the next event reads)
}

void HealthChecker::read() {
    while (running_ && unsent_.empty() && socket_.readable()) {
        const IoResult r = socket_.read(chunk_.data(), chunk_.size());
        if (r.failed()) {
            // Redis said why before closing (protected mode's -DENIED, -ERR
            // max number of clients reached): that is the news, not the close.
            if (!reply_.empty() && reply_[0] == '-')
                return fail(fmt::format("Redis refused the check: {}", first_line(reply_)));
            return fail(r.eof ? "connection closed by Redis" : error_text(r.error));
        }
        if (r.bytes == 0)
            return;
        reply_.append(chunk_.data(), r.bytes);
        if (evaluate() == Answer::done)
            return;
        if (reply_.size() > kMaxCheckReply)
            return fail("the check's reply is too long");
    }
}

// Between checks the connection is idle: it has something to read only if
// Redis closed it (killed, restarted, CLIENT KILL). Reported at once, as the
// pool does.
void HealthChecker::watch() {
    if (stopped_ || !socket_.is_open() || !socket_.readable())
        return;
    char byte;
    const IoResult r = socket_.read(&byte, 1);
    if (!r.failed() && r.bytes == 0)
        return; // nothing after all
    socket_.close();
    HealthReport report;
    report.source = HealthReport::Source::pool;
    report.error = "the health check's connection was closed by the server";
    report_(report);
    // Likely a Redis that died: the next check goes now, not an interval
    // later, so a refused connection (what the election acts on at once) is
    // news within milliseconds whether or not the pool keeps spares to see it.
    closed_by_redis_ = true;
    if (!stopped_ && !running_)
        tick_.after(Clock::duration::zero(), [this] { run_check(); });
}

// Both replies framed: PONG, then INFO replication's bulk string.
HealthChecker::Answer HealthChecker::evaluate() {
    auto failed = [this](std::string error) {
        fail(std::move(error));
        return Answer::done;
    };
    if (auth_due_) {
        ReplyFramer auth_framer;
        const ReplyResult auth = auth_framer.feed(reply_);
        if (auth.status == Status::need_more)
            return Answer::need_more;
        if (auth.status == Status::error || std::string_view(reply_).substr(0, auth.reply.size) != "+OK\r\n")
            return failed(fmt::format("AUTH: {}", first_line(reply_)));
        reply_.erase(0, auth.reply.size);
        auth_due_ = false;
    }
    const std::string_view all = reply_;
    ReplyFramer pong_framer;
    ReplyResult pong = pong_framer.feed(reply_);
    if (pong.status == Status::need_more)
        return Answer::need_more;
    if (pong.status == Status::error)
        return failed(fmt::format("PING: {}", first_line(pong.error.reply())));
    const std::string_view rest = all.substr(pong.reply.size);
    ReplyFramer info_framer;
    ReplyResult info = info_framer.feed(rest);
    if (info.status == Status::need_more)
        return Answer::need_more;
    // Errors first: "-LOADING ..." or "-NOAUTH ..." is the news, whichever reply says it.
    if (pong.reply.is_error())
        return failed(fmt::format("PING: {}", first_line(all)));
    if (all.substr(0, pong.reply.size) != "+PONG\r\n")
        return failed(fmt::format("PING: unexpected reply {}", first_line(all)));
    if (info.status == Status::error || info.reply.is_error() || info.reply.type != '$' ||
        info.reply.size != rest.size())
        return failed(fmt::format("INFO replication: unexpected reply {}", first_line(rest)));
    const std::size_t header = rest.find("\r\n") + 2;
    InfoResult parsed = parse_info_replication(rest.substr(header, rest.size() - header - 2));
    if (!parsed.ok)
        return failed(std::move(parsed.error));
    HealthReport report;
    report.ok = true;
    report.replication = std::move(parsed.info);
    finish(std::move(report));
    return Answer::done;
}

void HealthChecker::fail(std::string error) {
    if (!running_)
        return;
    HealthReport report;
    report.error = std::move(error);
    socket_.close(); // a connection that failed a check is not given back
    finish(std::move(report));
}

void HealthChecker::finish(HealthReport report) {
    running_ = false;
    deadline_.cancel();
    const auto now = clock::now();
    report.source = HealthReport::Source::check;
    report.latency = std::chrono::duration_cast<std::chrono::microseconds>(now - started_);
    // Fixed rate: the next check is due an interval after this one started;
    // sooner while checks fail after Redis closed the idle connection (a
    // Redis dying may still accept for a moment: its listener can close
    // after the connections), so a refused connection is news at once.
    if (report.ok)
        closed_by_redis_ = false;
    const auto next = started_ + (closed_by_redis_ ? std::min(interval_, kRecheck) : interval_);
    tick_.at(next < now ? now : next, [this] { run_check(); });
    report_(report);
    watch(); // a close that came with the replies
}

} // namespace redvip::proxy
