#include "src/obs/progress.h"

#include <chrono>

#include "src/obs/json_writer.h"

namespace distkv {

ProgressBoard::ProgressBoard()
    : clock_([] {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
      }) {}

void ProgressBoard::Update(std::string_view name, uint64_t done, uint64_t total,
                           std::string_view unit, std::string_view detail) {
  auto it = entries_.find(name);
  if (it == entries_.end()) it = entries_.emplace(std::string(name), Entry{}).first;
  Entry& e = it->second;
  const uint64_t now = clock_();
  if (!e.running) {  // a new run of the operation
    e = Entry{};
    e.running = true;
    e.started_ms = now;
  }
  e.done = done;
  e.total = total;
  e.unit = std::string(unit);
  e.detail = std::string(detail);
  e.updated_ms = now;
}

void ProgressBoard::Finish(std::string_view name, std::string outcome) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  it->second.running = false;
  it->second.updated_ms = clock_();
  it->second.outcome = std::move(outcome);
}

const ProgressBoard::Entry* ProgressBoard::Find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

void ProgressBoard::WriteJson(JsonWriter* w) const {
  w->BeginObject();
  for (const auto& [name, e] : entries_) {
    w->Key(name);
    w->BeginObject();
    w->Field("running", e.running);
    w->Field("done", e.done);
    w->Field("total", e.total);
    w->Field("unit", e.unit);
    w->Field("detail", e.detail);
    w->Field("started_ms", e.started_ms);
    w->Field("updated_ms", e.updated_ms);
    w->Field("outcome", e.outcome);
    w->EndObject();
  }
  w->EndObject();
}

}  // namespace distkv
