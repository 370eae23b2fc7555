// Batches: POST /kv/_mget and POST /kv/_mput.
//
// _mget's body is a JSON array of keys, or one key per line (text/plain).
// _mput's body is a JSON object {"key": "value", ...}, or NDJSON
// (Content-Type: application/x-ndjson) with one {"key": K, "value": V} per
// line. Anywhere a key or value is written in JSON it may be a string (its
// UTF-8 bytes) or {"base64": "..."} (any bytes), as in the answers.
//
// The answer is 200 with one result per item, in request order:
//   {"results": [{"key": K, "status": 200, "value": V, "etag": "\"7\""},
//                {"key": K, "status": 404, "error": "not_found"}, ...]}
// where status is what a single GET or PUT of that key would have answered
// (503/504/502 when its shard could not be reached).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_message.h"

namespace distkv {

inline constexpr size_t kBatchMaxItems = 10000;

struct BatchItem {
  std::string key;
  std::string value;  // _mput only
};

struct BatchResult {
  int status = 0;
  std::string value;  // _mget, status 200
  bool has_value = false;
  uint64_t lsn = 0;     // ETag, when there is one
  std::string error;    // error code when status is not 2xx
  std::string message;  // and what a single request would have said
};

// False with a 400 (or 413) in *error. max_key_bytes / max_value_bytes are
// the node's limits; every key is checked.
bool ParseMgetBody(std::string_view body, const std::string* content_type, size_t max_key_bytes,
                   std::vector<BatchItem>* items, net::HttpResponse* error);
bool ParseMputBody(std::string_view body, const std::string* content_type, size_t max_key_bytes,
                   size_t max_value_bytes, std::vector<BatchItem>* items, net::HttpResponse* error);

// The NDJSON body of an _mput part / the JSON array of an _mget part, as a
// node forwards them to the owning shard.
std::string EncodeMputBody(const std::vector<BatchItem>& items, const std::vector<size_t>& which);
std::string EncodeMgetBody(const std::vector<BatchItem>& items, const std::vector<size_t>& which);

void AppendBatchJson(std::string* out, const std::vector<BatchItem>& items,
                     const std::vector<BatchResult>& results);
// Reads an answer of AppendBatchJson with exactly n results. False if it is
// not one (a field of the wrong type, an "etag" that is no ETag it writes).
bool DecodeBatchJson(std::string_view body, size_t n, std::vector<BatchResult>* results);

}  // namespace distkv
