// Group commit: staged records are readable before they are written, batches
// run on any thread, and a failed batch is undone together with everything
// staged after it, leaving the store usable.
#include <doctest/doctest.h>

#include <errno.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

// Fails the named batch step with err while armed.
struct Fault {
  std::atomic<bool> armed{false};
  std::string step;
  int err = 0;
  void Install(Options* o) {
    o->fault_hook = [this](std::string_view s) { return armed && s == step ? err : 0; };
  }
};

}  // namespace

TEST_CASE("staged records are readable before, during and after their batch") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  uint64_t lsn;
  REQUIRE(s->Put("a", "1", &lsn).ok());
  CHECK(s->HasStaged());
  CHECK(s->durable_lsn() == 0);
  CHECK(GetOr(*s, "a") == "1");

  auto b = s->TakeBatch();
  REQUIRE(b != nullptr);
  CHECK(b->first_lsn() == 1);
  CHECK(b->last_lsn() == 1);
  CHECK(b->records() == 1);
  CHECK(b->bytes() == EncodedRecordSize(1, 1));
  CHECK(s->BatchInFlight());
  CHECK_FALSE(s->HasStaged());
  CHECK(s->TakeBatch() == nullptr);  // one batch in flight at a time

  REQUIRE(s->Put("b", "2", &lsn).ok());  // staged behind the batch in flight
  CHECK(GetOr(*s, "a") == "1");
  CHECK(GetOr(*s, "b") == "2");
  CHECK(s->TakeBatch() == nullptr);

  REQUIRE(b->Run().ok());
  CHECK(GetOr(*s, "a") == "1");
  s->FinishBatch(std::move(b), Status::OK());
  CHECK(s->durable_lsn() == 1);
  CHECK(s->last_lsn() == 2);
  CHECK(GetOr(*s, "a") == "1");
  CHECK(GetOr(*s, "b") == "2");

  b = s->TakeBatch();
  REQUIRE(b != nullptr);
  CHECK(b->first_lsn() == 2);
  REQUIRE(b->Run().ok());
  s->FinishBatch(std::move(b), Status::OK());
  CHECK(s->durable_lsn() == 2);
  CHECK(s->Stats().batches == 2);
  CHECK(s->TakeBatch() == nullptr);
}

TEST_CASE("a batch runs on another thread while the owner stages and reads") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.fsync = FsyncMode::kAlways;
  o.segment_bytes = 8192;
  auto s = MustOpen(o);
  uint64_t lsn;
  int next = 0;
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 50; i++, next++) {
      REQUIRE(s->Put("k" + std::to_string(next), std::string(64, 'a' + round % 26), &lsn).ok());
    }
    auto b = s->TakeBatch();
    REQUIRE(b != nullptr);
    Status result;
    std::thread t([&] { result = b->Run(); });
    for (int i = 0; i < 20; i++, next++) {
      REQUIRE(s->Put("k" + std::to_string(next), std::string(64, 'a' + round % 26), &lsn).ok());
    }
    for (int k = 0; k < next; k += 7) CHECK(GetOr(*s, "k" + std::to_string(k)).size() == 64);
    t.join();
    REQUIRE(result.ok());
    s->FinishBatch(std::move(b), result);
  }
  REQUIRE(s->Flush().ok());
  s.reset();
  s = MustOpen(o);
  CHECK(s->size() == static_cast<uint64_t>(next));
}

TEST_CASE("a failed batch is rolled back with everything staged after it") {
  // (A failed sync is not rolled back: see the fsyncgate tests.)
  for (const char* step : {"write", "create", "manifest"}) {
    for (int err : {ENOSPC, EIO}) {
      CAPTURE(step);
      CAPTURE(err);
      TempDir dir;
      Fault fault;
      fault.step = step;
      fault.err = err;
      Options o = TestOptions(dir.path());
      o.fsync = FsyncMode::kAlways;
      o.segment_bytes = 200;
      fault.Install(&o);
      auto s = MustOpen(o);
      uint64_t lsn;
      REQUIRE(s->Put("a", "old", &lsn).ok());
      REQUIRE(s->Put("d", "doomed later", &lsn).ok());
      REQUIRE(s->Flush().ok());
      const StoreStats before = s->Stats();
      // The file's records, without the space pre-allocated after them (the
      // last record ends in its value, "...later", not in a zero byte).
      std::string seg1 = ReadFile(dir.file(SegmentFileName(1)));
      seg1.resize(seg1.find_last_not_of('\0') + 1);

      // The batch overwrites a, deletes d, adds b and, with a value larger
      // than what is left of the segment, rolls into a new segment file.
      REQUIRE(s->Put("a", "new", &lsn).ok());
      REQUIRE(s->Remove("d", &lsn).ok());
      REQUIRE(s->Put("b", std::string(150, 'b'), &lsn).ok());
      auto b = s->TakeBatch();
      REQUIRE(b != nullptr);
      REQUIRE(s->Put("c", "staged after", &lsn).ok());
      CHECK(lsn == 6);
      fault.armed = true;
      Status result = b->Run();
      fault.armed = false;
      if (err == ENOSPC) {
        CHECK(result.IsNoSpace());
      } else {
        CHECK(result.IsIOError());
      }
      s->FinishBatch(std::move(b), result);

      CHECK_FALSE(s->HasStaged());
      CHECK(s->last_lsn() == 2);
      CHECK(s->durable_lsn() == 2);
      CHECK(GetOr(*s, "a") == "old");
      CHECK(GetOr(*s, "d") == "doomed later");
      CHECK(GetOr(*s, "b") == "<absent>");
      CHECK(GetOr(*s, "c") == "<absent>");
      const StoreStats after = s->Stats();
      CHECK(after.keys == before.keys);
      CHECK(after.live_bytes == before.live_bytes);
      CHECK(after.dead_bytes == before.dead_bytes);
      CHECK(after.segments == 1);
      CHECK(after.failed_batches == 1);
      CHECK(ReadFile(dir.file(SegmentFileName(1))) == seg1);  // cut back, pre-allocation too
      CHECK_FALSE(std::filesystem::exists(dir.file(SegmentFileName(2))));

      // Still usable; the failed LSNs (3-6) are never used again: a gap
      // record takes LSN 7.
      REQUIRE(s->Put("e", "after the failure", &lsn).ok());
      CHECK(lsn == 8);
      REQUIRE(s->Put("b", std::string(150, 'B'), &lsn).ok());
      REQUIRE(s->Flush().ok());
      s.reset();
      s = MustOpen(o);
      CHECK(GetOr(*s, "a") == "old");
      CHECK(GetOr(*s, "e") == "after the failure");
      CHECK(GetOr(*s, "b") == std::string(150, 'B'));
      CHECK(GetOr(*s, "c") == "<absent>");
      CHECK(s->last_lsn() == 9);
    }
  }
}

TEST_CASE("fsync modes decide when a batch syncs") {
  TempDir dir;
  uint64_t lsn;
  SUBCASE("always: every batch syncs") {
    Options o = TestOptions(dir.path());
    o.fsync = FsyncMode::kAlways;
    auto s = MustOpen(o);
    for (int i = 0; i < 3; i++) {
      REQUIRE(s->Put("k", "v", &lsn).ok());
      REQUIRE(s->Flush().ok());
    }
    CHECK(s->Stats().syncs == 4);  // and the directory's, when the first batch created the file
    CHECK(s->TakeBatch(true) == nullptr);  // nothing awaits a sync
  }
  SUBCASE("never: no batch syncs") {
    Options o = TestOptions(dir.path());
    o.fsync = FsyncMode::kNever;
    auto s = MustOpen(o);
    for (int i = 0; i < 3; i++) {
      REQUIRE(s->Put("k", "v", &lsn).ok());
      REQUIRE(s->Flush().ok());
    }
    CHECK(s->Stats().syncs == 1);  // the directory's, when the first batch created the file
  }
  SUBCASE("everysec: a sync-only batch when forced, none when nothing is unsynced") {
    Options o = TestOptions(dir.path());
    o.fsync = FsyncMode::kEverySec;
    auto s = MustOpen(o);
    REQUIRE(s->Put("k", "v", &lsn).ok());
    REQUIRE(s->Flush().ok());      // just opened: less than a second since the last sync
    CHECK(s->Stats().syncs == 1);  // the directory's only, for the new file
    auto b = s->TakeBatch(true);
    REQUIRE(b != nullptr);
    CHECK(b->records() == 0);
    REQUIRE(b->Run().ok());
    s->FinishBatch(std::move(b), Status::OK());
    CHECK(s->Stats().syncs == 2);
    CHECK(s->durable_lsn() == 1);
    CHECK(s->TakeBatch(true) == nullptr);
    REQUIRE(s->Put("k", "w", &lsn).ok());
    b = s->TakeBatch(true);  // forced with records: written and synced
    REQUIRE(b != nullptr);
    REQUIRE(b->Run().ok());
    s->FinishBatch(std::move(b), Status::OK());
    CHECK(s->Stats().syncs == 3);
  }
}

TEST_CASE("Apply stages records with the primary's LSNs and refuses a hole") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  REQUIRE(s->Apply(1, false, "a", "1").ok());
  REQUIRE(s->Apply(2, true, "missing", "").ok());  // a tombstone for an absent key is still logged
  CHECK(s->Apply(4, false, "b", "2").IsInvalidArgument());  // LSN 3 missing
  CHECK(s->Apply(2, false, "c", "3").IsInvalidArgument());
  // A gap record may skip LSNs, but only continuing from the last one.
  const uint64_t history = 0x1234;
  const std::string bad_gap = EncodeGapValue(1, history);
  CHECK(s->Apply(Record{5, RecordType::kGap, {}, bad_gap}).IsInvalidArgument());
  const std::string gap = EncodeGapValue(2, history);
  REQUIRE(s->Apply(Record{5, RecordType::kGap, {}, gap}).ok());
  CHECK(s->history_id() == history);  // the primary's history, learned from the log
  REQUIRE(s->Apply(6, false, "b", "2").ok());
  CHECK(s->Apply(7, true, "a", "x").IsInvalidArgument());
  CHECK(s->last_lsn() == 6);
  REQUIRE(s->Apply(7, true, "a", "").ok());
  REQUIRE(s->Flush().ok());
  s.reset();
  s = MustOpen(o);
  CHECK(s->last_lsn() == 7);
  CHECK(s->history_id() == history);
  CHECK(GetOr(*s, "a") == "<absent>");
  uint64_t lsn = 0;
  REQUIRE(s->Lookup("b", &lsn).ok());
  CHECK(lsn == 6);
  // Dead: the put of a, its tombstone, the tombstone of the absent key, the gap.
  CHECK(s->Stats().dead_bytes == EncodedRecordSize(1, 1) + EncodedRecordSize(1, 0) +
                                     EncodedRecordSize(7, 0) +
                                     EncodedRecordSize(0, kGapValueBytes));
}

TEST_CASE("ApplyEncoded logs the received bytes as they are and refuses a size mismatch") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  std::string stream;  // the records as a primary would send them
  Record put{1, RecordType::kPut, "a", "1"};
  put.group_continues = true;
  EncodeRecord(put, &stream);
  Record expiring{2, RecordType::kPut, "b", "2"};
  expiring.expires_ms = 4102444800000;
  EncodeRecord(expiring, &stream);
  const std::string gap = EncodeGapValue(2, 0x77);
  EncodeRecord(Record{4, RecordType::kGap, {}, gap}, &stream);
  EncodeRecord(Record{5, RecordType::kDelete, "a", {}}, &stream);
  std::string_view rest = stream;
  while (!rest.empty()) {
    Record r;
    size_t used;
    REQUIRE(DecodeRecord(rest, &r, &used).ok());
    // A size that is not the record's is refused, and nothing is staged.
    CHECK(s->ApplyEncoded(r, rest.substr(0, used - 1)).IsInvalidArgument());
    REQUIRE(s->ApplyEncoded(r, rest.substr(0, used)).ok());
    rest.remove_prefix(used);
  }
  REQUIRE(s->Flush().ok());
  CHECK(s->last_lsn() == 5);
  s.reset();  // a clean close: the file holds its records alone
  // The same log as the primary's, but for bit 0x20, which marks this
  // store's own write (one, here): set on every record but the last.
  std::string marked = stream;
  for (size_t at = 0; at < marked.size();) {
    uint64_t total;
    REQUIRE(CheckRecordHeader(std::string_view(marked).substr(at), &total).ok());
    SetWriteContinues(marked.data() + at, total, at + total < marked.size());
    at += total;
  }
  CHECK(marked != stream);
  CHECK(ReadFile(dir.file(SegmentFileName(1))) == marked);
  s.reset();
  s = MustOpen(o);
  CHECK(s->last_lsn() == 5);
  CHECK(s->history_id() == 0x77);
  CHECK(GetOr(*s, "a") == "<absent>");
  CHECK(GetOr(*s, "b") == "2");
}
