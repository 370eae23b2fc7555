// PromWriter: the Prometheus text exposition format (version 0.0.4).
//
//   # HELP name help text
//   # TYPE name counter|gauge|histogram
//   name{label="value",...} 42
//
// Label values and help text may hold any bytes (a replica's address, a
// shard's name); the writer escapes what the format requires (backslash,
// double quote and newline in label values; backslash and newline in help),
// so no value can break a line or a label. The format is UTF-8: a byte of a
// label value that is not part of a valid UTF-8 sequence is written as
// U+FFFD, as JsonWriter does.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace distkv {

class PromWriter {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  explicit PromWriter(std::string* out) : out_(out) {}

  // The # HELP and # TYPE lines of a metric family; once, before its samples.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, double value);
  // A family of one unlabelled sample.
  void Metric(std::string_view name, std::string_view type, std::string_view help, uint64_t value);

 private:
  void Head(std::string_view name, Labels labels);
  std::string* out_;
};

// Appends value escaped for use between the quotes of a label value.
void AppendPromLabelValue(std::string* out, std::string_view value);

}  // namespace distkv
