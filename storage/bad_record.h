// What follows a bad record of a segment, found by recovery's scan: the
// trace of a crash, which recovery cuts, or damage, which stops the open.
//
// Only the newest segment can hold a crash's trace: a sealed one was written
// and synced in full before the next was created. In it, after the bad
// record, a crash leaves
//   - zero bytes to the end of the file: space pre-allocated ahead of the
//     writer (fsync = "always") that no write reached;
//   - nothing valid: the rest of a write the crash cut (a torn tail);
//   - valid records of the same, last write: a write into pre-allocated
//     space reaches the disk in no order, so a sector of it may be missing
//     (zeros) while later ones arrived. Told from damage by bit 0x20 of the
//     records (record_format.h, Writes) and the zero sector.
// Anything else with valid records after the bad one is damage. Damage
// confined to the last write that looks exactly like the third case reads as
// a crash, as damage to the very last record always did.
#pragma once

#include <cstdint>
#include <string>

#include "storage/io.h"
#include "storage/status.h"

namespace distkv::storage {

struct AfterBadRecord {
  enum Kind {
    kZeros,          // zero bytes from cut_at to the end (newest segment only)
    kTorn,           // no valid record follows
    kTornLastWrite,  // valid records follow, all of the last write (newest segment only)
    kDamage,         // valid records follow otherwise
  };
  Kind kind = kTorn;
  uint64_t first_valid = 0;  // kTornLastWrite, kDamage: the first valid record's offset
};

// Examines file bytes [bad_at, size) after the bad record at bad_at; cut_at
// (<= bad_at) is where the file would be cut (an unfinished atomic group's
// start). Valid records must have LSNs above prev_lsn. Reads through one
// window of at most 1 MiB, each byte about once: a damaged length field
// never makes it read the rest of the file at once, and a torn write of many
// records is not read again for each of them.
Status ExamineAfterBadRecord(Io* io, int fd, const std::string& name, uint64_t cut_at,
                             uint64_t bad_at, uint64_t size, uint64_t prev_lsn, bool newest,
                             AfterBadRecord* out);

}  // namespace distkv::storage
