// A strict reader of the Prometheus text exposition format (0.0.4) for the
// tests: every line is a # HELP, a # TYPE or a sample whose metric and label
// names are names, whose label values are quoted with only \\, \" and \n
// escaped, and whose value is a number; the whole text is UTF-8 and ends in
// a newline. It also gives the samples back, label values unescaped, so a
// test can look at what a label carried.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distkv::testing {

struct PromSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // values unescaped
  double value = 0;
};

namespace prom_detail {

inline bool NameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// Reads a name at line[*i]; false if there is none.
inline bool ReadName(std::string_view line, size_t* i, std::string* name) {
  const size_t start = *i;
  while (*i < line.size() && NameChar(line[*i], *i == start)) ++*i;
  *name = std::string(line.substr(start, *i - start));
  return *i > start;
}

inline bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                 ? 1
               : c >= 0xc2 && c <= 0xdf ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

inline bool ReadValue(std::string_view text, double* value) {
  if (text == "+Inf" || text == "-Inf" || text == "NaN") return true;
  if (text.empty()) return false;
  const std::string s(text);
  char* end = nullptr;
  *value = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace prom_detail

// True when text is valid exposition text; *samples gets its samples. On
// false, *error names the line and what is wrong with it.
inline bool ParsePromText(std::string_view text, std::vector<PromSample>* samples,
                          std::string* error) {
  using namespace prom_detail;
  if (!ValidUtf8(text)) {
    *error = "not UTF-8";
    return false;
  }
  if (!text.empty() && text.back() != '\n') {
    *error = "no final newline";
    return false;
  }
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    auto fail = [&](const char* what) {
      *error = "line " + std::to_string(line_no) + " (" + std::string(line) + "): " + what;
      return false;
    };
    std::string name;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      size_t i = 7;
      if (!ReadName(line, &i, &name)) return fail("no metric name");
      if (i < line.size() && line[i] != ' ') return fail("bad metric name");
      const std::string_view rest = i < line.size() ? line.substr(i + 1) : std::string_view();
      if (line[2] == 'T') {
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped") {
          return fail("unknown type");
        }
      } else {
        for (size_t k = 0; k < rest.size(); ++k) {
          if (rest[k] == '\\' && (++k >= rest.size() || (rest[k] != '\\' && rest[k] != 'n'))) {
            return fail("bad escape in help");
          }
        }
      }
      continue;
    }
    if (line.starts_with("#")) return fail("a comment that is neither HELP nor TYPE");
    PromSample s;
    size_t i = 0;
    if (!ReadName(line, &i, &s.name)) return fail("no metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string label, value;
        if (!ReadName(line, &i, &label)) return fail("no label name");
        if (line.substr(i, 2) != "=\"") return fail("no =\" after a label name");
        i += 2;
        for (;;) {
          if (i >= line.size()) return fail("unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c != '\\') {
            value.push_back(c);
            continue;
          }
          if (i >= line.size()) return fail("unterminated escape");
          const char e = line[i++];
          if (e == '\\' || e == '"') {
            value.push_back(e);
          } else if (e == 'n') {
            value.push_back('\n');
          } else {
            return fail("bad escape in a label value");
          }
        }
        s.labels.emplace_back(std::move(label), std::move(value));
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail("unterminated label set");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return fail("no space before the value");
    std::string_view rest = line.substr(i + 1);
    const size_t space = rest.find(' ');  // an optional timestamp follows
    double ts = 0;
    if (space != std::string_view::npos && !ReadValue(rest.substr(space + 1), &ts)) {
      return fail("bad timestamp");
    }
    if (!ReadValue(rest.substr(0, space), &s.value)) return fail("bad value");
    samples->push_back(std::move(s));
  }
  return true;
}

}  // namespace distkv::testing
