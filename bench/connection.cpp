#include "bench/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <fmt/format.h>

namespace redvip::bench {

namespace {

std::string seconds_text(Clock::duration d) {
    return fmt::format("{:g} s", std::chrono::duration<double>(d).count());
}

// Encoded outside the coroutines: g++ 12 miscompiles ("array used as
// initializer") an initializer_list temporary in a coroutine frame.
std::string auth_request(const std::string& password) {
    return encode_command({"AUTH", password});
}
std::string ping_request() {
    return encode_command({"PING"});
}

} // namespace

void ReadBuffer::consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
}

asio::mutable_buffer ReadBuffer::prepare() {
    if (storage_.size() - end_ < kMinReadBytes && begin_ > 0) {
        std::memmove(storage_.data(), storage_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (storage_.size() - end_ < kMinReadBytes && storage_.size() < kMaxBufferBytes)
        storage_.resize(std::min(storage_.size() * 2, kMaxBufferBytes));
    return asio::buffer(storage_.data() + end_, storage_.size() - end_);
}

RedisLink::RedisLink(asio::io_context& io) : socket_(io), deadline_(io), resolver_(io) {}

void RedisLink::arm_deadline(Clock::duration timeout) {
    timed_out_ = false;
    deadline_after_ = timeout;
    const std::uint64_t generation = ++deadline_generation_;
    deadline_.expires_after(timeout);
    // `this` outlives the wait: links are destroyed only after io_context::run() returns.
    deadline_.async_wait([this, generation](const boost::system::error_code& ec) {
        if (ec || generation != deadline_generation_) return;
        timed_out_ = true;
        resolver_.cancel();
        boost::system::error_code ignored;
        socket_.close(ignored);
    });
}

void RedisLink::disarm_deadline() {
    ++deadline_generation_;
    deadline_.cancel();
}

void RedisLink::close() {
    disarm_deadline();
    boost::system::error_code ignored;
    socket_.close(ignored);
    in_.clear();
}

bool RedisLink::closed_by_peer() {
    if (!socket_.is_open()) return true;
    char byte = 0;
    const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK); // EOF, stray bytes or an error
}

LinkError RedisLink::failure(const boost::system::error_code& ec, std::string_view doing) const {
    const std::string who = target_.text();
    if (timed_out_)
        return {ErrorKind::timeout, fmt::format("{}: timed out while {} ({})", who, doing,
                                                seconds_text(deadline_after_))};
    if (ec == asio::error::eof)
        return {ErrorKind::closed, fmt::format("{} closed the connection while {}", who, doing)};
    const ErrorKind kind = ec.category() == boost::system::system_category()
                               ? classify_errno(ec.value())
                               : ErrorKind::other;
    return {kind, fmt::format("{}: {} while {}", who, ec.message(), doing)};
}

asio::awaitable<void> RedisLink::connect(Clock::duration timeout) {
    using asio::redirect_error, asio::use_awaitable;
    boost::system::error_code ec;
    arm_deadline(timeout);
    auto endpoints = co_await resolver_.async_resolve(target_.host, std::to_string(target_.port),
                                                      redirect_error(use_awaitable, ec));
    if (!ec) co_await asio::async_connect(socket_, endpoints, redirect_error(use_awaitable, ec));
    disarm_deadline();
    if (ec || timed_out_) {
        LinkError error = failure(ec, "connecting");
        close();
        throw error;
    }
    socket_.set_option(tcp::no_delay(true), ec);
}

asio::awaitable<void> RedisLink::open(const Endpoint& target, const std::string& password,
                                      Clock::duration timeout, bool ping) {
    close();
    target_ = target;
    co_await connect(timeout);
    const std::string who = target_.text();
    if (!password.empty()) {
        const OwnedValue auth = co_await call(auth_request(password), timeout);
        if (auth.kind == ValueKind::error) {
            close();
            throw LinkError(ErrorKind::noauth,
                            fmt::format("{}: authentication failed: {}", who, auth.text));
        }
    }
    if (!ping) co_return;
    const OwnedValue pong = co_await call(ping_request(), timeout);
    if (pong.kind == ValueKind::simple && pong.text == "PONG") co_return;
    close();
    if (pong.kind != ValueKind::error)
        throw LinkError(ErrorKind::other,
                        fmt::format("{}: PING did not answer PONG: not a Redis server?", who));
    const ErrorKind kind = classify_error_reply(pong.text);
    const char* hint = kind == ErrorKind::noauth ? " (see --password)" : "";
    throw LinkError(kind, fmt::format("{}: PING failed: {}{}", who, pong.text, hint));
}

asio::awaitable<OwnedValue> RedisLink::call(std::string_view request, Clock::duration timeout) {
    using asio::redirect_error, asio::use_awaitable;
    boost::system::error_code ec;
    arm_deadline(timeout);
    co_await asio::async_write(socket_, asio::buffer(request), redirect_error(use_awaitable, ec));
    while (!ec) {
        const ValueResult parsed = parse_value(in_.data());
        if (parsed.status == Status::done) {
            disarm_deadline();
            OwnedValue reply = own(parsed.value);
            in_.consume(parsed.used);
            co_return reply;
        }
        if (parsed.status == Status::error) {
            const std::string sample = sanitize_sample(in_.data());
            close();
            throw LinkError(ErrorKind::other,
                            fmt::format("{}: not a Redis server: {} at byte {} of \"{}\"",
                                        target_.text(), parsed.reason, parsed.offset, sample));
        }
        const asio::mutable_buffer space = in_.prepare();
        if (space.size() == 0)
            ec = asio::error::message_size;
        else
            in_.commit(co_await socket_.async_read_some(space, redirect_error(use_awaitable, ec)));
    }
    LinkError error = failure(ec, "waiting for a reply");
    close();
    throw error;
}

} // namespace redvip::bench
