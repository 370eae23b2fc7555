// distkv-bench --verify against real clusters: the load generator, run as
// the user runs it (DISTKV_BENCH_BIN, its flags, its exit code and --json),
// checks that every read returns the value of the latest acknowledged write
// of its key — through forwarding, through the seed API, and across the
// SIGKILL and restart of a primary. The test then recounts what the cluster
// holds with its own ownership arithmetic.
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {
namespace {

// The bench's --json report.
Json BenchReport(const std::string& path) {
  Json json;
  std::string error;
  std::string text = ReadFile(path);
  REQUIRE_MESSAGE(ParseJson(text, &json, &error),
                  "bench --json " << path << ": " << error << ": " << text);
  return json;
}

int64_t Field(const Json& json, std::initializer_list<std::string_view> path) {
  const Json* at = &json;
  std::string where;
  for (std::string_view name : path) {
    where += "." + std::string(name);
    at = JsonField(*at, name);
    REQUIRE_MESSAGE(at != nullptr, "bench report has no " << where);
  }
  REQUIRE_MESSAGE(at->is_number(), "bench report " << where << " is not a number");
  return at->get<int64_t>();
}

// Reads key:0 .. key:(keys-1) through `via` and checks each present key is
// counted by its owner's /stats, and by no one else's.
void CheckOwnersHoldWhatIsThere(TestCluster& cluster, const std::string& via, size_t keys) {
  SyncHttp http;
  std::vector<Call> calls;
  for (size_t i = 0; i < keys; ++i)
    calls.push_back(MakeCall(via, "GET", "/kv/" + PercentEncode("key:" + std::to_string(i))));
  std::vector<Reply> replies = http.SendAll(std::move(calls), 16);
  std::vector<int64_t> present(cluster.size(), 0);
  size_t failed = 0;
  for (size_t i = 0; i < keys; ++i) {
    if (replies[i].status == 200)
      ++present[cluster.OwnerOf("key:" + std::to_string(i))];
    else if (replies[i].status != 404)
      ++failed;
  }
  CHECK_MESSAGE(failed == 0, failed << " reads neither 200 nor 404");
  for (size_t node = 0; node < cluster.size(); ++node) {
    CAPTURE(node);
    CHECK(present[node] > 0);
    CHECK(JsonInt(GetJson(http, cluster.address(node), "/stats"), "keys") == present[node]);
  }
}

ClusterSpec BenchSpec(const std::string& fsync) {
  ClusterSpec spec = LocalCluster(3);
  spec.fsync = fsync;
  return spec;
}

TEST_CASE(
    "bench: distkv-bench --verify over a 3-shard cluster finds no mismatch and every request "
    "succeeds") {
  TestCluster cluster(BenchSpec("never"));
  cluster.Start();
  const std::string report = cluster.dir().Sub("bench.json");
  Process bench("distkv-bench", BenchBinary(), {"--config",      cluster.dir().Sub("sharding.toml"),
                                                "--connections", "8",
                                                "--pipeline",    "4",
                                                "--requests",    "20000",
                                                "--ratio",       "50:50",
                                                "--keys",        "2000",
                                                "--value-bytes", "64",
                                                "--verify",      "--no-progress",
                                                "--seed",        "7",
                                                "--json",        report},
                cluster.dir().Sub("bench.log"));
  bench.Start();
  int code = bench.WaitForExit(60'000);
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << bench.LogTail());

  Json r = BenchReport(report);
  CHECK(Field(r, {"requests"}) == 20000);
  CHECK(Field(r, {"all", "status", "2xx"}) + Field(r, {"all", "status", "404"}) == 20000);
  CHECK(Field(r, {"all", "status", "5xx"}) == 0);
  CHECK(Field(r, {"all", "status", "errors"}) == 0);
  CHECK(Field(r, {"all", "status", "timeouts"}) == 0);
  CHECK(Field(r, {"verify", "reads_checked"}) > 1000);
  CHECK(Field(r, {"verify", "mismatches"}) == 0);
  CHECK(Field(r, {"verify", "uncertain_writes"}) == 0);

  CheckOwnersHoldWhatIsThere(cluster, cluster.address(1), 2000);
}

TEST_CASE(
    "bench: distkv-bench --verify through the seed API and one forwarding node finds no mismatch") {
  TestCluster cluster(BenchSpec("never"));
  cluster.Start();
  const std::string report = cluster.dir().Sub("bench.json");
  // One target: two thirds of the requests are forwarded.
  Process bench("distkv-bench", BenchBinary(), {"--targets",     cluster.address(0),
                                                "--api",         "seed",
                                                "--connections", "4",
                                                "--pipeline",    "2",
                                                "--requests",    "6000",
                                                "--ratio",       "50:50",
                                                "--keys",        "500",
                                                "--value-bytes", "40",
                                                "--verify",      "--no-progress",
                                                "--seed",        "11",
                                                "--json",        report},
                cluster.dir().Sub("bench.log"));
  bench.Start();
  int code = bench.WaitForExit(60'000);
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << bench.LogTail());

  Json r = BenchReport(report);
  CHECK(Field(r, {"all", "status", "2xx"}) + Field(r, {"all", "status", "404"}) == 6000);
  CHECK(Field(r, {"verify", "reads_checked"}) > 500);
  CHECK(Field(r, {"verify", "mismatches"}) == 0);

  CheckOwnersHoldWhatIsThere(cluster, cluster.address(2), 500);
}

TEST_CASE(
    "bench: distkv-bench --verify reports mismatches when values are changed behind its back") {
  TestCluster cluster(BenchSpec("never"));
  cluster.Start();
  const std::string report = cluster.dir().Sub("bench.json");
  const size_t kKeys = 20;
  Process bench("distkv-bench", BenchBinary(),
                {"--targets", cluster.address(0), "--connections", "2", "--duration", "3",
                 "--ratio", "80:20", "--keys", std::to_string(kKeys), "--value-bytes", "64",
                 "--verify", "--no-progress", "--seed", "5", "--json", report},
                cluster.dir().Sub("bench.log"));
  bench.Start();
  // While the bench runs, overwrite every key of its key space with a value
  // it never wrote. Its reads must notice.
  SyncHttp http;
  size_t tampered = 0;
  while (bench.running()) {
    std::vector<Call> calls;
    for (size_t i = 0; i < kKeys; ++i) {
      calls.push_back(MakeCall(cluster.address(0), "PUT",
                               "/kv/" + PercentEncode("key:" + std::to_string(i)),
                               "not a value the bench wrote"));
    }
    for (const Reply& r : http.SendAll(std::move(calls), 4)) tampered += r.status / 100 == 2;
  }
  CHECK(tampered > 0);
  const int code = bench.WaitForExit(10'000);
  CHECK_MESSAGE(code == 1, "distkv-bench must fail verification; exit code " << code << "\n"
                                                                             << bench.LogTail());
  Json r = BenchReport(report);
  CHECK(Field(r, {"verify", "mismatches"}) > 0);
}

TEST_CASE(
    "bench: distkv-bench --verify across a primary's SIGKILL and restart (fsync=always) finds no "
    "mismatch") {
  TestCluster cluster(BenchSpec("always"));
  cluster.Start();
  const std::string report = cluster.dir().Sub("bench.json");
  Process bench("distkv-bench", BenchBinary(), {"--config",      cluster.dir().Sub("sharding.toml"),
                                                "--connections", "6",
                                                "--pipeline",    "2",
                                                "--requests",    "8000",
                                                "--ratio",       "50:50",
                                                "--keys",        "1000",
                                                "--value-bytes", "64",
                                                "--verify",      "--no-progress",
                                                "--timeout-ms",  "2000",
                                                "--seed",        "3",
                                                "--json",        report},
                cluster.dir().Sub("bench.log"));
  bench.Start();

  // Kill shard 1's primary once it has taken a good share of the writes. The
  // bench runs for a number of requests, not seconds, so the kill lands mid-run
  // however slow the machine is.
  SyncHttp http;
  bool loaded = WaitUntil(
      [&] {
        Reply r = http.Get(cluster.address(1), "/stats");
        Json stats;
        return r.status == 200 && ParseJson(r.body, &stats) &&
               JsonField(stats, "last_lsn") != nullptr &&
               JsonField(stats, "last_lsn")->get<int64_t>() >= 500;
      },
      20'000, 20);
  REQUIRE_MESSAGE(loaded, "shard 1 never reached 500 writes under the bench\n" << bench.LogTail());
  cluster.primary(1).Kill();
  cluster.primary(1).Restart();

  int code = bench.WaitForExit(60'000);
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << bench.LogTail());
  Json r = BenchReport(report);
  // The premise: the kill cut some requests short.
  int64_t failed = Field(r, {"all", "status", "5xx"}) + Field(r, {"all", "status", "errors"}) +
                   Field(r, {"all", "status", "timeouts"});
  CHECK_MESSAGE(failed > 0, "no request failed: the kill did not happen under load");
  CHECK(Field(r, {"verify", "reads_checked"}) > 1000);
  CHECK_MESSAGE(Field(r, {"verify", "mismatches"}) == 0, ReadFile(report));

  CheckOwnersHoldWhatIsThere(cluster, cluster.address(0), 1000);
}

TEST_CASE("bench: distkv-bench --tls --ca --token loads a node with [tls] and [auth]") {
  TlsOn tls;  // [tls] in the config, and the harness speaks HTTPS
  const std::string token = "bench-write-token-0123456789";
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.SetString("auth", "cluster_secret", "bench-cluster-secret-0123456789");
  spec.settings["auth"]["tokens"] = "[ { token = \"" + token + "\", role = \"write\" } ]";
  TestCluster cluster(spec);
  cluster.Start();

  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    const std::string report = cluster.dir().Sub(name + ".json");
    std::vector<std::string> args = {"--targets",     cluster.address(0),
                                     "--connections", "4",
                                     "--requests",    "400",
                                     "--ratio",       "50:50",
                                     "--keys",        "100",
                                     "--tls",         "--ca",
                                     Certs().ca,      "--no-progress",
                                     "--json",        report};
    args.insert(args.end(), extra.begin(), extra.end());
    Process bench(name, BenchBinary(), args, cluster.dir().Sub(name + ".log"));
    bench.Start();
    const int code = bench.WaitForExit(60'000);
    return std::make_tuple(code, BenchReport(report), bench.LogTail(100));
  };
  // With the token every request is answered over HTTPS, and the token
  // itself is not in the report's command line.
  auto [code, r, log] = run("bench-token", {"--token", token});
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << log);
  CHECK(Field(r, {"put", "status", "2xx"}) > 0);
  CHECK(Field(r, {"all", "status", "2xx"}) + Field(r, {"all", "status", "404"}) == 400);
  // (The harness's own start banner above it shows the arguments as given.)
  const size_t command = log.find("\ncommand: ");
  REQUIRE(command != std::string::npos);
  const std::string command_line = log.substr(command, log.find('\n', command + 1) - command);
  CHECK(command_line.find("--token ...") != std::string::npos);
  CHECK(command_line.find(token) == std::string::npos);
  // Without it the node refuses every request (401), which the bench reports.
  auto [code2, r2, log2] = run("bench-no-token", {});
  CHECK_MESSAGE(code2 == 1, "distkv-bench exit code " << code2 << "\n" << log2);
  CHECK(Field(r2, {"all", "status", "4xx"}) == 400);
  CHECK(Field(r2, {"all", "status", "errors"}) == 0);
}

}  // namespace
}  // namespace distkv::clustertest
