// Progress people can see, through real processes: a running compaction on
// the node's progress board (/stats) and in its events (what /cluster/status
// and the page show), `distkv compact` following one to its end (also one it
// did not start), and `distkv status --wait` following a snapshot resync.
//
// A compaction or a resync is made long enough to be watched by --slow-disk
// on the node that writes (its data files are written at a few hundred KB/s),
// never by timing: each check polls for the state it wants.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

std::string FileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Every key overwritten `rounds` times: sealed segments full of dead records.
void Overwrite(SyncHttp& http, const std::string& addr, int keys, int rounds, size_t bytes) {
  for (int round = 0; round < rounds; round++) {
    std::vector<Call> calls;
    for (int i = 0; i < keys; i++) {
      calls.push_back(MakeCall(addr, "PUT", "/kv/key-" + std::to_string(i),
                               std::to_string(round) + std::string(bytes, 'v')));
    }
    for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(Is2xx(r.status));
  }
}

// The node's progress entry `name` ({} when it has none, or when the node
// does not answer).
Json ProgressOf(SyncHttp& http, const std::string& addr, const std::string& name) {
  Reply r = http.Get(addr, "/stats");
  if (r.status != 200) return Json::object();
  Json st = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!st.is_object() || !st.contains("progress") || !st["progress"].contains(name)) {
    return Json::object();
  }
  return st["progress"][name];
}

bool MidWay(const Json& p) {
  return p.value("running", false) && p.value("done", 0) > 0 &&
         p.value("done", 0) < p.value("total", 0);
}

// The messages of the events of `kind` that /cluster/status shows for addr.
std::vector<std::string> EventsOf(SyncHttp& http, const std::string& asked, const std::string& addr,
                                  const std::string& kind) {
  std::vector<std::string> out;
  Json status = GetJson(http, asked, "/cluster/status");
  for (const Json& s : status["shards"]) {
    for (const Json& n : s["nodes"]) {
      if (n["address"] != addr || !n.value("up", false)) continue;
      for (const Json& e : n["stats"]["events"]) {
        if (e["kind"] == kind) out.push_back(e["message"].get<std::string>());
      }
    }
  }
  return out;
}

bool AnyStartsWith(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const std::string& l : lines) {
    if (l.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string LastLine(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

}  // namespace

TEST_CASE(
    "progress: a compaction's bytes in /stats and its events; distkv compact follows its own and "
    "one already running to the end") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("storage", "segment_bytes", 128 << 10);
  spec.Set("storage", "compact_dead_ratio", 0);  // only when asked
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string shard = spec.shards[0].name;
  const std::string config = c.dir().Sub("sharding.toml");
  SyncHttp http;
  Overwrite(http, addr, 1500, 4, 400);
  // From now on the node writes its files at 128 KB/s: the live 600 KB take
  // seconds to copy.
  c.primary(0).Stop();
  c.primary(0).args().insert(c.primary(0).args().end(), {"--slow-disk", "131072"});
  c.primary(0).StartAndWait();
  SyncHttp slow;  // new connections to the restarted node

  // 1. Asked over HTTP: the board shows it part way, in bytes.
  Reply r = slow.Send(addr, "POST", "/admin/compact");
  REQUIRE_MESSAGE(r.status == 202, r.status << " " << r.body);
  Json mid;
  REQUIRE_MESSAGE(WaitUntil(
                      [&] {
                        mid = ProgressOf(slow, addr, "compaction");
                        return MidWay(mid);
                      },
                      60'000, 20),
                  mid.dump());
  CHECK(JsonText(mid, "unit") == "bytes");
  CHECK(JsonText(mid, "detail").find("segments") != std::string::npos);
  CHECK(GetJson(slow, addr, "/stats")["compaction"]["running"].get<bool>());
  CHECK(AnyStartsWith(EventsOf(slow, addr, addr, "compaction"), "started (POST /admin/compact)"));

  // `distkv compact` now gets 409 and follows that compaction to its end.
  const std::string log1 = c.dir().Sub("compact-409.log");
  {
    Process cmd("compact-409", DistkvBinary(), {"compact", "--config", config, "--shard", shard},
                log1);
    cmd.Start();
    CHECK(cmd.WaitForExit(120'000) == 0);
  }
  const std::string out1 = FileText(log1);
  MESSAGE(out1);
  CHECK(out1.find("a compaction already runs on " + shard + " on " + addr + ": following it") !=
        std::string::npos);
  CHECK(LastLine(out1).rfind("compaction of " + shard + " on " + addr + " done: ", 0) == 0);
  CHECK(LastLine(out1).find(" reclaimed in ") != std::string::npos);
  // Not a terminal: plain progress lines, no bar, no carriage returns.
  CHECK(out1.find("compaction of " + shard + " on " + addr + ": ") != std::string::npos);
  CHECK(out1.find('\r') == std::string::npos);

  Json done = ProgressOf(slow, addr, "compaction");
  CHECK_FALSE(done.value("running", true));
  CHECK(JsonText(done, "outcome").find("reclaimed") != std::string::npos);
  const std::vector<std::string> events = EventsOf(slow, addr, addr, "compaction");
  CHECK(AnyStartsWith(events, "done: "));
  bool reclaimed = false;
  for (const std::string& e : events)
    reclaimed = reclaimed || e.find(" reclaimed in ") != std::string::npos;
  CHECK_MESSAGE(reclaimed, "no compaction event with the bytes reclaimed");

  // 2. Started by the command itself: exit 0 and its final line.
  Overwrite(slow, addr, 1500, 1, 400);
  const std::string log2 = c.dir().Sub("compact.log");
  {
    Process cmd("compact", DistkvBinary(), {"compact", "--config", config}, log2);
    cmd.Start();
    CHECK(cmd.WaitForExit(120'000) == 0);
  }
  const std::string out2 = FileText(log2);
  MESSAGE(out2);
  CHECK(out2.find("following it") == std::string::npos);
  CHECK(LastLine(out2).rfind("compaction of " + shard + " on " + addr + " done: ", 0) == 0);
  CHECK(JsonInt(GetJson(slow, addr, "/stats")["compaction"], "compactions") == 2);

  // 3. A shard the map does not have: a clear message and exit 1.
  CHECK(RunDistkv(c.dir(), "compact-unknown",
                  {"compact", "--config", config, "--shard", "Nowhere"}) == 1);
  CHECK(FileText(c.dir().Sub("compact-unknown.log")).find("no shard Nowhere") != std::string::npos);
}

TEST_CASE("progress: distkv status --wait follows a replica's snapshot resync to its end") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "never";
  spec.Set("storage", "segment_bytes", 1 << 20);
  spec.Set("storage", "compact_dead_ratio", 0);
  // A replica that is behind holds no tombstone back: the compaction below
  // drops the deletes it missed, so it cannot resume inside the compacted
  // range and comes back by snapshot.
  spec.Set("storage", "replica_keep_records", 0);
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  const std::string shard = spec.shards[0].name;
  const std::string config = c.dir().Sub("sharding.toml");
  SyncHttp http;
  constexpr int kKeys = 6000;
  Overwrite(http, addr, kKeys, 1, 2000);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000));
  // The replica misses deletes, overwrites and a compaction that drops the
  // tombstones: it can only come back by a snapshot (12 MB), which it writes
  // at 4 MB/s.
  c.replica(0).Kill();
  Overwrite(http, addr, kKeys, 2, 2000);
  {
    std::vector<Call> calls;
    for (int i = 0; i < kKeys; i += 7)
      calls.push_back(MakeCall(addr, "DELETE", "/kv/key-" + std::to_string(i)));
    for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(r.status == 204);
    // Enough other writes to seal the segment the tombstones are in.
    calls.clear();
    for (int i = 0; i < 600; i++) {
      calls.push_back(
          MakeCall(addr, "PUT", "/kv/filler-" + std::to_string(i), std::string(2000, 'f')));
    }
    for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(Is2xx(r.status));
  }
  REQUIRE(http.Send(addr, "POST", "/admin/compact").status == 202);
  REQUIRE(WaitUntil(
      [&] {
        Json st = GetJson(http, addr, "/stats")["compaction"];
        return !st["running"].get<bool>() && JsonInt(st, "compactions") >= 1;
      },
      60'000, 50));
  // Asked while the replica is down: it waits for it to come back, follows
  // its resync, and ends once the replica streams again.
  const std::string log = c.dir().Sub("status-wait.log");
  Process cmd("status-wait", DistkvBinary(), {"status", "--config", config, "--wait"}, log);
  cmd.Start();
  REQUIRE(WaitUntil([&] { return FileText(log).find("waiting for " + raddr) != std::string::npos; },
                    60'000));
  c.replica(0).args().insert(c.replica(0).args().end(), {"--slow-disk", "4194304"});
  c.replica(0).Start();
  CHECK(cmd.WaitForExit(120'000) == 0);
  const std::string out = FileText(log);
  MESSAGE(out);
  // A progress line while it ran, a line when it ended, then the table.
  CHECK(out.find("resync of " + shard + " on " + raddr + ": ") != std::string::npos);
  CHECK(out.find(" MB (") != std::string::npos);
  CHECK(out.find("resync of " + shard + " on " + raddr + ": snapshot as of LSN") !=
        std::string::npos);
  CHECK(out.find("SHARD") != std::string::npos);
  SyncHttp replica_http;
  CHECK_FALSE(ProgressOf(replica_http, raddr, "resync").value("running", true));
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000));
}

}  // namespace distkv::clustertest
