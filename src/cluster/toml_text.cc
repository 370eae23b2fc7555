#include "src/cluster/toml_text.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "src/obs/utf8.h"

namespace distkv {

bool CheckTomlText(const std::string& text, const std::string& name, std::string* error) {
  size_t line = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      *error = name + ":" + std::to_string(line) + ": is not valid UTF-8 (byte " +
               std::to_string(i) + "); a TOML file is UTF-8 text";
      return false;
    }
    if (text[i] == '\n') line++;
    i += n;
  }
  return true;
}

// toml11's syntax errors read "[error] toml::parse_...: <what>\n --> file\n  3 | ...".
// Keep the first line's message and the line number.
std::string TomlSyntaxError(const std::string& name, const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  auto colon = first.find(": ");
  if (first.rfind("[error]", 0) == 0 && colon != std::string::npos) first = first.substr(colon + 2);
  std::string line;
  std::istringstream lines(what);
  for (std::string l; std::getline(lines, l);) {
    auto bar = l.find(" | ");
    if (bar != std::string::npos) {
      std::string num = l.substr(0, bar);
      num.erase(std::remove(num.begin(), num.end(), ' '), num.end());
      if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit)) {
        line = num;
        break;
      }
    }
  }
  return name + (line.empty() ? "" : ":" + line) + ": syntax: " + first;
}

}  // namespace distkv
