// The last line to a client the proxy hangs up on (a refusal at connect, a
// protocol error, QUIT, READONLY when retired) must reach it. close() on a
// socket with unread bytes sends RST instead of FIN, and a client that wrote
// its command before reading (redis-cli, redis-py) then gets "connection reset"
// in place of the line: the kernel drops what it had not read yet.
//
// So such a socket is not closed but handed here: FIN goes after the line
// (shutdown(SHUT_WR)) and whatever the client still sends is read and dropped
// until it closes too; bounded in time (`wait`) and bytes (`budget`), past
// which it is closed anyway, and in number (`most`: past it a socket is
// closed at once, as before).
#pragma once

#include "proxy/event_loop.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_map>

namespace redvip::proxy {

struct LingerLimits {
    Clock::duration wait = std::chrono::seconds(2); // a client that read the line closes at once
    std::size_t budget = 1 << 20;                   // bytes dropped per socket: then closed
    std::size_t most = 1024;                        // sockets lingering on one thread
};

class Lingerer {
public:
    explicit Lingerer(EventLoop& loop, LingerLimits limits = {}) : loop_(loop), limits_(limits) {}
    Lingerer(const Lingerer&) = delete;
    Lingerer& operator=(const Lingerer&) = delete;

    // `socket` has had its last byte written: close it once the client has.
    void adopt(Socket socket);
    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry;
    void finish(Entry& entry);

    EventLoop& loop_;
    LingerLimits limits_;
    std::unordered_map<Entry*, std::shared_ptr<Entry>> entries_;
};

} // namespace redvip::proxy
