#include "src/api/batch_request.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "src/common/etag.h"
#include "src/obs/json_bytes.h"
#include "src/obs/json_writer.h"

namespace distkv {

namespace {

using json = nlohmann::ordered_json;  // keeps an object's order: results follow the request

bool Bytes(const json& j, std::string* out) {
  if (j.is_string()) {
    *out = j.get<std::string>();
    return true;
  }
  if (j.is_object() && j.size() == 1 && j.contains("base64") && j["base64"].is_string())
    return Base64Decode(j["base64"].get<std::string>(), out);
  return false;
}

net::HttpResponse Bad(const std::string& message) {
  return net::MakeErrorResponse(400, "bad_batch", message);
}

bool CheckItem(const BatchItem& item, size_t max_key_bytes, size_t max_value_bytes,
               net::HttpResponse* error) {
  if (item.key.empty() || item.key.size() > max_key_bytes) {
    *error = Bad("every key must have 1 to " + std::to_string(max_key_bytes) + " bytes");
    return false;
  }
  if (item.value.size() > max_value_bytes) {
    *error = net::MakeErrorResponse(413, "value_too_large",
                                    "a value has " + std::to_string(item.value.size()) +
                                        " bytes; the limit is " + std::to_string(max_value_bytes));
    return false;
  }
  return true;
}

bool CheckCount(size_t n, net::HttpResponse* error) {
  if (n == 0) {
    *error = Bad("the batch is empty");
    return false;
  }
  if (n > kBatchMaxItems) {
    *error = Bad("a batch holds at most " + std::to_string(kBatchMaxItems) + " items");
    return false;
  }
  return true;
}

bool IsType(const std::string* content_type, std::string_view type) {
  return content_type && content_type->find(type) != std::string::npos;
}

}  // namespace

bool ParseMgetBody(std::string_view body, const std::string* content_type, size_t max_key_bytes,
                   std::vector<BatchItem>* items, net::HttpResponse* error) {
  items->clear();
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && body[first] == '[' && !IsType(content_type, "text/")) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
      *error = Bad("the body is not a JSON array of keys");
      return false;
    }
    for (const json& k : j) {
      BatchItem item;
      if (!Bytes(k, &item.key)) {
        *error = Bad("every key must be a string or {\"base64\": \"...\"}");
        return false;
      }
      items->push_back(std::move(item));
    }
  } else {
    size_t start = 0;
    while (start < body.size()) {
      size_t nl = body.find('\n', start);
      if (nl == std::string_view::npos) nl = body.size();
      std::string_view line = body.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) items->push_back(BatchItem{std::string(line), {}});
      start = nl + 1;
    }
  }
  if (!CheckCount(items->size(), error)) return false;
  for (const BatchItem& item : *items) {
    if (!CheckItem(item, max_key_bytes, SIZE_MAX, error)) return false;
  }
  return true;
}

bool ParseMputBody(std::string_view body, const std::string* content_type, size_t max_key_bytes,
                   size_t max_value_bytes, std::vector<BatchItem>* items,
                   net::HttpResponse* error) {
  items->clear();
  if (IsType(content_type, "ndjson")) {
    size_t start = 0;
    while (start < body.size()) {
      size_t nl = body.find('\n', start);
      if (nl == std::string_view::npos) nl = body.size();
      std::string_view line = body.substr(start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      json j = json::parse(line, nullptr, false);
      BatchItem item;
      if (j.is_discarded() || !j.is_object() || !j.contains("key") || !j.contains("value") ||
          !Bytes(j["key"], &item.key) || !Bytes(j["value"], &item.value)) {
        *error = Bad("every NDJSON line must be {\"key\": ..., \"value\": ...}");
        return false;
      }
      items->push_back(std::move(item));
    }
  } else {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      *error =
          Bad("the body must be a JSON object {\"key\": \"value\", ...} (or NDJSON with "
              "Content-Type: application/x-ndjson)");
      return false;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      BatchItem item;
      item.key = it.key();
      if (!Bytes(it.value(), &item.value)) {
        *error = Bad("every value must be a string or {\"base64\": \"...\"}");
        return false;
      }
      items->push_back(std::move(item));
    }
  }
  if (!CheckCount(items->size(), error)) return false;
  for (const BatchItem& item : *items) {
    if (!CheckItem(item, max_key_bytes, max_value_bytes, error)) return false;
  }
  return true;
}

std::string EncodeMputBody(const std::vector<BatchItem>& items, const std::vector<size_t>& which) {
  std::string out;
  for (size_t i : which) AppendKeyValueLine(&out, items[i].key, items[i].value);
  return out;
}

std::string EncodeMgetBody(const std::vector<BatchItem>& items, const std::vector<size_t>& which) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (size_t i : which) w.Bytes(items[i].key);
  w.EndArray();
  return out;
}

void AppendBatchJson(std::string* out, const std::vector<BatchItem>& items,
                     const std::vector<BatchResult>& results) {
  JsonWriter w(out);
  w.BeginObject();
  w.Key("results");
  w.BeginArray();
  for (size_t i = 0; i < results.size(); ++i) {
    const BatchResult& r = results[i];
    w.BeginObject();
    w.Key("key");
    w.Bytes(items[i].key);
    w.Field("status", r.status);
    if (r.has_value) {
      w.Key("value");
      w.Bytes(r.value);
    }
    if (r.lsn) w.Field("etag", "\"" + std::to_string(r.lsn) + "\"");
    if (!r.error.empty()) w.Field("error", r.error);
    if (!r.message.empty()) w.Field("message", r.message);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  *out += '\n';
}

bool DecodeBatchJson(std::string_view body, size_t n, std::vector<BatchResult>* results) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("results") || !j["results"].is_array() ||
      j["results"].size() != n) {
    return false;
  }
  results->clear();
  for (const json& item : j["results"]) {
    BatchResult r;
    // value() and get<>() throw on a field of another type: check each first.
    if (!item.is_object() || !item.contains("status") || !item["status"].is_number_integer())
      return false;
    const int64_t status = item["status"].get<int64_t>();
    if (status < 100 || status > 599) return false;
    r.status = static_cast<int>(status);
    if (item.contains("value")) {
      if (!Bytes(item["value"], &r.value)) return false;
      r.has_value = true;
    }
    if (item.contains("etag")) {
      // An ETag as AppendBatchJson writes it, or a bad answer.
      if (!item["etag"].is_string()) return false;
      const std::optional<uint64_t> lsn = ParseEtagNumber(item["etag"].get<std::string>());
      if (!lsn) return false;
      r.lsn = *lsn;
    }
    if (item.contains("error") && item["error"].is_string())
      r.error = item["error"].get<std::string>();
    if (item.contains("message") && item["message"].is_string())
      r.message = item["message"].get<std::string>();
    results->push_back(std::move(r));
  }
  return true;
}

}  // namespace distkv
