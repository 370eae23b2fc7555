#include "src/obs/log.h"

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string>

#include <sys/time.h>

namespace distkv {

static const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

void LogLine(LogLevel level, std::string_view message) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line so that lines from the thread pool never interleave.
  std::fprintf(stderr, "%s.%03dZ %s %.*s\n", stamp, static_cast<int>(tv.tv_usec / 1000),
               LevelName(level), static_cast<int>(message.size()), message.data());
}

void Logf(LogLevel level, const char* format, ...) {
  char buf[2048];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  LogLine(level, buf);
}

}  // namespace distkv
