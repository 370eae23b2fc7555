// Store basics: put/get/overwrite/delete, each checked again after a reopen;
// value and key edge cases; segment rolling; the directory lock; limits.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

// Runs check on the open store, then again after closing and reopening it.
template <typename Fn>
void CheckAndReopen(const Options& o, std::unique_ptr<Store>* s, Fn check) {
  check(**s);
  REQUIRE((*s)->Flush().ok());
  s->reset();
  *s = MustOpen(o);
  check(**s);
}

size_t SegmentFiles(const std::string& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    uint64_t id;
    n += ParseSegmentFileName(e.path().filename().string(), &id);
  }
  return n;
}

}  // namespace

TEST_CASE("put, get, overwrite and delete survive a reopen") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  uint64_t lsn = 0;

  REQUIRE(s->Put("alpha", "one", &lsn).ok());
  CHECK(lsn == 1);
  CheckAndReopen(o, &s, [](Store& st) {
    CHECK(GetOr(st, "alpha") == "one");
    CHECK(st.size() == 1);
  });

  REQUIRE(s->Put("alpha", "two", &lsn).ok());
  CHECK(lsn == 2);
  CheckAndReopen(o, &s, [](Store& st) {
    std::string v;
    uint64_t got_lsn = 0;
    REQUIRE(st.Get("alpha", &v, &got_lsn).ok());
    CHECK(v == "two");
    CHECK(got_lsn == 2);
    uint64_t looked = 0;
    REQUIRE(st.Lookup("alpha", &looked).ok());
    CHECK(looked == 2);
  });

  REQUIRE(s->Put("beta", "b", &lsn).ok());
  REQUIRE(s->Remove("alpha", &lsn).ok());
  CHECK(lsn == 4);
  CheckAndReopen(o, &s, [](Store& st) {
    CHECK(GetOr(st, "alpha") == "<absent>");
    uint64_t l;
    CHECK(st.Lookup("alpha", &l).IsNotFound());
    CHECK(GetOr(st, "beta") == "b");
    CHECK(st.size() == 1);
    CHECK(st.last_lsn() == 4);
  });

  // Removing an absent key stages nothing.
  CHECK(s->Remove("alpha", &lsn).IsNotFound());
  CHECK_FALSE(s->HasStaged());
  CHECK(s->last_lsn() == 4);

  // A key deleted and written again.
  REQUIRE(s->Put("alpha", "three", &lsn).ok());
  CheckAndReopen(o, &s, [](Store& st) { CHECK(GetOr(st, "alpha") == "three"); });
}

TEST_CASE("empty and 16 MiB values") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 1 << 20;  // the big value is larger than a segment
  auto s = MustOpen(o);
  std::string big(16 << 20, '\0');
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  uint64_t lsn;
  REQUIRE(s->Put("empty", "", &lsn).ok());
  REQUIRE(s->Put("big", big, &lsn).ok());
  REQUIRE(s->Put("after", "x", &lsn).ok());
  CheckAndReopen(o, &s, [&](Store& st) {
    std::string v = "junk";
    REQUIRE(st.Get("empty", &v).ok());
    CHECK(v.empty());
    REQUIRE(st.Get("big", &v).ok());
    CHECK(v.size() == big.size());
    CHECK(v == big);
    CHECK(GetOr(st, "after") == "x");
  });
  // The 16 MiB record sits alone in its own segment: 1 (empty) + big + after.
  CHECK(SegmentFiles(dir.path()) == 3);
}

TEST_CASE("binary keys with NUL bytes are distinct keys") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  const std::string k1("a\0b", 3), k2("a\0c", 3), k3("a", 1), k4(std::string(1, '\0'));
  const std::string v1("\0\1\2", 3);
  uint64_t lsn;
  REQUIRE(s->Put(k1, v1, &lsn).ok());
  REQUIRE(s->Put(k2, "two", &lsn).ok());
  REQUIRE(s->Put(k3, "three", &lsn).ok());
  REQUIRE(s->Put(k4, "nul", &lsn).ok());
  CheckAndReopen(o, &s, [&](Store& st) {
    CHECK(st.size() == 4);
    CHECK(GetOr(st, k1) == v1);
    CHECK(GetOr(st, k2) == "two");
    CHECK(GetOr(st, k3) == "three");
    CHECK(GetOr(st, k4) == "nul");
    CHECK(GetOr(st, std::string("a\0", 2)) == "<absent>");
  });
}

TEST_CASE("segments roll at segment_bytes and every key stays readable") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 4096;
  auto s = MustOpen(o);
  const std::string value(100, 'v');
  const uint64_t rec = EncodedRecordSize(6, value.size());
  uint64_t lsn;
  for (int i = 0; i < 200; i++) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%05d", i);
    REQUIRE(s->Put(key, value + std::to_string(i), &lsn).ok());
    if (i % 7 == 0) REQUIRE(s->Flush().ok());  // batches both inside and across segments
  }
  REQUIRE(s->Flush().ok());
  // Records never straddle a seal: each segment holds floor(4096 / rec) of them, at most.
  const uint64_t per_segment = 4096 / (rec + 3);
  CHECK(s->Stats().segments >= 200 / per_segment);
  for (auto& e : std::filesystem::directory_iterator(dir.path())) {
    uint64_t id;
    if (ParseSegmentFileName(e.path().filename().string(), &id)) {
      CHECK(std::filesystem::file_size(e.path()) <= 4096);
    }
  }
  CheckAndReopen(o, &s, [&](Store& st) {
    CHECK(st.size() == 200);
    for (int i = 0; i < 200; i++) {
      char key[16];
      std::snprintf(key, sizeof(key), "k%05d", i);
      CHECK(GetOr(st, key) == value + std::to_string(i));
    }
  });
  CHECK(SegmentFiles(dir.path()) == s->Stats().segments);
}

TEST_CASE("a second open of the same directory is refused") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto first = MustOpen(o);
  std::unique_ptr<Store> second;
  Status st = Store::Open(o, &second);
  CHECK(st.IsBusy());
  CHECK(second == nullptr);
  first.reset();
  CHECK(Store::Open(o, &second).ok());  // released with the first store
}

TEST_CASE("another process cannot open a directory this one holds") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto held = MustOpen(o);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::unique_ptr<Store> s;
    Status st = Store::Open(o, &s);
    ::_exit(st.IsBusy() ? 0 : 1);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);  // the child was told Busy
}

TEST_CASE("keys and values outside the limits are refused") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  uint64_t lsn;
  CHECK(s->Put("", "v", &lsn).IsInvalidArgument());
  CHECK(s->Put(std::string(64 * 1024 + 1, 'k'), "v", &lsn).IsInvalidArgument());
  CHECK(s->Put(std::string(64 * 1024, 'k'), "v", &lsn).ok());
  CHECK(s->Remove("", &lsn).IsInvalidArgument());
  CHECK(s->last_lsn() == 1);
}

TEST_CASE("LSNs strictly increase across reopens") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  uint64_t prev = 0;
  for (int round = 0; round < 4; round++) {
    auto s = MustOpen(o);
    CHECK(s->last_lsn() == prev);
    CHECK(s->durable_lsn() == prev);
    for (int i = 0; i < 3; i++) {
      uint64_t lsn;
      REQUIRE(s->Put("k" + std::to_string(i), "v", &lsn).ok());
      CHECK(lsn == prev + 1);
      prev = lsn;
    }
    uint64_t lsn;
    REQUIRE(s->Remove("k0", &lsn).ok());
    CHECK(lsn == prev + 1);
    prev = lsn;
    REQUIRE(s->Flush().ok());
  }
}

TEST_CASE("ForEach visits every live key once with its value and LSN") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  uint64_t lsn;
  for (int i = 0; i < 50; i++)
    REQUIRE(s->Put("k" + std::to_string(i), "v" + std::to_string(i), &lsn).ok());
  REQUIRE(s->Flush().ok());
  REQUIRE(s->Remove("k3", &lsn).ok());
  REQUIRE(s->Put("k4", "new", &lsn).ok());  // staged, not flushed: still visible
  std::map<std::string, std::pair<std::string, uint64_t>> seen;
  REQUIRE(s->ForEach([&](std::string_view k, std::string_view v, uint64_t l) {
             CHECK(seen.emplace(std::string(k), std::make_pair(std::string(v), l)).second);
           }).ok());
  CHECK(seen.size() == 49);
  CHECK(seen.count("k3") == 0);
  CHECK(seen["k4"] == std::make_pair(std::string("new"), lsn));
  CHECK(seen["k7"].first == "v7");
}

TEST_CASE("Stats counts keys, bytes, batches and segments, and recovery agrees") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  uint64_t lsn;
  REQUIRE(s->Put("a", "1", &lsn).ok());
  REQUIRE(s->Put("b", "2", &lsn).ok());
  REQUIRE(s->Flush().ok());
  REQUIRE(s->Put("a", "3", &lsn).ok());
  REQUIRE(s->Remove("b", &lsn).ok());
  REQUIRE(s->Flush().ok());
  StoreStats st = s->Stats();
  const uint64_t rec = EncodedRecordSize(1, 1), tomb = EncodedRecordSize(1, 0);
  CHECK(st.keys == 1);
  CHECK(st.live_bytes == rec);
  CHECK(st.dead_bytes == 3 * rec + tomb - rec);
  CHECK(st.segments == 1);
  CHECK(st.last_lsn == 4);
  CHECK(st.durable_lsn == 4);
  CHECK(st.batches == 2);
  CHECK(st.batch_records == 4);
  CHECK(st.index_bytes > 0);

  REQUIRE(s->Remove("a", &lsn).ok());  // a tombstone that recovery must account for
  REQUIRE(s->Put("c", "5", &lsn).ok());
  REQUIRE(s->Flush().ok());
  st = s->Stats();
  s.reset();
  s = MustOpen(o);
  const StoreStats re = s->Stats();
  CHECK(re.keys == st.keys);
  CHECK(re.live_bytes == st.live_bytes);
  CHECK(re.dead_bytes == st.dead_bytes);
  CHECK(re.last_lsn == st.last_lsn);
  CHECK(re.durable_lsn == st.durable_lsn);
}
