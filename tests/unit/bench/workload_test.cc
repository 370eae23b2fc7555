#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/workload.h"

namespace distkv::bench {

TEST_CASE("a value has the requested size and decodes to its version") {
  for (size_t size : {32u, 100u, 4096u}) {
    std::string v = MakeValue(0xabcdef01, "key:17", 123456, size);
    CHECK(v.size() == size);
    uint64_t version = 0;
    CHECK(CheckValue(0xabcdef01, "key:17", v, size, &version) == ValueCheck::kOk);
    CHECK(version == 123456);
  }
  CHECK(MakeValue(1, "k", 1, 0).empty());
  CHECK(MakeValue(1, "k", 1, 5).size() == 5);
}

TEST_CASE("values of other versions, keys or runs, and damaged values, are told apart") {
  const uint32_t run = 77;
  std::string v = MakeValue(run, "key:1", 5, 100);
  uint64_t version = 0;
  CHECK(MakeValue(run, "key:1", 6, 100) != v);
  CHECK(CheckValue(run, "key:2", v, 100, &version) == ValueCheck::kOtherKey);
  CHECK(CheckValue(run + 1, "key:1", v, 100, &version) == ValueCheck::kOtherRun);
  CHECK(CheckValue(run, "key:1", "hello", 100, &version) == ValueCheck::kMalformed);
  CHECK(CheckValue(run, "key:1", "", 100, &version) == ValueCheck::kMalformed);
  CHECK(CheckValue(run, "key:1", v.substr(0, 60), 100, &version) ==
        ValueCheck::kCorrupt);  // truncated
  std::string flipped = v;
  flipped[80] = flipped[80] == 'a' ? 'b' : 'a';
  CHECK(CheckValue(run, "key:1", flipped, 100, &version) == ValueCheck::kCorrupt);
  // The head of one version with the tail of another.
  std::string mixed = v.substr(0, 50) + MakeValue(run, "key:1", 6, 100).substr(50);
  CHECK(CheckValue(run, "key:1", mixed, 100, &version) == ValueCheck::kCorrupt);
}

TEST_CASE("key names") { CHECK(KeyName("key:", 42) == "key:42"); }

TEST_CASE("the seeded generator is reproducible and Below stays in range") {
  Rng a(9);
  Rng b(9);
  Rng c(10);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    CHECK(x == b.Next());
    differs = differs || x != c.Next();
  }
  CHECK(differs);
  for (int i = 0; i < 10'000; ++i) {
    CHECK(a.Below(7) < 7);
    double d = a.NextDouble();
    CHECK(d >= 0.0);
    CHECK(d < 1.0);
  }
}

TEST_CASE("uniform keys cover the key space evenly") {
  KeyChooser chooser(10, false, 0);
  Rng rng(1);
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100'000; ++i) {
    uint64_t k = chooser.Next(rng);
    REQUIRE(k < 10);
    ++counts[k];
  }
  for (int c : counts) {
    CHECK(c > 9'000);
    CHECK(c < 11'000);
  }
}

TEST_CASE("zipf keys are skewed towards a few hot keys spread over the key space") {
  const uint64_t n = 1000;
  KeyChooser chooser(n, true, 0.99);
  // Ranks map to distinct key indexes.
  std::set<uint64_t> seen;
  for (uint64_t r = 0; r < n; ++r) seen.insert(chooser.IndexOfRank(r));
  CHECK(seen.size() == n);
  CHECK(chooser.IndexOfRank(0) !=
        chooser.IndexOfRank(1) - 1);  // neighbours in rank are not in index

  Rng rng(3);
  std::map<uint64_t, int> counts;
  const int draws = 200'000;
  for (int i = 0; i < draws; ++i) {
    uint64_t k = chooser.Next(rng);
    REQUIRE(k < n);
    ++counts[k];
  }
  int hottest = counts[chooser.IndexOfRank(0)];
  int second = counts[chooser.IndexOfRank(1)];
  int tail = counts[chooser.IndexOfRank(n - 1)];
  // For theta 0.99 and 1000 keys, rank 0 draws about 13% of all requests,
  // rank 1 half of that, the last rank a few hundredths of a percent.
  CHECK(hottest > draws / 10);
  CHECK(hottest > second);
  CHECK(second > draws / 20);
  CHECK(tail < draws / 1000);
}

}  // namespace distkv::bench
