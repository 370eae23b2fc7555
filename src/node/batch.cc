// Batches on the node: POST /kv/_mget and /kv/_mput (formats in
// src/api/batch_request.h). The items are split by owning shard; this node's
// own part is done here, every other part is one POST to the owner's primary
// (an _mget part falls back to the owner's replicas), all in parallel, with
// the hop header so the owner does not forward again. The answer is 200 with
// one status per item, in request order, whatever failed.
//
// This shard's part of an _mput is staged as one atomic group
// (Store::PutAtomic): after a crash all of it or none of it is there. Parts
// on different shards are independent: one may fail while another succeeds,
// and the statuses say which.
#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "src/node/node.h"

namespace distkv {

struct Node::BatchJob {
  bool is_put = false;
  std::vector<BatchItem> items;
  std::vector<BatchResult> results;
  size_t pending = 0;
  net::Responder responder;
  uint64_t start_ns = 0;
};

namespace {

// Each item of the part gets the error a single request would have: its
// status, code and message (the message tells a write that may or may not
// be stored from one that was not).
void FailPart(std::vector<BatchResult>* results, const std::vector<size_t>& part,
              const net::HttpResponse& e) {
  const nlohmann::json j = nlohmann::json::parse(e.body, nullptr, false);
  auto field = [&j](const char* name, const char* otherwise) {
    return j.is_object() && j.contains(name) && j[name].is_string() ? j[name].get<std::string>()
                                                                    : std::string(otherwise);
  };
  const std::string error = field("error", "error");
  const std::string message = field("message", "");
  for (size_t i : part) {
    (*results)[i] = BatchResult{};
    (*results)[i].status = e.status;
    (*results)[i].error = error;
    (*results)[i].message = message;
  }
}

}  // namespace

void Node::HandleBatch(Endpoint endpoint, net::HttpRequest& request, net::Responder responder,
                       uint64_t start_ns) {
  auto job = std::make_shared<BatchJob>();
  job->is_put = endpoint == Endpoint::kMput;
  job->responder = std::move(responder);
  job->start_ns = start_ns;
  net::HttpResponse error;
  const std::string* type = request.header("Content-Type");
  const bool parsed = job->is_put ? ParseMputBody(request.body, type, key_limits_.max_key_bytes,
                                                  key_limits_.max_value_bytes, &job->items, &error)
                                  : ParseMgetBody(request.body, type, key_limits_.max_key_bytes,
                                                  &job->items, &error);
  if (!parsed) {
    Finish(job->responder, Route::kBatch, start_ns, std::move(error));
    return;
  }
  job->results.resize(job->items.size());
  std::vector<std::vector<size_t>> parts(map_.shards().size());
  for (size_t i = 0; i < job->items.size(); ++i)
    parts[map_.OwnerOfKey(job->items[i].key)].push_back(i);
  const bool hop = request.header(kHopHeader) != nullptr;
  for (const auto& part : parts) job->pending += !part.empty();
  job->pending++;  // held until every part has started, so none finishes the job early
  for (size_t shard = 0; shard < parts.size(); ++shard) {
    if (parts[shard].empty()) continue;
    if (shard == self_) {
      BatchLocal(job, parts[shard]);
    } else if (hop) {
      // The sender thinks we own these keys; forwarding again could loop.
      FailPart(&job->results, parts[shard],
               net::MakeErrorResponse(421, "misdirected_request",
                                      "the forwarding node took this node for the owner"));
      BatchPartDone(job);
    } else {
      BatchRemote(job, shard, parts[shard], 0);
    }
  }
  BatchPartDone(job);
}

void Node::BatchLocal(const std::shared_ptr<BatchJob>& job, std::vector<size_t> part) {
  // Keys of slots paused for a migration's cutover get the 503 a single
  // request would; the rest go on.
  std::vector<size_t> open;
  for (size_t i : part) {
    if (net::HttpResponse paused; SlotPaused(SlotOf(job->items[i].key), &paused)) {
      FailPart(&job->results, {i}, paused);
    } else {
      open.push_back(i);
    }
  }
  part = std::move(open);
  if (part.empty()) {
    BatchPartDone(job);
    return;
  }
  if (net::HttpResponse held; !job->is_put && ReadsHeld(&held)) {
    FailPart(&job->results, part, held);
    BatchPartDone(job);
    return;
  }
  if (!job->is_put) {
    // As a GET (node.cc, ReadableNow): the part is answered once what it
    // read is durable; if that batch failed, it is read again.
    uint64_t rests_on = 0;
    for (size_t i : part) {
      BatchResult& r = job->results[i];
      r = BatchResult{};  // read again after a failed batch: nothing of the first read stays
      storage::Status s = store_->Get(job->items[i].key, &r.value, &r.lsn);
      if (s.ok()) {
        r.status = 200;
        r.has_value = true;
        rests_on = std::max(rests_on, RestsOn(true, r.lsn));
      } else if (s.IsNotFound()) {
        r.status = 404;
        r.error = "not_found";
        rests_on = std::max(rests_on, RestsOn(false, 0));
      } else {
        FailPart(&job->results, {i}, StorageError(s));
      }
    }
    if (ReadableNow(rests_on)) {
      BatchPartDone(job);
      return;
    }
    pipeline_->WhenReadable(rests_on, [this, job, part](const storage::Status& s) {
      if (s.ok()) {
        BatchPartDone(job);
      } else {
        BatchLocal(job, part);
      }
    });
    return;
  }
  net::HttpResponse refusal;
  if (!MayWrite(&refusal, "/kv/_mput") || StoreReadOnly(&refusal)) {
    FailPart(&job->results, part, refusal);
    BatchPartDone(job);
    return;
  }
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  pairs.reserve(part.size());
  for (size_t i : part) {
    uint64_t current = 0;
    job->results[i].status = store_->Lookup(job->items[i].key, &current).ok() ? 200 : 201;
    pairs.emplace_back(job->items[i].key, job->items[i].value);
  }
  std::vector<uint64_t> lsns;
  storage::Status s = store_->PutAtomic(pairs, &lsns);
  if (!s.ok()) {
    net::HttpResponse e = StorageError(s);
    FailPart(&job->results, part, e);
    BatchPartDone(job);
    return;
  }
  for (size_t n = 0; n < part.size(); ++n) job->results[part[n]].lsn = lsns[n];
  // Acknowledged as a single PUT would be: durable, by a primary still in
  // office, with [replication] min_acks replicas.
  AwaitWrite(lsns.back(), options_.config.min_acks, [this, job, part](net::HttpResponse* refusal) {
    if (refusal) FailPart(&job->results, part, *refusal);
    BatchPartDone(job);
  });
}

void Node::BatchRemote(const std::shared_ptr<BatchJob>& job, size_t shard, std::vector<size_t> part,
                       size_t next_peer) {
  const ShardConfig& owner = map_.shards()[shard];
  // Writes go to the primary only; reads may fall back to the replicas.
  const size_t peers = job->is_put ? 1 : 1 + owner.replicas.size();
  if (next_peer >= peers) {  // the map changed meanwhile and lists fewer replicas
    FailPart(&job->results, part,
             net::MakeErrorResponse(503, "unavailable",
                                    "the shard's map changed while this part was sent"));
    BatchPartDone(job);
    return;
  }
  const std::string peer = next_peer == 0 ? owner.address : owner.replicas[next_peer - 1];
  net::OutboundRequest out;
  out.method = "POST";
  out.target = job->is_put ? "/kv/_mput" : "/kv/_mget";
  if (job->is_put) {
    out.body = EncodeMputBody(job->items, part);
    out.headers.push_back({"Content-Type", "application/x-ndjson"});
  } else {
    out.body = EncodeMgetBody(job->items, part);
    out.headers.push_back({"Content-Type", "application/json"});
  }
  out.headers.push_back({std::string(kHopHeader), map_.shards()[self_].name});
  // The client was allowed this much here; the owner checks the same role.
  auth_.AddPeerCredentials(&out.headers, job->is_put ? Role::kWrite : Role::kRead);
  out.timeout_ms = options_.config.forward_timeout_ms;
  // The map may change before the answer comes: the callback keeps copies.
  client_->Request(peer, std::move(out),
                   [this, job, shard, part = std::move(part), next_peer, peers, peer,
                    owner_name = owner.name](net::ClientResult& result) mutable {
                     if (result.error != net::ClientError::kNone) {
                       if (next_peer + 1 < peers && shard < map_.shards().size()) {
                         BatchRemote(job, shard, std::move(part), next_peer + 1);
                         return;
                       }
                       net::HttpResponse e = UnreachableResponse(result, owner_name, peer);
                       FailPart(&job->results, part, e);
                       BatchPartDone(job);
                       return;
                     }
                     std::vector<BatchResult> got;
                     if (result.response.status == 200 &&
                         DecodeBatchJson(result.response.body, part.size(), &got)) {
                       for (size_t n = 0; n < part.size(); ++n)
                         job->results[part[n]] = std::move(got[n]);
                     } else if (result.response.status != 200) {
                       FailPart(&job->results, part, result.response);
                     } else {
                       FailPart(&job->results, part,
                                net::MakeErrorResponse(502, "bad_gateway",
                                                       "shard " + owner_name + " at " + peer +
                                                           " sent a malformed batch answer"));
                     }
                     BatchPartDone(job);
                   });
}

void Node::BatchPartDone(const std::shared_ptr<BatchJob>& job) {
  if (--job->pending > 0) return;
  net::HttpResponse r;
  r.headers.push_back(net::Header{"Content-Type", "application/json"});
  AppendBatchJson(&r.body, job->items, job->results);
  Finish(job->responder, Route::kBatch, job->start_ns, std::move(r));
}

}  // namespace distkv
