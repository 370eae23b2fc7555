// HdrHistogram: an HDR-style log-linear histogram of durations in
// nanoseconds, from 1 µs to 60 s, with a bounded relative error.
//
// Values below 2^kSubBits ns are counted exactly. Above, each power-of-two
// range [2^k, 2^(k+1)) is split into 2^kSubBits equal sub-buckets, so a
// bucket's width is at most 1/128 of its lower bound. A percentile is
// reported as the middle of its bucket (never above the largest value seen),
// which puts it within 1/256 (0.4%) of a true sample value. Recording is an
// index computation and an increment: cheap enough for every request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace distkv::bench {

class HdrHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kMaxValue = 60'000'000'000ull;  // 60 s in ns; larger values are clamped

  HdrHistogram();

  void Record(uint64_t ns);
  void Merge(const HdrHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  // The value below which `percent` percent of the samples lie (0 < percent
  // <= 100); 0 when empty.
  uint64_t Percentile(double percent) const;

  // Bucket arithmetic, public for tests.
  static size_t BucketOf(uint64_t ns);
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketWidth(size_t index);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace distkv::bench
