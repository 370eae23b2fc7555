// KeyIndex::Scan and Store::Scan: pages in hash order that return every key
// exactly once, also while keys come and go and the table is rebuilt
// between pages.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "storage/key_index.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;

namespace {

IndexEntry Entry(uint64_t lsn) {
  IndexEntry e;
  e.lsn = lsn;
  e.segment = 1;
  return e;
}

// Runs a whole scan in pages of `page_keys`, calling between(page number)
// after each page. Returns how often each key came back.
std::map<std::string, int> ScanAll(const KeyIndex& idx, size_t page_keys, size_t max_slots,
                                   const std::function<void(int)>& between) {
  std::map<std::string, int> seen;
  uint64_t cursor = 0;
  ScanPage page;
  for (int n = 0;; ++n) {
    idx.Scan(cursor, page_keys, max_slots, nullptr, &page);
    CHECK(page.items.size() <= page_keys);
    for (size_t i = 0; i < page.items.size(); ++i) {
      seen[std::string(page.items[i].key)]++;
      CHECK(page.items[i].hash >= cursor);
      if (i) CHECK(page.items[i - 1].hash <= page.items[i].hash);
    }
    if (page.end) break;
    CHECK(page.next > cursor);  // progress
    cursor = page.next;
    if (between) between(n);
  }
  return seen;
}

}  // namespace

TEST_CASE("KeyIndex::Scan returns every key exactly once, in pages of at most the limit") {
  for (size_t keys : {0, 1, 7, 20000}) {
    KeyIndex idx;
    for (size_t i = 0; i < keys; ++i) idx.Put("key-" + std::to_string(i), Entry(i + 1));
    auto seen = ScanAll(idx, 100, 65536, nullptr);
    CHECK(seen.size() == keys);
    for (const auto& [k, count] : seen) CHECK(count == 1);
  }
}

TEST_CASE(
    "KeyIndex::Scan: keys present throughout come back once while the table grows and "
    "shrinks between pages") {
  KeyIndex idx;
  std::set<std::string> stable;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "stable-" + std::to_string(i);
    idx.Put(k, Entry(1));
    stable.insert(k);
  }
  for (int i = 0; i < 5000; ++i) idx.Put("churn-" + std::to_string(i), Entry(1));
  const size_t cap_before = idx.capacity();
  int next_churn = 5000;
  auto seen = ScanAll(idx, 100, 65536, [&](int page) {
    // Grow: 300 new keys a page (several rebuilds over the scan); shrink:
    // erase old churn keys, which leaves deleted slots and freed arena.
    for (int j = 0; j < 300; ++j) idx.Put("churn-" + std::to_string(next_churn++), Entry(2));
    for (int j = 0; j < 100; ++j) idx.Erase("churn-" + std::to_string(page * 100 + j));
  });
  CHECK(idx.capacity() > cap_before);  // the table was rebuilt during the scan
  for (const std::string& k : stable) {
    INFO(k);
    CHECK(seen[k] == 1);
  }
  for (const auto& [k, count] : seen) CHECK(count == 1);  // nothing twice, churn included
}

TEST_CASE("KeyIndex::Scan skips tombstoned entries and honours match and the slot budget") {
  KeyIndex idx;
  for (int i = 0; i < 2000; ++i) idx.Put("a" + std::to_string(i), Entry(1));
  for (int i = 0; i < 20; ++i) idx.Put("b" + std::to_string(i), Entry(1));
  IndexEntry dead = Entry(2);
  dead.deleted = true;
  idx.Put("b-dead", dead);
  std::set<std::string> got;
  uint64_t cursor = 0;
  ScanPage page;
  int pages = 0;
  for (;; ++pages) {
    // A budget of 64 slots: pages come back short or empty, never wrong.
    idx.Scan(
        cursor, 5, 64, [](std::string_view k) { return k.starts_with("b"); }, &page);
    for (const ScanItem& it : page.items) CHECK(got.insert(std::string(it.key)).second);
    if (page.end) break;
    cursor = page.next;
  }
  CHECK(got.size() == 20);
  CHECK(got.count("b-dead") == 0);
  CHECK(pages > 4);  // the budget, not the key count, ended most pages
}

TEST_CASE("Store::Scan pages values and LSNs, with a prefix") {
  testing::TempDir dir;
  auto store = testing::MustOpen(testing::TestOptions(dir.path()));
  uint64_t lsn;
  for (int i = 0; i < 300; ++i) {
    REQUIRE(store->Put("user:" + std::to_string(i), "v" + std::to_string(i), &lsn).ok());
    REQUIRE(store->Put("order:" + std::to_string(i), "o", &lsn).ok());
  }
  REQUIRE(store->Remove("user:7", &lsn).ok());
  REQUIRE(store->Flush().ok());
  ScanOptions o;
  o.prefix = "user:";
  o.values = true;
  o.limit = 50;
  std::map<std::string, std::string> got;
  for (;;) {
    ScanResult r;
    REQUIRE(store->Scan(o, &r).ok());
    for (const auto& e : r.entries) {
      CHECK(e.lsn > 0);
      CHECK(got.emplace(e.key, e.value).second);
    }
    if (r.end) break;
    o.cursor = r.next;
  }
  CHECK(got.size() == 299);
  CHECK(got.count("user:7") == 0);
  CHECK(got["user:42"] == "v42");
}

TEST_CASE("KeyIndex::Scan on small tables, every size from 0 to 300 keys, small pages") {
  for (int n = 0; n <= 300; ++n) {
    KeyIndex idx;
    for (int i = 0; i < n; ++i) idx.Put("lib:" + std::to_string(i), Entry(1));
    for (size_t page_keys : {1, 3, 7}) {
      auto seen = ScanAll(idx, page_keys, 65536, nullptr);
      INFO("keys " << n << " page " << page_keys);
      CHECK(seen.size() == static_cast<size_t>(n));
    }
  }
}

TEST_CASE("scan order: indexes with the same seed order keys alike (a cursor outlives a restart)") {
  KeyIndex a(42), b(42);
  IndexEntry e;
  e.lsn = 1;
  for (int i = 0; i < 500; ++i) a.Put("k" + std::to_string(i), e);
  for (int i = 499; i >= 0; --i) b.Put("k" + std::to_string(i), e);  // another history
  ScanPage pa, pb;
  a.Scan(0, 1000, 1 << 20, nullptr, &pa);
  b.Scan(0, 1000, 1 << 20, nullptr, &pb);
  REQUIRE(pa.items.size() == 500);
  REQUIRE(pb.items.size() == 500);
  for (size_t i = 0; i < 500; ++i) CHECK(pa.items[i].key == pb.items[i].key);
}
