// ReplicationPrimary in-process: what its stream carries (a heartbeat, then
// the durable log in slices, then live batches), what it refuses, how acks
// satisfy or time out waiting writes, and that a replica which stops reading
// is cut off instead of making the primary buffer for it.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "tests/unit/replication/replication_test_util.h"

namespace distkv::repltest {
namespace {

net::HttpRequest AckRequest(const std::string& query) {
  net::HttpRequest r;
  r.method = "POST";
  r.path = "/internal/replica-ack";
  r.query = query;
  r.target = r.path + "?" + query;
  return r;
}

// The same, from a replica that follows the primary's current history.
net::HttpRequest AckRequest(storage::Store* store, const std::string& query) {
  return AckRequest(query + "&history=" + HistoryName(store->history_id()));
}

bool Dense(const std::vector<uint64_t>& lsns, uint64_t first, uint64_t last) {
  if (lsns.size() != last - first + 1) return false;
  for (size_t i = 0; i < lsns.size(); ++i) {
    if (lsns[i] != first + i) return false;
  }
  return true;
}

TEST_CASE("primary: a stream opens with a heartbeat, sends the log in slices, then live batches") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.slice_bytes = 16u << 10;
  TestPrimary p(loop, o);
  p.Put("k", 500, 1000);  // ~0.5 MB: about 30 slices

  StreamReader reader(loop, p.port(), "/internal/replicate?from=0&replica=r1&shard=s");
  REQUIRE(loop.RunUntil([&] { return reader.lsns.size() >= 500; }));
  CHECK(reader.status == 200);
  REQUIRE(!reader.frames.empty());
  CHECK(reader.frames[0].kind == FrameKind::kHeartbeat);
  CHECK(reader.frames[0].primary_lsn == 500);
  CHECK(Dense(reader.lsns, 1, 500));
  size_t record_frames = 0;
  const size_t one_record = storage::EncodedRecordSize(4, 1000);
  for (const auto& f : reader.frames) {
    if (f.kind != FrameKind::kRecords) continue;
    record_frames++;
    CHECK(f.records.size() <= o.slice_bytes + one_record);
  }
  CHECK(record_frames >= 500 * one_record / (o.slice_bytes + one_record));

  // Live: a new batch is pushed as soon as it is durable, stamped with the time.
  p.Put("live", 10, 10);
  REQUIRE(loop.RunUntil([&] { return reader.lsns.size() >= 510; }));
  CHECK(Dense(reader.lsns, 1, 510));
  const auto& last = reader.frames.back();
  CHECK(last.kind == FrameKind::kRecords);
  CHECK(last.primary_lsn == 510);
  CHECK(last.time_us != 0);
  CHECK(p.primary()->connected_replicas() == 1);
  CHECK(p.primary()->counters().records_sent == 510);
  reader.Close();
  REQUIRE(loop.RunUntil([&] { return p.primary()->connected_replicas() == 0; }));
}

TEST_CASE("primary: a stream from an LSN carries only the records after it") {
  TestLoop loop;
  TestPrimary p(loop);
  p.Put("k", 100);
  StreamReader reader(
      loop, p.port(),
      "/internal/replicate?from=60&replica=r1&history=" + HistoryName(p.store()->history_id()));
  REQUIRE(loop.RunUntil([&] { return reader.lsns.size() >= 40; }));
  CHECK(Dense(reader.lsns, 61, 100));
  // Asking counts as holding everything up to from.
  CHECK(p.primary()->acked_lsn("r1") == 60);
  reader.Close();
}

TEST_CASE("primary: malformed or impossible stream requests are refused with a JSON error") {
  TestLoop loop;
  TestPrimary p(loop);
  p.Put("k", 5);
  struct Case {
    const char* target;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"/internal/replicate?from=6&replica=r1", 409, "history_diverged"},
      {"/internal/replicate?from=0", 400, "missing_parameter"},
      {"/internal/replicate?replica=r1", 400, "missing_parameter"},
      {"/internal/replicate?from=x1&replica=r1", 400, "bad_lsn"},
      {"/internal/replicate?from=0&replica=r1&shard=other", 409, "wrong_shard"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    StreamReader reader(loop, p.port(), c.target);
    REQUIRE(loop.RunUntil([&] { return reader.ended; }));
    CHECK(reader.status == c.status);
    CHECK(reader.error_body.find(c.code) != std::string::npos);
  }
  CHECK(p.primary()->counters().streams_refused == 5);
  CHECK(p.primary()->connected_replicas() == 0);
}

TEST_CASE("primary: WaitForAcks is satisfied by enough acks, or times out") {
  TestLoop loop;
  TestPrimary p(loop);
  p.Put("k", 10);
  ReplicationPrimary* primary = p.primary();

  int one = -1, two = -1;
  primary->WaitForAcks(5, 1, 60'000, [&](bool ok) { one = ok; });
  primary->WaitForAcks(8, 2, 100, [&](bool ok) { two = ok; });
  CHECK(one == -1);

  net::HttpResponse r = primary->HandleAck(AckRequest(p.store(), "replica=r1&lsn=6"));
  CHECK(r.status == 200);
  CHECK(one == 1);  // one replica holds LSN 5
  CHECK(two == -1);
  r = primary->HandleAck(AckRequest(p.store(), "replica=r2&lsn=7"));
  CHECK(two == -1);  // two replicas, but not both at 8
  REQUIRE(loop.RunUntil([&] { return two != -1; }));
  CHECK(two == 0);
  CHECK(primary->acks().timeouts() == 1);

  // An ack past the log's end would acknowledge writes that never happened.
  r = primary->HandleAck(AckRequest(p.store(), "replica=r1&lsn=11"));
  CHECK(r.status == 409);
  CHECK(primary->acked_lsn("r1") == 6);
  CHECK(primary->HandleAck(AckRequest(p.store(), "lsn=3")).status == 400);

  // Already held: answered at once.
  int now = -1;
  primary->WaitForAcks(6, 1, 60'000, [&](bool ok) { now = ok; });
  CHECK(now == 1);
  primary->HandleAck(AckRequest(p.store(), "replica=r2&lsn=10"));
  primary->HandleAck(AckRequest(p.store(), "replica=r1&lsn=10"));
  int both = -1;
  primary->WaitForAcks(10, 2, 60'000, [&](bool ok) { both = ok; });
  CHECK(both == 1);
}

TEST_CASE("primary: only the shard's configured replicas may ack or stream (403 otherwise)") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.replicas = {"10.0.0.2:8080"};
  TestPrimary p(loop, o);
  p.Put("k", 10);
  ReplicationPrimary* primary = p.primary();
  int acked = -1;
  primary->WaitForAcks(5, 1, 60'000, [&](bool ok) { acked = ok; });

  // A stranger's ack neither counts nor enters the table, whatever its name.
  for (const char* name : {"intruder", "a%22b%0Ac", "10.0.0.3:8080"}) {
    net::HttpResponse r =
        primary->HandleAck(AckRequest(p.store(), std::string("replica=") + name + "&lsn=8"));
    CHECK(r.status == 403);
    CHECK(r.body.find("\"unknown_replica\"") != std::string::npos);
  }
  CHECK(acked == -1);
  CHECK(primary->acks().acked().size() == 1);
  std::string metrics;
  {
    PromWriter prom(&metrics);
    primary->WritePrometheus(&prom);
  }
  CHECK(metrics.find("intruder") == std::string::npos);

  StreamReader reader(loop, p.port(), "/internal/replicate?from=0&replica=intruder&shard=s");
  REQUIRE(loop.RunUntil([&] { return reader.ended; }));
  CHECK(reader.status == 403);
  CHECK(primary->connected_replicas() == 0);

  CHECK(primary->HandleAck(AckRequest(p.store(), "replica=10.0.0.2:8080&lsn=8")).status == 200);
  CHECK(acked == 1);
}

TEST_CASE("primary: lag_ms grows with the oldest unacknowledged record, connected or not") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.replicas = {"r1"};
  TestPrimary p(loop, o);
  p.Put("k", 10);
  CHECK(p.primary()->HandleAck(AckRequest(p.store(), "replica=r1&lsn=10")).status == 200);
  p.Put("j", 10);  // r1 never connected and is now 10 records behind
  auto lag_ms = [&] {
    std::string json;
    {
      JsonWriter w(&json);
      p.primary()->WriteJson(&w);
    }
    auto at = json.find("\"lag_ms\":");
    REQUIRE(at != std::string::npos);
    return std::stoull(json.substr(at + 9));
  };
  const uint64_t before = lag_ms();
  usleep(300'000);
  const uint64_t after = lag_ms();
  CHECK(after >= before + 250);
  CHECK(p.primary()->HandleAck(AckRequest(p.store(), "replica=r1&lsn=20")).status == 200);
  CHECK(lag_ms() == 0);
}

TEST_CASE("primary: Stop ends every stream and answers every waiting write with false") {
  TestLoop loop;
  TestPrimary p(loop);
  p.Put("k", 3);
  StreamReader reader(loop, p.port(), "/internal/replicate?from=0&replica=r1");
  REQUIRE(loop.RunUntil([&] { return reader.lsns.size() == 3; }));
  int waited = -1;
  p.primary()->WaitForAcks(3, 1, 60'000, [&](bool ok) { waited = ok; });
  p.primary()->Stop();
  CHECK(waited == 0);
  REQUIRE(loop.RunUntil([&] { return reader.ended; }));
  CHECK(reader.end_error == net::ClientError::kNone);  // a clean end of the chunked body
  p.Close();
}

TEST_CASE("primary: a replica that stops reading is cut off; the primary does not buffer for it") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.slice_bytes = 64u << 10;
  o.low_water_bytes = 256u << 10;
  o.stall_timeout_ms = 200;
  o.replicas = {"stuck"};
  TestPrimary p(loop, o);
  p.Put("k", 20000, 1000);  // 20 MB: far more than the socket buffers hold

  // A client that asks for the stream and never reads a byte of it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(p.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string req =
      "GET /internal/replicate?from=0&replica=stuck HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));

  size_t max_queued = 0;
  std::string stats;
  REQUIRE(loop.RunUntil(
      [&] {
        stats.clear();
        {
          JsonWriter w(&stats);
          p.primary()->WriteJson(&w);
        }
        const size_t at = stats.find("\"queued_bytes\":");
        if (at != std::string::npos)
          max_queued = std::max<size_t>(max_queued, std::stoull(stats.substr(at + 15)));
        return p.primary()->counters().stall_disconnects == 1;
      },
      20'000));
  CHECK(p.primary()->connected_replicas() == 0);
  // What the primary held for it: at most the low-water mark and one frame.
  CHECK(max_queued > 0);
  CHECK(max_queued <=
        o.low_water_bytes + o.slice_bytes + storage::EncodedRecordSize(8, 1000) + 4096);
  CHECK(p.primary()->counters().records_sent < 20000);
  ::close(fd);
}

// A stream that cannot send (its replica stopped reading) but whose stall
// timeout is far off: its log cursor pins the segment it reads.
int StuckStream(int port, uint64_t from) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string req = "GET /internal/replicate?from=" + std::to_string(from) +
                          "&replica=stuck HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  return fd;
}

TEST_CASE(
    "primary: a stream that holds replaced segments past keep_bytes is ended and the disk "
    "reclaimed") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.slice_bytes = 64u << 10;
  o.low_water_bytes = 256u << 10;
  o.stall_timeout_ms = 600'000;  // never, in this test
  o.keep_bytes = 2u << 20;
  o.replicas = {"stuck"};
  TestPrimary p(loop, o, 1u << 20);
  p.Put("k", 8000, 1000);  // 8 MB in 1 MB segments
  const int fd = StuckStream(p.port(), 0);
  REQUIRE(loop.RunUntil([&] { return p.primary()->connected_replicas() == 1; }));
  // Everything is overwritten, then compacted: the replaced segments wait
  // for the stuck stream's cursor, more of them than keep_bytes.
  p.Put("k", 8000, 1000);
  REQUIRE(p.store()->Compact().ok());
  REQUIRE(p.store()->Stats().pinned_bytes > o.keep_bytes);

  REQUIRE(loop.RunUntil([&] { return p.primary()->counters().keep_disconnects == 1; }, 20'000));
  CHECK(p.primary()->connected_replicas() == 0);
  CHECK(p.primary()->counters().stall_disconnects == 0);
  const storage::StoreStats st = p.store()->Stats();
  CHECK(st.pinned_segments == 0);
  CHECK(st.pinned_bytes == 0);
  ::close(fd);
}

TEST_CASE("primary: replaced segments within keep_bytes stay for the stream that reads them") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  o.slice_bytes = 64u << 10;
  o.low_water_bytes = 256u << 10;
  o.stall_timeout_ms = 600'000;
  o.keep_bytes = 64u << 20;
  o.replicas = {"stuck"};
  TestPrimary p(loop, o, 1u << 20);
  p.Put("k", 8000, 1000);
  const int fd = StuckStream(p.port(), 0);
  REQUIRE(loop.RunUntil([&] { return p.primary()->connected_replicas() == 1; }));
  p.Put("k", 8000, 1000);
  REQUIRE(p.store()->Compact().ok());
  const uint64_t pinned = p.store()->Stats().pinned_bytes;
  REQUIRE(pinned > 0);
  // A few heartbeat intervals (the bound is checked on each): nothing is
  // ended, nothing deleted under the stream.
  loop.RunUntil([] { return false; }, 2'000);
  CHECK(p.primary()->counters().keep_disconnects == 0);
  CHECK(p.primary()->connected_replicas() == 1);
  CHECK(p.store()->Stats().pinned_bytes == pinned);
  ::close(fd);
}

TEST_CASE(
    "primary: a replica with a newer map epoch is refused (409 stale_epoch) and its map asked "
    "for") {
  TestLoop loop;
  ReplicationPrimaryOptions o;
  uint64_t epoch = 3;
  std::vector<std::pair<std::string, uint64_t>> told;
  o.epoch = [&epoch] { return epoch; };
  o.on_newer_epoch = [&told](const std::string& replica, uint64_t e) {
    told.emplace_back(replica, e);
  };
  TestPrimary p(loop, o);
  p.Put("k", 5);
  const std::string history = "&history=" + HistoryName(p.store()->history_id());

  StreamReader newer(loop, p.port(), "/internal/replicate?from=0&replica=r1&epoch=4" + history);
  REQUIRE(loop.RunUntil([&] { return newer.ended || !newer.lsns.empty(); }));
  CHECK(newer.status == 409);
  CHECK(newer.error_body.find("\"stale_epoch\"") != std::string::npos);
  CHECK(newer.lsns.empty());
  REQUIRE(told.size() == 1);
  CHECK(told[0] == std::make_pair(std::string("r1"), uint64_t{4}));
  CHECK(p.primary()->counters().streams_fenced == 1);

  // Once this node's map has caught up, the same replica streams.
  epoch = 4;
  StreamReader same(loop, p.port(), "/internal/replicate?from=0&replica=r1&epoch=4" + history);
  REQUIRE(loop.RunUntil([&] { return same.lsns.size() >= 5; }));
  CHECK(same.status == 200);
  CHECK(told.size() == 1);
  same.Close();
}

}  // namespace
}  // namespace distkv::repltest
