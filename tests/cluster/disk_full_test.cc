// A full disk for real: a node's data directory on a small tmpfs that the
// test fills with a ballast file, then frees.
//
// A primary whose disk is full must refuse writes with 507 and the JSON
// error "disk_full", keep every write it acknowledged (also across a
// restart), never show a refused one, keep serving reads, and take writes
// again once space is freed — without a restart. A replica whose disk is
// full stops applying the stream, says why in /stats, keeps serving what it
// holds, and catches up by itself once space is freed; its primary keeps
// taking writes meanwhile.
//
// Keys that expire while the disk is full read as absent at once; their
// tombstones cannot be written, and the expirer retries with a back-off
// (not every 100 ms, each failure an ERROR line) until space is freed.
//
// The small disk is tests/cluster/small_disk.h: mounting it needs root,
// and where the mount is refused the tests fail and say so.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/small_disk.h"

namespace distkv::clustertest {
namespace {

std::string Key(const char* prefix, size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%05zu", prefix, i);
  return buf;
}

std::string ValueFor(const std::string& key, size_t bytes) {
  std::string v = key + "/";
  v.resize(bytes, static_cast<char>('a' + key.back() % 26));
  return v;
}

struct Writes {
  std::vector<std::string> acked;
  std::vector<std::string> refused;  // 507
  std::vector<Reply> refusals;       // the first few 507 replies
};

// PUTs new keys of value_bytes, a few at a time, until `enough_refused` of
// them were refused with 507 (or `max` were sent). Any other answer fails.
Writes WriteUntilFull(SyncHttp& http, const std::string& address, const char* prefix,
                      size_t value_bytes, size_t enough_refused, size_t max) {
  Writes w;
  for (size_t sent = 0; sent < max && w.refused.size() < enough_refused;) {
    std::vector<Call> calls;
    std::vector<std::string> keys;
    for (int i = 0; i < 8; ++i, ++sent) {
      keys.push_back(Key(prefix, sent));
      calls.push_back(
          MakeCall(address, "PUT", "/kv/" + keys.back(), ValueFor(keys.back(), value_bytes)));
    }
    std::vector<Reply> replies = http.SendAll(std::move(calls), 8);
    for (size_t i = 0; i < replies.size(); ++i) {
      if (Is2xx(replies[i].status)) {
        w.acked.push_back(keys[i]);
      } else if (replies[i].status == 507) {
        w.refused.push_back(keys[i]);
        if (w.refusals.size() < 3) w.refusals.push_back(replies[i]);
      } else {
        FAIL_CHECK("PUT " << keys[i] << ": " << replies[i]);
        return w;
      }
    }
  }
  return w;
}

// Every acknowledged key reads back with its value; no refused key exists.
void CheckReads(SyncHttp& http, const std::string& address, const Writes& w, size_t value_bytes) {
  size_t bad = 0;
  for (const std::string& key : w.acked) {
    Reply r = http.Get(address, "/kv/" + key);
    if (r.status != 200 || r.body != ValueFor(key, value_bytes)) {
      if (bad++ < 3) FAIL_CHECK("acknowledged " << key << ": " << r);
    }
  }
  for (const std::string& key : w.refused) {
    Reply r = http.Get(address, "/kv/" + key);
    if (r.status != 404) {
      if (bad++ < 3) FAIL_CHECK("refused " << key << " must not exist: " << r);
    }
  }
  CHECK(bad == 0);
}

// How many lines of the node's log contain text.
size_t CountLogLines(const Node& node, std::string_view text) {
  const std::string log = node.LogTail(1'000'000);
  size_t n = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) n++;
  return n;
}

struct Digest {
  int64_t keys = -1;
  std::string digest;
  bool operator==(const Digest&) const = default;
};

Digest FullDigestOf(SyncHttp& http, const std::string& address) {
  Json j = GetJson(http, address, "/internal/digest");
  return Digest{JsonInt(j, "keys"), JsonText(j, "digest")};
}

TEST_CASE(
    "disk full: a primary answers 507, keeps every acknowledged write and serves reads; writes "
    "resume once space is freed") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);  // seals (and MANIFEST updates) while full
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  cluster.Start();
  const std::string addr = cluster.address(0);
  SyncHttp http;
  constexpr size_t kValue = 3000;

  // Some writes with room to spare, then the disk fills under more.
  Writes w = WriteUntilFull(http, addr, "before", kValue, 1, 40);
  REQUIRE(w.refused.empty());
  disk.Fill(256 << 10);
  Writes full = WriteUntilFull(http, addr, "full", kValue, 24, 2000);
  MESSAGE(full.acked.size() << " writes acknowledged, " << full.refused.size()
                            << " refused while the disk filled");
  REQUIRE(full.refused.size() >= 24);
  w.acked.insert(w.acked.end(), full.acked.begin(), full.acked.end());
  w.refused = full.refused;

  // The refusal: 507 with the project's JSON error, naming the cause.
  for (const Reply& r : full.refusals) {
    CHECK(IsJsonError(r));
    CHECK_MESSAGE(r.body.find("\"disk_full\"") != std::string::npos, r);
    CHECK(r.Header("X-Distkv-Shard") == spec.shards[0].name);
  }
  // Full to the last page now (tmpfs allocates whole pages, so a record
  // may still fit in the slack of the segment's last page, but no more than
  // a page): an overwrite of a value larger than a page is refused and
  // changes nothing.
  disk.Fill(0);
  const std::string old_key = w.acked.front();
  Reply put = http.Send(addr, "PUT", "/kv/" + old_key, std::string(3 * 4096, 'X'));
  CHECK_MESSAGE(put.status == 507, put);
  CheckReads(http, addr, w, kValue);
  CHECK(http.Get(addr, "/health").status == 200);
  const Json stats = GetJson(http, addr, "/stats");
  CHECK(JsonInt(stats, "read_only") == 0);  // a full disk is not a failed sync
  const Json* commit = JsonField(stats, "commit");
  REQUIRE(commit != nullptr);
  CHECK(JsonInt(*commit, "failures") > 0);

  // A crash while full. Opening a store rewrites its MANIFEST, so on a disk
  // without a free page the node refuses to start and says why; with room
  // again it recovers every acknowledged write and none of the refused ones
  // (the failed batches were cut off the log, not left behind it).
  Node& node = cluster.primary(0);
  node.Kill();
  node.Start();
  CHECK(node.WaitForExit(30000) > 0);
  CHECK_MESSAGE(node.LogTail(5).find("No space left on device") != std::string::npos,
                node.LogTail(5));
  disk.Free();
  node.Restart();
  CheckReads(http, addr, w, kValue);

  // Full again, then space comes back: writes succeed again without a
  // restart.
  disk.Fill(0);
  Writes again = WriteUntilFull(http, addr, "again", kValue, 8, 200);
  CHECK(again.refused.size() >= 8);
  w.acked.insert(w.acked.end(), again.acked.begin(), again.acked.end());
  w.refused.insert(w.refused.end(), again.refused.begin(), again.refused.end());
  disk.Free();
  Writes after = WriteUntilFull(http, addr, "after", kValue, 1, 64);
  CHECK(after.refused.empty());
  CHECK(after.acked.size() == 64);
  w.acked.insert(w.acked.end(), after.acked.begin(), after.acked.end());
  CheckReads(http, addr, w, kValue);

  node.Kill();
  node.Restart();
  CheckReads(http, addr, w, kValue);
  CHECK(Is2xx(http.Send(addr, "PUT", "/kv/" + old_key, "new").status));
}

TEST_CASE(
    "disk full: a replica stops applying and says why, its primary keeps taking writes, and it "
    "catches up once space is freed") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name + "-replica-0", disk);
  cluster.Start();
  const std::string primary = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http;
  constexpr size_t kValue = 2000;

  Writes w = WriteUntilFull(http, primary, "early", kValue, 1, 40);
  REQUIRE(w.refused.empty());
  REQUIRE(
      WaitUntil([&] { return FullDigestOf(http, replica) == FullDigestOf(http, primary); }, 30000));

  disk.Fill(128 << 10);
  // 1 MB more than the replica has room for; the primary's disk is not full.
  Writes more = WriteUntilFull(http, primary, "late", kValue, 1, 640);
  CHECK(more.refused.empty());
  CHECK(more.acked.size() == 640);

  // The replica fails to commit, says so, and keeps serving what it holds.
  auto replication = [&] {
    Json stats = GetJson(http, replica, "/stats");
    const Json* r = JsonField(stats, "replication");
    REQUIRE(r != nullptr);
    return *r;
  };
  CHECK(WaitUntil([&] { return JsonInt(replication(), "commit_errors") > 0; }, 30000, 100));
  const Json r = replication();
  const std::string error = JsonText(r, "last_error");
  CHECK_MESSAGE(
      (error.find("No space") != std::string::npos || error.find("NoSpace") != std::string::npos),
      "last_error: " << error);
  CHECK(FullDigestOf(http, replica).keys < FullDigestOf(http, primary).keys);
  Reply early = http.Get(replica, "/kv/" + w.acked.front());
  CHECK(early.status == 200);
  CHECK(early.body == ValueFor(w.acked.front(), kValue));
  CHECK(http.Get(replica, "/health").status == 200);

  // Space comes back: the replica resumes by itself and converges.
  disk.Free();
  CHECK(WaitUntil([&] { return FullDigestOf(http, replica) == FullDigestOf(http, primary); }, 60000,
                  100));
  CHECK(JsonInt(replication(), "applied_lsn") > 0);
  // What it holds survives its restart.
  cluster.replica(0).Kill();
  cluster.replica(0).Restart();
  CHECK(WaitUntil([&] { return FullDigestOf(http, replica) == FullDigestOf(http, primary); }, 30000,
                  100));
}

TEST_CASE(
    "disk full: expired keys whose tombstones find no room are retried with a back-off, not every "
    "100 ms, and deleted once space is freed") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  cluster.Start();
  const std::string addr = cluster.address(0);
  Node& node = cluster.primary(0);
  SyncHttp http;

  // Their tombstones (over 100 KB) outgrow the active segment's room.
  constexpr size_t kKeys = 3000;
  std::vector<Call> calls;
  for (size_t i = 0; i < kKeys; ++i) {
    calls.push_back(MakeCall(addr, "PUT", "/kv/" + Key("ttl", i) + "?ttl=2", "x"));
  }
  std::vector<Reply> replies = http.SendAll(std::move(calls), 16);
  for (const Reply& r : replies) REQUIRE_MESSAGE(r.status == 201, r);
  disk.Fill(0);

  // The keys expire; their tombstones fail for want of space.
  REQUIRE_MESSAGE(WaitUntil([&] { return CountLogLines(node, "commit failed") > 0; }, 30000, 50),
                  node.LogTail());
  const size_t before = CountLogLines(node, "commit failed");
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const size_t during = CountLogLines(node, "commit failed") - before;
  MESSAGE(during << " failed commits logged in 4 s with expired keys waiting on a full disk");
  // Every 100 ms would be about 40; a back-off from 100 ms doubling is a few.
  CHECK(during <= 8);
  CHECK(http.Get(addr, "/kv/" + Key("ttl", 0)).status == 404);  // expired reads as absent
  const Json stats = GetJson(http, addr, "/stats");
  CHECK(JsonInt(stats, "keys_with_ttl") > 0);  // not yet tombstoned
  CHECK(JsonInt(stats, "expired_keys") < static_cast<int64_t>(kKeys));

  // Space comes back: every expired key gets its tombstone, counted once.
  disk.Free();
  CHECK(WaitUntil(
      [&] {
        const Json st = GetJson(http, addr, "/stats");
        return JsonInt(st, "keys_with_ttl") == 0 && JsonInt(st, "keys") == 0;
      },
      30000, 100));
  CHECK(JsonInt(GetJson(http, addr, "/stats"), "expired_keys") == static_cast<int64_t>(kKeys));
}

}  // namespace
}  // namespace distkv::clustertest
