#include "proxy/event_loop.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>
#include <utility>

namespace redvip::proxy {

namespace {

constexpr int kMaxEvents = 256;

std::uint64_t event_key(std::uint32_t slot, std::uint32_t generation) {
    return (std::uint64_t{generation} << 32) | slot;
}

} // namespace

std::string error_text(int error) { return std::system_category().message(error); }

// --- TimerQueue ---

TimerQueue::Handle TimerQueue::add(Clock::time_point when, std::function<void()> fn) {
    const Handle handle{when, next_id_++};
    queue_.emplace(handle, std::move(fn));
    return handle;
}

bool TimerQueue::cancel(Handle handle) noexcept {
    return handle.id != 0 && queue_.erase(handle) > 0;
}

std::optional<Clock::time_point> TimerQueue::next() const noexcept {
    if (queue_.empty())
        return std::nullopt;
    return queue_.begin()->first.when;
}

std::size_t TimerQueue::run_due(Clock::time_point now) {
    const std::uint64_t limit = next_id_; // what callbacks add waits for the next call
    std::size_t ran = 0;
    for (;;) {
        auto it = queue_.begin(); // (a callback may cancel any entry: start over each time)
        while (it != queue_.end() && it->first.when <= now && it->first.id >= limit)
            ++it;
        if (it == queue_.end() || it->first.when > now)
            break;
        auto node = queue_.extract(it);
        node.mapped()();
        ++ran;
    }
    return ran;
}

// --- Timer ---

void Timer::at(Clock::time_point when, std::function<void()> fn) {
    cancel();
    handle_ = loop_->timers().add(when, [this, fn = std::move(fn)] {
        handle_ = {};
        fn();
    });
}

void Timer::cancel() noexcept {
    if (handle_.id != 0)
        loop_->timers().cancel(handle_);
    handle_ = {};
}

// --- Socket ---

Socket::Socket(EventLoop& loop, int fd, bool connected) : loop_(&loop), fd_(fd) {
    try {
        slot_ = loop.add(fd, connected);
    } catch (...) {
        ::close(fd);
        fd_ = -1;
        throw;
    }
}

Socket::Socket(Socket&& other) noexcept
    : loop_(other.loop_), fd_(std::exchange(other.fd_, -1)), slot_(other.slot_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
    if (this != &other) {
        close();
        loop_ = other.loop_;
        fd_ = std::exchange(other.fd_, -1);
        slot_ = other.slot_;
    }
    return *this;
}

void Socket::set_handler(IoHandler* handler) noexcept {
    if (is_open())
        loop_->slot(slot_).handler = handler;
}

bool Socket::readable() const noexcept { return is_open() && loop_->slot(slot_).readable; }
bool Socket::writable() const noexcept { return is_open() && loop_->slot(slot_).writable; }

IoResult Socket::read(char* into, std::size_t size) noexcept {
    if (!is_open())
        return {0, EBADF, false};
    auto& s = loop_->slot(slot_);
    for (;;) {
        const ssize_t n = ::recv(fd_, into, size, 0);
        if (n > 0) {
            // Less than asked: drained, unless the peer closed (then read on
            // to the end of stream).
            if (static_cast<std::size_t>(n) < size && !s.peer_closed)
                s.readable = false;
            return {static_cast<std::size_t>(n), 0, false};
        }
        if (n == 0)
            return {0, 0, size > 0};
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s.readable = false;
            return {};
        }
        return {0, errno, false};
    }
}

IoResult Socket::write(std::string_view bytes) noexcept {
    if (!is_open())
        return {0, EBADF, false};
    auto& s = loop_->slot(slot_);
    for (;;) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            if (static_cast<std::size_t>(n) < bytes.size())
                s.writable = false;
            return {static_cast<std::size_t>(n), 0, false};
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s.writable = false;
            return {};
        }
        return {0, errno, false};
    }
}

std::size_t Socket::available() const noexcept {
    int n = 0;
    if (!is_open() || ::ioctl(fd_, FIONREAD, &n) != 0 || n < 0)
        return 0;
    return static_cast<std::size_t>(n);
}

int Socket::connect_error() const noexcept {
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
        return errno;
    return error;
}

void Socket::set_no_delay() noexcept {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void Socket::set_keepalive(std::chrono::seconds idle) noexcept {
    if (idle.count() <= 0)
        return;
    const int one = 1;
    const int first = static_cast<int>(idle.count());
    const int every = std::max(first / 3, 1);
    const int probes = 3;
    ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &first, sizeof first);
    ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof every);
    ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

bool Socket::shutdown_write() noexcept { return is_open() && ::shutdown(fd_, SHUT_WR) == 0; }

// Closing removes the descriptor from epoll (sockets are close-on-exec, so no
// child holds it open); an event already taken for it finds a new generation.
void Socket::close() noexcept {
    if (fd_ < 0)
        return;
    loop_->remove(slot_);
    ::close(fd_);
    fd_ = -1;
}

// --- EventLoop ---

EventLoop::EventLoop() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0)
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_ < 0) {
        const int error = errno;
        ::close(epoll_);
        throw std::system_error(error, std::generic_category(), "eventfd");
    }
    slots_.reserve(64);
    try {
        wake_slot_ = add(wake_, false);
    } catch (...) {
        ::close(wake_);
        ::close(epoll_);
        throw;
    }
    slots_[wake_slot_].handler = this;
}

EventLoop::~EventLoop() {
    ::close(wake_);
    ::close(epoll_);
}

std::uint32_t EventLoop::add(int fd, bool writable) {
    std::uint32_t index;
    if (!free_slots_.empty()) {
        index = free_slots_.back();
        free_slots_.pop_back();
    } else {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    Slot& s = slots_[index];
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = event_key(index, s.generation);
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free_slots_.push_back(index);
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
    s.handler = nullptr;
    s.open = true;
    s.readable = s.peer_closed = false;
    s.writable = writable;
    return index;
}

void EventLoop::remove(std::uint32_t index) noexcept {
    const std::uint32_t generation = slots_[index].generation + 1;
    slots_[index] = Slot{};
    slots_[index].generation = generation; // events queued for the old descriptor are dropped
    free_slots_.push_back(index);
}

void EventLoop::run() {
    while (!stopped())
        turn(timeout_for(std::chrono::milliseconds(-1)));
}

void EventLoop::run_once(std::chrono::milliseconds max_wait) { turn(timeout_for(max_wait)); }

void EventLoop::stop() noexcept {
    stopped_.store(true, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
}

void EventLoop::post(std::function<void()> fn) {
    bool was_empty;
    {
        std::lock_guard lock(posted_mutex_);
        was_empty = posted_.empty();
        posted_.push_back(std::move(fn));
        has_posts_.store(true, std::memory_order_release);
    }
    if (was_empty) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    }
}

void EventLoop::release_later(std::shared_ptr<void> object) { graveyard_.push_back(std::move(object)); }

// The eventfd: run what was posted (a post made meanwhile writes it again).
void EventLoop::on_io() {
    std::uint64_t count;
    while (::read(wake_, &count, sizeof count) > 0) {
    }
    run_posted();
}

void EventLoop::run_posted() {
    if (!has_posts_.load(std::memory_order_acquire))
        return;
    {
        std::lock_guard lock(posted_mutex_);
        running_.swap(posted_);
        has_posts_.store(false, std::memory_order_relaxed);
    }
    for (auto& fn : running_)
        fn();
    running_.clear();
}

// Milliseconds to wait: until the next timer (rounded up, so it is due when
// the wait ends), at most max_wait (negative: no bound).
int EventLoop::timeout_for(std::chrono::milliseconds max_wait) const {
    auto next = timers_.next();
    if (!next)
        return static_cast<int>(max_wait.count() < 0 ? -1 : max_wait.count());
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now());
    auto wait = std::max(left, std::chrono::milliseconds(0));
    if (max_wait.count() >= 0)
        wait = std::min(wait, max_wait);
    return static_cast<int>(std::min<std::chrono::milliseconds::rep>(wait.count(), 1 << 30));
}

void EventLoop::turn(int timeout_ms) {
    std::array<epoll_event, kMaxEvents> events;
    const int n = ::epoll_wait(epoll_, events.data(), kMaxEvents, timeout_ms);
    // Posts first: the eventfd may come after a socket whose event the
    // kernel queued earlier (a new socket is queued writable at once) and
    // whose bytes arrived after the post.
    run_posted();
    for (int i = 0; i < n; ++i) {
        const std::uint64_t key = events[i].data.u64;
        const auto index = static_cast<std::uint32_t>(key);
        const auto generation = static_cast<std::uint32_t>(key >> 32);
        Slot& s = slots_[index];
        if (!s.open || s.generation != generation)
            continue; // closed since the kernel queued this
        const std::uint32_t e = events[i].events;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            s.peer_closed = true;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            s.readable = true;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            s.writable = true;
        if (s.handler != nullptr)
            s.handler->on_io(); // (slots_ may grow here: s is not used after)
    }
    timers_.run_due(Clock::now());
    run_turn_end();
    release_now();
}

void EventLoop::run_turn_end() {
    while (!turn_end_.empty()) {
        TurnEnd* work = turn_end_.front();
        turn_end_.erase(turn_end_.begin()); // (a few entries: one per shared link)
        work->on_turn_end();
    }
}

void EventLoop::cancel_turn_end(TurnEnd& work) noexcept {
    turn_end_.erase(std::remove(turn_end_.begin(), turn_end_.end(), &work), turn_end_.end());
}

void EventLoop::release_now() noexcept {
    while (!graveyard_.empty()) {
        auto dead = std::move(graveyard_);
        graveyard_.clear();
        dead.clear(); // (a destructor may release more)
    }
}

} // namespace redvip::proxy
