// Fuzz target: the record decoder (storage/record_format.h) and the segment
// reader that scans files with it.
//
// Checks, for arbitrary bytes:
//   - DecodeRecord never reads past the buffer; a record it accepts encodes
//     back to exactly the bytes it consumed (the format has one encoding);
//   - SegmentReader, reading the same bytes from a file through a buffer of
//     any size (1 byte up), returns exactly the records an in-memory scan
//     finds, stops with the same verdict (clean end, torn tail, corruption)
//     and reports the same offset for it.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/io.h"
#include "storage/record_format.h"
#include "storage/segment_reader.h"

namespace {

using distkv::storage::DecodeRecord;
using distkv::storage::EncodeRecord;
using distkv::storage::Record;
using distkv::storage::SegmentReader;
using distkv::storage::Status;

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "check failed: %s\n", what);
    abort();
  }
}

enum class End { kClean, kIncomplete, kCorruption };

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const size_t read_bytes = input.ConsumeIntegralInRange<size_t>(1, 300);
  const std::string bytes = input.ConsumeRemainingBytesAsString();

  // In-memory scan, checking the round trip of each record.
  std::vector<std::string> records;
  std::string_view rest = bytes;
  End end = End::kClean;
  while (!rest.empty()) {
    Record r;
    size_t consumed = 0;
    Status s = DecodeRecord(rest, &r, &consumed);
    if (s.IsIncomplete()) {
      end = End::kIncomplete;
      break;
    }
    if (!s.ok()) {
      end = End::kCorruption;
      break;
    }
    Check(consumed <= rest.size() && consumed >= distkv::storage::kRecordHeaderBytes,
          "consumed within the buffer");
    std::string again;
    EncodeRecord(r, &again);
    Check(again == rest.substr(0, consumed), "a decoded record encodes to the same bytes");
    records.emplace_back(rest.substr(0, consumed));
    rest.remove_prefix(consumed);
  }
  const uint64_t bad_offset = bytes.size() - rest.size();

  // The same bytes through a SegmentReader on a file.
  int fd = memfd_create("segment", 0);
  Check(fd >= 0, "memfd_create");
  Check(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()), "write");
  SegmentReader reader(distkv::storage::Io::Posix(), fd, "fuzz.seg", 0, bytes.size(), read_bytes);
  size_t i = 0;
  for (;;) {
    Record r;
    std::string_view raw;
    uint64_t offset;
    Status s = reader.Next(&r, &raw, &offset);
    if (s.ok()) {
      Check(i < records.size() && raw == records[i], "reader returns the scanned records");
      ++i;
      continue;
    }
    Check(i == records.size(), "reader returns every scanned record");
    if (s.IsNotFound()) {
      Check(end == End::kClean, "clean end only where the scan ended cleanly");
    } else if (s.IsIncomplete()) {
      Check(end == End::kIncomplete, "torn tail only where the scan found one");
    } else {
      Check(s.IsCorruption() && end == End::kCorruption, "corruption where the scan found it");
    }
    Check(reader.offset() == bad_offset, "the reader stops where the scan stopped");
    break;
  }
  close(fd);
  return 0;
}
