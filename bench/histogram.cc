#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace distkv::bench {

namespace {

constexpr uint64_t kSubCount = uint64_t{1} << HdrHistogram::kSubBits;

size_t BucketCount() { return HdrHistogram::BucketOf(HdrHistogram::kMaxValue) + 1; }

}  // namespace

HdrHistogram::HdrHistogram() : buckets_(BucketCount(), 0) {}

size_t HdrHistogram::BucketOf(uint64_t ns) {
  if (ns < kSubCount) return static_cast<size_t>(ns);
  int k = 63 - std::countl_zero(ns);  // ns lies in [2^k, 2^(k+1)), k >= kSubBits
  int shift = k - kSubBits;
  uint64_t sub = (ns >> shift) - kSubCount;  // 0 .. kSubCount-1
  return static_cast<size_t>(kSubCount + static_cast<uint64_t>(shift) * kSubCount + sub);
}

uint64_t HdrHistogram::BucketLow(size_t index) {
  if (index < kSubCount) return index;
  uint64_t shift = (index - kSubCount) / kSubCount;
  uint64_t sub = (index - kSubCount) % kSubCount;
  return (kSubCount + sub) << shift;
}

uint64_t HdrHistogram::BucketWidth(size_t index) {
  if (index < kSubCount) return 1;
  return uint64_t{1} << ((index - kSubCount) / kSubCount);
}

void HdrHistogram::Record(uint64_t ns) {
  ns = std::min(ns, kMaxValue);
  ++buckets_[BucketOf(ns)];
  if (count_ == 0 || ns < min_) min_ = ns;
  if (ns > max_) max_ = ns;
  ++count_;
  sum_ += static_cast<double>(ns);
}

void HdrHistogram::Merge(const HdrHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void HdrHistogram::Reset() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

uint64_t HdrHistogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  if (percent >= 100.0) return max_;
  // The rank of the sample that `percent` percent of samples lie at or below.
  uint64_t rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      uint64_t mid = BucketLow(i) + BucketWidth(i) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace distkv::bench
