#include "src/cluster/migration.h"

#include <sstream>

#include "storage/number.h"

namespace distkv {

std::string EncodeMigrationPause(const MigrationPause& pause) {
  // One line: id first last lsn target (the name last: it may hold spaces).
  return std::to_string(pause.id) + " " + std::to_string(pause.slots.first) + " " +
         std::to_string(pause.slots.last) + " " + std::to_string(pause.lsn) + " " + pause.target;
}

bool DecodeMigrationPause(const std::string& text, MigrationPause* pause) {
  std::istringstream in(text);
  MigrationPause p;
  if (!(in >> p.id >> p.slots.first >> p.slots.last >> p.lsn)) return false;
  in.get();  // the space before the name
  std::getline(in, p.target);
  if (p.target.empty() || p.slots.first > p.slots.last || p.slots.last >= kSlotCount) return false;
  p.active = true;
  *pause = p;
  return true;
}

const char* PhaseName(MigrationImport::Phase phase) {
  switch (phase) {
    case MigrationImport::Phase::kClear:
      return "clearing";
    case MigrationImport::Phase::kSnapshot:
      return "snapshot";
    case MigrationImport::Phase::kTail:
      return "tail";
    case MigrationImport::Phase::kCutover:
      return "cutover";
    case MigrationImport::Phase::kDone:
      return "done";
  }
  return "?";
}

bool ParseSlotRangeText(const std::string& text, SlotRange* range) {
  if (text.empty() || text.find_first_not_of("0123456789-") != std::string::npos) return false;
  const size_t dash = text.find('-');
  const std::string a = text.substr(0, dash);
  const std::string b = dash == std::string::npos ? a : text.substr(dash + 1);
  if (a.empty() || b.empty() || a.size() > 5 || b.size() > 5 || b.find('-') != std::string::npos) {
    return false;
  }
  uint64_t first = 0;
  uint64_t last = 0;
  if (!storage::ParseUint(a, 10, &first) || !storage::ParseUint(b, 10, &last)) return false;
  if (first > last || last >= kSlotCount) return false;
  *range = SlotRange{static_cast<uint32_t>(first), static_cast<uint32_t>(last)};
  return true;
}

}  // namespace distkv
