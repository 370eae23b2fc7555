// KeyIndex: map semantics, recovery's newest-LSN rule, and a million keys
// with deletes and re-inserts through several rebuilds.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <unordered_map>

#include "storage/key_index.h"

using namespace distkv::storage;

namespace {

IndexEntry Entry(uint64_t lsn, uint32_t seg = 1, uint64_t off = 0, uint32_t vlen = 0) {
  IndexEntry e;
  e.lsn = lsn;
  e.segment = seg;
  e.offset = off;
  e.value_len = vlen;
  return e;
}

std::string Key(uint64_t i) {
  // 16-byte binary keys, as the benchmark uses.
  std::string k(16, '\0');
  for (int b = 0; b < 8; b++) k[b] = static_cast<char>(i >> (8 * b));
  k[8] = 'k';
  return k;
}

}  // namespace

TEST_CASE("KeyIndex stores, overwrites and erases entries with every field intact") {
  KeyIndex idx;
  IndexEntry e;
  CHECK_FALSE(idx.Find("a", &e));
  IndexEntry big = Entry(0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFFu, kMaxIndexOffset - 1, 0xFFFFFFFFu);
  CHECK_FALSE(idx.Put("a", big));
  REQUIRE(idx.Find("a", &e));
  CHECK(e.lsn == big.lsn);
  CHECK(e.segment == big.segment);
  CHECK(e.offset == big.offset);
  CHECK(e.value_len == big.value_len);
  CHECK_FALSE(e.deleted);

  IndexEntry old;
  CHECK(idx.Put("a", Entry(7, 2, 100, 5), &old));
  CHECK(old.lsn == big.lsn);
  REQUIRE(idx.Find("a", &e));
  CHECK(e.lsn == 7);
  CHECK(e.offset == 100);
  CHECK(idx.size() == 1);

  const std::string long_key(65536, 'x');  // a three-byte length prefix
  CHECK_FALSE(idx.Put(long_key, Entry(8)));
  CHECK(idx.Find(long_key, &e));
  CHECK_FALSE(idx.Find(long_key.substr(1), &e));

  CHECK(idx.Erase("a", &old));
  CHECK(old.lsn == 7);
  CHECK_FALSE(idx.Find("a", &e));
  CHECK_FALSE(idx.Erase("a"));
  CHECK(idx.size() == 1);
}

TEST_CASE("KeyIndex::PutIfNewer keeps the highest LSN, tombstones included") {
  KeyIndex idx;
  bool replaced;
  CHECK(idx.PutIfNewer("k", Entry(5), &replaced, nullptr));
  CHECK_FALSE(replaced);
  IndexEntry tomb = Entry(9);
  tomb.deleted = true;
  IndexEntry old;
  CHECK(idx.PutIfNewer("k", tomb, &replaced, &old));
  CHECK(replaced);
  CHECK(old.lsn == 5);
  CHECK_FALSE(idx.PutIfNewer("k", Entry(7), &replaced, nullptr));
  CHECK_FALSE(idx.PutIfNewer("k", Entry(9), &replaced, nullptr));
  IndexEntry e;
  REQUIRE(idx.Find("k", &e));
  CHECK(e.deleted);
  CHECK(e.lsn == 9);
  idx.EraseIf([](std::string_view, const IndexEntry& x) { return x.deleted; });
  CHECK_FALSE(idx.Find("k", &e));
  CHECK(idx.size() == 0);
}

TEST_CASE("KeyIndex holds a million keys through deletes, re-inserts and rebuilds") {
  constexpr uint64_t kKeys = 1000000;
  KeyIndex idx;
  for (uint64_t i = 0; i < kKeys; i++) idx.Put(Key(i), Entry(i + 1, 1, i, 100));
  CHECK(idx.size() == kKeys);
  // Memory per key beyond the key's own 16 bytes (the design's target: 40).
  const double per_key = static_cast<double>(idx.MemoryBytes()) / kKeys - 16;
  CHECK(per_key <= 40);

  // Delete every third key, overwrite every fifth, then re-insert the deleted.
  for (uint64_t i = 0; i < kKeys; i += 3) CHECK(idx.Erase(Key(i)));
  CHECK(idx.size() == kKeys - (kKeys + 2) / 3);
  for (uint64_t i = 0; i < kKeys; i += 5) idx.Put(Key(i), Entry(2 * kKeys + i, 2, i, 7));
  for (uint64_t i = 0; i < kKeys; i += 3) {
    if (i % 5 != 0) idx.Put(Key(i), Entry(3 * kKeys + i, 3, i, 9));
  }
  // Grow past the first size (rebuilds with a compacting arena), then shrink back.
  for (uint64_t i = kKeys; i < kKeys + 300000; i++) idx.Put(Key(i), Entry(i + 1, 4, i, 1));
  for (uint64_t i = kKeys; i < kKeys + 300000; i++) CHECK(idx.Erase(Key(i)));
  CHECK(idx.size() == kKeys);

  size_t bad = 0;
  IndexEntry e;
  for (uint64_t i = 0; i < kKeys; i++) {
    uint64_t want = i % 5 == 0 ? 2 * kKeys + i : i % 3 == 0 ? 3 * kKeys + i : i + 1;
    if (!idx.Find(Key(i), &e) || e.lsn != want || e.offset != i) bad++;
  }
  CHECK(bad == 0);
  CHECK_FALSE(idx.Find(Key(kKeys + 1), &e));
  size_t visited = 0;
  idx.ForEach([&](std::string_view k, const IndexEntry&) { visited += k.size() == 16; });
  CHECK(visited == kKeys);
}

TEST_CASE("KeyIndex agrees with std::unordered_map under random operations") {
  KeyIndex idx;
  std::unordered_map<std::string, uint64_t> ref;
  uint64_t x = 88172645463325252ull;
  for (uint64_t step = 1; step <= 200000; step++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const std::string key = "k" + std::to_string(x % 5000);
    if ((x >> 20) % 3 == 0) {
      IndexEntry old;
      const bool had = idx.Erase(key, &old);
      auto it = ref.find(key);
      REQUIRE(had == (it != ref.end()));
      if (had) {
        CHECK(old.lsn == it->second);
        ref.erase(it);
      }
    } else {
      idx.Put(key, Entry(step));
      ref[key] = step;
    }
  }
  CHECK(idx.size() == ref.size());
  for (auto& [k, lsn] : ref) {
    IndexEntry e;
    REQUIRE(idx.Find(k, &e));
    CHECK(e.lsn == lsn);
  }
}

// Run by the test below in a new process of this binary: prints its seed.
TEST_CASE("KeyIndex seed of this process (prints it when DISTKV_PRINT_SEED is set)") {
  if (std::getenv("DISTKV_PRINT_SEED") == nullptr) return;
  std::printf("seed=%llu\n", static_cast<unsigned long long>(KeyIndex().hash_seed()));
}

TEST_CASE("KeyIndex seeds its key hash once per process, with a different seed in each") {
  KeyIndex a, b;
  CHECK(a.hash_seed() == b.hash_seed());  // one seed for the process
  std::set<unsigned long long> seeds = {a.hash_seed()};
  char self[4096] = {0};
  REQUIRE(::readlink("/proc/self/exe", self, sizeof self - 1) > 0);
  const std::string command = std::string("DISTKV_PRINT_SEED=1 '") + self +
                              "' -tc='KeyIndex seed of this process*' 2>/dev/null";
  for (int i = 0; i < 2; ++i) {
    FILE* child = ::popen(command.c_str(), "r");
    REQUIRE(child != nullptr);
    char line[256];
    unsigned long long seed = 0;
    while (std::fgets(line, sizeof line, child)) std::sscanf(line, "seed=%llu", &seed);
    ::pclose(child);
    CHECK(seed != 0);
    seeds.insert(seed);
  }
  CHECK(seeds.size() == 3);
}

TEST_CASE(
    "KeyIndex::Reserve sizes the table once for that many keys; ShrinkToFit gives back the rest") {
  KeyIndex idx;
  constexpr uint64_t kKeys = 200'000;
  idx.Reserve(kKeys);
  const size_t reserved = idx.capacity();
  CHECK(reserved >= kKeys);
  for (uint64_t i = 0; i < kKeys; i++) idx.Put(Key(i), Entry(i + 1, 1, i, 7));
  CHECK(idx.capacity() == reserved);  // no rebuild on the way
  // Reserving what is there already, or less, changes nothing.
  idx.Reserve(kKeys / 2);
  CHECK(idx.capacity() == reserved);

  // Reserved for far more than came (hint entries of overwritten keys):
  // ShrinkToFit rebuilds for the keys there are, every entry intact.
  KeyIndex over;
  over.Reserve(10 * kKeys);
  for (uint64_t i = 0; i < kKeys; i++) over.Put(Key(i), Entry(i + 1, 2, i, 9));
  const size_t big = over.capacity();
  over.ShrinkToFit();
  CHECK(over.capacity() < big / 2);
  CHECK(over.size() == kKeys);
  for (uint64_t i = 0; i < kKeys; i += 997) {
    IndexEntry e;
    REQUIRE(over.Find(Key(i), &e));
    CHECK(e.lsn == i + 1);
    CHECK(e.offset == i);
  }
  // A table its keys fill is left alone.
  const size_t fitted = over.capacity();
  over.ShrinkToFit();
  CHECK(over.capacity() == fitted);
}
