// RunInBackground; the mechanism is described in background_thread.h.
#include "src/shard/background_thread.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "src/obs/log.h"

namespace distkv {

namespace {

constexpr int kLowestNice = 19;

struct Task {
  uv_async_t async;  // first: the handle's address is the task's
  uv_thread_t thread;
  uv_work_t req;  // the thread pool's, for kNormal or when no thread could be created
  JobPriority priority;
  std::function<void()> work;
  std::function<void()> done;
};

void Finish(Task* t) {
  t->done();
  uv_close(reinterpret_cast<uv_handle_t*>(&t->async),
           [](uv_handle_t* h) { delete reinterpret_cast<Task*>(h); });
}

// The calling thread's priority, for good (see the header for why there is
// no way back).
void LowerPriority(JobPriority priority) {
  if (priority == JobPriority::kIdle) {
    sched_param param{};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  }
  // On Linux the nice value is the thread's own (PRIO_PROCESS with a tid).
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kLowestNice) == 0) return;
  const int err = errno;
  Logf(LogLevel::kWarn, "a background job runs at normal priority: %s", std::strerror(err));
}

void ThreadMain(void* arg) {
  Task* t = static_cast<Task*>(arg);
  LowerPriority(t->priority);
  t->work();
  uv_async_send(&t->async);  // the last touch: the loop joins and frees
}

void QueueOnPool(uv_loop_t* loop, Task* t) {
  t->req.data = t;
  uv_queue_work(
      loop, &t->req, [](uv_work_t* req) { static_cast<Task*>(req->data)->work(); },
      [](uv_work_t* req, int) { Finish(static_cast<Task*>(req->data)); });
}

}  // namespace

void RunInBackground(uv_loop_t* loop, JobPriority priority, std::function<void()> work,
                     std::function<void()> done) {
  Task* t = new Task;
  t->priority = priority;
  t->work = std::move(work);
  t->done = std::move(done);
  uv_async_init(loop, &t->async, [](uv_async_t* a) {
    Task* t = reinterpret_cast<Task*>(a);
    uv_thread_join(&t->thread);
    Finish(t);
  });
  if (priority == JobPriority::kNormal) return QueueOnPool(loop, t);
  const int err = uv_thread_create(&t->thread, ThreadMain, t);
  if (err == 0) return;
  Logf(LogLevel::kWarn, "no thread for a background job (%s): it runs on the thread pool",
       uv_strerror(err));
  QueueOnPool(loop, t);
}

}  // namespace distkv
