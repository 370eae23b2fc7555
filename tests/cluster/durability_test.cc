// Durability through a real process: what a node acknowledged is there after
// it is killed (SIGKILL) or stopped (SIGTERM) and restarted on the same data
// directory.
//
// SIGKILL alone proves little: the page cache survives it, so a node that
// never called fdatasync would pass. So the nodes here run with
// --sync-journal, which records every size they made durable, and after the
// kill the test cuts each file back to that size (and removes files never
// synced) before the restart: what a power cut at that moment would leave.
//
// The crash test kills the node while writes are in flight, from inside the
// client's reply callback: some writes are acknowledged, some not. Every
// acknowledged one must survive; an unacknowledged one may be lost but never
// torn (absent, or present with its whole value).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

std::string Key(const char* prefix, size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%05zu", prefix, i);
  return buf;
}

// A value that names its key and is long enough to span several pages of log.
std::string ValueFor(const std::string& key, const char* version = "v1") {
  return key + "/" + version + "/" + std::string(200, static_cast<char>('a' + key.back() % 26));
}

// GETs every key on address; returns the replies in order.
std::vector<Reply> ReadAll(SyncHttp& http, const std::string& address,
                           const std::vector<std::string>& keys) {
  std::vector<Call> calls;
  for (const std::string& key : keys)
    calls.push_back(MakeCall(address, "GET", "/kv/" + PercentEncode(key)));
  return http.SendAll(std::move(calls), 16);
}

// Streams `count` PUTs (32 in flight) of keys named by prefix and sends
// `signal` to the node once `signal_after` of them are acknowledged. Returns
// which writes were acknowledged.
struct WriteStream {
  std::vector<std::string> keys;
  std::vector<bool> acked;
  size_t acked_count = 0;
  bool signalled = false;
};

// The file a node's --sync-journal goes to, and the node's data directory
// (from its command line).
std::string JournalOf(Node& node) {
  const std::vector<std::string>& a = node.args();
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == "--data") return a[i + 1] + ".sync-journal";
  }
  FAIL("node has no --data");
  return {};
}

std::string DataDirOf(Node& node) {
  const std::string j = JournalOf(node);
  return j.substr(0, j.size() - std::string(".sync-journal").size());
}

void RecordSyncs(Node& node) {
  const std::string journal = JournalOf(node);
  node.args().push_back("--sync-journal");
  node.args().push_back(journal);
}

// A power cut after the node died: every file of its data directory goes
// back to the size its journal says was synced, what was written in place
// since its last sync (pre-allocated space) turns back to zeros, and files
// never synced go. Returns how many bytes were dropped.
uint64_t CutToSynced(Node& node) {
  std::map<std::string, uint64_t> synced;  // file name -> durable size
  // file name -> ranges (offset, bytes) written since its last sync
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> unsynced;
  std::ifstream in(JournalOf(node));
  std::string op, a, b, c;
  auto base = [](const std::string& p) { return std::filesystem::path(p).filename().string(); };
  while (in >> op >> a) {
    if (op == "create") {
      synced[base(a)] = 0;
      unsynced.erase(base(a));
    } else if (op == "write" && in >> b >> c) {
      unsynced[base(a)].emplace_back(std::stoull(b), std::stoull(c));
    } else if (op == "sync" && in >> b) {
      synced[base(a)] = std::stoull(b);
      unsynced.erase(base(a));
    } else if (op == "rename" && in >> b) {
      auto it = synced.find(base(a));
      if (it != synced.end()) {
        synced[base(b)] = it->second;
        synced.erase(base(a));
      }
      unsynced.erase(base(b));
      unsynced.erase(base(a));  // renamed only once synced (the writers' rule)
    } else if (op == "unlink") {
      synced.erase(base(a));
      unsynced.erase(base(a));
    }
  }
  uint64_t zeroed = 0;
  for (const auto& [name, ranges] : unsynced) {
    auto it = synced.find(name);
    if (it == synced.end()) continue;
    const std::string path = DataDirOf(node) + "/" + name;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    for (const auto& [off, bytes] : ranges) {
      if (off >= it->second) continue;  // past the durable size: cut below
      const uint64_t n = std::min(bytes, it->second - off);
      const std::string zeros(n, '\0');
      f.seekp(static_cast<std::streamoff>(off));
      f.write(zeros.data(), static_cast<std::streamsize>(n));
      zeroed += n;
    }
  }
  uint64_t dropped = 0;
  for (const auto& e : std::filesystem::directory_iterator(DataDirOf(node))) {
    const std::string name = e.path().filename().string();
    if (name == "LOCK" || !e.is_regular_file()) continue;
    const uint64_t size = e.file_size();
    auto it = synced.find(name);
    if (it == synced.end()) {
      dropped += size;
      std::filesystem::remove(e.path());
    } else if (size > it->second) {
      dropped += size - it->second;
      std::filesystem::resize_file(e.path(), it->second);
    }
  }
  return dropped + zeroed;
}

WriteStream WriteThenSignal(Node& node, const std::string& addr, const char* prefix, size_t count,
                            size_t signal_after, int signal) {
  WriteStream w;
  std::vector<Call> calls;
  for (size_t i = 0; i < count; ++i) {
    w.keys.push_back(Key(prefix, i));
    calls.push_back(MakeCall(addr, "PUT", "/kv/" + w.keys.back(), ValueFor(w.keys.back())));
  }
  w.acked.assign(count, false);
  SyncHttp http;
  http.SendAll(std::move(calls), 32, [&](size_t index, const Reply& reply) {
    if (!Is2xx(reply.status)) return;
    w.acked[index] = true;
    if (++w.acked_count == signal_after && !w.signalled) {
      ::kill(node.pid(), signal);  // while ~32 writes are still in flight
      w.signalled = true;
    }
  });
  return w;
}

TEST_CASE("durability: fsync=always, every acknowledged write survives SIGKILL mid-stream") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  RecordSyncs(cluster.primary(0));
  cluster.Start();
  Node& node = cluster.primary(0);
  const std::string addr = cluster.address(0);

  constexpr size_t kWrites = 3000;
  WriteStream w = WriteThenSignal(node, addr, "crash", kWrites, 1000, SIGKILL);
  const std::vector<std::string>& keys = w.keys;
  const std::vector<bool>& acked = w.acked;
  const size_t acked_count = w.acked_count;
  REQUIRE(w.signalled);
  node.Kill();  // reap
  // The premise: the kill cut the stream, so some writes were never answered.
  CHECK(acked_count < kWrites);
  MESSAGE(acked_count << " of " << kWrites << " writes acknowledged before the kill");
  MESSAGE(CutToSynced(node) << " unsynced bytes dropped, as by a power cut");

  node.Restart();
  SyncHttp http;
  std::vector<Reply> replies = ReadAll(http, addr, keys);
  size_t lost = 0, torn = 0, unacked_present = 0;
  std::string first_problem;
  for (size_t i = 0; i < kWrites; ++i) {
    const Reply& r = replies[i];
    bool intact = r.status == 200 && r.body == ValueFor(keys[i]);
    if (acked[i] && !intact) {
      if (++lost == 1)
        first_problem = "acknowledged " + keys[i] + " after restart: " + std::to_string(r.status);
    } else if (!acked[i] && r.status != 404 && !intact) {
      if (++torn == 1)
        first_problem = "unacknowledged " + keys[i] + " after restart: " + std::to_string(r.status);
    } else if (!acked[i] && intact) {
      ++unacked_present;
    }
  }
  CHECK_MESSAGE(lost == 0, lost << " acknowledged writes lost; first: " << first_problem);
  CHECK_MESSAGE(torn == 0, torn << " unacknowledged writes neither absent nor whole; first: "
                                << first_problem);
  Json stats = GetJson(http, addr, "/stats");
  CHECK(JsonInt(stats, "keys") == static_cast<int64_t>(acked_count + unacked_present));
}

// A read may not show what a crash can take back: once a request's answer
// rested on a write (a GET's value, a DELETE's 404, an If-Match's 412), that
// write must be there after a power cut (also for _mget). On a slow disk a batch holding a
// large value takes about half a second; a write staged behind it (or in it)
// is visible in memory meanwhile, and a request that reads it must wait for
// its batch instead of answering from memory. The test kills the node the
// moment it has such an answer, cuts the files to what was synced, restarts.
TEST_CASE("durability: what a read answered survives a power cut that follows at once") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& node = cluster.primary(0);
  RecordSyncs(node);
  node.args().push_back("--slow-disk");
  node.args().push_back("1000000");  // 1 MB/s: the value below takes ~0.5 s to write
  cluster.Start();
  const std::string addr = cluster.address(0);
  const std::string big(512 * 1024, 'n');
  SyncHttp http;
  Reply old = http.Send(addr, "PUT", "/kv/raced", "old");
  REQUIRE(Is2xx(old.status));
  const std::string old_etag = old.Header("ETag");

  // Sends method target body on a connection of its own; its answer may
  // never come (the node is killed).
  std::vector<std::thread> writers;
  auto write_behind = [&](std::string method, std::string target, std::string body) {
    writers.emplace_back([&addr, method, target, body] {
      net::ClientOptions options = SyncHttp::DefaultOptions();
      options.request_timeout_ms = 60'000;
      SyncHttp w(options);
      w.Send(addr, method, target, body);
    });
  };
  // Writes waiting for their batch (staged or in flight).
  auto waiting_at_least = [&](int64_t n) {
    return WaitUntil(
        [&] { return JsonInt(GetJson(http, addr, "/stats")["commit"], "waiting") >= n; }, 30'000);
  };
  // A slow batch, then the write the request below reads, staged behind it.
  auto slow_batch_then = [&](std::string method, std::string body) {
    write_behind("PUT", "/kv/big", big);
    REQUIRE(waiting_at_least(1));
    write_behind(method, "/kv/raced", body);
    REQUIRE(waiting_at_least(2));
  };
  auto power_cut = [&] {
    node.Kill();  // at once: the batch may still be syncing
    for (std::thread& t : writers) t.join();
    MESSAGE(CutToSynced(node) << " unsynced bytes dropped, as by a power cut");
    node.Restart();
  };

  SUBCASE("a GET that answered a new value") {
    write_behind("PUT", "/kv/raced", big);
    Reply seen;
    for (int i = 0; i < 20'000; ++i) {
      seen = http.Get(addr, "/kv/raced");
      if (seen.status != 200 || seen.body != "old") break;
    }
    power_cut();
    REQUIRE_MESSAGE(seen.status == 200, seen);
    REQUIRE_MESSAGE(seen.body == big, "the new value was never read");
    Reply after = http.Get(addr, "/kv/raced");
    CHECK_MESSAGE(after.status == 200, after);
    CHECK_MESSAGE(after.body == big, "a GET answered the new value, a power cut took it back: read "
                                         << after.body.size() << " bytes");
  }
  SUBCASE("an _mget that answered a new value") {
    write_behind("PUT", "/kv/raced", big);
    std::string seen;
    for (int i = 0; i < 20'000; ++i) {
      Reply r = http.Send(addr, "POST", "/kv/_mget", "[\"raced\"]");
      REQUIRE_MESSAGE(r.status == 200, r);
      seen = Json::parse(r.body).at("results").at(0).value("value", "");
      if (seen != "old") break;
    }
    power_cut();
    REQUIRE_MESSAGE(seen == big, "the new value was never read");
    Reply after = http.Get(addr, "/kv/raced");
    CHECK_MESSAGE(after.body == big, "an _mget answered the new value, a power cut took it back: "
                                         << after.body.size() << " bytes");
  }
  SUBCASE("a DELETE that answered 404") {
    slow_batch_then("DELETE", "");
    Reply seen = http.Send(addr, "DELETE", "/kv/raced");
    power_cut();
    REQUIRE_MESSAGE(seen.status == 404, seen);
    Reply after = http.Get(addr, "/kv/raced");
    CHECK_MESSAGE(after.status == 404,
                  "a DELETE answered 404, a power cut brought the key back: " << after);
  }
  SUBCASE("a PUT with If-Match that answered 412") {
    slow_batch_then("PUT", "newer");
    Reply seen = http.Send(addr, "PUT", "/kv/raced", "cas", {{"If-Match", old_etag}});
    power_cut();
    REQUIRE_MESSAGE(seen.status == 412, seen);
    Reply after = http.Get(addr, "/kv/raced");
    CHECK_MESSAGE(after.body == "newer",
                  "If-Match answered 412, a power cut brought the old value back: " << after);
  }
}

TEST_CASE("durability: fsync=always, acknowledged overwrites and deletes survive SIGKILL") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  RecordSyncs(cluster.primary(0));
  cluster.Start();
  const std::string addr = cluster.address(0);
  constexpr size_t kKeys = 300;
  std::vector<std::string> keys;
  {
    SyncHttp http;
    std::vector<Call> puts;
    for (size_t i = 0; i < kKeys; ++i) {
      keys.push_back(Key("od", i));
      puts.push_back(MakeCall(addr, "PUT", "/kv/" + keys.back(), ValueFor(keys.back(), "v1")));
    }
    for (const Reply& r : http.SendAll(std::move(puts), 16)) REQUIRE_MESSAGE(Is2xx(r.status), r);
    // Then, concurrently: overwrite the first third, delete the second third.
    std::vector<Call> changes;
    for (size_t i = 0; i < kKeys / 3; ++i)
      changes.push_back(MakeCall(addr, "PUT", "/kv/" + keys[i], ValueFor(keys[i], "v2")));
    for (size_t i = kKeys / 3; i < 2 * kKeys / 3; ++i)
      changes.push_back(MakeCall(addr, "DELETE", "/kv/" + keys[i]));
    for (const Reply& r : http.SendAll(std::move(changes), 16)) REQUIRE_MESSAGE(Is2xx(r.status), r);
  }
  cluster.primary(0).Kill();
  CutToSynced(cluster.primary(0));
  cluster.primary(0).Restart();

  SyncHttp http;
  std::vector<Reply> replies = ReadAll(http, addr, keys);
  size_t wrong = 0;
  std::string first;
  for (size_t i = 0; i < kKeys; ++i) {
    bool ok;
    if (i < kKeys / 3)
      ok = replies[i].status == 200 && replies[i].body == ValueFor(keys[i], "v2");
    else if (i < 2 * kKeys / 3)
      ok = replies[i].status == 404;
    else
      ok = replies[i].status == 200 && replies[i].body == ValueFor(keys[i], "v1");
    if (!ok && ++wrong == 1) first = keys[i] + ": HTTP " + std::to_string(replies[i].status);
  }
  CHECK_MESSAGE(wrong == 0, wrong << " keys wrong after restart; first: " << first);
  CHECK(JsonInt(GetJson(http, addr, "/stats"), "keys") == static_cast<int64_t>(kKeys - kKeys / 3));
}

TEST_CASE("durability: SIGTERM exits 0 and a restart keeps every key") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";  // nothing synced per write: the shutdown path must not lose data
  TestCluster cluster(spec);
  RecordSyncs(cluster.primary(0));
  cluster.Start();
  const std::string addr = cluster.address(0);
  constexpr size_t kKeys = 500;
  std::vector<std::string> keys;
  {
    SyncHttp http;
    std::vector<Call> puts;
    for (size_t i = 0; i < kKeys; ++i) {
      keys.push_back(Key("term", i));
      puts.push_back(MakeCall(addr, "PUT", "/kv/" + keys.back(), ValueFor(keys.back())));
    }
    for (const Reply& r : http.SendAll(std::move(puts), 16)) REQUIRE(Is2xx(r.status));
    for (size_t i = 0; i < 50; ++i)
      REQUIRE(http.Send(addr, "DELETE", "/kv/" + keys[i]).status == 204);
  }
  CHECK(cluster.primary(0).Stop() == 0);
  // A clean stop syncs everything, whatever the fsync mode: a power cut
  // right after it loses nothing.
  CHECK(CutToSynced(cluster.primary(0)) == 0);
  cluster.primary(0).Restart();

  SyncHttp http;
  std::vector<Reply> replies = ReadAll(http, addr, keys);
  size_t wrong = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    bool ok = i < 50 ? replies[i].status == 404
                     : replies[i].status == 200 && replies[i].body == ValueFor(keys[i]);
    if (!ok) ++wrong;
  }
  CHECK_MESSAGE(wrong == 0, wrong << " of " << kKeys << " keys wrong after SIGTERM and restart");
  CHECK(JsonInt(GetJson(http, addr, "/stats"), "keys") == static_cast<int64_t>(kKeys - 50));
  CHECK(cluster.primary(0).Stop() == 0);
}

TEST_CASE("durability: LSNs keep growing across restarts and records keep theirs") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  // A fresh client after every restart: a pooled connection to the dead
  // process is not what this test is about.
  auto put_lsn = [&](const char* target) {
    SyncHttp http;
    Reply r = http.Send(addr, "PUT", target, "v");
    REQUIRE_MESSAGE(Is2xx(r.status), r);
    uint64_t lsn = 0;
    REQUIRE_MESSAGE(ParseEtag(r.Header("ETag"), &lsn), r);
    return lsn;
  };

  uint64_t lsn_first = put_lsn("/kv/first");
  cluster.primary(0).Kill();
  cluster.primary(0).Restart();
  uint64_t lsn_second = put_lsn("/kv/second");
  CHECK(lsn_second > lsn_first);

  CHECK(cluster.primary(0).Stop() == 0);
  cluster.primary(0).Restart();
  uint64_t lsn_third = put_lsn("/kv/third");
  CHECK(lsn_third > lsn_second);

  // A record read back after restarts carries the LSN it was written with.
  SyncHttp http;
  Reply get = http.Get(addr, "/kv/first");
  CHECK(get.status == 200);
  CHECK(get.Header("ETag") == "\"" + std::to_string(lsn_first) + "\"");
  CHECK(JsonInt(GetJson(http, addr, "/stats"), "last_lsn") == static_cast<int64_t>(lsn_third));
}

TEST_CASE("durability: SIGTERM during a write stream exits 0 and keeps every acknowledged write") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  Node& node = cluster.primary(0);
  const std::string addr = cluster.address(0);

  constexpr size_t kWrites = 3000;
  WriteStream w = WriteThenSignal(node, addr, "sigterm", kWrites, 1000, SIGTERM);
  const std::vector<std::string>& keys = w.keys;
  const std::vector<bool>& acked = w.acked;
  const size_t acked_count = w.acked_count;
  REQUIRE(w.signalled);
  CHECK(node.WaitForExit(10'000) == 0);
  MESSAGE(acked_count << " of " << kWrites << " writes acknowledged around the SIGTERM");

  node.Restart();
  SyncHttp http;
  std::vector<Reply> replies = ReadAll(http, addr, keys);
  size_t lost = 0, torn = 0;
  for (size_t i = 0; i < kWrites; ++i) {
    bool intact = replies[i].status == 200 && replies[i].body == ValueFor(keys[i]);
    if (acked[i] && !intact) ++lost;
    if (!acked[i] && !intact && replies[i].status != 404) ++torn;
  }
  CHECK_MESSAGE(lost == 0, lost << " acknowledged writes lost");
  CHECK_MESSAGE(torn == 0, torn << " unacknowledged writes neither absent nor whole");
}

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".seg") out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE(
    "durability: a torn tail on the newest segment is cut back at restart; nothing acknowledged is "
    "lost") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  std::vector<std::string> keys;
  {
    SyncHttp http;
    std::vector<Call> puts;
    for (size_t i = 0; i < 200; ++i) {
      keys.push_back(Key("torn", i));
      puts.push_back(MakeCall(addr, "PUT", "/kv/" + keys.back(), ValueFor(keys.back())));
    }
    for (const Reply& r : http.SendAll(std::move(puts), 16)) REQUIRE(Is2xx(r.status));
  }
  cluster.primary(0).Kill();

  // What a crash in the middle of a write leaves: the start of a record.
  std::string segment = NewestSegmentOf(data);
  REQUIRE_MESSAGE(!segment.empty(), "no *.seg file in " << data);
  {
    // Right after the last record, over the pre-allocated zeros if any.
    std::fstream out(segment, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(RecordBytesOf(segment)));
    std::string garbage = "\x13\x37torn-record";
    garbage += std::string(23, '\xA5');
    out.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  cluster.primary(0).Restart();
  {
    SyncHttp http;
    std::vector<Reply> replies = ReadAll(http, addr, keys);
    size_t wrong = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (replies[i].status != 200 || replies[i].body != ValueFor(keys[i])) ++wrong;
    }
    CHECK_MESSAGE(wrong == 0, wrong << " keys wrong after the torn tail");
    // Writes after the cut land on a clean log and survive another crash.
    REQUIRE(Is2xx(http.Send(addr, "PUT", "/kv/after-torn", "fine").status));
  }
  cluster.primary(0).Kill();
  cluster.primary(0).Restart();
  SyncHttp http;
  CHECK(http.Get(addr, "/kv/after-torn").body == "fine");
  CHECK(http.Get(addr, "/kv/" + keys.back()).body == ValueFor(keys.back()));
  CHECK(JsonInt(GetJson(http, addr, "/stats"), "keys") == static_cast<int64_t>(keys.size() + 1));
}

TEST_CASE(
    "durability: a corrupt record in a sealed segment stops the start, naming the file; --repair "
    "starts") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("storage", "segment_bytes", 4096);
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  constexpr size_t kKeys = 200;  // ~250-byte records: a dozen segments
  {
    SyncHttp http;
    for (size_t i = 0; i < kKeys; ++i) {
      REQUIRE(
          Is2xx(http.Send(addr, "PUT", "/kv/" + Key("seal", i), ValueFor(Key("seal", i))).status));
    }
  }
  REQUIRE(cluster.primary(0).Stop() == 0);
  std::vector<std::string> segments = Segments(data);
  REQUIRE_MESSAGE(segments.size() >= 3, segments.size() << " segments with segment_bytes = 4096");

  // Flip one byte in the middle of the oldest (sealed) segment. A sealed
  // segment gets a hint file once it is written (in the background), and a
  // valid hint file spares recovery the scan, so the damage would be found
  // only by a read (storage_faults_test.cc); remove it so the scan runs.
  const std::string victim = segments.front();
  std::filesystem::remove(victim.substr(0, victim.size() - 4) + ".hint");
  {
    std::fstream f(victim, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(0, std::ios::end);
    std::streamoff middle = f.tellg() / 2;
    f.seekg(middle);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5A);
    f.seekp(middle);
    f.write(&c, 1);
    REQUIRE(f.good());
  }
  Node& node = cluster.primary(0);
  node.Start();
  int code = node.WaitForExit(10'000);
  CHECK_MESSAGE(code > 0, "a corrupt sealed segment did not stop the start (exit " << code << ")");
  std::string name = std::filesystem::path(victim).filename().string();
  CHECK_MESSAGE(node.LogTail().find(name) != std::string::npos, "the log does not name "
                                                                    << name << ":\n"
                                                                    << node.LogTail());
  if (code == -1) node.Kill();

  // With --repair the node starts; the segments after the damaged one are whole.
  node.args().push_back("--repair");
  node.Restart();
  SyncHttp http;
  Reply last = http.Get(addr, "/kv/" + Key("seal", kKeys - 1));
  CHECK_MESSAGE(last.status == 200, last);
  CHECK(last.body == ValueFor(Key("seal", kKeys - 1)));
  int64_t keys_after = JsonInt(GetJson(http, addr, "/stats"), "keys");
  CHECK(keys_after < static_cast<int64_t>(kKeys));  // the records behind the damage are cut off
  CHECK(keys_after > 0);
}

}  // namespace
}  // namespace distkv::clustertest
