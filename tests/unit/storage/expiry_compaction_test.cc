// Expiry with what the storage engine does besides the log: hint files carry
// each put's expiry (a restart from hints knows it as a scan would), and a
// compaction drops the records of keys expired by the store's clock by the
// tombstone rule (not above keep_tombstones_after, raising the horizon),
// taking them out of the index; a store without a clock (a replica) drops
// nothing for expiry.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/hint_file.h"
#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSoon = 2'000;           // expires at 2 s on the test clock
constexpr uint64_t kLater = 4'000'000'000;  // far after the test

size_t CountFiles(const std::string& dir, const std::string& ext) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ext;
  return n;
}

// Writes ttl:* keys (half expiring soon, half later) and plain keys into
// small segments, then enough more to seal them all.
void Fill(Store& s) {
  uint64_t lsn;
  for (int i = 0; i < 200; i++) {
    const std::string n = std::to_string(i);
    REQUIRE(s.Put("ttl:" + n, "v" + n, &lsn, i % 2 ? kLater : kSoon).ok());
    REQUIRE(s.Put("plain:" + n, "p" + n, &lsn).ok());
  }
  for (int i = 0; i < 100; i++) REQUIRE(s.Put("tail:" + std::to_string(i), "t", &lsn).ok());
  REQUIRE(s.Flush().ok());
}

}  // namespace

TEST_CASE("expiry: hint files carry each put's expiry into a restart") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  o.segment_bytes = 4 << 10;
  {
    auto s = testing::MustOpen(o);
    Fill(*s);
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    REQUIRE(job);
    Status st = job->Run();
    s->FinishJob(std::move(job), st);
    REQUIRE(st.ok());
  }
  REQUIRE(CountFiles(dir.path(), ".hint") >= 3);
  auto s = testing::MustOpen(o);
  REQUIRE(s->Stats().hint_files == CountFiles(dir.path(), ".hint"));
  uint64_t now = 1'000;
  s->SetExpiryClock([&] { return now; });
  for (int i = 0; i < 200; i++) {
    const std::string n = std::to_string(i);
    CAPTURE(n);
    CHECK(s->ExpiryOf("ttl:" + n) == (i % 2 ? kLater : kSoon));
    CHECK(s->ExpiryOf("plain:" + n) == 0);
    std::string v;
    uint64_t expires = 0;
    REQUIRE(s->Get("ttl:" + n, &v, nullptr, &expires).ok());  // read through the hint's length
    CHECK(v == "v" + n);
    REQUIRE(s->Get("plain:" + n, &v).ok());
    CHECK(v == "p" + n);
  }
  now = kSoon;
  std::string v;
  CHECK(s->Get("ttl:0", &v).IsNotFound());
  CHECK(s->Get("ttl:1", &v).ok());
  CHECK(s->Stats().keys_with_ttl == 200);
}

TEST_CASE("expiry: compaction drops expired records by the tombstone rule, for good") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  o.segment_bytes = 4 << 10;
  uint64_t horizon = 0;
  {
    auto s = testing::MustOpen(o);
    uint64_t now = 1'000;
    s->SetExpiryClock([&] { return now; });
    Fill(*s);
    const uint64_t keys = s->size();
    now = kSoon;  // the even ttl:* keys have expired; nothing tombstoned them
    REQUIRE(s->Compact().ok());
    REQUIRE(s->Stats().compactions == 1);
    CHECK(s->size() == keys - 100);  // out of the index
    CHECK(s->Stats().keys_with_ttl == 100);
    horizon = s->Stats().tombstone_horizon;
    CHECK(horizon > 0);
  }
  // No clock now (as a replica, or the store embedded without one): a kept
  // expired record would read as present. The dropped ones are gone.
  auto s = testing::MustOpen(o);
  CHECK(s->Stats().tombstone_horizon == horizon);
  for (int i = 0; i < 200; i++) {
    const std::string n = std::to_string(i);
    CAPTURE(n);
    std::string v;
    if (i % 2) {
      REQUIRE(s->Get("ttl:" + n, &v).ok());
      CHECK(s->ExpiryOf("ttl:" + n) == kLater);
    } else {
      CHECK(s->Get("ttl:" + n, &v).IsNotFound());
    }
    CHECK(s->Get("plain:" + n, &v).ok());
  }
}

TEST_CASE(
    "expiry: compaction keeps expired records above keep_tombstones_after, or without a clock") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  o.segment_bytes = 4 << 10;
  {
    auto s = testing::MustOpen(o);
    Fill(*s);
    // No clock: nothing has expired for this store.
    REQUIRE(s->Compact().ok());
    CHECK(s->Stats().tombstone_horizon == 0);
    uint64_t now = kSoon;
    s->SetExpiryClock([&] { return now; });
    uint64_t lsn;
    for (int i = 0; i < 100; i++) REQUIRE(s->Put("more:" + std::to_string(i), "m", &lsn).ok());
    REQUIRE(s->Flush().ok());
    // A replica has nothing yet: every expired record must stay for it.
    CompactionOptions keep;
    keep.keep_tombstones_after = 0;
    REQUIRE(s->Compact(keep).ok());
    CHECK(s->Stats().tombstone_horizon == 0);
    std::string v;
    CHECK(s->Get("ttl:0", &v).IsNotFound());  // expired all the same
  }
  auto s = testing::MustOpen(o);
  std::string v;
  for (int i = 0; i < 200; i++) CHECK(s->Get("ttl:" + std::to_string(i), &v).ok());
  CHECK(s->ExpiryOf("ttl:0") == kSoon);
}
