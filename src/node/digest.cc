// GET /internal/digest: the key count and an order-independent hash of every
// (key, value) pair — the sum of XXH3(key length, key, value) over the live
// keys — so two nodes can be compared without shipping their data.
//
// It reads every value: seconds at millions of keys. Done in one go on the
// loop, it would stall every other request meanwhile (replication, forwarded
// requests, health checks time out). So it runs in slices:
//
//   1. the live keys are copied from the index (a walk in memory, no reads);
//   2. each loop turn reads and hashes up to kSliceKeys values (or
//      kSliceBytes), then yields: the next slice runs from a uv_idle handle,
//      which runs once per loop turn, after the loop has polled for I/O, so
//      other requests are served between slices. (Not a 0 ms timer: libuv
//      1.44 runs a timer re-armed from its own callback again in the same
//      turn, which would read the whole store without polling once.)
//   3. the last slice answers.
//
// /stats shows it as "progress": {"digest": {"done": keys read, "total": ..}}
// while it runs.
//
// A key deleted while the digest runs is skipped; a key written meanwhile is
// hashed with whatever value it has when its slice reads it. So a digest is
// exact for a node that takes no writes while it runs — which is how it is
// used: compare a primary and its replica once both are quiet.
#include <xxhash.h>

#include <cinttypes>
#include <cstdio>

#include "net/uv_handle.h"
#include "src/node/node.h"

namespace distkv {

namespace {

constexpr size_t kSliceKeys = 1024;
constexpr size_t kSliceBytes = 4 << 20;

}  // namespace

struct Node::DigestJob {
  Node* node;
  std::weak_ptr<bool> alive;
  net::Responder responder;
  uint64_t start_ns;
  std::vector<std::string> keys;
  size_t next = 0;
  uint64_t sum = 0;
  uint64_t count = 0;
  uv_idle_t* idle = nullptr;
};

void Node::HandleDigest(net::Responder responder, uint64_t start_ns) {
  auto* job = new DigestJob{this, alive_, std::move(responder), start_ns, {}};
  job->keys.reserve(store_->size());
  store_->ForEachKey([job](std::string_view key, uint64_t) { job->keys.emplace_back(key); });
  progress_.Update("digest", 0, job->keys.size(), "keys");
  job->idle = new uv_idle_t;
  uv_idle_init(loop_, job->idle);
  job->idle->data = job;
  DigestSlice(job);
}

void Node::DigestSlice(DigestJob* job) {
  std::string value, buf;
  size_t keys = 0, bytes = 0;
  storage::Status failed;
  while (job->next < job->keys.size() && keys < kSliceKeys && bytes < kSliceBytes) {
    const std::string& key = job->keys[job->next++];
    storage::Status s = store_->Get(key, &value);
    if (s.IsNotFound()) continue;  // deleted since the keys were copied
    if (!s.ok()) {
      failed = s;
      break;
    }
    buf.clear();
    const uint32_t klen = static_cast<uint32_t>(key.size());
    buf.append(reinterpret_cast<const char*>(&klen), sizeof klen);
    buf.append(key);
    buf.append(value);
    job->sum += XXH3_64bits(buf.data(), buf.size());
    job->count++;
    keys++;
    bytes += key.size() + value.size();
  }
  if (failed.ok() && job->next < job->keys.size()) {
    progress_.Update("digest", job->next, job->keys.size(), "keys");
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(job->idle))) {
      uv_idle_start(job->idle, [](uv_idle_t* idle) {
        auto* j = static_cast<DigestJob*>(idle->data);
        if (j->alive.expired()) {  // the node is gone: drop the request
          net::CloseAndDelete(j->idle);
          delete j;
          return;
        }
        j->node->DigestSlice(j);
      });
    }
    return;
  }
  net::HttpResponse r;
  if (!failed.ok()) {
    progress_.Finish("digest", "failed: " + failed.ToString());
    r = StorageError(failed);
  } else {
    progress_.Finish("digest", std::to_string(job->count) + " keys");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, job->sum);
    JsonWriter w(&r.body);
    w.BeginObject();
    w.Field("keys", job->count);
    w.Field("last_lsn", store_->last_lsn());
    w.Field("digest", std::string_view(hex));
    w.EndObject();
    r.body += "\n";
    r.SetHeader("Content-Type", "application/json");
  }
  Finish(job->responder, Route::kDigest, job->start_ns, std::move(r));
  net::CloseAndDelete(job->idle);
  delete job;
}

}  // namespace distkv
