// The workload of a bench run: a seeded random generator, the choice of
// keys (uniform or zipf), key names, and self-describing values.
//
// A value written by the bench carries the run, the key and a version:
//   "v<run>.<version>.<key hash>." followed by filler derived from them,
// so a read can tell which write it sees and that the bytes are intact
// (the whole value is regenerated and compared). Versions come from one
// counter per run, so every write is distinct; the run id keeps values of an
// earlier run from passing for this one's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distkv::bench {

// xoshiro256** seeded through splitmix64: fast, good enough for load.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, n), n >= 1.
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1).
  double NextDouble();

 private:
  uint64_t s_[4];
};

// Picks key indexes in [0, keys). Zipf follows Gray et al. ("Quickly
// generating billion-record synthetic databases", as in YCSB) with skew
// theta; its ranks are spread over the key space by a fixed permutation so
// that the hot keys are not neighbours (and land on different shards).
class KeyChooser {
 public:
  KeyChooser(uint64_t keys, bool zipf, double theta);
  uint64_t Next(Rng& rng);
  // The key index of zipf rank r (0 = hottest); identity for uniform.
  uint64_t IndexOfRank(uint64_t rank) const;

 private:
  uint64_t keys_;
  bool zipf_;
  double theta_ = 0;
  double alpha_ = 0;
  double zetan_ = 0;
  double eta_ = 0;
  uint64_t multiplier_ = 1;  // coprime with keys_: rank -> index is a bijection
  uint64_t offset_ = 0;
};

std::string KeyName(std::string_view prefix, uint64_t index);

// 32-bit FNV-1a of a key, as carried in values.
uint32_t KeyHash(std::string_view key);

// The value of write `version` of `key` in run `run`: exactly `size` bytes
// (the header is cut short when size is below its length; such values
// cannot be verified, which is why --verify asks for 32 bytes at least).
std::string MakeValue(uint32_t run, std::string_view key, uint64_t version, size_t size);

enum class ValueCheck { kOk, kMalformed, kOtherRun, kOtherKey, kCorrupt };
// Decodes a value read back for key: its version, and whether it is intact
// (exactly `size` bytes, as written) and belongs to this run and key.
ValueCheck CheckValue(uint32_t run, std::string_view key, std::string_view value, size_t size,
                      uint64_t* version);

}  // namespace distkv::bench
