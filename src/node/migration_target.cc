// The target's side of a slot migration (src/cluster/migration.h): the
// import, a small state machine (ImportStep) driven by the answers to its
// requests to the source — clear, snapshot, tail, cutover. Every callback
// first checks that the import it belongs to is still the current one, since
// a map change, a demotion or a shutdown may have ended it meanwhile.
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
// Target side

void Node::ImportRetry(const std::string& why) {
  MigrationImport* imp = import_.get();
  if (!imp) return;
  imp->busy = false;
  imp->retries++;
  if (why != imp->last_error) {
    Logf(LogLevel::kWarn, "shard %s: migration %" PRIu64 " (%s): %s; retrying",
         options_.shard.c_str(), imp->id, PhaseName(imp->phase), why.c_str());
  }
  imp->last_error = why;
  if (!import_timer_) {
    import_timer_ = new uv_timer_t;
    uv_timer_init(loop_, import_timer_);
    import_timer_->data = this;
  }
  uv_timer_start(
      import_timer_, [](uv_timer_t* t) { static_cast<Node*>(t->data)->ImportStep(); },
      migration::kImportRetryMs, 0);
}

void Node::ImportApply(std::shared_ptr<std::string> body, size_t offset,
                       std::function<void()> next) {
  MigrationImport& imp = *import_;
  std::weak_ptr<MigrationImport> weak = import_;
  // Continues once what is staged is durable (the store hands out LSNs only
  // from a reserved range, renewed as batches complete).
  auto resume = [this, weak, body, next](size_t at) {
    pipeline_->WhenDurable(store_->last_lsn(),
                           [this, weak, body, at, next](const storage::Status& s) {
                             if (weak.expired() || import_ != weak.lock()) return;
                             if (!s.ok()) {
                               ImportRetry("storing imported records: " + s.ToString());
                               return;
                             }
                             ImportApply(body, at, next);
                           });
  };
  std::string_view records = std::string_view(*body).substr(offset);
  if (offset == 0) {
    // A key's ETag (its LSN) must not go back when it moves: clients and
    // checkers order a key's writes by it. So this shard's log first jumps
    // past every source LSN in the batch (a gap record, which replicas
    // follow), and the imported records and later writes get higher LSNs.
    uint64_t highest = 0;
    for (std::string_view rest = records; !rest.empty();) {
      storage::Record rec;
      size_t used = 0;
      if (!storage::DecodeRecord(rest, &rec, &used).ok()) break;
      highest = std::max(highest, rec.lsn);
      rest.remove_prefix(used);
    }
    if (highest > store_->last_lsn()) {
      storage::Record gap;
      gap.lsn = highest;
      gap.type = storage::RecordType::kGap;
      const std::string value = storage::EncodeGapValue(store_->last_lsn(), store_->history_id());
      gap.value = value;
      storage::Status s = store_->Apply(gap);
      if (!s.ok()) {
        ImportRetry("cannot raise the LSN past the source's: " + s.ToString());
        return;
      }
      // The records follow once the jump is durable; offset 0 again finds
      // nothing higher.
      resume(0);
      return;
    }
  }
  size_t at = offset;
  bool staged = false;
  while (!records.empty()) {
    storage::Record rec;
    size_t used = 0;
    storage::Status s = storage::DecodeRecord(records, &rec, &used);
    if (!s.ok()) {
      ImportRetry("a damaged record from the source: " + s.ToString());
      return;
    }
    if (migration::InRange(imp.slots, SlotOf(rec.key)) && rec.type != storage::RecordType::kGap) {
      uint64_t lsn = 0;
      // A put keeps its expiry (snapshot and tail records carry it).
      s = rec.type == storage::RecordType::kPut
              ? store_->Put(rec.key, rec.value, &lsn, rec.expires_ms)
              : store_->Remove(rec.key, &lsn);
      if (s.IsBusy() && staged) {
        resume(at);
        return;
      }
      if (!s.ok() && !s.IsNotFound()) {
        ImportRetry("cannot store an imported record: " + s.ToString());
        return;
      }
      if (s.ok()) {
        staged = true;
        imp.keys++;
        imp.bytes += rec.key.size() + rec.value.size();
      }
      progress_.Update("migration", imp.keys, 0, "records");
    }
    records.remove_prefix(used);
    at += used;
  }
  if (!staged) {
    next();
    return;
  }
  pipeline_->WhenDurable(store_->last_lsn(), [this, weak, next](const storage::Status& s) {
    if (weak.expired() || import_ != weak.lock()) return;
    if (!s.ok()) {
      ImportRetry("storing imported records: " + s.ToString());
      return;
    }
    next();
  });
}

void Node::ImportStep() {
  if (!import_ || import_->busy || is_replica_) return;
  MigrationImport& imp = *import_;
  imp.busy = true;
  if (imp.committing) {
    // A cutover whose compare-and-put had no answer: settle that first.
    ImportCommitThroughEtcd();
    return;
  }
  std::weak_ptr<MigrationImport> weak = import_;
  auto current = [this, weak] { return !weak.expired() && import_ == weak.lock(); };
  const int source = FindShard(cluster_map_, imp.source);
  if (source < 0) {
    ImportRetry("the map has no shard " + imp.source);
    return;
  }
  const std::string source_address = cluster_map_.shards[source].address;
  const std::string slots = std::to_string(imp.slots.first) + "-" + std::to_string(imp.slots.last);
  auto request = [&](const std::string& method, const std::string& target) {
    net::OutboundRequest req;
    req.method = method;
    req.target = target;
    req.timeout_ms = migration::kMigrationRequestTimeoutMs;
    auth_.AddPeerCredentials(&req.headers);
    return req;
  };

  switch (imp.phase) {
    case MigrationImport::Phase::kClear: {
      // Whatever an earlier attempt imported goes: the source may have
      // deleted some of it since.
      imp.attempt++;
      std::vector<std::string> stale;
      store_->ForEach([&](std::string_view key, std::string_view, uint64_t) {
        if (migration::InRange(imp.slots, SlotOf(key))) stale.emplace_back(key);
      });
      uint64_t lsn = 0;
      for (const std::string& key : stale) store_->Remove(key, &lsn);
      imp.keys = imp.bytes = 0;
      auto next = [this, current] {
        if (!current()) return;
        import_->phase = MigrationImport::Phase::kSnapshot;
        import_->busy = false;
        ImportStep();
      };
      if (stale.empty()) {
        next();
      } else {
        pipeline_->WhenDurable(lsn, [next](const storage::Status&) { next(); });
      }
      return;
    }
    case MigrationImport::Phase::kSnapshot: {
      control_client_->Request(
          source_address, request("GET", "/internal/slots/snapshot?slots=" + slots),
          [this, current](net::ClientResult& result) {
            if (!current()) return;
            if (result.error != net::ClientError::kNone || result.response.status != 200) {
              ImportRetry("snapshot: " + (result.error != net::ClientError::kNone
                                              ? result.detail
                                              : result.response.body));
              return;
            }
            uint64_t history = 0;
            uint64_t lsn = 0;
            if (!migration::SourcePosition(result.response, &history, &lsn)) {
              ImportRetry(std::string("snapshot: ") + migration::kBadPosition);
              return;
            }
            import_->source_history = history;
            import_->after_lsn = lsn;
            ImportApply(std::make_shared<std::string>(std::move(result.response.body)), 0,
                        [this, current] {
                          if (!current()) return;
                          import_->phase = MigrationImport::Phase::kTail;
                          import_->busy = false;
                          import_->last_error.clear();
                          ImportStep();
                        });
          });
      return;
    }
    case MigrationImport::Phase::kTail:
    case MigrationImport::Phase::kCutover: {
      if (imp.phase == MigrationImport::Phase::kCutover && imp.pause_lsn == 0) {
        // Ask the source to pause the slots; it answers the LSN to reach.
        imp.pause_started_ns = uv_hrtime();
        imp.pause_epoch = cluster_map_.epoch;
        control_client_->Request(
            source_address,
            request("POST",
                    "/internal/slots/pause?id=" + std::to_string(imp.id) + "&slots=" + slots),
            [this, current](net::ClientResult& result) {
              if (!current()) return;
              if (result.error != net::ClientError::kNone || result.response.status != 200) {
                import_->phase = MigrationImport::Phase::kTail;
                ImportRetry("pause: " + (result.error != net::ClientError::kNone
                                             ? result.detail
                                             : result.response.body));
                return;
              }
              uint64_t history = 0;
              uint64_t lsn = 0;
              if (!migration::SourcePosition(result.response, &history, &lsn)) {
                import_->phase = MigrationImport::Phase::kTail;
                ImportRetry(std::string("pause: ") + migration::kBadPosition);
                return;
              }
              import_->pause_lsn = std::max<uint64_t>(1, lsn);
              import_->busy = false;
              ImportStep();
            });
        return;
      }
      control_client_->Request(
          source_address,
          request("GET", "/internal/slots/tail?slots=" + slots +
                             "&after=" + std::to_string(imp.after_lsn)),
          [this, current](net::ClientResult& result) {
            if (!current()) return;
            MigrationImport& i = *import_;
            if (result.error == net::ClientError::kNone && result.response.status == 410) {
              i.phase = MigrationImport::Phase::kClear;  // start over from a snapshot
              ImportRetry("the source's log moved on: " + result.response.body);
              return;
            }
            if (result.error != net::ClientError::kNone || result.response.status != 200) {
              ImportRetry("tail: " + (result.error != net::ClientError::kNone
                                          ? result.detail
                                          : result.response.body));
              return;
            }
            uint64_t history = 0;
            uint64_t position = 0;
            if (!migration::SourcePosition(result.response, &history, &position)) {
              ImportRetry(std::string("tail: ") + migration::kBadPosition);
              return;
            }
            if (history != i.source_history) {
              // The source's log is another history now (it lost records in
              // a crash, or a replica took over): start over.
              i.phase = MigrationImport::Phase::kClear;
              i.pause_lsn = 0;
              ImportRetry("the source's history changed");
              return;
            }
            const bool caught_up = result.response.header(migration::kCaughtUpHeader) &&
                                   *result.response.header(migration::kCaughtUpHeader) == "1";
            ImportApply(std::make_shared<std::string>(std::move(result.response.body)), 0,
                        [this, current, position, caught_up] {
                          if (!current()) return;
                          MigrationImport& j = *import_;
                          j.after_lsn = std::max(j.after_lsn, position);
                          j.busy = false;
                          j.last_error.clear();
                          if (j.phase == MigrationImport::Phase::kTail) {
                            if (caught_up && j.hold) {
                              ImportRetry("holding before the cutover, as asked");
                              return;
                            }
                            if (caught_up) {
                              j.phase = MigrationImport::Phase::kCutover;
                              j.pause_lsn = 0;
                              j.attempt++;
                            }
                            ImportStep();
                            return;
                          }
                          if (j.after_lsn >= j.pause_lsn) {
                            ImportCutover();
                          } else {
                            ImportStep();
                          }
                        });
          });
      return;
    }
    case MigrationImport::Phase::kDone:
      return;
  }
}

void Node::ImportCutover() {
  // Everything the source had when it paused is durable here. Replicas that
  // must hold writes hold these too before the slots change hands.
  MigrationImport& imp = *import_;
  std::weak_ptr<MigrationImport> weak = import_;
  const uint64_t lsn = store_->last_lsn();
  const int needed = options_.config.min_acks;
  imp.busy = true;
  pipeline_->WhenDurable(lsn, [this, weak, lsn, needed](const storage::Status& s) {
    if (weak.expired() || import_ != weak.lock()) return;
    if (!s.ok()) {
      ImportRetry("storing imported records: " + s.ToString());
      return;
    }
    if (needed == 0 || !primary_ || lsn == 0) {
      ImportCommit();
      return;
    }
    primary_->WaitForAcks(lsn, needed, options_.config.ack_timeout_ms, [this, weak](bool acked) {
      if (weak.expired() || import_ != weak.lock()) return;
      if (!acked) {
        import_->phase = MigrationImport::Phase::kCutover;
        ImportRetry("replicas did not acknowledge the imported records");
        return;
      }
      ImportCommit();
    });
  });
}

void Node::ImportCommit() {
  MigrationImport& i = *import_;
  if (i.aborted_attempt == i.attempt) {
    // The source stopped waiting and serves the slots again: import what
    // it wrote since, then pause again.
    i.phase = MigrationImport::Phase::kTail;
    i.pause_lsn = 0;
    ImportRetry("the source ended the pause before the cutover");
    return;
  }
  if (coordinator_) {
    ImportCommitThroughEtcd();
    return;
  }
  ClusterMap next;
  std::string error;
  if (!FinishedMigrationMap(cluster_map_, i.id, true, &next, &error)) {
    ImportRetry(error);
    return;
  }
  const MigrationImport finished = i;
  i.phase = MigrationImport::Phase::kDone;
  if (!AdoptMap(std::move(next), "migration")) {
    if (!import_) return;
    import_->phase = MigrationImport::Phase::kTail;
    import_->pause_lsn = 0;
    ImportRetry("the new cluster map could not be saved");
    return;
  }
  // import_ is gone now (the map no longer lists the migration).
  PushMap();
  RecordMigrationDone(finished);
}

void Node::ImportCommitThroughEtcd() {
  // The slots change hands when etcd's map does: compare-and-put of the map
  // without the migration, only on the map of the pause.
  MigrationImport& i = *import_;
  i.committing = true;
  const MigrationImport finished = i;
  const std::string self = options_.shard;
  std::weak_ptr<MigrationImport> weak = import_;
  std::weak_ptr<bool> alive = alive_;
  coordinator_->ProposeMap(
      [finished, self](const ClusterMap& current, ClusterMap* next, std::string* why) {
        bool listed = false;
        for (const Migration& m : current.migrations) listed = listed || m.id == finished.id;
        if (!listed) {
          const int t = FindShard(current, self);
          if (t >= 0 && OwnsSlot(current.shards[t], finished.slots.first)) {
            return Coordinator::Build::kAlreadyDone;  // an earlier answer was lost
          }
          *why = "etcd's map of epoch " + std::to_string(current.epoch) +
                 " no longer lists the migration";
          return Coordinator::Build::kRefuse;
        }
        if (current.epoch != finished.pause_epoch) {
          *why = "etcd's map moved from epoch " + std::to_string(finished.pause_epoch) + " to " +
                 std::to_string(current.epoch) + " during the cutover; pausing again";
          return Coordinator::Build::kRefuse;
        }
        return FinishedMigrationMap(current, finished.id, true, next, why)
                   ? Coordinator::Build::kPut
                   : Coordinator::Build::kRefuse;
      },
      [this, alive, weak, finished](Coordinator::Outcome outcome, const std::string& why) {
        if (alive.expired()) return;
        if (outcome == Coordinator::Outcome::kCommitted) {
          // Adopting etcd's map ended the import here.
          RecordMigrationDone(finished);
          return;
        }
        if (weak.expired() || import_ != weak.lock()) return;
        if (outcome == Coordinator::Outcome::kUnknown) {
          // Made or not: ask etcd again (ImportStep) until it says; the
          // source stays paused meanwhile.
          ImportRetry(why);
          return;
        }
        import_->committing = false;
        import_->phase = MigrationImport::Phase::kTail;
        import_->pause_lsn = 0;
        ImportRetry(why);
      });
}

void Node::RecordMigrationDone(const MigrationImport& i) {
  const uint64_t paused_us = (uv_hrtime() - i.pause_started_ns) / 1000;
  std::string done;
  JsonWriter w(&done);
  w.BeginObject();
  w.Field("id", i.id);
  w.Key("slots");
  migration::WriteRange(&w, i.slots);
  w.Field("source", i.source);
  w.Field("keys_moved", i.keys);
  w.Field("bytes_moved", i.bytes);
  w.Field("elapsed_ms", events_.now_ms() - i.started_ms);
  w.Field("retries", i.retries);
  w.Field("pause_us", paused_us);
  w.EndObject();
  migrations_done_.push_back(std::move(done));
  if (migrations_done_.size() > 16) migrations_done_.pop_front();
  const std::string range = std::to_string(i.slots.first) + "-" + std::to_string(i.slots.last);
  progress_.Finish("migration", "slots " + range + " from " + i.source + ": " +
                                    std::to_string(i.keys) + " records");
  Logf(LogLevel::kInfo,
       "shard %s: migration %" PRIu64 " done: slots %s from %s, %" PRIu64 " records, %" PRIu64
       " bytes; the slots were paused %" PRIu64 " us; epoch %" PRIu64,
       options_.shard.c_str(), i.id, range.c_str(), i.source.c_str(), i.keys, i.bytes, paused_us,
       cluster_map_.epoch);
  events_.Add("migration", "took slots " + range + " from " + i.source + " (" +
                               std::to_string(i.keys) + " records, paused " +
                               std::to_string(paused_us / 1000) + " ms)");
}

}  // namespace distkv
