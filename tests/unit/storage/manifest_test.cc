// MANIFEST: encoding round trip, strict decoding, atomic replacement, and
// what the store keeps in it (high-water mark, history, active segment).
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "storage/crc32c.h"
#include "storage/manifest.h"
#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

Manifest Sample() {
  Manifest m;
  m.clean = false;
  m.open_mode = FsyncMode::kEverySec;
  m.high_water = 1048999;
  m.log_start = 17;
  m.tombstone_horizon = 12;
  m.active_segment = 4;
  m.active_first_lsn = 800;
  m.histories = {HistoryEntry{0x0123456789abcdefull, 1, 0},
                 HistoryEntry{0xfedcba9876543210ull, 900, 850}};
  m.gaps = {LsnGap{851, 899}};
  m.compacted = {CompactedSegment{2, 1, 16}};
  return m;
}

Manifest ReadBack(const std::string& dir) {
  Manifest m;
  bool found = false;
  REQUIRE(ReadManifest(Io::Posix(), dir, &m, &found).ok());
  REQUIRE(found);
  return m;
}

}  // namespace

TEST_CASE("a MANIFEST decodes to what was encoded") {
  const Manifest m = Sample();
  const std::string text = EncodeManifest(m);
  Manifest back;
  REQUIRE(DecodeManifest(text, &back).ok());
  CHECK(back == m);
  CHECK(text.find("history fedcba9876543210 900 850\n") != std::string::npos);
  Manifest closed = m;
  closed.clean = true;
  REQUIRE(DecodeManifest(EncodeManifest(closed), &back).ok());
  CHECK(back.clean);
}

TEST_CASE("a damaged, cut or unknown MANIFEST is refused, never half-read") {
  const std::string text = EncodeManifest(Sample());
  Manifest out;
  for (size_t i = 0; i < text.size(); i++) {
    CAPTURE(i);
    std::string bad = text;
    bad[i] ^= 0x01;
    CHECK(DecodeManifest(bad, &out).IsCorruption());
    CHECK(DecodeManifest(text.substr(0, i), &out).IsCorruption());
  }
  // A valid CRC over an unknown field or version is still refused.
  auto with_crc = [](std::string body) {
    char crc[16];
    std::snprintf(crc, sizeof(crc), "%08x", static_cast<unsigned>(crc32c::Value(body)));
    return body + "crc " + crc + "\n";
  };
  const std::string body = text.substr(0, text.rfind("crc "));
  CHECK(DecodeManifest(with_crc(body + "colour blue\n"), &out).IsCorruption());
  std::string v2 = body;
  v2.replace(0, v2.find('\n'), "distkv-manifest 2");
  CHECK(DecodeManifest(with_crc(v2), &out).IsCorruption());
  CHECK(DecodeManifest(with_crc(body), &out).ok());
  // A field of one value, repeated (found by tests/fuzz/manifest_fuzz: the
  // second "state" line won, and the manifest no longer read back the same).
  CHECK(DecodeManifest(with_crc(body + "state closed\n"), &out).IsCorruption());
  CHECK(DecodeManifest(with_crc(body + "high_water 5\n"), &out).IsCorruption());
}

TEST_CASE(
    "a MANIFEST whose tombstone horizon or compacted segment is not below its log_start is "
    "refused") {
  // Found by tests/fuzz/manifest_fuzz: the store opened on such a MANIFEST,
  // took a write after a gap record naming a last LSN the log's checked part
  // did not end at, and then refused to open again.
  Manifest m = Sample();
  m.tombstone_horizon = m.log_start;
  Manifest out;
  Status s = DecodeManifest(EncodeManifest(m), &out);
  CHECK(s.IsCorruption());
  CHECK(std::string(s.message()).find("tombstone_horizon") != std::string::npos);
  m.tombstone_horizon = m.log_start - 1;
  CHECK(DecodeManifest(EncodeManifest(m), &out).ok());
  m.compacted.push_back(CompactedSegment{3, 17, 20});
  s = DecodeManifest(EncodeManifest(m), &out);
  CHECK(s.IsCorruption());
  CHECK(std::string(s.message()).find("compacted segment 3") != std::string::npos);
}

TEST_CASE("the store writes its MANIFEST: reservation while open, exact at a clean close") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  uint64_t history = 0;
  {
    auto s = MustOpen(o);
    history = s->history_id();
    CHECK(history != 0);
    Manifest m = ReadBack(dir.path());
    CHECK_FALSE(m.clean);
    CHECK(m.high_water == s->high_water_lsn());
    CHECK(m.high_water >= 1000);  // reserved ahead
    CHECK(m.history().id == history);
    CHECK(m.history().start_lsn == 1);
    uint64_t lsn;
    for (int i = 0; i < 5; i++) REQUIRE(s->Put("k" + std::to_string(i), "v", &lsn).ok());
    REQUIRE(s->Flush().ok());
    m = ReadBack(dir.path());
    CHECK(m.active_segment == 1);  // recorded by the batch that created the file
    CHECK(m.active_first_lsn == 1);
  }
  Manifest m = ReadBack(dir.path());
  CHECK(m.clean);
  CHECK(m.high_water == 5);
  CHECK(m.history().id == history);
  CHECK_FALSE(std::filesystem::exists(dir.file("MANIFEST.tmp")));

  // A clean reopen keeps the history and goes on at the next LSN.
  auto s = MustOpen(o);
  CHECK(s->history_id() == history);
  uint64_t lsn;
  REQUIRE(s->Put("x", "y", &lsn).ok());
  CHECK(lsn == 6);
}

TEST_CASE("after a crash the next LSN jumps past the reservation; everysec starts a new history") {
  for (FsyncMode mode : {FsyncMode::kAlways, FsyncMode::kEverySec}) {
    CAPTURE(FsyncModeName(mode));
    TempDir dir;
    Options o = TestOptions(dir.path());
    o.fsync = mode;
    uint64_t history, high_water;
    {
      auto s = MustOpen(o);
      uint64_t lsn;
      REQUIRE(s->Put("a", "1", &lsn).ok());
      REQUIRE(s->Flush().ok());
      history = s->history_id();
      high_water = s->high_water_lsn();
    }
    MarkCrashed(dir.path(), mode);
    {
      // The clean close made the mark exact (1); pretend the crash came first.
      Manifest m = ReadBack(dir.path());
      m.high_water = high_water;
      WriteFile(dir.file("MANIFEST"), EncodeManifest(m));
    }
    auto s = MustOpen(o);
    CHECK(s->last_lsn() == 1);
    uint64_t lsn;
    REQUIRE(s->Put("b", "2", &lsn).ok());
    CHECK(lsn == high_water + 2);  // the gap record takes high_water + 1
    if (mode == FsyncMode::kAlways) {
      CHECK(s->history_id() == history);
    } else {
      CHECK(s->history_id() != history);
      CHECK(s->history_start_lsn() == high_water + 1);
    }
    REQUIRE(s->Flush().ok());
    s.reset();
    s = MustOpen(o);  // the gap record makes the hole legitimate
    CHECK(GetOr(*s, "a") == "1");
    CHECK(GetOr(*s, "b") == "2");
    CHECK(s->last_lsn() == high_water + 2);
  }
}

TEST_CASE("a MANIFEST left half-written (MANIFEST.tmp) is ignored and removed") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  uint64_t history;
  {
    auto s = MustOpen(o);
    history = s->history_id();
  }
  WriteFile(dir.file("MANIFEST.tmp"), "distkv-manifest 1\nstate clo");
  auto s = MustOpen(o);
  CHECK(s->history_id() == history);
  CHECK_FALSE(std::filesystem::exists(dir.file("MANIFEST.tmp")));
}

TEST_CASE("a damaged MANIFEST stops Open; --repair rebuilds it with a new history") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  uint64_t history;
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    REQUIRE(s->Put("a", "1", &lsn).ok());
    history = s->history_id();
  }
  std::string text = ReadFile(dir.file("MANIFEST"));
  text[text.size() / 2] ^= 0x20;
  WriteFile(dir.file("MANIFEST"), text);
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  CHECK(st.IsCorruption());
  CHECK(st.message().find("MANIFEST") != std::string_view::npos);
  CHECK(st.message().find("--repair") != std::string_view::npos);
  o.repair = true;
  s = MustOpen(o);
  CHECK(GetOr(*s, "a") == "1");
  CHECK(s->history_id() != history);
}
