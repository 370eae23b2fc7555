// Writes when the disk fails under them, in every shape the API has: an
// _mput's part on the node's own shard and a part it forwards, conditional
// writes and deletes refused while a batch is in flight, a DELETE and TTL
// writes, a batch that seals a segment, and everysec's timed sync failing
// after the writes it covers were answered. Replicas and a full disk:
// write_faults_replica_disk_test.cc; the helpers: write_faults.h.
//
// A failed fdatasync ("fsyncgate", README Durability) keeps what its batch
// wrote: those writers hear 500 "may or may not be stored", reads show their
// writes until a restart, and the restart finds them on disk (the test disk
// drops no pages). Every write that never reached a file (staged behind that
// batch, or in a segment it had not created yet) is undone: its writer hears
// the batch's error and no read ever shows it, not even after the restart.
// A write refused for what the store held while the batch was in flight (a
// condition, a delete of an absent key) answers the batch's error, as the
// state it read may be gone. Until the restart the store writes nothing
// (no tombstone of an expired key, no hint file) and logs no retry. A write
// that finds the disk full is 507, with the writes queued behind it, and
// leaves no trace.
//
// `distkv serve --fail-sync-after N --slow-disk 1000000` makes a node's
// disk write 1 MB/s and fail every fdatasync after the first N: a 2 MiB PUT
// keeps its batch in flight for seconds, the test stages more writes behind
// it (waiting on /stats last_lsn, never on a clock), and then the sync fails.
// Each test checks in /stats that the failure came exactly where intended
// (commit.failures, durable_lsn, last_lsn, reads_held), so none can pass
// without it. The full disk is a real tmpfs (tests/cluster/small_disk.h).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/write_faults.h"

namespace distkv::clustertest {
namespace {

TEST_CASE(
    "write faults: _mput parts in a batch whose sync fails and behind it, on the node's own shard "
    "and forwarded; what reads show then and after the restart") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "always";
  spec.Set("cluster", "forward_timeout_ms", 30'000);  // forwarded parts wait for the slow disk
  TestCluster cluster(spec);
  FailSyncsAfter(cluster.primary(1), kFreshOpenSyncs);  // its first batch fails
  cluster.Start();
  const std::string node0 = cluster.address(0), node1 = cluster.address(1);
  const std::vector<std::string> group = cluster.KeysOf(1, 2, "group-");
  const std::vector<std::string> undone = cluster.KeysOf(1, 2, "undone-");
  const std::vector<std::string> other = cluster.KeysOf(0, 3, "other-");
  SyncHttp http(Patient());

  // Through node 0, which forwards shard 1's part: that part is an atomic
  // group of LSNs 1-2 and the first batch of shard 1, the one that fails.
  const Items first = {{group[0], kBig}, {other[0], "o0"}, {group[1], "small"}};
  Background put_first({MakeCall(node0, "POST", "/kv/_mput", MputBody(first))});
  WaitStaged(http, node1, 2);
  // Through node 1, whose own part (LSNs 3-4) is staged behind that batch.
  const Items second = {{undone[0], "u0"}, {other[1], "o1"}, {undone[1], "u1"}};
  Background put_second({MakeCall(node1, "POST", "/kv/_mput", MputBody(second))});
  WaitStaged(http, node1, 4);
  REQUIRE(CommitStat(http, node1, "failures") == 0);  // still in flight

  const Json first_results = Results(put_first.Join()[0], first);
  const Json second_results = Results(put_second.Join()[0], second);
  CheckFailedOnce(http, node1, 0, 2);
  CHECK(StatOf(http, node1, "keys") == 2);
  // Every item of shard 1 failed, in the failed batch or behind it: 500,
  // no ETag. Shard 0's items were written.
  CheckItemRefused(first_results[0], 500, "storage_error");
  CheckItemRefused(first_results[2], 500, "storage_error");
  CheckItemRefused(second_results[0], 500, "storage_error");
  CheckItemRefused(second_results[2], 500, "storage_error");
  ItemWritten(first_results[1], 201);
  ItemWritten(second_results[1], 201);
  // Each item's message tells the two apart, as a single PUT's would.
  for (const Json* item : {&first_results[0], &first_results[2]}) {
    CHECK_MESSAGE(JsonText(*item, "message").find("may or may not be stored") != std::string::npos,
                  item->dump());
  }
  for (const Json* item : {&second_results[0], &second_results[2]}) {
    CHECK_MESSAGE(JsonText(*item, "message").find("the write was not stored") != std::string::npos,
                  item->dump());
  }

  // Until a restart, the store holds the failed batch's group, whole (as the
  // disk may), and never the group staged behind it. Through either node.
  for (const std::string& node : {node0, node1}) {
    CheckValue(http, node, group[0], kBig, 1);
    CheckValue(http, node, group[1], "small", 2);
    CheckAbsent(http, node, undone[0]);
    CheckAbsent(http, node, undone[1]);
    const Items keys = {{group[1], ""}, {undone[0], ""}, {other[1], ""}, {undone[1], ""}};
    std::string mget = "[";
    for (const auto& [key, _] : keys) mget += (mget.size() > 1 ? ",\"" : "\"") + key + "\"";
    const Json got = Results(http.Send(node, "POST", "/kv/_mget", mget + "]"), keys);
    CHECK(JsonInt(got[0], "status") == 200);
    CHECK(JsonText(got[0], "value") == "small");
    CHECK(JsonText(got[0], "etag") == Etag(2));
    CheckItemRefused(got[1], 404, "not_found");
    CHECK(JsonInt(got[2], "status") == 200);
    CHECK(JsonText(got[2], "value") == "o1");
    CheckItemRefused(got[3], 404, "not_found");
  }

  // Shard 1 takes no writes now; shard 0 does.
  const Items third = {{group[1], "again"}, {other[2], "o2"}};
  const Json third_results = Results(http.Send(node0, "POST", "/kv/_mput", MputBody(third)), third);
  CheckItemRefused(third_results[0], 503, "read_only");
  ItemWritten(third_results[1], 201);

  // The restart recovers the failed batch's group from the disk, whole and
  // with its ETags; the group behind it never reached a file. Its LSNs are
  // never handed out again.
  RestartHealed(cluster.primary(1));
  for (const std::string& node : {node0, node1}) {
    CheckValue(http, node, group[0], kBig, 1);
    CheckValue(http, node, group[1], "small", 2);
    CheckAbsent(http, node, undone[0]);
    CheckAbsent(http, node, undone[1]);
  }
  CHECK(StatOf(http, node1, "keys") == 2);
  const Items fourth = {{undone[0], "now"}, {group[1], "replaced"}};
  const Json fourth_results =
      Results(http.Send(node0, "POST", "/kv/_mput", MputBody(fourth)), fourth);
  CHECK(ItemWritten(fourth_results[0], 201) > 4);
  ItemWritten(fourth_results[1], 200);
}

TEST_CASE(
    "write faults: conditional writes and deletes refused while a batch is in flight answer its "
    "error when its sync fails; afterwards they are decided on what the store kept") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  FailSyncsAfter(cluster.primary(0), kFreshOpenSyncs);
  cluster.Start();
  const std::string node = cluster.address(0);
  SyncHttp http(Patient());

  // LSN 1, the batch whose sync fails; LSN 2 staged behind it.
  Background put_kept({MakeCall(node, "PUT", "/kv/kept", kBig)});
  WaitStaged(http, node, 1);
  Background put_undone({MakeCall(node, "PUT", "/kv/undone", "u")});
  WaitStaged(http, node, 2);
  const int64_t held_before = CommitStat(http, node, "reads_held");
  // Each would be refused for what the store holds now (404 or 412), which
  // rests on LSNs not yet durable: the refusal waits. A create whose
  // condition holds is staged (LSN 3).
  Background refused({
      MakeCall(node, "DELETE", "/kv/absent"),                               // 404
      MakeCall(node, "PUT", "/kv/kept", "x", {{"If-Match", "\"7\""}}),      // 412: ETag "1"
      MakeCall(node, "PUT", "/kv/undone", "x", {{"If-None-Match", "*"}}),   // 412: it exists
      MakeCall(node, "DELETE", "/kv/undone", "", {{"If-Match", "\"1\""}}),  // 412: ETag "2"
      MakeCall(node, "PUT", "/kv/created", "c", {{"If-None-Match", "*"}}),  // staged
  });
  REQUIRE(WaitUntil(
      [&] {
        return CommitStat(http, node, "reads_held") >= held_before + 4 &&
               StatOf(http, node, "last_lsn") >= 3;
      },
      30'000));
  REQUIRE(CommitStat(http, node, "failures") == 0);  // they came while the batch was in flight

  CheckMayOrMayNot(put_kept.Join()[0]);
  CheckBatchError(put_undone.Join()[0]);
  const std::vector<Reply>& replies = refused.Join();
  for (const Reply& r : replies) CheckBatchError(r);
  CheckFailedOnce(http, node, 0, 1);
  CHECK(CommitStat(http, node, "reads_held") == held_before + 4);

  // The same requests now: each condition is decided on what the store
  // kept (conditions come before the read-only refusal, as a read).
  CheckError(http.Send(node, "DELETE", "/kv/absent"), 404, "not_found");
  const Reply mismatch = http.Send(node, "PUT", "/kv/kept", "x", {{"If-Match", "\"7\""}});
  CheckError(mismatch, 412, "precondition_failed");
  CHECK_MESSAGE(mismatch.body.find("the current ETag is \\\"1\\\"") != std::string::npos, mismatch);
  CheckError(http.Send(node, "PUT", "/kv/undone", "x", {{"If-None-Match", "*"}}), 503, "read_only");
  const Reply gone = http.Send(node, "DELETE", "/kv/undone", "", {{"If-Match", "\"2\""}});
  CheckError(gone, 412, "precondition_failed");
  CHECK_MESSAGE(gone.body.find("does not exist") != std::string::npos, gone);
  CheckError(http.Send(node, "PUT", "/kv/created", "c", {{"If-None-Match", "*"}}), 503,
             "read_only");
  CheckError(http.Send(node, "PUT", "/kv/kept", "x", {{"If-Match", "\"1\""}}), 503, "read_only");
  CheckValue(http, node, "kept", kBig, 1);
  CheckAbsent(http, node, "undone");
  CheckAbsent(http, node, "created");

  RestartHealed(cluster.primary(0));
  CheckValue(http, node, "kept", kBig, 1);
  CheckAbsent(http, node, "undone");
  const Reply create = http.Send(node, "PUT", "/kv/undone", "x", {{"If-None-Match", "*"}});
  CHECK_MESSAGE(create.status == 201, create);
  uint64_t lsn = 0;
  CHECK(ParseEtag(create.Header("ETag"), &lsn));
  CHECK(lsn > 3);  // past every LSN handed out before, the undone ones too
  CHECK(http.Send(node, "PUT", "/kv/kept", "y", {{"If-Match", "\"1\""}}).status == 200);
  CheckError(http.Send(node, "DELETE", "/kv/absent"), 404, "not_found");
}

TEST_CASE(
    "write faults: a DELETE and TTL writes in a batch whose sync fails stay as the store kept "
    "them; behind it they are undone, values, ETags and expiry times restored; both across the "
    "restart") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  cluster.Start();
  const std::string node = cluster.address(0);
  SyncHttp http(Patient());

  // On a healthy disk: the keys the failing batches delete and overwrite.
  std::map<std::string, int64_t> etag;
  for (const auto& [target, value] :
       Items{{"del-kept", "dk"}, {"del-undone", "du"}, {"plain", "p"}, {"ttl-old?ttl=3600", "t"}}) {
    const Reply r = http.Send(node, "PUT", "/kv/" + target, value);
    REQUIRE_MESSAGE(r.status == 201, r);
    uint64_t lsn = 0;
    REQUIRE(ParseEtag(r.Header("ETag"), &lsn));
    etag[target.substr(0, target.find('?'))] = static_cast<int64_t>(lsn);
  }
  const std::string ttl_old_expires = http.Get(node, "/kv/ttl-old").Header("X-Distkv-Expires");
  REQUIRE(!ttl_old_expires.empty());
  // Reopened on a disk whose second batch's sync fails.
  CHECK(primary.Stop() == 0);
  FailSyncsAfter(primary, kReopenSyncs + 1);
  primary.Restart();
  const int64_t base = StatOf(http, node, "last_lsn");

  // Batch 1 (base+1): acknowledged. Batch 2 (base+2 to base+4), staged while
  // batch 1 is on the disk: its sync fails. Batch 3 (base+5 to base+7),
  // staged while batch 2 is on the disk: undone.
  Background batch1({MakeCall(node, "PUT", "/kv/big-1", kBig)});
  WaitStaged(http, node, base + 1);
  const uint64_t staged_from_ms = NowMs();
  Background batch2({MakeCall(node, "DELETE", "/kv/del-kept"),
                     MakeCall(node, "PUT", "/kv/ttl-new?ttl=3600", "tn"),
                     MakeCall(node, "PUT", "/kv/big-2", kBig)});
  WaitStaged(http, node, base + 4);
  const uint64_t staged_to_ms = NowMs();
  REQUIRE(StatOf(http, node, "durable_lsn") == base);  // batch 1 is still in flight
  // Batch 1 completes; the next may then wait up to 10 ms for more writers
  // (commit.lingered) before it starts. Batch 3 comes once batch 2 started.
  const int64_t lingered = CommitStat(http, node, "lingered");
  const int64_t linger_us = CommitStat(http, node, "linger_us");
  REQUIRE(WaitUntil([&] { return StatOf(http, node, "durable_lsn") >= base + 1; }, 30'000));
  REQUIRE(WaitUntil(
      [&] {
        return CommitStat(http, node, "lingered") == lingered ||
               CommitStat(http, node, "linger_us") > linger_us;
      },
      10'000));
  Background batch3({MakeCall(node, "DELETE", "/kv/del-undone"),
                     MakeCall(node, "PUT", "/kv/plain?ttl=3600", "p2"),
                     MakeCall(node, "PUT", "/kv/ttl-old", "t2")});
  WaitStaged(http, node, base + 7);
  REQUIRE(CommitStat(http, node, "failures") == 0);  // batch 2 is still in flight

  CHECK_MESSAGE(batch1.Join()[0].status == 201, batch1.Join()[0]);
  for (const Reply& r : batch2.Join()) CheckMayOrMayNot(r);
  for (const Reply& r : batch3.Join()) CheckBatchError(r);
  CheckFailedOnce(http, node, base + 1, base + 4);

  auto check_state = [&](const char* when) {
    INFO(when);
    // Batch 2 as the store kept it: the delete done, the new key with its TTL.
    CheckAbsent(http, node, "del-kept");
    const Reply ttl_new = http.Get(node, "/kv/ttl-new");
    CHECK_MESSAGE(ttl_new.status == 200, ttl_new);
    CHECK(ttl_new.body == "tn");
    uint64_t lsn = 0;
    CHECK(ParseEtag(ttl_new.Header("ETag"), &lsn));
    CHECK((lsn >= static_cast<uint64_t>(base + 2) && lsn <= static_cast<uint64_t>(base + 4)));
    const uint64_t expires = std::stoull("0" + ttl_new.Header("X-Distkv-Expires"));
    CHECK_MESSAGE((expires >= staged_from_ms + 3'600'000 && expires <= staged_to_ms + 3'600'000),
                  "X-Distkv-Expires " << expires << ", staged in [" << staged_from_ms << ", "
                                      << staged_to_ms << "]");
    CHECK(http.Get(node, "/kv/big-2").body == kBig);
    CheckValue(http, node, "big-1", kBig, base + 1);
    // Batch 3 undone: every key as before it, ETag and expiry included.
    CheckValue(http, node, "del-undone", "du", etag["del-undone"]);
    CheckValue(http, node, "plain", "p", etag["plain"]);
    CHECK_MESSAGE(!http.Get(node, "/kv/plain").HasHeader("X-Distkv-Expires"),
                  "the undone TTL stayed on plain");
    CheckValue(http, node, "ttl-old", "t", etag["ttl-old"]);
    CHECK(http.Get(node, "/kv/ttl-old").Header("X-Distkv-Expires") == ttl_old_expires);
    const Json stats = GetJson(http, node, "/stats");
    CHECK(JsonInt(stats, "keys") == 6);
    CHECK(JsonInt(stats, "keys_with_ttl") == 2);
  };
  check_state("read-only after the failed sync");
  RestartHealed(primary);
  check_state("after the restart");
  CHECK(http.Send(node, "DELETE", "/kv/del-undone").status == 204);
  CheckAbsent(http, node, "del-undone");
}

TEST_CASE(
    "write faults: a batch that seals a segment and starts the next fails its sync in either: what "
    "reached a file is kept, what did not is undone, and the read-only store writes no hint "
    "file") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 4 << 20);  // kBig and a small value fit, not two kBig
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  // Batch 1 creates segment 1: its sync and the MANIFEST's succeed. Batch 2
  // syncs the sealed segment 1, then creates, writes and syncs segment 2.
  bool sealed_fails = true;
  SUBCASE("the sealed segment's sync fails") { sealed_fails = true; }
  SUBCASE("the new segment's sync fails") { sealed_fails = false; }
  FailSyncsAfter(primary, kFreshOpenSyncs + (sealed_fails ? 2 : 3));
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  SyncHttp http(Patient());

  // Batch 1 (LSN 1): acknowledged. Staged while it is on the disk, batch 2:
  // LSN 2 in segment 1, LSN 3 too big for it, so segment 1 is sealed (and
  // synced first) and LSN 3 starts segment 2.
  Background first({MakeCall(node, "PUT", "/kv/first", kBig)});
  WaitStaged(http, node, 1);
  Background in_sealed({MakeCall(node, "PUT", "/kv/in-sealed", "s")});
  WaitStaged(http, node, 2);
  const std::string next(2 << 20, 'N');
  Background in_next({MakeCall(node, "PUT", "/kv/in-next", next)});
  WaitStaged(http, node, 3);
  const int64_t held_before = CommitStat(http, node, "reads_held");
  Background reads({MakeCall(node, "GET", "/kv/in-sealed"), MakeCall(node, "GET", "/kv/in-next")});
  REQUIRE(
      WaitUntil([&] { return CommitStat(http, node, "reads_held") >= held_before + 2; }, 30'000));
  REQUIRE(StatOf(http, node, "durable_lsn") == 0);  // batch 1 is still in flight

  CHECK_MESSAGE(first.Join()[0].status == 201, first.Join()[0]);
  CheckMayOrMayNot(in_sealed.Join()[0]);  // written, a sync of its batch failed
  const std::vector<Reply>& got = reads.Join();
  CHECK_MESSAGE(got[0].status == 200, got[0]);
  CHECK(got[0].body == "s");
  CHECK(got[0].Header("ETag") == Etag(2));
  CheckValue(http, node, "first", kBig, 1);
  size_t segment_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(data)) {
    segment_files += e.path().extension() == ".seg";
  }
  if (sealed_fails) {
    // Segment 2 was never created: LSN 3 is undone.
    CheckBatchError(in_next.Join()[0]);
    CheckFailedOnce(http, node, 1, 2);
    CHECK_MESSAGE(got[1].status == 404, got[1].status << " " << Short(got[1].body));
    CheckAbsent(http, node, "in-next");
    CHECK(StatOf(http, node, "segments") == 1);
    CHECK(segment_files == 1);
  } else {
    // Segment 1 is sealed and synced, segment 2 holds LSN 3.
    CheckMayOrMayNot(in_next.Join()[0]);
    CheckFailedOnce(http, node, 1, 3);
    CHECK_MESSAGE(got[1].status == 200, got[1].status << " " << Short(got[1].body));
    CHECK(got[1].body == next);
    CHECK(StatOf(http, node, "segments") == 2);
    CHECK(segment_files == 2);
  }
  // A sealed segment gets its hint file within a check (1 s) of the
  // compactor; a store whose sync failed writes none until its restart.
  std::this_thread::sleep_for(std::chrono::milliseconds(2'500));
  const std::string log = primary.LogTail(400);
  CHECK_MESSAGE(log.find("hint") == std::string::npos, log);
  CHECK(JsonInt(*JsonField(GetJson(http, node, "/stats"), "compaction"), "hint_files") == 0);

  RestartHealed(primary);
  CheckValue(http, node, "first", kBig, 1);
  CheckValue(http, node, "in-sealed", "s", 2);
  if (sealed_fails) {
    CheckAbsent(http, node, "in-next");
    const Reply again = http.Send(node, "PUT", "/kv/in-next", next);
    CHECK_MESSAGE(again.status == 201, again.status << " " << Short(again.body));
    uint64_t lsn = 0;
    CHECK(ParseEtag(again.Header("ETag"), &lsn));
    CHECK(lsn > 3);
    CHECK(http.Get(node, "/kv/in-next").body == next);
  } else {
    CheckValue(http, node, "in-next", next, 3);
    CHECK(WaitUntil(
        [&] {
          return JsonInt(*JsonField(GetJson(http, node, "/stats"), "compaction"), "hint_files") ==
                 1;
        },
        10'000));
  }
}

TEST_CASE(
    "write faults: a key whose TTL runs out while its shard is read-only reads as absent, without "
    "a warning at every expiry tick, and is deleted after the restart") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  FailSyncsAfter(primary, kFreshOpenSyncs, /*slow=*/false);
  cluster.Start();
  const std::string node = cluster.address(0);
  SyncHttp http(Patient());

  CheckMayOrMayNot(http.Send(node, "PUT", "/kv/brief?ttl=1", "b"));
  CheckFailedOnce(http, node, 0, 1);
  const Reply before = http.Get(node, "/kv/brief");
  CHECK_MESSAGE(before.status == 200, before);
  CHECK(before.Header("X-Distkv-TTL") == "1");
  CHECK(WaitUntil([&] { return http.Get(node, "/kv/brief").status == 404; }, 10'000));
  // The expirer looks every 100 ms; the read-only store takes no tombstone,
  // and that is no news worth a log line each time.
  std::this_thread::sleep_for(std::chrono::milliseconds(1'000));
  const std::string log = primary.LogTail(400);
  CHECK_MESSAGE(log.find("tombstone") == std::string::npos, log);
  CHECK(StatOf(http, node, "expired_keys") == 0);

  RestartHealed(primary);
  CheckAbsent(http, node, "brief");
  CHECK(WaitUntil([&] { return StatOf(http, node, "expired_keys") == 1; }, 10'000));
  CHECK(WaitUntil([&] { return StatOf(http, node, "keys") == 0; }, 10'000));
}

TEST_CASE(
    "write faults: under everysec a failed background sync keeps the writes it answered, turns "
    "the shard read-only, and a restart recovers them") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "everysec";
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  // The open's sync and the MANIFEST's in the first batch succeed; the first
  // timed sync of the segment fails.
  FailSyncsAfter(primary, kFreshOpenSyncs + 1, /*slow=*/false);
  cluster.Start();
  const std::string node = cluster.address(0);
  SyncHttp http(Patient());

  // Answered once written, as everysec promises; the sync comes within a second.
  const Reply first = http.Send(node, "PUT", "/kv/written", "w");
  CHECK_MESSAGE(first.status == 201, first);
  REQUIRE(WaitUntil([&] { return StatOf(http, node, "read_only") == 1; }, 10'000));
  CheckFailedOnce(http, node, /*durable_lsn=*/1, /*kept_lsn=*/1);
  // The write keeps its promise (written), reads go on, writes stop.
  CheckValue(http, node, "written", "w", 1);
  CheckError(http.Send(node, "PUT", "/kv/later", "l"), 503, "read_only");
  CheckError(http.Send(node, "DELETE", "/kv/written"), 503, "read_only");
  CHECK(http.Get(node, "/health").body.find("\"status\":\"read_only\"") != std::string::npos);

  RestartHealed(primary);
  CheckValue(http, node, "written", "w", 1);
  CHECK(StatOf(http, node, "read_only") == 0);
  const Reply later = http.Send(node, "PUT", "/kv/later", "l");
  CHECK_MESSAGE(later.status == 201, later);
  CHECK(later.Header("ETag") != Etag(1));
}

}  // namespace
}  // namespace distkv::clustertest
