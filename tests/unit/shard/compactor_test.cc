// Compactor: a compaction's merge runs at the CPU priority it was given
// (SCHED_IDLE, nice 19, or the thread pool's), on a thread that is not the
// loop's; the two steps that write the MANIFEST run at normal priority
// whatever the setting; and the compaction's result is the same each way.
//
// Each step of a compaction calls the store's fault hook from the thread
// that runs it, so the hook reads that thread's scheduling policy and nice
// value.
#include <doctest/doctest.h>

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>

#include "src/shard/compactor.h"
#include "tests/unit/storage/storage_test_util.h"

namespace distkv {
namespace {

using storage::testing::MustOpen;
using storage::testing::TempDir;
using storage::testing::TestOptions;

struct Seen {
  int policy;
  int nice;
  bool on_loop;
};

// What each "compact:..." step saw, by step name.
struct Observer {
  std::mutex mu;
  std::map<std::string, Seen> steps;
  pid_t loop_tid = gettid();
};

bool RunUntil(uv_loop_t* loop, const std::function<bool()>& cond) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 2, 2);
  const uint64_t deadline = uv_hrtime() + 60'000'000'000ull;
  bool ok = cond();
  while (!ok && uv_hrtime() < deadline) {
    uv_run(loop, UV_RUN_ONCE);
    ok = cond();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

// Compacts a store of overwritten keys with the given priority; returns
// what the steps saw.
std::map<std::string, Seen> CompactAt(JobPriority priority) {
  TempDir dir;
  Observer obs;
  storage::Options o = TestOptions(dir.path());
  o.segment_bytes = 4096;
  o.fault_hook = [&obs](std::string_view step) {
    if (step.substr(0, 8) != "compact:") return 0;
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    std::lock_guard<std::mutex> lock(obs.mu);
    obs.steps.emplace(std::string(step),
                      Seen{sched_getscheduler(0), nice, gettid() == obs.loop_tid});
    return 0;
  };
  std::unique_ptr<storage::Store> store = MustOpen(o);
  uint64_t lsn;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 200; i++) {
      REQUIRE(store->Put("k" + std::to_string(i), "v" + std::to_string(round), &lsn).ok());
    }
    REQUIRE(store->Flush().ok());
  }
  const uint64_t sealed_before = store->Stats().sealed_bytes;
  REQUIRE(sealed_before > 0);

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    CompactorOptions co;
    co.dead_ratio = 0;  // only when asked
    co.priority = priority;
    Compactor compactor(&loop, store.get(), co);
    REQUIRE(compactor.Start("test") == Compactor::StartResult::kStarted);
    REQUIRE(RunUntil(&loop, [&] { return !compactor.running(); }));
    bool stopped = false;
    compactor.Stop([&] { stopped = true; });
    REQUIRE(RunUntil(&loop, [&] { return stopped; }));
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);

  const storage::StoreStats st = store->Stats();
  CHECK(st.compactions == 1);
  CHECK(st.sealed_bytes < sealed_before);
  for (int i = 0; i < 200; i++) {
    std::string v;
    REQUIRE(store->Get("k" + std::to_string(i), &v).ok());
    CHECK(v == "v4");
  }
  std::lock_guard<std::mutex> lock(obs.mu);
  REQUIRE(obs.steps.count("compact:reserve"));
  REQUIRE(obs.steps.count("compact:write"));
  REQUIRE(obs.steps.count("compact:commit"));
  for (const auto& [step, seen] : obs.steps) {
    if (step == "compact:release") continue;  // the loop deletes the old segments
    INFO(step);
    CHECK_FALSE(seen.on_loop);
  }
  return obs.steps;
}

TEST_CASE("compactor: the merge runs at the priority asked, the MANIFEST steps at normal") {
  errno = 0;
  const int own_nice = getpriority(PRIO_PROCESS, 0);
  REQUIRE(sched_getscheduler(0) == SCHED_OTHER);
  auto normal = [&](const Seen& s) { return s.policy == SCHED_OTHER && s.nice == own_nice; };

  SUBCASE("idle") {
    auto steps = CompactAt(JobPriority::kIdle);
    CHECK(steps["compact:write"].policy == SCHED_IDLE);
    CHECK(steps["compact:sync"].policy == SCHED_IDLE);
    CHECK(normal(steps["compact:reserve"]));
    CHECK(normal(steps["compact:commit"]));
  }
  SUBCASE("low") {
    auto steps = CompactAt(JobPriority::kLow);
    CHECK(steps["compact:write"].policy == SCHED_OTHER);
    CHECK(steps["compact:write"].nice == 19);
    CHECK(normal(steps["compact:reserve"]));
    CHECK(normal(steps["compact:commit"]));
  }
  SUBCASE("normal") {
    auto steps = CompactAt(JobPriority::kNormal);
    CHECK(normal(steps["compact:write"]));
    CHECK(normal(steps["compact:reserve"]));
    CHECK(normal(steps["compact:commit"]));
  }
}

}  // namespace
}  // namespace distkv
