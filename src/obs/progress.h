// Progress of the node's long operations — a compaction, a snapshot resync,
// a slot migration — for /stats, the cluster page and the command line.
//
// An operation names itself and reports as it goes; it is shown until it
// finishes, then kept as "last" with its outcome:
//
//   progress->Update("compaction", bytes_done, bytes_total, "bytes", "3 segments, copying");
//   ...
//   progress->Finish("compaction", "3 segments into 1");
//
// /stats shows "progress": {"compaction": {"running": true, "done": ..,
// "total": .., "unit": "bytes", "detail": "..", "started_ms": .., "updated_ms": ..}}; the
// page draws one bar per running operation. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "src/obs/json_writer.h"

namespace distkv {

class ProgressBoard {
 public:
  using Clock = std::function<uint64_t()>;  // unix milliseconds

  ProgressBoard();  // the system clock
  explicit ProgressBoard(Clock clock) : clock_(std::move(clock)) {}

  // Starts (on first call) or advances an operation. total 0: not known yet.
  // detail: one short line of what it is doing now, for people (may be "").
  void Update(std::string_view name, uint64_t done, uint64_t total, std::string_view unit,
              std::string_view detail = {});
  // Ends it; outcome is one line ("done", "failed: ...").
  void Finish(std::string_view name, std::string outcome);

  struct Entry {
    bool running = false;
    uint64_t done = 0;
    uint64_t total = 0;
    std::string unit;
    std::string detail;
    uint64_t started_ms = 0;
    uint64_t updated_ms = 0;
    std::string outcome;  // set once finished
  };
  const Entry* Find(std::string_view name) const;

  // Appends {"name": {...}, ...}.
  void WriteJson(JsonWriter* w) const;

 private:
  Clock clock_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace distkv
