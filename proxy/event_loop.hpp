// The event loop of one proxy thread: edge-triggered epoll, timers and calls
// posted from other threads. (The rest of redvip keeps Asio's io_context.)
//
// Why not Asio's reactor on the request path: it learns that a socket is
// drained only from a read that fails (EAGAIN), so every request cost two
// extra recv calls; its wait-for-readability path re-arms epoll (epoll_ctl)
// at every wait; and it registers no EPOLLRDHUP. Here each socket is
// registered once, for reading and writing, with EPOLLRDHUP: a read that
// returns less than asked for means drained (a FIN that comes with the data is
// known from EPOLLRDHUP, so it is never missed), and a write that takes less
// than given waits for EPOLLOUT. The socket keeps what the kernel last said
// (readable, writable), so owners just try when they have room or bytes.
//
// Lifetimes: a handler may end anything, itself included, while the loop is
// dispatching; release_later() keeps an object until the turn ends, and an
// event for a socket closed meanwhile is dropped (its slot's generation
// changed).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redvip::proxy {

using Clock = std::chrono::steady_clock;

// Reads from one socket in one go before the loop's other sockets get their
// turn (with 16 KiB buffers, 1 MiB); the owner goes on after them.
inline constexpr int kReadsPerTurn = 64;

// Pure: deadlines in, due callbacks out. The loop passes the time.
class TimerQueue {
public:
    struct Handle {
        Clock::time_point when{};
        std::uint64_t id = 0; // 0: none
        auto operator<=>(const Handle&) const = default;
    };

    Handle add(Clock::time_point when, std::function<void()> fn);
    // False when it already ran or was cancelled.
    bool cancel(Handle handle) noexcept;
    std::optional<Clock::time_point> next() const noexcept;
    // Runs the callbacks due at `now` that were added before this call,
    // earliest first (ties in the order added); they may add and cancel.
    std::size_t run_due(Clock::time_point now);
    std::size_t size() const noexcept { return queue_.size(); }

private:
    std::map<Handle, std::function<void()>> queue_;
    std::uint64_t next_id_ = 1;
};

// Whoever owns a socket gets its readiness changes.
class IoHandler {
public:
    // The kernel reported readiness: read or write what the socket now allows.
    virtual void on_io() = 0;

protected:
    ~IoHandler() = default;
};

// What a read or a write did: `bytes` moved, or the peer closed (`eof`), or
// an errno. None of them: it would block (the socket waits for the kernel).
struct IoResult {
    std::size_t bytes = 0;
    int error = 0;
    bool eof = false;
    bool failed() const noexcept { return error != 0 || eof; }
};

// The text of an errno value ("Connection refused").
std::string error_text(int error);

class EventLoop;

// A non-blocking stream socket registered with one loop; closed when
// destroyed. Moving it keeps its registration and what the kernel said.
class Socket {
public:
    Socket() = default;
    // Takes `fd` (non-blocking, close-on-exec). `connected`: it may be written
    // at once; a connecting socket waits for its first EPOLLOUT.
    Socket(EventLoop& loop, int fd, bool connected);
    Socket(Socket&& other) noexcept;
    Socket& operator=(Socket&& other) noexcept;
    ~Socket() { close(); }

    bool is_open() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    EventLoop* loop() const noexcept { return loop_; }
    // on_io() goes to `handler` from now on (null: nobody).
    void set_handler(IoHandler* handler) noexcept;

    bool readable() const noexcept;
    bool writable() const noexcept;

    IoResult read(char* into, std::size_t size) noexcept;
    IoResult write(std::string_view bytes) noexcept;
    // Bytes waiting to be read (FIONREAD).
    std::size_t available() const noexcept;
    // The outcome of a connect (SO_ERROR): 0 once connected.
    int connect_error() const noexcept;
    void set_no_delay() noexcept;
    // SO_KEEPALIVE, first probe after `idle`, then every idle / 3, 3 unanswered
    // close it (Redis's anetKeepAlive). 0: left off.
    void set_keepalive(std::chrono::seconds idle) noexcept;
    // FIN after what was written; reads go on. False when the socket would not.
    bool shutdown_write() noexcept;
    void close() noexcept;

private:
    EventLoop* loop_ = nullptr;
    int fd_ = -1;
    std::uint32_t slot_ = 0;
};

// Work that waits for the end of the loop's turn: a shared link writes what
// every session queued during the turn in one write (shared_link.hpp).
class TurnEnd {
public:
    virtual void on_turn_end() = 0;

protected:
    ~TurnEnd() = default;
};

class EventLoop final : private IoHandler {
public:
    EventLoop(); // throws std::system_error
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Turns until stop().
    void run();
    // One turn: waits for events at most `max_wait` (less when a timer is due).
    void run_once(std::chrono::milliseconds max_wait);
    // From any thread: run() returns after the current turn.
    void stop() noexcept;
    bool stopped() const noexcept { return stopped_.load(std::memory_order_relaxed); }

    // From any thread: `fn` runs on the loop's thread, in order, and before
    // any socket event the loop learns of after the post (a state change
    // posted before a client's bytes arrive applies to them).
    void post(std::function<void()> fn);
    // Keeps `object` until the current turn has dispatched every event.
    void release_later(std::shared_ptr<void> object);
    // Frees at once what release_later() holds (teardown, outside a turn).
    void release_now() noexcept;
    TimerQueue& timers() noexcept { return timers_; }
    // `work` runs once this turn's events and due timers are dispatched; the
    // caller asks once per turn (it keeps a flag). cancel_turn_end() before
    // `work` goes.
    void at_turn_end(TurnEnd& work) { turn_end_.push_back(&work); }
    void cancel_turn_end(TurnEnd& work) noexcept;

private:
    friend class Socket;
    struct Slot {
        IoHandler* handler = nullptr;
        std::uint32_t generation = 0;
        bool open = false;
        bool readable = false;
        bool writable = false;
        bool peer_closed = false; // EPOLLRDHUP, HUP or ERR: read until a read says so
    };

    std::uint32_t add(int fd, bool writable); // throws std::system_error
    void remove(std::uint32_t slot) noexcept;
    Slot& slot(std::uint32_t index) noexcept { return slots_[index]; }
    void on_io() override; // the post queue's eventfd
    void run_posted();
    void turn(int timeout_ms);
    void run_turn_end();
    int timeout_for(std::chrono::milliseconds max_wait) const;

    int epoll_ = -1;
    int wake_ = -1;           // eventfd: posts are waiting
    std::uint32_t wake_slot_ = 0;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    TimerQueue timers_;
    std::vector<std::shared_ptr<void>> graveyard_;
    std::vector<TurnEnd*> turn_end_;
    std::atomic<bool> stopped_{false};
    std::atomic<bool> has_posts_{false}; // posted_ is not empty
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;  // under posted_mutex_
    std::vector<std::function<void()>> running_; // the loop's thread only
};

// A one-shot timer on a loop: at most one deadline pending, cancelled when
// destroyed.
class Timer {
public:
    explicit Timer(EventLoop& loop) noexcept : loop_(&loop) {}
    ~Timer() { cancel(); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Replaces the pending deadline, if any.
    void at(Clock::time_point when, std::function<void()> fn);
    void after(Clock::duration delay, std::function<void()> fn) { at(Clock::now() + delay, std::move(fn)); }
    void cancel() noexcept;
    bool pending() const noexcept { return handle_.id != 0; }

private:
    EventLoop* loop_;
    TimerQueue::Handle handle_{};
};

} // namespace redvip::proxy
