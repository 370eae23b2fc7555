// JSON for the cluster tests: the node answers /stats, /cluster and every
// error as JSON, and the tests look inside. Parsing is nlohmann-json's, which
// is strict (RFC 8259: no trailing commas, no invalid UTF-8), so a test that
// parses a body also checks that the node emitted valid JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace distkv::clustertest {

using Json = nlohmann::json;

// False (and *error says where) when text is not exactly one JSON value.
bool ParseJson(std::string_view text, Json* out, std::string* error = nullptr);

// The field called key of an object, or nullptr (also when json is not an object).
const Json* JsonField(const Json& json, std::string_view key);

// Every string value in the tree (object keys excluded), depth first.
void CollectStrings(const Json& json, std::vector<std::string>* out);
// Every number value in the tree, depth first.
void CollectNumbers(const Json& json, std::vector<double>* out);

}  // namespace distkv::clustertest
