// A connected TCP pair on loopback, as clients come to the proxy: the client
// end blocking, the server end non-blocking; both close-on-exec.
#pragma once

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace redvip::proxy::test {

// A socket listening on a free port of 127.0.0.1: {fd, address}.
// `flags`: SOCK_NONBLOCK for one polled between loop turns.
inline std::pair<int, sockaddr_in> loopback_listener(int flags = 0) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    REQUIRE(listener >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), size) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    return {listener, address};
}

// {client, server}
inline std::pair<int, int> tcp_pair() {
    auto [listener, address] = loopback_listener();
    const socklen_t size = sizeof address;
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&address), size) == 0);
    const int server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(server >= 0);
    ::close(listener);
    return {client, server};
}

} // namespace redvip::proxy::test
