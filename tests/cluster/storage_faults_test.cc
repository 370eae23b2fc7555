// What a running node does when its disk misbehaves under it: bytes of a
// stored record changed on disk, and an fdatasync that fails.
//
// A damaged record is never served: the read answers 500 "corrupt_record",
// the node logs the file and offset, and every other key keeps being served.
// A failed sync is never retried as if it had succeeded (the "fsyncgate"
// rule): the write it carried answers that it may or may not be stored, the
// shard takes no more writes (503 "read_only") and says why in /health,
// /stats and /metrics while it keeps serving reads, and a restart recovers
// every write it acknowledged. `distkv serve --fail-sync-after N` gives the
// node a disk whose syncs fail (storage/failing_sync_io.h).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

std::string ValueOf(size_t i) { return "value-" + std::to_string(i) + "-" + std::string(200, 'v'); }

// Flips one byte in the middle of `needle` in the first segment file of
// data_dir that holds it; false if no segment does.
bool DamageOnDisk(const std::string& data_dir, const std::string& needle) {
  for (const auto& e : std::filesystem::directory_iterator(data_dir)) {
    if (e.path().extension() != ".seg") continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = bytes.find(needle);
    if (at == std::string::npos) continue;
    const off_t off = static_cast<off_t>(at + needle.size() / 2);
    const char flipped = static_cast<char>(bytes[at + needle.size() / 2] ^ 0x20);
    const int fd = ::open(e.path().c_str(), O_WRONLY);
    if (fd < 0) return false;
    const bool ok = ::pwrite(fd, &flipped, 1, off) == 1;
    ::close(fd);
    return ok;
  }
  return false;
}

TEST_CASE(
    "storage faults: a record damaged on disk answers 500 corrupt_record and is logged; the node "
    "serves every other key") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  SyncHttp http;
  constexpr size_t kKeys = 10;
  for (size_t i = 0; i < kKeys; ++i) {
    REQUIRE(http.Send(addr, "PUT", "/kv/k" + std::to_string(i), ValueOf(i)).status == 201);
  }
  REQUIRE(DamageOnDisk(cluster.dir().Sub("data-" + spec.shards[0].name), ValueOf(3)));

  const Reply bad = http.Get(addr, "/kv/k3");
  CHECK_MESSAGE(bad.status == 500, bad);
  CHECK(IsJsonError(bad));
  CHECK_MESSAGE(bad.body.find("\"corrupt_record\"") != std::string::npos, bad);
  CHECK_MESSAGE(bad.body.find("value-3") == std::string::npos, bad);  // no byte of the value
  CHECK(WaitUntil(
      [&] {
        const std::string log = cluster.primary(0).LogTail(200);
        return log.find("ERROR read failed") != std::string::npos &&
               log.find(".seg") != std::string::npos;
      },
      10'000));
  for (size_t i = 0; i < kKeys; ++i) {
    if (i == 3) continue;
    const Reply r = http.Get(addr, "/kv/k" + std::to_string(i));
    CHECK_MESSAGE(r.status == 200, r);
    CHECK(r.body == ValueOf(i));
  }
  CHECK(http.Get(addr, "/health").status == 200);
  // A new write of the key supersedes the damaged record.
  REQUIRE(http.Send(addr, "PUT", "/kv/k3", "fresh").status == 200);
  CHECK(http.Get(addr, "/kv/k3").body == "fresh");
}

TEST_CASE(
    "storage faults: after a failed fdatasync a node takes no writes (503 read_only), says why in "
    "/health, /stats and /metrics, serves reads, and a restart recovers every acknowledged write") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& node = cluster.primary(0);
  node.args().push_back("--fail-sync-after");
  node.args().push_back("40");
  cluster.Start();
  const std::string addr = node.address();
  SyncHttp http;

  // Writes until the first failed sync; every earlier one was acknowledged.
  std::vector<size_t> acked;
  Reply failed;
  for (size_t i = 0; i < 200; ++i) {
    const Reply r = http.Send(addr, "PUT", "/kv/k" + std::to_string(i), ValueOf(i));
    if (r.status == 201) {
      acked.push_back(i);
      continue;
    }
    failed = r;
    break;
  }
  REQUIRE_MESSAGE(failed.status != 0, "no write failed: the syncs never failed");
  REQUIRE(!acked.empty());
  // The write whose sync failed: it may or may not be stored, and says so.
  CHECK_MESSAGE(failed.status == 500, failed);
  CHECK(IsJsonError(failed));
  CHECK_MESSAGE(failed.body.find("may or may not") != std::string::npos, failed);

  // From then on: no writes, and why.
  for (const char* method : {"PUT", "DELETE"}) {
    const Reply r = http.Send(addr, method, "/kv/k0", method[0] == 'P' ? "later" : "");
    CHECK_MESSAGE(r.status == 503, r);
    CHECK_MESSAGE(r.body.find("\"read_only\"") != std::string::npos, r);
  }
  const Reply health = http.Get(addr, "/health");
  CHECK(health.status == 200);
  CHECK_MESSAGE(health.body.find("\"status\":\"read_only\"") != std::string::npos, health);
  CHECK_MESSAGE(health.body.find("fdatasync") != std::string::npos, health);
  const Json stats = GetJson(http, addr, "/stats");
  CHECK(JsonInt(stats, "read_only") == 1);
  CHECK(JsonText(stats, "read_only_reason").find("fdatasync") != std::string::npos);
  CHECK(http.Get(addr, "/metrics").body.find("\ndistkv_read_only 1\n") != std::string::npos);
  // Reads go on, with every acknowledged value.
  for (size_t i : acked) {
    const Reply r = http.Get(addr, "/kv/k" + std::to_string(i));
    CHECK_MESSAGE(r.status == 200, r);
    CHECK(r.body == ValueOf(i));
  }

  // A restart on a healthy disk recovers every acknowledged write and takes writes.
  CHECK(node.Stop() == 0);
  node.args().resize(node.args().size() - 2);
  node.Restart();
  for (size_t i : acked) CHECK(http.Get(addr, "/kv/k" + std::to_string(i)).body == ValueOf(i));
  CHECK(http.Get(addr, "/health").body.find("\"status\":\"ok\"") != std::string::npos);
  CHECK(http.Send(addr, "PUT", "/kv/k0", "after").status == 200);
}

}  // namespace
}  // namespace distkv::clustertest
