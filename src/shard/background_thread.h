// RunInBackground: runs a long job (the merge of a compaction, hint files)
// on a thread of its own at a low CPU priority, then calls done on the loop.
//
// Why not libuv's thread pool: a compaction is seconds of CPU (reading,
// checking CRCs and copying every live record) on a machine whose cores the
// event loop needs for requests. At normal priority it competes with the
// loop as an equal for as long as it runs. At the idle priority
// (SCHED_IDLE, "idle", the default) it gets a CPU only when nothing else
// wants it, and a thread that wakes up on its CPU preempts it at once (the
// kernel also counts its CPU as idle when it places a waking thread). At
// nice 19 ("low") it gets a small share of a CPU the loop also wants (about
// 1.5%), but a waking loop is not always run at once: measured on Linux
// 6.18 (EEVDF), the loop waited on the run queue a third of its time while
// a nice-19 merge ran, against a twentieth at SCHED_IDLE (BENCHMARKS.md). A
// thread can lower its priority but raise it back only with privileges
// (RLIMIT_NICE, CAP_SYS_NICE), so the job gets a thread of its own that
// ends with it, rather than a pool thread it would leave slowed down for
// the requests' batches queued after it.
//
// The cost: on a machine whose cores are all busy a job takes much longer
// ("low") or waits until one is free ("idle"); "normal" runs it on the
// thread pool as any other. The I/O priority is left alone, and what a job
// does under a lock that the requests' writes also take runs at normal
// priority (StoreJob::Begin / End): a starved thread holding it would stall
// them.
//
// If the thread cannot be created (a process at its thread limit) the job
// runs on libuv's thread pool at normal priority instead: slower requests
// are better than a compaction that never runs.
#pragma once

#include <uv.h>

#include <functional>

namespace distkv {

enum class JobPriority {
  kIdle,    // SCHED_IDLE (nice 19 where that is refused)
  kLow,     // nice 19
  kNormal,  // libuv's thread pool
};

// work runs off the loop; done runs on the loop after it. Like
// uv_queue_work, the job keeps the loop alive until done has run.
void RunInBackground(uv_loop_t* loop, JobPriority priority, std::function<void()> work,
                     std::function<void()> done);

}  // namespace distkv
