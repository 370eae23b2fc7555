// Recovery on open: torn and corrupt tails of the newest segment are cut back
// to the last good record; damage inside a sealed segment stops Open (or is
// cut, with Options::repair); the newest LSN wins across files.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

TEST_CASE("a tail cut at every byte of the last record is truncated back to the record before") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    REQUIRE(s->Put("a", "first", &lsn).ok());
    REQUIRE(s->Put("b", "second", &lsn).ok());
    REQUIRE(s->Flush().ok());
    REQUIRE(s->Put("a", "overwritten in the last record", &lsn).ok());
    REQUIRE(s->Flush().ok());
  }
  const std::string seg = dir.file(SegmentFileName(1));
  const std::string full = ReadFile(seg);
  const size_t last = EncodedRecordSize(1, std::string("overwritten in the last record").size());
  REQUIRE(full.size() > last);
  const size_t last_start = full.size() - last;

  for (size_t cut = last_start; cut < full.size(); cut++) {
    CAPTURE(cut);
    WriteFile(seg, full.substr(0, cut));
    MarkCrashed(dir.path());  // a torn tail is the trace of a crash, not of a clean close
    std::vector<std::string> log;
    {
      auto s = MustOpen(TestOptions(dir.path(), &log));
      CHECK(GetOr(*s, "a") == "first");
      CHECK(GetOr(*s, "b") == "second");
      CHECK(s->last_lsn() == 2);
      CHECK(LogMentions(log, "torn tail") == (cut != last_start));
      CHECK(std::filesystem::file_size(seg) == last_start);
      // The store goes on from there, never reusing the lost LSN 3 (nor those
      // of earlier rounds): a gap record takes the next, the put the one after.
      uint64_t lsn;
      const uint64_t high_water = s->high_water_lsn();
      REQUIRE(s->Put("c", "after", &lsn).ok());
      CHECK(lsn >= 5);
      CHECK(lsn <= high_water);
      REQUIRE(s->Flush().ok());
    }
    auto s = MustOpen(o);
    CHECK(GetOr(*s, "c") == "after");
  }
}

TEST_CASE("a corrupt record at the end of the newest segment is cut off") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    REQUIRE(s->Put("a", "kept", &lsn).ok());
    REQUIRE(s->Put("b", "damaged", &lsn).ok());
    REQUIRE(s->Flush().ok());
  }
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  bytes[bytes.size() - 2] ^= 0x40;  // inside b's value
  WriteFile(seg, bytes);
  MarkCrashed(dir.path());
  std::vector<std::string> log;
  auto s = MustOpen(TestOptions(dir.path(), &log));
  CHECK(GetOr(*s, "a") == "kept");
  CHECK(GetOr(*s, "b") == "<absent>");
  CHECK(LogMentions(log, "CRC mismatch"));
  CHECK(std::filesystem::file_size(seg) == EncodedRecordSize(1, 4));
}

TEST_CASE("a flipped byte inside a sealed segment fails Open; repair cuts the segment there") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 256;
  const std::string value(40, 'v');
  const uint64_t rec = EncodedRecordSize(3, value.size());  // 64 bytes: 4 per segment
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    for (int i = 0; i < 12; i++) REQUIRE(s->Put("k" + std::to_string(10 + i), value, &lsn).ok());
    REQUIRE(s->Flush().ok());
    REQUIRE(s->Stats().segments == 3);
  }
  // Damage the third record (k12) of the first, sealed segment.
  const std::string seg1 = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg1);
  REQUIRE(bytes.size() == 4 * rec);
  bytes[2 * rec + 30] ^= 0x01;
  WriteFile(seg1, bytes);

  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  CHECK(st.IsCorruption());
  CHECK(st.message().find(SegmentFileName(1)) != std::string_view::npos);
  CHECK(st.message().find("offset " + std::to_string(2 * rec)) != std::string_view::npos);
  CHECK(std::filesystem::file_size(seg1) == 4 * rec);  // nothing changed without repair

  std::vector<std::string> log;
  Options repair = TestOptions(dir.path(), &log);
  repair.segment_bytes = 256;
  repair.repair = true;
  s = MustOpen(repair);
  CHECK(LogMentions(log, "repair"));
  CHECK(LogMentions(log, std::to_string(2 * rec) + " bytes lost"));
  CHECK(std::filesystem::file_size(seg1) == 2 * rec);
  CHECK(GetOr(*s, "k10") == value);
  CHECK(GetOr(*s, "k11") == value);
  CHECK(GetOr(*s, "k12") == "<absent>");  // lost with the cut
  CHECK(GetOr(*s, "k13") == "<absent>");
  for (int i = 4; i < 12; i++) CHECK(GetOr(*s, "k" + std::to_string(10 + i)) == value);
  CHECK(s->size() == 10);
  s.reset();
  s = MustOpen(o);  // repaired for good: a plain open works now
  CHECK(s->size() == 10);
}

TEST_CASE("recovery keeps the highest LSN of a key whatever file it is in") {
  // Two segments written out of LSN order, as compaction may leave them: the
  // older file holds the newer records.
  TempDir dir;
  std::string seg1, seg2;
  auto put = [](std::string* out, uint64_t lsn, std::string_view k, std::string_view v) {
    EncodeRecord(Record{lsn, RecordType::kPut, k, v}, out);
  };
  put(&seg1, 10, "x", "newest x");
  EncodeRecord(Record{11, RecordType::kDelete, "y", {}}, &seg1);
  put(&seg2, 3, "x", "old x");
  put(&seg2, 4, "y", "old y");
  put(&seg2, 5, "z", "only z");
  WriteFile(dir.file(SegmentFileName(1)), seg1);
  WriteFile(dir.file(SegmentFileName(2)), seg2);
  // Compacted segments hold sparse LSNs; the MANIFEST says which they are.
  Manifest m;
  m.clean = true;
  m.high_water = 11;
  m.log_start = 12;
  m.active_segment = 2;
  m.histories = {HistoryEntry{0x77, 1, 0}};
  m.compacted = {CompactedSegment{1, 10, 11}, CompactedSegment{2, 3, 5}};
  WriteFile(dir.file("MANIFEST"), EncodeManifest(m));
  auto s = MustOpen(TestOptions(dir.path()));
  CHECK(GetOr(*s, "x") == "newest x");
  CHECK(GetOr(*s, "y") == "<absent>");  // the tombstone (LSN 11) beats the put (LSN 4)
  CHECK(GetOr(*s, "z") == "only z");
  CHECK(s->size() == 2);
  CHECK(s->last_lsn() == 11);
  uint64_t lsn;
  REQUIRE(s->Put("w", "next", &lsn).ok());
  CHECK(lsn == 12);
}

TEST_CASE("unfinished .tmp files are removed at open") {
  TempDir dir;
  WriteFile(dir.file("000000000007.seg.tmp"), "partial");
  auto s = MustOpen(TestOptions(dir.path()));
  CHECK_FALSE(std::filesystem::exists(dir.file("000000000007.seg.tmp")));
}

TEST_CASE(
    "an index sized from the hint files' entry counts recovers what one grown key by key and a "
    "full scan recover") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 64 << 10;  // many sealed segments
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    // Overwrites and deletes across segments: more hint entries than keys.
    // A compaction after round 1 puts the older records into segments with
    // higher ids than the one round 2 begins in: file order is not LSN
    // order, and only the highest-LSN rule gets round 2's values.
    for (int round = 0; round < 3; round++) {
      if (round == 2) REQUIRE(s->Compact().ok());
      for (int i = 0; i < 3000; i++) {
        REQUIRE(s->Put("k" + std::to_string(i), std::to_string(round) + std::string(20, 'v'), &lsn)
                    .ok());
      }
      for (int i = round; i < 3000; i += 11) REQUIRE(s->Remove("k" + std::to_string(i), &lsn).ok());
    }
    REQUIRE(s->Flush().ok());
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    REQUIRE(job);
    Status st = job->Run();
    REQUIRE(st.ok());
    s->FinishJob(std::move(job), st);
  }
  auto dump = [&](bool sized, uint64_t* hint_files) {
    Options opts = o;
    opts.size_index_from_hints = sized;
    auto s = MustOpen(opts);
    std::string out;
    std::map<std::string, std::string> sorted;
    REQUIRE(s->ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
               sorted[std::string(k)] = std::string(v) + "@" + std::to_string(lsn);
             }).ok());
    for (const auto& [k, v] : sorted) out += k + "=" + v + " ";
    *hint_files = s->Stats().hint_files;
    return out;
  };
  uint64_t hinted = 0;
  const std::string sized = dump(true, &hinted);
  CHECK(hinted > 3);
  CHECK(dump(false, &hinted) == sized);
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().extension() == ".hint") std::filesystem::remove(e.path());
  }
  CHECK(dump(true, &hinted) == sized);
  CHECK(hinted == 0);
  CHECK(sized.find("k0=2") != std::string::npos);  // deleted in round 0, put again
  CHECK(sized.find("k2=") == std::string::npos);   // deleted last in round 2
  CHECK(sized.find("k1=2") != std::string::npos);  // round 2's value
}
