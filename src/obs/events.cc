#include "src/obs/events.h"

#include <chrono>

#include "src/obs/json_writer.h"
#include "src/obs/log.h"

namespace distkv {

EventLog::EventLog()
    : clock_([] {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
      }) {}

void EventLog::Add(std::string_view kind, std::string message) {
  Logf(LogLevel::kInfo, "event %.*s: %s", static_cast<int>(kind.size()), kind.data(),
       message.c_str());
  Event& e = ring_[(next_seq_ - 1) % kCapacity];
  e.seq = next_seq_++;
  e.unix_ms = clock_();
  e.kind = std::string(kind);
  e.message = std::move(message);
}

std::vector<Event> EventLog::Recent() const {
  std::vector<Event> out;
  const uint64_t n = total();
  const uint64_t first = n > kCapacity ? n - kCapacity + 1 : 1;
  for (uint64_t seq = first; seq <= n; ++seq) out.push_back(ring_[(seq - 1) % kCapacity]);
  return out;
}

void EventLog::WriteJson(JsonWriter* w) const {
  w->BeginArray();
  for (const Event& e : Recent()) {
    w->BeginObject();
    w->Field("seq", e.seq);
    w->Field("time_ms", e.unix_ms);
    w->Field("kind", e.kind);
    w->Field("message", e.message);
    w->EndObject();
  }
  w->EndArray();
}

}  // namespace distkv
