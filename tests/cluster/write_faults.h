// Helpers of the write faults suites (write_faults_test.cc: failed syncs
// under every write shape; write_faults_replica_disk_test.cc: replicas and a
// full disk): a node given a failing or slow disk, its /stats, and checks of
// what single requests and batch items answered.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {

// 1 MB/s: a 2 MiB value and the 1 MiB pre-allocated after it keep their
// batch on the disk for about three seconds.
constexpr const char* kBytesPerSecond = "1000000";
const std::string kBig(2 << 20, 'B');
// Syncs a node's store makes as it opens: one for a fresh data directory,
// two (its segment, its MANIFEST) for one that holds a store already.
constexpr int kFreshOpenSyncs = 1;
constexpr int kReopenSyncs = 2;

inline net::ClientOptions Patient() {
  net::ClientOptions options = SyncHttp::DefaultOptions();
  options.request_timeout_ms = 60'000;  // a write waits seconds for the slow disk
  return options;
}

// Gives the node (before its next start) a disk that fails every fdatasync
// after the first good_syncs and, if slow, writes kBytesPerSecond.
inline void FailSyncsAfter(Node& node, int good_syncs, bool slow = true) {
  if (slow) {
    node.args().push_back("--slow-disk");
    node.args().push_back(kBytesPerSecond);
  }
  node.args().push_back("--fail-sync-after");
  node.args().push_back(std::to_string(good_syncs));
}

// Stops the node and starts it again on a healthy disk.
inline void RestartHealed(Node& node) {
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

inline int64_t StatOf(SyncHttp& http, const std::string& node, std::string_view field) {
  return JsonInt(GetJson(http, node, "/stats"), field);
}

inline int64_t CommitStat(SyncHttp& http, const std::string& node, std::string_view field) {
  const Json stats = GetJson(http, node, "/stats");
  const Json* commit = JsonField(stats, "commit");
  REQUIRE(commit != nullptr);
  return JsonInt(*commit, field);
}

// Until the node has staged every LSN up to lsn.
inline void WaitStaged(SyncHttp& http, const std::string& node, int64_t lsn) {
  REQUIRE_MESSAGE(WaitUntil([&] { return StatOf(http, node, "last_lsn") >= lsn; }, 30'000),
                  "last_lsn " << StatOf(http, node, "last_lsn") << ", waiting for " << lsn);
}

// The node's state after the failed sync of the batch that ended at
// kept_lsn, with the batches before it (up to durable_lsn) acknowledged.
inline void CheckFailedOnce(SyncHttp& http, const std::string& node, int64_t durable_lsn,
                            int64_t kept_lsn) {
  const Json stats = GetJson(http, node, "/stats");
  CHECK(JsonInt(stats, "read_only") == 1);
  CHECK_MESSAGE(JsonText(stats, "read_only_reason").find("fdatasync") != std::string::npos,
                stats.dump());
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == 1);
  CHECK(JsonInt(stats, "durable_lsn") == durable_lsn);
  CHECK(JsonInt(stats, "last_lsn") == kept_lsn);  // everything staged after it is undone
}

inline std::string Etag(int64_t lsn) { return "\"" + std::to_string(lsn) + "\""; }

inline std::string Short(const std::string& body) {
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

inline std::string ErrorCode(const Reply& r) {
  Json j;
  if (!ParseJson(r.body, &j)) return "";
  const Json* e = JsonField(j, "error");
  return e && e->is_string() ? e->get<std::string>() : "";
}

// The writer of a failed sync's own batch: it may or may not be stored.
inline void CheckMayOrMayNot(const Reply& r) {
  CHECK_MESSAGE(r.status == 500, r);
  CHECK_MESSAGE(ErrorCode(r) == "storage_error", r);
  CHECK_MESSAGE(r.body.find("may or may not") != std::string::npos, r);
}

// A write answered the error of the batch whose sync failed: not stored
// (undone, or refused for a state that batch may have taken back).
inline void CheckBatchError(const Reply& r) {
  CHECK_MESSAGE(r.status == 500, r);
  CHECK_MESSAGE(ErrorCode(r) == "storage_error", r);
  CHECK_MESSAGE(r.body.find("fdatasync") != std::string::npos, r);
  CHECK_MESSAGE(r.body.find("may or may not") == std::string::npos, r);
}

inline void CheckError(const Reply& r, int status, const std::string& code) {
  CHECK_MESSAGE(r.status == status, r);
  CHECK_MESSAGE(ErrorCode(r) == code, r);
}

// The key reads as value, with ETag lsn, through node.
inline void CheckValue(SyncHttp& http, const std::string& node, const std::string& key,
                       const std::string& value, int64_t lsn) {
  const Reply r = http.Get(node, "/kv/" + key);
  CHECK_MESSAGE(r.status == 200,
                key << " via " << node << ": HTTP " << r.status << " " << Short(r.body));
  CHECK_MESSAGE(r.body == value, key << " via " << node << ": " << Short(r.body));
  CHECK_MESSAGE(r.Header("ETag") == Etag(lsn), key << " via " << node << ": " << r.Header("ETag"));
}

inline void CheckAbsent(SyncHttp& http, const std::string& node, const std::string& key) {
  const Reply r = http.Get(node, "/kv/" + key);
  CHECK_MESSAGE(r.status == 404,
                key << " via " << node << ": HTTP " << r.status << " " << Short(r.body));
}

using Items = std::vector<std::pair<std::string, std::string>>;

// An _mput body that keeps the items' order.
inline std::string MputBody(const Items& items) {
  nlohmann::ordered_json body = nlohmann::ordered_json::object();
  for (const auto& [key, value] : items) body[key] = value;
  return body.dump();
}

// The results of a batch answer: 200, one per item, in request order.
inline Json Results(const Reply& r, const Items& items) {
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
inline void CheckItemRefused(const Json& item, int status, const std::string& error) {
  CHECK_MESSAGE(JsonInt(item, "status") == status, item.dump());
  const Json* code = JsonField(item, "error");
  CHECK_MESSAGE((code && code->is_string() && code->get<std::string>() == error), item.dump());
  CHECK_MESSAGE(!JsonField(item, "etag"), item.dump());
  CHECK_MESSAGE(!JsonField(item, "value"), item.dump());
}

// An item written with status (201 created, 200 replaced): its ETag's LSN.
inline int64_t ItemWritten(const Json& item, int status) {
  CHECK_MESSAGE(JsonInt(item, "status") == status, item.dump());
  CHECK_MESSAGE(!JsonField(item, "error"), item.dump());
  uint64_t lsn = 0;
  CHECK_MESSAGE(ParseEtag(JsonText(item, "etag"), &lsn), item.dump());
  return static_cast<int64_t>(lsn);
}

inline uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace distkv::clustertest
