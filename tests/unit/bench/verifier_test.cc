#include <doctest/doctest.h>

#include <string>

#include "bench/verifier.h"
#include "bench/workload.h"

namespace distkv::bench {

namespace {

constexpr uint32_t kRun = 0x1234;
constexpr size_t kSize = 64;

std::string Name(uint64_t key) { return KeyName("k", key); }
std::string Value(uint64_t key, uint64_t version) {
  return MakeValue(kRun, Name(key), version, kSize);
}

}  // namespace

TEST_CASE("a read after an acknowledged write must see that write") {
  Verifier v(4, kRun, kSize);
  uint64_t w1 = v.BeginWrite(1);
  v.EndWrite(1, w1, WriteOutcome::kAcked, 10);
  uint64_t w2 = v.BeginWrite(1);
  v.EndWrite(1, w2, WriteOutcome::kAcked, 11);

  ReadTicket t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, w2)) == ReadVerdict::kOk);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, w1)) == ReadVerdict::kMismatch);  // stale
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 404, "") == ReadVerdict::kMismatch);  // lost
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(2, w2)) == ReadVerdict::kMismatch);  // another key's value
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, MakeValue(kRun + 1, Name(1), w2, kSize)) ==
        ReadVerdict::kMismatch);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, w2).substr(0, 40)) == ReadVerdict::kMismatch);  // torn
  CHECK(v.reads_checked() == 6);
  CHECK(v.mismatches() == 5);
  CHECK(v.samples().size() == 5);
  CHECK(v.samples()[0].find("stale version") != std::string::npos);
}

TEST_CASE("a read concurrent with a write may see either the old or the new value") {
  Verifier v(4, kRun, kSize);
  uint64_t w1 = v.BeginWrite(0);
  v.EndWrite(0, w1, WriteOutcome::kAcked, 5);
  uint64_t w2 = v.BeginWrite(0);  // in flight
  ReadTicket t1 = v.BeginRead(0);
  ReadTicket t2 = v.BeginRead(0);
  v.EndWrite(0, w2, WriteOutcome::kAcked, 6);
  CHECK(v.EndRead(Name(0), t1, 200, Value(0, w1)) == ReadVerdict::kOk);
  CHECK(v.EndRead(Name(0), t2, 200, Value(0, w2)) == ReadVerdict::kOk);
  // A write sent while the read was in flight may be seen too.
  ReadTicket t3 = v.BeginRead(0);
  uint64_t w3 = v.BeginWrite(0);
  CHECK(v.EndRead(Name(0), t3, 200, Value(0, w3)) == ReadVerdict::kOk);
  CHECK(v.mismatches() == 0);
}

TEST_CASE("before any acknowledgement a 404 is fine; a version never written is not") {
  Verifier v(4, kRun, kSize);
  uint64_t w1 = v.BeginWrite(2);
  ReadTicket t = v.BeginRead(2);
  CHECK(v.EndRead(Name(2), t, 404, "") == ReadVerdict::kOk);
  t = v.BeginRead(2);
  CHECK(v.EndRead(Name(2), t, 200, Value(2, w1 + 100)) == ReadVerdict::kMismatch);
}

TEST_CASE("while every write of a key has failed, the value from before the run may stand") {
  Verifier v(4, kRun, kSize);
  uint64_t failed = v.BeginWrite(1);
  v.EndWrite(1, failed, WriteOutcome::kUnknown, 0);
  ReadTicket t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, MakeValue(kRun - 1, Name(1), 3, kSize)) == ReadVerdict::kOk);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, "set by someone else") == ReadVerdict::kOk);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, failed)) == ReadVerdict::kOk);
  // Once a write is acknowledged, the old value is stale.
  uint64_t acked = v.BeginWrite(1);
  v.EndWrite(1, acked, WriteOutcome::kAcked, 9);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, MakeValue(kRun - 1, Name(1), 3, kSize)) ==
        ReadVerdict::kMismatch);
  CHECK(v.mismatches() == 1);
}

TEST_CASE("acknowledgements out of LSN order: the higher LSN is the value to expect") {
  Verifier v(4, kRun, kSize);
  uint64_t a = v.BeginWrite(3);
  uint64_t b = v.BeginWrite(3);
  // The store applied a after b (a has the higher LSN), but b's ack arrives last.
  v.EndWrite(3, a, WriteOutcome::kAcked, 21);
  v.EndWrite(3, b, WriteOutcome::kAcked, 20);
  ReadTicket t = v.BeginRead(3);
  CHECK(v.EndRead(Name(3), t, 200, Value(3, a)) == ReadVerdict::kOk);
  t = v.BeginRead(3);
  CHECK(v.EndRead(Name(3), t, 200, Value(3, b)) == ReadVerdict::kMismatch);
}

TEST_CASE("a write of unknown outcome stays acceptable; a rejected one does not") {
  Verifier v(4, kRun, kSize);
  uint64_t w1 = v.BeginWrite(1);
  v.EndWrite(1, w1, WriteOutcome::kAcked, 1);
  uint64_t lost = v.BeginWrite(1);
  v.EndWrite(1, lost, WriteOutcome::kUnknown, 0);
  uint64_t refused = v.BeginWrite(1);
  v.EndWrite(1, refused, WriteOutcome::kRejected, 0);
  CHECK(v.uncertain_writes() == 1);
  ReadTicket t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, lost)) == ReadVerdict::kOk);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, w1)) == ReadVerdict::kOk);
  t = v.BeginRead(1);
  CHECK(v.EndRead(Name(1), t, 200, Value(1, refused)) == ReadVerdict::kMismatch);
}

TEST_CASE("keys this run never wrote, and failed reads, are not checked") {
  Verifier v(4, kRun, kSize);
  ReadTicket t = v.BeginRead(0);
  CHECK(v.EndRead(Name(0), t, 200, "anything") == ReadVerdict::kUnchecked);
  uint64_t w = v.BeginWrite(0);
  v.EndWrite(0, w, WriteOutcome::kAcked, 1);
  t = v.BeginRead(0);
  CHECK(v.EndRead(Name(0), t, 503, "") == ReadVerdict::kUnchecked);
  CHECK(v.reads_unchecked() == 2);
  CHECK(v.reads_checked() == 0);
}

TEST_CASE("without LSNs the acknowledgement order decides") {
  Verifier v(2, kRun, kSize);
  uint64_t a = v.BeginWrite(0);
  uint64_t b = v.BeginWrite(0);
  v.EndWrite(0, b, WriteOutcome::kAcked, 0);
  v.EndWrite(0, a, WriteOutcome::kAcked, 0);
  ReadTicket t = v.BeginRead(0);
  CHECK(v.EndRead(Name(0), t, 200, Value(0, a)) == ReadVerdict::kOk);
}

TEST_CASE("ETag values parse to their LSN") {
  CHECK(ParseEtagLsn("\"42\"") == 42);
  CHECK(ParseEtagLsn("W/\"7\"") == 7);
  CHECK(ParseEtagLsn("42") == 42);
  CHECK(ParseEtagLsn("\"abc\"") == 0);
  CHECK(ParseEtagLsn("") == 0);
  CHECK(ParseEtagLsn("\"\"") == 0);
}

}  // namespace distkv::bench
