// Cursor scans on the node: the public page (GET /kv?...) gathered from the
// shards in map order, and one shard's page (GET /internal/scan) answered
// from the local store. The cursor format and the node-to-node page format
// are in src/api/scan_request.h; the order inside a shard in
// storage/key_index.h.
//
// A page never holds the loop for long: the local store scans a bounded
// number of index slots per call (storage::ScanOptions::max_slots), and the
// other shards' pages are asked for asynchronously, one shard at a time.
//
// Durability. A page is read from the index, which shows staged writes at
// once; like a GET (node.cc, RestsOn), a page is answered only once nothing
// it shows, or leaves out because of a staged delete, can be taken back by a
// crash: it rests on every record staged when it was read. When that batch
// fails the page is read again from what the store kept.
//
// Slot migrations. A shard's page holds only keys of the slots it owns now
// (a target's imported copies before the cutover and a source's leftovers
// before its purge are not its keys). A key whose slot moves during a scan
// is missed if it moves behind the cursor: into a shard already scanned, or
// into the cursor's shard (it may land before the position). The cursor
// carries a fingerprint of which slots were behind, at and ahead of its
// shard; when a page is asked for with a cursor whose fingerprint no longer
// matches the map, slots have moved and the scan starts over from the first
// shard (the answer says so in X-Distkv-Scan-Restarted). Keys may then come
// twice, never not at all.
#include <xxhash.h>

#include <array>
#include <memory>

#include "src/node/node.h"

namespace distkv {

namespace {
// Index slots a shard looks at for one page: at 80% load a few slots per
// key, so a full page of 10,000 keys fits, and a page for a rare prefix
// returns early (short, with a cursor) instead of walking the whole index.
constexpr size_t kScanMaxSlots = 4 * kScanMaxLimit;

// A fingerprint the map changed under a page: never equal to a real one.
constexpr uint64_t kOwnersChanged = 1;

// Which slots shards before `shard`, `shard` itself and shards after it own.
// Never 0 (no cursor) or kOwnersChanged.
uint64_t OwnershipFingerprint(const ShardMap& map, size_t shard) {
  std::array<uint8_t, kSlotCount> side;
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    const size_t owner = map.OwnerOfSlot(slot);
    side[slot] = owner < shard ? 0 : (owner == shard ? 1 : 2);
  }
  const uint64_t h = XXH3_64bits(side.data(), side.size());
  return h <= kOwnersChanged ? h + 2 : h;
}

}  // namespace

struct Node::ScanJob {
  ScanRequest request;
  std::vector<ShardScanEntry> entries;
  net::Responder responder;
  uint64_t start_ns = 0;
  uint64_t epoch = 0;  // the cluster map's when the page began
  bool restarted = false;
};

std::string Node::ScanCursor(const ScanJob& job) const {
  const uint64_t owners = job.epoch == cluster_map_.epoch
                              ? OwnershipFingerprint(map_, job.request.shard)
                              : kOwnersChanged;
  return FormatScanCursor(job.request.shard, job.request.hash, owners);
}

storage::Status Node::LocalScanPage(const ScanRequest& request, size_t limit, ShardScanPage* page) {
  storage::ScanOptions so;
  so.cursor = request.hash;
  so.limit = limit;
  so.prefix = request.prefix;
  so.values = request.values;
  so.max_slots = kScanMaxSlots;
  so.keep = [this](std::string_view key) { return map_.OwnerOfKey(key) == self_; };
  storage::ScanResult result;
  storage::Status s = store_->Scan(so, &result);
  if (!s.ok()) return s;
  page->entries.clear();
  page->entries.reserve(result.entries.size());
  for (auto& e : result.entries) {
    page->entries.push_back(ShardScanEntry{std::move(e.key), std::move(e.value), e.lsn});
  }
  page->next = result.next;
  page->end = result.end;
  return s;
}

void Node::DurableLocalScanPage(const ScanRequest& request, size_t limit, LocalPageDone done) {
  ShardScanPage page;
  storage::Status s = LocalScanPage(request, limit, &page);
  const uint64_t rests_on = RestsOn(/*found=*/false, 0);
  if (!s.ok() || ReadableNow(rests_on)) {
    done(s, std::move(page));
    return;
  }
  pipeline_->WhenReadable(rests_on,
                          [this, request, limit, page = std::move(page),
                           done = std::move(done)](const storage::Status& durable) mutable {
                            if (!durable.ok()) {
                              // Read again before handing the page on: the
                              // order of a call's arguments is unspecified.
                              ShardScanPage again;
                              const storage::Status s = LocalScanPage(request, limit, &again);
                              done(s, std::move(again));
                              return;
                            }
                            done(storage::Status::OK(), std::move(page));
                          });
}

void Node::HandleShardScan(const ScanRequest& request, net::Responder responder,
                           uint64_t start_ns) {
  const ShardConfig& self = map_.shards()[self_];
  if (request.shard_name != self.name) {
    Finish(responder, Route::kScan, start_ns,
           net::MakeErrorResponse(
               421, "misdirected_request",
               "this node serves shard " + self.name + ", not \"" + request.shard_name + "\""));
    return;
  }
  if (net::HttpResponse held; ReadsHeld(&held)) {
    Finish(responder, Route::kScan, start_ns, std::move(held));
    return;
  }
  DurableLocalScanPage(
      request, request.limit,
      [this, responder, start_ns](const storage::Status& s, ShardScanPage page) mutable {
        if (!s.ok()) {
          Finish(responder, Route::kScan, start_ns, StorageError(s));
          return;
        }
        net::HttpResponse r;
        r.headers.push_back(net::Header{"Content-Type", "application/octet-stream"});
        r.body = EncodeShardScanPage(page);
        Finish(responder, Route::kScan, start_ns, std::move(r));
      });
}

void Node::HandleScan(const ScanRequest& request, net::Responder responder, uint64_t start_ns) {
  if (request.shard >= map_.shards().size()) {
    Finish(
        responder, Route::kScan, start_ns,
        net::MakeErrorResponse(400, "bad_cursor",
                               "the cursor names shard " + std::to_string(request.shard) +
                                   " but the cluster has " + std::to_string(map_.shards().size())));
    return;
  }
  auto job = std::make_shared<ScanJob>();
  job->request = request;
  job->responder = std::move(responder);
  job->start_ns = start_ns;
  job->epoch = cluster_map_.epoch;
  if (request.owners != 0 && request.owners != OwnershipFingerprint(map_, request.shard)) {
    job->request.shard = 0;
    job->request.hash = 0;
    job->restarted = true;
  }
  ScanStep(std::move(job));
}

// Asks the cursor's shard for the rest of the page: this node's own store if
// it is that shard's primary, else the shard's primary and, when the primary
// cannot be reached, its replicas. A replica may lag behind, so it answers
// only when its primary cannot: a key written before the scan began must not
// be missed because a stale copy was asked.
void Node::ScanStep(std::shared_ptr<ScanJob> job) {
  const size_t want = job->request.limit - job->entries.size();
  const ShardConfig& shard = map_.shards()[job->request.shard];
  if (job->request.shard == self_ && !is_replica_) {
    if (net::HttpResponse held; ReadsHeld(&held)) {
      Finish(job->responder, Route::kScan, job->start_ns, std::move(held));
      return;
    }
    const ScanRequest request = job->request;  // job moves into the callback
    DurableLocalScanPage(
        request, want,
        [this, job = std::move(job)](const storage::Status& s, ShardScanPage page) mutable {
          if (!s.ok()) {
            Finish(job->responder, Route::kScan, job->start_ns, StorageError(s));
            return;
          }
          ScanPageDone(std::move(job), std::move(page));
        });
    return;
  }
  auto peers = std::make_shared<std::vector<std::string>>();
  peers->push_back(shard.address);
  peers->insert(peers->end(), shard.replicas.begin(), shard.replicas.end());
  ScanAsk(std::move(job), std::move(peers), 0, want);
}

void Node::ScanAsk(std::shared_ptr<ScanJob> job, std::shared_ptr<std::vector<std::string>> peers,
                   size_t next_peer, size_t want) {
  const ShardConfig& shard = map_.shards()[job->request.shard];
  net::OutboundRequest out;
  out.target = ShardScanTarget(job->request, shard.name, want);
  auth_.AddPeerCredentials(&out.headers);  // /internal/scan is for nodes; the client may read
  out.timeout_ms = options_.config.forward_timeout_ms;
  const std::string& peer = (*peers)[next_peer];
  client_->Request(
      peer, std::move(out), [this, job, peers, next_peer, want](net::ClientResult& result) mutable {
        const ShardConfig& shard = map_.shards()[job->request.shard];
        if (result.error != net::ClientError::kNone) {
          if (next_peer + 1 < peers->size()) {
            ScanAsk(std::move(job), std::move(peers), next_peer + 1, want);
            return;
          }
          // Every node of the shard failed: the last one's error, and the
          // cursor to resume from once the shard is back.
          net::HttpResponse r = UnreachableResponse(result, shard.name, (*peers)[next_peer]);
          r.SetHeader("X-Distkv-Cursor", ScanCursor(*job));
          Finish(job->responder, Route::kScan, job->start_ns, std::move(r));
          return;
        }
        ShardScanPage page;
        if (result.response.status != 200 || !DecodeShardScanPage(result.response.body, &page)) {
          net::HttpResponse r =
              result.response.status != 200
                  ? std::move(result.response)
                  : net::MakeErrorResponse(502, "bad_gateway",
                                           "shard " + shard.name + " at " + (*peers)[next_peer] +
                                               " sent a malformed scan page");
          Finish(job->responder, Route::kScan, job->start_ns, std::move(r));
          return;
        }
        ScanPageDone(std::move(job), std::move(page));
      });
}

void Node::ScanPageDone(std::shared_ptr<ScanJob> job, ShardScanPage page) {
  for (auto& e : page.entries) job->entries.push_back(std::move(e));
  ScanRequest& req = job->request;
  if (page.end) {
    req.shard++;
    req.hash = 0;
  } else {
    req.hash = page.next;
  }
  const bool done = req.shard == map_.shards().size();
  // Go on to the next shard within this page while there is room; a shard
  // that returned a short page without ending ran out of its slot budget:
  // answer now rather than hold the page.
  if (!done && job->entries.size() < req.limit && page.end) {
    ScanStep(std::move(job));
    return;
  }
  net::HttpResponse r;
  r.headers.push_back(net::Header{"Content-Type", "application/json"});
  if (job->restarted) r.headers.push_back(net::Header{"X-Distkv-Scan-Restarted", "1"});
  AppendScanJson(&r.body, job->entries, req.values, done ? std::string() : ScanCursor(*job));
  Finish(job->responder, Route::kScan, job->start_ns, std::move(r));
}

}  // namespace distkv
