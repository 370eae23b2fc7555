// Replication through real processes: a primary and its replica on loopback.
//
// The replica must end up with exactly the primary's data (compared with
// GET /internal/digest), refuse writes, resume from its own LSN after being
// killed (counted with its /stats), follow a restarted primary, and
// ?ack=replica must mean what it says: 504 when no replica acknowledges in
// time, and otherwise an answer only once the replica holds the write.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

std::string Key(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rk-%05zu", i);
  return buf;
}

// n operations over a key space of n/3 keys: first every key is created, then
// a deterministic mix of overwrites (2 in 3) and deletes (1 in 3).
std::vector<Call> MixedWrites(const std::string& address, size_t n, size_t seed) {
  std::vector<Call> calls;
  const size_t keys = n / 3;
  uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const std::string key = Key(i < keys ? i : x % keys);
    if (i >= keys && x % 3 == 0) {
      calls.push_back(MakeCall(address, "DELETE", "/kv/" + key));
    } else {
      calls.push_back(MakeCall(
          address, "PUT", "/kv/" + key,
          key + "/" + std::to_string(seed) + "/" + std::to_string(i) + std::string(x % 200, 'v')));
    }
  }
  return calls;
}

// Sends the calls; every one must be a 2xx, or a 404 for a delete of a key an
// earlier delete removed.
void WriteAll(SyncHttp& http, std::vector<Call> calls, SyncHttp::ReplyHook hook = {}) {
  std::vector<std::string> methods;
  for (const Call& c : calls) methods.push_back(c.request.method);
  std::vector<Reply> replies = http.SendAll(std::move(calls), 32, std::move(hook));
  size_t bad = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const int s = replies[i].status;
    if (!(Is2xx(s) || (s == 404 && methods[i] == "DELETE"))) {
      if (bad++ < 3) FAIL_CHECK("write " << i << ": " << replies[i]);
    }
  }
  CHECK(bad == 0);
}

struct Digest {
  int64_t keys = -1;
  int64_t last_lsn = -1;
  std::string digest;
  bool operator==(const Digest& o) const { return keys == o.keys && digest == o.digest; }
};

Digest FullDigestOf(SyncHttp& http, const std::string& address) {
  Json j = GetJson(http, address, "/internal/digest");
  Digest d;
  d.keys = JsonInt(j, "keys");
  d.last_lsn = JsonInt(j, "last_lsn");
  const Json* digest = JsonField(j, "digest");
  REQUIRE(digest != nullptr);
  d.digest = digest->get<std::string>();
  return d;
}

// The "replication" object of a node's /stats.
Json ReplicationStats(SyncHttp& http, const std::string& address) {
  Json stats = GetJson(http, address, "/stats");
  const Json* r = JsonField(stats, "replication");
  REQUIRE_MESSAGE((r != nullptr && r->is_object()),
                  "/stats of " << address << " has no replication object");
  return *r;
}

bool JsonTrue(const Json& object, std::string_view field) {
  const Json* v = JsonField(object, field);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

// Waits until the replica's digest equals the primary's (the primary takes no
// writes meanwhile), then checks it.
void CheckConverges(SyncHttp& http, const std::string& primary, const std::string& replica) {
  const Digest want = FullDigestOf(http, primary);
  WaitUntil([&] { return FullDigestOf(http, replica) == want; }, 15000, 50);
  const Digest got = FullDigestOf(http, replica);
  CHECK(got.keys == want.keys);
  CHECK(got.digest == want.digest);
  CHECK(got.last_lsn == want.last_lsn);
}

uint64_t EtagLsn(const Reply& reply) {
  uint64_t lsn = 0;
  REQUIRE_MESSAGE(ParseEtag(reply.Header("ETag"), &lsn), "no ETag in " << reply);
  return lsn;
}

TEST_CASE(
    "replication: 10,000 puts, overwrites and deletes reach the replica, which refuses writes") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;

  WriteAll(http, MixedWrites(primary, 10000, 1));
  CheckConverges(http, primary, replica);
  const Digest d = FullDigestOf(http, primary);
  CHECK(d.last_lsn > 3333);  // every write made a record: the test wrote what it meant to
  MESSAGE("primary and replica: " << d.keys << " keys, last LSN " << d.last_lsn << ", digest "
                                  << d.digest);

  // Reads of the shard are served by the replica itself.
  Reply get = http.Get(replica, "/kv/" + Key(0));
  CHECK(get.Header("X-Distkv-Shard") == "Delhi");
  CHECK((get.status == 200 || get.status == 404));

  for (const std::string method : {"PUT", "DELETE"}) {
    Reply r = http.Send(replica, method, "/kv/" + Key(1), "nope");
    CHECK_MESSAGE(r.status == 403, method << ": " << r);
    CHECK(IsJsonError(r));
    CHECK_MESSAGE(r.body.find(primary) != std::string::npos,
                  "the 403 names the primary: " << r.body);
  }
  CHECK(FullDigestOf(http, replica) == FullDigestOf(http, primary));

  // The digest sees applied records at once; applied_lsn counts them once
  // the replica's own group commit has made them durable, a moment later.
  CHECK(WaitUntil(
      [&] { return JsonInt(ReplicationStats(http, replica), "applied_lsn") == d.last_lsn; },
      10000));
  const Json rs = ReplicationStats(http, replica);
  CHECK(JsonText(rs, "role") == "replica");
  CHECK(JsonText(rs, "primary") == primary);
  CHECK(JsonTrue(rs, "connected"));
  CHECK(JsonInt(rs, "applied_lsn") == d.last_lsn);
  CHECK(JsonInt(rs, "records_received") == d.last_lsn);
  CHECK(JsonInt(rs, "crc_errors") == 0);

  // The primary sees the replica's acknowledgement (acks trail the data a little).
  WaitUntil(
      [&] {
        const Json ps = ReplicationStats(http, primary);
        const Json* list = JsonField(ps, "replicas");
        return list && list->is_array() && list->size() == 1 &&
               JsonInt((*list)[0], "acked_lsn") == d.last_lsn;
      },
      5000);
  const Json ps = ReplicationStats(http, primary);
  CHECK(JsonText(ps, "role") == "primary");
  const Json* replicas = JsonField(ps, "replicas");
  REQUIRE(replicas != nullptr);
  REQUIRE((replicas->is_array() && replicas->size() == 1));
  const Json& entry = (*replicas)[0];
  CHECK(JsonText(entry, "address") == replica);
  CHECK(JsonTrue(entry, "connected"));
  CHECK(JsonInt(entry, "acked_lsn") == d.last_lsn);
  CHECK(JsonInt(entry, "lag_records") == 0);

  Reply metrics = http.Get(replica, "/metrics");
  CHECK(metrics.body.find("distkv_replication_applied_lsn " + std::to_string(d.last_lsn)) !=
        std::string::npos);
  metrics = http.Get(primary, "/metrics");
  CHECK(metrics.body.find("distkv_replica_acked_lsn{replica=\"" + replica + "\"} " +
                          std::to_string(d.last_lsn)) != std::string::npos);

  // Both stop cleanly on SIGTERM with the stream open (the primary ends it first).
  CHECK(cluster.primary(0).Stop() == 0);
  CHECK(cluster.replica(0).Stop() == 0);
}

TEST_CASE("replication: a replica killed mid-stream resumes from its own LSN, not from zero") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  Node& replica_node = cluster.replica(0);
  SyncHttp http;

  // The replica must hold something of its own before it is killed: its first
  // connection may fail (the primary not listening yet) and the retry come
  // just before the kill below, with nothing durable on the replica yet.
  WriteAll(http, MixedWrites(primary, 900, 1));
  REQUIRE(WaitUntil([&] { return JsonInt(ReplicationStats(http, replica), "applied_lsn") > 0; },
                    10000));

  // SIGKILL the replica while the primary is taking writes (and streaming them).
  size_t answered = 0;
  bool killed = false;
  WriteAll(http, MixedWrites(primary, 4000, 2), [&](size_t, const Reply&) {
    if (++answered == 2500 && !killed) {
      ::kill(replica_node.pid(), SIGKILL);
      killed = true;
    }
  });
  REQUIRE(killed);
  replica_node.Kill();  // reap
  WriteAll(http, MixedWrites(primary, 2000, 3));
  const Digest before_restart = FullDigestOf(http, primary);

  replica_node.Restart();
  CheckConverges(http, primary, replica);

  const Json rs = ReplicationStats(http, replica);
  const int64_t start_lsn = JsonInt(rs, "start_lsn");
  const int64_t received = JsonInt(rs, "records_received");
  MESSAGE("replica restarted at LSN " << start_lsn << ", received " << received << " of "
                                      << before_restart.last_lsn << " records");
  CHECK(start_lsn > 0);                                    // it kept what it had
  CHECK(received == before_restart.last_lsn - start_lsn);  // and asked only for the rest
  CHECK(received < before_restart.last_lsn);
}

TEST_CASE("replication: the replica reconnects to a restarted primary and goes on") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;

  WriteAll(http, MixedWrites(primary, 1500, 4));
  CheckConverges(http, primary, replica);
  const int64_t connects_before = JsonInt(ReplicationStats(http, replica), "connects");

  cluster.primary(0).Kill();
  // While the primary is down the replica still serves reads of what it holds.
  Reply get = http.Get(replica, "/kv/" + Key(0));
  CHECK((get.status == 200 || get.status == 404));
  cluster.primary(0).Restart();

  WriteAll(http, MixedWrites(primary, 1500, 5));
  CheckConverges(http, primary, replica);
  const Json rs = ReplicationStats(http, replica);
  CHECK(JsonTrue(rs, "connected"));
  CHECK(JsonInt(rs, "connects") > connects_before);
  CHECK(JsonInt(rs, "reconnects") >= 1);
}

TEST_CASE(
    "replication: ?ack=replica with no replica running answers 504 after ack_timeout_ms; the write "
    "stays") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.Set("replication", "ack_timeout_ms", 300);
  TestCluster cluster(spec);
  cluster.Start();
  const std::string primary = cluster.address(0);
  CHECK(cluster.replica(0).Stop() == 0);
  SyncHttp http;

  const auto start = std::chrono::steady_clock::now();
  Reply r = http.Send(primary, "PUT", "/kv/acked?ack=replica", "value-1");
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK_MESSAGE(r.status == 504, r);
  CHECK(IsJsonError(r));
  CHECK(r.body.find("stays written") != std::string::npos);
  // It waited for the replicas before giving up (a lower bound is behaviour, not speed).
  CHECK(waited >= std::chrono::milliseconds(300));
  const uint64_t lsn = EtagLsn(r);

  Reply get = http.Get(primary, "/kv/acked");
  CHECK(get.status == 200);
  CHECK(get.body == "value-1");
  CHECK(EtagLsn(get) == lsn);

  const Json ps = ReplicationStats(http, primary);
  CHECK(JsonInt(ps, "ack_timeouts") == 1);
  CHECK(JsonInt(ps, "ack_waiting") == 0);

  // A write without ?ack=replica does not wait for anyone.
  CHECK(Is2xx(http.Send(primary, "PUT", "/kv/plain", "v").status));
}

TEST_CASE("replication: with [replication] min_acks = 1 every write waits for a replica") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.Set("replication", "min_acks", 1);
  spec.Set("replication", "ack_timeout_ms", 300);
  TestCluster cluster(spec);
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;

  Reply r = http.Send(primary, "PUT", "/kv/m1", "one");
  REQUIRE_MESSAGE(Is2xx(r.status), r);
  CHECK(JsonInt(ReplicationStats(http, replica), "applied_lsn") >=
        static_cast<int64_t>(EtagLsn(r)));

  CHECK(cluster.replica(0).Stop() == 0);
  r = http.Send(primary, "PUT", "/kv/m2", "two");
  CHECK_MESSAGE(r.status == 504, r);
  r = http.Send(primary, "DELETE", "/kv/m1");
  CHECK_MESSAGE(r.status == 504, r);
  CHECK(http.Get(primary, "/kv/m1").status == 404);  // the delete happened all the same
}

TEST_CASE("replication: ?ack=replica answers only once the replica holds the write") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;
  // The replica is up and streaming before the first acknowledged write.
  REQUIRE(WaitUntil([&] { return JsonTrue(ReplicationStats(http, replica), "connected"); }, 10000));

  for (int i = 0; i < 30; ++i) {
    const std::string key = "ack-" + std::to_string(i);
    const std::string value = "value-" + std::to_string(i);
    Reply r =
        http.Send(primary, i % 5 == 4 ? "DELETE" : "PUT",
                  "/kv/" + (i % 5 == 4 ? "ack-" + std::to_string(i - 1) : key) + "?ack=replica",
                  i % 5 == 4 ? "" : value);
    REQUIRE_MESSAGE(Is2xx(r.status), r);
    if (i % 5 != 4) {
      const uint64_t lsn = EtagLsn(r);
      // No waiting here: the answer itself promises the replica has it.
      CHECK(JsonInt(ReplicationStats(http, replica), "applied_lsn") >= static_cast<int64_t>(lsn));
      Reply got = http.Get(replica, "/kv/" + key);
      CHECK(got.status == 200);
      CHECK(got.body == value);
      CHECK(EtagLsn(got) == lsn);
    } else {
      CHECK(http.Get(replica, "/kv/ack-" + std::to_string(i - 1)).status == 404);
    }
  }
  const Json ps = ReplicationStats(http, primary);
  CHECK(JsonInt(ps, "ack_waits") == 30);
  CHECK(JsonInt(ps, "ack_timeouts") == 0);
}

}  // namespace
}  // namespace distkv::clustertest
