// Atomic groups (record_format.h): PutAtomic's records survive a crash all
// or none. A crash is simulated by cutting the newest segment at every byte
// inside the group: recovery must then show none of the group, and the
// records before it intact; a whole group is fully there.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;

namespace {

std::vector<std::pair<std::string_view, std::string_view>> Group() {
  return {{"g:a", "alpha"}, {"g:b", "beta"}, {"g:c", "gamma"}};
}

}  // namespace

TEST_CASE("PutAtomic: a group cut anywhere by a crash comes back all or none") {
  testing::TempDir dir;
  std::string seg_path;
  uint64_t before_group = 0, after_group = 0;
  {
    auto store = testing::MustOpen(testing::TestOptions(dir.path()));
    uint64_t lsn;
    REQUIRE(store->Put("before", "x", &lsn).ok());
    REQUIRE(store->Flush().ok());
    before_group = std::filesystem::file_size(dir.file(SegmentFileName(1)));
    std::vector<uint64_t> lsns;
    REQUIRE(store->PutAtomic(Group(), &lsns).ok());
    REQUIRE(lsns.size() == 3);
    CHECK(lsns[0] + 1 == lsns[1]);
    REQUIRE(store->Flush().ok());
    after_group = std::filesystem::file_size(dir.file(SegmentFileName(1)));
  }
  seg_path = dir.file(SegmentFileName(1));
  std::string full;
  {
    std::ifstream in(seg_path, std::ios::binary);
    full.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(full.size() == after_group);

  for (uint64_t cut = before_group; cut <= after_group; ++cut) {
    {
      std::ofstream out(seg_path, std::ios::binary | std::ios::trunc);
      out.write(full.data(), static_cast<std::streamsize>(cut));
    }
    testing::MarkCrashed(dir.path());  // else the MANIFEST's clean close names the lost LSNs
    auto store = testing::MustOpen(testing::TestOptions(dir.path()));
    std::string v;
    INFO("cut at " << cut);
    CHECK(store->Get("before", &v).ok());
    const bool whole = cut == after_group;
    int present = 0;
    for (const char* k : {"g:a", "g:b", "g:c"}) present += store->Get(k, &v).ok();
    CHECK(present == (whole ? 3 : 0));
    // The cut removed the partial group from the file too.
    CHECK(std::filesystem::file_size(seg_path) == (whole ? after_group : before_group));
  }
}

TEST_CASE("PutAtomic: the group's bit travels in the record and older records read as before") {
  std::string buf;
  Record r;
  r.lsn = 5;
  r.key = "k";
  r.value = "v";
  r.group_continues = true;
  EncodeRecord(r, &buf);
  CHECK((static_cast<uint8_t>(buf[12]) & kGroupContinuesBit) != 0);
  Record back;
  size_t used = 0;
  REQUIRE(DecodeRecord(buf, &back, &used).ok());
  CHECK(back.group_continues);
  CHECK(back.type == RecordType::kPut);
  buf.clear();
  r.group_continues = false;
  EncodeRecord(r, &buf);
  CHECK(static_cast<uint8_t>(buf[12]) == 1);  // unchanged for plain records
  REQUIRE(DecodeRecord(buf, &back, &used).ok());
  CHECK_FALSE(back.group_continues);
}

TEST_CASE("PutAtomic keeps a group in one segment and refuses bad keys before staging any") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  o.segment_bytes = 100;
  auto store = testing::MustOpen(o);
  uint64_t lsn;
  REQUIRE(store->Put("first", std::string(60, 'x'), &lsn).ok());
  std::vector<uint64_t> lsns;
  const std::string big(30, 'y');
  REQUIRE(store->PutAtomic({{"a", big}, {"b", big}, {"c", big}}, &lsns).ok());
  REQUIRE(store->Flush().ok());
  // The group (3 x 52 bytes) did not fit after "first": it starts segment 2, whole.
  CHECK(std::filesystem::file_size(dir.file(SegmentFileName(2))) == 3 * EncodedRecordSize(1, 30));
  const uint64_t last = store->last_lsn();
  CHECK_FALSE(store->PutAtomic({{"ok", "1"}, {"", "empty key"}}, &lsns).ok());
  CHECK(store->last_lsn() == last);
}

TEST_CASE("PutAtomic: compaction writes a group's surviving records as groups of one") {
  testing::TempDir dir;
  Options o = testing::TestOptions(dir.path());
  o.segment_bytes = 200;
  uint64_t group_first = 0;
  {
    auto store = testing::MustOpen(o);
    std::vector<uint64_t> lsns;
    REQUIRE(store->PutAtomic(Group(), &lsns).ok());
    group_first = lsns[0];
    uint64_t lsn;
    // g:b and g:c are overwritten: only g:a of the group is live.
    REQUIRE(store->Put("g:b", "later", &lsn).ok());
    REQUIRE(store->Put("g:c", "later", &lsn).ok());
    for (int i = 0; i < 8; ++i) REQUIRE(store->Put("fill" + std::to_string(i), "x", &lsn).ok());
    REQUIRE(store->Flush().ok());
    REQUIRE(store->Compact().ok());
    REQUIRE(store->Stats().compactions == 1);
    // What a restart or a replica reads: no record says "group continues".
    size_t records = 0;
    bool saw_group_first = false;
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      if (f.path().extension() != ".seg") continue;
      std::ifstream in(f.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      for (std::string_view rest = bytes; !rest.empty();) {
        Record r;
        size_t used = 0;
        REQUIRE(DecodeRecord(rest, &r, &used).ok());
        CHECK_FALSE(r.group_continues);
        saw_group_first |= r.lsn == group_first;
        rest.remove_prefix(used);
        records++;
      }
    }
    CHECK(saw_group_first);
    CHECK(records >= 10);
  }
  auto store = testing::MustOpen(o);
  std::string v;
  REQUIRE(store->Get("g:a", &v).ok());
  CHECK(v == "alpha");
  REQUIRE(store->Get("g:c", &v).ok());
  CHECK(v == "later");
}
