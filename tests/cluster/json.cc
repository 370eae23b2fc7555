// JSON for the cluster tests: see json.h.
#include "tests/cluster/json.h"

namespace distkv::clustertest {

bool ParseJson(std::string_view text, Json* out, std::string* error) {
  try {
    *out = Json::parse(text.begin(), text.end());
    return true;
  } catch (const Json::parse_error& e) {
    if (error != nullptr) *error = e.what();
    return false;
  }
}

const Json* JsonField(const Json& json, std::string_view key) {
  if (!json.is_object()) return nullptr;
  auto it = json.find(key);
  return it == json.end() ? nullptr : &*it;
}

void CollectStrings(const Json& json, std::vector<std::string>* out) {
  if (json.is_string()) {
    out->push_back(json.get<std::string>());
  } else if (json.is_structured()) {
    for (const Json& item : json) CollectStrings(item, out);
  }
}

void CollectNumbers(const Json& json, std::vector<double>* out) {
  if (json.is_number()) {
    out->push_back(json.get<double>());
  } else if (json.is_structured()) {
    for (const Json& item : json) CollectNumbers(item, out);
  }
}

}  // namespace distkv::clustertest
