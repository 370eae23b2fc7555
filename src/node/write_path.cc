// The write path: a PUT or DELETE of a key this node's shard owns, as one
// operation with named stages.
//
//   HandleLocalWrite  checks the conditions (If-Match, If-None-Match: *, a
//                     delete of an absent key, a read-only store) and stages
//                     the record in the store, in one loop turn so that no
//                     other write slips in between. The record has its LSN and
//                     reads see it; nothing is answered yet.
//   OnWriteDurable    the commit pipeline (src/shard) wrote and fdatasynced
//                     the batch holding the record off the loop (group commit)
//                     and calls back on the loop. A failed sync, a lease that
//                     is no longer confirmed, or a role that changed while the
//                     write was in flight answers 5xx here. With no replica
//                     acknowledgement asked for, the write is answered.
//   OnWriteAcked      with [replication] min_acks or ?ack=replica, the
//                     primary's ack tracker (src/replication) calls back once
//                     enough replicas hold the record durably, or when
//                     ack_timeout_ms passes (504: durable here, not yet there).
//
// A LocalWrite carries what the later stages need from the first (the
// responder, the LSN, the status to answer); each stage's callback holds it
// by value and hands it on, so the path reads top to bottom in this file.
#include <algorithm>

#include "src/node/node.h"

namespace distkv {

struct Node::LocalWrite {
  net::Responder responder;
  Route route;
  uint64_t start_ns;
  uint64_t lsn;
  int ok_status;             // 201 created, 200 replaced, 204 deleted
  int acks_needed;           // replica acknowledgements to wait for (0: none)
  uint64_t role_generation;  // the node's role when the write was staged
};

void Node::HandleLocalWrite(KvRequest& kv, net::Responder responder, uint64_t start_ns) {
  const Route route = kv.op == KvOp::kPut ? Route::kKvPut : Route::kKvDelete;
  uint64_t current = 0;
  storage::Status found = store_->Lookup(kv.key, &current);
  if (!found.ok() && !found.IsNotFound()) {
    Finish(responder, route, start_ns, StorageError(found));
    return;
  }
  const bool exists = found.ok();
  // Conditions are checked and the write staged in one loop turn, so no other
  // write can slip in between.
  if (kv.if_none_match_star && exists) {
    Finish(responder, route, start_ns,
           net::MakeErrorResponse(
               412, "precondition_failed",
               "If-None-Match: * but the key exists (ETag " + MakeEtag(current) + ")"));
    return;
  }
  if (kv.has_if_match &&
      (!exists || (kv.if_match != "*" && kv.if_match != std::to_string(current)))) {
    Finish(
        responder, route, start_ns,
        net::MakeErrorResponse(
            412, "precondition_failed",
            exists ? "If-Match \"" + kv.if_match + "\" but the current ETag is " + MakeEtag(current)
                   : "If-Match \"" + kv.if_match + "\" but the key does not exist"));
    return;
  }
  if (kv.op == KvOp::kDelete && !exists) {
    Finish(responder, route, start_ns,
           net::MakeErrorResponse(404, "not_found", "no value for this key"));
    return;
  }
  if (const storage::Status w = store_->writable(); !w.ok()) {
    Finish(responder, route, start_ns,
           net::MakeErrorResponse(503, "read_only",
                                  "this shard accepts no writes until its node is restarted: " +
                                      std::string(w.message())));
    return;
  }
  uint64_t lsn = 0;
  storage::Status s =
      kv.op == KvOp::kPut ? store_->Put(kv.key, kv.value, &lsn) : store_->Remove(kv.key, &lsn);
  if (!s.ok()) {
    Finish(responder, route, start_ns, StorageError(s));
    return;
  }
  const int ok_status = kv.op == KvOp::kDelete ? 204 : (exists ? 200 : 201);
  // ?ack=replica asks for one replica; [replication] min_acks for N always.
  const int needed = std::max(options_.config.min_acks, kv.ack_replica ? 1 : 0);
  pipeline_->WhenDurable(
      lsn, [this, write = LocalWrite{std::move(responder), route, start_ns, lsn, ok_status, needed,
                                     role_generation_}](const storage::Status& status) mutable {
        OnWriteDurable(std::move(write), status);
      });
}

void Node::OnWriteDurable(LocalWrite write, const storage::Status& status) {
  if (!status.ok()) {
    Finish(write.responder, write.route, write.start_ns, StorageError(status));
    return;
  }
  std::string fenced;
  if (WritesFenced(&fenced)) {
    failover_.writes_fenced++;
    Finish(write.responder, write.route, write.start_ns,
           net::MakeErrorResponse(503, "lease_unconfirmed",
                                  fenced + "; this write may or may not have been applied"));
    return;
  }
  if (write.role_generation != role_generation_) {
    // Deposed while the write was in flight: it is durable here, but the
    // new primary may never have received it.
    failover_.writes_fenced++;
    Finish(write.responder, write.route, write.start_ns,
           net::MakeErrorResponse(
               503, "deposed",
               "this node stopped being the primary of shard " + options_.shard +
                   " while the write was in flight; it may or may not have been applied; "
                   "retry against the primary at " +
                   map_.shards()[self_].address));
    return;
  }
  if (write.acks_needed == 0) {
    Finish(write.responder, write.route, write.start_ns, WriteAnswer(write));
    return;
  }
  if (!primary_) {
    Finish(write.responder, write.route, write.start_ns,
           net::MakeErrorResponse(503, "deposed", "this node is no longer the primary"));
    return;
  }
  const uint64_t lsn = write.lsn;
  const int needed = write.acks_needed;
  primary_->WaitForAcks(lsn, needed, options_.config.ack_timeout_ms,
                        [this, write = std::move(write)](bool acked) mutable {
                          OnWriteAcked(std::move(write), acked);
                        });
}

void Node::OnWriteAcked(LocalWrite write, bool acked) {
  if (acked) {
    Finish(write.responder, write.route, write.start_ns, WriteAnswer(write));
    return;
  }
  net::HttpResponse r = net::MakeErrorResponse(
      504, "replica_timeout",
      "the write is durable on the primary (LSN " + std::to_string(write.lsn) +
          ") and stays written, but fewer than " + std::to_string(write.acks_needed) +
          " replica(s) acknowledged it within " + std::to_string(options_.config.ack_timeout_ms) +
          " ms; replicas receive it when they catch up");
  r.SetHeader("ETag", MakeEtag(write.lsn));
  Finish(write.responder, write.route, write.start_ns, std::move(r));
}

net::HttpResponse Node::WriteAnswer(const LocalWrite& write) {
  net::HttpResponse r;
  r.status = write.ok_status;
  if (write.ok_status != 204) {
    r.headers.push_back(net::Header{"ETag", MakeEtag(write.lsn)});  // fresh: no search
  }
  return r;
}

}  // namespace distkv
