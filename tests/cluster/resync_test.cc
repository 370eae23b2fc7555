// Full resync through real processes: a replica kept down while its primary
// overwrites, deletes and compacts past its position comes back by snapshot
// and ends with the primary's data; a replica killed while it receives a
// snapshot restarts on its old data, intact, and the next start completes
// the resync; a replica receiving a snapshot while its primary takes a
// tail larger than the snapshot finishes that one snapshot and then streams
// the tail; a replica paused past its idle timeout mid-snapshot finishes
// that snapshot when it wakes. (The divergence case is in history_test.cc.)
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

namespace fs = std::filesystem;

Json ReplicationOf(SyncHttp& http, const std::string& address) {
  return GetJson(http, address, "/stats")["replication"];
}

void Write(SyncHttp& http, const std::string& addr, int keys, int round, size_t value_bytes) {
  std::vector<Call> calls;
  for (int i = 0; i < keys; i++) {
    calls.push_back(MakeCall(addr, "PUT", "/kv/key-" + std::to_string(i),
                             std::to_string(round) + std::string(value_bytes, 'v')));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(Is2xx(r.status));
}

// While the replica is down the primary overwrites everything, deletes some
// keys and compacts: the replica's position is no longer in its log.
void MovePastReplica(SyncHttp& http, const std::string& addr, int keys, size_t value_bytes) {
  for (int round = 1; round <= 2; round++) Write(http, addr, keys, round, value_bytes);
  std::vector<Call> deletes;
  for (int i = 0; i < keys; i += 7)
    deletes.push_back(MakeCall(addr, "DELETE", "/kv/key-" + std::to_string(i)));
  for (const Reply& r : http.SendAll(std::move(deletes), 32)) REQUIRE(r.status == 204);
  // Other keys, enough to seal the segment the tombstones are in: the
  // compaction may then drop them (unless a replica needs them).
  std::vector<Call> filler;
  for (int i = 0; i < 600; i++) {
    filler.push_back(
        MakeCall(addr, "PUT", "/kv/filler-" + std::to_string(i), std::string(2000, 'f')));
  }
  for (const Reply& f : http.SendAll(std::move(filler), 32)) REQUIRE(Is2xx(f.status));
  Reply r = http.Send(addr, "POST", "/admin/compact");
  REQUIRE_MESSAGE(r.status == 202, r);
  REQUIRE(WaitUntil(
      [&] {
        Json c = GetJson(http, addr, "/stats")["compaction"];
        return !c["running"].get<bool>() && c["compactions"].get<int64_t>() >= 1;
      },
      60'000, 50));
}

// keep_records: [storage] replica_keep_records. 0: a replica that is behind
// holds no tombstone back, so a compaction while it is away passes its LSN
// (it comes back by snapshot); the default keeps them, and it comes back
// inside the compacted range.
ClusterSpec ResyncSpec(int64_t keep_records = 0) {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.Set("storage", "segment_bytes", 1 << 20);
  spec.Set("storage", "compact_dead_ratio", 0);  // only when asked
  spec.Set("storage", "replica_keep_records", keep_records);
  return spec;
}

bool StagingHasSegment(const std::string& data) {
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(data + "/staging", ec)) {
    if (f.path().extension() == ".seg") return true;
  }
  return false;
}

// The replica's entry in its primary's /stats.
Json PrimarysViewOf(SyncHttp& http, const std::string& addr, const std::string& replica) {
  const Json rep = ReplicationOf(http, addr);
  for (const Json& r : rep["replicas"]) {
    if (JsonText(r, "address") == replica) return r;
  }
  FAIL("the primary does not list " << replica << ": " << rep.dump());
  return Json();
}

}  // namespace

TEST_CASE(
    "resync: a replica kept down across a compaction comes back by snapshot, equal to its "
    "primary") {
  ClusterSpec spec = ResyncSpec();
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  SyncHttp http;
  Write(http, addr, 2000, 0, 200);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000));

  c.replica(0).Kill();
  MovePastReplica(http, addr, 2000, 200);
  c.replica(0).StartAndWait();

  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "resyncs_failed") == 0);
  CHECK(JsonInt(rrep, "last_resync_bytes") > 0);
  MESSAGE("snapshot: " << JsonInt(rrep, "last_resync_bytes") << " bytes in "
                       << JsonInt(rrep, "last_resync_ms") << " ms");
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_sent") == 1);
  CHECK(JsonInt(prep, "streams_gone") >= 1);
  CHECK(http.Get(raddr, "/metrics").body.find("distkv_replication_resyncs_total 1") !=
        std::string::npos);
  // After the snapshot the replica follows the log on the same stream: a
  // new write and a new delete reach it without another resync.
  REQUIRE(Is2xx(http.Send(addr, "PUT", "/kv/after-resync", "a").status));
  REQUIRE(http.Send(addr, "DELETE", "/kv/key-1").status == 204);
  CHECK(WaitUntil([&] { return http.Get(raddr, "/kv/after-resync").status == 200; }, 30'000));
  CHECK(WaitUntil([&] { return http.Get(raddr, "/kv/key-1").status == 404; }, 30'000));
  CHECK(http.Get(raddr, "/kv/key-0").status == 404);  // a delete it never streamed
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_started") == 1);
  // The replica's store restarts from the snapshot and the log after it.
  c.replica(0).Stop();
  c.replica(0).StartAndWait();
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_started") == 0);
}

TEST_CASE(
    "resync: a replica killed while it receives a snapshot restarts on its old data, and the "
    "next start completes the resync") {
  ClusterSpec spec = ResyncSpec();
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  const std::string rdata = c.dir().Sub("data-" + spec.shards[0].name + "-replica-0");
  SyncHttp http;
  constexpr int kKeys = 6000;
  Write(http, addr, kKeys, 0, 2000);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000));
  const std::string old_digest = DigestOf(http, raddr);

  c.replica(0).Kill();
  MovePastReplica(http, addr, kKeys, 2000);
  const std::string new_digest = DigestOf(http, addr);
  REQUIRE(new_digest != old_digest);
  c.replica(0).Start();
  // The moment the snapshot is being staged, the primary is frozen (so the
  // snapshot cannot finish) and the replica is killed.
  const bool staging = WaitUntil([&] { return StagingHasSegment(rdata); }, 60'000, 1);
  ::kill(c.primary(0).pid(), SIGSTOP);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }  // also when a check below ends the test
  } thaw{c.primary(0).pid()};
  c.replica(0).Kill();
  REQUIRE_MESSAGE(staging, "the snapshot was never seen being staged");
  REQUIRE(!fs::exists(rdata + "/staging/COMPLETE"));

  // Restarted while the primary cannot answer: the unfinished snapshot is
  // discarded and the old data serves, whole.
  c.replica(0).StartAndWait();
  CHECK(DigestOf(http, raddr) == old_digest);
  CHECK(http.Get(raddr, "/kv/key-5").body == "0" + std::string(2000, 'v'));
  CHECK(!StagingHasSegment(rdata));

  ::kill(c.primary(0).pid(), SIGCONT);
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == new_digest; }, 60'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "last_resync_bytes") > 0);
  CHECK(http.Get(raddr, "/kv/key-5").body == "2" + std::string(2000, 'v'));
  CHECK(http.Get(raddr, "/kv/key-7").status == 404);
  // The primary says what became of the snapshots it began: at least two
  // (the one cut short by the kill and the last), each either sent or
  // failed. The first counts as failed only if the primary had not yet
  // handed all of it to the kernel when it was frozen; a fast primary has.
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_started") >= 2);
  CHECK(JsonInt(prep, "resyncs_sent") >= 1);
  CHECK(JsonInt(prep, "resyncs_started") ==
        JsonInt(prep, "resyncs_sent") + JsonInt(prep, "resyncs_failed"));
}

TEST_CASE(
    "resync: a replica paused (SIGSTOP) past its idle timeout in the middle of a snapshot reads "
    "what waited for it when it wakes and finishes that snapshot") {
  ClusterSpec spec = ResyncSpec(0);
  // The primary waits for the paused replica: only the replica could end
  // the stream.
  spec.Set("replication", "stall_timeout_ms", 600'000);
  spec.Set("server", "idle_timeout_ms", 600'000);
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  SyncHttp http;
  c.replica(0).Kill();
  constexpr int kKeys = 3000;
  MovePastReplica(http, addr, kKeys, 4000);  // a snapshot of about 12 MB
  // The replica stages at 3 MB/s: its snapshot is still arriving when it wakes.
  c.replica(0).args().insert(c.replica(0).args().end(), {"--slow-disk", "3145728"});
  c.replica(0).Start();
  REQUIRE(WaitUntil([&] { return PrimarysViewOf(http, addr, raddr)["resync"].is_object(); }, 60'000,
                    1));
  const int64_t connects = JsonInt(PrimarysViewOf(http, addr, raddr), "connects");
  // Paused for twice its 3 s idle timeout; the primary's bytes pile up in
  // its socket meanwhile.
  REQUIRE(::kill(c.replica(0).pid(), SIGSTOP) == 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }  // also when a check below ends the test
  } thaw{c.replica(0).pid()};
  std::this_thread::sleep_for(std::chrono::seconds(6));
  REQUIRE(PrimarysViewOf(http, addr, raddr)["resync"].is_object());  // still sending it
  ::kill(c.replica(0).pid(), SIGCONT);

  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 120'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_started") == 1);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "resyncs_failed") == 0);
  CHECK(JsonInt(rrep, "stream_errors") == 0);
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_started") == 1);
  CHECK(JsonInt(prep, "resyncs_sent") == 1);
  CHECK(JsonInt(prep, "resyncs_failed") == 0);
  CHECK(JsonInt(PrimarysViewOf(http, addr, raddr), "connects") == connects);  // one stream
}

TEST_CASE(
    "resync: a replica back inside the compacted range (above the tombstone horizon) streams the "
    "live records after its LSN and takes no snapshot") {
  ClusterSpec spec = ResyncSpec(1'000'000);
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  SyncHttp http;
  Write(http, addr, 2000, 0, 200);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000));
  const int64_t replica_lsn = JsonInt(GetJson(http, raddr, "/stats"), "last_lsn");

  c.replica(0).Kill();
  MovePastReplica(http, addr, 2000, 200);
  // The replica's acknowledged LSN is within replica_keep_records of the
  // primary's, so the compaction kept every tombstone after it: the
  // horizon stays at or below the replica's LSN (and the log no longer
  // holds the records after it densely: they were compacted).
  Json pc = GetJson(http, addr, "/stats")["compaction"];
  REQUIRE(JsonInt(pc, "tombstone_horizon") <= replica_lsn);
  c.replica(0).StartAndWait();

  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_started") == 0);
  CHECK(JsonInt(rrep, "resyncs_completed") == 0);
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_started") == 0);
  CHECK(JsonInt(prep, "streams_gone") == 0);
  CHECK(http.Get(raddr, "/kv/key-0").status == 404);  // deleted while it was away
  CHECK(http.Get(raddr, "/kv/key-7").status == 404);
  CHECK(http.Get(raddr, "/kv/key-5").body == "2" + std::string(200, 'v'));
  // Its log, gap records included, restarts and goes on like any other.
  c.replica(0).Stop();
  c.replica(0).StartAndWait();
  REQUIRE(Is2xx(http.Send(addr, "PUT", "/kv/after", "a").status));
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_started") == 0);
}

TEST_CASE(
    "resync: a replica that stops reading does not keep its primary's replaced segments past "
    "replica_keep_bytes; it comes back by snapshot") {
  ClusterSpec spec = ResyncSpec(0);
  spec.Set("storage", "replica_keep_bytes", 2 << 20);
  // Only the byte bound ends the stream: not the stall timeout, nor the
  // server's idle timeout for a connection that does not read.
  spec.Set("replication", "stall_timeout_ms", 600'000);
  spec.Set("server", "idle_timeout_ms", 600'000);
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  const std::string pdata = c.dir().Sub("data-" + spec.shards[0].name);
  SyncHttp http;
  constexpr int kKeys = 500;
  Write(http, addr, kKeys, 0, 2000);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000));

  // The replica stops reading. A SIGSTOPped process would not do: its
  // kernel receive buffer goes on taking the stream (autotuned up to
  // net.ipv4.tcp_rmem's maximum, tens of MB), so how far its stream gets
  // depends on the machine. In its place a connection with a 4 KiB buffer
  // asks for the replica's stream from LSN 0 and never reads it: the
  // primary's log cursor stays in its first segment.
  c.replica(0).Kill();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  const std::string req = "GET /internal/replicate?from=0&replica=" + raddr +
                          "&shard=" + spec.shards[0].name + " HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  REQUIRE(WaitUntil([&] { return JsonInt(ReplicationOf(http, addr), "connected_replicas") == 1; },
                    30'000));

  // 10 MB of overwrites, deletes, a compaction: every segment the stream
  // would read is replaced.
  for (int round = 1; round <= 10; round++) Write(http, addr, kKeys, round, 2000);
  MovePastReplica(http, addr, kKeys, 2000);

  // The replaced segments go although the stream is still connected.
  CHECK(WaitUntil(
      [&] {
        Json c = GetJson(http, addr, "/stats")["compaction"];
        return JsonInt(c, "pinned_segments") == 0;
      },
      60'000, 50));
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "keep_disconnects") == 1);
  CHECK(JsonInt(prep, "stall_disconnects") == 0);
  CHECK(JsonInt(prep, "connected_replicas") == 0);
  const uint64_t disk = SegmentBytesOf(pdata);
  MESSAGE("primary segments after the compaction: " << disk << " bytes");
  CHECK(disk < (6u << 20));  // about 1.2 MB live and the active segment, of 16 MB written

  // The replica, started again, comes back by snapshot (its tombstones were
  // not kept: replica_keep_records = 0).
  c.replica(0).StartAndWait();
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_completed") == 1);
  CHECK(http.Get(raddr, "/kv/key-7").status == 404);
}

TEST_CASE(
    "resync: a snapshot is not restarted while the tail grows: the replica finishes it, then "
    "streams the tail") {
  ClusterSpec spec = ResyncSpec(0);
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  SyncHttp http;
  // Away from the start: when it comes back its LSN is below the
  // tombstone horizon, so it needs a snapshot, of about 30 MB.
  c.replica(0).Kill();
  constexpr int kKeys = 8000;
  MovePastReplica(http, addr, kKeys, 4000);
  // The replica stages at 3 MB/s: beyond what the sockets and the
  // primary's send queue hold (about 9 MB), its snapshot keeps the
  // primary sending for about 7 s, a window the tail below fills several
  // times over (checked: the primary is still sending after it).
  c.replica(0).args().insert(c.replica(0).args().end(), {"--slow-disk", "3145728"});
  c.replica(0).Start();
  Json before;
  REQUIRE(WaitUntil(
      [&] {
        before = PrimarysViewOf(http, addr, raddr)["resync"];
        return before.is_object();
      },
      60'000, 1));
  const int64_t snapshot_lsn = JsonInt(before, "snapshot_lsn");

  // The tail, taken as fast as the primary can: every key overwritten with
  // 1 KB, 8000 records (8 MB) after the snapshot's LSN, and a delete.
  std::vector<Call> calls;
  for (int i = 0; i < kKeys; i++) {
    calls.push_back(
        MakeCall(addr, "PUT", "/kv/key-" + std::to_string(i), "3" + std::string(1000, 't')));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(Is2xx(r.status));
  REQUIRE(http.Send(addr, "DELETE", "/kv/key-3").status == 204);
  const int64_t tail_end = JsonInt(GetJson(http, addr, "/stats"), "last_lsn");
  // Still the same snapshot on the same stream, not finished (the tail
  // grew while it was being sent), not begun again.
  Json view = PrimarysViewOf(http, addr, raddr);
  const int64_t connects = JsonInt(view, "connects");
  Json during = view["resync"];
  CHECK_MESSAGE(during.is_object(), "no snapshot on its way after the tail: " << view.dump());
  if (during.is_object()) {
    CHECK(JsonInt(during, "snapshot_lsn") == snapshot_lsn);
    MESSAGE("snapshot as of LSN " << snapshot_lsn << ": " << JsonInt(during, "bytes_sent") << " of "
                                  << JsonInt(during, "bytes") << " bytes sent; tail to LSN "
                                  << tail_end);
  }

  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 120'000, 50));
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_started") == 1);
  CHECK(JsonInt(prep, "resyncs_sent") == 1);
  CHECK(JsonInt(PrimarysViewOf(http, addr, raddr), "connects") == connects);  // one stream
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_started") == 1);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "resyncs_failed") == 0);
  CHECK(JsonInt(rrep, "last_resync_lsn") == snapshot_lsn);
  // The tail came after the snapshot, as the log.
  CHECK(JsonInt(GetJson(http, raddr, "/stats"), "last_lsn") >= tail_end);
  CHECK(http.Get(raddr, "/kv/key-3").status == 404);
  CHECK(http.Get(raddr, "/kv/key-7999").body == "3" + std::string(1000, 't'));
}

}  // namespace distkv::clustertest
