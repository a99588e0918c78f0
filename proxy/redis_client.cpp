// The client for redvip's own requests (redis_client.hpp).
#include "proxy/redis_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace redvip::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;

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
    if (storage_.size() - end_ < kMinReadBytes && storage_.size() < max_bytes_)
        storage_.resize(std::min(storage_.size() * 2, max_bytes_));
    return asio::buffer(storage_.data() + end_, storage_.size() - end_);
}

RedisClient::RedisClient(asio::any_io_executor executor, std::size_t max_reply_bytes)
    : socket_(executor), resolver_(executor), deadline_(executor), pause_(executor), in_(max_reply_bytes) {}

RedisClient::~RedisClient() {
    close();
}

void RedisClient::arm(std::chrono::steady_clock::duration timeout) {
    timed_out_ = false;
    deadline_after_ = timeout;
    deadline_.expires_after(timeout);
    deadline_.async_wait([this, alive = std::weak_ptr<int>(alive_),
                          generation = ++generation_](const boost::system::error_code& ec) {
        // Gone, or a later generation: the wait it bounded is over.
        if (ec || alive.expired() || generation != generation_) return;
        timed_out_ = true;
        resolver_.cancel();
        boost::system::error_code ignored;
        socket_.close(ignored);
    });
}

void RedisClient::disarm() {
    ++generation_;
    deadline_.cancel();
}

void RedisClient::close() {
    disarm();
    resolver_.cancel();
    pause_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    in_.clear();
}

bool RedisClient::closed_by_peer() {
    if (!socket_.is_open()) return true;
    char byte = 0;
    const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK); // EOF, stray bytes or an error
}

ClientError RedisClient::failure(const boost::system::error_code& ec) const {
    if (timed_out_) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_after_).count();
        return {ClientFailure::timed_out, "timed out after " + std::to_string(ms) + " ms"};
    }
    if (ec == asio::error::eof) return {ClientFailure::closed, "connection closed by Redis"};
    if (ec == asio::error::connection_refused) return {ClientFailure::refused, ec.message()};
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == asio::error::connection_aborted)
        return {ClientFailure::reset, ec.message()};
    if (ec == asio::error::timed_out) return {ClientFailure::timed_out, ec.message()}; // TCP's own
    if (ec == asio::error::message_size) return {ClientFailure::protocol, "reply larger than the buffer"};
    return {ClientFailure::other, ec.message()};
}

awaitable<ClientError> RedisClient::connect(std::string host, std::uint16_t port,
                                            std::chrono::steady_clock::duration timeout) {
    close();
    boost::system::error_code ec;
    arm(timeout);
    auto endpoints =
        co_await resolver_.async_resolve(host, std::to_string(port), redirect_error(use_awaitable, ec));
    if (!ec) co_await asio::async_connect(socket_, endpoints, redirect_error(use_awaitable, ec));
    disarm();
    const bool v6 = host.find(':') != std::string::npos;
    const std::string who = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    if (ec || timed_out_) {
        ClientError error = failure(ec);
        error.text = "connect to " + who + ": " + error.text;
        close();
        co_return error;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    co_return ClientError{};
}

awaitable<CallResult> RedisClient::call(std::string_view request,
                                        std::chrono::steady_clock::duration timeout) {
    boost::system::error_code ec;
    arm(timeout);
    co_await asio::async_write(socket_, asio::buffer(request), redirect_error(use_awaitable, ec));
    while (!ec) {
        const ValueResult parsed = parse_value(in_.data());
        if (parsed.status == Status::done) {
            disarm();
            CallResult result{own(parsed.value), {}};
            in_.consume(parsed.used);
            co_return result;
        }
        if (parsed.status == Status::error) {
            ClientError error{ClientFailure::protocol,
                              "protocol error: " + std::string(parsed.reason) + " at byte " +
                                  std::to_string(parsed.offset) + " of \"" +
                                  sanitize_sample(in_.data()) + "\""};
            close();
            co_return CallResult{{}, std::move(error)};
        }
        const asio::mutable_buffer space = in_.prepare();
        if (space.size() == 0)
            ec = asio::error::message_size;
        else
            in_.commit(co_await socket_.async_read_some(space, redirect_error(use_awaitable, ec)));
    }
    disarm();
    CallResult result{{}, failure(ec)};
    close();
    co_return result;
}

awaitable<void> RedisClient::sleep(std::chrono::steady_clock::duration duration) {
    boost::system::error_code ec;
    pause_.expires_after(duration);
    co_await pause_.async_wait(redirect_error(use_awaitable, ec));
}

} // namespace redvip::proxy
