// The answers the client decodes, apart from the map (slot_map.h): an error
// body, a scan page, the results of _mget/_mput, an ETag header.
//
// They are read from whatever a node (or something pretending to be one)
// sent, so each decoder takes any bytes: a body that is not the JSON
// expected, or has a field of the wrong type, is reported as such (the
// caller answers "bad_answer"), never thrown out of a callback. The fuzz
// target tests/fuzz/client_json_fuzz.cc feeds them arbitrary text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/client/client.h"

namespace distkv::client {

// The number in an ETag header ("\"42\"", W/"42" or 42 -> 42); 0 without
// one or for anything else (src/common/etag.h: no stray characters, no
// number past UINT64_MAX).
uint64_t ParseEtag(std::string_view etag);

// The "error" and "message" of a JSON error body; both stay empty when the
// body is not one (or a field is not a string).
void ParseErrorBody(std::string_view body, std::string* error, std::string* message);

// A page of GET /kv: {"keys": [...], "values": [...]?, "cursor": "..."}, each
// key or value a JSON string or {"base64": "..."}. False if it is not one.
bool ParseScanPage(std::string_view body, ScanPage* page);

// The answer of one shard's part of a batch: {"results": [{"status": N,
// "value"?, "etag"?, "error"?}, ...]} with exactly results->size() items,
// written into *results in order (their keys are left alone). False, with
// *results untouched, if it is not one.
bool ParseBatchResults(std::string_view body, std::vector<KeyResult>* results);

}  // namespace distkv::client
