// Writes when the disk fails under them, in every shape the API has: an
// _mput's part on the node's own shard and a part it forwards, conditional
// writes and deletes refused while a batch is in flight, a DELETE and TTL
// writes, a batch that seals a segment, a primary with a replica and a
// replica whose own disk fails, _mput and held reads on a full disk, and
// everysec's timed sync failing after the writes it covers were answered.
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
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/cluster/small_disk.h"

namespace distkv::clustertest {
namespace {

// 1 MB/s: a 2 MiB value and the 1 MiB pre-allocated after it keep their
// batch on the disk for about three seconds.
constexpr const char* kBytesPerSecond = "1000000";
const std::string kBig(2 << 20, 'B');
// Syncs a node's store makes as it opens: one for a fresh data directory,
// two (its segment, its MANIFEST) for one that holds a store already.
constexpr int kFreshOpenSyncs = 1;
constexpr int kReopenSyncs = 2;

net::ClientOptions Patient() {
  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 60'000;  // a write waits seconds for the slow disk
  return options;
}

// Gives the node (before its next start) a disk that fails every fdatasync
// after the first good_syncs and, if slow, writes kBytesPerSecond.
void FailSyncsAfter(Node& node, int good_syncs, bool slow = true) {
  if (slow) {
    node.args().push_back("--slow-disk");
    node.args().push_back(kBytesPerSecond);
  }
  node.args().push_back("--fail-sync-after");
  node.args().push_back(std::to_string(good_syncs));
}

// Stops the node and starts it again on a healthy disk.
void RestartHealed(Node& node) {
  CHECK(node.Stop() == 0);
  std::vector<std::string>& args = node.args();
  const auto at = std::find_if(args.begin(), args.end(), [](const std::string& a) {
    return a == "--slow-disk" || a == "--fail-sync-after";
  });
  REQUIRE(at != args.end());
  args.erase(at, args.end());  // FailSyncsAfter's arguments are the last ones
  node.Restart();
}

// Calls sent at once, each from a thread of its own, while the test goes on;
// Join() returns their replies in the order of the calls.
class Background {
 public:
  explicit Background(std::vector<Call> calls) : replies_(calls.size()) {
    for (size_t i = 0; i < calls.size(); ++i) {
      threads_.emplace_back([this, i, call = std::move(calls[i])]() mutable {
        SyncHttp http(Patient());
        std::vector<Call> one;
        one.push_back(std::move(call));
        replies_[i] = std::move(http.SendAll(std::move(one), 1)[0]);
      });
    }
  }
  ~Background() { Join(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  const std::vector<Reply>& Join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return replies_;
  }

 private:
  std::vector<Reply> replies_;
  std::vector<std::thread> threads_;
};

int64_t StatOf(SyncHttp& http, const std::string& node, std::string_view field) {
  return JsonInt(GetJson(http, node, "/stats"), field);
}

int64_t CommitStat(SyncHttp& http, const std::string& node, std::string_view field) {
  const Json stats = GetJson(http, node, "/stats");
  const Json* commit = JsonField(stats, "commit");
  REQUIRE(commit != nullptr);
  return JsonInt(*commit, field);
}

// Until the node has staged every LSN up to lsn.
void WaitStaged(SyncHttp& http, const std::string& node, int64_t lsn) {
  REQUIRE_MESSAGE(WaitUntil([&] { return StatOf(http, node, "last_lsn") >= lsn; }, 30'000),
                  "last_lsn " << StatOf(http, node, "last_lsn") << ", waiting for " << lsn);
}

// The node's state after the failed sync of the batch that ended at
// kept_lsn, with the batches before it (up to durable_lsn) acknowledged.
void CheckFailedOnce(SyncHttp& http, const std::string& node, int64_t durable_lsn,
                     int64_t kept_lsn) {
  const Json stats = GetJson(http, node, "/stats");
  CHECK(JsonInt(stats, "read_only") == 1);
  CHECK_MESSAGE(JsonText(stats, "read_only_reason").find("fdatasync") != std::string::npos,
                stats.dump());
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == 1);
  CHECK(JsonInt(stats, "durable_lsn") == durable_lsn);
  CHECK(JsonInt(stats, "last_lsn") == kept_lsn);  // everything staged after it is undone
}

std::string Etag(int64_t lsn) { return "\"" + std::to_string(lsn) + "\""; }

std::string Short(const std::string& body) {
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

std::string ErrorCode(const Reply& r) {
  Json j;
  if (!ParseJson(r.body, &j)) return "";
  const Json* e = JsonField(j, "error");
  return e && e->is_string() ? e->get<std::string>() : "";
}

// The writer of a failed sync's own batch: it may or may not be stored.
void CheckMayOrMayNot(const Reply& r) {
  CHECK_MESSAGE(r.status == 500, r);
  CHECK_MESSAGE(ErrorCode(r) == "storage_error", r);
  CHECK_MESSAGE(r.body.find("may or may not") != std::string::npos, r);
}

// A write answered the error of the batch whose sync failed: not stored
// (undone, or refused for a state that batch may have taken back).
void CheckBatchError(const Reply& r) {
  CHECK_MESSAGE(r.status == 500, r);
  CHECK_MESSAGE(ErrorCode(r) == "storage_error", r);
  CHECK_MESSAGE(r.body.find("fdatasync") != std::string::npos, r);
  CHECK_MESSAGE(r.body.find("may or may not") == std::string::npos, r);
}

void CheckError(const Reply& r, int status, const std::string& code) {
  CHECK_MESSAGE(r.status == status, r);
  CHECK_MESSAGE(ErrorCode(r) == code, r);
}

// The key reads as value, with ETag lsn, through node.
void CheckValue(SyncHttp& http, const std::string& node, const std::string& key,
                const std::string& value, int64_t lsn) {
  const Reply r = http.Get(node, "/kv/" + key);
  CHECK_MESSAGE(r.status == 200,
                key << " via " << node << ": HTTP " << r.status << " " << Short(r.body));
  CHECK_MESSAGE(r.body == value, key << " via " << node << ": " << Short(r.body));
  CHECK_MESSAGE(r.Header("ETag") == Etag(lsn), key << " via " << node << ": " << r.Header("ETag"));
}

void CheckAbsent(SyncHttp& http, const std::string& node, const std::string& key) {
  const Reply r = http.Get(node, "/kv/" + key);
  CHECK_MESSAGE(r.status == 404,
                key << " via " << node << ": HTTP " << r.status << " " << Short(r.body));
}

using Items = std::vector<std::pair<std::string, std::string>>;

// An _mput body that keeps the items' order.
std::string MputBody(const Items& items) {
  nlohmann::ordered_json body = nlohmann::ordered_json::object();
  for (const auto& [key, value] : items) body[key] = value;
  return body.dump();
}

// The results of a batch answer: 200, one per item, in request order.
Json Results(const Reply& r, const Items& items) {
  REQUIRE_MESSAGE(r.status == 200, r);
  Json doc;
  REQUIRE_MESSAGE(ParseJson(r.body, &doc), r);
  const Json* results = JsonField(doc, "results");
  REQUIRE((results && results->is_array() && results->size() == items.size()));
  for (size_t i = 0; i < items.size(); ++i) {
    REQUIRE(JsonText((*results)[i], "key") == items[i].first);
  }
  return *results;
}

// An item refused with status and error code: nothing about a value.
void CheckItemRefused(const Json& item, int status, const std::string& error) {
  CHECK_MESSAGE(JsonInt(item, "status") == status, item.dump());
  const Json* code = JsonField(item, "error");
  CHECK_MESSAGE((code && code->is_string() && code->get<std::string>() == error), item.dump());
  CHECK_MESSAGE(!JsonField(item, "etag"), item.dump());
  CHECK_MESSAGE(!JsonField(item, "value"), item.dump());
}

// An item written with status (201 created, 200 replaced): its ETag's LSN.
int64_t ItemWritten(const Json& item, int status) {
  CHECK_MESSAGE(JsonInt(item, "status") == status, item.dump());
  CHECK_MESSAGE(!JsonField(item, "error"), item.dump());
  uint64_t lsn = 0;
  CHECK_MESSAGE(ParseEtag(JsonText(item, "etag"), &lsn), item.dump());
  return static_cast<int64_t>(lsn);
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

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
    "write faults: a replica never receives the writes of its primary's failed sync; after the "
    "primary's restart both hold the same data") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http(Patient());

  std::map<std::string, int64_t> etag;
  for (int i = 0; i < 4; ++i) {
    const std::string key = "r-" + std::to_string(i);
    const Reply r = http.Send(node, "PUT", "/kv/" + key, "v" + std::to_string(i));
    REQUIRE_MESSAGE(r.status == 201, r);
    uint64_t lsn = 0;
    REQUIRE(ParseEtag(r.Header("ETag"), &lsn));
    etag[key] = static_cast<int64_t>(lsn);
  }
  REQUIRE(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  const std::string digest_before = DigestOf(http, node);

  CHECK(primary.Stop() == 0);
  FailSyncsAfter(primary, kReopenSyncs);  // the first batch after the restart fails
  primary.Restart();
  auto replication = [&] {
    const Json stats = GetJson(http, replica, "/stats");
    const Json* r = JsonField(stats, "replication");
    REQUIRE(r != nullptr);
    return *r;
  };
  REQUIRE(WaitUntil(
      [&] {
        const Json r = replication();
        const Json* connected = JsonField(r, "connected");
        return connected && connected->is_boolean() && connected->get<bool>();
      },
      30'000));
  const int64_t base = StatOf(http, node, "last_lsn");

  Background kept({MakeCall(node, "PUT", "/kv/big", kBig)});
  WaitStaged(http, node, base + 1);
  Background undone({MakeCall(node, "DELETE", "/kv/r-0"), MakeCall(node, "PUT", "/kv/r-1", "new"),
                     MakeCall(node, "PUT", "/kv/fresh", "f")});
  WaitStaged(http, node, base + 3);
  REQUIRE(CommitStat(http, node, "failures") == 0);
  CheckMayOrMayNot(kept.Join()[0]);
  for (const Reply& r : undone.Join()) CheckBatchError(r);
  CheckFailedOnce(http, node, base, base + 1);

  // The stream stays up (heartbeats come) and carries nothing: the kept
  // write was never durable on the primary.
  const int64_t heartbeats = JsonInt(replication(), "heartbeats_received");
  REQUIRE(WaitUntil([&] { return JsonInt(replication(), "heartbeats_received") >= heartbeats + 2; },
                    30'000));
  const Json r = replication();
  CHECK(JsonInt(r, "received_lsn") == base);
  CHECK(JsonInt(r, "applied_lsn") == base);
  CHECK(DigestOf(http, replica) == digest_before);
  CheckAbsent(http, replica, "big");
  CheckValue(http, node, "big", kBig, base + 1);
  for (const std::string& via : {node, replica}) {
    CheckValue(http, via, "r-0", "v0", etag["r-0"]);
    CheckValue(http, via, "r-1", "v1", etag["r-1"]);
    CheckAbsent(http, via, "fresh");
  }

  // The restarted primary recovers the kept write from its disk, and the
  // replica catches up to exactly its data.
  RestartHealed(primary);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  for (const std::string& via : {node, replica}) {
    CheckValue(http, via, "big", kBig, base + 1);
    CheckValue(http, via, "r-0", "v0", etag["r-0"]);
    CheckValue(http, via, "r-1", "v1", etag["r-1"]);
    CheckAbsent(http, via, "fresh");
  }
  REQUIRE(http.Send(node, "PUT", "/kv/after", "a").status == 201);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  CHECK(http.Get(replica, "/kv/after").body == "a");
}

TEST_CASE(
    "write faults: a replica whose own sync fails stops applying, says why, keeps serving what it "
    "holds; its primary goes on, and after its restart the replica catches up") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& replica_node = cluster.replica(0);
  FailSyncsAfter(replica_node, kFreshOpenSyncs, /*slow=*/false);  // its first batch fails
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = replica_node.address();
  SyncHttp http(Patient());
  auto replication = [&] {
    const Json stats = GetJson(http, replica, "/stats");
    const Json* r = JsonField(stats, "replication");
    REQUIRE(r != nullptr);
    return *r;
  };

  REQUIRE(http.Send(node, "PUT", "/kv/a", "1").status == 201);
  REQUIRE(WaitUntil([&] { return JsonInt(replication(), "commit_errors") >= 1; }, 30'000));
  const Json stats = GetJson(http, replica, "/stats");
  CHECK(JsonInt(stats, "read_only") == 1);
  CHECK_MESSAGE(JsonText(stats, "read_only_reason").find("fdatasync") != std::string::npos,
                stats.dump());
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == 1);
  const Json r = replication();
  CHECK_MESSAGE(JsonText(r, "last_error").find("fdatasync") != std::string::npos, r.dump());
  CHECK(JsonInt(r, "applied_lsn") == 0);
  const Reply health = http.Get(replica, "/health");
  CHECK(health.status == 200);
  CHECK_MESSAGE(health.body.find("\"status\":\"read_only\"") != std::string::npos, health);
  // It serves what its store kept (durable on the primary, so never taken
  // back), and the primary takes writes without it.
  CheckValue(http, replica, "a", "1", 1);
  REQUIRE(http.Send(node, "PUT", "/kv/b", "2").status == 201);
  CheckAbsent(http, replica, "b");
  CHECK(JsonInt(replication(), "commit_errors") == 1);
  // It says it waits for a restart, and does not pretend to reconnect (a
  // reconnect would wait forever for the failed batch).
  CHECK(WaitUntil(
      [&] { return replica_node.LogTail(400).find("not reconnecting") != std::string::npos; },
      10'000));
  const std::string log = replica_node.LogTail(400);
  CHECK_MESSAGE(log.find("reconnecting in") == std::string::npos, log);

  RestartHealed(replica_node);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  CheckValue(http, replica, "a", "1", 1);
  CheckValue(http, replica, "b", "2", 2);
  CHECK(JsonInt(GetJson(http, replica, "/stats"), "read_only") == 0);
}

// Whether any file of the directory holds needle.
bool AnyFileHolds(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE(
    "write faults: an _mput part that does not fit on a full disk is 507 for each of its keys, "
    "local or forwarded, and leaves no trace, not even after a crash") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);  // little pre-allocated space to give up
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  cluster.Start();
  const std::string node0 = cluster.address(0), node1 = cluster.address(1);
  const std::string data0 = cluster.dir().Sub("data-" + spec.shards[0].name);
  const std::vector<std::string> full = cluster.KeysOf(0, 16, "full-");
  const std::vector<std::string> ok1 = cluster.KeysOf(1, 4, "ok-");
  const std::vector<std::string> early = cluster.KeysOf(0, 4, "early-");
  SyncHttp http(Patient());

  Items before;
  for (const std::string& key : early) before.emplace_back(key, "e:" + key);
  for (const Json& item : Results(http.Send(node1, "POST", "/kv/_mput", MputBody(before)), before))
    ItemWritten(item, 201);

  disk.Fill(256 << 10);
  const int64_t failures = CommitStat(http, node0, "failures");
  // 8 values of 64 KiB each: 512 KiB, one atomic group on shard 0.
  auto refused_value = [](const std::string& key) {
    std::string v = "REFUSED:" + key + ":";
    v.resize(64 << 10, 'r');
    return v;
  };
  // Forwarded by node 1, then node 0's own part.
  for (size_t round = 0; round < 2; ++round) {
    const std::string via = round == 0 ? node1 : node0;
    Items items;
    for (size_t i = 0; i < 8; ++i) {
      const std::string& key = full[round * 8 + i];
      items.emplace_back(key, refused_value(key));
      if (i % 4 == 0) items.emplace_back(ok1[round * 2 + i / 4], "ok");
    }
    const Json results = Results(http.Send(via, "POST", "/kv/_mput", MputBody(items)), items);
    for (size_t i = 0; i < items.size(); ++i) {
      INFO("round " << round << ", " << items[i].first);
      if (cluster.OwnerOf(items[i].first) == 0) {
        CheckItemRefused(results[i], 507, "disk_full");
      } else {
        ItemWritten(results[i], 201);
      }
    }
  }
  // Two batches failed, and the shard stays writable (a full disk is not a
  // failed sync).
  const Json stats = GetJson(http, node0, "/stats");
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == failures + 2);
  CHECK(JsonInt(stats, "read_only") == 0);
  CHECK(JsonInt(stats, "keys") == 4);
  for (const std::string& key : full) {
    CheckAbsent(http, node0, key);
    CheckAbsent(http, node1, key);
  }
  for (const std::string& key : ok1) CHECK(http.Get(node0, "/kv/" + key).body == "ok");
  CHECK_MESSAGE(!AnyFileHolds(data0, "REFUSED:"), "a refused value is in a file of " << data0);

  // A part that fits goes in at once, no restart: a refused key is created
  // anew (201), as it never existed.
  const Items fits = {{full[0], "small"}, {early[0], "e2"}};
  const Json fits_results = Results(http.Send(node0, "POST", "/kv/_mput", MputBody(fits)), fits);
  ItemWritten(fits_results[0], 201);
  ItemWritten(fits_results[1], 200);

  // A crash, and a restart on the full disk: no refused write comes back.
  cluster.primary(0).Kill();
  cluster.primary(0).Restart();
  CHECK(StatOf(http, node0, "keys") == 5);
  CHECK(http.Get(node0, "/kv/" + full[0]).body == "small");
  CHECK(http.Get(node1, "/kv/" + early[0]).body == "e2");
  for (size_t i = 1; i < early.size(); ++i) {
    CHECK(http.Get(node1, "/kv/" + early[i]).body == "e:" + early[i]);
  }
  for (size_t i = 1; i < full.size(); ++i) CheckAbsent(http, node1, full[i]);
  CHECK_MESSAGE(!AnyFileHolds(data0, "REFUSED:"), "a refused value is in a file of " << data0);
}

TEST_CASE(
    "write faults: on a full disk a batch that does not fit is cut off with the writes staged "
    "behind it; reads and refusals held for it answer from the store as it was") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  Node& primary = cluster.primary(0);
  // 100 KB/s: the 256 KiB that fit of the big write below keep its batch in
  // flight for seconds before the disk refuses the rest.
  primary.args().push_back("--slow-disk");
  primary.args().push_back("100000");
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  SyncHttp http(Patient());

  std::map<std::string, int64_t> etag;
  for (const std::string key : {"k", "gone"}) {
    const Reply r = http.Send(node, "PUT", "/kv/" + key, "old:" + key);
    REQUIRE_MESSAGE(r.status == 201, r);
    uint64_t lsn = 0;
    REQUIRE(ParseEtag(r.Header("ETag"), &lsn));
    etag[key] = static_cast<int64_t>(lsn);
  }
  disk.Fill(256 << 10);
  const int64_t failures = CommitStat(http, node, "failures");
  const int64_t base = StatOf(http, node, "last_lsn");

  std::string big = "NEW:";
  big.resize(512 << 10, 'n');
  Background put_big({MakeCall(node, "PUT", "/kv/k", big)});
  WaitStaged(http, node, base + 1);
  // Behind it: a PUT that alone would fit, and a DELETE.
  Background behind(
      {MakeCall(node, "PUT", "/kv/small", "s"), MakeCall(node, "DELETE", "/kv/gone")});
  WaitStaged(http, node, base + 3);
  const int64_t held_before = CommitStat(http, node, "reads_held");
  // Each rests on a write not yet durable: the big one (k), or every staged
  // one (an absence: small, gone, a page).
  Background reads({MakeCall(node, "GET", "/kv/k"), MakeCall(node, "GET", "/kv/gone"),
                    MakeCall(node, "POST", "/kv/_mget", "[\"k\",\"small\",\"gone\"]"),
                    MakeCall(node, "GET", "/kv?values=true"),
                    MakeCall(node, "DELETE", "/kv/none")});
  REQUIRE(
      WaitUntil([&] { return CommitStat(http, node, "reads_held") >= held_before + 5; }, 30'000));
  REQUIRE(CommitStat(http, node, "failures") == failures);  // still in flight

  CheckError(put_big.Join()[0], 507, "disk_full");
  for (const Reply& r : behind.Join()) CheckError(r, 507, "disk_full");
  const std::vector<Reply>& got = reads.Join();
  const Json stats = GetJson(http, node, "/stats");
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == failures + 1);
  CHECK(JsonInt(*JsonField(stats, "commit"), "reads_held") == held_before + 5);
  CHECK(JsonInt(stats, "read_only") == 0);
  CHECK(JsonInt(stats, "last_lsn") == base);  // all three undone
  CHECK(JsonInt(stats, "durable_lsn") == base);

  // Read again after the failure: the store as before the big write.
  CHECK_MESSAGE(got[0].status == 200, got[0]);
  CHECK(got[0].body == "old:k");
  CHECK(got[0].Header("ETag") == Etag(etag["k"]));
  CHECK_MESSAGE(got[1].status == 200, got[1]);
  CHECK(got[1].body == "old:gone");
  const Items mget = {{"k", ""}, {"small", ""}, {"gone", ""}};
  const Json results = Results(got[2], mget);
  CHECK(JsonInt(results[0], "status") == 200);
  CHECK(JsonText(results[0], "value") == "old:k");
  CHECK(JsonText(results[0], "etag") == Etag(etag["k"]));
  CheckItemRefused(results[1], 404, "not_found");
  CHECK(JsonInt(results[2], "status") == 200);
  CHECK(JsonText(results[2], "value") == "old:gone");
  CHECK_MESSAGE(got[3].status == 200, got[3]);
  Json page;
  REQUIRE(ParseJson(got[3].body, &page));
  std::map<std::string, std::string> listed;
  const Json* keys = JsonField(page, "keys");
  const Json* values = JsonField(page, "values");
  REQUIRE((keys && values && keys->size() == values->size()));
  for (size_t i = 0; i < keys->size(); ++i) {
    listed[(*keys)[i].get<std::string>()] = (*values)[i].get<std::string>();
  }
  CHECK(listed == std::map<std::string, std::string>{{"gone", "old:gone"}, {"k", "old:k"}});
  // A refusal held for the batch answers its error (the state it read may
  // have been taken back).
  CheckError(got[4], 507, "disk_full");
  CHECK_MESSAGE(!AnyFileHolds(data, "NEW:"), "the refused value is in a file of " << data);

  // The write that fits goes in when sent again, without a restart; the
  // others stay as they were, also after a crash.
  const Reply again = http.Send(node, "PUT", "/kv/small", "s");
  CHECK_MESSAGE(again.status == 201, again);
  uint64_t lsn = 0;
  CHECK(ParseEtag(again.Header("ETag"), &lsn));
  CHECK(lsn > static_cast<uint64_t>(base + 3));  // the undone LSNs are never handed out again
  primary.Kill();
  primary.Restart();
  CheckValue(http, node, "k", "old:k", etag["k"]);
  CheckValue(http, node, "gone", "old:gone", etag["gone"]);
  CheckValue(http, node, "small", "s", static_cast<int64_t>(lsn));
  CHECK(StatOf(http, node, "keys") == 3);
  CHECK_MESSAGE(!AnyFileHolds(data, "NEW:"), "the refused value is in a file of " << data);
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
