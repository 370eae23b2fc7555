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
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "storage/crc32c.h"
#include "storage/faulty_io.h"
#include "storage/manifest.h"
#include "storage/record_format.h"
#include "storage/store.h"

namespace {

namespace st = distkv::storage;
using st::Status;

constexpr char kDir[] = "/fuzz";

void Check(bool ok, const char* what, const Status& s = Status::OK()) {
  if (!ok) {
    fprintf(stderr, "check failed: %s %s\n", what, s.ToString().c_str());
    abort();
  }
}

void WriteWhole(st::Io* io, const std::string& path, const std::string& data) {
  int fd;
  Check(io->Open(path, st::Io::kCreate | st::Io::kTruncate, &fd) == 0, "create");
  size_t done = 0;
  Check(io->Write(fd, data.data(), data.size(), 0, &done) == 0 && done == data.size(), "write");
  Check(io->Sync(fd) == 0, "sync");
  io->Close(fd);
}

std::map<std::string, std::string> Scan(st::Store* store) {
  std::map<std::string, std::string> kv;
  Status s = store->ForEach(
      [&](std::string_view k, std::string_view v, uint64_t) { kv[std::string(k)] = v; });
  Check(s.ok(), "ForEach", s);
  for (const auto& [k, v] : kv) {
    std::string got;
    s = store->Get(k, &got);
    Check(s.ok() && got == v, "every listed key reads back", s);
  }
  return kv;
}

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
  st::FaultyIo io;
  Check(io.CreateDirs(kDir) == 0, "mkdir");
  WriteWhole(&io, std::string(kDir) + "/" + st::kManifestFileName, text);
  if (with_segment) WriteWhole(&io, std::string(kDir) + "/" + st::SegmentFileName(1), Segment());
  int dir_fd;
  Check(io.OpenDir(kDir, &dir_fd) == 0 && io.SyncDir(dir_fd) == 0, "sync dir");
  io.Close(dir_fd);

  st::Options options;
  options.dir = kDir;
  options.io = &io;
  options.fsync = st::FsyncMode::kAlways;
  options.segment_bytes = 4096;
  std::unique_ptr<st::Store> store;
  if (!st::Store::Open(options, &store).ok()) return;
  std::map<std::string, std::string> kv = Scan(store.get());
  const uint64_t last_before = store->last_lsn();
  uint64_t lsn = 0;
  Status s = store->Put("fuzz-new-key", "v", &lsn);
  Check(s.ok() && lsn > last_before, "a store that opened takes a write with a newer LSN", s);
  s = store->Flush();
  Check(s.ok(), "the write commits", s);
  kv["fuzz-new-key"] = "v";
  store.reset();

  s = st::Store::Open(options, &store);
  Check(s.ok(), "a store that opened once opens again after a write", s);
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
    st::FaultyIo io;
    Check(io.CreateDirs(kDir) == 0, "mkdir");
    WriteWhole(&io, std::string(kDir) + "/" + st::kManifestFileName, text);
    st::Manifest read;
    bool found = false;
    Status s = st::ReadManifest(&io, kDir, &read, &found);
    Check(s.ok() == decoded.ok(), "ReadManifest and DecodeManifest agree", s);
    Check(s.ok() ? found && read == m : s.IsCorruption(), "a refused MANIFEST is Corruption", s);
    if (decoded.ok()) {
      int dir_fd;
      Check(io.OpenDir(kDir, &dir_fd) == 0, "open dir");
      s = st::WriteManifest(&io, kDir, dir_fd, m);
      io.Close(dir_fd);
      Check(s.ok(), "WriteManifest", s);
      s = st::ReadManifest(&io, kDir, &read, &found);
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
