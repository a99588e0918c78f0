// Byte buffers for sessions: taken from a per-thread pool when a connection
// has bytes to move, given back when it is idle, so an idle client costs no
// buffer at all. The pool keeps a bounded number of free buffers, so memory
// taken in a burst goes back to the system afterwards.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace redvip::proxy {

// Large enough that one read takes a whole pipeline of small commands (16
// SETs of 32 bytes are ~1 KiB; redis-benchmark -P 16 -c 50 moves ~50 KiB per
// round across all clients).
inline constexpr std::size_t kBufferSize = 16 * 1024;

// Free buffers a thread keeps for reuse (512 KiB). Busy sessions keep their
// own (session.hpp), so this only serves sessions waking up; past it, released
// buffers are unmapped (a burst's memory goes back at once).
inline constexpr std::size_t kMaxFreeBuffers = 32;

// Buffer storage is pages of its own (mmap), not heap chunks: freed, it goes
// back to the system at once, whatever the heap holds around it, so a burst of
// busy clients leaves no RSS behind. (The pool below keeps a few for reuse, so
// steady traffic maps nothing.)
struct Unmap {
    std::size_t size = 0;
    void operator()(char* p) const noexcept { ::munmap(p, size); }
};
using PageStorage = std::unique_ptr<char[], Unmap>;

inline PageStorage map_pages(std::size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc();
    return PageStorage(static_cast<char*>(p), Unmap{size});
}

// A contiguous byte window [begin, end) in storage of `capacity` bytes.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::size_t capacity) : data_(map_pages(capacity)), capacity_(capacity) {}

    bool allocated() const noexcept { return data_ != nullptr; }
    std::size_t capacity() const noexcept { return capacity_; }

    std::string_view data() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }

    // Space after end_ for the next read; compacts first when worthwhile.
    char* write_ptr() noexcept { return data_.get() + end_; }
    std::size_t write_space() const noexcept { return capacity_ - end_; }
    void commit(std::size_t n) noexcept { end_ += n; }
    // Never moves end_: a read may be in flight into [end_, capacity).
    void consume(std::size_t n) noexcept { begin_ += n; }
    void append(std::string_view bytes) noexcept {
        std::memcpy(write_ptr(), bytes.data(), bytes.size());
        commit(bytes.size());
    }

    // Before arming a read, with nothing in flight from or into the buffer:
    // start over when empty, move the live bytes to the front when the free
    // tail is under a quarter, so reads stay large.
    void make_room() noexcept {
        if (begin_ == end_)
            begin_ = end_ = 0;
        else if (write_space() < capacity_ / 4)
            compact();
    }

    // Moves the live bytes to the front, so write_space() is all that is free.
    void compact() noexcept {
        if (begin_ == 0)
            return;
        std::memmove(data_.get(), data_.get() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
    }

    // Grows to at least `capacity` (a frame larger than the standard size).
    void reserve(std::size_t capacity) {
        if (capacity <= capacity_)
            return;
        PageStorage bigger = map_pages(capacity);
        std::memcpy(bigger.get(), data_.get() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
        data_ = std::move(bigger);
        capacity_ = capacity;
    }

    void reset() noexcept { begin_ = end_ = 0; }

    // Keeps only the first n live bytes (drops a partial frame).
    void truncate(std::size_t n) noexcept { end_ = begin_ + n; }

    // Replaces the first `old_size` live bytes by `bytes` (no longer than
    // them): a request the proxy rewrites, such as HELLO without its AUTH.
    void replace_front(std::size_t old_size, std::string_view bytes) noexcept {
        begin_ += old_size - bytes.size();
        std::memcpy(data_.get() + begin_, bytes.data(), bytes.size());
    }

private:
    PageStorage data_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

// One per thread: no locking.
class BufferPool {
public:
    Buffer take() {
        if (free_.empty())
            return Buffer(kBufferSize);
        Buffer b = std::move(free_.back());
        free_.pop_back();
        return b;
    }

    // Standard-size buffers are kept (up to the cap); grown ones are freed.
    void give_back(Buffer& b) {
        if (!b.allocated())
            return;
        if (b.capacity() == kBufferSize && free_.size() < kMaxFreeBuffers) {
            b.reset();
            free_.push_back(std::move(b));
        }
        b = Buffer();
    }

    std::size_t free_count() const noexcept { return free_.size(); }

private:
    std::vector<Buffer> free_;
};

} // namespace redvip::proxy
