// Compactor: runs a shard store's background jobs — compactions and hint
// files — on the event loop's terms.
//
// A job is planned on the loop (Store::TakeCompaction / TakeHintJob), runs
// off the loop (StoreJob::Run: its long part on a thread of its own at a
// low CPU priority, see background_thread.h), and is adopted on the loop
// (Store::FinishJob): the group-commit pattern, so the loop never waits on
// the disk. After a compaction the index is repointed a slice of
// step_entries per loop turn (a uv_idle handle), so even a store of
// millions of keys never holds the loop for more than a few milliseconds.
//
// Triggers: Start() (POST /admin/compact), and a check every check_ms that
// starts one when the dead bytes of sealed segments pass dead_ratio of the
// sealed bytes and min_bytes. When no compaction is due, the same check
// writes the hint files of segments sealed since the last one. A compaction
// that failed is not retried automatically before a back-off that doubles
// from one check interval to 64 (disk full, a damaged segment: the log says
// why).
//
// What people see: a running compaction is on the progress board as
// "compaction" (input bytes processed of the total, refreshed every
// kProgressMs while the job runs off the loop, then "repointing the index"),
// and its start and its end (segments in and out, bytes reclaimed, or why it
// failed) are events.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "src/obs/events.h"
#include "src/obs/json_writer.h"
#include "src/obs/progress.h"
#include "src/obs/prometheus.h"
#include "src/shard/background_thread.h"
#include "storage/store.h"

namespace distkv {

struct CompactorOptions {
  double dead_ratio = 0.5;           // of the sealed bytes; 0 disables the automatic trigger
  uint64_t min_bytes = 64ull << 20;  // dead bytes below this never trigger one
  uint64_t check_ms = 1000;
  size_t step_entries = 8192;  // index entries repointed per loop turn
  // The CPU priority of a job's long part (background_thread.h).
  JobPriority priority = JobPriority::kIdle;
  // A compaction's reads and writes in bytes per second (0: unpaced;
  // storage/rate_limiter.h).
  uint64_t bytes_per_s = 0;
  // The LSN above which a compaction must keep tombstones (what replicas
  // still need); asked when a compaction is planned. Empty: drop them all.
  std::function<uint64_t()> keep_tombstones_after;
  // Where a compaction shows its progress and its start and end; either may
  // be null. Both must outlive the compactor's last Stop().
  ProgressBoard* progress = nullptr;
  EventLog* events = nullptr;
};

class Compactor {
 public:
  Compactor(uv_loop_t* loop, storage::Store* store, CompactorOptions options);
  ~Compactor();
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  enum class StartResult { kStarted, kRunning, kNothingToDo };
  // Starts a compaction now (why names the trigger in the log).
  StartResult Start(const char* why);
  // A compaction runs or repoints the index.
  bool running() const;
  // No new jobs from now on; done is called once the job in flight (if any)
  // has finished, so the store may be closed.
  void Stop(std::function<void()> done);

  // The "compaction" object of /stats (without the key), and /metrics lines.
  void WriteJson(JsonWriter* w) const;
  void WritePrometheus(PromWriter* prom) const;

  struct Counters {
    uint64_t started_manual = 0;
    uint64_t started_auto = 0;
    uint64_t hint_jobs = 0;
    uint64_t last_ms = 0;  // duration of the last compaction, start to release
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Work;
  void Check();
  void Submit(std::unique_ptr<storage::StoreJob> job);
  static void RunPart(Work* work, int part);
  void OnJobDone(Work* work);
  void MaybeStopped();
  static void OnTimer(uv_timer_t* timer);
  static void OnIdle(uv_idle_t* idle);
  // The progress board and the events (see the top of this file).
  void ReportStart(const char* why, const storage::StoreJob& job);
  void ReportEnd(const std::string& outcome, bool failed);
  static void OnProgressTimer(uv_timer_t* timer);

  uv_loop_t* loop_;
  storage::Store* store_;
  CompactorOptions options_;
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  uv_timer_t* progress_timer_ = nullptr;
  const storage::StoreJob* job_ = nullptr;  // in flight off the loop
  const char* pending_ = nullptr;           // a compaction asked for while a hint job ran
  bool stopping_ = false;
  std::function<void()> stopped_;
  uint64_t started_ms_ = 0;
  uint64_t backoff_checks_ = 0;  // checks to skip after a failed compaction
  uint64_t backoff_next_ = 1;
  std::shared_ptr<bool> alive_;
  Counters counters_;
  // The compaction being reported: from ReportStart to ReportEnd.
  bool reporting_ = false;
  uint64_t report_total_ = 0;
  size_t report_inputs_ = 0, report_outputs_ = 0;
  uint64_t reclaimed_before_ = 0;
};

}  // namespace distkv
