#include "bench/verifier.h"

#include <algorithm>

#include "bench/workload.h"
#include "src/common/etag.h"

namespace distkv::bench {

Verifier::Verifier(uint64_t keys, uint32_t run, size_t value_bytes)
    : run_(run), value_bytes_(value_bytes), keys_(keys) {}

uint64_t Verifier::BeginWrite(uint64_t key) {
  uint64_t version = next_version_++;
  KeyState& k = keys_[key];
  k.open.push_back(version);
  k.written = true;
  return version;
}

void Verifier::EndWrite(uint64_t key, uint64_t version, WriteOutcome outcome, uint64_t lsn) {
  KeyState& k = keys_[key];
  if (outcome == WriteOutcome::kUnknown) {
    ++uncertain_writes_;  // stays open for good: it may land at any time
    return;
  }
  auto it = std::find(k.open.begin(), k.open.end(), version);
  if (it != k.open.end()) k.open.erase(it);
  if (outcome != WriteOutcome::kAcked) return;
  // Without LSNs on both sides, the acknowledgement order is all there is.
  if (lsn == 0 || k.floor_lsn == 0 || lsn > k.floor_lsn) {
    k.floor = version;
    k.floor_lsn = lsn;
  }
}

ReadTicket Verifier::BeginRead(uint64_t key) const {
  const KeyState& k = keys_[key];
  ReadTicket t;
  t.floor = k.floor;
  t.issued_before = next_version_;
  t.open = k.open;
  t.written = k.written;
  return t;
}

void Verifier::Mismatch(std::string description) {
  ++mismatches_;
  if (samples_.size() < kMaxSamples) samples_.push_back(std::move(description));
}

ReadVerdict Verifier::EndRead(std::string_view key_name, const ReadTicket& t, int status,
                              std::string_view body) {
  if (!t.written || (status != 200 && status != 404)) {
    ++reads_unchecked_;
    return ReadVerdict::kUnchecked;
  }
  ++reads_checked_;
  std::string key(key_name);
  if (status == 404) {
    if (t.floor == 0) return ReadVerdict::kOk;  // every write was still open: none need have landed
    Mismatch("GET " + key + ": 404, but version " + std::to_string(t.floor) +
             " was acknowledged before the read");
    return ReadVerdict::kMismatch;
  }
  uint64_t version = 0;
  ValueCheck check = CheckValue(run_, key_name, body, value_bytes_, &version);
  if (t.floor == 0 && (check == ValueCheck::kMalformed || check == ValueCheck::kOtherRun)) {
    return ReadVerdict::kOk;  // no write of this run had landed for sure: the older value may stand
  }
  switch (check) {
    case ValueCheck::kOk:
      break;
    case ValueCheck::kMalformed:
      Mismatch("GET " + key + ": a value this run did not write (" + std::to_string(body.size()) +
               " bytes)");
      return ReadVerdict::kMismatch;
    case ValueCheck::kOtherRun:
      Mismatch("GET " + key + ": a value of an earlier run, though this run wrote the key");
      return ReadVerdict::kMismatch;
    case ValueCheck::kOtherKey:
      Mismatch("GET " + key + ": the value of another key");
      return ReadVerdict::kMismatch;
    case ValueCheck::kCorrupt:
      Mismatch("GET " + key + ": value of version " + std::to_string(version) +
               " with wrong bytes or length (" + std::to_string(body.size()) + " bytes)");
      return ReadVerdict::kMismatch;
  }
  bool open = std::find(t.open.begin(), t.open.end(), version) != t.open.end();
  bool sent_during_read = version >= t.issued_before && version < next_version_;
  if (version == t.floor || open || sent_during_read) return ReadVerdict::kOk;
  Mismatch("GET " + key + ": stale version " + std::to_string(version) + ", expected " +
           (t.floor != 0 ? "version " + std::to_string(t.floor) : std::string("an open write")) +
           " or a newer one");
  return ReadVerdict::kMismatch;
}

uint64_t ParseEtagLsn(std::string_view etag) {
  if (etag.rfind("W/", 0) == 0) etag.remove_prefix(2);
  return ParseEtagNumber(etag).value_or(0);
}

}  // namespace distkv::bench
