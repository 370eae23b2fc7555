#include "src/commit_pipeline.h"

#include "src/log.h"

namespace distkv {

struct CommitPipeline::Job {
  uv_work_t req;
  CommitPipeline* pipeline;
  std::shared_ptr<bool> alive;  // the pipeline may be gone when the job returns
  std::unique_ptr<storage::WriteBatch> batch;
  storage::Status status;
};

CommitPipeline::CommitPipeline(uv_loop_t* loop, storage::Store* store)
    : loop_(loop), store_(store), alive_(std::make_shared<bool>(true)) {
  if (store_->options().fsync == storage::FsyncMode::kEverySec) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_timer_start(timer_, OnTimer, 1000, 1000);
  }
}

CommitPipeline::~CommitPipeline() {
  *alive_ = false;
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

void CommitPipeline::OnTimer(uv_timer_t* timer) {
  static_cast<CommitPipeline*>(timer->data)->MaybeStartBatch(/*force_sync=*/true);
}

void CommitPipeline::WhenDurable(uint64_t lsn, Done done) {
  if (lsn <= store_->durable_lsn()) {
    done(storage::Status::OK());
    return;
  }
  waiters_.push_back(Waiter{lsn, std::move(done)});
  MaybeStartBatch(false);
}

void CommitPipeline::MaybeStartBatch(bool force_sync) {
  if (in_flight_) return;
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
  uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        Job* j = static_cast<Job*>(req->data);
        j->status = j->batch->Run();  // the only part off the loop
      },
      [](uv_work_t* req, int) {
        Job* j = static_cast<Job*>(req->data);
        if (*j->alive) j->pipeline->OnBatchDone(j);
        delete j;
      });
}

void CommitPipeline::OnBatchDone(Job* job) {
  in_flight_ = false;
  const uint64_t last = job->batch->last_lsn();
  const size_t records = job->batch->records();
  storage::Status status = job->status;
  store_->FinishBatch(std::move(job->batch), status);
  if (status.ok()) {
    counters_.batches++;
    counters_.batch_records += records;
    if (records > counters_.max_batch_records) counters_.max_batch_records = records;
    while (!waiters_.empty() && waiters_.front().lsn <= last) {
      Done done = std::move(waiters_.front().done);
      waiters_.pop_front();
      done(status);
    }
    if (listener_ && records > 0) listener_(last);
  } else {
    // The store undid this batch and everything staged after it: every
    // waiter still queued belongs to one of those writes.
    counters_.batch_failures++;
    Logf(LogLevel::kError, "commit failed, %zu writes undone: %s", waiters_.size(),
         status.ToString().c_str());
    std::deque<Waiter> failed;
    failed.swap(waiters_);
    for (auto& w : failed) w.done(status);
  }
  MaybeStartBatch(false);
}

void CommitPipeline::Drain(std::function<void()> done) {
  if (timer_) uv_timer_stop(timer_);
  drained_ = std::move(done);
  if (!in_flight_) MaybeStartBatch(store_->options().fsync != storage::FsyncMode::kNever);
}

}  // namespace distkv
