// The run loop of distkv-bench.
//
// Every connection is a Worker with its own ClientConnection to one target
// (connections are dealt round-robin over the targets) and keeps up to
// --pipeline requests in flight on it.
//
// Closed loop (default): a worker sends its next request as soon as one is
// answered, and latency runs from the send. Open loop (--rate R): a 1 ms tick
// computes how many requests are due since the start (R per second); each
// due request goes to a worker with room, or waits in a FIFO backlog that
// workers drain as answers come. A request that had to wait in the backlog
// is timed from its scheduled send time, so a server that stalls is charged
// for every request it delayed (no coordinated omission); one sent at the
// tick is timed from its send, so the tick's own granularity (up to 1 ms)
// is not charged to the server.
//
// A worker whose connection breaks reconnects on its next send; after a
// failed connect it waits 100 ms first, so a dead node costs little CPU.
// The measured phase ends at --duration or after --requests sends; the
// requests still in flight are awaited (each ends within --timeout-ms),
// then every connection is closed and the loop runs dry.
#include "bench/runner.h"

#include <uv.h>

#include <unistd.h>
#include <deque>
#include <memory>
#include <optional>

#include "bench/verifier.h"
#include "bench/workload.h"
#include "net/http_client.h"
#include "net/tls_context.h"

namespace distkv::bench {

void OpStats::Merge(const OpStats& o) {
  latency.Merge(o.latency);
  status_2xx += o.status_2xx;
  status_404 += o.status_404;
  status_4xx += o.status_4xx;
  status_5xx += o.status_5xx;
  status_other += o.status_other;
  errors += o.errors;
  timeouts += o.timeouts;
}

namespace {

constexpr uint64_t kTickMs = 1;
constexpr uint64_t kReconnectBackoffNs = 100'000'000;
constexpr uint64_t kNsPerSec = 1'000'000'000;

enum class Phase { kPreload, kMain, kDraining, kDone };

class Run {
 public:
  Run(const BenchOptions& options, BenchResult* result, const ProgressFn& progress)
      : o_(options),
        result_(result),
        progress_(progress),
        rng_(options.seed),
        chooser_(options.keys, options.distribution == Distribution::kZipf, options.zipf_theta) {
    client_options_.connect_timeout_ms = o_.timeout_ms;
    client_options_.request_timeout_ms = o_.timeout_ms;
    run_id_ = static_cast<uint32_t>(
        std::hash<uint64_t>()(uv_hrtime() ^ (static_cast<uint64_t>(getpid()) << 32) ^ o_.seed));
    if (o_.verify) verifier_.emplace(o_.keys, run_id_, o_.value_bytes);
  }

  bool Execute() {
    if (o_.targets.empty()) {
      result_->error = "no targets";
      return false;
    }
    if (o_.tls) {  // the node's own TLS client code, as its peers use it
      std::string error;
      client_options_.tls =
          net::TlsContext::NewClient(net::TlsFiles{o_.tls_cert, o_.tls_key, o_.tls_ca}, &error);
      if (!client_options_.tls) {
        result_->error = "--tls: " + error;
        return false;
      }
    }
    uv_loop_init(&loop_);
    workers_.resize(static_cast<size_t>(o_.connections));
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker& w = workers_[i];
      w.peer = o_.targets[i % o_.targets.size()];
      if (!net::SplitHostPort(w.peer, &w.host, &w.port)) {
        result_->error = "bad target \"" + w.peer + "\"";
        uv_loop_close(&loop_);
        return false;
      }
    }
    uv_timer_init(&loop_, &tick_);
    tick_.data = this;
    uv_timer_start(
        &tick_, [](uv_timer_t* t) { static_cast<Run*>(t->data)->OnTick(); }, kTickMs, kTickMs);

    if (o_.preload) {
      phase_ = Phase::kPreload;
      phase_start_ns_ = uv_hrtime();
      last_progress_ns_ = phase_start_ns_;
      for (Worker& w : workers_) Refill(w);
    } else {
      StartMain();
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);

    if (verifier_) {
      VerifyResult& v = result_->verify;
      v.enabled = true;
      v.reads_checked = verifier_->reads_checked();
      v.reads_unchecked = verifier_->reads_unchecked();
      v.mismatches = verifier_->mismatches();
      v.uncertain_writes = verifier_->uncertain_writes();
      v.samples = verifier_->samples();
    }
    return true;
  }

 private:
  struct Worker {
    std::string peer;
    std::string host;
    int port = 0;
    std::unique_ptr<net::ClientConnection> conn;
    int in_flight = 0;
    uint64_t resume_at_ns = 0;  // reconnect backoff
  };

  struct Op {
    bool put = false;
    bool preload = false;
    uint64_t key = 0;
    uint64_t version = 0;
    uint64_t start_ns = 0;
    ReadTicket ticket;
  };

  bool Issuing() const {
    if (phase_ == Phase::kPreload) return next_preload_key_ < o_.keys;
    if (phase_ != Phase::kMain) return false;
    return o_.requests == 0 || issued_main_ < o_.requests;
  }

  void StartMain() {
    phase_ = Phase::kMain;
    phase_start_ns_ = uv_hrtime();
    last_progress_ns_ = phase_start_ns_;
    progress_done_ = 0;
    progress_last_done_ = 0;
    end_ns_ =
        o_.duration_s > 0 ? phase_start_ns_ + static_cast<uint64_t>(o_.duration_s * kNsPerSec) : 0;
    last_done_ns_ = phase_start_ns_;
    if (o_.rate == 0) {
      for (Worker& w : workers_) Refill(w);
    }
  }

  // Sends what the worker may send now: in closed loop (and preload) as much
  // as the pipeline allows; in open loop what waits in the backlog.
  void Refill(Worker& w) {
    uint64_t now = uv_hrtime();
    if (now < w.resume_at_ns) return;
    bool open_loop = phase_ == Phase::kMain && o_.rate > 0;
    while (w.in_flight < o_.pipeline) {
      if (open_loop) {
        if (backlog_.empty()) return;
        uint64_t scheduled = backlog_.front();
        backlog_.pop_front();
        Send(w, scheduled);
      } else {
        if (!Issuing()) return;
        Send(w, now);
      }
    }
  }

  void Send(Worker& w, uint64_t start_ns) {
    if (!w.conn) {
      w.conn = std::make_unique<net::ClientConnection>(&loop_, w.host, w.port, client_options_);
      ++result_->connections_opened;
    }
    Op op;
    op.start_ns = start_ns;
    if (phase_ == Phase::kPreload) {
      op.preload = true;
      op.put = true;
      op.key = next_preload_key_++;
    } else {
      ++issued_main_;
      op.put = rng_.Below(o_.get_weight + o_.put_weight) >= o_.get_weight;
      op.key = chooser_.Next(rng_);
    }
    std::string key = KeyName(o_.key_prefix, op.key);
    net::OutboundRequest req;
    if (op.put) {
      if (verifier_) op.version = verifier_->BeginWrite(op.key);
      std::string value = MakeValue(run_id_, key, op.version, o_.value_bytes);
      if (o_.api == Api::kKv) {
        req.method = "PUT";
        req.target = "/kv/";
        net::AppendPercentEncoded(&req.target, key);
        req.body = std::move(value);
      } else {
        req.method = "POST";
        req.target = "/set?key=";
        net::AppendPercentEncoded(&req.target, key);
        req.target += "&value=";
        net::AppendPercentEncoded(&req.target, value);
      }
    } else {
      if (verifier_) op.ticket = verifier_->BeginRead(op.key);
      req.target = o_.api == Api::kKv ? "/kv/" : "/get?key=";
      net::AppendPercentEncoded(&req.target, key);
    }
    if (!o_.token.empty())
      req.headers.push_back(net::Header{"Authorization", "Bearer " + o_.token});
    ++w.in_flight;
    ++in_flight_;
    w.conn->Submit(std::move(req),
                   [this, &w, op = std::move(op)](net::ClientResult& r) { OnDone(w, op, r); });
  }

  void OnDone(Worker& w, const Op& op, net::ClientResult& r) {
    uint64_t now = uv_hrtime();
    --w.in_flight;
    --in_flight_;
    OpStats& stats = op.preload ? result_->preload : op.put ? result_->put : result_->get;
    if (r.error == net::ClientError::kNone) {
      int status = r.response.status;
      uint64_t latency = now > op.start_ns ? now - op.start_ns : 0;
      stats.latency.Record(latency);
      if (!op.preload) all_.Record(latency);
      if (status >= 200 && status < 300)
        ++stats.status_2xx;
      else if (status == 404)
        ++stats.status_404;
      else if (status >= 400 && status < 500)
        ++stats.status_4xx;
      else if (status >= 500)
        ++stats.status_5xx;
      else
        ++stats.status_other;
      if (status >= 500) ++failed_;
      if (verifier_) {
        if (op.put) {
          const std::string* etag = r.response.header("ETag");
          WriteOutcome outcome = status >= 200 && status < 300   ? WriteOutcome::kAcked
                                 : status >= 400 && status < 500 ? WriteOutcome::kRejected
                                                                 : WriteOutcome::kUnknown;
          verifier_->EndWrite(op.key, op.version, outcome,
                              etag != nullptr ? ParseEtagLsn(*etag) : 0);
        } else {
          verifier_->EndRead(KeyName(o_.key_prefix, op.key), op.ticket, status, r.response.body);
        }
      }
    } else {
      ++failed_;
      bool timeout =
          r.error == net::ClientError::kTimeout || r.error == net::ClientError::kConnectTimeout;
      ++(timeout ? stats.timeouts : stats.errors);
      if (verifier_ && op.put) verifier_->EndWrite(op.key, op.version, WriteOutcome::kUnknown, 0);
      if (r.error == net::ClientError::kConnectFailed ||
          r.error == net::ClientError::kConnectTimeout) {
        w.resume_at_ns = now + kReconnectBackoffNs;
      }
    }
    // A broken (or peer-closed) connection is replaced on the next send.
    // Destroying it here, inside its own callback, is allowed.
    if (w.conn && !w.conn->usable()) w.conn.reset();
    ++progress_done_;
    if (!op.preload) last_done_ns_ = now;
    Advance();
    if (phase_ == Phase::kPreload || phase_ == Phase::kMain) Refill(w);
  }

  // Moves to the next phase when the current one has nothing left to do.
  void Advance() {
    if (phase_ == Phase::kPreload && !Issuing() && in_flight_ == 0) {
      result_->preload_s = static_cast<double>(uv_hrtime() - phase_start_ns_) / kNsPerSec;
      StartMain();
      return;
    }
    if (phase_ == Phase::kMain) {
      uint64_t now = uv_hrtime();
      bool over =
          (end_ns_ != 0 && now >= end_ns_) ||
          (o_.requests != 0 && issued_main_ >= o_.requests && (o_.rate == 0 || backlog_.empty()));
      if (over) {
        phase_ = Phase::kDraining;
        result_->not_sent = backlog_.size();
        backlog_.clear();
      }
    }
    if (phase_ == Phase::kDraining && in_flight_ == 0) Finish();
  }

  void Finish() {
    phase_ = Phase::kDone;
    result_->elapsed_s = static_cast<double>(last_done_ns_ - phase_start_ns_) / kNsPerSec;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    for (Worker& w : workers_) w.conn.reset();
  }

  void OnTick() {
    uint64_t now = uv_hrtime();
    if (phase_ == Phase::kMain && o_.rate > 0) Schedule(now);
    Advance();
    if (phase_ == Phase::kPreload || phase_ == Phase::kMain) {
      // Workers that were backing off, or (open loop) have room for the backlog.
      for (Worker& w : workers_) {
        if (w.in_flight < o_.pipeline && now >= w.resume_at_ns) Refill(w);
      }
    }
    if (progress_ && now - last_progress_ns_ >= kNsPerSec && phase_ != Phase::kDone) {
      ProgressSample s;
      s.elapsed_s = static_cast<double>(now - phase_start_ns_) / kNsPerSec;
      s.preloading = phase_ == Phase::kPreload;
      s.done = progress_done_;
      s.preload_total = o_.keys;
      s.ops_per_s = static_cast<double>(progress_done_ - progress_last_done_) * kNsPerSec /
                    static_cast<double>(now - last_progress_ns_);
      s.p99_ns = s.preloading ? result_->preload.latency.Percentile(99) : all_.Percentile(99);
      s.errors = failed_;
      progress_(s);
      last_progress_ns_ = now;
      progress_last_done_ = progress_done_;
    }
  }

  // Open loop: every request due by now gets its scheduled time and a worker
  // with room, or joins the backlog.
  void Schedule(uint64_t now) {
    uint64_t horizon = end_ns_ != 0 ? std::min(now, end_ns_) : now;
    uint64_t due =
        static_cast<uint64_t>(static_cast<double>(horizon - phase_start_ns_) * o_.rate / kNsPerSec);
    while (scheduled_ < due && (o_.requests == 0 || scheduled_ < o_.requests)) {
      uint64_t at = phase_start_ns_ +
                    static_cast<uint64_t>(static_cast<double>(scheduled_) * kNsPerSec / o_.rate);
      ++scheduled_;
      Worker* free = backlog_.empty() ? FindFreeWorker(now) : nullptr;
      if (free != nullptr) {
        Send(*free, now);
      } else {
        backlog_.push_back(at);
      }
    }
  }

  Worker* FindFreeWorker(uint64_t now) {
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker& w = workers_[cursor_];
      cursor_ = (cursor_ + 1) % workers_.size();
      if (w.in_flight < o_.pipeline && now >= w.resume_at_ns) return &w;
    }
    return nullptr;
  }

  const BenchOptions& o_;
  BenchResult* result_;
  const ProgressFn& progress_;
  Rng rng_;
  KeyChooser chooser_;
  uint32_t run_id_ = 0;
  std::optional<Verifier> verifier_;
  net::ClientOptions client_options_;

  uv_loop_t loop_;
  uv_timer_t tick_;
  std::vector<Worker> workers_;  // never resized once running: callbacks hold references
  Phase phase_ = Phase::kPreload;
  uint64_t phase_start_ns_ = 0;
  uint64_t end_ns_ = 0;
  uint64_t last_done_ns_ = 0;
  uint64_t next_preload_key_ = 0;
  uint64_t issued_main_ = 0;
  uint64_t scheduled_ = 0;
  std::deque<uint64_t> backlog_;  // open loop: scheduled send times waiting for a worker
  size_t cursor_ = 0;
  int64_t in_flight_ = 0;
  uint64_t failed_ = 0;
  HdrHistogram all_;  // measured phase, every operation

  uint64_t last_progress_ns_ = 0;
  uint64_t progress_done_ = 0;
  uint64_t progress_last_done_ = 0;
};

}  // namespace

bool RunBench(const BenchOptions& options, BenchResult* result, const ProgressFn& progress) {
  Run run(options, result, progress);
  return run.Execute();
}

}  // namespace distkv::bench
