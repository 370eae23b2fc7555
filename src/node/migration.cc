// The node's side of slot migration (the mechanism is described in
// src/cluster/migration.h): /purge, the source's streams and cutover pause,
// the target's import, and POST /admin/migrate that starts one.
//
// Everything runs on the loop. The target's import is a small state machine
// driven by the answers to its requests (ImportStep); every callback first
// checks that the import it belongs to is still the current one, since a map
// change, a demotion or a shutdown may have ended it meanwhile.
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "net/uv_handle.h"
#include "src/cluster/shard_map.h"
#include "src/node/node.h"
#include "src/obs/log.h"
#include "storage/record_format.h"

namespace distkv {
namespace {

// How long a source keeps slots paused before it asks the target whether the
// cutover happened (and keeps asking while the target cannot say).
constexpr uint64_t kPauseCheckMs = 2'000;
constexpr uint64_t kImportRetryMs = 500;
// A tail answer carries about this many bytes of matching records, and scans
// at most kTailScanBytes of the log, so one answer never holds the loop long.
constexpr size_t kTailBytes = 1 << 20;
constexpr size_t kTailScanBytes = 8 << 20;
constexpr uint64_t kMigrationRequestTimeoutMs = 60'000;
constexpr const char* kLsnHeader = "X-Distkv-Lsn";
constexpr const char* kHistoryHeader = "X-Distkv-History";
constexpr const char* kCaughtUpHeader = "X-Distkv-Caught-Up";

std::string QueryParam(const net::HttpRequest& request, std::string_view name) {
  std::vector<std::pair<std::string, std::string>> params;
  net::ParseQuery(request.query, &params);
  for (const auto& [n, v] : params) {
    if (n == name) return v;
  }
  return "";
}

bool InRange(SlotRange r, uint32_t slot) { return slot >= r.first && slot <= r.last; }

uint64_t SlotsIn(const std::vector<SlotRange>& ranges) {
  uint64_t n = 0;
  for (const SlotRange& r : ranges) n += r.last - r.first + 1;
  return n;
}

uint64_t HeaderNumber(const net::HttpResponse& r, const char* name, bool* present = nullptr) {
  const std::string* v = r.header(name);
  if (present) *present = v != nullptr;
  return v ? std::strtoull(v->c_str(), nullptr, 10) : 0;
}

void AppendRange(std::string* b, SlotRange r) {
  *b += "[" + std::to_string(r.first) + "," + std::to_string(r.last) + "]";
}

}  // namespace

// ---------------------------------------------------------------------------
// Status

void Node::AppendMigrationsJson(std::string* b) const {
  *b += "\"migrations\":[";
  bool first = true;
  for (const Migration& m : cluster_map_.migrations) {
    *b += first ? "{" : ",{";
    first = false;
    AppendJsonField(b, "id", m.id);
    *b += "\"slots\":";
    AppendRange(b, m.slots);
    *b += ",";
    AppendJsonField(b, "source", m.source);
    AppendJsonField(b, "target", m.target);
    if (import_ && import_->id == m.id) {
      // This node runs the import: its progress.
      const MigrationImport& i = *import_;
      AppendJsonField(b, "phase", PhaseName(i.phase));
      AppendJsonField(b, "keys_moved", i.keys);
      AppendJsonField(b, "bytes_moved", i.bytes);
      AppendJsonField(b, "source_lsn", i.after_lsn);
      AppendJsonField(b, "elapsed_ms", events_.now_ms() - i.started_ms);
      AppendJsonField(b, "retries", i.retries);
      if (!i.last_error.empty()) AppendJsonField(b, "last_error", i.last_error);
      if (i.hold) *b += "\"hold\":true,";
    }
    if (pause_.active && pause_.id == m.id) *b += "\"paused_here\":true,";
    AppendJsonField(b, "state", m.state, false);
    *b += "}";
  }
  *b += "]";
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
    r.body = "{";
    AppendJsonField(&r.body, "shard", options_.shard);
    AppendJsonField(&r.body, "purged", purged);
    AppendJsonField(&r.body, "keys", store_->size(), false);
    r.body += "}\n";
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
      SlotsIn(retired_maps_.back().shards()[self_].slots) > SlotsIn(self.slots)) {
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
// Source side

bool Node::SlotPaused(uint32_t slot, net::HttpResponse* answer) const {
  if (!pause_.active || !InRange(pause_.slots, slot)) return false;
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
  if (!pause_timer_) {
    pause_timer_ = new uv_timer_t;
    uv_timer_init(loop_, pause_timer_);
    pause_timer_->data = this;
  }
  uv_timer_start(
      pause_timer_, [](uv_timer_t* t) { static_cast<Node*>(t->data)->CheckPause(); }, kPauseCheckMs,
      0);
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
    if (!pause_.active) return;
    if (!pause_timer_) {
      pause_timer_ = new uv_timer_t;
      uv_timer_init(loop_, pause_timer_);
      pause_timer_->data = this;
    }
    uv_timer_start(
        pause_timer_, [](uv_timer_t* t) { static_cast<Node*>(t->data)->CheckPause(); },
        kPauseCheckMs, 0);
  };
  if (t < 0) {
    again();
    return;
  }
  const std::string target = cluster_map_.shards[t].address;
  net::OutboundRequest req;
  req.method = "POST";
  req.target = "/internal/slots/cutover-check?id=" + std::to_string(pause_.id);
  req.timeout_ms = kPauseCheckMs;
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
        if (result.response.body.find("\"finished\"") != std::string::npos) {
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
    const uint64_t id = std::strtoull(QueryParam(request, "id").c_str(), nullptr, 10);
    bool listed = false;
    for (const Migration& m : cluster_map_.migrations) listed = listed || m.id == id;
    // Still listed: the cutover has not happened, and the attempt the source
    // waited for never will. Gone: committed or rolled back; either way the
    // source learns which from this node's map.
    if (listed && import_ && import_->id == id) import_->aborted_attempt = import_->attempt;
    const char* state = listed ? "aborted" : "finished";
    net::HttpResponse r;
    r.SetHeader("Content-Type", "application/json");
    r.body = "{";
    AppendJsonField(&r.body, "state", state);
    AppendJsonField(&r.body, "epoch", cluster_map_.epoch, false);
    r.body += "}\n";
    Finish(responder, Route::kCluster, start_ns, std::move(r));
    return;
  }
  if (is_replica_) {
    fail(403, "not_primary",
         "this node is a replica of shard " + options_.shard + "; migrations read its primary");
    return;
  }
  SlotRange slots;
  if (!ParseSlotRangeText(QueryParam(request, "slots"), &slots)) {
    fail(400, "bad_slots", "slots=A-B (0 <= A <= B < 16384) is required");
    return;
  }
  const uint64_t history = store_->history_id();

  if (request.path == "/internal/slots/snapshot") {
    // The live records of the slots as of `lsn`, sent once `lsn` is durable
    // here (a staged record could still be undone).
    auto body = std::make_shared<std::string>();
    const uint64_t lsn = store_->last_lsn();
    storage::Status s =
        store_->ForEach([&](std::string_view key, std::string_view value, uint64_t at) {
          if (!InRange(slots, SlotOf(key))) return;
          storage::Record rec;
          rec.lsn = at;
          rec.type = storage::RecordType::kPut;
          rec.key = key;
          rec.value = value;
          storage::EncodeRecord(rec, body.get());
        });
    if (!s.ok()) {
      Finish(responder, Route::kCluster, start_ns, StorageError(s));
      return;
    }
    std::weak_ptr<bool> alive = alive_;
    pipeline_->WhenDurable(lsn, [this, alive, body, lsn, history, responder,
                                 start_ns](const storage::Status& status) mutable {
      if (alive.expired()) return;
      if (!status.ok()) {
        Finish(responder, Route::kCluster, start_ns, StorageError(status));
        return;
      }
      net::HttpResponse r;
      r.SetHeader("Content-Type", "application/octet-stream");
      r.SetHeader(kLsnHeader, std::to_string(lsn));
      r.SetHeader(kHistoryHeader, std::to_string(history));
      r.body = std::move(*body);
      Finish(responder, Route::kCluster, start_ns, std::move(r));
    });
    return;
  }

  if (request.path == "/internal/slots/tail") {
    const uint64_t after = std::strtoull(QueryParam(request, "after").c_str(), nullptr, 10);
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
    while (body.size() < kTailBytes && scanned < kTailScanBytes) {
      chunk.clear();
      s = cursor->Next(&chunk, kTailBytes);
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
        if (rec.type != storage::RecordType::kGap && InRange(slots, SlotOf(rec.key))) {
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
    r.SetHeader(kLsnHeader, std::to_string(cursor->position()));
    r.SetHeader(kHistoryHeader, std::to_string(history));
    r.SetHeader(kCaughtUpHeader, caught_up ? "1" : "0");
    r.body = std::move(body);
    Finish(responder, Route::kCluster, start_ns, std::move(r));
    return;
  }

  // /internal/slots/pause: the target is ready to cut over.
  const uint64_t id = std::strtoull(QueryParam(request, "id").c_str(), nullptr, 10);
  const Migration* m = nullptr;
  for (const Migration& x : cluster_map_.migrations) {
    if (x.id == id) m = &x;
  }
  if (!m || m->source != options_.shard || m->slots.first != slots.first ||
      m->slots.last != slots.last) {
    fail(409, "no_such_migration",
         "the cluster map of epoch " + std::to_string(cluster_map_.epoch) + " lists no migration " +
             std::to_string(id) + " of slots " + QueryParam(request, "slots") + " from this shard");
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
        r.SetHeader(kLsnHeader, std::to_string(lsn));
        r.SetHeader(kHistoryHeader, std::to_string(history));
        Finish(responder, Route::kCluster, start_ns, std::move(r));
      });
}

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
      kImportRetryMs, 0);
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
    if (InRange(imp.slots, SlotOf(rec.key)) && rec.type != storage::RecordType::kGap) {
      uint64_t lsn = 0;
      s = rec.type == storage::RecordType::kPut ? store_->Put(rec.key, rec.value, &lsn)
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
    req.timeout_ms = kMigrationRequestTimeoutMs;
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
        if (InRange(imp.slots, SlotOf(key))) stale.emplace_back(key);
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
            import_->source_history = HeaderNumber(result.response, kHistoryHeader);
            import_->after_lsn = HeaderNumber(result.response, kLsnHeader);
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
              import_->pause_lsn = std::max<uint64_t>(1, HeaderNumber(result.response, kLsnHeader));
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
            if (HeaderNumber(result.response, kHistoryHeader) != i.source_history) {
              // The source's log is another history now (it lost records in
              // a crash, or a replica took over): start over.
              i.phase = MigrationImport::Phase::kClear;
              i.pause_lsn = 0;
              ImportRetry("the source's history changed");
              return;
            }
            const uint64_t position = HeaderNumber(result.response, kLsnHeader);
            const bool caught_up = result.response.header(kCaughtUpHeader) &&
                                   *result.response.header(kCaughtUpHeader) == "1";
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
  auto commit = [this, weak] {
    if (weak.expired() || import_ != weak.lock()) return;
    MigrationImport& i = *import_;
    if (i.aborted_attempt == i.attempt) {
      // The source stopped waiting and serves the slots again: import what
      // it wrote since, then pause again.
      i.phase = MigrationImport::Phase::kTail;
      i.pause_lsn = 0;
      ImportRetry("the source ended the pause before the cutover");
      return;
    }
    ClusterMap next;
    std::string error;
    if (!FinishedMigrationMap(cluster_map_, i.id, true, &next, &error)) {
      ImportRetry(error);
      return;
    }
    const uint64_t paused_us = (uv_hrtime() - i.pause_started_ns) / 1000;
    const uint64_t id = i.id, keys = i.keys, bytes = i.bytes;
    std::string done = "{";
    AppendJsonField(&done, "id", id);
    done += "\"slots\":";
    AppendRange(&done, i.slots);
    done += ",";
    AppendJsonField(&done, "source", i.source);
    AppendJsonField(&done, "keys_moved", keys);
    AppendJsonField(&done, "bytes_moved", bytes);
    AppendJsonField(&done, "elapsed_ms", events_.now_ms() - i.started_ms);
    AppendJsonField(&done, "retries", i.retries);
    AppendJsonField(&done, "pause_us", paused_us, false);
    done += "}";
    const SlotRange slots = i.slots;
    const std::string source = i.source;
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
    migrations_done_.push_back(std::move(done));
    if (migrations_done_.size() > 16) migrations_done_.pop_front();
    progress_.Finish("migration", "slots " + std::to_string(slots.first) + "-" +
                                      std::to_string(slots.last) + " from " + source + ": " +
                                      std::to_string(keys) + " records");
    Logf(LogLevel::kInfo,
         "shard %s: migration %" PRIu64 " done: slots %u-%u from %s, %" PRIu64 " records, %" PRIu64
         " bytes; the slots were paused %" PRIu64 " us; epoch %" PRIu64,
         options_.shard.c_str(), id, slots.first, slots.last, source.c_str(), keys, bytes,
         paused_us, cluster_map_.epoch);
    events_.Add("migration", "took slots " + std::to_string(slots.first) + "-" +
                                 std::to_string(slots.last) + " from " + source + " (" +
                                 std::to_string(keys) + " records, paused " +
                                 std::to_string(paused_us / 1000) + " ms)");
  };
  const uint64_t lsn = store_->last_lsn();
  const int needed = options_.config.min_acks;
  imp.busy = true;
  pipeline_->WhenDurable(lsn, [this, weak, lsn, needed, commit](const storage::Status& s) {
    if (weak.expired() || import_ != weak.lock()) return;
    if (!s.ok()) {
      ImportRetry("storing imported records: " + s.ToString());
      return;
    }
    if (needed == 0 || !primary_ || lsn == 0) {
      commit();
      return;
    }
    primary_->WaitForAcks(lsn, needed, options_.config.ack_timeout_ms,
                          [this, weak, commit](bool acked) {
                            if (weak.expired() || import_ != weak.lock()) return;
                            if (!acked) {
                              import_->phase = MigrationImport::Phase::kCutover;
                              ImportRetry("replicas did not acknowledge the imported records");
                              return;
                            }
                            commit();
                          });
  });
}

// ---------------------------------------------------------------------------
// POST /admin/migrate?slots=A-B: start moving slots to this node's shard.

void Node::HandleMigrate(net::HttpRequest& request, net::Responder responder, uint64_t start_ns) {
  auto answer = [this, &responder, start_ns](int status) {
    net::HttpResponse r;
    r.status = status;
    r.SetHeader("Content-Type", "application/json");
    r.body = "{";
    AppendJsonField(&r.body, "epoch", cluster_map_.epoch);
    AppendMigrationsJson(&r.body);
    r.body += ",\"completed\":[";
    for (size_t k = 0; k < migrations_done_.size(); ++k) {
      r.body += (k ? "," : "") + migrations_done_[k];
    }
    r.body += "]}\n";
    Finish(responder, Route::kCluster, start_ns, std::move(r));
  };
  if (request.method == "GET") {
    answer(200);
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
  if (!ParseSlotRangeText(QueryParam(request, "slots"), &slots)) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(400, "bad_slots", "slots=A-B (0 <= A <= B < 16384) is required"));
    return;
  }
  const std::string hold = QueryParam(request, "hold");
  for (const Migration& m : cluster_map_.migrations) {
    if (m.target == options_.shard && m.slots.first == slots.first && m.slots.last == slots.last) {
      if (import_ && import_->id == m.id && !hold.empty()) import_->hold = hold == "1";
      answer(200);  // already running: resuming is watching it
      return;
    }
  }
  if (coordinator_) {
    Finish(responder, Route::kCluster, start_ns,
           net::MakeErrorResponse(501, "not_implemented",
                                  "slot migration with [coordinator] etcd is not supported yet; "
                                  "see README"));
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
  answer(202);
}

}  // namespace distkv
