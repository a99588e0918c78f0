#pragma once
// A log-linear ("HDR") latency histogram in microseconds.
//
// Values below 2^kSubBucketBits are counted exactly; above, every power-of-two
// range is split into 2^(kSubBucketBits-1) equal buckets, so a bucket is never
// wider than 1/2^(kSubBucketBits-1) of the values in it. A percentile is
// reported as the highest value equivalent to the sample of that rank: it is
// never below the true sample and at most kRelativeError above it.

#include <cstdint>
#include <vector>

namespace redvip::bench {

class Histogram {
public:
    // 11 bits: exact up to 2047 us, then 1024 buckets per octave (0.1%).
    static constexpr int kSubBucketBits = 11;
    static constexpr double kRelativeError = 1.0 / (1u << (kSubBucketBits - 1));
    // 2^36 us is 19 hours: anything longer is clamped (and still counted).
    static constexpr int kMaxValueBits = 36;
    static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << kMaxValueBits) - 1;

    Histogram();

    void record(std::uint64_t value_us, std::uint64_t count = 1);
    void merge(const Histogram& other);
    void reset();

    std::uint64_t count() const { return total_; }
    std::uint64_t min() const { return total_ == 0 ? 0 : min_; }
    std::uint64_t max() const { return max_; }
    double mean() const;
    // Nearest-rank percentile: the sample of rank ceil(p/100 * count), p in [0, 100].
    // 0 for an empty histogram; max() for p == 100.
    std::uint64_t value_at_percentile(double percentile) const;

    // Exposed for tests: the bucket a value falls in and that bucket's range.
    static std::size_t index_of(std::uint64_t value);
    static std::uint64_t lowest_equivalent(std::size_t index);
    static std::uint64_t highest_equivalent(std::size_t index);

private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
    double sum_ = 0;
};

} // namespace redvip::bench
