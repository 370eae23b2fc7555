// What the node's migration files (migration.cc, migration_source.cc,
// migration_target.cc) share: the headers of the source's answers, the
// timings both sides agree on, and small helpers on slot ranges.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/http_message.h"
#include "src/cluster/config.h"
#include "src/obs/json_writer.h"
#include "storage/number.h"

namespace distkv::migration {

// How long a source keeps slots paused before it asks the target whether the
// cutover happened (and keeps asking while the target cannot say).
inline constexpr uint64_t kPauseCheckMs = 2'000;
inline constexpr uint64_t kImportRetryMs = 500;
// A tail answer carries about this many bytes of matching records, and scans
// at most kTailScanBytes of the log, so one answer never holds the loop long.
inline constexpr size_t kTailBytes = 1 << 20;
inline constexpr size_t kTailScanBytes = 8 << 20;
inline constexpr uint64_t kMigrationRequestTimeoutMs = 60'000;
inline constexpr const char* kLsnHeader = "X-Distkv-Lsn";
inline constexpr const char* kHistoryHeader = "X-Distkv-History";
inline constexpr const char* kCaughtUpHeader = "X-Distkv-Caught-Up";

inline bool InRange(SlotRange r, uint32_t slot) { return slot >= r.first && slot <= r.last; }

inline uint64_t SlotsIn(const std::vector<SlotRange>& ranges) {
  uint64_t n = 0;
  for (const SlotRange& r : ranges) n += r.last - r.first + 1;
  return n;
}

// The source's history id and LSN, which every answer of its snapshot, tail
// and pause endpoints carries. False when either header is missing or not a
// decimal number: such an answer is retried, never acted on (an LSN read as 0
// would take the import back to the start of the log, a history read as 0
// would start it over).
inline bool SourcePosition(const net::HttpResponse& r, uint64_t* history, uint64_t* lsn) {
  const std::string* h = r.header(kHistoryHeader);
  const std::string* l = r.header(kLsnHeader);
  return h != nullptr && l != nullptr && storage::ParseUint(*h, 10, history) &&
         storage::ParseUint(*l, 10, lsn);
}
inline constexpr const char* kBadPosition =
    "the source's answer lacks a valid history or LSN header";

// Writes a slot range as [first,last].
inline void WriteRange(JsonWriter* w, SlotRange r) {
  w->BeginArray();
  w->Value(r.first);
  w->Value(r.last);
  w->EndArray();
}

}  // namespace distkv::migration
