// A deposed primary's never-acknowledged tail is never read.
//
// A primary killed with a write that no replica holds keeps that write in its
// log. Back after a failover it is a replica, and it cuts the write into
// lost/ once the new primary names the point where their histories forked.
// Until then it must serve no read: a read would show a value the shard
// never had, and the same node would read older data right after the cut
// (the chaos run's etcd mode found this). The tests keep the new primary
// paused while the old one comes back, so that the window is as long as the
// test wants (and etcd too, while the old primary starts from its saved map,
// in which it is still primary), read the tail through the old node all
// along, and check that it answers 503 until the cut and 404 after, never
// the value.
#include <doctest/doctest.h>
#include <signal.h>

#include <functional>
#include <string>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

constexpr char kTail[] = "never-acknowledged";

// The "role" of a node's /health, or "" while it does not answer.
std::string RoleOf(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/health");
  if (r.status != 200) return "";
  const Json j = Json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("role") && j["role"].is_string() ? j["role"].get<std::string>()
                                                                      : "";
}

// Reads key?read=replica through `node` until done() (polled between reads)
// or 60 s, checking each answer: never `value` (a write the node cut or will
// cut); while held, 503 with the error named. Returns the answers held (503)
// and cut (404).
struct HeldReads {
  int held = 0;
  int cut = 0;
};
HeldReads ReadCutWriteUntil(SyncHttp& http, const std::string& node, const std::string& key,
                            const std::string& value, const std::function<bool()>& done) {
  HeldReads seen;
  WaitUntil(
      [&] {
        Reply r = http.Get(node, "/kv/" + key + "?read=replica");
        CHECK_MESSAGE(!(r.status == 200 && r.body == value),
                      "the deposed primary served a write the new primary never had: " << r);
        if (r.status == 503) {
          CHECK_MESSAGE((r.body.find("replica_not_synced") != std::string::npos ||
                         r.body.find("primary_unconfirmed") != std::string::npos),
                        r);
          seen.held++;
        } else if (r.status == 404) {
          seen.cut++;
        } else if (r.status != 0) {
          FAIL_CHECK("unexpected answer " << r);
        }
        return done();
      },
      60'000, 10);
  return seen;
}

}  // namespace

TEST_CASE(
    "failover (etcd): a primary killed with a write no replica holds, back as a replica, never "
    "serves that write; it answers 503 until the new primary has it cut, then 404") {
  EtcdCluster ec(1, 1, /*min_acks=*/1);
  TestCluster& cluster = *ec.cluster;
  SyncHttp http;
  Node& old_primary = cluster.primary(0);
  Node& replica = cluster.replica(0);
  const std::string data_dir = cluster.dir().Sub("data-" + cluster.spec().shards[0].name);

  // A write the replica acknowledges (min_acks = 1): both are up and streaming.
  REQUIRE(WaitUntil(
      [&] { return Is2xx(http.Send(old_primary.address(), "PUT", "/kv/acked", "a").status); },
      30'000, 100));
  // The replica stalls and the primary restarts, so that no stream is open:
  // the next write is durable on the primary alone and never acknowledged
  // (504 once ack_timeout_ms passes; 503 while the restarted primary waits
  // for etcd to confirm it; the first request may meet the pooled connection
  // to the killed process).
  REQUIRE(::kill(replica.pid(), SIGSTOP) == 0);
  old_primary.Kill();
  old_primary.StartAndWait();
  Reply tail;
  REQUIRE(WaitUntil(
      [&] {
        tail = http.Send(old_primary.address(), "PUT", "/kv/tail", kTail);
        return tail.answered() && tail.status != 503;
      },
      30'000, 100));
  REQUIRE_MESSAGE(tail.status == 504, tail);
  Reply there = http.Get(old_primary.address(), "/kv/tail");
  REQUIRE_MESSAGE((there.status == 200 && there.body == kTail), there);

  // Failover: the primary dies, the replica wakes and takes over once the
  // lease lapses.
  old_primary.Kill();
  REQUIRE(::kill(replica.pid(), SIGCONT) == 0);
  REQUIRE_MESSAGE(WaitUntil([&] { return RoleOf(http, replica.address()) == "primary"; }, 30'000),
                  "the replica did not take over");

  // The new primary and etcd pause; the old one comes back, primary of its
  // saved map, and cannot ask etcd: it serves no read.
  REQUIRE(::kill(replica.pid(), SIGSTOP) == 0);
  REQUIRE(::kill(ec.etcd.pid(), SIGSTOP) == 0);
  old_primary.StartAndWait();
  for (int i = 0; i < 20; ++i) {
    Reply r = http.Get(old_primary.address(), "/kv/tail");
    CHECK_MESSAGE(r.status == 503, r);
    CHECK_MESSAGE(r.body.find("primary_unconfirmed") != std::string::npos, r);
  }
  // Etcd is back: the old primary learns that it was deposed and follows a
  // primary that does not answer yet.
  REQUIRE(::kill(ec.etcd.pid(), SIGCONT) == 0);
  const HeldReads before = ReadCutWriteUntil(http, old_primary.address(), "tail", kTail, [&] {
    return RoleOf(http, old_primary.address()) == "replica";
  });
  CHECK(before.cut == 0);
  // Deposed, following the paused primary: its reads are held.
  Reply held = http.Get(old_primary.address(), "/kv/acked?read=replica");
  CHECK_MESSAGE(held.status == 503, held);
  CHECK_MESSAGE(held.body.find("replica_not_synced") != std::string::npos, held);
  Reply mget = http.Send(old_primary.address(), "POST", "/kv/_mget", "[\"tail\"]");
  CHECK_MESSAGE(mget.body.find(kTail) == std::string::npos, mget);
  CHECK_MESSAGE(mget.body.find("replica_not_synced") != std::string::npos, mget);

  // Restarted now, it is a replica of its saved map, and its reads stay held.
  old_primary.Kill();
  old_primary.StartAndWait();
  for (int i = 0; i < 10; ++i) {
    Reply r = http.Get(old_primary.address(), "/kv/tail?read=replica");
    CHECK_MESSAGE(r.status == 503, r);
    CHECK_MESSAGE(r.body.find("replica_not_synced") != std::string::npos, r);
  }

  // The new primary wakes: the old one's stream names the fork, it cuts the
  // tail into lost/ and takes a snapshot; from then on it serves reads.
  REQUIRE(::kill(replica.pid(), SIGCONT) == 0);
  const HeldReads after = ReadCutWriteUntil(http, old_primary.address(), "tail", kTail, [&] {
    Reply r = http.Get(old_primary.address(), "/kv/acked?read=replica");
    return r.status == 200 && r.body == "a";
  });
  MESSAGE("tail reads held: " << before.held + after.held << ", answered 404: " << after.cut);
  CHECK(http.Get(old_primary.address(), "/kv/tail?read=replica").status == 404);
  CHECK(LostText(data_dir).find(kTail) != std::string::npos);
}

TEST_CASE(
    "failover: a deposed primary that learns the new map while the promoted node cannot answer "
    "serves none of its own writes, before and after a restart, until it has them cut") {
  TestCluster cluster(LocalCluster(1, 2));
  cluster.Start();
  SyncHttp http;
  Node& old_primary = cluster.primary(0);
  Node& promoted = cluster.replica(0, 0);
  Node& other = cluster.replica(0, 1);
  const std::string data_dir = cluster.dir().Sub("data-" + cluster.spec().shards[0].name);
  // The old primary is back on epoch 0 with /kv/deposed-write, which no
  // other node has; the others are paused.
  DeposePrimaryWhileDown(cluster, http, 5, "v");

  // The other replica wakes: the old primary learns epoch 1 from it and
  // follows the promoted node, which does not answer yet. As primary of
  // epoch 0 it served its write; as a replica it must not.
  REQUIRE(::kill(other.pid(), SIGCONT) == 0);
  REQUIRE(WaitUntil([&] { return RoleOf(http, old_primary.address()) == "replica"; }, 30'000));
  for (int i = 0; i < 10; ++i) {
    Reply r = http.Get(old_primary.address(), "/kv/deposed-write?read=replica");
    CHECK_MESSAGE(r.status == 503, r);
    CHECK_MESSAGE(r.body.find("replica_not_synced") != std::string::npos, r);
  }
  old_primary.Kill();
  old_primary.StartAndWait();
  Reply again = http.Get(old_primary.address(), "/kv/deposed-write?read=replica");
  CHECK_MESSAGE(again.status == 503, again);

  // The promoted node wakes: the old primary cuts its write and catches up.
  REQUIRE(::kill(promoted.pid(), SIGCONT) == 0);
  const HeldReads seen = ReadCutWriteUntil(http, old_primary.address(), "deposed-write", "d", [&] {
    Reply r = http.Get(old_primary.address(), "/kv/epoch-1?read=replica");
    return r.status == 200 && r.body == "one";
  });
  MESSAGE("reads held: " << seen.held << ", answered 404: " << seen.cut);
  CHECK(http.Get(old_primary.address(), "/kv/deposed-write?read=replica").status == 404);
  CHECK(LostText(data_dir).find("deposed-write") != std::string::npos);
}

}  // namespace distkv::clustertest
