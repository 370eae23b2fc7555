// Fuzz target: the replication stream's frame decoder
// (src/replication/stream_format.h) and the records inside its frames.
//
// The input is a stream body; it is fed to one decoder whole and to another
// in arbitrary pieces (sizes from the input's tail). Both must return the
// same frames and the same final verdict: frame boundaries are independent
// of how the bytes arrive. Each frame, re-encoded with the builders, gives
// back the bytes it was decoded from, and the records of a records frame
// decode (or are refused) without reading outside the frame.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "src/replication/stream_format.h"
#include "storage/record_format.h"

namespace {

using distkv::Frame;
using distkv::FrameDecoder;
using distkv::FrameKind;

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "check failed: %s\n", what);
    abort();
  }
}

constexpr size_t kMaxPayload = 1 << 16;

std::string Encode(const Frame& f) {
  std::string out;
  switch (f.kind) {
    case FrameKind::kHeartbeat:
      distkv::AppendHeartbeatFrame(&out, f.primary_lsn, f.time_us);
      break;
    case FrameKind::kRecords:
      distkv::AppendRecordsFrame(&out, f.primary_lsn, f.time_us, f.records);
      break;
    case FrameKind::kSnapshotBegin:
      distkv::AppendSnapshotBeginFrame(&out, f.primary_lsn, f.time_us, f.snapshot_lsn,
                                       f.snapshot_history, f.snapshot_records, f.snapshot_bytes);
      break;
    case FrameKind::kSnapshotEnd:
      distkv::AppendSnapshotEndFrame(&out, f.primary_lsn, f.time_us, f.snapshot_lsn);
      break;
  }
  return out;
}

// Takes every frame the decoder has; false once it reports an error.
bool Take(FrameDecoder* d, std::vector<std::string>* frames) {
  for (;;) {
    Frame f;
    FrameDecoder::Result r = d->Next(&f);
    if (r == FrameDecoder::Result::kNeedMore) return true;
    if (r == FrameDecoder::Result::kError) {
      Check(!d->error().empty(), "an error says why");
      return false;
    }
    frames->push_back(Encode(f));
    if (f.kind == FrameKind::kRecords) {
      std::string_view rest = f.records;
      while (!rest.empty()) {
        distkv::storage::Record rec;
        size_t consumed = 0;
        if (!distkv::storage::DecodeRecord(rest, &rec, &consumed).ok()) break;
        Check(consumed <= rest.size(), "a record stays inside its frame");
        rest.remove_prefix(consumed);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  std::vector<size_t> cuts;
  for (int i = input.ConsumeIntegralInRange<int>(0, 16); i > 0; --i) {
    cuts.push_back(input.ConsumeIntegralInRange<size_t>(0, 64));
  }
  const std::string body = input.ConsumeRemainingBytesAsString();

  FrameDecoder whole(kMaxPayload);
  std::vector<std::string> whole_frames;
  whole.Feed(body);
  const bool whole_ok = Take(&whole, &whole_frames);

  FrameDecoder pieces(kMaxPayload);
  std::vector<std::string> piece_frames;
  bool pieces_ok = true;
  size_t pos = 0;
  for (size_t i = 0; pieces_ok && pos < body.size(); ++i) {
    size_t n = i < cuts.size() ? cuts[i] : body.size() - pos;
    n = std::min(n, body.size() - pos);
    pieces.Feed(std::string_view(body).substr(pos, n));
    pos += n;
    pieces_ok = Take(&pieces, &piece_frames);
  }
  Check(pieces_ok == whole_ok, "the same verdict however the bytes arrive");
  Check(piece_frames == whole_frames, "the same frames however the bytes arrive");
  if (whole_ok) {
    std::string joined;
    for (const std::string& f : whole_frames) joined += f;
    Check(body.compare(0, joined.size(), joined) == 0, "frames re-encode to the bytes received");
    Check(whole.buffered() == body.size() - joined.size(), "the rest is buffered");
  }
  return 0;
}
