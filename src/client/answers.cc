// Decoders of the nodes' answers; see answers.h. Every field is checked for
// its type before it is read: nlohmann::json's get<>() and value() throw on
// a wrong type, and an exception must not escape into a libuv callback.
#include "src/client/answers.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "src/common/etag.h"
#include "src/obs/json_bytes.h"

namespace distkv::client {

namespace {

// A JSON string or {"base64": "..."}: its bytes. False for anything else.
bool JsonBytes(const nlohmann::json& j, std::string* out) {
  out->clear();
  if (j.is_string()) {
    *out = j.get<std::string>();
    return true;
  }
  if (j.is_object() && j.size() == 1 && j.contains("base64") && j["base64"].is_string()) {
    return Base64Decode(j["base64"].get<std::string>(), out);
  }
  return false;
}

// A list of byte strings (keys or values of a scan page).
bool JsonBytesList(const nlohmann::json& j, std::vector<std::string>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const auto& item : j) {
    std::string bytes;
    if (!JsonBytes(item, &bytes)) return false;
    out->push_back(std::move(bytes));
  }
  return true;
}

std::string StringField(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

uint64_t ParseEtag(std::string_view etag) {
  // A proxy may weaken it (W/"42"); the number is the same.
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  return ParseEtagNumber(etag).value_or(0);
}

void ParseErrorBody(std::string_view body, std::string* error, std::string* message) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  *error = StringField(j, "error");
  *message = StringField(j, "message");
}

bool ParseScanPage(std::string_view body, ScanPage* page) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto keys = j.find("keys");
  auto cursor = j.find("cursor");
  if (keys == j.end() || cursor == j.end() || !cursor->is_string()) return false;
  ScanPage p;
  if (!JsonBytesList(*keys, &p.keys)) return false;
  if (auto values = j.find("values"); values != j.end()) {
    if (!JsonBytesList(*values, &p.values) || p.values.size() != p.keys.size()) return false;
  }
  p.cursor = cursor->get<std::string>();
  *page = std::move(p);
  return true;
}

bool ParseBatchResults(std::string_view body, std::vector<KeyResult>* results) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto items = j.find("results");
  if (items == j.end() || !items->is_array() || items->size() != results->size()) return false;
  std::vector<KeyResult> out(results->size());
  for (size_t n = 0; n < out.size(); ++n) {
    const nlohmann::json& item = (*items)[n];
    if (!item.is_object()) return false;
    auto status = item.find("status");
    if (status == item.end() || !status->is_number_integer()) return false;
    const int64_t code = status->get<int64_t>();
    if (code < 100 || code > 599) return false;
    out[n].status = static_cast<int>(code);
    if (auto value = item.find("value"); value != item.end()) {
      if (!JsonBytes(*value, &out[n].value)) return false;
    }
    if (auto etag = item.find("etag"); etag != item.end()) {
      if (!etag->is_string()) return false;
      const std::optional<uint64_t> lsn = ParseEtagNumber(etag->get<std::string>());
      if (!lsn) return false;
      out[n].etag = *lsn;
    }
    out[n].error = StringField(item, "error");
    out[n].message = StringField(item, "message");
  }
  for (size_t n = 0; n < out.size(); ++n) {
    KeyResult& r = (*results)[n];
    r.status = out[n].status;
    r.value = std::move(out[n].value);
    r.etag = out[n].etag;
    r.error = std::move(out[n].error);
    r.message = std::move(out[n].message);
  }
  return true;
}

}  // namespace distkv::client
