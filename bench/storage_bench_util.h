// What the storage engine's benchmarks (storage_bench.cc, compaction_bench.cc)
// share: wall-clock timing, the key names they write, and how they stop on a
// storage error. Header-only: each benchmark is one translation unit linked
// against storage/ alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/status.h"

namespace distkv::storagebench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// k000000000000042: 16 bytes, sorted like the numbers.
inline std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "k%015llu", static_cast<unsigned long long>(i));
  return buf;
}

// Prints "<program>: <what>: <status>" and exits 1.
[[noreturn]] inline void Die(const char* program, const char* what, const storage::Status& s) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what, s.ToString().c_str());
  std::exit(1);
}

}  // namespace distkv::storagebench
