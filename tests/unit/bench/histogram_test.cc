#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bench/histogram.h"

namespace distkv::bench {

namespace {

// The exact p-th percentile (nearest rank) of a sorted sample.
uint64_t ExactPercentile(const std::vector<uint64_t>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void CheckWithinOnePercent(const std::vector<uint64_t>& samples) {
  HdrHistogram h;
  for (uint64_t v : samples) h.Record(v);
  std::vector<uint64_t> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  for (double p : {1.0, 10.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
    double exact = static_cast<double>(ExactPercentile(sorted, p));
    double got = static_cast<double>(h.Percentile(p));
    CAPTURE(p);
    CAPTURE(exact);
    CAPTURE(got);
    CHECK(std::abs(got - exact) <= 0.01 * exact);
  }
  CHECK(h.max() == sorted.back());
  CHECK(h.min() == sorted.front());
  CHECK(h.count() == samples.size());
}

}  // namespace

TEST_CASE("every bucket is narrower than 1/128 of its lower bound and holds its values") {
  for (uint64_t v = 1; v < HdrHistogram::kMaxValue; v = v * 3 / 2 + 1) {
    size_t b = HdrHistogram::BucketOf(v);
    uint64_t low = HdrHistogram::BucketLow(b);
    uint64_t width = HdrHistogram::BucketWidth(b);
    CAPTURE(v);
    CHECK(low <= v);
    CHECK(v < low + width);
    CHECK(width * 128 <= std::max<uint64_t>(low, 128));
  }
  // Buckets are contiguous: the next one starts where this one ends.
  for (size_t b = 0; b + 1 < HdrHistogram::BucketOf(HdrHistogram::kMaxValue); ++b) {
    CHECK(HdrHistogram::BucketLow(b) + HdrHistogram::BucketWidth(b) ==
          HdrHistogram::BucketLow(b + 1));
  }
}

TEST_CASE("percentiles of a uniform spread from 1 us to 100 ms are within 1%") {
  std::vector<uint64_t> samples;
  for (uint64_t us = 1; us <= 100'000; ++us) samples.push_back(us * 1000);
  CheckWithinOnePercent(samples);
  HdrHistogram h;
  for (uint64_t v : samples) h.Record(v);
  CHECK(std::abs(static_cast<double>(h.Percentile(50)) - 50e6) <= 0.01 * 50e6);
  CHECK(std::abs(static_cast<double>(h.Percentile(99)) - 99e6) <= 0.01 * 99e6);
}

TEST_CASE("percentiles of a long-tailed (log-normal) sample are within 1%") {
  std::mt19937_64 gen(7);
  std::lognormal_distribution<double> dist(std::log(500'000.0),
                                           1.5);  // median 0.5 ms, tail into seconds
  std::vector<uint64_t> samples;
  for (int i = 0; i < 200'000; ++i) {
    samples.push_back(
        std::clamp<uint64_t>(static_cast<uint64_t>(dist(gen)), 1000, HdrHistogram::kMaxValue));
  }
  CheckWithinOnePercent(samples);
}

TEST_CASE("values beyond 60 s are clamped, an empty histogram reports zeros") {
  HdrHistogram h;
  CHECK(h.Percentile(99) == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0);
  h.Record(HdrHistogram::kMaxValue * 10);
  CHECK(h.max() == HdrHistogram::kMaxValue);
  CHECK(h.Percentile(50) == HdrHistogram::kMaxValue);
}

TEST_CASE("merging two histograms equals recording everything in one") {
  HdrHistogram a;
  HdrHistogram b;
  HdrHistogram both;
  for (uint64_t v = 1000; v < 5'000'000; v += 997) {
    ((v / 997) % 2 == 0 ? a : b).Record(v);
    both.Record(v);
  }
  a.Merge(b);
  CHECK(a.count() == both.count());
  CHECK(a.min() == both.min());
  CHECK(a.max() == both.max());
  for (double p : {50.0, 90.0, 99.0, 99.9}) CHECK(a.Percentile(p) == both.Percentile(p));
  a.Reset();
  CHECK(a.count() == 0);
}

}  // namespace distkv::bench
