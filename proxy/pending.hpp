// The requests a session has forwarded and not yet had answered, oldest
// first: one reply pops one entry, so replies are matched to requests in
// order; a closed link fails what is left, each entry once (fail_all).
// Pure: the caller passes the time in.
#pragma once

#include "proxy/command.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace redvip::proxy {

// Requests in flight per client before the proxy stops reading it (resumed as
// replies drain): bounds a client that pipelines without reading replies.
inline constexpr std::size_t kMaxPending = 4096;

struct PendingRequest {
    std::chrono::steady_clock::time_point sent;
    bool blocking = false; // BLPOP and friends: exempt from the backend timeout
    CommandClass cls = CommandClass::other; // where its latency is recorded
};

// A ring that grows on demand up to kMaxPending, from 4 entries (64 bytes):
// what a client that does not pipeline needs. It is kept while the session
// lives: freeing it when idle would leave a hole in the heap that costs as
// much, between the sessions allocated around it.
class PendingQueue {
public:
    bool empty() const noexcept { return count_ == 0; }
    bool full() const noexcept { return count_ == kMaxPending; }
    std::size_t size() const noexcept { return count_; }

    void push(const PendingRequest& request) {
        if (count_ == capacity_)
            grow();
        slots_[(head_ + count_) & (capacity_ - 1)] = request;
        ++count_;
    }

    const PendingRequest& front() const noexcept { return slots_[head_]; }

    void pop() noexcept {
        head_ = (head_ + 1) & (capacity_ - 1);
        --count_;
    }

    // Empties the queue, oldest first: each entry is popped before `fail`
    // runs with it, so a callback that looks at the queue sees the rest only.
    template <class Fail>
    void fail_all(Fail&& fail) {
        while (count_ > 0) {
            PendingRequest request = front();
            pop();
            fail(request);
        }
    }

private:
    void grow() {
        std::size_t capacity = capacity_ == 0 ? 4 : capacity_ * 2; // a power of two, for the mask
        std::unique_ptr<PendingRequest[]> slots(new PendingRequest[capacity]);
        for (std::size_t i = 0; i < count_; ++i)
            slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
        slots_ = std::move(slots);
        capacity_ = capacity;
        head_ = 0;
    }

    std::unique_ptr<PendingRequest[]> slots_;
    std::size_t capacity_ = 0;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
};

} // namespace redvip::proxy
