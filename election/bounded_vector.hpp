// A vector with its capacity in the type: storage is inline, push_back refuses
// rather than grows. Used where a wire count or a per-event action list must
// never size an allocation (docs/style.md, practice 2).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

namespace redvip::election {

template <typename T, std::size_t N> class BoundedVector {
public:
    static constexpr std::size_t max_size() { return N; }

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == N; }

    // False, and nothing stored, once the capacity is reached.
    [[nodiscard]] bool push_back(const T& value) {
        if (size_ == N) return false;
        items_[size_++] = value;
        return true;
    }
    void pop_back() { --size_; } // not empty
    void clear() { size_ = 0; }

    const T& operator[](std::size_t i) const { return items_[i]; }
    T& operator[](std::size_t i) { return items_[i]; }
    const T& back() const { return items_[size_ - 1]; } // not empty
    const T* begin() const { return items_.data(); }
    const T* end() const { return items_.data() + size_; }
    T* begin() { return items_.data(); }
    T* end() { return items_.data() + size_; }

    friend bool operator==(const BoundedVector& a, const BoundedVector& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    }

private:
    std::array<T, N> items_{};
    std::size_t size_ = 0;
};

} // namespace redvip::election
