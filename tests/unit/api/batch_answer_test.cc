// DecodeBatchJson: the node's reader of a peer's answer to a forwarded batch
// part. A field of another type is a bad answer (false), never an exception
// (nlohmann::json's value() threw on one; tests/fuzz/client_json_fuzz.cc and
// its corpus file decode_batch_status_string feed it such answers).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/api/batch_request.h"

using namespace distkv;

TEST_CASE("DecodeBatchJson reads a peer's results and refuses a malformed answer whole") {
  std::vector<BatchResult> r;
  REQUIRE(DecodeBatchJson(R"({"results":[{"key":"a","status":200,"value":"1","etag":"\"12\""},)"
                          R"({"key":"b","status":404,"error":"not_found"}]})",
                          2, &r));
  REQUIRE(r.size() == 2);
  CHECK(r[0].status == 200);
  CHECK(r[0].has_value);
  CHECK(r[0].value == "1");
  CHECK(r[0].lsn == 12);
  CHECK(r[1].status == 404);
  CHECK(r[1].error == "not_found");

  for (const char* body : {R"({"results":[{"status":"200"}]})",  // threw type_error 302
                           R"({"results":[{}]})", R"({"results":[{"status":2.5}]})",
                           R"({"results":[{"status":70000}]})", R"({"results":[7]})",
                           R"({"results":[{"status":200,"value":[1]}]})", "nonsense"}) {
    INFO(body);
    std::vector<BatchResult> x;
    CHECK_NOTHROW(CHECK_FALSE(DecodeBatchJson(body, 1, &x)));
  }
  // An error code of another type (threw too) is left out.
  std::vector<BatchResult> y;
  CHECK_NOTHROW(CHECK(DecodeBatchJson(R"({"results":[{"status":503,"error":{}}]})", 1, &y)));
  CHECK(y[0].error.empty());
}
