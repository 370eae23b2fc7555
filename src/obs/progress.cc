#include "src/obs/progress.h"

#include <chrono>

#include "net/http_message.h"
#include "src/obs/metrics.h"

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

void ProgressBoard::AppendJson(std::string* out) const {
  out->push_back('{');
  bool first = true;
  for (const auto& [name, e] : entries_) {
    if (!first) out->push_back(',');
    first = false;
    net::AppendJsonString(out, name);
    out->append(":{\"running\":");
    out->append(e.running ? "true," : "false,");
    AppendJsonField(out, "done", e.done);
    AppendJsonField(out, "total", e.total);
    AppendJsonField(out, "unit", e.unit);
    AppendJsonField(out, "detail", e.detail);
    AppendJsonField(out, "started_ms", e.started_ms);
    AppendJsonField(out, "updated_ms", e.updated_ms);
    AppendJsonField(out, "outcome", e.outcome, false);
    out->push_back('}');
  }
  out->push_back('}');
}

}  // namespace distkv
