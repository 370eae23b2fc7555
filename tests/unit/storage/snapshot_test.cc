// Snapshots: a store built from another's snapshot holds exactly its live
// data and continues after the snapshot's LSN; a snapshot read while the
// source writes and compacts is the data as of its LSN; staging it and
// swapping it in survives a power cut at every file-system call (the old
// store or the new one, never a mix); a damaged record is refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "storage/faulty_io.h"
#include "storage/file_util.h"
#include "storage/record_format.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

using Contents = std::map<std::string, std::string>;

Contents Dump(Store& s) {
  Contents c;
  REQUIRE(s.ForEach([&](std::string_view k, std::string_view v, uint64_t) {
             c[std::string(k)] = std::string(v);
           }).ok());
  return c;
}

Options FaultyOptions(FaultyIo* io, const std::string& dir) {
  Options o;
  o.dir = dir;
  o.io = io;
  o.fsync = FsyncMode::kAlways;
  o.segment_bytes = 4 << 10;
  return o;
}

// Source: 300 keys written three times, every fifth deleted.
Contents FillSource(Store& s) {
  Contents want;
  uint64_t lsn;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 300; i++) {
      const std::string k = "key-" + std::to_string(i);
      const std::string v = "new-" + std::to_string(i) + "-" + std::to_string(round);
      REQUIRE(s.Put(k, v, &lsn).ok());
      want[k] = v;
    }
  }
  for (int i = 0; i < 300; i += 5) {
    REQUIRE(s.Remove("key-" + std::to_string(i), &lsn).ok());
    want.erase("key-" + std::to_string(i));
  }
  REQUIRE(s.Flush().ok());
  return want;
}

// The replica's data before a snapshot replaces it: one key, "stale".
Contents MakeStaleReplica(FaultyIo* io) {
  auto replica = MustOpen(FaultyOptions(io, "/replica"));
  uint64_t lsn;
  REQUIRE(replica->Put("stale", "x", &lsn).ok());
  REQUIRE(replica->Flush().ok());
  return Dump(*replica);
}

// Streams source's snapshot into dir's staging directory and finishes it.
Status Stage(Store& source, Io* io, const std::string& dir, uint64_t* lsn) {
  std::unique_ptr<SnapshotCursor> c;
  Status s = source.NewSnapshot(nullptr, &c);
  if (!s.ok()) return s;
  *lsn = c->lsn();
  std::unique_ptr<SnapshotWriter> w;
  s = SnapshotWriter::Create(io, dir, c->lsn(), source.history_id(), 4 << 10, &w);
  bool done = false;
  while (s.ok() && !done) {
    std::string out;
    s = c->Next(&out, 1500, &done);
    if (s.ok()) s = w->Add(out);
  }
  if (s.ok()) s = w->Finish();
  return s;
}

}  // namespace

TEST_CASE("snapshot: a store built from a snapshot has the live data and goes on after its LSN") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  const Contents want = FillSource(*source);
  Contents old;
  {
    auto replica = MustOpen(FaultyOptions(&io, "/replica"));
    uint64_t lsn;
    REQUIRE(replica->Put("stale", "x", &lsn).ok());
    REQUIRE(replica->Flush().ok());
    old = Dump(*replica);
    uint64_t snap_lsn = 0;
    REQUIRE(Stage(*source, &io, "/replica", &snap_lsn).ok());
    CHECK(snap_lsn == source->last_lsn());
    CHECK(Dump(*replica) == old);  // staged, not in force while open
  }
  auto replica = MustOpen(FaultyOptions(&io, "/replica"));
  CHECK(Dump(*replica) == want);
  CHECK(replica->last_lsn() == source->last_lsn());
  CHECK(replica->HistoryAt(replica->last_lsn()) == source->history_id());
  // The log goes on after the snapshot: the primary's next record applies.
  uint64_t lsn;
  REQUIRE(source->Put("after", "a", &lsn).ok());
  REQUIRE(replica->Apply(lsn, false, "after", "a").ok());
  REQUIRE(replica->Flush().ok());
  std::unique_ptr<LogCursor> c;
  CHECK(replica->NewLogCursor(lsn - 1, &c).ok());
  CHECK(replica->NewLogCursor(0, &c).IsNotFound());  // below the snapshot: not a log
}

TEST_CASE(
    "snapshot: the records as of its LSN, whatever is written or compacted while it is read; a "
    "filter keeps only the keys it accepts") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  const Contents want = FillSource(*source);
  std::unique_ptr<SnapshotCursor> c, odd;
  REQUIRE(source->NewSnapshot(nullptr, &c).ok());
  REQUIRE(source->NewSnapshot([](std::string_view k) { return k.back() % 2 == 1; }, &odd).ok());
  CHECK(c->records() == want.size());
  // Writes after it, and a compaction that replaces every segment it reads.
  uint64_t lsn;
  for (int i = 0; i < 300; i++)
    REQUIRE(source->Put("key-" + std::to_string(i), "later", &lsn).ok());
  REQUIRE(source->Flush().ok());
  REQUIRE(source->Compact().ok());
  Contents got;
  uint64_t bytes = 0;
  for (bool done = false; !done;) {
    std::string out;
    REQUIRE(c->Next(&out, 700, &done).ok());
    bytes += out.size();
    for (std::string_view rest = out; !rest.empty();) {
      Record r;
      size_t n;
      REQUIRE(DecodeRecord(rest, &r, &n).ok());
      CHECK(r.lsn <= c->lsn());
      got[std::string(r.key)] = std::string(r.value);
      rest.remove_prefix(n);
    }
  }
  CHECK(got == want);
  CHECK(bytes == c->bytes());
  size_t odd_keys = 0;
  for (const auto& [k, v] : want) odd_keys += k.back() % 2 == 1;
  CHECK(odd->records() == odd_keys);
  c.reset();
  odd.reset();
  CHECK(source->Stats().pinned_segments == 0);  // released once the cursors are gone
}

TEST_CASE(
    "snapshot: a power cut at any moment of staging or swapping leaves the old store or "
    "the new one") {
  size_t saw_old = 0, saw_new = 0;
  for (uint64_t n = 1;; n++) {
    CAPTURE(n);
    FaultyIo io;
    auto source = MustOpen(FaultyOptions(&io, "/source"));
    const Contents want = FillSource(*source);
    Contents old;
    bool cut = false;
    {
      auto replica = MustOpen(FaultyOptions(&io, "/replica"));
      uint64_t lsn;
      for (int i = 0; i < 50; i++)
        REQUIRE(replica->Put("old-" + std::to_string(i), "o", &lsn).ok());
      REQUIRE(replica->Flush().ok());
      old = Dump(*replica);
      io.CrashAfter(n);
      uint64_t snap_lsn;
      Stage(*source, &io, "/replica", &snap_lsn);  // fails once the power is gone
    }
    if (!io.down()) {
      // Staged completely: the reopen swaps it in (the cut may come there).
      std::unique_ptr<Store> again;
      Store::Open(FaultyOptions(&io, "/replica"), &again);
    }
    cut = io.down();
    io.CrashAfter(0);
    io.Restart();
    source.reset();
    auto replica = MustOpen(FaultyOptions(&io, "/replica"));
    const Contents got = Dump(*replica);
    const bool is_old = got == old, is_new = got == want;
    CHECK_MESSAGE((is_old || is_new), "a mix of " << got.size() << " keys");
    saw_old += is_old;
    saw_new += is_new;
    if (!cut) break;  // the whole sequence ran without a cut
    REQUIRE(n < 5000);
  }
  CHECK(saw_old > 0);
  CHECK(saw_new > 1);
}

TEST_CASE("snapshot: a damaged record or one past the snapshot's LSN is refused") {
  FaultyIo io;
  std::unique_ptr<SnapshotWriter> w;
  REQUIRE(SnapshotWriter::Create(&io, "/d", 10, 1, 4 << 10, &w).ok());
  std::string rec;
  EncodeRecord(Record{5, RecordType::kPut, "k", "v"}, &rec);
  CHECK(w->Add(rec).ok());
  std::string bad = rec;
  bad.back() ^= 1;
  CHECK(w->Add(bad).IsCorruption());
  std::string late;
  EncodeRecord(Record{11, RecordType::kPut, "k2", "v"}, &late);
  CHECK(w->Add(late).IsCorruption());
  std::string del;
  EncodeRecord(Record{6, RecordType::kDelete, "k", ""}, &del);
  CHECK(w->Add(del).IsCorruption());
}

TEST_CASE(
    "snapshot: while one writer of a staging directory lives another is refused (Busy), and a "
    "finished snapshot that is discarded is never installed") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  FillSource(*source);
  const Contents old = MakeStaleReplica(&io);
  std::unique_ptr<SnapshotCursor> c;
  REQUIRE(source->NewSnapshot(nullptr, &c).ok());
  std::unique_ptr<SnapshotWriter> first;
  REQUIRE(SnapshotWriter::Create(&io, "/replica", c->lsn(), source->history_id(), 4 << 10, &first)
              .ok());
  bool done = false;
  while (!done) {
    std::string out;
    REQUIRE(c->Next(&out, 1500, &done).ok());
    REQUIRE(first->Add(out).ok());
  }
  REQUIRE(first->Finish().ok());

  // A second attempt (a new primary's stream) while the first writer lives
  // (its Finish could still be running in the thread pool) would empty the
  // directory under it.
  std::unique_ptr<SnapshotWriter> second;
  CHECK(
      SnapshotWriter::Create(&io, "/replica", 1, source->history_id(), 4 << 10, &second).IsBusy());
  // The first is not to be installed (its replica was re-pointed).
  first->Discard();
  first.reset();
  auto replica = MustOpen(FaultyOptions(&io, "/replica"));
  CHECK(Dump(*replica) == old);
  replica.reset();
  // Once it is gone the next attempt may begin.
  CHECK(SnapshotWriter::Create(&io, "/replica", 1, source->history_id(), 4 << 10, &second).ok());
}

TEST_CASE(
    "snapshot: a store reopened while an abandoned writer still finishes leaves staging/ to it, "
    "and a crash after that writer finished starts") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  const Contents want = FillSource(*source);
  const Contents old = MakeStaleReplica(&io);
  std::unique_ptr<SnapshotCursor> c;
  REQUIRE(source->NewSnapshot(nullptr, &c).ok());
  std::unique_ptr<SnapshotWriter> abandoned;
  REQUIRE(
      SnapshotWriter::Create(&io, "/replica", c->lsn(), source->history_id(), 4 << 10, &abandoned)
          .ok());
  bool done = false;
  while (!done) {
    std::string out;
    REQUIRE(c->Next(&out, 1500, &done).ok());
    REQUIRE(abandoned->Add(out).ok());
  }
  // The store is reopened (a resync's swap) while the writer, whose replica
  // was re-pointed, has yet to finish in the thread pool.
  {
    auto replica = MustOpen(FaultyOptions(&io, "/replica"));
    CHECK(Dump(*replica) == old);
    REQUIRE(abandoned->Finish().ok());
  }
  // The node dies before the writer's owner could discard it: the next
  // start finds a whole snapshot and installs it.
  abandoned.reset();
  std::unique_ptr<Store> again;
  Status s = Store::Open(FaultyOptions(&io, "/replica"), &again);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(Dump(*again) == want);
}

TEST_CASE(
    "snapshot: a COMPLETE snapshot missing a staged file is discarded, never mixed with the old "
    "store's file of the same name") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  FillSource(*source);
  Contents old;
  {
    auto replica = MustOpen(FaultyOptions(&io, "/replica"));
    uint64_t lsn;
    for (int i = 0; i < 50; i++) REQUIRE(replica->Put("old-" + std::to_string(i), "o", &lsn).ok());
    REQUIRE(replica->Flush().ok());
    old = Dump(*replica);
    uint64_t snap_lsn;
    REQUIRE(Stage(*source, &io, "/replica", &snap_lsn).ok());
  }
  // The old store has a segment 1 too: the staged one must not be taken
  // for "moved already".
  REQUIRE(io.Unlink("/replica/staging/" + SegmentFileName(1)) == 0);
  std::unique_ptr<Store> replica;
  Status s = Store::Open(FaultyOptions(&io, "/replica"), &replica);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(Dump(*replica) == old);
  std::vector<std::string> left;
  REQUIRE(ListDir(&io, "/replica/staging", &left).ok());
  CHECK(std::find(left.begin(), left.end(), kStagingCompleteFileName) == left.end());
  replica.reset();
  REQUIRE(Store::Open(FaultyOptions(&io, "/replica"), &replica).ok());
  CHECK(Dump(*replica) == old);
}

TEST_CASE(
    "snapshot: cancelling a staged snapshot leaves one a live writer is writing alone, and keeps a "
    "finished one from being installed") {
  FaultyIo io;
  auto source = MustOpen(FaultyOptions(&io, "/source"));
  const Contents want = FillSource(*source);
  const Contents old = MakeStaleReplica(&io);
  CHECK(CancelStaged(&io, "/nothing-staged-here").ok());
  std::unique_ptr<SnapshotCursor> c;
  REQUIRE(source->NewSnapshot(nullptr, &c).ok());
  std::unique_ptr<SnapshotWriter> w;
  REQUIRE(
      SnapshotWriter::Create(&io, "/replica", c->lsn(), source->history_id(), 4 << 10, &w).ok());
  for (bool done = false; !done;) {
    std::string out;
    REQUIRE(c->Next(&out, 1500, &done).ok());
    REQUIRE(w->Add(out).ok());
  }
  REQUIRE(w->Finish().ok());
  // Its writer lives: the directory is its own (an older install's cancel
  // must not take a newer snapshot's COMPLETE).
  CHECK(CancelStaged(&io, "/replica").IsBusy());
  w.reset();
  {
    auto replica = MustOpen(FaultyOptions(&io, "/replica"));
    CHECK(Dump(*replica) == want);  // it was left complete, and installed
  }
  // A finished snapshot cancelled once its writer is gone is not installed.
  source.reset();
  FaultyIo io2;
  auto source2 = MustOpen(FaultyOptions(&io2, "/source"));
  FillSource(*source2);
  {
    auto replica = MustOpen(FaultyOptions(&io2, "/replica"));
    uint64_t lsn;
    REQUIRE(replica->Put("stale", "x", &lsn).ok());
    REQUIRE(replica->Flush().ok());
    uint64_t snap_lsn;
    REQUIRE(Stage(*source2, &io2, "/replica", &snap_lsn).ok());
  }
  CHECK(CancelStaged(&io2, "/replica").ok());
  auto replica = MustOpen(FaultyOptions(&io2, "/replica"));
  CHECK(Dump(*replica) == old);
}
