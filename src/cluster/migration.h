// Slot migration: moving a range of hash slots from one shard to another
// while the cluster serves (the node's side is src/node/migration*.cc).
//
// The shape is Valkey's atomic slot migration. The cluster map lists the
// migration (slots, source, target) under a new epoch; the slots still belong
// to the source. The target's primary pulls them:
//
//   1. clear: it deletes (tombstones) whatever it holds of those slots from an
//      earlier, interrupted attempt, so a restart never keeps a key the source
//      deleted meanwhile;
//   2. snapshot: GET /internal/slots/snapshot on the source's primary answers
//      the live records of the slots as of the source's LSN S (once S is
//      durable there);
//   3. tail: GET /internal/slots/tail?after=L answers the source's log records
//      after L, filtered to the slots, until the target has caught up;
//   4. cutover: POST /internal/slots/pause makes the source refuse requests for
//      the slots (503, Retry-After) and answer its last LSN P; the target reads
//      the tail up to P, makes it durable, and adopts (and pushes) the map
//      where the slots are its own and the migration is gone, one epoch later.
//      The source, learning that map, lifts the pause (requests are forwarded
//      to the new owner from then on) and purges its copies as tombstones.
//
// The target writes what it imports into its own log with its own LSNs, so
// its replicas receive it through their normal stream. Until the cutover the
// imported keys are invisible: the map says the source owns the slots, so the
// target never answers for them, and /purge leaves them alone.
//
// Crashes. The migration lives in the map, which every node saves, so a
// restarted target resumes it (from step 1). A restarted source serves again
// and the target's requests resume where they stopped; a source that crashed
// while paused finds its pause in the file migration_pause and keeps the slots
// paused until the target says whether the cutover happened. A pause that
// lasts too long is settled the same way: the source asks the target
// (POST /internal/slots/cutover-check); the target answers "committed" (the
// source then fetches the new map) or "aborted", and in the second case never
// commits that attempt, so the source may serve the slots again. A slot is
// therefore never served by two shards; while the target is unreachable
// during a cutover, the paused slots are served by none, which is the price
// of that guarantee.
//
// With the etcd coordinator ([coordinator] etcd = [...]) the map lives in
// etcd and the steps that change it are compare-and-puts on its revision
// (Coordinator::ProposeMap): POST /admin/migrate lists the migration there,
// and the cutover commits only if etcd's map is still the one of the pause
// (same epoch, migration listed). A cutover that loses to a failover goes
// back to the tail and tries again; the migration itself survives failovers
// of either side (a new target primary imports from a fresh snapshot, a new
// source primary has a new history, which restarts the import). While the
// compare-and-put is in flight or its outcome unknown, the target answers
// the source's cutover-check with 503, and otherwise answers from etcd's map,
// so a source never unpauses slots that etcd gave away.
#pragma once

#include <cstdint>
#include <string>

#include "src/cluster/config.h"

namespace distkv {

// The source's side of a cutover.
struct MigrationPause {
  bool active = false;
  uint64_t id = 0;
  SlotRange slots;
  std::string target;  // the target shard's name
  uint64_t lsn = 0;    // the source's last LSN when it paused
};

inline constexpr const char* kMigrationPauseFile = "migration_pause";
std::string EncodeMigrationPause(const MigrationPause& pause);
bool DecodeMigrationPause(const std::string& text, MigrationPause* pause);

// The target's side: one import, for one migration of the map.
struct MigrationImport {
  enum class Phase { kClear, kSnapshot, kTail, kCutover, kDone };
  uint64_t id = 0;
  SlotRange slots;
  std::string source;  // the source shard's name
  Phase phase = Phase::kClear;
  uint64_t source_history = 0;  // the source's history id at the snapshot
  uint64_t after_lsn = 0;       // the source's LSN imported up to
  uint64_t pause_lsn = 0;       // during the cutover: the source's LSN when it paused
  // The map's epoch when the pause was asked for. With etcd the cutover
  // commits only on that very map: a failover (of the source, say, whose new
  // primary never paused) or any other change in between sends it back to
  // the tail for another attempt.
  uint64_t pause_epoch = 0;
  // The cutover's compare-and-put is in flight (or its outcome unknown): the
  // source must stay paused, so the attempt cannot be called aborted.
  bool committing = false;
  bool busy = false;  // a request or a batch is in flight
  // Copy and follow the tail, but do not cut over until released
  // (POST /admin/migrate?slots=A-B&hold=0). Not persisted: a restarted
  // target cuts over when it has caught up.
  bool hold = false;
  uint64_t attempt = 0;          // bumped at every cutover attempt and at every restart
  uint64_t aborted_attempt = 0;  // the source gave up waiting for this attempt
  uint64_t keys = 0;             // records imported (puts and deletes)
  uint64_t bytes = 0;            // their key and value bytes
  uint64_t started_ms = 0;
  uint64_t pause_started_ns = 0;
  uint64_t last_pause_us = 0;  // how long the last cutover kept the slots paused
  uint64_t retries = 0;
  std::string last_error;
};

const char* PhaseName(MigrationImport::Phase phase);

// "A-B" or "A" -> range. False when not a range within the slot count.
bool ParseSlotRangeText(const std::string& text, SlotRange* range);

}  // namespace distkv
