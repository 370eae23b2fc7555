// The client's decoders of the nodes' answers (answers.h) take any bytes: a
// field of the wrong type is "not the answer expected", never an exception
// (nlohmann::json's value() and get<>() throw on one, and the client called
// them inside libuv callbacks, where a throw ends the process).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/client/answers.h"

using namespace distkv::client;

TEST_CASE("ParseErrorBody reads error and message, and ignores fields of another type") {
  std::string error, message;
  ParseErrorBody(R"({"error":"not_found","message":"no key k"})", &error, &message);
  CHECK(error == "not_found");
  CHECK(message == "no key k");
  // Each of these threw nlohmann::json::type_error out of the response callback.
  for (const char* body :
       {R"({"error":5})", R"({"error":"x","message":[1]})", R"({"error":null,"message":{}})"}) {
    error.clear();
    message.clear();
    CHECK_NOTHROW(ParseErrorBody(body, &error, &message));
    CHECK(message.empty());
  }
  ParseErrorBody("<html>busy</html>", &error, &message);
  CHECK(message.empty());
}

TEST_CASE("ParseScanPage takes a page and refuses anything else without throwing") {
  ScanPage page;
  REQUIRE(
      ParseScanPage(R"({"keys":["a",{"base64":"/w=="}],"values":["1","2"],"cursor":"c"})", &page));
  CHECK(page.keys == std::vector<std::string>{"a", "\xff"});
  CHECK(page.values == std::vector<std::string>{"1", "2"});
  CHECK(page.cursor == "c");
  for (const char* body : {R"({"keys":[],"cursor":5})",      // threw: cursor not a string
                           R"({"keys":"abc","cursor":""})",  // keys not a list
                           R"({"keys":[1],"cursor":""})",    // a key that is no string
                           R"({"keys":["a"],"values":[],"cursor":""})",  // values do not match keys
                           R"({"keys":[{"base64":"!!"}],"cursor":""})",  // bad base64
                           R"([])", ""}) {
    ScanPage p;
    CHECK_NOTHROW(CHECK_FALSE(ParseScanPage(body, &p)));
  }
}

TEST_CASE("ParseBatchResults fills the results in order and refuses a wrong answer whole") {
  std::vector<KeyResult> r(2);
  r[0].key = "a";
  r[1].key = "b";
  REQUIRE(ParseBatchResults(
      R"({"results":[{"status":200,"value":"1","etag":"\"12\""},)"
      R"({"status":500,"error":"storage_error","message":"the write was not stored"}]})",
      &r));
  CHECK(r[0].key == "a");
  CHECK(r[0].status == 200);
  CHECK(r[0].value == "1");
  CHECK(r[0].etag == 12);
  CHECK(r[1].status == 500);
  CHECK(r[1].error == "storage_error");
  CHECK(r[1].message == "the write was not stored");
  for (const char* body :
       {R"({"results":[{"status":"200"},{"status":404}]})",  // threw: status a string
        R"({"results":[5,{"status":404}]})",                 // threw: an item no object
        R"({"results":[{"status":200}]})",                   // one result for two
        R"({"results":[{"status":99999},{"status":404}]})",  // not an HTTP status
        R"({"results":[{"status":200,"value":3},{"status":404}]})"}) {
    std::vector<KeyResult> x(2);
    CHECK_NOTHROW(CHECK_FALSE(ParseBatchResults(body, &x)));
    CHECK(x[0].status == 0);
  }
  // An error code of another type threw too; it is ignored like an absent one.
  std::vector<KeyResult> y(1);
  CHECK_NOTHROW(CHECK(ParseBatchResults(R"({"results":[{"status":500,"error":7}]})", &y)));
  CHECK(y[0].status == 500);
  CHECK(y[0].error.empty());
}

TEST_CASE("ParseEtag reads the number of an ETag; anything else is no ETag") {
  CHECK(ParseEtag("\"42\"") == 42);
  CHECK(ParseEtag("W/\"7\"") == 7);
  CHECK(ParseEtag("42") == 42);
  CHECK(ParseEtag("\"18446744073709551615\"") == UINT64_MAX);
  CHECK(ParseEtag("") == 0);
  // Wrapped past 2^64 (to 0 and to 9), or digits picked out of other characters.
  for (const char* bad : {"\"18446744073709551616\"", "18446744073709551625", "\"1x2\"", "1x2",
                          "\"\"", "\"", "\"12", "W/", "abc"}) {
    INFO("etag: [" << bad << "]");
    CHECK(ParseEtag(bad) == 0);
  }
}

TEST_CASE("ParseBatchResults refuses an answer whose etag is no ETag") {
  std::vector<KeyResult> r(1);
  REQUIRE(
      ParseBatchResults(R"({"results":[{"status":200,"etag":"\"18446744073709551615\""}]})", &r));
  CHECK(r[0].etag == UINT64_MAX);
  for (const char* etag :
       {R"("\"18446744073709551616\"")", R"("\"1x2\"")", R"("")", R"("\"\"")", "12", "null"}) {
    const std::string body = std::string(R"({"results":[{"status":200,"etag":)") + etag + "}]}";
    INFO(body);
    std::vector<KeyResult> x(1);
    CHECK_NOTHROW(CHECK_FALSE(ParseBatchResults(body, &x)));
    CHECK(x[0].status == 0);
  }
}
