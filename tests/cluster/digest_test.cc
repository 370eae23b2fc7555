// GET /internal/digest of a large store runs in slices across loop turns:
// the node goes on answering other requests while it runs.
//
// The test asserts an order of events, not a duration. /stats shows a running
// digest as progress.digest {"running": true, "done": d, "total": t}. Once a
// /stats answer shows the digest started and not finished, a GET is sent;
// when a /stats asked after the GET's answer still shows the same digest
// running, that GET was sent and answered while the digest ran. A digest
// computed in one loop turn can never be seen running by another request,
// whatever the timing, so this fails without slicing.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

// progress.digest of a /stats answer while it runs, else done = total = 0.
struct DigestProgress {
  bool running = false;
  uint64_t done = 0;
  uint64_t total = 0;
  uint64_t started_ms = 0;
};

DigestProgress ReadDigestProgress(SyncHttp& http, const std::string& addr) {
  DigestProgress p;
  const Json stats = GetJson(http, addr, "/stats");
  const Json* progress = JsonField(stats, "progress");
  const Json* digest = progress ? JsonField(*progress, "digest") : nullptr;
  if (digest == nullptr || !(*digest)["running"].get<bool>()) return p;
  p.running = true;
  p.done = (*digest)["done"].get<uint64_t>();
  p.total = (*digest)["total"].get<uint64_t>();
  p.started_ms = (*digest)["started_ms"].get<uint64_t>();
  return p;
}

TEST_CASE("digest: GETs sent while a digest of a large store runs are answered before it ends") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);
  SyncHttp http;

  // 96 MiB in 3,000 values: a digest reads them in about 24 slices of 4 MiB.
  constexpr size_t kKeys = 3'000;
  const std::string value(32 << 10, 'v');
  std::vector<Call> calls;
  for (size_t i = 0; i < kKeys; ++i) {
    calls.push_back(MakeCall(addr, "PUT", "/kv/dk-" + std::to_string(i), value));
  }
  size_t failed = 0;
  for (const Reply& r : http.SendAll(std::move(calls), 8)) failed += !Is2xx(r.status);
  REQUIRE(failed == 0);

  // The digest goes on a connection of its own, opened and answering first,
  // so its request is read as soon as it arrives.
  RawConnection digest;
  REQUIRE(digest.Connect(addr));
  REQUIRE(digest.Exchange(RawRequest("GET", "/health"), 1, 30'000));
  size_t answered = 1;

  // A digest may end before a /stats catches it running (a slow test
  // process); then ask for another.
  bool seen = false;
  for (int attempt = 0; attempt < 20 && !seen; ++attempt) {
    REQUIRE(digest.Send(RawRequest("GET", "/internal/digest")));
    answered++;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      const DigestProgress before = ReadDigestProgress(http, addr);
      digest.ReadArrived();
      if (digest.responses().size() == answered) break;  // it ended: try again
      if (!before.running) continue;                     // not started yet
      CHECK(before.done < before.total);
      CHECK(before.total == kKeys);
      const Reply get = http.Get(addr, "/kv/dk-7");
      REQUIRE(get.status == 200);
      const DigestProgress after = ReadDigestProgress(http, addr);
      // The same run, still going: the GET was answered between two slices.
      seen = after.running && after.started_ms == before.started_ms;
    }
    REQUIRE(digest.Exchange("", answered, 120'000));
    REQUIRE(digest.responses().size() == answered);
    const RawResponse& r = digest.responses().back();
    REQUIRE(r.status == 200);
    Json body;
    REQUIRE(ParseJson(r.body, &body));
    CHECK(JsonInt(body, "keys") == static_cast<int64_t>(kKeys));
  }
  CHECK_MESSAGE(seen, "no GET was answered while a digest ran");

  // Once finished, /stats keeps the outcome.
  const Json stats = GetJson(http, addr, "/stats");
  const Json* progress = JsonField(stats, "progress");
  const Json* last = progress ? JsonField(*progress, "digest") : nullptr;
  REQUIRE(last != nullptr);
  CHECK(JsonText(*last, "outcome") == std::to_string(kKeys) + " keys");
}

}  // namespace
}  // namespace distkv::clustertest
