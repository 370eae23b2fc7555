// Fuzz target: the MANIFEST (storage/manifest.h) — its decoder, its reading
// and writing through an Io, and a store opening on whatever it accepts.
//
// The input's last byte holds flags, the rest is the MANIFEST's text. With
// flag 1 the target appends the right "crc" line itself, so that mutations
// reach the field parser instead of dying at the CRC check. Checks:
//   - ReadManifest of the text as a file gives DecodeManifest's verdict and
//     manifest;
//   - an accepted manifest encodes to text that decodes to it again, and
//     that encoding is canonical (it re-encodes to itself); WriteManifest +
//     ReadManifest round-trips it;
//   - Store::Open on a directory holding that MANIFEST and a small valid
//     segment (flag 2 leaves the segment out) either refuses or gives a store
//     that works: every key it lists reads back, a new write commits, and a
//     second open holds it with LSNs that did not go back.
// Everything runs on the in-memory FaultyIo: no files, thousands of runs a
// second.
#include <fuzzer/FuzzedDataProvider.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "storage/crc32c.h"
#include "storage/manifest.h"
#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_store.h"

namespace {

namespace st = distkv::storage;
using st::Status;

using st::fuzz::Check;
using st::fuzz::kDir;
using st::fuzz::Scan;

// Four records, LSN 1..4, the way a store writes its first segment.
std::string Segment() {
  std::string seg;
  st::EncodeRecord(st::Record{1, st::RecordType::kPut, "a", "1"}, &seg);
  st::EncodeRecord(st::Record{2, st::RecordType::kPut, "bb", "two"}, &seg);
  st::EncodeRecord(st::Record{3, st::RecordType::kDelete, "a", ""}, &seg);
  st::EncodeRecord(st::Record{4, st::RecordType::kPut, "c", "4"}, &seg);
  return seg;
}

void OpenStore(const std::string& text, bool with_segment) {
  st::fuzz::MemDir dir;
  dir.Write(st::kManifestFileName, text);
  if (with_segment) dir.Write(st::SegmentFileName(1), Segment());
  dir.SyncDir();

  const st::Options options = dir.StoreOptions(4096);
  std::unique_ptr<st::Store> store;
  if (!st::Store::Open(options, &store).ok()) return;
  std::map<std::string, std::string> kv = Scan(store.get());
  const uint64_t last_before = store->last_lsn();
  const uint64_t lsn = st::fuzz::WriteAndReopen(options, &store);
  Check(lsn > last_before, "a store that opened takes a write with a newer LSN");
  kv[st::fuzz::kNewKey] = "v";
  Check(Scan(store.get()) == kv, "the second open holds what the first had, plus the write");
  Check(store->last_lsn() >= lsn, "LSNs do not go back");
  Check(store->high_water_lsn() >= lsn, "the high-water mark covers every LSN handed out");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const uint8_t flags = input.ConsumeIntegral<uint8_t>();
  std::string text = input.ConsumeRemainingBytesAsString();
  if (flags & 1) {
    char crc[32];
    snprintf(crc, sizeof(crc), "crc %08" PRIx32 "\n", st::crc32c::Value(text));
    text += crc;
  }

  st::Manifest m;
  const Status decoded = st::DecodeManifest(text, &m);

  {
    st::fuzz::MemDir dir;
    dir.Write(st::kManifestFileName, text);
    st::Manifest read;
    bool found = false;
    Status s = st::ReadManifest(&dir.io, kDir, &read, &found);
    Check(s.ok() == decoded.ok(), "ReadManifest and DecodeManifest agree", s);
    Check(s.ok() ? found && read == m : s.IsCorruption(), "a refused MANIFEST is Corruption", s);
    if (decoded.ok()) {
      int dir_fd;
      Check(dir.io.OpenDir(kDir, &dir_fd) == 0, "open dir");
      s = st::WriteManifest(&dir.io, kDir, dir_fd, m);
      dir.io.Close(dir_fd);
      Check(s.ok(), "WriteManifest", s);
      s = st::ReadManifest(&dir.io, kDir, &read, &found);
      Check(s.ok() && found && read == m, "a written MANIFEST reads back the same", s);
    }
  }
  if (!decoded.ok()) {
    Check(decoded.IsCorruption() && !decoded.message().empty(),
          "a refusal is Corruption and says why", decoded);
    return 0;
  }

  Check(!m.histories.empty() && m.log_start >= 1, "required fields");
  const std::string encoded = st::EncodeManifest(m);
  st::Manifest again;
  Status s = st::DecodeManifest(encoded, &again);
  Check(s.ok() && again == m, "an accepted MANIFEST round-trips", s);
  Check(st::EncodeManifest(again) == encoded, "the encoding is canonical");

  OpenStore(text, !(flags & 2));
  return 0;
}
