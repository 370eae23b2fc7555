// The source's side of a slot migration (src/cluster/migration.h): the
// snapshot and tail answers of /internal/slots/* and the cutover pause, which
// is saved to disk so that a source that crashed while paused stays paused
// until the target says whether the cutover happened.
//
// Everything runs on the loop; one answer scans a bounded slice of the log.
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "net/uv_handle.h"
#include "src/cluster/shard_map.h"
#include "src/node/migration_internal.h"
#include "src/node/node.h"
#include "src/obs/log.h"
#include "storage/number.h"
#include "storage/record_format.h"

namespace distkv {

// ---------------------------------------------------------------------------
// Source side

bool Node::SlotPaused(uint32_t slot, net::HttpResponse* answer) const {
  if (!pause_.active || !migration::InRange(pause_.slots, slot)) return false;
  *answer =
      net::MakeErrorResponse(503, "migrating",
                             "slot " + std::to_string(slot) + " is moving to shard " +
                                 pause_.target + " and paused for its cutover; retry in a moment");
  answer->SetHeader("Retry-After", "1");
  return true;
}

void Node::PauseFor(uint64_t id, SlotRange slots, const std::string& target, uint64_t lsn) {
  pause_.active = true;
  pause_.id = id;
  pause_.slots = slots;
  pause_.target = target;
  pause_.lsn = lsn;
  std::string error;
  if (!WriteFileAtomically(options_.data_dir, kMigrationPauseFile,
                           EncodeMigrationPause(pause_) + "\n", &error)) {
    Logf(LogLevel::kError, "cannot save the migration pause: %s", error.c_str());
  }
  ArmPauseCheck();
}

// CheckPause runs kPauseCheckMs from now (again).
void Node::ArmPauseCheck() {
  if (!pause_timer_) {
    pause_timer_ = new uv_timer_t;
    uv_timer_init(loop_, pause_timer_);
    pause_timer_->data = this;
  }
  uv_timer_start(
      pause_timer_, [](uv_timer_t* t) { static_cast<Node*>(t->data)->CheckPause(); },
      migration::kPauseCheckMs, 0);
}

void Node::EndPause(const char* why) {
  if (!pause_.active) return;
  Logf(LogLevel::kInfo, "shard %s: slots %u-%u no longer paused: %s", options_.shard.c_str(),
       pause_.slots.first, pause_.slots.last, why);
  pause_.active = false;
  std::remove((options_.data_dir + "/" + kMigrationPauseFile).c_str());
  if (pause_timer_) {
    net::CloseAndDelete(pause_timer_);
    pause_timer_ = nullptr;
  }
}

void Node::CheckPause() {
  if (!pause_.active) return;
  const int t = FindShard(cluster_map_, pause_.target);
  auto again = [this] {
    if (pause_.active) ArmPauseCheck();
  };
  if (t < 0) {
    again();
    return;
  }
  const std::string target = cluster_map_.shards[t].address;
  net::OutboundRequest req;
  req.method = "POST";
  req.target = "/internal/slots/cutover-check?id=" + std::to_string(pause_.id);
  req.timeout_ms = migration::kPauseCheckMs;
  auth_.AddPeerCredentials(&req.headers);
  std::weak_ptr<bool> alive = alive_;
  const uint64_t id = pause_.id;
  control_client_->Request(
      target, std::move(req), [this, alive, id, target, again](net::ClientResult& result) {
        if (alive.expired() || !pause_.active || pause_.id != id) return;
        if (result.error != net::ClientError::kNone || result.response.status != 200) {
          Logf(LogLevel::kWarn,
               "shard %s: cannot ask %s whether it took slots %u-%u (%s); they stay paused",
               options_.shard.c_str(), target.c_str(), pause_.slots.first, pause_.slots.last,
               result.error != net::ClientError::kNone ? result.detail.c_str()
                                                       : result.response.body.c_str());
          again();
          return;
        }
        const nlohmann::json answer =
            nlohmann::json::parse(result.response.body, nullptr, /*allow_exceptions=*/false);
        if (answer.is_object() && answer.value("state", "") == "finished") {
          FetchMap(target);  // adopting it ends the pause
          again();
          return;
        }
        EndPause(("the target " + target + " abandoned that cutover").c_str());
      });
}

void Node::HandleSlots(net::HttpRequest& request, net::Responder responder, uint64_t start_ns) {
  auto fail = [&](int status, const char* code, const std::string& message) {
    Finish(responder, Route::kCluster, start_ns, net::MakeErrorResponse(status, code, message));
  };
  if (request.path == "/internal/slots/cutover-check") {
    // Target side: the source gave up waiting for a cutover.
    uint64_t id = 0;
    if (!storage::ParseUint(net::QueryValue(request.query, "id"), 10, &id)) {
      fail(400, "bad_id", "id=<migration id> is required");
      return;
    }
    // Still listed: the cutover has not happened, and the attempt the source
    // waited for never will. Gone: committed or rolled back; either way the
    // source learns which from this node's map.
    auto settle = [this, id, responder, start_ns](const ClusterMap& map) mutable {
      bool listed = false;
      for (const Migration& m : map.migrations) listed = listed || m.id == id;
      if (import_ && import_->id == id && import_->committing) {
        Finish(responder, Route::kCluster, start_ns,
               net::MakeErrorResponse(503, "committing",
                                      "the cutover is being committed to etcd; ask again"));
        return;
      }
      if (listed && import_ && import_->id == id) import_->aborted_attempt = import_->attempt;
      net::HttpResponse r;
      r.SetHeader("Content-Type", "application/json");
      JsonWriter w(&r.body);
      w.BeginObject();
      w.Field("state", listed ? "aborted" : "finished");
      w.Field("epoch", map.epoch);
      w.EndObject();
      r.body += "\n";
      Finish(responder, Route::kCluster, start_ns, std::move(r));
    };
    if (!coordinator_) {
      settle(cluster_map_);
      return;
    }
    // With etcd, its map is the truth: this node's copy may be a tick behind
    // a cutover it committed before it restarted.
    std::weak_ptr<bool> alive = alive_;
    coordinator_->ReadMap(
        [this, alive, settle, responder, start_ns](bool ok, const ClusterMap& map) mutable {
          if (alive.expired()) return;
          if (!ok) {
            Finish(responder, Route::kCluster, start_ns,
                   net::MakeErrorResponse(503, "etcd_unavailable",
                                          "cannot read the cluster map from etcd; ask again"));
            return;
          }
          settle(map);
        });
    return;
  }
  if (is_replica_) {
    fail(403, "not_primary",
         "this node is a replica of shard " + options_.shard + "; migrations read its primary");
    return;
  }
  SlotRange slots;
  if (!ParseSlotRangeText(net::QueryValue(request.query, "slots"), &slots)) {
    fail(400, "bad_slots", "slots=A-B (0 <= A <= B < 16384) is required");
    return;
  }
  const uint64_t history = store_->history_id();

  if (request.path == "/internal/slots/snapshot") {
    // The live records of the slots as of `lsn` (storage/snapshot.h), sent
    // once `lsn` is durable here (a staged record could still be undone).
    std::shared_ptr<storage::SnapshotCursor> snapshot;
    {
      std::unique_ptr<storage::SnapshotCursor> cursor;
      storage::Status s = store_->NewSnapshot(
          [&](std::string_view key) { return migration::InRange(slots, SlotOf(key)); }, &cursor);
      if (!s.ok()) {
        Finish(responder, Route::kCluster, start_ns, StorageError(s));
        return;
      }
      snapshot = std::move(cursor);
    }
    const uint64_t lsn = snapshot->lsn();
    std::weak_ptr<bool> alive = alive_;
    pipeline_->WhenDurable(lsn, [this, alive, snapshot, lsn, history, responder,
                                 start_ns](const storage::Status& status) mutable {
      if (alive.expired()) return;
      std::string body;
      storage::Status s = status;
      for (bool done = false; s.ok() && !done;) s = snapshot->Next(&body, 1 << 20, &done);
      if (!s.ok()) {
        Finish(responder, Route::kCluster, start_ns, StorageError(s));
        return;
      }
      net::HttpResponse r;
      r.SetHeader("Content-Type", "application/octet-stream");
      r.SetHeader(migration::kLsnHeader, std::to_string(lsn));
      r.SetHeader(migration::kHistoryHeader, std::to_string(history));
      r.body = std::move(body);
      Finish(responder, Route::kCluster, start_ns, std::move(r));
    });
    return;
  }

  if (request.path == "/internal/slots/tail") {
    uint64_t after = 0;
    if (!storage::ParseUint(net::QueryValue(request.query, "after"), 10, &after)) {
      fail(400, "bad_after", "after=<LSN> is required");
      return;
    }
    std::unique_ptr<storage::LogCursor> cursor;
    storage::Status s = store_->NewLogCursor(after, &cursor);
    if (s.IsNotFound()) {
      fail(410, "log_gone",
           "the log no longer holds LSN " + std::to_string(after + 1) + "; start from a snapshot");
      return;
    }
    if (!s.ok()) {
      Finish(responder, Route::kCluster, start_ns, StorageError(s));
      return;
    }
    std::string body, chunk;
    size_t scanned = 0;
    bool caught_up = false;
    // A fresh cursor skips the records up to `after` a slice at a time,
    // returning nothing meanwhile: keep calling while it has not reached the
    // durable LSN (position() does not move while it skips), or a request
    // would never get past them.
    int skipping = 0;
    while (body.size() < migration::kTailBytes && scanned < migration::kTailScanBytes) {
      chunk.clear();
      s = cursor->Next(&chunk, migration::kTailBytes);
      if (!s.ok()) break;
      if (chunk.empty()) {
        caught_up = cursor->position() >= store_->durable_lsn();
        if (caught_up || ++skipping > 4096) break;
        continue;
      }
      scanned += chunk.size();
      std::string_view rest = chunk;
      while (!rest.empty()) {
        storage::Record rec;
        size_t used = 0;
        s = storage::DecodeRecord(rest, &rec, &used);
        if (!s.ok()) break;
        if (rec.type != storage::RecordType::kGap && migration::InRange(slots, SlotOf(rec.key))) {
          body.append(rest.data(), used);
        }
        rest.remove_prefix(used);
      }
      if (!s.ok()) break;
    }
    if (!s.ok()) {
      fail(s.IsNotFound() ? 410 : 500, s.IsNotFound() ? "log_gone" : "storage_error", s.ToString());
      return;
    }
    net::HttpResponse r;
    r.SetHeader("Content-Type", "application/octet-stream");
    r.SetHeader(migration::kLsnHeader, std::to_string(cursor->position()));
    r.SetHeader(migration::kHistoryHeader, std::to_string(history));
    r.SetHeader(migration::kCaughtUpHeader, caught_up ? "1" : "0");
    r.body = std::move(body);
    Finish(responder, Route::kCluster, start_ns, std::move(r));
    return;
  }

  // /internal/slots/pause: the target is ready to cut over.
  uint64_t id = 0;
  if (!storage::ParseUint(net::QueryValue(request.query, "id"), 10, &id)) {
    fail(400, "bad_id", "id=<migration id> is required");
    return;
  }
  const Migration* m = nullptr;
  for (const Migration& x : cluster_map_.migrations) {
    if (x.id == id) m = &x;
  }
  if (!m || m->source != options_.shard || m->slots.first != slots.first ||
      m->slots.last != slots.last) {
    fail(409, "no_such_migration",
         "the cluster map of epoch " + std::to_string(cluster_map_.epoch) + " lists no migration " +
             std::to_string(id) + " of slots " + net::QueryValue(request.query, "slots") +
             " from this shard");
    return;
  }
  // Writes already staged to the slots finish; new ones are refused from now
  // on. The answer names the LSN the target must reach.
  const uint64_t lsn = store_->last_lsn();
  PauseFor(id, slots, m->target, lsn);
  std::weak_ptr<bool> alive = alive_;
  pipeline_->WhenDurable(
      lsn, [this, alive, lsn, history, responder, start_ns](const storage::Status& status) mutable {
        if (alive.expired()) return;
        if (!status.ok()) {
          EndPause("the log could not be made durable");
          Finish(responder, Route::kCluster, start_ns, StorageError(status));
          return;
        }
        net::HttpResponse r;
        r.SetHeader(migration::kLsnHeader, std::to_string(lsn));
        r.SetHeader(migration::kHistoryHeader, std::to_string(history));
        Finish(responder, Route::kCluster, start_ns, std::move(r));
      });
}

}  // namespace distkv
