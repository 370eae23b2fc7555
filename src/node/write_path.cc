// The write path: a PUT or DELETE of a key this node's shard owns, as one
// operation with named stages.
//
//   HandleLocalWrite  checks the conditions (If-Match, If-None-Match: *, a
//                     delete of an absent key, a read-only store) and stages
//                     the record in the store, in one loop turn so that no
//                     other write slips in between. The record has its LSN and
//                     reads see it; nothing is answered yet. A refusal for
//                     what the store holds is a read: RefuseWrite sends it
//                     once what it saw is durable.
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
// The stages after staging are AwaitWrite's, shared with an _mput's atomic
// group (batch.cc): a LocalWrite carries what they need (the LSN, the acks
// to wait for, the role generation, and `done`, which answers); each stage's
// callback holds it by value and hands it on, so the path reads top to
// bottom in this file.
#include <algorithm>

#include "src/node/node.h"

namespace distkv {

struct Node::LocalWrite {
  uint64_t lsn;
  int acks_needed;           // replica acknowledgements to wait for (0: none)
  uint64_t role_generation;  // the node's role when the write was staged
  // Called once: done(nullptr) to acknowledge, done(&error) to answer error.
  WriteDone done;
};

namespace {

net::HttpResponse WriteAnswer(int ok_status, uint64_t lsn) {
  net::HttpResponse r;
  r.status = ok_status;
  if (ok_status != 204) AppendEtagLine(lsn, &r.header_lines);
  return r;
}

}  // namespace

bool Node::MayWrite(net::HttpResponse* refusal, std::string_view request_target) {
  if (is_replica_) {
    const ShardConfig& shard = map_.shards()[self_];
    *refusal = net::MakeErrorResponse(403, "read_only_replica",
                                      "this node is a read-only replica of shard " + shard.name +
                                          "; send writes to its primary at " + shard.address);
    refusal->SetHeader("Location", NodeUrl(options_.config, shard.address, request_target));
    return false;
  }
  std::string fenced;
  if (WritesFenced(&fenced)) {
    *refusal = net::MakeErrorResponse(503, "lease_unconfirmed", fenced);
    return false;
  }
  return true;
}

bool Node::StoreReadOnly(net::HttpResponse* refusal) const {
  const storage::Status w = store_->writable();
  if (w.ok()) return false;
  *refusal = net::MakeErrorResponse(
      503, "read_only",
      "this shard accepts no writes until its node is restarted: " + std::string(w.message()));
  return true;
}

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
  // A refusal rests on what it saw (node.cc, RestsOn).
  const uint64_t rests_on = RestsOn(exists, current);
  if (kv.if_none_match_star && exists) {
    RefuseWrite(route, start_ns, rests_on, std::move(responder),
                net::MakeErrorResponse(
                    412, "precondition_failed",
                    "If-None-Match: * but the key exists (ETag " + MakeEtag(current) + ")"));
    return;
  }
  if (kv.has_if_match &&
      (!exists || (kv.if_match != "*" && kv.if_match != std::to_string(current)))) {
    RefuseWrite(
        route, start_ns, rests_on, std::move(responder),
        net::MakeErrorResponse(
            412, "precondition_failed",
            exists ? "If-Match \"" + kv.if_match + "\" but the current ETag is " + MakeEtag(current)
                   : "If-Match \"" + kv.if_match + "\" but the key does not exist"));
    return;
  }
  if (kv.op == KvOp::kDelete && !exists) {
    RefuseWrite(route, start_ns, rests_on, std::move(responder),
                net::MakeErrorResponse(404, "not_found", "no value for this key"));
    return;
  }
  if (net::HttpResponse refusal; StoreReadOnly(&refusal)) {
    Finish(responder, route, start_ns, std::move(refusal));
    return;
  }
  uint64_t lsn = 0;
  // The primary turns a TTL into a time: the record carries it, so replicas
  // and restarts agree on when the key expires.
  const uint64_t expires_ms = kv.ttl_s ? NowMs() + kv.ttl_s * 1000 : 0;
  storage::Status s = kv.op == KvOp::kPut ? store_->Put(kv.key, kv.value, &lsn, expires_ms)
                                          : store_->Remove(kv.key, &lsn);
  if (!s.ok()) {
    Finish(responder, route, start_ns, StorageError(s));
    return;
  }
  const int ok_status = kv.op == KvOp::kDelete ? 204 : (exists ? 200 : 201);
  // ?ack=replica asks for one replica; [replication] min_acks for N always.
  const int needed = std::max(options_.config.min_acks, kv.ack_replica ? 1 : 0);
  auto answer = [this, responder = std::move(responder), route, start_ns, lsn,
                 ok_status](net::HttpResponse* refusal) mutable {
    if (!refusal) {
      Finish(responder, route, start_ns, WriteAnswer(ok_status, lsn));
      return;
    }
    // A replica timeout leaves the write in place: its ETag is news.
    if (refusal->status == 504) refusal->SetHeader("ETag", MakeEtag(lsn));
    Finish(responder, route, start_ns, std::move(*refusal));
  };
  static_assert(WriteDone::kFitsInline<decltype(answer)>,
                "a PUT's answer must not allocate: widen Node::WriteDone");
  AwaitWrite(lsn, needed, std::move(answer));
}

void Node::AwaitWrite(uint64_t lsn, int needed, WriteDone&& done) {
  auto durable = [this, write = LocalWrite{lsn, needed, role_generation_, std::move(done)}](
                     const storage::Status& status) mutable {
    OnWriteDurable(std::move(write), status);
  };
  static_assert(CommitPipeline::Done::kFitsInline<decltype(durable)>,
                "a write's wait must not allocate: widen CommitPipeline::kDoneCapacity");
  pipeline_->WhenDurable(lsn, std::move(durable), CommitPipeline::Waiting::kClientWrite);
}

// A write refused for what the store holds (a failed condition, a delete of
// an absent key) is a read of that state, so it waits like a GET (node.cc,
// ReadableNow) until what it saw is durable. If that batch failed, the
// state it saw may be gone: the refusal is not sent, the batch's error is.
void Node::RefuseWrite(Route route, uint64_t start_ns, uint64_t rests_on, net::Responder responder,
                       net::HttpResponse refusal) {
  if (ReadableNow(rests_on)) {
    Finish(responder, route, start_ns, std::move(refusal));
    return;
  }
  pipeline_->WhenReadable(
      rests_on, [this, route, start_ns, responder,
                 refusal = std::move(refusal)](const storage::Status& s) mutable {
        Finish(responder, route, start_ns, s.ok() ? std::move(refusal) : StorageError(s));
      });
}

void Node::OnWriteDurable(LocalWrite write, const storage::Status& status) {
  net::HttpResponse r;
  if (!status.ok()) {
    r = StorageError(status);
    write.done(&r);
    return;
  }
  std::string fenced;
  if (WritesFenced(&fenced)) {
    failover_.writes_fenced++;
    r = net::MakeErrorResponse(503, "lease_unconfirmed",
                               fenced + "; this write may or may not have been applied");
    write.done(&r);
    return;
  }
  if (write.role_generation != role_generation_) {
    // Deposed while the write was in flight: it is durable here, but the
    // new primary may never have received it.
    failover_.writes_fenced++;
    r = net::MakeErrorResponse(
        503, "deposed",
        "this node stopped being the primary of shard " + options_.shard +
            " while the write was in flight; it may or may not have been applied; "
            "retry against the primary at " +
            map_.shards()[self_].address);
    write.done(&r);
    return;
  }
  if (write.acks_needed == 0) {
    write.done(nullptr);
    return;
  }
  if (!primary_) {
    r = net::MakeErrorResponse(503, "deposed", "this node is no longer the primary");
    write.done(&r);
    return;
  }
  const uint64_t lsn = write.lsn;
  const int needed = write.acks_needed;
  // The ack tracker's callbacks are copyable; the write (move-only) is shared.
  primary_->WaitForAcks(lsn, needed, options_.config.ack_timeout_ms,
                        [this, write = std::make_shared<LocalWrite>(std::move(write))](bool acked) {
                          OnWriteAcked(std::move(*write), acked);
                        });
}

void Node::OnWriteAcked(LocalWrite write, bool acked) {
  if (acked) {
    write.done(nullptr);
    return;
  }
  net::HttpResponse r = net::MakeErrorResponse(
      504, "replica_timeout",
      "the write is durable on the primary (LSN " + std::to_string(write.lsn) +
          ") and stays written, but fewer than " + std::to_string(write.acks_needed) +
          " replica(s) acknowledged it within " + std::to_string(options_.config.ack_timeout_ms) +
          " ms; replicas receive it when they catch up");
  write.done(&r);
}

}  // namespace distkv
