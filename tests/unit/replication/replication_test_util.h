// Helpers for the replication unit tests: a uv loop driven from the test, a
// primary in-process (store, commit pipeline, ReplicationPrimary behind an
// HttpServer on a free port) and a stream reader that decodes frames.
// Everything runs on the test's thread, so the tests look at counters and
// stores between loop turns without locks.
#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_client.h"
#include "net/http_server.h"
#include "src/replication/primary.h"
#include "src/replication/stream_format.h"
#include "src/shard/commit_pipeline.h"
#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

namespace distkv::repltest {

using storage::testing::MustOpen;
using storage::testing::TempDir;
using storage::testing::TestOptions;

// A loop of the test's own. The destructor lets closing handles finish and
// checks that none was left open.
class TestLoop {
 public:
  TestLoop() { uv_loop_init(&loop_); }
  ~TestLoop() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until cond() holds or timeout_ms passes; returns cond().
  // A ticking timer bounds each turn, so cond is re-checked even when no
  // I/O happens.
  bool RunUntil(const std::function<bool()>& cond, uint64_t timeout_ms = 10'000) {
    uv_timer_t tick;
    uv_timer_init(&loop_, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 2, 2);
    const uint64_t deadline = uv_hrtime() + timeout_ms * 1'000'000;
    bool ok = cond();
    while (!ok && uv_hrtime() < deadline) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = cond();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ok;
  }

 private:
  uv_loop_t loop_;
};

// A primary: its store, pipeline (durable listener wired) and
// ReplicationPrimary, answering the replication endpoints on 127.0.0.1.
class TestPrimary {
 public:
  // segment_bytes: the store's (0: the default).
  TestPrimary(TestLoop& loop, ReplicationPrimaryOptions options = {}, uint64_t segment_bytes = 0)
      : loop_(loop) {
    if (options.shard.empty()) options.shard = "s";
    // The replica names the tests use; anyone else is refused (403).
    if (options.replicas.empty()) options.replicas = {"r1", "r2", "stuck", "127.0.0.1:1"};
    storage::Options so = TestOptions(dir_.path());
    if (segment_bytes) so.segment_bytes = segment_bytes;
    store_ = MustOpen(so);
    pipeline_ = std::make_unique<CommitPipeline>(loop.get(), store_.get());
    primary_ = std::make_unique<ReplicationPrimary>(loop.get(), store_.get(), options);
    pipeline_->SetDurableListener([this](uint64_t lsn) { primary_->OnDurable(lsn); });
    server_ = std::make_unique<net::HttpServer>(
        loop.get(), net::ServerLimits{},
        [this](net::HttpRequest& request, net::Responder responder) {
          if (request.path == "/internal/replicate") {
            primary_->HandleReplicate(request, std::move(responder));
          } else if (request.path == "/internal/replica-ack") {
            responder.Send(primary_->HandleAck(request));
          } else {
            responder.Send(net::MakeErrorResponse(404, "not_found", request.path));
          }
        });
    REQUIRE(server_->Listen("127.0.0.1", 0) == 0);
  }
  ~TestPrimary() { Close(); }

  void Close() {
    if (!server_) return;
    primary_->Stop();
    bool closed = false;
    server_->Shutdown([&closed] { closed = true; });
    loop_.RunUntil([&] { return closed; });
    bool drained = false;
    pipeline_->Drain([&drained] { drained = true; });
    loop_.RunUntil([&] { return drained; });
    server_.reset();
    primary_.reset();
    pipeline_.reset();
  }

  // Stages n puts of value_bytes each (keys prefix-i) and waits until they are durable.
  void Put(const std::string& prefix, int n, size_t value_bytes = 100) {
    uint64_t lsn = 0;
    for (int i = 0; i < n; ++i) {
      std::string value(value_bytes, static_cast<char>('a' + i % 26));
      REQUIRE(store_->Put(prefix + std::to_string(i), value, &lsn).ok());
    }
    bool done = false;
    pipeline_->WhenDurable(lsn, [&done](const storage::Status& s) {
      CHECK(s.ok());
      done = true;
    });
    REQUIRE(loop_.RunUntil([&] { return done; }));
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  int port() const { return server_->port(); }
  storage::Store* store() { return store_.get(); }
  CommitPipeline* pipeline() { return pipeline_.get(); }
  ReplicationPrimary* primary() { return primary_.get(); }

 private:
  TestLoop& loop_;
  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<CommitPipeline> pipeline_;
  std::unique_ptr<ReplicationPrimary> primary_;
  std::unique_ptr<net::HttpServer> server_;
};

// A plain client of GET /internal/replicate that keeps every frame.
class StreamReader {
 public:
  StreamReader(TestLoop& loop, int port, const std::string& target) : decoder_(64u << 20) {
    net::ClientOptions co;
    conn_ = std::make_unique<net::ClientConnection>(loop.get(), "127.0.0.1", port, co);
    net::OutboundRequest req;
    req.target = target;
    req.timeout_ms = 10'000;
    req.on_head = [this](const net::HttpResponse& head) { status = head.status; };
    req.on_body = [this](std::string_view chunk) {
      if (status != 200) {
        error_body.append(chunk);
        return true;
      }
      decoder_.Feed(chunk);
      Frame f;
      FrameDecoder::Result r;
      while ((r = decoder_.Next(&f)) == FrameDecoder::Result::kFrame) {
        frames.push_back({f.kind, f.primary_lsn, f.time_us, std::string(f.records)});
        if (f.kind == FrameKind::kRecords) AddRecords(f.records);
      }
      CHECK(r == FrameDecoder::Result::kNeedMore);
      return true;
    };
    conn_->Submit(std::move(req), [this](net::ClientResult& result) {
      ended = true;
      end_error = result.error;
      if (status != 200 && error_body.empty()) error_body = result.response.body;
    });
  }
  void Close() { conn_->Close(); }

  struct Kept {
    FrameKind kind;
    uint64_t primary_lsn;
    uint64_t time_us;
    std::string records;
  };
  int status = 0;
  bool ended = false;
  net::ClientError end_error = net::ClientError::kNone;
  std::string error_body;
  std::vector<Kept> frames;
  std::vector<uint64_t> lsns;  // of every record received, in order

 private:
  void AddRecords(std::string_view rest) {
    while (!rest.empty()) {
      storage::Record r;
      size_t used = 0;
      REQUIRE(storage::DecodeRecord(rest, &r, &used).ok());
      lsns.push_back(r.lsn);
      rest.remove_prefix(used);
    }
  }

  FrameDecoder decoder_;
  std::unique_ptr<net::ClientConnection> conn_;
};

// Every (key, value) of a store, sorted, for comparing two stores.
inline std::vector<std::pair<std::string, std::string>> Contents(storage::Store* store) {
  std::vector<std::pair<std::string, std::string>> out;
  REQUIRE(store
              ->ForEach([&](std::string_view k, std::string_view v, uint64_t) {
                out.emplace_back(std::string(k), std::string(v));
              })
              .ok());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace distkv::repltest
