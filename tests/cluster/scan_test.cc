// Cursor scans across a real 4-shard cluster: every key exactly once through
// one node in pages of 100; keys present throughout are all returned while
// writes, deletes and a compaction request run between pages; values with
// base64 for binary bytes; prefixes; a bad cursor.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "src/obs/json_bytes.h"
#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {
namespace {

ClusterSpec ScanSpec() {
  ClusterSpec spec = LocalCluster(4);
  spec.fsync = "never";
  // Small segments, so that the compactions asked for between pages have
  // sealed segments to merge.
  spec.Set("storage", "segment_bytes", 64 << 10);
  return spec;
}

void PutAll(SyncHttp& http, const TestCluster& cluster, const std::vector<std::string>& keys) {
  std::vector<Call> calls;
  for (size_t i = 0; i < keys.size(); ++i) {
    calls.push_back(MakeCall(cluster.address(i % cluster.size()), "PUT",
                             "/kv/" + PercentEncode(keys[i]), "v-" + keys[i]));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 64)) REQUIRE(Is2xx(r.status));
}

// A key of a page: a JSON string, or {"base64": ...} for non-UTF-8 bytes.
std::string KeyOf(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  const Json* b = JsonField(j, "base64");
  REQUIRE((b && b->is_string()));
  std::string out;
  REQUIRE(Base64Decode(b->get<std::string>(), &out));
  return out;
}

struct PageResult {
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::string cursor;
};

PageResult ScanPage(SyncHttp& http, const std::string& node, const std::string& query) {
  Json page = GetJson(http, node, "/kv?" + query);
  PageResult out;
  const Json* keys = JsonField(page, "keys");
  REQUIRE((keys && keys->is_array()));
  for (const Json& k : *keys) out.keys.push_back(KeyOf(k));
  if (const Json* values = JsonField(page, "values")) {
    for (const Json& v : *values) out.values.push_back(KeyOf(v));
  }
  out.cursor = JsonText(page, "cursor");
  return out;
}

// The whole scan through one node; between(page) runs after every page.
std::map<std::string, int> ScanAll(SyncHttp& http, const std::string& node, size_t limit,
                                   const std::function<void(int)>& between, int* pages) {
  std::map<std::string, int> seen;
  std::string cursor;
  for (*pages = 0;; ++*pages) {
    PageResult p =
        ScanPage(http, node, "limit=" + std::to_string(limit) + "&cursor=" + PercentEncode(cursor));
    CHECK(p.keys.size() <= limit);
    for (const std::string& k : p.keys) seen[k]++;
    if (p.cursor.empty()) break;
    REQUIRE(*pages < 100000);
    cursor = p.cursor;
    if (between) between(*pages);
  }
  return seen;
}

}  // namespace

TEST_CASE("scan: 20,000 keys over 4 shards, through one node in pages of 100, each exactly once") {
  TestCluster cluster(ScanSpec());
  cluster.Start();
  SyncHttp http;
  std::vector<std::string> keys;
  for (int i = 0; i < 20000; ++i) keys.push_back("key:" + std::to_string(i));
  PutAll(http, cluster, keys);

  int pages = 0;
  auto seen = ScanAll(http, cluster.address(2), 100, nullptr, &pages);
  CHECK(seen.size() == keys.size());
  size_t twice = 0;
  for (const auto& [k, n] : seen) twice += n != 1;
  CHECK(twice == 0);
  for (const std::string& k : keys) CHECK_MESSAGE(seen.count(k) == 1, k);
  // Full pages (a shard's end does not cut a page short): 200 pages, +1 at most.
  CHECK(pages <= 201);
}

TEST_CASE("scan: keys present throughout come back while writes, deletes and compaction run") {
  ClusterSpec spec = ScanSpec();
  // The compactions must run during the scan: at the default ("idle") the
  // merge waits for a free core, and the scan's load may leave none.
  spec.SetString("storage", "compact_priority", "normal");
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  std::vector<std::string> stable, churn;
  for (int i = 0; i < 8000; ++i) stable.push_back("stable:" + std::to_string(i));
  for (int i = 0; i < 4000; ++i) churn.push_back("churn:" + std::to_string(i));
  PutAll(http, cluster, stable);
  PutAll(http, cluster, churn);

  int next_new = 0;
  int pages = 0;
  auto seen = ScanAll(
      http, cluster.address(0), 100,
      [&](int page) {
        // Between pages: 60 new keys (the shards' indexes grow and rebuild),
        // overwrites of stable keys, deletes of churn keys, and a compaction
        // request to every shard now and then.
        std::vector<Call> calls;
        for (int j = 0; j < 60; ++j) {
          calls.push_back(MakeCall(cluster.address(j % 4), "PUT",
                                   "/kv/new:" + std::to_string(next_new++), "n"));
        }
        for (int j = 0; j < 20; ++j) {
          calls.push_back(MakeCall(cluster.address(j % 4), "PUT",
                                   "/kv/" + stable[(page * 20 + j) % stable.size()], "again"));
          const size_t c = static_cast<size_t>(page) * 20 + static_cast<size_t>(j);
          if (c < churn.size()) {
            calls.push_back(MakeCall(cluster.address(j % 4), "DELETE", "/kv/" + churn[c]));
          }
        }
        if (page % 40 == 0) {
          for (size_t s = 0; s < cluster.size(); ++s) {
            calls.push_back(MakeCall(cluster.address(s), "POST", "/admin/compact"));
          }
        }
        for (const Reply& r : http.SendAll(std::move(calls), 32)) CHECK(r.answered());
      },
      &pages);
  for (const std::string& k : stable) CHECK_MESSAGE(seen[k] == 1, k);
  for (const auto& [k, n] : seen) CHECK_MESSAGE(n == 1, k);  // no key twice either
  CHECK(next_new > 5000);                                    // the scan really ran under load
  int64_t compactions = 0;                                   // and compactions really ran during it
  for (size_t s = 0; s < cluster.size(); ++s) {
    const Json st = GetJson(http, cluster.address(s), "/stats");
    compactions += JsonInt(st.at("compaction"), "compactions");
  }
  CHECK(compactions > 0);
}

TEST_CASE("scan: prefix, values (base64 for binary), limits and a bad cursor") {
  TestCluster cluster(ScanSpec());
  cluster.Start();
  SyncHttp http;
  const std::string binary("\x00\xff\x01", 3);
  REQUIRE(Is2xx(http.Send(cluster.address(0), "PUT", "/kv/img:1", binary).status));
  REQUIRE(Is2xx(http.Send(cluster.address(1), "PUT", "/kv/img:2", "plain").status));
  REQUIRE(Is2xx(http.Send(cluster.address(2), "PUT", "/kv/other", "x").status));
  const std::string bin_key("img:\xc3\x28", 6);  // not UTF-8
  REQUIRE(Is2xx(http.Send(cluster.address(3), "PUT", "/kv/" + PercentEncode(bin_key), "k").status));

  std::map<std::string, std::string> got;
  std::string cursor;
  for (int i = 0; i < 100; ++i) {
    PageResult p = ScanPage(http, cluster.address(1),
                            "prefix=img%3A&values=true&limit=1&cursor=" + PercentEncode(cursor));
    REQUIRE(p.keys.size() == p.values.size());
    for (size_t k = 0; k < p.keys.size(); ++k) got[p.keys[k]] = p.values[k];
    cursor = p.cursor;
    if (cursor.empty()) break;
  }
  CHECK(cursor.empty());
  CHECK(got.size() == 3);
  CHECK(got["img:1"] == binary);
  CHECK(got["img:2"] == "plain");
  CHECK(got[bin_key] == "k");

  // A typo or a second value is refused, not ignored: ?limt=10 would
  // otherwise scan with the default limit.
  for (const char* bad : {"limit=0", "limit=10001", "limit=x", "cursor=zz", "cursor=9-00",
                          "limt=10", "limit=5&limit=6", "prefix=a&prefix=b", "read=replica"}) {
    Reply r = http.Get(cluster.address(0), std::string("/kv?") + bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(IsJsonError(r));
  }
  CHECK(http.Send(cluster.address(0), "DELETE", "/kv").status == 405);
}

}  // namespace distkv::clustertest

namespace distkv::clustertest {

// The slot's owner as one node's /cluster says.
std::string OwnerOfSlot(SyncHttp& http, const std::string& node, size_t slot, size_t* migrations) {
  const Json c = GetJson(http, node, "/cluster");
  *migrations = c.at("migrations").size();
  for (const Json& s : c.at("shards")) {
    for (const Json& r : s.at("slots")) {
      if (r[0].get<size_t>() <= slot && slot <= r[1].get<size_t>()) return JsonText(s, "name");
    }
  }
  return "";
}

TEST_CASE("scan: slots moving into a shard already scanned restart the scan; no key is missed") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back("mig:" + std::to_string(i));
  PutAll(http, cluster, keys);
  const std::string a = cluster.address(0), b = cluster.address(1);
  const std::string a_name = cluster.spec().shards[0].name;
  // Shard 0 (a) owns slots 0-8191 and is scanned first; 8192-12287 move
  // from b to a once the scan is inside b.
  std::map<std::string, int> seen;
  std::string cursor;
  int restarts = 0;
  bool moved = false;
  for (int pages = 0;; ++pages) {
    REQUIRE(pages < 1000);
    Reply r = http.Get(a, "/kv?limit=100&cursor=" + PercentEncode(cursor));
    REQUIRE_MESSAGE(r.status == 200, r);
    restarts += r.Header("X-Distkv-Scan-Restarted") == "1";
    const Json page = Json::parse(r.body);
    for (const Json& k : page.at("keys")) seen[KeyOf(k)]++;
    cursor = JsonText(page, "cursor");
    if (cursor.empty()) break;
    if (!moved && cursor.starts_with("1-")) {
      moved = true;
      Reply m = http.Send(a, "POST", "/admin/migrate?slots=8192-12287");
      REQUIRE_MESSAGE(m.status == 202, m);
      for (const std::string& node : {a, b}) {
        REQUIRE(WaitUntil(
            [&] {
              size_t migrations = 1;
              return OwnerOfSlot(http, node, 8192, &migrations) == a_name && migrations == 0;
            },
            60'000));
      }
    }
  }
  REQUIRE(moved);
  CHECK(restarts == 1);
  size_t twice = 0;
  for (const std::string& k : keys) {
    CHECK_MESSAGE(seen[k] >= 1, k);
    twice += seen[k] > 1;
  }
  CHECK(seen.size() == keys.size());
  // Only a scan that crossed the migration may return keys twice.
  CHECK(twice > 0);

  // _mput goes by the new map: the moved keys land on a, from either node.
  std::vector<std::string> moved_keys;
  for (const std::string& k : keys) {
    if (SlotOf(k) >= 8192 && SlotOf(k) <= 12287 && moved_keys.size() < 20) moved_keys.push_back(k);
  }
  Json body = Json::object();
  for (const std::string& k : moved_keys) body[k] = "after";
  Reply put = http.Send(b, "POST", "/kv/_mput", body.dump());
  REQUIRE_MESSAGE(put.status == 200, put);
  const Json results = Json::parse(put.body).at("results");  // outlives the loop
  for (const Json& st : results) CHECK(JsonInt(st, "status") == 200);
  for (const std::string& k : moved_keys) {
    Reply g = http.Send(a, "GET", "/kv/" + k, "", {{"X-Distkv-Hop", "test"}});
    CHECK(g.status == 200);
    CHECK(g.body == "after");
  }
}

}  // namespace distkv::clustertest
