#include "bench/histogram.hpp"

#include <cmath>
#include <doctest/doctest.h>

using redvip::bench::Histogram;

namespace {

// The stated bound: a reported value v for a true sample x has x <= v <= x * (1 + error).
void check_within_error(std::uint64_t reported, std::uint64_t exact) {
    CHECK(reported >= exact);
    CHECK(static_cast<double>(reported) <=
          static_cast<double>(exact) * (1.0 + Histogram::kRelativeError));
}

} // namespace

TEST_CASE("values below the sub-bucket count are exact") {
    for (std::uint64_t v : {0, 1, 2, 999, 2047}) {
        CHECK(Histogram::index_of(v) == v);
        CHECK(Histogram::lowest_equivalent(Histogram::index_of(v)) == v);
        CHECK(Histogram::highest_equivalent(Histogram::index_of(v)) == v);
    }
}

TEST_CASE("every bucket holds exactly the values between its bounds, within the relative error") {
    for (std::uint64_t v = 1; v < (std::uint64_t{1} << 30); v = v * 3 / 2 + 1) {
        const std::size_t i = Histogram::index_of(v);
        const std::uint64_t lo = Histogram::lowest_equivalent(i),
                            hi = Histogram::highest_equivalent(i);
        CHECK(lo <= v);
        CHECK(v <= hi);
        CHECK(Histogram::index_of(lo) == i);
        CHECK(Histogram::index_of(hi) == i);
        CHECK(Histogram::index_of(hi + 1) == i + 1);
        CHECK(static_cast<double>(hi - lo + 1) <=
              static_cast<double>(lo) * Histogram::kRelativeError + 1);
    }
}

TEST_CASE("uniform 1..100000 us: percentiles at their exact ranks within the stated error") {
    Histogram h;
    for (std::uint64_t v = 1; v <= 100000; ++v)
        h.record(v);
    CHECK(h.count() == 100000);
    CHECK(h.min() == 1);
    CHECK(h.max() == 100000);
    CHECK(h.mean() == doctest::Approx(50000.5));
    // Nearest rank: percentile p of 1..100000 is the sample ceil(p * 1000).
    check_within_error(h.value_at_percentile(50), 50000);
    check_within_error(h.value_at_percentile(90), 90000);
    check_within_error(h.value_at_percentile(99), 99000);
    check_within_error(h.value_at_percentile(99.9), 99900);
    check_within_error(h.value_at_percentile(0.001), 1);
    CHECK(h.value_at_percentile(100) == 100000);
    CHECK(h.value_at_percentile(0) == 1);
}

TEST_CASE("a skewed distribution: the tail is seen") {
    Histogram h;
    h.record(100, 9990);
    h.record(50000, 10);
    CHECK(h.value_at_percentile(99) == 100);
    CHECK(h.value_at_percentile(99.9) == 100);
    check_within_error(h.value_at_percentile(99.91), 50000);
    CHECK(h.max() == 50000);
}

TEST_CASE("merge adds counts and keeps the extremes; reset empties") {
    Histogram a, b;
    a.record(10, 3);
    b.record(5000);
    a.merge(b);
    CHECK(a.count() == 4);
    CHECK(a.min() == 10);
    CHECK(a.max() == 5000);
    a.reset();
    CHECK(a.count() == 0);
    CHECK(a.value_at_percentile(50) == 0);
    CHECK(a.max() == 0);
}

TEST_CASE("values beyond the range are clamped, still counted") {
    Histogram h;
    h.record(UINT64_MAX);
    CHECK(h.count() == 1);
    CHECK(h.max() == Histogram::kMaxValue);
    CHECK(h.value_at_percentile(50) == Histogram::kMaxValue);
}
