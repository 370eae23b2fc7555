// Expiry in the store (record_format.h "Expiry", store.h SetExpiryClock):
// the record carries the time; a key reads as absent once the owner's clock
// passes it (Get, Lookup, Scan) and not before, nor without a clock (a
// replica); ExpiredKeys lists it for a tombstone; the time survives a
// restart, a replica's Apply (byte for byte) and a value too large to hold
// in recovery's buffer; a plain Put clears it; a failed batch restores it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "storage/faulty_io.h"
#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;

TEST_CASE("expiry: the record carries the time; old records and tombstones have none") {
  Record r;
  r.lsn = 9;
  r.key = "k";
  r.value = "value";
  r.expires_ms = 1'800'000'000'123ull;
  std::string buf;
  EncodeRecord(r, &buf);
  CHECK(buf.size() == EncodedRecordSize(1, 5 + kExpiryBytes));
  CHECK((static_cast<uint8_t>(buf[12]) & kExpiresBit) != 0);
  Record back;
  size_t used;
  REQUIRE(DecodeRecord(buf, &back, &used).ok());
  CHECK(back.type == RecordType::kPut);
  CHECK(back.value == "value");
  CHECK(back.expires_ms == r.expires_ms);
  // An expiry bit on a tombstone, or an expiry of 0, is damage.
  std::string bad = buf;
  bad[12] = static_cast<char>(static_cast<uint8_t>(RecordType::kDelete) | kExpiresBit);
  CHECK(DecodeRecord(bad, &back, &used).IsCorruption());
  r.expires_ms = 0;
  buf.clear();
  EncodeRecord(r, &buf);
  CHECK(static_cast<uint8_t>(buf[12]) == 1);  // unchanged for records without a TTL
}

TEST_CASE("expiry: a key is hidden once the clock passes its time, listed, then removed") {
  testing::TempDir dir;
  auto store = testing::MustOpen(testing::TestOptions(dir.path()));
  uint64_t now = 1000;
  store->SetExpiryClock([&] { return now; });
  uint64_t lsn;
  REQUIRE(store->Put("ttl:a", "A", &lsn, 2000).ok());
  REQUIRE(store->Put("plain", "P", &lsn).ok());
  std::string v;
  uint64_t expires = 0;
  REQUIRE(store->Get("ttl:a", &v, nullptr, &expires).ok());
  CHECK(v == "A");
  CHECK(expires == 2000);
  std::vector<std::string> due;
  store->ExpiredKeys(10, &due);
  CHECK(due.empty());

  now = 2000;  // the expiry time itself counts as expired
  CHECK(store->Get("ttl:a", &v).IsNotFound());
  CHECK(store->Lookup("ttl:a", &lsn).IsNotFound());
  ScanOptions so;
  so.limit = 100;
  so.max_slots = 1 << 20;
  ScanResult page;
  REQUIRE(store->Scan(so, &page).ok());
  REQUIRE(page.entries.size() == 1);
  CHECK(page.entries[0].key == "plain");
  store->ExpiredKeys(10, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0] == "ttl:a");

  // No clock (or a clock at 0): nothing expires — a replica's view.
  store->SetExpiryClock([] { return uint64_t{0}; });
  CHECK(store->Get("ttl:a", &v).ok());
  due.clear();
  store->ExpiredKeys(10, &due);
  CHECK(due.empty());

  store->SetExpiryClock([&] { return now; });
  REQUIRE(store->Remove("ttl:a", &lsn).ok());  // the owner's tombstone
  due.clear();
  store->ExpiredKeys(10, &due);
  CHECK(due.empty());
  CHECK(store->Stats().keys_with_ttl == 0);
  store->SetExpiryClock(nullptr);
  CHECK(store->Get("ttl:a", &v).IsNotFound());
}

TEST_CASE("expiry: a plain Put clears the TTL; the time survives a restart and large values") {
  testing::TempDir dir;
  const std::string big(5 << 20, 'b');  // above recovery's 4 MiB read buffer: streamed
  {
    auto store = testing::MustOpen(testing::TestOptions(dir.path()));
    uint64_t lsn;
    REQUIRE(store->Put("keep", "K", &lsn, 5'000).ok());
    REQUIRE(store->Put("clear", "C", &lsn, 5'000).ok());
    REQUIRE(store->Put("clear", "C2", &lsn).ok());
    REQUIRE(store->Put("big", big, &lsn, 7'000).ok());
    REQUIRE(store->Put("gone", "G", &lsn, 6'000).ok());
    REQUIRE(store->Remove("gone", &lsn).ok());
    REQUIRE(store->Flush().ok());
    CHECK(store->Stats().keys_with_ttl == 2);
  }
  auto store = testing::MustOpen(testing::TestOptions(dir.path()));
  CHECK(store->Stats().keys_with_ttl == 2);
  std::string v;
  uint64_t expires = 1;
  REQUIRE(store->Get("keep", &v, nullptr, &expires).ok());
  CHECK(v == "K");
  CHECK(expires == 5'000);
  REQUIRE(store->Get("clear", &v, nullptr, &expires).ok());
  CHECK(v == "C2");
  CHECK(expires == 0);
  REQUIRE(store->Get("big", &v, nullptr, &expires).ok());
  CHECK(v == big);
  CHECK(expires == 7'000);
  CHECK(store->Get("gone", &v).IsNotFound());
  store->SetExpiryClock([] { return uint64_t{6'500}; });
  std::vector<std::string> due;
  store->ExpiredKeys(10, &due);
  REQUIRE(due.size() == 1);
  CHECK(due[0] == "keep");
  CHECK(store->Get("big", &v).ok());
}

TEST_CASE("expiry: a replica's Apply keeps the time, and its log holds the same bytes") {
  testing::TempDir pdir, rdir;
  auto primary = testing::MustOpen(testing::TestOptions(pdir.path()));
  auto replica = testing::MustOpen(testing::TestOptions(rdir.path()));
  uint64_t lsn;
  REQUIRE(primary->Put("k", "v", &lsn, 12'345).ok());
  REQUIRE(primary->Flush().ok());
  std::unique_ptr<LogCursor> cursor;
  REQUIRE(primary->NewLogCursor(0, &cursor).ok());
  std::string stream;
  REQUIRE(cursor->Next(&stream, 1 << 20).ok());
  std::string_view rest = stream;
  while (!rest.empty()) {
    Record r;
    size_t n;
    REQUIRE(DecodeRecord(rest, &r, &n).ok());
    REQUIRE(replica->Apply(r).ok());
    rest.remove_prefix(n);
  }
  REQUIRE(replica->Flush().ok());
  std::unique_ptr<LogCursor> rcursor;
  REQUIRE(replica->NewLogCursor(0, &rcursor).ok());
  std::string copied;
  REQUIRE(rcursor->Next(&copied, 1 << 20).ok());
  CHECK(copied == stream);
  std::string v;
  uint64_t expires = 0;
  REQUIRE(replica->Get("k", &v, nullptr, &expires).ok());
  CHECK(expires == 12'345);
}

TEST_CASE("expiry: a failed batch undoes the TTL change with the write") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  int fail_writes = 0;
  o.fault_hook = [&](std::string_view step) { return step == "write" && fail_writes ? EIO : 0; };
  auto store = testing::MustOpen(o);
  uint64_t lsn;
  REQUIRE(store->Put("k", "v1", &lsn, 9'000).ok());
  REQUIRE(store->Flush().ok());
  fail_writes = 1;
  REQUIRE(store->Put("k", "v2", &lsn).ok());  // would clear the TTL
  CHECK_FALSE(store->Flush().ok());
  std::string v;
  uint64_t expires = 0;
  REQUIRE(store->Get("k", &v, nullptr, &expires).ok());
  CHECK(v == "v1");
  CHECK(expires == 9'000);
  CHECK(store->Stats().keys_with_ttl == 1);
}
