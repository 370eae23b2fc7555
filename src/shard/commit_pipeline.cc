#include "src/shard/commit_pipeline.h"

#include <algorithm>

#include "net/uv_handle.h"
#include "src/obs/log.h"

namespace distkv {

struct CommitPipeline::Job {
  uv_work_t req;
  CommitPipeline* pipeline;
  std::shared_ptr<bool> alive;  // the pipeline may be gone when the job returns
  std::unique_ptr<storage::WriteBatch> batch;
  storage::Status status;
  uint64_t start_ns = 0;  // when the batch was handed to the thread pool
  uint64_t run_ns = 0;    // how long the thread pool's thread took to run it
};

CommitPipeline::CommitPipeline(uv_loop_t* loop, storage::Store* store)
    : loop_(loop), store_(store), alive_(std::make_shared<bool>(true)) {
  if (store_->options().fsync == storage::FsyncMode::kEverySec) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_timer_start(timer_, OnTimer, 1000, 1000);
  }
  linger_timer_ = new uv_timer_t;
  uv_timer_init(loop_, linger_timer_);
  linger_timer_->data = this;
  linger_check_ = new uv_check_t;
  uv_check_init(loop_, linger_check_);
  linger_check_->data = this;
}

CommitPipeline::~CommitPipeline() {
  *alive_ = false;
  net::CloseAndDelete(timer_);
  net::CloseAndDelete(linger_timer_);
  net::CloseAndDelete(linger_check_);
}

void CommitPipeline::OnTimer(uv_timer_t* timer) {
  static_cast<CommitPipeline*>(timer->data)->MaybeStartBatch(/*force_sync=*/true);
}

void CommitPipeline::OnLingerTimer(uv_timer_t* timer) {
  static_cast<CommitPipeline*>(timer->data)->LingerExpired();
}

void CommitPipeline::OnLingerCheck(uv_check_t* check) {
  auto* self = static_cast<CommitPipeline*>(check->data);
  if (self->lingering_ && uv_hrtime() >= self->linger_deadline_ns_) self->LingerExpired();
}

void CommitPipeline::LingerExpired() {
  linger_expired_ = true;
  counters_.linger_timeouts++;
  MaybeStartBatch(false);
}

uint64_t CommitPipeline::linger_ns() const {
  // One recent batch: merging pays when writers come back faster than a
  // batch takes (then each waits one batch plus its turnaround instead of
  // two batches); a wait longer than a batch cannot beat taking turns.
  // Only batches that sync are held: an unsynced write is too cheap to wait
  // for company.
  if (store_->options().fsync != storage::FsyncMode::kAlways) return 0;
  return std::min<uint64_t>(batch_ns_avg_, kMaxLingerMs * 1'000'000);
}

void CommitPipeline::WhenDurable(uint64_t lsn, Done done, Waiting who) {
  if (lsn <= store_->durable_lsn()) {
    done(storage::Status::OK());
    return;
  }
  const bool client = who == Waiting::kClientWrite;
  client_waiters_ += client ? 1 : 0;
  waiters_.push_back(Waiter{lsn, std::move(done), client});
  MaybeStartBatch(false);
}

void CommitPipeline::WhenReadable(uint64_t lsn, Done done) {
  if (lsn <= store_->durable_lsn() || (!in_flight_ && !store_->HasStaged())) {
    done(storage::Status::OK());
    return;
  }
  counters_.reads_held++;
  auto at = std::upper_bound(readers_.begin(), readers_.end(), lsn,
                             [](uint64_t l, const Waiter& w) { return l < w.lsn; });
  readers_.insert(at, Waiter{lsn, std::move(done)});
  MaybeStartBatch(false);
}

bool CommitPipeline::Linger() {
  // With nothing in flight, every client write waiting is staged, so the
  // count of client waiters says how many of the expected writers are back.
  if (drained_ || linger_expired_ || !store_->HasStaged() || client_waiters_ >= expected_writers_) {
    return false;
  }
  const uint64_t ns = linger_ns();
  if (ns == 0) return false;
  if (!lingering_) {
    lingering_ = true;
    linger_start_ns_ = uv_hrtime();
    linger_deadline_ns_ = linger_start_ns_ + ns;
    counters_.lingered++;
    uv_timer_start(linger_timer_, OnLingerTimer, (ns + 999'999) / 1'000'000, 0);
    uv_check_start(linger_check_, OnLingerCheck);
  }
  return true;
}

void CommitPipeline::MaybeStartBatch(bool force_sync) {
  if (in_flight_) return;
  if (!force_sync && Linger()) return;
  if (lingering_) {
    uv_timer_stop(linger_timer_);
    uv_check_stop(linger_check_);
    counters_.linger_us += (uv_hrtime() - linger_start_ns_) / 1000;
    lingering_ = false;
  }
  linger_expired_ = false;
  std::unique_ptr<storage::WriteBatch> batch = store_->TakeBatch(force_sync);
  if (!batch) {
    if (drained_ && !store_->HasStaged()) {
      auto fn = std::move(drained_);
      drained_ = nullptr;
      fn();
    }
    return;
  }
  in_flight_ = true;
  Job* job = new Job;
  job->req.data = job;
  job->pipeline = this;
  job->alive = alive_;
  job->batch = std::move(batch);
  job->start_ns = uv_hrtime();
  uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        Job* j = static_cast<Job*>(req->data);
        const uint64_t start = uv_hrtime();
        j->status = j->batch->Run();  // the only part off the loop
        j->run_ns = uv_hrtime() - start;
      },
      [](uv_work_t* req, int) {
        Job* j = static_cast<Job*>(req->data);
        if (*j->alive) j->pipeline->OnBatchDone(j);
        delete j;
      });
}

void CommitPipeline::OnBatchDone(Job* job) {
  in_flight_ = false;
  const uint64_t elapsed_ns = uv_hrtime() - job->start_ns;
  batch_ns_avg_ = batch_ns_avg_ == 0 ? elapsed_ns : (batch_ns_avg_ * 7 + elapsed_ns) / 8;
  counters_.batch_us += elapsed_ns / 1000;
  counters_.batch_run_us += job->run_ns / 1000;
  const uint64_t last = job->batch->last_lsn();
  const size_t records = job->batch->records();
  storage::Status status = job->status;
  const storage::Status told = store_->FinishBatch(std::move(job->batch), status);
  if (status.ok()) {
    counters_.batches++;
    counters_.batch_records += records;
    if (records > counters_.max_batch_records) counters_.max_batch_records = records;
    // Every client write waiting now (answered next, or already staged) is
    // a writer likely to write again soon: the next batch gathers as many
    // (see the top of the header).
    expected_writers_ = client_waiters_;
    while (!waiters_.empty() && waiters_.front().lsn <= last) {
      client_waiters_ -= waiters_.front().client ? 1 : 0;
      ready_.push_back(std::move(waiters_.front().done));
      waiters_.pop_front();
    }
    while (!readers_.empty() && readers_.front().lsn <= last) {
      ready_.push_back(std::move(readers_.front().done));
      readers_.pop_front();
    }
    // Start the next batch before answering, so the disk works on it while
    // the loop writes the answers. (Only with something staged: with nothing
    // left, a Drain must not complete before these answers are sent.)
    if (store_->HasStaged()) MaybeStartBatch(false);
    for (Done& done : ready_) done(status);
    ready_.clear();
    if (listener_ && records > 0) listener_(last);
  } else {
    // The store undid every write above its last LSN now (this batch, or the
    // part of it that never reached a file, and everything staged after it);
    // the writes of this batch it kept (after a failed sync) get what the
    // store says of them.
    counters_.batch_failures++;
    expected_writers_ = 0;
    const uint64_t kept = std::min(last, store_->last_lsn());
    Logf(LogLevel::kError, "commit failed, %zu writes waiting: %s", waiters_.size(),
         status.ToString().c_str());
    std::deque<Waiter> failed;
    failed.swap(waiters_);
    client_waiters_ = 0;
    std::deque<Waiter> readers;
    readers.swap(readers_);
    // The others were undone: say so, as a full disk's answer does.
    const storage::Status undone =
        status.IsNoSpace()
            ? status
            : storage::Status::IOError("the write was not stored: " + status.ToString());
    for (auto& w : failed) w.done(w.lsn <= kept ? told : undone);
    for (auto& r : readers) r.done(undone);
    if (told.ok() && listener_ && kept > 0) listener_(store_->durable_lsn());
  }
  MaybeStartBatch(false);
}

void CommitPipeline::Drain(std::function<void()> done) {
  if (timer_) uv_timer_stop(timer_);
  drained_ = std::move(done);
  if (!in_flight_) MaybeStartBatch(store_->options().fsync != storage::FsyncMode::kNever);
}

}  // namespace distkv
