// The client library (src/client) and the `distkv` client commands against a
// real cluster: slot-aware routing straight to the owner, conditions, scans,
// reads that fall back to a replica when the primary is dead, writes that
// report the dead primary, and the command line's output and exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "src/client/sync_client.h"
#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

ClusterSpec ClientSpec() {
  ClusterSpec spec = LocalCluster(2, 1);
  spec.fsync = "never";
  return spec;
}

client::Options ClientOptions(const TestCluster& cluster, size_t seed) {
  client::Options o;
  o.seeds = {cluster.address(seed)};
  o.connect_timeout_ms = 500;
  o.request_timeout_ms = 3000;
  return o;
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command line; its standard output and exit code.
CommandResult RunShell(const std::string& line) {
  CommandResult r;
  const std::string cmd = line + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CommandResult RunCli(const std::string& args) { return RunShell(DistkvBinary() + " " + args); }

}  // namespace

TEST_CASE("client library: routes keys to their owners, conditions, scans, replica fallback") {
  TestCluster cluster(ClientSpec());
  cluster.Start();
  client::SyncClient db(ClientOptions(cluster, 1));

  // Every write goes straight to the owner's primary: no forwarding hop.
  for (int i = 0; i < 40; ++i) {
    const std::string key = "lib:" + std::to_string(i);
    client::Response r = db.Put(key, "v" + std::to_string(i));
    REQUIRE_MESSAGE(r.status == 201, r.error, " ", r.message);
    CHECK(r.node == cluster.address(cluster.OwnerOf(key)));
    CHECK(r.etag > 0);
  }
  CHECK(db.async().map().shards().size() == 2);

  client::Response got = db.Get("lib:3");
  REQUIRE(got.ok());
  CHECK(got.body == "v3");
  client::WriteOptions stale;
  stale.if_match = got.etag + 1000;
  CHECK(db.Put("lib:3", "x", stale).status == 412);
  client::WriteOptions fresh;
  fresh.if_match = got.etag;
  CHECK(db.Put("lib:3", "w3", fresh).status == 200);
  client::WriteOptions create_only;
  create_only.if_none_match = true;
  CHECK(db.Put("lib:3", "again", create_only).status == 412);
  CHECK(db.Delete("lib:39").status == 204);
  CHECK(db.Get("lib:39").status == 404);

  std::set<std::string> keys;
  client::ScanRequest scan;
  scan.prefix = "lib:";
  scan.limit = 7;
  for (int pages = 0; pages < 100; ++pages) {
    client::ScanPage page;
    REQUIRE(db.Scan(scan, &page).ok());
    keys.insert(page.keys.begin(), page.keys.end());
    if (page.cursor.empty()) break;
    scan.cursor = page.cursor;
  }
  CHECK(keys.size() == 39);
  for (int i = 0; i < 39; ++i) CHECK_MESSAGE(keys.count("lib:" + std::to_string(i)), i);

  // The owner's primary dies: reads of its keys are served by its replica,
  // writes report that the shard is unreachable.
  const std::string key = "lib:5";
  const size_t owner = cluster.OwnerOf(key);
  SyncHttp http;
  REQUIRE(WaitUntil(
      [&] { return http.Get(cluster.spec().shards[owner].replicas[0], "/kv/lib:5").status == 200; },
      10000));
  cluster.primary(owner).Kill();
  client::Response from_replica = db.Get(key);
  CHECK(from_replica.status == 200);
  CHECK(from_replica.body == "v5");
  CHECK(from_replica.node == cluster.spec().shards[owner].replicas[0]);
  client::Response write = db.Put(key, "lost");
  CHECK_FALSE(write.ok());
  CHECK((write.status == 0 || write.status >= 500 || write.status == 403));
  cluster.primary(owner).Restart();
}

TEST_CASE("distkv command line: get, put, del, scan, stats, cluster with exit codes") {
  TestCluster cluster(ClientSpec());
  cluster.Start();
  const std::string at = "--cluster " + cluster.address(0);

  CommandResult put = RunCli(at + " put cli:a hello");
  CHECK(put.exit_code == 0);
  CHECK(put.out.rfind("created etag ", 0) == 0);
  CHECK(RunShell("printf 'from stdin' | " + DistkvBinary() + " " + at + " put cli:b -").exit_code ==
        0);
  const std::string binary = std::string("\x00\x01", 2) + "file";
  WriteFile(cluster.dir().Sub("value.bin"), binary);
  CHECK(RunCli(at + " put cli:f --file " + cluster.dir().Sub("value.bin")).exit_code == 0);
  CHECK(RunCli(at + " get cli:f").out == binary);
  CommandResult get = RunCli(at + " get cli:b");
  CHECK(get.exit_code == 0);
  CHECK(get.out == "from stdin");
  CHECK(RunCli(at + " get cli:a").out == "hello");

  CommandResult json = RunCli(at + " --json get cli:a");
  CHECK(json.exit_code == 0);
  CHECK(json.out.find("\"value\":\"hello\"") != std::string::npos);

  CHECK(RunCli(at + " get cli:none").exit_code == 1);
  CHECK(RunCli(at + " put cli:a x --if-match 999999").exit_code == 3);
  CHECK(RunCli(at + " put cli:a x --if-none-match").exit_code == 3);
  CHECK(RunCli(at + " del cli:a").exit_code == 0);
  CHECK(RunCli(at + " del cli:a").exit_code == 1);
  CHECK(RunCli(at + " get").exit_code == 2);
  REQUIRE(RunCli(at + " put cli:t v --ttl 600").exit_code == 0);
  CommandResult left = RunCli(at + " ttl cli:t");
  CHECK(left.exit_code == 0);
  CHECK(std::stoll(left.out) > 500);
  CHECK(std::stoll(left.out) <= 600);
  REQUIRE(RunCli(at + " put cli:t v").exit_code == 0);  // a plain put clears the TTL
  CHECK(RunCli(at + " ttl cli:t").out == "-1\n");
  CHECK(RunCli(at + " ttl cli:none").exit_code == 1);
  CommandResult ttl = RunCli(at + " ttl cli:b");
  CHECK(ttl.exit_code == 0);
  CHECK(ttl.out == "-1\n");
  CHECK(RunCli(at + " frobnicate").exit_code != 0);
  // Numbers are digits only: a sign, a space, a suffix or a value past int64
  // is a usage error (exit 2), not a clamped or truncated number.
  for (const char* bad : {"' 600'", "+600", "600s", "0x10", "99999999999999999999", "-1", "''"}) {
    CHECK_MESSAGE(RunCli(at + " put cli:bad v --ttl " + bad).exit_code == 2, bad);
  }
  CHECK(RunCli(at + " --timeout 1e3 get cli:b").exit_code == 2);
  CHECK(RunCli(at + " scan --limit 4x").exit_code == 2);
  CHECK(RunCli(at + " get cli:bad").exit_code == 1);  // none of them wrote
  // A flag another command takes is a usage error, not ignored: mput --ttl
  // would store keys that never expire.
  CommandResult mput_ttl =
      RunShell("{ " + DistkvBinary() + " " + at + " mput --ttl 60 cli:m v 2>&1; }");
  CHECK(mput_ttl.exit_code == 2);
  CHECK_MESSAGE(mput_ttl.out.find("mput takes no --ttl") != std::string::npos, mput_ttl.out);
  CHECK(RunCli(at + " get cli:m").exit_code == 1);  // nothing written
  CHECK(RunCli(at + " get cli:b --ttl 5").exit_code == 2);
  CHECK(RunCli(at + " mget cli:b --if-match 3").exit_code == 2);
  CHECK(RunCli(at + " del cli:b --values").exit_code == 2);
  CHECK(RunCli(at + " get cli:b").exit_code == 0);  // still there

  for (int i = 0; i < 25; ++i)
    REQUIRE(RunCli(at + " put cli:s" + std::to_string(i) + " v").exit_code == 0);
  CommandResult scan = RunCli(at + " scan --prefix cli:s --limit 4");
  CHECK(scan.exit_code == 0);
  std::set<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = scan.out.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.insert(scan.out.substr(start, nl - start));
  CHECK(lines.size() == 25);
  CHECK(lines.count("cli:s7") == 1);

  CommandResult stats = RunCli(at + " stats");
  CHECK(stats.exit_code == 0);
  CHECK(stats.out.find("\"role\"") != std::string::npos);
  CommandResult map = RunCli(at + " cluster");
  CHECK(map.exit_code == 0);
  CHECK(map.out.find(cluster.address(1)) != std::string::npos);

  // Nothing listens there: exit 4, the cluster could not answer.
  CHECK(RunCli("--cluster 127.0.0.1:1 --timeout 500 get k").exit_code == 4);
}

// After a failover the library and the command line follow the new map: the
// client that routed a shard's writes to the dead primary finds the promoted
// replica (from the map a live node serves under the new epoch), and the
// command line, seeded with any node, reads and writes through it.
TEST_CASE("client library and command line after a failover: writes go to the promoted replica") {
  ClusterSpec spec = LocalCluster(2, 1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  client::SyncClient db(ClientOptions(cluster, 1));
  const std::string key = cluster.KeysOf(0, 1, "fo:")[0];
  const std::string promoted = spec.shards[0].replicas[0];
  REQUIRE(db.Put(key, "before").status == 201);
  SyncHttp http;
  REQUIRE(WaitUntil([&] { return http.Get(promoted, "/kv/" + key).body == "before"; }, 30'000));

  cluster.primary(0).Kill();
  REQUIRE(RunDistkv(cluster.dir(), "promote",
                    {"promote", "--config", cluster.dir().Sub("sharding.toml"), "--shard",
                     spec.shards[0].name}) == 0);
  REQUIRE(WaitUntil([&] { return EpochOf(http, cluster.address(1)) == 1; }, 30'000));

  // The client's first attempts may still go to the dead primary; it must
  // get to the new one without being rebuilt.
  client::Response put;
  REQUIRE(WaitUntil(
      [&] {
        put = db.Put(key, "after");
        return put.ok();
      },
      30'000, 100));
  CHECK(put.node == promoted);
  client::Response got = db.Get(key);
  CHECK(got.body == "after");
  CHECK(got.node == promoted);

  const std::string at = "--cluster " + cluster.address(1);
  CHECK(RunCli(at + " get " + key).out == "after");
  CHECK(RunCli(at + " put " + key + " by-cli").exit_code == 0);
  CHECK(http.Get(promoted, "/kv/" + key).body == "by-cli");
}

}  // namespace distkv::clustertest
