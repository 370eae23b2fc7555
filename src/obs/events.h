// Recent events: a small ring buffer of what happened to this node that an
// operator wants to see next to the numbers — starts, failovers, promotions,
// compactions, resyncs, migrations. /stats shows them and the cluster page
// (/ui) merges every node's into one timeline.
//
// Recording one is a single call, which also writes it to the log:
//
//   events->Add("compaction", "done: 3 segments into 1, 12 MiB freed");
//
// The kind is a short lowercase word the page colours by ("start",
// "failover", "promotion", "compaction", "resync", "migration", ...); the
// message is one line for a person. Only the newest kCapacity are kept: this
// is a window for a dashboard, not an audit log. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "src/obs/json_writer.h"

namespace distkv {

struct Event {
  uint64_t seq = 0;      // 1, 2, ... on this node since it started
  uint64_t unix_ms = 0;  // wall-clock time, so nodes' events can be merged
  std::string kind;
  std::string message;
};

class EventLog {
 public:
  static constexpr size_t kCapacity = 64;
  using Clock = std::function<uint64_t()>;  // unix milliseconds

  EventLog();  // the system clock
  explicit EventLog(Clock clock) : clock_(std::move(clock)) {}

  void Add(std::string_view kind, std::string message);

  // The kept events, oldest first.
  std::vector<Event> Recent() const;
  uint64_t total() const { return next_seq_ - 1; }  // added since start, kept or not
  uint64_t now_ms() const { return clock_(); }      // the clock events are stamped with

  // Appends [{"seq":..,"time_ms":..,"kind":"..","message":".."},...], oldest first.
  void WriteJson(JsonWriter* w) const;

 private:
  Clock clock_;
  std::array<Event, kCapacity> ring_;
  uint64_t next_seq_ = 1;
};

}  // namespace distkv
