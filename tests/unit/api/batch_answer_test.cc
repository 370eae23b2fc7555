// DecodeBatchJson: the node's reader of a peer's answer to a forwarded batch
// part. A field of another type is a bad answer (false), never an exception
// (nlohmann::json's value() threw on one; tests/fuzz/client_json_fuzz.cc and
// its corpus file decode_batch_status_string feed it such answers).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/api/batch_request.h"
#include "src/api/kv_request.h"
#include "src/common/etag.h"

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

TEST_CASE("ParseEtagNumber takes digits, quoted or not, up to UINT64_MAX, and nothing else") {
  CHECK(ParseEtagNumber("\"42\"") == 42u);
  CHECK(ParseEtagNumber("42") == 42u);
  CHECK(ParseEtagNumber("0") == 0u);
  CHECK(ParseEtagNumber("18446744073709551615") == UINT64_MAX);
  CHECK(ParseEtagNumber("\"18446744073709551615\"") == UINT64_MAX);
  // Each of these was read as some number: wrapped past 2^64, or digits
  // picked out of other characters.
  for (const char* bad :
       {"18446744073709551616", "\"18446744073709551616\"", "99999999999999999999",
        "184467440737095516150", "1x2", "\"1x2\"", "-1", "+1", " 1", "1 ", "W/\"1\"", "", "\"\"",
        "\"", "\"1", "1\"", "\"\"1\"\""}) {
    INFO("etag: [" << bad << "]");
    CHECK_FALSE(ParseEtagNumber(bad).has_value());
  }
}

TEST_CASE(
    "an ETag and its header line are written as ParseEtagNumber reads them, up to UINT64_MAX") {
  for (uint64_t lsn : {uint64_t{0}, uint64_t{7}, uint64_t{1234567}, UINT64_MAX}) {
    INFO("lsn " << lsn);
    const std::string etag = distkv::MakeEtag(lsn);
    CHECK(etag == "\"" + std::to_string(lsn) + "\"");
    CHECK(etag.size() <= distkv::kMaxEtagBytes);
    CHECK(ParseEtagNumber(etag) == lsn);
    const std::string before = "Before: 1\r\n";
    std::string lines = before;
    distkv::AppendEtagLine(lsn, &lines);
    CHECK(lines == before + "ETag: " + etag + "\r\n");
    CHECK(lines.size() - before.size() <= distkv::kMaxEtagLineBytes);
  }
  // The maxima are reached, not only respected.
  CHECK(distkv::MakeEtag(UINT64_MAX).size() == distkv::kMaxEtagBytes);
  std::string longest;
  distkv::AppendEtagLine(UINT64_MAX, &longest);
  CHECK(longest.size() == distkv::kMaxEtagLineBytes);
}

TEST_CASE("DecodeBatchJson takes an item's etag up to UINT64_MAX and refuses any other") {
  std::vector<BatchResult> r;
  REQUIRE(
      DecodeBatchJson(R"({"results":[{"status":200,"etag":"\"18446744073709551615\""}]})", 1, &r));
  CHECK(r[0].lsn == UINT64_MAX);
  for (const char* etag : {R"("\"18446744073709551616\"")", R"("\"1x2\"")", R"("")", R"("\"\"")",
                           R"("abc")", "12", "null"}) {
    const std::string body = std::string(R"({"results":[{"status":200,"etag":)") + etag + "}]}";
    INFO(body);
    std::vector<BatchResult> x;
    CHECK_NOTHROW(CHECK_FALSE(DecodeBatchJson(body, 1, &x)));
  }
}

TEST_CASE("a failed item's message goes through a forwarding node unchanged") {
  std::vector<BatchItem> items(2);
  items[0].key = "kept";
  items[1].key = "undone";
  std::vector<BatchResult> results(2);
  results[0].status = 500;
  results[0].error = "storage_error";
  results[0].message = "IOError: the write may or may not be stored";
  results[1].status = 500;
  results[1].error = "storage_error";
  results[1].message = "IOError: the write was not stored";
  std::string body;
  AppendBatchJson(&body, items, results);
  std::vector<BatchResult> got;
  REQUIRE(DecodeBatchJson(body, 2, &got));
  for (size_t i = 0; i < 2; ++i) {
    CHECK(got[i].status == 500);
    CHECK(got[i].error == "storage_error");
    CHECK(got[i].message == results[i].message);
  }
}
