#include "bench/connection.hpp"

#include <fmt/format.h>

namespace redvip::bench {

namespace {

// Encoded outside the coroutines: g++ 12 miscompiles ("array used as
// initializer") an initializer_list temporary in a coroutine frame.
std::string auth_request(const std::string& password) {
    return encode_command({"AUTH", password});
}
std::string ping_request() {
    return encode_command({"PING"});
}

} // namespace

LinkError RedisLink::error(const proxy::ClientError& e, std::string_view doing) const {
    using proxy::ClientFailure;
    const std::string who = target_.text();
    switch (e.failure) {
    case ClientFailure::refused: return {ErrorKind::refused, fmt::format("{}: {} while {}", who, e.text, doing)};
    case ClientFailure::reset: return {ErrorKind::reset, fmt::format("{}: {} while {}", who, e.text, doing)};
    case ClientFailure::closed: return {ErrorKind::closed, fmt::format("{} closed the connection while {}", who, doing)};
    case ClientFailure::timed_out:
        return {ErrorKind::timeout, fmt::format("{}: {} while {}", who, e.text, doing)};
    case ClientFailure::protocol: return {ErrorKind::other, fmt::format("{}: not a Redis server: {}", who, e.text)};
    case ClientFailure::none:
    case ClientFailure::other: break;
    }
    return {ErrorKind::other, fmt::format("{}: {} while {}", who, e.text, doing)};
}

LinkError RedisLink::failure(const boost::system::error_code& ec, std::string_view doing) const {
    return error(client_.failure(ec), doing);
}

asio::awaitable<void> RedisLink::open(const Endpoint& target, const std::string& password,
                                      Clock::duration timeout, bool ping) {
    target_ = target;
    if (const auto e = co_await client_.connect(target.host, target.port, timeout)) {
        LinkError failed = error(e, "connecting");
        throw failed;
    }
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
    auto result = co_await client_.call(request, timeout);
    if (result.error) {
        LinkError failed = error(result.error, "waiting for a reply");
        throw failed;
    }
    co_return std::move(result.value);
}

} // namespace redvip::bench
