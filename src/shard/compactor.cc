// The compactor; the mechanism is described in compactor.h.
#include "src/shard/compactor.h"

#include <algorithm>
#include <cinttypes>

#include "net/uv_handle.h"
#include "src/obs/log.h"
#include "src/obs/metrics.h"
#include "src/obs/progress_bar.h"

namespace distkv {

namespace {
// How often the progress board shows a running job's bytes: a page or a
// command line polling /stats sees it move without a timer per percent.
constexpr uint64_t kProgressMs = 200;
constexpr const char* kBoardName = "compaction";
}  // namespace

struct Compactor::Work {
  Compactor* compactor;
  std::shared_ptr<bool> alive;
  uv_loop_t* loop;
  JobPriority priority;
  std::unique_ptr<storage::StoreJob> job;
  storage::Status status;
};

Compactor::Compactor(uv_loop_t* loop, storage::Store* store, CompactorOptions options)
    : loop_(loop),
      store_(store),
      options_(std::move(options)),
      alive_(std::make_shared<bool>(true)) {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(timer_, OnTimer, options_.check_ms, options_.check_ms);
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
  progress_timer_ = new uv_timer_t;
  uv_timer_init(loop_, progress_timer_);
  progress_timer_->data = this;
}

Compactor::~Compactor() {
  *alive_ = false;
  net::CloseAndDelete(timer_);
  net::CloseAndDelete(idle_);
  net::CloseAndDelete(progress_timer_);
}

bool Compactor::running() const {
  return pending_ != nullptr || (job_ && job_->is_compaction()) || store_->Stats().compacting;
}

Compactor::StartResult Compactor::Start(const char* why) {
  if (stopping_) return StartResult::kRunning;
  if (running()) return StartResult::kRunning;
  if (job_) {
    // A hint job holds the store's one job slot; it is short. The
    // compaction starts as soon as it ends.
    pending_ = why;
    return StartResult::kStarted;
  }
  storage::CompactionOptions co;
  co.bytes_per_s = options_.bytes_per_s;
  if (options_.keep_tombstones_after) co.keep_tombstones_after = options_.keep_tombstones_after();
  std::unique_ptr<storage::StoreJob> job = store_->TakeCompaction(co);
  if (!job) return store_->Stats().compacting ? StartResult::kRunning : StartResult::kNothingToDo;
  const storage::StoreStats st = store_->Stats();
  Logf(LogLevel::kInfo,
       "compaction started (%s): %" PRIu64 " sealed bytes, %" PRIu64
       " dead; keeping tombstones above LSN %" PRIu64,
       why, st.sealed_bytes, st.sealed_dead_bytes,
       co.keep_tombstones_after == UINT64_MAX ? 0 : co.keep_tombstones_after);
  started_ms_ = uv_now(loop_);
  if (std::string_view(why) != "automatic") counters_.started_manual++;
  ReportStart(why, *job);
  Submit(std::move(job));
  return StartResult::kStarted;
}

void Compactor::Submit(std::unique_ptr<storage::StoreJob> job) {
  Work* w = new Work;
  w->compactor = this;
  w->alive = alive_;
  w->loop = loop_;
  w->priority = options_.priority;
  job_ = job.get();
  w->job = std::move(job);
  RunPart(w, 0);
}

// Part 0 is the job's Begin(), 1 its Main(), 2 its End(). Only Main() runs
// at the configured priority: the others may hold the MANIFEST's lock, which
// the requests' batches also take (storage/store.h).
void Compactor::RunPart(Work* w, int part) {
  RunInBackground(
      w->loop, part == 1 ? w->priority : JobPriority::kNormal,
      [w, part] {  // the only part off the loop
        storage::StoreJob* job = w->job.get();
        w->status = part == 0 ? job->Begin() : part == 1 ? job->Main() : job->End();
      },
      [w, part] {
        if (!*w->alive) {  // the compactor is gone: so is the store's interest in the job
          delete w;
          return;
        }
        if (w->status.ok() && part < 2) return RunPart(w, part + 1);
        w->compactor->OnJobDone(w);
        delete w;
      });
}

void Compactor::OnJobDone(Work* w) {
  job_ = nullptr;
  const bool compaction = w->job->is_compaction();
  if (compaction) {
    uv_timer_stop(progress_timer_);
    report_outputs_ = w->job->output_segments();
  }
  store_->FinishJob(std::move(w->job), w->status);
  if (compaction) {
    if (w->status.ok()) {
      backoff_next_ = 1;
      if (reporting_ && options_.progress) {
        options_.progress->Update(kBoardName, report_total_, report_total_, "bytes",
                                  std::to_string(report_inputs_) + " segments into " +
                                      std::to_string(report_outputs_) + ", repointing the index");
      }
      uv_idle_start(idle_, OnIdle);
    } else {
      backoff_checks_ = backoff_next_;
      backoff_next_ = std::min<uint64_t>(backoff_next_ * 2, 64);
      Logf(LogLevel::kError, "compaction failed, retried automatically in %" PRIu64 " s: %s",
           backoff_checks_ * options_.check_ms / 1000, w->status.ToString().c_str());
      ReportEnd("failed: " + w->status.ToString(), true);
    }
  } else {
    counters_.hint_jobs++;
    if (const char* why = pending_) {
      pending_ = nullptr;
      if (!stopping_) Start(why);
    }
  }
  MaybeStopped();
}

void Compactor::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<Compactor*>(idle->data);
  if (self->store_->CompactionStep(self->options_.step_entries)) return;
  uv_idle_stop(idle);
  self->counters_.last_ms = uv_now(self->loop_) - self->started_ms_;
  const storage::StoreStats st = self->store_->Stats();
  Logf(LogLevel::kInfo,
       "compaction done in %" PRIu64 " ms: %" PRIu64 " live bytes, %" PRIu64 " dead, %" PRIu64
       " segments, %" PRIu64 " bytes reclaimed in all",
       self->counters_.last_ms, st.live_bytes, st.dead_bytes, st.segments, st.bytes_reclaimed);
  const uint64_t reclaimed =
      st.bytes_reclaimed - std::min(st.bytes_reclaimed, self->reclaimed_before_);
  self->ReportEnd(std::to_string(self->report_inputs_) + " segments (" +
                      HumanBytes(self->report_total_) + ") into " +
                      std::to_string(self->report_outputs_) + ", " + HumanBytes(reclaimed) +
                      " reclaimed in " + std::to_string(self->counters_.last_ms) + " ms",
                  false);
}

void Compactor::ReportStart(const char* why, const storage::StoreJob& job) {
  const storage::StoreStats st = store_->Stats();
  reporting_ = true;
  report_total_ = job.input_bytes();
  report_inputs_ = job.input_segments();
  report_outputs_ = 0;
  reclaimed_before_ = st.bytes_reclaimed;
  const std::string segments = std::to_string(report_inputs_) + " segments";
  if (options_.progress) {
    options_.progress->Update(kBoardName, 0, report_total_, "bytes", segments + ", copying");
  }
  if (options_.events) {
    options_.events->Add("compaction", std::string("started (") + why + "): " + segments + ", " +
                                           HumanBytes(report_total_) + " of which " +
                                           HumanBytes(st.sealed_dead_bytes) + " dead");
  }
  uv_timer_start(progress_timer_, OnProgressTimer, kProgressMs, kProgressMs);
}

void Compactor::OnProgressTimer(uv_timer_t* timer) {
  auto* self = static_cast<Compactor*>(timer->data);
  if (!self->reporting_ || !self->job_ || !self->job_->is_compaction()) return;
  if (!self->options_.progress) return;
  self->options_.progress->Update(kBoardName, self->job_->progress(), self->report_total_, "bytes",
                                  std::to_string(self->report_inputs_) + " segments, copying");
}

void Compactor::ReportEnd(const std::string& outcome, bool failed) {
  if (!reporting_) return;
  reporting_ = false;
  uv_timer_stop(progress_timer_);
  if (options_.progress) options_.progress->Finish(kBoardName, outcome);
  if (options_.events) options_.events->Add("compaction", (failed ? "" : "done: ") + outcome);
}

void Compactor::OnTimer(uv_timer_t* timer) { static_cast<Compactor*>(timer->data)->Check(); }

void Compactor::Check() {
  if (stopping_ || job_ || running()) return;
  if (backoff_checks_ > 0) {
    backoff_checks_--;
  } else if (options_.dead_ratio > 0) {
    const storage::StoreStats st = store_->Stats();
    if (st.sealed_dead_bytes >= options_.min_bytes &&
        static_cast<double>(st.sealed_dead_bytes) >=
            options_.dead_ratio * static_cast<double>(st.sealed_bytes)) {
      if (Start("automatic") == StartResult::kStarted) {
        counters_.started_auto++;
        return;
      }
    }
  }
  std::unique_ptr<storage::StoreJob> hints = store_->TakeHintJob();
  if (hints) Submit(std::move(hints));
}

void Compactor::Stop(std::function<void()> done) {
  stopping_ = true;
  uv_timer_stop(timer_);
  uv_idle_stop(idle_);
  ReportEnd("stopped: the node closed its store", true);
  stopped_ = std::move(done);
  MaybeStopped();
}

void Compactor::MaybeStopped() {
  if (!stopping_ || job_ || !stopped_) return;
  auto fn = std::move(stopped_);
  stopped_ = nullptr;
  fn();
}

void Compactor::WriteJson(JsonWriter* w) const {
  const storage::StoreStats st = store_->Stats();
  w->BeginObject();
  w->Field("running", running());
  const bool in_pool = job_ && job_->is_compaction();
  w->Field("progress_bytes", in_pool ? job_->progress() : 0);
  w->Field("input_bytes", in_pool ? job_->input_bytes() : 0);
  w->Field("sealed_bytes", st.sealed_bytes);
  w->Field("sealed_dead_bytes", st.sealed_dead_bytes);
  w->Field("compactions", st.compactions);
  w->Field("failed", st.compactions_failed);
  w->Field("started_manual", counters_.started_manual);
  w->Field("started_auto", counters_.started_auto);
  w->Field("bytes_reclaimed", st.bytes_reclaimed);
  w->Field("last_ms", counters_.last_ms);
  w->Field("pinned_segments", st.pinned_segments);
  w->Field("hint_files", st.hint_files);
  w->Field("tombstone_horizon", st.tombstone_horizon);
  w->EndObject();
}

void Compactor::WritePrometheus(PromWriter* prom) const {
  const storage::StoreStats st = store_->Stats();
  prom->Metric("distkv_compaction_running", "gauge", "1 while a compaction runs.",
               running() ? 1 : 0);
  const bool in_pool = job_ && job_->is_compaction();
  prom->Metric("distkv_compaction_progress_bytes", "gauge",
               "Input bytes the running compaction has processed.", in_pool ? job_->progress() : 0);
  prom->Metric("distkv_compaction_input_bytes", "gauge", "Input bytes of the running compaction.",
               in_pool ? job_->input_bytes() : 0);
  prom->Metric("distkv_sealed_bytes", "gauge", "Bytes of sealed segments.", st.sealed_bytes);
  prom->Metric("distkv_sealed_dead_bytes", "gauge",
               "Bytes of sealed segments no key points at (what a compaction reclaims).",
               st.sealed_dead_bytes);
  prom->Metric("distkv_compactions_total", "counter", "Compactions completed.", st.compactions);
  prom->Metric("distkv_compactions_failed_total", "counter",
               "Compactions that failed (the store was left unchanged).", st.compactions_failed);
  prom->Metric("distkv_compaction_reclaimed_bytes_total", "counter",
               "Bytes compactions removed from disk.", st.bytes_reclaimed);
  prom->Metric("distkv_pinned_segments", "gauge",
               "Replaced segments still open for readers or pending writes.", st.pinned_segments);
  prom->Metric("distkv_hint_files", "gauge", "Segments with a hint file.", st.hint_files);
}

}  // namespace distkv
