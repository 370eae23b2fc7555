// One line per event on stderr: "2026-11-23T10:00:00.123Z INFO message".
// stderr is the node's log (make run-multi sends it to run/<node>.log).
#pragma once

#include <string_view>

namespace distkv {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void LogLine(LogLevel level, std::string_view message);

// printf-style convenience.
void Logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace distkv
