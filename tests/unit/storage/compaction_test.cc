// Compaction and hint files: what a merge keeps and drops, that it survives a
// crash at each of its steps, that writes racing it win, and that recovery
// from hint files builds the same index as a scan.
#include <doctest/doctest.h>
#include <errno.h>

#include <filesystem>
#include <map>
#include <vector>

#include "storage/hint_file.h"
#include "storage/manifest.h"
#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;
namespace fs = std::filesystem;

namespace {

using Contents = std::map<std::string, std::pair<std::string, uint64_t>>;  // key -> value, LSN

Contents Dump(Store& s) {
  Contents c;
  REQUIRE(s.ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
             c[std::string(k)] = {std::string(v), lsn};
           }).ok());
  return c;
}

uint64_t SegmentBytesOnDisk(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") n += e.file_size();
  }
  return n;
}

size_t CountFiles(const std::string& dir, const std::string& ext) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ext;
  return n;
}

std::string Key(int i) { return "key-" + std::to_string(i); }

// Writes n keys, each overwritten `rounds` times, and deletes every
// delete_every-th key; returns what must be read back.
Contents Overwrite(Store& s, int n, int rounds, int delete_every) {
  Contents want;
  uint64_t lsn;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < n; i++) {
      const std::string v = "value-" + std::to_string(i) + "-round-" + std::to_string(r);
      REQUIRE(s.Put(Key(i), v, &lsn).ok());
      want[Key(i)] = {v, lsn};
      if (i % 4096 == 0) REQUIRE(s.Flush().ok());
    }
  }
  for (int i = 0; i < n; i += delete_every) {
    REQUIRE(s.Remove(Key(i), &lsn).ok());
    want.erase(Key(i));
  }
  REQUIRE(s.Flush().ok());
  return want;
}

void CopyDir(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "LOCK") continue;
    fs::copy_file(e.path(), fs::path(to) / e.path().filename());
  }
}

}  // namespace

TEST_CASE("overwrite 100k keys 10 times, compact: latest values, deletes stay, disk near live") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 1 << 20;
  Contents want;
  uint64_t live = 0;
  {
    auto s = MustOpen(o);
    want = Overwrite(*s, 100'000, 10, 10);
    const uint64_t before = SegmentBytesOnDisk(dir.path());
    REQUIRE(s->Compact().ok());
    const StoreStats st = s->Stats();
    live = st.live_bytes;
    CHECK(st.compactions == 1);
    CHECK(st.pinned_segments == 0);
    const uint64_t after = SegmentBytesOnDisk(dir.path());
    MESSAGE("before " << before << " after " << after << " live " << live);
    // The bound: live data, plus the active segment the merge leaves alone.
    CHECK(after <= live + o.segment_bytes);
    CHECK(before > 5 * after);
    CHECK(Dump(*s) == want);
    for (int i = 0; i < 100'000; i += 10) CHECK(GetOr(*s, Key(i)) == "<absent>");
  }
  std::vector<std::string> log;
  auto s = MustOpen(TestOptions(dir.path(), &log));
  CHECK(Dump(*s) == want);
  CHECK(s->Stats().live_bytes == live);
  CHECK(SegmentBytesOnDisk(dir.path()) <= live + o.segment_bytes);
  // A new write gets an LSN above every one ever handed out.
  uint64_t lsn;
  REQUIRE(s->Put("new", "x", &lsn).ok());
  CHECK(lsn == 100'000 * 10 + 10'000 + 1);
}

TEST_CASE("recovery from hint files builds the same index as a full scan") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 64 << 10;
  Contents want;
  {
    auto s = MustOpen(o);
    want = Overwrite(*s, 2000, 3, 7);
    REQUIRE(s->Compact().ok());
    uint64_t lsn;
    // More sealed segments after the compaction, with deletes in them.
    for (int i = 0; i < 3000; i++) REQUIRE(s->Put(Key(i), "after-" + std::to_string(i), &lsn).ok());
    for (int i = 0; i < 3000; i += 5) REQUIRE(s->Remove(Key(i), &lsn).ok());
    REQUIRE(s->Flush().ok());
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    REQUIRE(job);
    Status st = job->Run();
    s->FinishJob(std::move(job), st);
    REQUIRE(st.ok());
    CHECK(s->TakeHintJob() == nullptr);  // every sealed segment has one now
    want = Dump(*s);
  }
  const size_t hints = CountFiles(dir.path(), ".hint");
  REQUIRE(hints + 1 == CountFiles(dir.path(), ".seg"));  // all but the active segment

  std::vector<std::string> log;
  Contents with_hints;
  StoreStats st_hints;
  {
    auto s = MustOpen(TestOptions(dir.path(), &log));
    with_hints = Dump(*s);
    st_hints = s->Stats();
    CHECK(st_hints.hint_files == hints);
  }
  // A damaged hint is ignored, never an error.
  std::string first_hint;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".hint") first_hint = e.path().string();
  }
  std::string bytes = ReadFile(first_hint);
  bytes[bytes.size() / 2] ^= 0x40;
  WriteFile(first_hint, bytes);
  log.clear();
  {
    auto s = MustOpen(TestOptions(dir.path(), &log));
    CHECK(Dump(*s) == with_hints);
    bool said = false;
    for (const auto& l : log) said |= l.find("ignoring hint file") != std::string::npos;
    CHECK(said);
  }
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".hint") fs::remove(e.path());
  }
  auto s = MustOpen(TestOptions(dir.path()));
  CHECK(Dump(*s) == with_hints);
  CHECK(with_hints == want);
  const StoreStats st_scan = s->Stats();
  CHECK(st_scan.keys == st_hints.keys);
  CHECK(st_scan.live_bytes == st_hints.live_bytes);
  CHECK(st_scan.dead_bytes == st_hints.dead_bytes);
  CHECK(st_scan.last_lsn == st_hints.last_lsn);
  CHECK(st_scan.hint_files == 0);
}

TEST_CASE("hint files on a full disk: attempts back off, one log line each, and resume on room") {
  TempDir dir;
  std::vector<std::string> log;
  Options o = TestOptions(dir.path(), &log);
  o.segment_bytes = 16 << 10;
  int attempts = 0;
  bool full = true;
  o.fault_hook = [&](std::string_view step) {
    if (step != "hint:write") return 0;
    attempts++;
    return full ? ENOSPC : 0;
  };
  auto s = MustOpen(o);
  auto seal_some = [&](const std::string& prefix) {
    uint64_t lsn;
    for (int i = 0; i < 500; i++)
      REQUIRE(s->Put(prefix + Key(i), std::string(100, 'v'), &lsn).ok());
    REQUIRE(s->Flush().ok());
  };
  // One check of the store's owner (a node's compactor, every second): the
  // hint job TakeHintJob plans, if any, run and adopted. True if one ran.
  auto check = [&] {
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    if (!job) return false;
    Status st = job->Run();
    s->FinishJob(std::move(job), st);
    return true;
  };
  auto failures_logged = [&] {
    size_t n = 0;
    for (const std::string& line : log) n += line.find("writing hint files failed") != line.npos;
    return n;
  };
  seal_some("a");

  // 300 checks on a full disk: attempts at checks 1, 3, 6, 11, 20, 37, 70,
  // then every 65th (the skips double from 1 to 64), each failing and
  // logged once. Without a back-off, 300 of each.
  std::vector<int> ran_at;
  for (int i = 1; i <= 300; i++) {
    if (check()) ran_at.push_back(i);
  }
  CHECK(ran_at == std::vector<int>{1, 3, 6, 11, 20, 37, 70, 135, 200, 265});
  CHECK(attempts == 10);
  CHECK(failures_logged() == 10);
  CHECK(CountFiles(dir.path(), ".hint") == 0);

  // Room again: the next attempt, at most 64 checks on, writes them all.
  full = false;
  int waited = 0;
  while (!check() && waited < 100) waited++;
  CHECK(waited == 64 - (300 - 265));
  CHECK(CountFiles(dir.path(), ".hint") + 1 == CountFiles(dir.path(), ".seg"));
  CHECK(s->TakeHintJob() == nullptr);  // nothing left to write
  CHECK(failures_logged() == 10);

  // The success reset the back-off: a new failure waits one check again.
  seal_some("b");
  full = true;
  CHECK(check());
  CHECK_FALSE(check());
  CHECK(check());
  CHECK(failures_logged() == 12);
}

TEST_CASE("a crash at each step of a compaction loses nothing and resurrects nothing") {
  TempDir dir;
  const std::string crashes = dir.path() + "-crash";
  Options o = TestOptions(dir.path());
  o.segment_bytes = 16 << 10;
  std::vector<std::string> steps;
  // A SIGKILL keeps what was written: the directory as it is when a step
  // begins is what a restart would find.
  o.fault_hook = [&](std::string_view step) {
    if (step.starts_with("compact:")) {
      const std::string image = crashes + "/" + std::to_string(steps.size());
      CopyDir(dir.path(), image);
      steps.emplace_back(step);
    }
    return 0;
  };
  fs::create_directories(crashes);
  Contents want;
  {
    auto s = MustOpen(o);
    want = Overwrite(*s, 2000, 4, 3);
    std::unique_ptr<StoreJob> job = s->TakeCompaction({});
    REQUIRE(job);
    // Writes that race the merge: overwrites and deletes of keys it copies.
    uint64_t lsn;
    REQUIRE(s->Put(Key(1), "raced", &lsn).ok());
    want[Key(1)] = {"raced", lsn};
    REQUIRE(s->Remove(Key(2), &lsn).ok());
    want.erase(Key(2));
    REQUIRE(s->Flush().ok());
    Status st = job->Run();
    REQUIRE(st.ok());
    s->FinishJob(std::move(job), st);
    // A crash while the index is repointed, and after the inputs are gone.
    REQUIRE(s->CompactionStep(10));
    CopyDir(dir.path(), crashes + "/" + std::to_string(steps.size()));
    steps.emplace_back("repointing");
    while (s->CompactionStep(100)) {
    }
    CopyDir(dir.path(), crashes + "/" + std::to_string(steps.size()));
    steps.emplace_back("released");
    CHECK(Dump(*s) == want);
  }
  // reserve, write (at least once), sync, publish, commit, and the two above.
  REQUIRE(steps.size() >= 7);
  for (size_t i = 0; i < steps.size(); i++) {
    CAPTURE(steps[i]);
    const std::string image = crashes + "/" + std::to_string(i);
    {
      auto s = MustOpen(TestOptions(image));
      CHECK(Dump(*s) == want);
      uint64_t lsn;
      REQUIRE(s->Put("after-crash", "v", &lsn).ok());
      CHECK(lsn > want.rbegin()->second.second);
      REQUIRE(s->Flush().ok());
      // A compaction after the restart finishes the job.
      REQUIRE(s->Compact().ok());
      Contents again = Dump(*s);
      again.erase("after-crash");
      CHECK(again == want);
    }
    auto s = MustOpen(TestOptions(image));
    Contents again = Dump(*s);
    again.erase("after-crash");
    CHECK(again == want);
  }
  fs::remove_all(crashes);
}

TEST_CASE("a compaction that fails at any step leaves the store as it was") {
  for (const char* failing :
       {"compact:reserve", "compact:write", "compact:sync", "compact:publish", "compact:commit"}) {
    CAPTURE(failing);
    TempDir dir;
    Options o = TestOptions(dir.path());
    o.segment_bytes = 32 << 10;
    o.fault_hook = [&](std::string_view step) { return step == failing ? 28 /*ENOSPC*/ : 0; };
    Contents want;
    {
      auto s = MustOpen(o);
      want = Overwrite(*s, 300, 3, 5);
      const uint64_t before = SegmentBytesOnDisk(dir.path());
      Status st = s->Compact();
      CHECK(st.IsNoSpace());
      CHECK(s->Stats().compactions_failed == 1);
      CHECK(Dump(*s) == want);
      CHECK(SegmentBytesOnDisk(dir.path()) == before);
      CHECK(CountFiles(dir.path(), ".tmp") == 0);
    }
    auto s = MustOpen(TestOptions(dir.path()));
    CHECK(Dump(*s) == want);
    REQUIRE(s->Compact().ok());
    CHECK(Dump(*s) == want);
  }
}

TEST_CASE("a failed batch after a compaction restores the moved record, not the deleted one") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 16 << 10;
  bool fail = false;
  o.fault_hook = [&](std::string_view step) { return fail && step == "write" ? 5 /*EIO*/ : 0; };
  auto s = MustOpen(o);
  Contents want = Overwrite(*s, 300, 3, 1000);
  std::unique_ptr<StoreJob> job = s->TakeCompaction({});
  REQUIRE(job);
  Status st = job->Run();
  REQUIRE(st.ok());
  // Staged before the index is repointed: its undo entry names the old segment.
  uint64_t lsn;
  REQUIRE(s->Put(Key(5), "will fail", &lsn).ok());
  s->FinishJob(std::move(job), st);
  while (s->CompactionStep(7)) {
  }
  fail = true;
  CHECK(!s->Flush().ok());
  fail = false;
  CHECK(s->Stats().pinned_segments == 0);  // released once nothing older was pending
  CHECK(Dump(*s) == want);
  s.reset();
  auto again = MustOpen(TestOptions(dir.path()));
  CHECK(Dump(*again) == want);
}

TEST_CASE("a log cursor reads on across a compaction; one below the compacted range is refused") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 8 << 10;
  auto s = MustOpen(o);
  uint64_t lsn;
  for (int i = 0; i < 400; i++) REQUIRE(s->Put(Key(i % 50), "v" + std::to_string(i), &lsn).ok());
  REQUIRE(s->Flush().ok());
  REQUIRE(s->Remove(Key(3), &lsn).ok());
  for (int i = 0; i < 400; i++) REQUIRE(s->Put(Key(100 + i), "w", &lsn).ok());
  REQUIRE(s->Flush().ok());

  // A cursor opened before the compaction pins the segment it reads.
  std::unique_ptr<LogCursor> early;
  REQUIRE(s->NewLogCursor(0, &early).ok());
  std::string first;
  REQUIRE(early->Next(&first, 1).ok());
  CHECK(early->position() == 1);

  REQUIRE(s->Compact().ok());
  CHECK(s->Stats().compactions == 1);
  CHECK(s->tombstone_horizon() > 0);
  CHECK(s->Stats().pinned_segments > 0);  // the replaced segments wait for the cursor

  // A new cursor from inside the compacted range cannot be served from the
  // log (a snapshot is needed); one from the writer's log can.
  std::unique_ptr<LogCursor> c;
  CHECK(s->NewLogCursor(0, &c).IsNotFound());
  CHECK(s->NewLogCursor(s->durable_lsn() - 10, &c).ok());

  // The early cursor reads every LSN, in order, to the end.
  std::string out;
  while (early->position() < s->durable_lsn()) REQUIRE(early->Next(&out, 1 << 20).ok());
  std::string_view rest(out);
  uint64_t prev = 1;
  while (!rest.empty()) {
    Record r;
    size_t n;
    REQUIRE(DecodeRecord(rest, &r, &n).ok());
    CHECK(r.lsn == prev + 1);
    prev = r.lsn;
    rest.remove_prefix(n);
  }
  CHECK(prev == s->durable_lsn());
  early.reset();
  CHECK(s->Stats().pinned_segments == 0);  // released with the last pin
}

TEST_CASE("the MANIFEST round-trips compaction's reserved and obsolete ids") {
  Manifest m;
  m.histories.push_back(HistoryEntry{7, 1, 0});
  m.tombstone_horizon = 42;
  m.log_start = 91;
  m.compacted = {CompactedSegment{7, 1, 40}, CompactedSegment{8, 41, 90}};
  m.obsolete = {1, 2, 3};
  m.reserved = {9};
  Manifest back;
  REQUIRE(DecodeManifest(EncodeManifest(m), &back).ok());
  CHECK(back == m);
  std::string bad = EncodeManifest(m);
  bad[bad.find("obsolete 2")] = 'x';
  CHECK(DecodeManifest(bad, &back).IsCorruption());
}
