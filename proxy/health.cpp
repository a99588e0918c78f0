#include "proxy/health.hpp"

#include "proxy/resp.hpp"

#include <fmt/format.h>

#include <boost/asio/write.hpp>

namespace redvip::proxy {

namespace {

// PING proves the event loop answers; INFO replication carries the facts.
constexpr std::string_view kCheckRequest = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";

// +PONG plus INFO replication (parse_info_replication refuses past 1 MiB).
constexpr std::size_t kMaxCheckReply = 1024 * 1024 + 64;

// The first line of an error reply, for the report ("-LOADING Redis is loading...").
std::string first_line(std::string_view frame) {
    std::string_view line = frame.substr(0, std::min(frame.find('\r'), std::size_t{200}));
    return std::string(line);
}

} // namespace

HealthChecker::HealthChecker(asio::io_context& io, BackendPool& pool, std::chrono::milliseconds interval,
                             std::chrono::milliseconds timeout, HealthCallback report)
    : io_(io)
    , pool_(pool)
    , interval_(interval)
    , timeout_(timeout)
    , report_(std::move(report))
    , tick_(io)
    , deadline_(io)
    , alive_(std::make_shared<bool>(true)) {}

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
    socket_.reset(); // closes it; pending handlers see a stale check
}

void HealthChecker::run_check() {
    if (stopped_)
        return;
    ++check_;
    running_ = true;
    started_ = clock::now();
    reply_.clear();
    deadline_.expires_after(timeout_);
    deadline_.async_wait([this, id = check_, alive = alive_](const boost::system::error_code& ec) {
        if (!ec && *alive && current(id))
            fail(fmt::format("no answer within {} ms", timeout_.count()));
    });
    if (socket_) {
        boost::system::error_code ignored;
        socket_->cancel(ignored); // ends the idle watch
        return send();
    }
    pool_.acquire([this, id = check_, alive = alive_](tcp::socket socket, const std::string& error) {
        if (!*alive)
            return;
        if (!current(id)) {
            if (error.empty() && !stopped_)
                pool_.give_back(std::move(socket)); // the check timed out meanwhile
            return;
        }
        if (!error.empty())
            return fail(error);
        socket_.emplace(std::move(socket));
        send();
    });
}

void HealthChecker::send() {
    asio::async_write(*socket_, asio::buffer(kCheckRequest),
                      [this, id = check_, alive = alive_](const boost::system::error_code& ec, std::size_t) {
                          if (!*alive || !current(id))
                              return;
                          if (ec)
                              return fail(fmt::format("sending the check: {}", ec.message()));
                          read();
                      });
}

void HealthChecker::read() {
    socket_->async_read_some(
        asio::buffer(chunk_), [this, id = check_, alive = alive_](const boost::system::error_code& ec, std::size_t n) {
            if (!*alive || !current(id))
                return;
            if (ec)
                return fail(ec == asio::error::eof ? "connection closed by Redis" : ec.message());
            reply_.append(chunk_.data(), n);
            if (evaluate() == Answer::need_more) {
                if (reply_.size() > kMaxCheckReply)
                    return fail("the check's reply is too long");
                read();
            }
        });
}

// Both replies framed: PONG, then INFO replication's bulk string.
HealthChecker::Answer HealthChecker::evaluate() {
    auto failed = [this](std::string error) {
        fail(std::move(error));
        return Answer::done;
    };
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
    HealthReport report;
    report.error = std::move(error);
    socket_.reset(); // a connection that failed a check is not given back
    finish(std::move(report));
}

void HealthChecker::finish(HealthReport report) {
    running_ = false;
    deadline_.cancel();
    const auto now = clock::now();
    report.source = HealthReport::Source::check;
    report.latency = std::chrono::duration_cast<std::chrono::microseconds>(now - started_);
    if (socket_)
        watch();
    // Fixed rate: the next check is due an interval after this one started.
    auto next = started_ + interval_;
    tick_.expires_at(next < now ? now : next);
    tick_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
        if (!ec && *alive && !stopped_)
            run_check();
    });
    report_(report);
}

// Between checks the connection is idle: readable only if Redis closed it
// (killed, restarted, CLIENT KILL). Reported at once, as the pool does.
void HealthChecker::watch() {
    socket_->async_wait(tcp::socket::wait_read, [this, id = check_, alive = alive_](const boost::system::error_code& ec) {
        if (!*alive || stopped_ || running_ || id != check_ || ec == asio::error::operation_aborted || !socket_)
            return;
        socket_.reset();
        HealthReport report;
        report.source = HealthReport::Source::pool;
        report.error = "the health check's connection was closed by the server";
        report_(report);
    });
}

} // namespace redvip::proxy
