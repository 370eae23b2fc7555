// Verifier: the bookkeeping behind --verify. It decides, for each read of a
// key written in this run, whether the value returned is one the store may
// legitimately hold at that moment.
//
// Writes of one key may be in flight on several connections at once, and
// their acknowledgements may come back in another order than the store
// applied them. So per key the verifier keeps:
//   - the "floor": the acknowledged write the store applied last, ordered by
//     the LSN in the write's ETag (by acknowledgement order when a response
//     carries none);
//   - the open writes: sent and not yet answered, or answered with an error
//     or a timeout (such a write may have been applied, or may still be).
// A read takes a snapshot of both when it is sent. When it completes, the
// value must be the floor's version, an open write of the snapshot, or a
// write sent while the read was in flight. While no write of the key has been
// acknowledged (they are all in flight or failed), its earlier value — a
// 404, or a value from before this run — is right too. Anything else — an older
// version, another run's or another key's value, torn bytes — is a mismatch.
// Keys this run never wrote are not checked (earlier runs may have).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distkv::bench {

enum class WriteOutcome {
  kAcked,     // 2xx: applied
  kRejected,  // 4xx: certainly not applied
  kUnknown,   // 5xx, timeout, lost connection: may have been applied
};

enum class ReadVerdict { kOk, kMismatch, kUnchecked };

struct ReadTicket {
  uint64_t floor = 0;          // version acknowledged last when the read was sent (0: none)
  uint64_t issued_before = 0;  // versions >= this were sent after the read
  std::vector<uint64_t> open;  // versions open when the read was sent
  bool written = false;        // the key had been written in this run
};

class Verifier {
 public:
  Verifier(uint64_t keys, uint32_t run, size_t value_bytes);

  uint32_t run() const { return run_; }
  // A write of key is about to be sent; returns its version.
  uint64_t BeginWrite(uint64_t key);
  // lsn: from the response's ETag, 0 if none.
  void EndWrite(uint64_t key, uint64_t version, WriteOutcome outcome, uint64_t lsn);

  ReadTicket BeginRead(uint64_t key) const;
  // status: the HTTP status (200 or 404 are judged; others are unchecked).
  ReadVerdict EndRead(std::string_view key_name, const ReadTicket& ticket, int status,
                      std::string_view body);

  uint64_t reads_checked() const { return reads_checked_; }
  uint64_t reads_unchecked() const { return reads_unchecked_; }
  uint64_t mismatches() const { return mismatches_; }
  uint64_t uncertain_writes() const { return uncertain_writes_; }
  // The first few mismatches, described.
  const std::vector<std::string>& samples() const { return samples_; }

  static constexpr size_t kMaxSamples = 10;

 private:
  struct KeyState {
    uint64_t floor = 0;
    uint64_t floor_lsn = 0;
    std::vector<uint64_t> open;
    bool written = false;
  };
  void Mismatch(std::string description);

  uint32_t run_;
  size_t value_bytes_;
  uint64_t next_version_ = 1;
  std::vector<KeyState> keys_;
  uint64_t reads_checked_ = 0;
  uint64_t reads_unchecked_ = 0;
  uint64_t mismatches_ = 0;
  uint64_t uncertain_writes_ = 0;
  std::vector<std::string> samples_;
};

// The LSN in an ETag header value ("123" or W/"123"); 0 if there is none.
uint64_t ParseEtagLsn(std::string_view etag);

}  // namespace distkv::bench
