// Frame encoding and decoding; the layout is described in replication_stream.h.
#include "src/replication/stream_format.h"

#include <cinttypes>
#include <cstdio>

#include <chrono>

#include "storage/coding.h"

namespace distkv {

namespace {

constexpr size_t kSnapshotBeginPayloadBytes = kFramePrefixBytes + 32;
constexpr size_t kSnapshotEndPayloadBytes = kFramePrefixBytes + 8;

// Writes kind, length and prefix over the kFrameHeaderBytes + kFramePrefixBytes
// bytes at p.
void PutHead(char* p, FrameKind kind, size_t payload, uint64_t lsn, uint64_t time_us) {
  p[0] = static_cast<char>(kind);
  storage::EncodeFixed32(p + 1, static_cast<uint32_t>(payload));
  storage::EncodeFixed64(p + kFrameHeaderBytes, lsn);
  storage::EncodeFixed64(p + kFrameHeaderBytes + 8, time_us);
}

}  // namespace

std::string HistoryName(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, id);
  return buf;
}

bool ParseHistoryName(std::string_view text, uint64_t* id) {
  if (text.size() != 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *id = v;
  return true;
}

size_t BeginRecordsFrame(std::string* out) {
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + kFramePrefixBytes);
  return start;
}

bool FinishRecordsFrame(std::string* out, size_t start, uint64_t primary_lsn, uint64_t stamp_us) {
  const size_t records_at = start + kFrameHeaderBytes + kFramePrefixBytes;
  if (out->size() <= records_at) {
    out->resize(start);
    return false;
  }
  PutHead(out->data() + start, FrameKind::kRecords, out->size() - start - kFrameHeaderBytes,
          primary_lsn, stamp_us);
  return true;
}

void AppendRecordsFrame(std::string* out, uint64_t primary_lsn, uint64_t stamp_us,
                        std::string_view records) {
  const size_t start = BeginRecordsFrame(out);
  out->append(records);
  FinishRecordsFrame(out, start, primary_lsn, stamp_us);
}

void AppendHeartbeatFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us) {
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + kFramePrefixBytes);
  PutHead(out->data() + start, FrameKind::kHeartbeat, kFramePrefixBytes, primary_lsn, now_us);
}

void AppendSnapshotBeginFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us,
                              uint64_t snapshot_lsn, uint64_t history, uint64_t records,
                              uint64_t bytes) {
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + kSnapshotBeginPayloadBytes);
  char* p = out->data() + start;
  PutHead(p, FrameKind::kSnapshotBegin, kSnapshotBeginPayloadBytes, primary_lsn, now_us);
  p += kFrameHeaderBytes + kFramePrefixBytes;
  storage::EncodeFixed64(p, snapshot_lsn);
  storage::EncodeFixed64(p + 8, history);
  storage::EncodeFixed64(p + 16, records);
  storage::EncodeFixed64(p + 24, bytes);
}

void AppendSnapshotEndFrame(std::string* out, uint64_t primary_lsn, uint64_t now_us,
                            uint64_t snapshot_lsn) {
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + kSnapshotEndPayloadBytes);
  char* p = out->data() + start;
  PutHead(p, FrameKind::kSnapshotEnd, kSnapshotEndPayloadBytes, primary_lsn, now_us);
  storage::EncodeFixed64(p + kFrameHeaderBytes + kFramePrefixBytes, snapshot_lsn);
}

uint64_t StreamClockUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void FrameDecoder::Feed(std::string_view bytes) {
  // Drop what was returned already; what remains is at most one partial frame.
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

FrameDecoder::Result FrameDecoder::Next(Frame* frame) {
  if (!error_.empty()) return Result::kError;
  const size_t avail = buf_.size() - pos_;
  if (avail < kFrameHeaderBytes) return Result::kNeedMore;
  const char* p = buf_.data() + pos_;
  const uint8_t kind = static_cast<uint8_t>(p[0]);
  const uint32_t len = storage::DecodeFixed32(p + 1);
  // The header is judged before the length is trusted, so garbage fails at
  // once instead of waiting for gigabytes that will never come.
  if (kind == static_cast<uint8_t>(FrameKind::kHeartbeat)) {
    if (len != kFramePrefixBytes) {
      error_ = "heartbeat frame with a payload of " + std::to_string(len) + " bytes";
      return Result::kError;
    }
  } else if (kind == static_cast<uint8_t>(FrameKind::kRecords)) {
    if (len <= kFramePrefixBytes) {
      error_ = "records frame without records";
      return Result::kError;
    }
    if (len > max_payload_) {
      error_ = "records frame of " + std::to_string(len) + " bytes exceeds the limit of " +
               std::to_string(max_payload_);
      return Result::kError;
    }
  } else if (kind == static_cast<uint8_t>(FrameKind::kSnapshotBegin) ||
             kind == static_cast<uint8_t>(FrameKind::kSnapshotEnd)) {
    const size_t want = kind == static_cast<uint8_t>(FrameKind::kSnapshotBegin)
                            ? kSnapshotBeginPayloadBytes
                            : kSnapshotEndPayloadBytes;
    if (len != want) {
      error_ = "snapshot frame of kind " + std::to_string(kind) + " with a payload of " +
               std::to_string(len) + " bytes";
      return Result::kError;
    }
  } else {
    error_ = "unknown frame kind " + std::to_string(kind);
    return Result::kError;
  }
  if (avail < kFrameHeaderBytes + len) return Result::kNeedMore;
  frame->kind = static_cast<FrameKind>(kind);
  frame->primary_lsn = storage::DecodeFixed64(p + kFrameHeaderBytes);
  frame->time_us = storage::DecodeFixed64(p + kFrameHeaderBytes + 8);
  const size_t prefix_end = kFrameHeaderBytes + kFramePrefixBytes;
  frame->records = frame->kind == FrameKind::kRecords
                       ? std::string_view(p + prefix_end, kFrameHeaderBytes + len - prefix_end)
                       : std::string_view();
  if (frame->kind == FrameKind::kSnapshotBegin || frame->kind == FrameKind::kSnapshotEnd) {
    const char* q = p + prefix_end;
    frame->snapshot_lsn = storage::DecodeFixed64(q);
    if (frame->kind == FrameKind::kSnapshotBegin) {
      frame->snapshot_history = storage::DecodeFixed64(q + 8);
      frame->snapshot_records = storage::DecodeFixed64(q + 16);
      frame->snapshot_bytes = storage::DecodeFixed64(q + 24);
    }
  }
  pos_ += kFrameHeaderBytes + len;
  return Result::kFrame;
}

void FrameDecoder::Reset() {
  buf_.clear();
  pos_ = 0;
  error_.clear();
}

}  // namespace distkv
