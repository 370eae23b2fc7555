// Fuzz target: the JSON answers the client library (src/client) and the
// command line built on it decode, and the node's decoder of a peer's batch
// answer (src/api/batch_request.h) — text a node, or anything that answers
// on its port, sends back.
//
// The input's first byte is the number of keys the batch decoders expect
// (0..15); the rest is the body, given to every decoder:
//   - SlotMap::Parse (GET /cluster): an accepted map has shards, every key
//     routes to one of them, AllNodes lists each shard's primary, and a
//     refusal says why;
//   - ParseScanPage (GET /kv): an accepted page has as many values as keys,
//     if any;
//   - ParseBatchResults (_mget/_mput) and DecodeBatchJson: an accepted
//     answer has exactly the expected results with HTTP statuses; a refused
//     one leaves the results alone;
//   - ParseErrorBody, ParseEtag.
// No decoder may throw: they run inside libuv callbacks, where an exception
// ends the process.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "src/api/batch_request.h"
#include "src/client/answers.h"
#include "src/client/slot_map.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "check failed: %s\n", what);
    abort();
  }
}

void CheckMap(const std::string& body) {
  distkv::client::SlotMap map;
  std::string error;
  if (!map.Parse(body, &error)) {
    Check(!error.empty() && map.empty(), "a refused map says why and stays empty");
    return;
  }
  Check(!map.shards().empty(), "an accepted map has shards");
  for (const char* key : {"a", "key1", "user:42", ""}) {
    Check(map.OwnerOfKey(key) < map.shards().size(), "every key routes to a shard of the map");
  }
  const std::vector<std::string> nodes = map.AllNodes();
  Check(nodes.size() >= map.shards().size(), "AllNodes lists every primary");
  for (size_t i = 0; i < map.shards().size(); ++i) {
    Check(nodes[i] == map.shards()[i].primary, "primaries first, in shard order");
  }
}

void CheckScan(const std::string& body) {
  distkv::client::ScanPage page;
  page.cursor = "untouched";
  if (!distkv::client::ParseScanPage(body, &page)) {
    Check(page.cursor == "untouched" && page.keys.empty(), "a refused page changes nothing");
    return;
  }
  Check(page.values.empty() || page.values.size() == page.keys.size(),
        "a page has a value for every key or none");
}

void CheckBatch(const std::string& body, size_t n) {
  std::vector<distkv::client::KeyResult> results(n);
  for (size_t i = 0; i < n; ++i) {
    results[i].key = "k" + std::to_string(i);
    results[i].status = -1;
  }
  if (distkv::client::ParseBatchResults(body, &results)) {
    for (size_t i = 0; i < n; ++i) {
      Check(results[i].key == "k" + std::to_string(i), "the keys stay");
      Check(results[i].status >= 100 && results[i].status <= 599, "each result has a status");
    }
  } else {
    for (const auto& r : results) Check(r.status == -1, "a refused answer changes nothing");
  }
  std::vector<distkv::BatchResult> parts;
  if (distkv::DecodeBatchJson(body, n, &parts)) Check(parts.size() == n, "n results");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t n = data[0] & 15;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  CheckMap(body);
  CheckScan(body);
  CheckBatch(body, n);
  std::string error, message;
  distkv::client::ParseErrorBody(body, &error, &message);
  (void)distkv::client::ParseEtag(body);
  return 0;
}
