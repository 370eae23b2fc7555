// Replication histories kept by the store: which (history, LSN) pairs are a
// prefix of its log, a replica adopting its primary's history, a promoted
// node beginning one, and all of it surviving a restart.
#include <doctest/doctest.h>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

void PutN(Store& s, int n) {
  uint64_t lsn;
  for (int i = 0; i < n; i++) REQUIRE(s.Put("k" + std::to_string(i), "v", &lsn).ok());
  REQUIRE(s.Flush().ok());
}

}  // namespace

TEST_CASE("history: a log shares its own history up to its durable end, and no other") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  PutN(*s, 10);
  const uint64_t h = s->history_id();
  uint64_t fork = 99;
  CHECK(s->SharesHistory(h, 10, &fork));
  CHECK(s->SharesHistory(0, 0, &fork));         // an empty replica shares everything
  CHECK_FALSE(s->SharesHistory(h, 11, &fork));  // ahead of this log
  CHECK(fork == 10);
  CHECK_FALSE(s->SharesHistory(h + 1, 5, &fork));  // a history this log never had
  CHECK(fork == 0);
  CHECK(s->HistoryAt(5) == h);
}

TEST_CASE("history: a promotion begins a new one; the old one ends where it took over") {
  TempDir dir;
  uint64_t old_history, new_history;
  {
    auto s = MustOpen(TestOptions(dir.path()));
    PutN(*s, 10);
    old_history = s->history_id();
    s->BeginHistory();
    new_history = s->history_id();
    CHECK(new_history != old_history);
    PutN(*s, 5);  // the batch writes the MANIFEST with the new history
  }
  auto s = MustOpen(TestOptions(dir.path()));
  CHECK(s->history_id() == new_history);
  uint64_t fork = 0;
  CHECK(s->SharesHistory(old_history, 10, &fork));
  // A deposed primary that wrote LSNs 11.. in the old history diverged at 10.
  CHECK_FALSE(s->SharesHistory(old_history, 12, &fork));
  CHECK(fork == 10);
  CHECK(s->SharesHistory(new_history, 15, &fork));
  CHECK(s->HistoryAt(10) == old_history);
  CHECK(s->HistoryAt(11) == new_history);
}

TEST_CASE("history: a replica adopts its primary's history, and a restart keeps it") {
  TempDir primary_dir, replica_dir;
  auto primary = MustOpen(TestOptions(primary_dir.path()));
  PutN(*primary, 3);
  const uint64_t ph = primary->history_id();
  {
    auto replica = MustOpen(TestOptions(replica_dir.path()));
    CHECK(replica->history_id() != ph);  // a new store's own
    replica->AdoptHistory(ph);
    CHECK(replica->history_id() == ph);
    std::unique_ptr<LogCursor> c;
    REQUIRE(primary->NewLogCursor(0, &c).ok());
    std::string out;
    REQUIRE(c->Next(&out, 1 << 20).ok());
    std::string_view rest(out);
    while (!rest.empty()) {
      Record r;
      size_t n;
      REQUIRE(DecodeRecord(rest, &r, &n).ok());
      REQUIRE(replica->Apply(r).ok());
      rest.remove_prefix(n);
    }
    REQUIRE(replica->Flush().ok());
  }
  auto replica = MustOpen(TestOptions(replica_dir.path()));
  CHECK(replica->HistoryAt(replica->last_lsn()) == ph);
  uint64_t fork = 0;
  CHECK(
      primary->SharesHistory(replica->HistoryAt(replica->last_lsn()), replica->last_lsn(), &fork));
}
