// The node's side of slot migration (the mechanism is described in
// src/cluster/migration.h): what /cluster shows of migrations, /purge, what a
// map change starts or ends, and POST /admin/migrate that starts one. The
// source's streams and cutover pause are in migration_source.cc, the
// target's import in migration_target.cc.
//
// Everything runs on the loop.
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "net/uv_handle.h"
#include "src/cluster/shard_map.h"
#include "src/node/migration_internal.h"
#include "src/node/node.h"
#include "src/obs/log.h"
#include "storage/record_format.h"

namespace distkv {

// ---------------------------------------------------------------------------
// Status

void Node::WriteMigrationsJson(JsonWriter* w) const {
  w->Key("migrations");
  w->BeginArray();
  for (const Migration& m : cluster_map_.migrations) {
    w->BeginObject();
    w->Field("id", m.id);
    w->Key("slots");
    migration::WriteRange(w, m.slots);
    w->Field("source", m.source);
    w->Field("target", m.target);
    if (import_ && import_->id == m.id) {
      // This node runs the import: its progress.
      const MigrationImport& i = *import_;
      w->Field("phase", PhaseName(i.phase));
      w->Field("keys_moved", i.keys);
      w->Field("bytes_moved", i.bytes);
      w->Field("source_lsn", i.after_lsn);
      w->Field("elapsed_ms", events_.now_ms() - i.started_ms);
      w->Field("retries", i.retries);
      if (!i.last_error.empty()) w->Field("last_error", i.last_error);
      if (i.hold) w->Field("hold", true);
    }
    if (pause_.active && pause_.id == m.id) w->Field("paused_here", true);
    w->Field("state", m.state);
    w->EndObject();
  }
  w->EndArray();
}

// ---------------------------------------------------------------------------
// /purge

void Node::Purge(std::function<void(uint64_t purged, const storage::Status&)> done) {
  // Keys of slots this shard neither owns nor is importing. Collected first:
  // the store must not change under ForEach.
  const ShardConfig& self = cluster_map_.shards[self_];
  std::vector<std::string> foreign;
  storage::Status s = store_->ForEach([&](std::string_view key, std::string_view, uint64_t) {
    const uint32_t slot = SlotOf(key);
    if (OwnsSlot(self, slot)) return;
    const Migration* m = MigrationOfSlot(cluster_map_, slot);
    if (m && m->target == self.name) return;
    foreign.emplace_back(key);
  });
  if (s.ok()) s = store_->writable();
  if (!s.ok()) {
    done(0, s);
    return;
  }
  uint64_t purged = 0, lsn = 0;
  for (const std::string& key : foreign) {
    // Tombstones, so the shard's replicas drop the keys too.
    storage::Status r = store_->Remove(key, &lsn);
    if (r.ok()) {
      purged++;
    } else if (!r.IsNotFound()) {
      s = r;
      break;
    }
  }
  if (purged == 0) {
    done(0, s);
    return;
  }
  purging_ = true;
  std::weak_ptr<bool> alive = alive_;
  pipeline_->WhenDurable(
      lsn, [this, alive, purged, s, done = std::move(done)](const storage::Status& status) {
        if (alive.expired()) return;
        purging_ = false;
        purged_keys_ += purged;
        Logf(LogLevel::kInfo, "shard %s: purged %" PRIu64 " keys of slots it does not own",
             options_.shard.c_str(), purged);
        done(purged, status.ok() ? s : status);
      });
}

void Node::HandlePurge(net::Responder responder, uint64_t start_ns) {
  if (is_replica_) {
    const ShardConfig& shard = map_.shards()[self_];
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(403, "not_primary",
                                  "this node is a replica of shard " + shard.name +
                                      "; purge on its primary at " + shard.address +
                                      " (replicas follow it)"));
    return;
  }
  if (purging_) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(409, "purge_running", "a purge is running; retry when it ends"));
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  Purge([this, alive, responder, start_ns](uint64_t purged, const storage::Status& s) mutable {
    if (alive.expired()) return;
    if (!s.ok()) {
      Finish(responder, Route::kCluster, start_ns, StorageError(s));
      return;
    }
    net::HttpResponse r;
    r.SetHeader("Content-Type", "application/json");
    JsonWriter w(&r.body);
    w.BeginObject();
    w.Field("shard", options_.shard);
    w.Field("purged", purged);
    w.Field("keys", store_->size());
    w.EndObject();
    r.body += "\n";
    Finish(responder, Route::kCluster, start_ns, std::move(r));
  });
}

// ---------------------------------------------------------------------------
// Map changes

void Node::StartMigrations() {
  std::ifstream in(options_.data_dir + "/" + kMigrationPauseFile);
  std::string line;
  if (std::getline(in, line) && DecodeMigrationPause(line, &pause_)) {
    // A crash during a cutover: the slots stay paused until the target
    // says whether it took them.
    Logf(LogLevel::kWarn,
         "shard %s: slots %u-%u were paused for migration %" PRIu64
         " when this node stopped; they stay paused until %s says whether it took them",
         options_.shard.c_str(), pause_.slots.first, pause_.slots.last, pause_.id,
         pause_.target.c_str());
    CheckPause();
  }
  OnMapChangedForMigrations();
}

void Node::EndMigrationTimers() {
  // At shutdown: the pause stays in its file, the import resumes at start.
  if (pause_timer_) net::CloseAndDelete(pause_timer_);
  if (import_timer_) net::CloseAndDelete(import_timer_);
  pause_timer_ = import_timer_ = nullptr;
  import_.reset();
}

void Node::OnMapChangedForMigrations() {
  auto listed = [this](uint64_t id) {
    for (const Migration& m : cluster_map_.migrations) {
      if (m.id == id) return true;
    }
    return false;
  };
  const ShardConfig& self = cluster_map_.shards[self_];
  if (pause_.active && !listed(pause_.id)) {
    EndPause(("migration finished (epoch " + std::to_string(cluster_map_.epoch) + ")").c_str());
  }
  bool purge = false;
  if (import_ && (!listed(import_->id) || is_replica_)) {
    // Committed (the slots are ours now), rolled back, or this node was
    // deposed (the new primary resumes it).
    const bool committed = OwnsSlot(self, import_->slots.first);
    events_.Add("migration", "migration " + std::to_string(import_->id) + " of slots " +
                                 std::to_string(import_->slots.first) + "-" +
                                 std::to_string(import_->slots.last) +
                                 (committed ? " completed" : " ended here"));
    if (!committed && !is_replica_) purge = true;
    import_.reset();
    if (import_timer_) {
      net::CloseAndDelete(import_timer_);
      import_timer_ = nullptr;
    }
  }
  if (!retired_maps_.empty() && !is_replica_ &&
      migration::SlotsIn(retired_maps_.back().shards()[self_].slots) >
          migration::SlotsIn(self.slots)) {
    purge = true;  // slots moved away: their keys go (also from the replicas)
  }
  if (purge && !purging_) {
    Purge([](uint64_t, const storage::Status& s) {
      if (!s.ok()) Logf(LogLevel::kError, "purge after a migration: %s", s.ToString().c_str());
    });
  }
  if (is_replica_ || import_) return;
  for (const Migration& m : cluster_map_.migrations) {
    if (m.target != self.name) continue;
    auto imp = std::make_shared<MigrationImport>();
    imp->id = m.id;
    imp->slots = m.slots;
    imp->source = m.source;
    imp->started_ms = events_.now_ms();
    import_ = imp;
    Logf(LogLevel::kInfo, "shard %s: importing slots %u-%u from %s (migration %" PRIu64 ")",
         options_.shard.c_str(), m.slots.first, m.slots.last, m.source.c_str(), m.id);
    events_.Add("migration", "importing slots " + std::to_string(m.slots.first) + "-" +
                                 std::to_string(m.slots.last) + " from " + m.source);
    ImportStep();
    break;  // one import at a time
  }
}

// ---------------------------------------------------------------------------
// POST /admin/migrate?slots=A-B: start moving slots to this node's shard.

void Node::HandleMigrate(net::HttpRequest& request, net::Responder responder, uint64_t start_ns) {
  auto answer = [this, start_ns](net::Responder& responder, int status) {
    net::HttpResponse r;
    r.status = status;
    r.SetHeader("Content-Type", "application/json");
    JsonWriter w(&r.body);
    w.BeginObject();
    w.Field("epoch", cluster_map_.epoch);
    WriteMigrationsJson(&w);
    w.Key("completed");
    w.BeginArray();
    // Each one a document written by JsonWriter when its import finished.
    for (const std::string& done : migrations_done_) w.Raw(done);
    w.EndArray();
    w.EndObject();
    r.body += "\n";
    Finish(responder, Route::kCluster, start_ns, std::move(r));
  };
  if (request.method == "GET") {
    answer(responder, 200);
    return;
  }
  if (is_replica_) {
    const ShardConfig& shard = map_.shards()[self_];
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(403, "not_primary",
                                  "migrations into shard " + shard.name +
                                      " start on its primary at " + shard.address));
    return;
  }
  SlotRange slots;
  if (!ParseSlotRangeText(net::QueryValue(request.query, "slots"), &slots)) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(400, "bad_slots", "slots=A-B (0 <= A <= B < 16384) is required"));
    return;
  }
  const std::string hold = net::QueryValue(request.query, "hold");
  for (const Migration& m : cluster_map_.migrations) {
    if (m.target == options_.shard && m.slots.first == slots.first && m.slots.last == slots.last) {
      if (import_ && import_->id == m.id && !hold.empty()) import_->hold = hold == "1";
      answer(responder, 200);  // already running: resuming is watching it
      return;
    }
  }
  if (coordinator_) {
    // The migration is listed in etcd's map (compare-and-put on its
    // revision); this node adopts it from there and starts importing.
    const std::string target = options_.shard;
    std::weak_ptr<bool> alive = alive_;
    coordinator_->ProposeMap(
        [slots, target](const ClusterMap& current, ClusterMap* next, std::string* why) {
          for (const Migration& m : current.migrations) {
            if (m.target == target && m.slots.first == slots.first && m.slots.last == slots.last) {
              return Coordinator::Build::kAlreadyDone;
            }
          }
          return StartedMigrationMap(current, slots, target, next, why)
                     ? Coordinator::Build::kPut
                     : Coordinator::Build::kRefuse;
        },
        [this, alive, answer, responder, start_ns, hold](Coordinator::Outcome outcome,
                                                         const std::string& why) mutable {
          if (alive.expired()) return;
          switch (outcome) {
            case Coordinator::Outcome::kCommitted:
              if (import_ && hold == "1") import_->hold = true;
              answer(responder, 202);
              return;
            case Coordinator::Outcome::kRefused:
              Finish(responder, Route::kCluster, start_ns,
                     net::MakeErrorResponse(409, "cannot_migrate", why));
              return;
            case Coordinator::Outcome::kUnknown:
              Finish(responder, Route::kCluster, start_ns,
                     net::MakeErrorResponse(503, "etcd_unavailable",
                                            why + "; the migration may or may not have started: "
                                                  "run the command again to find out"));
              return;
          }
        });
    return;
  }
  ClusterMap next;
  std::string error;
  if (!StartedMigrationMap(cluster_map_, slots, options_.shard, &next, &error)) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(409, "cannot_migrate", error));
    return;
  }
  if (!AdoptMap(std::move(next), "migrate")) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(500, "cannot_migrate",
                                  "the new cluster map could not be saved; see the node's log"));
    return;
  }
  if (import_ && hold == "1") import_->hold = true;
  PushMap();
  answer(responder, 202);
}

}  // namespace distkv
