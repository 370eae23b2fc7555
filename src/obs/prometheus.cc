// See prometheus.h.
#include "src/obs/prometheus.h"

#include <cstdio>

#include "src/obs/utf8.h"

namespace distkv {

void AppendPromLabelValue(std::string* out, std::string_view value) {
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      // The format is UTF-8: a byte that is not part of a valid sequence
      // becomes U+FFFD, as in JSON.
      const size_t n = Utf8SequenceLength(value, i);
      if (n == 0) {
        out->append(kUtf8Replacement);
        i++;
      } else {
        out->append(value.substr(i, n));
        i += n;
      }
      continue;
    }
    i++;
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

void PromWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_->append("# HELP ").append(name).push_back(' ');
  for (char c : help) {
    if (c == '\\') {
      out_->append("\\\\");
    } else if (c == '\n') {
      out_->append("\\n");
    } else {
      out_->push_back(c);
    }
  }
  out_->append("\n# TYPE ").append(name).append(" ").append(type).push_back('\n');
}

void PromWriter::Head(std::string_view name, Labels labels) {
  out_->append(name);
  if (labels.size() == 0) return;
  out_->push_back('{');
  bool first = true;
  for (const auto& [label, value] : labels) {
    if (!first) out_->push_back(',');
    first = false;
    out_->append(label).append("=\"");
    AppendPromLabelValue(out_, value);
    out_->push_back('"');
  }
  out_->push_back('}');
}

void PromWriter::Sample(std::string_view name, Labels labels, uint64_t value) {
  Head(name, labels);
  out_->push_back(' ');
  out_->append(std::to_string(value)).push_back('\n');
}

void PromWriter::Sample(std::string_view name, Labels labels, double value) {
  Head(name, labels);
  char text[32];
  snprintf(text, sizeof text, " %.6f\n", value);
  out_->append(text);
}

void PromWriter::Metric(std::string_view name, std::string_view type, std::string_view help,
                        uint64_t value) {
  Family(name, type, help);
  Sample(name, {}, value);
}

}  // namespace distkv
