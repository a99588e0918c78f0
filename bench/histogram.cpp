#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace redvip::bench {

namespace {

constexpr std::uint64_t kSubBucketCount = std::uint64_t{1} << Histogram::kSubBucketBits;
constexpr std::uint64_t kHalfCount = kSubBucketCount / 2;

// Octave k >= 1 holds values [2^(S-1+k), 2^(S+k)) in kHalfCount buckets of width 2^k.
constexpr std::size_t bucket_count() {
    const int octaves = Histogram::kMaxValueBits - Histogram::kSubBucketBits;
    return kSubBucketCount + static_cast<std::size_t>(octaves) * kHalfCount;
}

} // namespace

Histogram::Histogram() : counts_(bucket_count(), 0) {}

std::size_t Histogram::index_of(std::uint64_t value) {
    value = std::min(value, kMaxValue);
    if (value < kSubBucketCount) return static_cast<std::size_t>(value);
    const int shift = std::bit_width(value) - kSubBucketBits; // >= 1
    const std::uint64_t sub = (value >> shift) - kHalfCount;  // [0, kHalfCount)
    return static_cast<std::size_t>(kSubBucketCount + (shift - 1) * kHalfCount + sub);
}

std::uint64_t Histogram::lowest_equivalent(std::size_t index) {
    if (index < kSubBucketCount) return index;
    const std::uint64_t rest = index - kSubBucketCount;
    const int shift = static_cast<int>(rest / kHalfCount) + 1;
    return (kHalfCount + rest % kHalfCount) << shift;
}

std::uint64_t Histogram::highest_equivalent(std::size_t index) {
    if (index < kSubBucketCount) return index;
    const int shift = static_cast<int>((index - kSubBucketCount) / kHalfCount) + 1;
    return lowest_equivalent(index) + (std::uint64_t{1} << shift) - 1;
}

void Histogram::record(std::uint64_t value_us, std::uint64_t count) {
    if (count == 0) return;
    value_us = std::min(value_us, kMaxValue);
    counts_[index_of(value_us)] += count;
    total_ += count;
    min_ = std::min(min_, value_us);
    max_ = std::max(max_, value_us);
    sum_ += static_cast<double>(value_us) * static_cast<double>(count);
}

void Histogram::merge(const Histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i)
        counts_[i] += other.counts_[i];
    total_ += other.total_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
}

void Histogram::reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = 0;
    min_ = UINT64_MAX;
    max_ = 0;
    sum_ = 0;
}

double Histogram::mean() const {
    return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_);
}

std::uint64_t Histogram::value_at_percentile(double percentile) const {
    if (total_ == 0) return 0;
    percentile = std::clamp(percentile, 0.0, 100.0);
    const double exact_rank = percentile / 100.0 * static_cast<double>(total_);
    // The epsilon keeps 99.9% of 100000 at rank 99900 despite binary fractions.
    auto rank = static_cast<std::uint64_t>(std::ceil(exact_rank - 1e-9));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank) return std::clamp(highest_equivalent(i), min(), max_);
    }
    return max_;
}

} // namespace redvip::bench
