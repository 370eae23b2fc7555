// CommitPipeline: answers come once a write's batch is durable and in LSN
// order; writers answered by a slow batch are gathered into the next one;
// a held batch starts when the wait runs out or when the pipeline drains; a
// failed batch fails every write it undid.
//
// Slow syncs come from the store's fault hook (it sleeps before each sync),
// so whether batches are held depends on the hook, not on this machine's disk.
// Batches are held only under fsync = "always", and also when they take
// well under libuv's millisecond.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "src/shard/commit_pipeline.h"
#include "tests/unit/replication/replication_test_util.h"

namespace distkv {
namespace {

using repltest::TestLoop;
using storage::testing::MustOpen;
using storage::testing::TempDir;
using storage::testing::TestOptions;

// fsync = always, every sync preceded by a sleep of sync_delay_us.
storage::Options SlowSyncOptions(const std::string& dir, useconds_t sync_delay_us) {
  storage::Options o = TestOptions(dir);
  o.fsync = storage::FsyncMode::kAlways;
  o.fault_hook = [sync_delay_us](std::string_view step) {
    if (step == "sync") ::usleep(sync_delay_us);
    return 0;
  };
  return o;
}

// A client writer that, once a write is acknowledged, comes back with its
// next one on a later loop turn (as a client does after reading its answer),
// until it has made `writes` writes.
class Writer {
 public:
  Writer(uv_loop_t* loop, storage::Store* store, CommitPipeline* pipeline, int id, int writes)
      : store_(store), pipeline_(pipeline), id_(id), left_(writes) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop, timer_);
    timer_->data = this;
  }
  ~Writer() {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  // Stages the write now; Submit() asks for its acknowledgement.
  void Stage() {
    REQUIRE(store_->Put("w" + std::to_string(id_) + ":" + std::to_string(left_), "v", &lsn_).ok());
    left_--;
  }
  void Submit() {
    pipeline_->WhenDurable(
        lsn_,
        [this, lsn = lsn_](const storage::Status& s) {
          CHECK(s.ok());
          CHECK(store_->durable_lsn() >= lsn);
          acked_++;
          if (left_ > 0) {
            uv_timer_start(
                timer_,
                [](uv_timer_t* t) {
                  auto* w = static_cast<Writer*>(t->data);
                  w->Stage();
                  w->Submit();
                },
                0, 0);
          }
        },
        CommitPipeline::Waiting::kClientWrite);
  }
  int acked() const { return acked_; }

 private:
  storage::Store* store_;
  CommitPipeline* pipeline_;
  uv_timer_t* timer_;
  int id_;
  int left_;
  int acked_ = 0;
  uint64_t lsn_ = 0;
};

struct Fixture {
  explicit Fixture(const storage::Options& o) {
    store = MustOpen(o);
    pipeline = std::make_unique<CommitPipeline>(loop.get(), store.get());
  }
  ~Fixture() {
    bool drained = false;
    pipeline->Drain([&drained] { drained = true; });
    loop.RunUntil([&] { return drained; });
    writers.clear();
    pipeline.reset();
  }
  // n writers of `writes` writes each; their first writes all in one batch.
  void StartWriters(int n, std::vector<int> writes) {
    for (int i = 0; i < n; i++) {
      writers.push_back(std::make_unique<Writer>(loop.get(), store.get(), pipeline.get(), i,
                                                 writes[static_cast<size_t>(i)]));
    }
    for (auto& w : writers) w->Stage();
    for (auto& w : writers) w->Submit();
  }
  int Acked() const {
    int n = 0;
    for (const auto& w : writers) n += w->acked();
    return n;
  }

  TestLoop loop;  // declared first: destroyed last
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<CommitPipeline> pipeline;
  std::vector<std::unique_ptr<Writer>> writers;
};

TEST_CASE("commit pipeline: each write is answered after its batch is durable, in LSN order") {
  TempDir dir;
  storage::Options o = TestOptions(dir.path());
  o.fsync = storage::FsyncMode::kAlways;
  Fixture f(o);
  std::vector<uint64_t> answered;
  for (int i = 0; i < 50; i++) {
    uint64_t lsn = 0;
    REQUIRE(f.store->Put("k" + std::to_string(i), "v", &lsn).ok());
    f.pipeline->WhenDurable(lsn, [&, lsn](const storage::Status& s) {
      CHECK(s.ok());
      CHECK(f.store->durable_lsn() >= lsn);
      answered.push_back(lsn);
    });
  }
  REQUIRE(f.loop.RunUntil([&] { return answered.size() == 50; }));
  for (size_t i = 0; i < answered.size(); i++) CHECK(answered[i] == i + 1);
  CHECK(f.pipeline->counters().batch_records == 50);
  CHECK(f.pipeline->waiting() == 0);

  // A write that is already durable is answered at once.
  bool now = false;
  f.pipeline->WhenDurable(answered.back(), [&](const storage::Status& s) { now = s.ok(); });
  CHECK(now);
}

// Eight writers of six writes each, every one coming back as soon as it is
// answered: each batch after the first waits for all eight. Without
// gathering, the first writer back would start a batch of one and the other
// seven would follow in a second: twice as many batches.
void CheckWritersGathered(Fixture& f) {
  constexpr int kWriters = 8, kRounds = 6;
  f.StartWriters(kWriters, std::vector<int>(kWriters, kRounds));
  REQUIRE(f.loop.RunUntil([&] { return f.Acked() == kWriters * kRounds; }));
  const auto& c = f.pipeline->counters();
  CHECK(c.batches == kRounds);
  CHECK(c.max_batch_records == kWriters);
  CHECK(c.lingered == kRounds - 1);
  CHECK(c.linger_timeouts == 0);
}

TEST_CASE("commit pipeline: writers answered by a slow batch are gathered into the next one") {
  TempDir dir;
  Fixture f(SlowSyncOptions(dir.path(), 5000));
  CheckWritersGathered(f);
  CHECK(f.pipeline->linger_ns() >= 5'000'000);
  // Each batch's run (write + sync) took the 5 ms sleep at least, and is
  // part of its whole time on the thread pool.
  const auto& c = f.pipeline->counters();
  CHECK(c.batch_run_us >= 5000 * c.batches);
  CHECK(c.batch_run_us <= c.batch_us);
}

TEST_CASE("commit pipeline: writers are gathered when a batch takes well under a millisecond") {
  // On tmpfs a sync costs nothing but the hook's sleep, so the batches take
  // well under a millisecond. libuv's timers count whole milliseconds; the
  // wait is measured finer, so such batches still merge the writers they
  // answered.
  TempDir dir("/dev/shm");
  Fixture f(SlowSyncOptions(dir.path(), 300));
  CheckWritersGathered(f);
  CHECK(f.pipeline->linger_ns() >= 300'000);
}

TEST_CASE("commit pipeline: batches that do not sync are never held") {
  TempDir dir;
  // fsync = never, each batch's write slowed to 5 ms: batches as slow as
  // the synced ones above, but waiting for company would only add to them.
  storage::Options o = TestOptions(dir.path());
  o.fault_hook = [](std::string_view step) {
    if (step == "write") ::usleep(5000);
    return 0;
  };
  Fixture f(o);
  f.StartWriters(8, std::vector<int>(8, 3));
  REQUIRE(f.loop.RunUntil([&] { return f.Acked() == 24; }));
  CHECK(f.pipeline->counters().lingered == 0);
  CHECK(f.pipeline->linger_ns() == 0);
}

TEST_CASE("commit pipeline: waits that are not client writes never hold a batch") {
  TempDir dir;
  Fixture f(SlowSyncOptions(dir.path(), 5000));
  // Eight waits of a replica's stream, say, in one batch: answering them
  // brings nothing back sooner, so the next write must not wait for eight.
  int acked = 0;
  auto put_and_wait = [&](int n) {
    std::vector<uint64_t> lsns(static_cast<size_t>(n));
    for (uint64_t& lsn : lsns) REQUIRE(f.store->Put("k" + std::to_string(acked), "v", &lsn).ok());
    for (uint64_t lsn : lsns) {
      f.pipeline->WhenDurable(lsn, [&](const storage::Status& s) { acked += s.ok() ? 1 : 0; });
    }
  };
  put_and_wait(8);
  REQUIRE(f.loop.RunUntil([&] { return acked == 8; }));
  put_and_wait(1);
  REQUIRE(f.loop.RunUntil([&] { return acked == 9; }));
  CHECK(f.pipeline->counters().batches == 2);
  CHECK(f.pipeline->counters().lingered == 0);
}

TEST_CASE("commit pipeline: a held batch starts when the wait runs out") {
  TempDir dir;
  Fixture f(SlowSyncOptions(dir.path(), 5000));
  // Eight writers wait on the first batch; only three write again.
  f.StartWriters(8, {2, 2, 2, 1, 1, 1, 1, 1});
  REQUIRE(f.loop.RunUntil([&] { return f.Acked() == 11; }));
  const auto& c = f.pipeline->counters();
  CHECK(c.batches == 2);
  CHECK(c.lingered == 1);
  CHECK(c.linger_timeouts == 1);
}

TEST_CASE("commit pipeline: draining starts a held batch at once") {
  TempDir dir;
  Fixture f(SlowSyncOptions(dir.path(), 5000));
  f.StartWriters(8, {1, 1, 1, 1, 1, 1, 1, 1});
  REQUIRE(f.loop.RunUntil([&] { return f.Acked() == 8; }));
  // Eight writers were answered; one writes again, so its batch is held...
  uint64_t lsn = 0;
  REQUIRE(f.store->Put("late", "v", &lsn).ok());
  bool acked = false, drained = false;
  f.pipeline->WhenDurable(lsn, [&](const storage::Status& s) { acked = s.ok(); });
  CHECK(f.pipeline->counters().lingered == 1);
  // ...until the pipeline drains.
  f.pipeline->Drain([&] { drained = true; });
  REQUIRE(f.loop.RunUntil([&] { return drained; }));
  CHECK(acked);
  CHECK(f.pipeline->counters().linger_timeouts == 0);
  CHECK(f.store->durable_lsn() == lsn);
}

TEST_CASE("commit pipeline: a failed batch fails every write it undid, and the next one works") {
  TempDir dir;
  storage::Options o = TestOptions(dir.path());
  o.fsync = storage::FsyncMode::kAlways;
  auto fail = std::make_shared<bool>(true);
  o.fault_hook = [fail](std::string_view step) { return step == "write" && *fail ? ENOSPC : 0; };
  Fixture f(o);
  int failed = 0;
  for (int i = 0; i < 5; i++) {
    uint64_t lsn = 0;
    REQUIRE(f.store->Put("k" + std::to_string(i), "v", &lsn).ok());
    f.pipeline->WhenDurable(lsn, [&](const storage::Status& s) { failed += !s.ok(); });
  }
  REQUIRE(f.loop.RunUntil([&] { return failed == 5; }));
  CHECK(f.pipeline->counters().batch_failures == 1);
  CHECK(f.store->size() == 0);

  *fail = false;
  uint64_t lsn = 0;
  REQUIRE(f.store->Put("k", "v", &lsn).ok());
  bool ok = false;
  f.pipeline->WhenDurable(lsn, [&](const storage::Status& s) { ok = s.ok(); });
  REQUIRE(f.loop.RunUntil([&] { return ok; }));
  CHECK(f.store->durable_lsn() == lsn);
}

TEST_CASE(
    "commit pipeline: after a failed sync the batch's writers hear 'may or may not', the "
    "rest 'failed', and the store takes no more writes") {
  TempDir dir;
  storage::Options o = TestOptions(dir.path());
  o.fsync = storage::FsyncMode::kAlways;
  auto fail = std::make_shared<bool>(false);
  o.fault_hook = [fail](std::string_view step) { return step == "sync" && *fail ? EIO : 0; };
  Fixture f(o);
  uint64_t lsn = 0;
  REQUIRE(f.store->Put("first", "v", &lsn).ok());
  bool first_ok = false;
  f.pipeline->WhenDurable(lsn, [&](const storage::Status& s) { first_ok = s.ok(); });
  REQUIRE(f.loop.RunUntil([&] { return first_ok; }));
  *fail = true;
  std::vector<std::string> answers;
  for (int i = 0; i < 5; i++) {
    REQUIRE(f.store->Put("k" + std::to_string(i), "v", &lsn).ok());
    f.pipeline->WhenDurable(lsn,
                            [&](const storage::Status& s) { answers.push_back(s.ToString()); });
  }
  REQUIRE(f.loop.RunUntil([&] { return answers.size() == 5; }));
  // The batch in flight was written: "may or may not be stored". Writes
  // staged behind it never reached the file: plain failures.
  size_t maybe = 0;
  for (const std::string& a : answers) {
    CHECK(a != "OK");
    maybe += a.find("may or may not") != std::string::npos;
  }
  CHECK(maybe >= 1);
  CHECK_FALSE(f.store->writable().ok());
  CHECK_FALSE(f.store->Put("k", "v", &lsn).ok());
}

TEST_CASE("commit pipeline: a read of a staged write is answered only once that write is durable") {
  TempDir dir;
  Fixture f(SlowSyncOptions(dir.path(), 20'000));
  uint64_t first = 0, second = 0;
  REQUIRE(f.store->Put("a", "1", &first).ok());
  bool first_acked = false, second_acked = false;
  f.pipeline->WhenDurable(first, [&](const storage::Status& s) { first_acked = s.ok(); });
  // While the first batch is in flight a second write is staged behind it.
  REQUIRE(f.store->Put("b", "2", &second).ok());
  f.pipeline->WhenDurable(second, [&](const storage::Status& s) { second_acked = s.ok(); });
  // Readers that saw the second write, then the first, arrive out of order.
  std::vector<uint64_t> read_order;
  bool second_acked_before_read = false;
  f.pipeline->WhenReadable(second, [&](const storage::Status& s) {
    CHECK(s.ok());
    CHECK(f.store->durable_lsn() >= second);
    second_acked_before_read = second_acked;
    read_order.push_back(second);
  });
  f.pipeline->WhenReadable(first, [&](const storage::Status& s) {
    CHECK(s.ok());
    CHECK(f.store->durable_lsn() >= first);
    read_order.push_back(first);
  });
  REQUIRE(f.loop.RunUntil([&] { return read_order.size() == 2; }));
  CHECK(read_order == std::vector<uint64_t>{first, second});
  CHECK(first_acked);
  CHECK(second_acked_before_read);  // writers are answered first
  CHECK(f.pipeline->counters().reads_held == 2);
  CHECK(f.pipeline->readers_waiting() == 0);

  // Once durable, or with nothing staged, a read is answered at once.
  bool now = false;
  f.pipeline->WhenReadable(second, [&](const storage::Status& s) { now = s.ok(); });
  CHECK(now);
  CHECK(f.pipeline->counters().reads_held == 2);
}

TEST_CASE("commit pipeline: a read waiting on a batch that fails hears the error") {
  TempDir dir;
  storage::Options o = TestOptions(dir.path());
  o.fsync = storage::FsyncMode::kAlways;
  o.fault_hook = [](std::string_view step) { return step == "write" ? ENOSPC : 0; };
  Fixture f(o);
  uint64_t lsn = 0;
  REQUIRE(f.store->Put("k", "v", &lsn).ok());
  // No writer asked for this one: the reader alone gets the batch going.
  std::string heard;
  f.pipeline->WhenReadable(lsn, [&](const storage::Status& s) { heard = s.ToString(); });
  REQUIRE(f.loop.RunUntil([&] { return !heard.empty(); }));
  CHECK(heard != "OK");
  CHECK(f.store->size() == 0);  // undone: a read made again finds nothing
}

}  // namespace
}  // namespace distkv
