// The cluster page and the endpoint behind it, against real processes.
//
// /cluster/status must list every node, with each live node's /stats, and
// answer within its timeout when a node is dead (connection refused) or hung
// (SIGSTOP: it accepts connections and never answers).
//
// /ui is loaded in a real headless Chromium (tests/cluster/headless_browser.h)
// against a 2-shard cluster with a replica per shard; the test reads the
// rendered DOM: both shards, each primary's key count as the node reports
// it, each replica's lag as the replica reports it; then kills a node and
// waits for the page to show it down; and no error may reach the console.
#include <signal.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/cluster/harness.h"
#include "tests/cluster/headless_browser.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

using nlohmann::json;

json GetJsonBody(SyncHttp& http, const std::string& address, const std::string& target) {
  Reply reply = http.Get(address, target);
  REQUIRE_MESSAGE(reply.status == 200, "GET " << target << " on " << address << ": " << reply);
  json j = json::parse(reply.body, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "GET " << target << " is not JSON: " << reply.body);
  return j;
}

// Writes `count` keys owned by each shard (counts[i] for shard i), through
// the shard's primary.
void WriteKeys(SyncHttp& http, TestCluster& cluster, const std::vector<size_t>& counts) {
  std::vector<size_t> written(cluster.size(), 0);
  std::vector<Call> calls;
  for (size_t i = 0; calls.size() < 100000; ++i) {
    const std::string key = "ui-" + std::to_string(i);
    const size_t owner = cluster.OwnerOf(key);
    if (written[owner] == counts[owner]) {
      bool all = true;
      for (size_t s = 0; s < counts.size(); ++s) all = all && written[s] == counts[s];
      if (all) break;
      continue;
    }
    written[owner]++;
    calls.push_back(MakeCall(cluster.address(owner), "PUT", "/kv/" + key, "value of " + key));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 16)) REQUIRE_MESSAGE(Is2xx(r.status), r);
}

// True when the /stats body lists an event of that kind whose message starts with prefix.
bool HasEvent(const json& stats, const std::string& kind, const std::string& prefix) {
  for (const json& e : stats.at("events")) {
    if (e.at("kind") == kind && e.at("message").get<std::string>().rfind(prefix, 0) == 0)
      return true;
  }
  return false;
}

// Every node of the status answer, by address.
std::map<std::string, json> NodesOf(const json& status) {
  std::map<std::string, json> nodes;
  for (const json& shard : status.at("shards")) {
    for (const json& node : shard.at("nodes")) nodes[node.at("address")] = node;
  }
  return nodes;
}

// Waits until each replica holds as many keys as its primary and reports no lag.
void WaitForReplicas(SyncHttp& http, TestCluster& cluster) {
  for (size_t s = 0; s < cluster.size(); ++s) {
    const int64_t keys = GetJsonBody(http, cluster.address(s), "/stats").at("keys");
    const std::string replica = cluster.spec().shards[s].replicas.at(0);
    REQUIRE_MESSAGE(WaitUntil(
                        [&] {
                          const json st = GetJsonBody(http, replica, "/stats");
                          return st.at("keys") == keys &&
                                 st.at("replication").at("lag_records") == 0;
                        },
                        10'000),
                    "replica " << replica << " did not catch up");
  }
}

}  // namespace

TEST_CASE(
    "cluster/status: every node's stats; a dead and a hung node are down within the timeout") {
  // Forwarding may wait far longer than the status page: the page's own
  // timeout, not the client's default, must be what bounds its answer.
  ClusterSpec spec = LocalCluster(2, 1);
  spec.Set("cluster", "forward_timeout_ms", 10'000);
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;
  WriteKeys(http, cluster, {12, 7});
  WaitForReplicas(http, cluster);

  // All up: every node is listed under its shard with its own /stats.
  json status = GetJsonBody(http, cluster.address(1), "/cluster/status");
  CHECK(status.at("slots") == 16384);
  CHECK(status.at("self") == cluster.address(1));
  const uint64_t timeout_ms = status.at("timeout_ms");
  REQUIRE(status.at("shards").size() == 2);
  for (size_t s = 0; s < 2; ++s) {
    const json& shard = status["shards"][s];
    CHECK(shard.at("name") == cluster.spec().shards[s].name);
    REQUIRE(shard.at("nodes").size() == 2);
    const json& primary = shard["nodes"][0];
    const json& replica = shard["nodes"][1];
    CHECK(primary.at("address") == cluster.address(s));
    CHECK(primary.at("configured_role") == "primary");
    CHECK(primary.at("up") == true);
    CHECK(primary.at("stats").at("role") == "primary");
    CHECK(primary.at("stats").at("shard") == cluster.spec().shards[s].name);
    CHECK(primary.at("stats").at("keys") == (s == 0 ? 12 : 7));
    CHECK(replica.at("up") == true);
    CHECK(replica.at("stats").at("role") == "replica");
    CHECK(replica.at("stats").at("replication").at("lag_records").is_number());
    // Every node's events are in its stats: at least its start; the
    // primary's also its replica connecting.
    CHECK(replica.at("stats").at("events").at(0).at("kind") == "start");
    CHECK_MESSAGE(HasEvent(primary.at("stats"), "replication",
                           "replica " + replica.at("address").get<std::string>() + " connected"),
                  primary.at("stats").at("events"));
  }

  // Shard 0's replica dies; shard 1's replica hangs (it keeps accepting
  // connections, in the kernel, and never answers).
  cluster.replica(0).Kill();
  REQUIRE(::kill(cluster.replica(1).pid(), SIGSTOP) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  Reply reply = http.Get(cluster.address(0), "/cluster/status");
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ::kill(cluster.replica(1).pid(), SIGCONT);
  REQUIRE_MESSAGE(reply.status == 200, reply);
  status = json::parse(reply.body);
  // The timeout bounds the answer: the hung node is waited for no longer
  // than it (plus generous slack for a loaded machine; without the timeout
  // the client would wait forward_timeout_ms, 10 s).
  CHECK_MESSAGE(took < static_cast<int64_t>(timeout_ms) + 4000,
                "/cluster/status took " << took << " ms with a hung node");
  std::map<std::string, json> nodes = NodesOf(status);
  const json& dead = nodes.at(cluster.spec().shards[0].replicas[0]);
  const json& hung = nodes.at(cluster.spec().shards[1].replicas[0]);
  CHECK(dead.at("up") == false);
  CHECK_FALSE(dead.contains("stats"));
  const std::string dead_error = dead.at("error");
  CHECK_MESSAGE(
      (dead_error.rfind("connect", 0) == 0 || dead_error.rfind("connection_lost", 0) == 0), dead);
  CHECK(hung.at("up") == false);
  CHECK_MESSAGE(hung.at("error").get<std::string>().find("timeout") != std::string::npos, hung);
  CHECK(hung.at("elapsed_ms") >= timeout_ms / 2);
  CHECK(nodes.at(cluster.address(0)).at("up") == true);
  CHECK(nodes.at(cluster.address(1)).at("up") == true);
  CHECK(nodes.at(cluster.address(1)).at("stats").at("keys") == 7);
  // The dead replica's primary has recorded it leaving (its stream ended).
  CHECK(WaitUntil(
      [&] {
        return HasEvent(GetJsonBody(http, cluster.address(0), "/stats"), "replication",
                        "replica " + cluster.spec().shards[0].replicas[0] + " disconnected");
      },
      5'000));

  // The page itself is served as one self-contained document.
  Reply page = http.Get(cluster.address(0), "/ui");
  CHECK(page.status == 200);
  CHECK(page.Header("Content-Type").rfind("text/html", 0) == 0);
  CHECK(page.Header("Content-Security-Policy").find("default-src 'none'") != std::string::npos);
  CHECK(page.body.find("/cluster/status") != std::string::npos);
  CHECK(page.body.find("<script src") == std::string::npos);
}

TEST_CASE("ui: headless Chromium shows both shards, key counts, replica lag, and a killed node") {
  TestCluster cluster(LocalCluster(2, 1));
  cluster.Start();
  SyncHttp http;
  WriteKeys(http, cluster, {37, 23});
  WaitForReplicas(http, cluster);

  HeadlessBrowser browser(cluster.dir().Sub("chromium-profile"), cluster.dir().Sub("chromium.log"));
  browser.Open("http://" + cluster.address(0) + "/ui");

  // What the page shows, read from the DOM: one entry per node row.
  const std::string kRows = R"JS(
    [...document.querySelectorAll('section.shard')].map(s => ({
      shard: s.dataset.shard,
      rows: [...s.querySelectorAll('tr.node')].map(r => ({
        address: r.dataset.address, up: r.dataset.up, role: r.querySelector('.role').textContent,
        state: r.querySelector('.state').textContent, keys: r.querySelector('.keys').textContent,
        lag: r.querySelector('.lag').textContent }))}))
  )JS";
  // Wait until the page has drawn the key counts written above.
  const bool drawn = browser.WaitFor(
      "(() => { const k = [...document.querySelectorAll('section.shard tr.node .keys')]"
      ".map(e => e.textContent); return k.length == 4 && k.filter(t => t == '37').length == 2 && "
      "k.filter(t => t == '23').length == 2 && [...document.querySelectorAll('tr.node .lag')]"
      ".filter(e => e.textContent.startsWith('0 records')).length == 2; })()",
      15'000);
  json shards = browser.Evaluate(kRows);
  REQUIRE_MESSAGE(drawn, "the page never showed the key counts: " << shards.dump());

  REQUIRE(shards.size() == 2);
  for (size_t s = 0; s < 2; ++s) {
    const json& shard = shards[s];
    CHECK(shard.at("shard") == cluster.spec().shards[s].name);
    REQUIRE(shard.at("rows").size() == 2);
    const json& primary = shard["rows"][0];
    const json& replica = shard["rows"][1];
    CHECK(primary.at("address") == cluster.address(s));
    CHECK(primary.at("role") == "primary");
    CHECK(primary.at("up") == "true");
    CHECK(primary.at("state") == "up");
    // The key count is the node's own figure.
    const int64_t keys = GetJsonBody(http, cluster.address(s), "/stats").at("keys");
    CHECK(primary.at("keys") == std::to_string(keys));
    CHECK(primary.at("keys") == (s == 0 ? "37" : "23"));
    // The replica's lag, as the replica reports it (idle: nothing missing).
    CHECK(replica.at("role") == "replica");
    CHECK(replica.at("up") == "true");
    const json repl =
        GetJsonBody(http, cluster.spec().shards[s].replicas[0], "/stats").at("replication");
    std::smatch m;
    const std::string lag = replica.at("lag");
    REQUIRE_MESSAGE(std::regex_match(lag, m, std::regex(R"(^(\d+) records · (\d+) ms$)")),
                    "replica lag shown as \"" << lag << "\"");
    CHECK(m[1].str() == std::to_string(repl.at("lag_records").get<uint64_t>()));
  }
  // The slot bar: one segment per shard's range, each named.
  json segments =
      browser.Evaluate("[...document.querySelectorAll('#slotbar .seg')].map(e => e.dataset.shard)");
  CHECK(segments == json::array({cluster.spec().shards[0].name, cluster.spec().shards[1].name}));
  // The events of every node: each one's start, each replica connecting.
  CHECK(browser.Evaluate("document.querySelectorAll('#event-list li[data-kind=start]').length") ==
        4);
  CHECK(browser.Evaluate(
            "document.querySelectorAll('#event-list li[data-kind=replication]').length") >= 2);
  // One chart per node.
  CHECK(browser.Evaluate("document.querySelectorAll('#charts .chart svg').length") == 8);

  // Kill shard 1's primary: the page must show it down (it polls every
  // second; a dead node is refused at once), while its replica stays up.
  cluster.primary(1).Kill();
  const std::string row =
      "document.querySelector('tr.node[data-address=\"" + cluster.address(1) + "\"]')";
  const bool down = browser.WaitFor(row + ".dataset.up == 'false'", 10'000);
  CHECK_MESSAGE(down, "the killed node is not shown down: " << browser.Evaluate(kRows).dump());
  CHECK(browser.Evaluate(row + ".querySelector('.state').textContent")
            .get<std::string>()
            .rfind("down", 0) == 0);
  CHECK(browser.Evaluate("document.querySelector('tr.node[data-address=\"" +
                         cluster.spec().shards[1].replicas[0] + "\"]').dataset.up") == "true");

  CHECK_MESSAGE(browser.errors().empty(), "console errors: " << json(browser.errors()).dump());
}

}  // namespace distkv::clustertest

namespace distkv::clustertest {

TEST_CASE("ui: with [auth] on, the page asks for a token, sends it, and the nodes vouch to peers") {
  const std::string read_token = "ui-read-token-0123456789abcdef";
  ClusterSpec spec = LocalCluster(2, 0);
  spec.SetString("auth", "cluster_secret", "ui-cluster-secret-0123456789abcdef");
  spec.settings["auth"]["tokens"] = "[ { token = \"" + read_token + "\", role = \"read\" } ]";
  TestCluster cluster(spec);
  cluster.Start();
  SyncHttp http;

  // /cluster/status needs a read token; with one, every peer answers (the
  // node presents the cluster secret to them).
  CHECK(http.Get(cluster.address(0), "/cluster/status").status == 401);
  Reply reply =
      http.Get(cluster.address(0), "/cluster/status", {{"Authorization", "Bearer " + read_token}});
  REQUIRE_MESSAGE(reply.status == 200, reply);
  std::map<std::string, json> nodes = NodesOf(json::parse(reply.body));
  CHECK(nodes.at(cluster.address(0)).at("up") == true);
  CHECK_MESSAGE(nodes.at(cluster.address(1)).at("up") == true, nodes.at(cluster.address(1)));
  // The page itself holds no data and is served without a token.
  CHECK(http.Get(cluster.address(0), "/ui").status == 200);

  HeadlessBrowser browser(cluster.dir().Sub("chromium-profile"), cluster.dir().Sub("chromium.log"));
  browser.Open("http://" + cluster.address(0) + "/ui");
  CHECK_MESSAGE(
      browser.WaitFor("document.getElementById('auth').classList.contains('shown')", 10'000),
      "the page did not ask for a token");
  CHECK(browser.Evaluate("document.querySelectorAll('section.shard').length") == 0);
  // Type the token and submit the form, as a person would.
  browser.Evaluate("document.getElementById('token').value = '" + read_token +
                   "'; document.getElementById('auth-form').requestSubmit(); true");
  CHECK_MESSAGE(
      browser.WaitFor("document.querySelectorAll('tr.node[data-up=true]').length == 2", 10'000),
      "the page did not show the cluster once given the token");
  CHECK(browser.Evaluate("localStorage.getItem('distkv-token')") == read_token);
  CHECK_FALSE(browser.Evaluate("document.getElementById('auth').classList.contains('shown')"));
  // The 401s were answers the page handled, not errors it let through; the
  // browser logs a refused fetch as a failed resource load, which is all
  // that may appear.
  for (const std::string& e : browser.errors()) {
    CHECK_MESSAGE(e.find("401") != std::string::npos, e);
  }
}

}  // namespace distkv::clustertest
