// A small JSON reader for the cluster tests: the node answers /stats,
// /cluster and every error as JSON, and the tests look inside.
//
// ParseJson builds a plain tree (objects keep their field order). It accepts
// RFC 8259 JSON; \u escapes are decoded to UTF-8 (surrogate pairs included).
// It is a test tool: no streaming, no depth limit beyond the stack.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distkv::clustertest {

struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;         // kString: the decoded string; kNumber: the literal as written
  std::vector<Json> items;  // kArray
  std::vector<std::pair<std::string, Json>> fields;  // kObject

  bool is_object() const { return type == Type::kObject; }
  bool is_string() const { return type == Type::kString; }
  bool is_number() const { return type == Type::kNumber; }
  // The field called key of an object, or nullptr (also when not an object).
  const Json* Get(std::string_view key) const;
};

// False (and *error says where) when text is not one JSON value.
bool ParseJson(std::string_view text, Json* out, std::string* error = nullptr);

// Every string value in the tree (object keys excluded), depth first.
void CollectStrings(const Json& json, std::vector<std::string>* out);
// Every number value in the tree, depth first.
void CollectNumbers(const Json& json, std::vector<double>* out);

}  // namespace distkv::clustertest
