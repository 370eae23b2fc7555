// LogCursor: the durable log, read from any LSN, returns exactly the records
// after it, in LSN order, across segments and reopens; staged records appear
// only once their batch completed.
#include <doctest/doctest.h>

#include <cerrno>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

struct Decoded {
  uint64_t lsn;
  RecordType type;
  std::string key;
  std::string value;
};

// Decodes a buffer that must hold whole records only.
std::vector<Decoded> DecodeAll(std::string_view buf) {
  std::vector<Decoded> out;
  while (!buf.empty()) {
    Record r;
    size_t n;
    Status s = DecodeRecord(buf, &r, &n);
    REQUIRE(s.ok());
    out.push_back({r.lsn, r.type, std::string(r.key), std::string(r.value)});
    buf.remove_prefix(n);
  }
  return out;
}

std::vector<Decoded> ReadAll(Store& s, uint64_t after, size_t max_bytes) {
  std::unique_ptr<LogCursor> c;
  REQUIRE(s.NewLogCursor(after, &c).ok());
  CHECK(c->position() == after);
  std::vector<Decoded> all;
  for (;;) {
    std::string buf;
    REQUIRE(c->Next(&buf, max_bytes).ok());
    if (buf.empty()) {
      if (c->position() >= s.durable_lsn()) break;
      continue;  // a slice spent skipping
    }
    for (Decoded& d : DecodeAll(buf)) all.push_back(std::move(d));
    CHECK(c->position() == all.back().lsn);
  }
  return all;
}

// Key and value of LSN n in the log written by Fill().
std::string KeyOf(uint64_t n) { return "key" + std::to_string(n % 17); }
std::string ValueOf(uint64_t n) { return std::string(n % 50, 'a' + n % 26); }

void Fill(Store& s, uint64_t from, uint64_t to) {
  for (uint64_t n = from; n <= to; n++) {
    uint64_t lsn;
    if (n % 10 == 0) {
      // A tombstone when the key is present, else a put.
      if (s.Remove(KeyOf(n), &lsn).ok()) {
        CHECK(lsn == n);
        continue;
      }
    }
    REQUIRE(s.Put(KeyOf(n), ValueOf(n), &lsn).ok());
    CHECK(lsn == n);
    if (n % 9 == 0) REQUIRE(s.Flush().ok());
  }
  REQUIRE(s.Flush().ok());
}

// Small segments, so that a few hundred records span many of them.
Options SmallSegments(const std::string& dir, uint64_t segment_bytes) {
  Options o = TestOptions(dir);
  o.segment_bytes = segment_bytes;
  return o;
}

// A primary whose log holds LSNs 1..300 in 1 KB segments, and an empty
// replica.
struct PrimaryAndReplica {
  PrimaryAndReplica() {
    primary = MustOpen(SmallSegments(primary_dir.path(), 1024));
    Fill(*primary, 1, 300);
    replica = MustOpen(TestOptions(replica_dir.path()));
  }

  TempDir primary_dir, replica_dir;
  std::unique_ptr<Store> primary, replica;
};

}  // namespace

TEST_CASE("a cursor returns exactly the records after its LSN, in order") {
  TempDir dir;
  const Options o = SmallSegments(dir.path(), 512);
  auto s = MustOpen(o);
  Fill(*s, 1, 120);
  REQUIRE(s->Stats().segments > 5);
  for (int reopen = 0; reopen < 2; reopen++) {
    for (uint64_t after : {0, 1, 2, 37, 60, 119, 120, 500}) {
      for (size_t max_bytes : {size_t{1}, size_t{100}, size_t{1} << 20}) {
        CAPTURE(after);
        CAPTURE(max_bytes);
        std::vector<Decoded> got = ReadAll(*s, after, max_bytes);
        const uint64_t expected = after >= 120 ? 0 : 120 - after;
        REQUIRE(got.size() == expected);
        for (size_t i = 0; i < got.size(); i++) {
          const uint64_t n = after + 1 + i;
          CHECK(got[i].lsn == n);
          CHECK(got[i].key == KeyOf(n));
          if (got[i].type == RecordType::kPut) {
            CHECK(got[i].value == ValueOf(n));
          } else {
            CHECK(n % 10 == 0);
            CHECK(got[i].value.empty());
          }
        }
      }
    }
    s.reset();
    s = MustOpen(o);
  }
}

TEST_CASE("records skipped to reach the position count against the slice") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  uint64_t lsn = 0;
  for (int i = 1; i <= 400; ++i) {
    REQUIRE(s->Put("k" + std::to_string(i), std::string(1000, 'v'), &lsn).ok());
  }
  REQUIRE(s->Flush().ok());
  std::unique_ptr<LogCursor> c;
  REQUIRE(s->NewLogCursor(399, &c).ok());  // near the end of one 400 KB segment
  // Each call gets through about 4 KB of skipped records, not the whole
  // segment in one go.
  int calls = 0;
  std::string buf;
  while (buf.empty() && calls < 1000) {
    REQUIRE(c->Next(&buf, 4096).ok());
    calls++;
  }
  CHECK(calls >= 50);
  std::vector<Decoded> got = DecodeAll(buf);
  REQUIRE(got.size() == 1);
  CHECK(got[0].lsn == 400);
  CHECK(c->position() == 400);
}

TEST_CASE("a cursor sees a batch only once it completed, and resumes where it stopped") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  Fill(*s, 1, 5);
  std::unique_ptr<LogCursor> c;
  REQUIRE(s->NewLogCursor(3, &c).ok());
  std::string buf;
  REQUIRE(c->Next(&buf, 1 << 20).ok());
  CHECK(DecodeAll(buf).size() == 2);
  CHECK(c->position() == 5);

  uint64_t lsn;
  REQUIRE(s->Put("staged", "v", &lsn).ok());
  buf.clear();
  REQUIRE(c->Next(&buf, 1 << 20).ok());
  CHECK(buf.empty());  // staged, not durable
  auto b = s->TakeBatch();
  REQUIRE(b->Run().ok());
  REQUIRE(c->Next(&buf, 1 << 20).ok());
  CHECK(buf.empty());  // written, but the batch has not completed
  s->FinishBatch(std::move(b), Status::OK());
  REQUIRE(c->Next(&buf, 1 << 20).ok());
  std::vector<Decoded> got = DecodeAll(buf);
  REQUIRE(got.size() == 1);
  CHECK(got[0].lsn == 6);
  CHECK(got[0].key == "staged");
  CHECK(c->position() == 6);
}

TEST_CASE_FIXTURE(PrimaryAndReplica,
                  "records read through a cursor replay into an identical store") {
  for (const Decoded& d : ReadAll(*primary, 0, 4096)) {
    REQUIRE(replica->Apply(d.lsn, d.type == RecordType::kDelete, d.key, d.value).ok());
  }
  REQUIRE(replica->Flush().ok());
  CHECK(replica->last_lsn() == primary->last_lsn());
  CHECK(replica->size() == primary->size());
  REQUIRE(primary
              ->ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
                std::string rv;
                uint64_t rl;
                REQUIRE(replica->Get(k, &rv, &rl).ok());
                CHECK(rv == v);
                CHECK(rl == lsn);
              })
              .ok());
}

TEST_CASE("a cursor crosses a gap record but refuses a position inside the gap") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  int fail = 0;
  o.fault_hook = [&fail](std::string_view step) { return step == "write" && fail ? ENOSPC : 0; };
  auto s = MustOpen(o);
  uint64_t lsn;
  REQUIRE(s->Put("a", "1", &lsn).ok());
  REQUIRE(s->Put("b", "2", &lsn).ok());
  REQUIRE(s->Flush().ok());
  REQUIRE(s->Put("c", "burned", &lsn).ok());  // LSN 3, lost with its batch
  fail = 1;
  CHECK(s->Flush().IsNoSpace());
  fail = 0;
  REQUIRE(s->Put("d", "4", &lsn).ok());
  CHECK(lsn == 5);  // LSN 4 is the gap record
  REQUIRE(s->Flush().ok());

  std::unique_ptr<LogCursor> c;
  REQUIRE(s->NewLogCursor(0, &c).ok());
  std::string buf;
  REQUIRE(c->Next(&buf, 1 << 20).ok());
  std::vector<Decoded> got = DecodeAll(buf);
  REQUIRE(got.size() == 4);
  CHECK(got[1].lsn == 2);
  CHECK(got[2].lsn == 4);
  CHECK(got[3].lsn == 5);

  // A replica that holds LSN 3 holds a record this log never kept.
  REQUIRE(s->NewLogCursor(3, &c).ok());
  buf.clear();
  CHECK(c->Next(&buf, 1 << 20).IsNotFound());
  CHECK(buf.empty());
}

TEST_CASE("a cursor refuses a hole in the log: a record whose LSN does not follow the last") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  uint64_t lsn;
  for (const char* key : {"a", "b", "c", "d"}) REQUIRE(s->Put(key, "v", &lsn).ok());
  REQUIRE(s->Flush().ok());

  // Rewrite LSN 3's record in place as a valid record of LSN 6 (same size,
  // right CRC): the log now jumps from 2 to 6 with nothing saying why, as
  // when a segment's middle was replaced. Nothing may be streamed past it.
  auto encode = [](uint64_t n) {
    Record r;
    r.lsn = n;
    r.key = "c";
    r.value = "v";
    r.write_continues = true;  // not the last record of the write that stored it
    std::string out;
    EncodeRecord(r, &out);
    return out;
  };
  const std::string seg = dir.path() + "/000000000001.seg";
  std::string bytes = ReadFile(seg);
  const size_t at = bytes.find(encode(3));
  REQUIRE(at != std::string::npos);
  bytes.replace(at, encode(6).size(), encode(6));
  WriteFile(seg, bytes);

  std::unique_ptr<LogCursor> c;
  REQUIRE(s->NewLogCursor(0, &c).ok());
  std::string buf;
  Status st = c->Next(&buf, 1 << 20);
  for (int i = 0; i < 10 && st.ok(); i++) st = c->Next(&buf, 1 << 20);
  CHECK(st.IsCorruption());
  CHECK(st.ToString().find("hole in the log") != std::string::npos);
  CHECK(c->position() <= 2);
  std::vector<Decoded> got = DecodeAll(buf);
  REQUIRE(got.size() == 2);
  CHECK(got[1].lsn == 2);
}

namespace {

// Applies every record a cursor from `after` returns to replica, as a
// replica's stream does; false if the cursor refuses.
// between_slices runs after each slice.
bool Replay(Store& primary, uint64_t after, Store& replica, size_t max_bytes,
            size_t* gaps = nullptr, const std::function<void()>& between_slices = nullptr) {
  std::unique_ptr<LogCursor> c;
  if (!primary.NewLogCursor(after, &c).ok()) return false;
  while (c->position() < primary.durable_lsn()) {
    std::string buf;
    Status s = c->Next(&buf, max_bytes);
    if (s.IsNotFound()) return false;
    REQUIRE(s.ok());
    std::string_view rest(buf);
    while (!rest.empty()) {
      Record r;
      size_t n;
      REQUIRE(DecodeRecord(rest, &r, &n).ok());
      if (gaps && r.type == RecordType::kGap) ++*gaps;
      Status a = replica.Apply(r);
      REQUIRE_MESSAGE(a.ok(), a.ToString());
      rest.remove_prefix(n);
    }
    REQUIRE(replica.Flush().ok());
    if (between_slices) between_slices();
  }
  return true;
}

std::map<std::string, std::string> Live(Store& s) {
  std::map<std::string, std::string> out;
  REQUIRE(
      s.ForEach([&](std::string_view k, std::string_view v, uint64_t) { out.emplace(k, v); }).ok());
  return out;
}

void CompactKeepingTombstonesAfter(Store& s, uint64_t lsn) {
  CompactionOptions keep;
  keep.keep_tombstones_after = lsn;
  REQUIRE(s.Compact(keep).ok());
}

// The replica replays the primary's whole log (to LSN 300) and goes away
// while the primary overwrites and deletes up to LSN 700 (Fill deletes every
// tenth LSN's key), then compacts keeping the tombstones above the replica's
// LSN, as a primary does for a replica within bounds. The test goes on from
// there with the replica's LSN in x.
struct CompactedPastReplica : PrimaryAndReplica {
  CompactedPastReplica() {
    REQUIRE(Replay(*primary, 0, *replica, 4096));
    x = replica->last_lsn();
    Fill(*primary, 301, 700);
    CompactKeepingTombstonesAfter(*primary, x);
  }

  uint64_t x = 0;
};

}  // namespace

TEST_CASE_FIXTURE(CompactedPastReplica,
                  "a cursor inside the compacted range returns the live records after it, gaps "
                  "filled") {
  REQUIRE(x == 300);
  Fill(*primary, 701, 720);  // and the writer's log goes on after the compaction
  REQUIRE(primary->Stats().compactions == 1);
  REQUIRE(primary->tombstone_horizon() <= x);

  size_t gaps = 0;
  REQUIRE(Replay(*primary, x, *replica, 512, &gaps));
  CHECK(gaps > 0);  // overwritten records left holes the cursor filled
  CHECK(replica->last_lsn() == primary->last_lsn());
  CHECK(Live(*replica) == Live(*primary));
  // The replica's log, gap records and all, recovers; and a cursor of the
  // primary from a position inside a hole is served as well.
  replica.reset();
  replica = MustOpen(TestOptions(replica_dir.path()));
  CHECK(Live(*replica) == Live(*primary));
  std::unique_ptr<LogCursor> c;
  CHECK(primary->NewLogCursor(x + 37, &c).ok());
}

TEST_CASE_FIXTURE(CompactedPastReplica,
                  "a cursor in the compacted range reads on across compactions while it reads") {
  // Between slices the primary writes and compacts again, each time
  // keeping the tombstones after the replica's LSN of the moment.
  uint64_t next = 701;
  int compactions = 0;
  REQUIRE(Replay(*primary, x, *replica, 256, nullptr, [&] {
    if (next > 1300) return;
    Fill(*primary, next, next + 99);
    next += 100;
    CompactKeepingTombstonesAfter(*primary, replica->last_lsn());
    compactions++;
  }));
  CHECK(compactions >= 3);
  CHECK(replica->last_lsn() == primary->last_lsn());
  CHECK(Live(*replica) == Live(*primary));
}

TEST_CASE("a cursor below the tombstone horizon is refused") {
  TempDir dir;
  auto s = MustOpen(SmallSegments(dir.path(), 1024));
  Fill(*s, 1, 300);
  REQUIRE(s->Compact().ok());  // drops every tombstone it can
  const uint64_t horizon = s->tombstone_horizon();
  REQUIRE(horizon > 0);
  std::unique_ptr<LogCursor> c;
  CHECK(s->NewLogCursor(horizon - 1, &c).IsNotFound());
  CHECK(s->NewLogCursor(horizon, &c).ok());
}
