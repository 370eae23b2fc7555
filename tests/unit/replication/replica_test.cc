// ReplicationReplica in-process: it follows a real ReplicationPrimary to the
// same contents under the same LSNs, resumes from its own LSN, and against
// fake primaries it refuses a bad CRC, a bad frame and a silent stream, and
// backs off from a primary that refuses it.
#include <doctest/doctest.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "src/replication/replica.h"
#include "storage/io_wrapper.h"
#include "storage/snapshot.h"
#include "tests/unit/replication/replication_test_util.h"

namespace distkv::repltest {
namespace {

// A replica with its own store, pipeline and ack client.
class TestReplica {
 public:
  // io: the store's (and so the snapshot writer's); null for the disk.
  TestReplica(TestLoop& loop, const std::string& dir, const std::string& primary,
              ReplicationReplicaOptions o = {}, storage::Io* io = nullptr)
      : loop_(loop) {
    storage::Options so = TestOptions(dir);
    so.io = io;
    store_ = MustOpen(so);
    pipeline_ = std::make_unique<CommitPipeline>(loop.get(), store_.get());
    client_ = std::make_unique<net::HttpClient>(loop.get(), net::ClientOptions{});
    o.shard = "s";
    o.primary = primary;
    o.self_address = "127.0.0.1:1";
    replica_ = std::make_unique<ReplicationReplica>(loop.get(), store_.get(), pipeline_.get(),
                                                    client_.get(), o);
    replica_->Start();
  }
  ~TestReplica() {
    replica_->Stop();
    bool drained = false;
    pipeline_->Drain([&drained] { drained = true; });
    loop_.RunUntil([&] { return drained; });
    client_->Close();
    replica_.reset();
    pipeline_.reset();
    client_.reset();
  }
  storage::Store* store() { return store_.get(); }
  ReplicationReplica* replica() { return replica_.get(); }

 private:
  TestLoop& loop_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<CommitPipeline> pipeline_;
  std::unique_ptr<net::HttpClient> client_;
  std::unique_ptr<ReplicationReplica> replica_;
};

// A primary that answers /internal/replicate with whatever the test says.
class FakePrimary {
 public:
  // Returns true when it began a stream (which the fake ends at teardown).
  using Handler = std::function<bool(const net::HttpRequest&, net::Responder&)>;
  FakePrimary(TestLoop& loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {
    server_ = std::make_unique<net::HttpServer>(
        loop.get(), net::ServerLimits{},
        [this](net::HttpRequest& request, net::Responder responder) {
          if (request.path != "/internal/replicate") {
            responder.Send(net::MakeErrorResponse(404, "not_found", request.path));
            return;
          }
          queries.push_back(request.query);
          if (handler_(request, responder)) streams_.push_back(responder);
        });
    REQUIRE(server_->Listen("127.0.0.1", 0) == 0);
  }
  ~FakePrimary() {
    for (auto& r : streams_) r.EndStream();
    bool closed = false;
    server_->Shutdown([&closed] { closed = true; });
    loop_.RunUntil([&] { return closed; });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<std::string> queries;

 private:
  TestLoop& loop_;
  Handler handler_;
  std::vector<net::Responder> streams_;
  std::unique_ptr<net::HttpServer> server_;
};

// from= of a replicate query.
uint64_t FromOf(const std::string& query) {
  const size_t at = query.find("from=");
  return at == std::string::npos ? UINT64_MAX : std::stoull(query.substr(at + 5));
}

std::string Record(uint64_t lsn, const std::string& key, const std::string& value) {
  storage::Record r;
  r.lsn = lsn;
  r.key = key;
  r.value = value;
  std::string out;
  storage::EncodeRecord(r, &out);
  return out;
}

ReplicationReplicaOptions Quick() {
  ReplicationReplicaOptions o;
  o.min_backoff_ms = 5;
  o.max_backoff_ms = 20;
  return o;
}

// A fake primary (one that checks nothing itself) whose stream's head
// carries header: value, and which streams the record of LSN 1 at once.
FakePrimary::Handler StreamUnderHeader(std::string_view header, std::string value) {
  return [header, value](const net::HttpRequest&, net::Responder& out) {
    net::HttpResponse head;
    head.SetHeader(std::string(header), value);
    out.BeginStream(std::move(head));
    std::string frame;
    AppendRecordsFrame(&frame, 1, 0, Record(1, "k", "v"));
    out.WriteChunk(frame);
    return true;
  };
}

TEST_CASE(
    "replica: follows a primary through catch-up and live writes to the same contents and LSNs") {
  TestLoop loop;
  TestPrimary p(loop);
  p.Put("k", 2000, 300);
  uint64_t lsn = 0;
  for (int i = 0; i < 2000; i += 3) REQUIRE(p.store()->Remove("k" + std::to_string(i), &lsn).ok());
  p.Put("k", 500, 50);  // overwrites

  TempDir dir;
  TestReplica r(loop, dir.path(), p.address());
  REQUIRE(loop.RunUntil([&] { return r.store()->durable_lsn() == p.store()->durable_lsn(); }));
  CHECK(Contents(r.store()) == Contents(p.store()));

  p.Put("live", 300, 20);
  REQUIRE(loop.RunUntil([&] { return r.store()->durable_lsn() == p.store()->durable_lsn(); }));
  CHECK(Contents(r.store()) == Contents(p.store()));
  for (const char* key : {"k1", "k1999", "live7"}) {
    std::string pv, rv;
    uint64_t plsn = 0, rlsn = 0;
    REQUIRE(p.store()->Get(key, &pv, &plsn).ok());
    REQUIRE(r.store()->Get(key, &rv, &rlsn).ok());
    CHECK(rlsn == plsn);
  }
  const uint64_t end = p.store()->durable_lsn();
  const auto& c = r.replica()->counters();
  CHECK(c.records_received == end);
  CHECK(c.crc_errors == 0);
  CHECK(c.connects == 1);
  CHECK(r.replica()->primary_lsn() == end);
  CHECK(r.replica()->lag_records() == 0);
  CHECK(r.replica()->lag_ms() == 0);
  // The primary learns that the replica holds everything.
  REQUIRE(loop.RunUntil([&] { return p.primary()->acked_lsn("127.0.0.1:1") == end; }));
}

// Every sample line is "name[{labels}] number"; every family has HELP and TYPE.
void CheckPrometheusText(const std::string& text) {
  size_t pos = 0, samples = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    REQUIRE(end != std::string::npos);  // every line ends with a newline
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    CAPTURE(line);
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    const size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    std::string family = line.substr(0, line.find_first_of("{ "));
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (family.ends_with(suffix) && text.find("# TYPE " + family + " ") == std::string::npos) {
        family.resize(family.size() - suffix.size());
      }
    }
    CHECK(text.find("# TYPE " + family + " ") != std::string::npos);
    const std::string value = line.substr(space + 1);
    CHECK(!value.empty());
    CHECK(value.find_first_not_of("0123456789.e-+") == std::string::npos);
    samples++;
  }
  CHECK(samples > 0);
}

TEST_CASE("replica: the /metrics text of both sides is well-formed") {
  TestLoop loop;
  TestPrimary p(loop);
  TempDir dir;
  TestReplica r(loop, dir.path(), p.address());
  p.Put("k", 50);
  REQUIRE(loop.RunUntil([&] { return r.store()->durable_lsn() == 50; }));
  std::string text;
  {
    PromWriter prom(&text);
    r.replica()->WritePrometheus(&prom);
  }
  CheckPrometheusText(text);
  CHECK(text.find("distkv_replication_apply_lag_seconds_count ") != std::string::npos);
  text.clear();
  {
    PromWriter prom(&text);
    p.primary()->WritePrometheus(&prom);
  }
  CheckPrometheusText(text);
  CHECK(text.find("distkv_replica_acked_lsn{replica=\"127.0.0.1:1\"}") != std::string::npos);
}

TEST_CASE("replica: a replica reopened on its data asks only for what it lacks") {
  TestLoop loop;
  TestPrimary p(loop);
  TempDir dir;
  p.Put("a", 400);
  {
    TestReplica r(loop, dir.path(), p.address());
    REQUIRE(loop.RunUntil([&] { return r.store()->durable_lsn() == 400; }));
  }
  p.Put("b", 250);
  TestReplica again(loop, dir.path(), p.address());
  REQUIRE(loop.RunUntil([&] { return again.store()->durable_lsn() == 650; }));
  CHECK(again.replica()->counters().records_received == 250);
  CHECK(Contents(again.store()) == Contents(p.store()));
}

TEST_CASE(
    "replica: a record with a bad CRC is not applied; the good ones before it are, and it "
    "reconnects") {
  TestLoop loop;
  FakePrimary fake(loop, [](const net::HttpRequest& req, net::Responder& out) {
    const uint64_t from = FromOf(req.query);
    std::string records;
    for (uint64_t lsn = from + 1; lsn <= 3; ++lsn) {
      std::string rec = Record(lsn, "key" + std::to_string(lsn), "value");
      if (lsn == 3) rec.back() ^= 0x01;  // damage the value: the CRC no longer matches
      records += rec;
    }
    out.BeginStream(net::HttpResponse{});
    std::string frame;
    AppendRecordsFrame(&frame, 3, 0, records);
    out.WriteChunk(frame);
    return true;
  });
  TempDir dir;
  TestReplica r(loop, dir.path(), fake.address(), Quick());
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 3; }));
  CHECK(r.replica()->counters().crc_errors >= 2);
  CHECK(r.store()->last_lsn() == 2);
  std::string v;
  CHECK(r.store()->Get("key3", &v).IsNotFound());
  // Each reconnection asks from what it holds.
  CHECK(FromOf(fake.queries[0]) == 0);
  CHECK(FromOf(fake.queries[1]) == 2);
  CHECK(FromOf(fake.queries[2]) == 2);
}

TEST_CASE("replica: a frame that does not parse ends the stream as a protocol error") {
  TestLoop loop;
  FakePrimary fake(loop, [](const net::HttpRequest&, net::Responder& out) {
    out.BeginStream(net::HttpResponse{});
    out.WriteChunk(std::string("\x09\x00\x00\x00\x00", 5));
    return true;
  });
  TempDir dir;
  TestReplica r(loop, dir.path(), fake.address(), Quick());
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 2; }));
  CHECK(r.replica()->counters().protocol_errors >= 1);
  CHECK(r.store()->last_lsn() == 0);
}

TEST_CASE("replica: a primary that goes silent trips the idle timeout and is reconnected") {
  TestLoop loop;
  FakePrimary fake(loop, [](const net::HttpRequest&, net::Responder& out) {
    out.BeginStream(net::HttpResponse{});
    std::string hb;
    AppendHeartbeatFrame(&hb, 0, 1);
    out.WriteChunk(hb);  // then nothing, not even heartbeats
    return true;
  });
  TempDir dir;
  ReplicationReplicaOptions o = Quick();
  o.idle_timeout_ms = 100;
  TestReplica r(loop, dir.path(), fake.address(), o);
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 2; }));
  CHECK(r.replica()->counters().heartbeats_received >= 1);
  CHECK(r.replica()->counters().stream_errors >= 1);
  CHECK(r.replica()->counters().connects >= 1);
}

TEST_CASE("replica: a refusing primary is retried with a backoff that doubles up to its maximum") {
  TestLoop loop;
  FakePrimary fake(loop, [](const net::HttpRequest&, net::Responder& out) {
    out.Send(net::MakeErrorResponse(410, "log_truncated", "gone"));
    return false;
  });
  TempDir dir;
  ReplicationReplicaOptions o = Quick();
  TestReplica r(loop, dir.path(), fake.address(), o);
  CHECK(r.replica()->backoff_ms() == o.min_backoff_ms);
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 2; }));
  CHECK(r.replica()->backoff_ms() >= 2 * o.min_backoff_ms);
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 5; }));
  CHECK(r.replica()->backoff_ms() == o.max_backoff_ms);
  CHECK(r.replica()->counters().refused >= 4);
  CHECK(r.replica()->counters().connects == 0);
  CHECK_FALSE(r.replica()->connected());
}

TEST_CASE("replica: streams that are accepted and then fail at once back off too") {
  TestLoop loop;
  // Accepts every stream, then sends a frame that does not parse: as a replica
  // whose disk is full fails right after each connect.
  FakePrimary fake(loop, [](const net::HttpRequest&, net::Responder& out) {
    out.BeginStream(net::HttpResponse{});
    out.WriteChunk(std::string("\x09\x00\x00\x00\x00", 5));
    return true;
  });
  TempDir dir;
  ReplicationReplicaOptions o = Quick();
  o.max_backoff_ms = 40;
  TestReplica r(loop, dir.path(), fake.address(), o);
  REQUIRE(loop.RunUntil([&] { return fake.queries.size() >= 5; }));
  CHECK(r.replica()->counters().connects >= 4);
  CHECK(r.replica()->backoff_ms() == o.max_backoff_ms);
}

TEST_CASE(
    "replica: a snapshot that keeps failing is retried after a back-off that doubles to its "
    "maximum, not at once") {
  TestLoop loop;
  // Every stream announces a snapshot, begins it and ends before it is
  // complete: as a primary whose snapshot can never finish.
  std::vector<uint64_t> asked_ms;
  FakePrimary fake(loop, [&](const net::HttpRequest&, net::Responder& out) {
    asked_ms.push_back(uv_now(loop.get()));
    net::HttpResponse head;
    head.SetHeader(kReplicationSnapshotHeader, "10");
    head.SetHeader(kReplicationHistoryHeader, HistoryName(7));
    out.BeginStream(std::move(head));
    std::string frames;
    AppendSnapshotBeginFrame(&frames, 10, StreamClockUs(), 10, 7, 5, 500);
    out.WriteChunk(frames);
    out.EndStream();
    return false;
  });
  TempDir dir;
  ReplicationReplicaOptions o = Quick();
  o.resync_backoff_ms = 40;
  o.max_resync_backoff_ms = 160;
  o.install_snapshot = [](uint64_t, ReplicationReplicaOptions::Installed) {
    FAIL("no snapshot completes");
  };
  TestReplica r(loop, dir.path(), fake.address(), o);
  REQUIRE(loop.RunUntil([&] { return asked_ms.size() >= 6; }, 20'000));
  CHECK(fake.queries[0].find("snapshot=1") != std::string::npos);
  CHECK(r.replica()->counters().resyncs_started >= 5);
  CHECK(r.replica()->counters().resyncs_failed >= 5);
  CHECK(r.replica()->resync_backoff_ms() == o.max_resync_backoff_ms);
  // Each retry waited at least the resync back-off of the moment (40, 80,
  // 160, 160 ms): a lower bound, whatever the machine's speed.
  const uint64_t want[] = {40, 80, 160, 160};
  for (size_t i = 0; i < 4; i++) CHECK(asked_ms[i + 1] - asked_ms[i] >= want[i]);
}

// An Io that holds the rename publishing staging/COMPLETE until the test lets
// it go: a snapshot's Finish, in the thread pool, waits there while the test
// re-points the replica.
class CompleteGateIo final : public storage::IoWrapper {
 public:
  CompleteGateIo() : IoWrapper(storage::Io::Posix()) {}
  int Rename(const std::string& from, const std::string& to) override {
    const bool gated = to.ends_with(std::string("/") + storage::kStagingCompleteFileName);
    if (gated) {
      std::unique_lock<std::mutex> l(mu_);
      held_ = true;
      cv_.wait(l, [this] { return open_; });
    }
    const int err = base()->Rename(from, to);
    if (gated) {
      std::lock_guard<std::mutex> l(mu_);
      renamed_ = true;
    }
    return err;
  }
  bool held() {
    std::lock_guard<std::mutex> l(mu_);
    return held_;
  }
  bool renamed() {
    std::lock_guard<std::mutex> l(mu_);
    return renamed_;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, open_ = false, renamed_ = false;
};

std::map<std::string, std::string> DumpStore(storage::Store& s) {
  std::map<std::string, std::string> out;
  REQUIRE(s.ForEach([&](std::string_view k, std::string_view v, uint64_t) {
             out[std::string(k)] = std::string(v);
           }).ok());
  return out;
}

// A whole snapshot of three keys (new-3, new-6, new-10) as of LSN 10 in
// history 7; the stream stays open after it.
void SendThreeKeySnapshot(net::Responder& out) {
  net::HttpResponse head;
  head.SetHeader(kReplicationSnapshotHeader, "10");
  head.SetHeader(kReplicationHistoryHeader, HistoryName(7));
  out.BeginStream(std::move(head));
  std::string records;
  for (uint64_t lsn : {3, 6, 10}) records += Record(lsn, "new-" + std::to_string(lsn), "v");
  std::string frames;
  AppendSnapshotBeginFrame(&frames, 10, StreamClockUs(), 10, 7, 3, records.size());
  AppendRecordsFrame(&frames, 10, 0, records);
  AppendSnapshotEndFrame(&frames, 10, StreamClockUs(), 10);
  out.WriteChunk(frames);
}

TEST_CASE(
    "replica: a snapshot that completes after its replica was stopped or re-pointed is "
    "discarded, never installed by the next open") {
  TestLoop loop;
  TempDir dir;
  std::map<std::string, std::string> old;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    uint64_t lsn;
    REQUIRE(store->Put("stale", "x", &lsn).ok());
    REQUIRE(store->Flush().ok());
    old = DumpStore(*store);
  }
  // A whole snapshot of three keys as of LSN 10, then the stream stays open.
  FakePrimary fake(loop, [&](const net::HttpRequest&, net::Responder& out) {
    SendThreeKeySnapshot(out);
    return true;
  });
  CompleteGateIo io;
  ReplicationReplicaOptions o = Quick();
  o.install_snapshot = [](uint64_t, ReplicationReplicaOptions::Installed) {
    FAIL("a snapshot of a stopped replica is installed");
  };
  std::optional<TestReplica> r;
  r.emplace(loop, dir.path(), fake.address(), o, &io);
  // Finish waits at the rename of COMPLETE: the snapshot is all there.
  REQUIRE(loop.RunUntil([&] { return io.held(); }, 20'000));
  SUBCASE("stopped") { r->replica()->Stop(); }
  SUBCASE("re-pointed: stopped and destroyed, as a node does") { r.reset(); }
  io.Release();
  const std::string complete =
      dir.file(std::string(storage::kStagingDirName) + "/" + storage::kStagingCompleteFileName);
  CHECK(loop.RunUntil([&] { return io.renamed() && !std::filesystem::exists(complete); }, 10'000));
  r.reset();
  auto reopened = MustOpen(TestOptions(dir.path()));
  CHECK(DumpStore(*reopened) == old);
}

TEST_CASE("replica: sends its map epoch, and drops a stream from a primary with an older one") {
  TestLoop loop;
  // Primaries that do not check epochs themselves: one names epoch 1, the
  // other epoch 2.
  auto primary_at = [](const char* epoch) {
    return StreamUnderHeader(kReplicationEpochHeader, epoch);
  };
  ReplicationReplicaOptions o = Quick();
  o.epoch = [] { return uint64_t{2}; };
  {
    FakePrimary deposed(loop, primary_at("1"));
    TempDir dir;
    TestReplica r(loop, dir.path(), deposed.address(), o);
    // Until it asked twice (it dropped the first stream) or took a record.
    REQUIRE(loop.RunUntil([&] {
      return deposed.queries.size() >= 2 || r.replica()->counters().records_received > 0;
    }));
    CHECK(deposed.queries[0].find("&epoch=2") != std::string::npos);
    CHECK(r.replica()->counters().records_received == 0);
    CHECK(r.store()->last_lsn() == 0);
    CHECK(r.replica()->counters().stale_primary >= 1);
    CHECK(r.replica()->counters().connects == 0);
  }
  // A primary at the replica's own epoch is followed.
  FakePrimary current(loop, primary_at("2"));
  TempDir dir;
  TestReplica r(loop, dir.path(), current.address(), o);
  REQUIRE(loop.RunUntil([&] { return r.store()->last_lsn() == 1; }));
  CHECK(r.replica()->counters().stale_primary == 0);
}

TEST_CASE("replica: a primary naming a newer epoch is reported at once, and still followed") {
  TestLoop loop;
  auto primary_at = [](const char* epoch) {
    return StreamUnderHeader(kReplicationEpochHeader, epoch);
  };
  std::vector<uint64_t> reported;
  ReplicationReplicaOptions o = Quick();
  o.epoch = [] { return uint64_t{2}; };
  o.on_newer_epoch = [&](uint64_t epoch) { reported.push_back(epoch); };
  {
    FakePrimary newer(loop, primary_at("5"));
    TempDir dir;
    TestReplica r(loop, dir.path(), newer.address(), o);
    REQUIRE(loop.RunUntil([&] { return r.store()->last_lsn() == 1; }));
    REQUIRE(reported.size() == 1);
    CHECK(reported[0] == 5);
  }
  // A primary at the replica's own epoch is not reported.
  reported.clear();
  FakePrimary same(loop, primary_at("2"));
  TempDir dir;
  TestReplica r(loop, dir.path(), same.address(), o);
  REQUIRE(loop.RunUntil([&] { return r.store()->last_lsn() == 1; }));
  CHECK(reported.empty());
}

TEST_CASE(
    "replica: an epoch or fork LSN header that is not a number refuses the stream; nothing is cut "
    "or applied") {
  TestLoop loop;
  struct Bad {
    std::string_view header;
    std::string value;
  };
  const Bad cases[] = {
      {kReplicationEpochHeader, "3x"},                    // trailing garbage
      {kReplicationEpochHeader, "99999999999999999999"},  // above UINT64_MAX
      {kReplicationEpochHeader, "-1"},
      {kReplicationForkHeader, "abc"},  // read as 0, it would cut every record
      {kReplicationForkHeader, "18446744073709551616"},
      {kReplicationForkHeader, "0x10"},
  };
  for (const Bad& bad : cases) {
    const std::string header(bad.header);
    CAPTURE(header);
    CAPTURE(bad.value);
    std::vector<uint64_t> cuts;
    std::vector<uint64_t> newer;
    ReplicationReplicaOptions o = Quick();
    o.epoch = [] { return uint64_t{2}; };
    o.cut_tail = [&cuts](uint64_t lsn) { cuts.push_back(lsn); };
    o.on_newer_epoch = [&newer](uint64_t epoch) { newer.push_back(epoch); };
    FakePrimary fake(loop, StreamUnderHeader(bad.header, bad.value));
    TempDir dir;
    TestReplica r(loop, dir.path(), fake.address(), o);
    // Until it asked twice (it dropped the first stream) or took a record.
    REQUIRE(loop.RunUntil(
        [&] { return fake.queries.size() >= 2 || r.replica()->counters().records_received > 0; }));
    CHECK(r.replica()->counters().protocol_errors >= 1);
    CHECK(r.replica()->counters().records_received == 0);
    CHECK(r.replica()->counters().connects == 0);
    CHECK(r.store()->last_lsn() == 0);
    CHECK(cuts.empty());
    CHECK(newer.empty());
  }
}

TEST_CASE(
    "replica: while an earlier snapshot still holds staging/ the replica asks for none, and the "
    "primary's refusal is counted as refused (busy), not as begun; once it is gone the next "
    "begins") {
  TestLoop loop;
  TempDir dir;
  // Every stream that asks for a snapshot: a whole one of three keys as of
  // LSN 10, then it stays open. Without snapshot=1: 410, as a primary whose
  // log no longer holds what the replica needs.
  FakePrimary fake(loop, [&](const net::HttpRequest& request, net::Responder& out) {
    if (request.query.find("snapshot=1") == std::string::npos) {
      out.Send(net::MakeErrorResponse(410, "log_truncated", "ask with snapshot=1"));
      return false;
    }
    SendThreeKeySnapshot(out);
    return true;
  });
  CompleteGateIo io;
  ReplicationReplicaOptions o = Quick();
  o.install_snapshot = [](uint64_t, ReplicationReplicaOptions::Installed) {};
  // The first replica's snapshot waits in the thread pool (at COMPLETE)
  // when the replica is re-pointed: its writer still holds staging/LOCK.
  std::optional<TestReplica> first;
  first.emplace(loop, dir.path(), fake.address(), o, &io);
  REQUIRE(loop.RunUntil([&] { return io.held(); }, 20'000));
  first.reset();
  const size_t asked_before = fake.queries.size();
  // The next replica opens the store (staging/ is left to the writer) and
  // cannot stage a snapshot yet.
  bool installed = false;
  o.install_snapshot = [&](uint64_t, ReplicationReplicaOptions::Installed) { installed = true; };
  TestReplica second(loop, dir.path(), fake.address(), o, &io);
  const ReplicationReplica::Counters& n = second.replica()->counters();
  const bool refused = loop.RunUntil([&] { return n.resyncs_refused_busy >= 2; }, 20'000);
  if (!refused) io.Release();  // else the teardown would wait for the writer forever
  REQUIRE(refused);
  CHECK(n.resyncs_started == 0);
  CHECK(n.resyncs_failed == 0);
  CHECK(!installed);
  for (size_t i = asked_before; i < fake.queries.size(); i++) {
    CHECK(fake.queries[i].find("snapshot=1") == std::string::npos);
  }
  // The first writer finishes and is discarded: the next offer is staged.
  io.Release();
  CHECK(loop.RunUntil([&] { return installed; }, 20'000));
  CHECK(n.resyncs_started == 1);
  CHECK(n.resyncs_failed == 0);
}

}  // namespace
}  // namespace distkv::repltest
