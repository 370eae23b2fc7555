// PromWriter: families, samples, and escaping of label values and help text.
#include "src/obs/prometheus.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "src/obs/utf8.h"
#include "tests/common/prometheus_text.h"

namespace distkv {
namespace {

TEST_CASE("prometheus: a label value cannot break its line or its quotes") {
  std::string out;
  PromWriter prom(&out);
  prom.Family("distkv_x", "gauge", "Help with a \\ and a\nnewline.");
  prom.Sample("distkv_x", {{"replica", "a\"b\nc\\d"}, {"shard", "s"}}, uint64_t{7});
  prom.Metric("distkv_y_total", "counter", "Plain.", 3);
  CHECK(out ==
        "# HELP distkv_x Help with a \\\\ and a\\nnewline.\n"
        "# TYPE distkv_x gauge\n"
        "distkv_x{replica=\"a\\\"b\\nc\\\\d\",shard=\"s\"} 7\n"
        "# HELP distkv_y_total Plain.\n"
        "# TYPE distkv_y_total counter\n"
        "distkv_y_total 3\n");
}

TEST_CASE("prometheus: invalid UTF-8 in a label value becomes U+FFFD") {
  std::string out;
  PromWriter prom(&out);
  prom.Sample("distkv_x", {{"replica", "D\xc3\xa9lhi\xff\xc3"}}, uint64_t{1});
  CHECK(out == "distkv_x{replica=\"D\xc3\xa9lhi\xef\xbf\xbd\xef\xbf\xbd\"} 1\n");
}

TEST_CASE("prometheus: any bytes in label values give text a strict reader accepts") {
  // Each value is read back as written, with each byte outside a valid UTF-8
  // sequence as U+FFFD; no value adds a line or a sample.
  std::mt19937 gen(9);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::string> values;
    std::string out;
    PromWriter prom(&out);
    prom.Family("distkv_x", "gauge", "Values from outside.");
    for (int k = 0; k < 3; ++k) {
      std::string v(gen() % 16, '\0');
      for (char& c : v) {
        // Half the bytes from the ones the format escapes or could be broken by.
        static const char kSharp[] = {'"', '\\', '\n', '\r', '}', ',', '=', ' ', '#'};
        c = gen() % 2 ? kSharp[gen() % sizeof kSharp] : static_cast<char>(gen() & 0xff);
      }
      prom.Sample("distkv_x", {{"replica", v}, {"shard", v}}, static_cast<uint64_t>(round));
      values.push_back(std::move(v));
    }
    CAPTURE(out);
    std::vector<testing::PromSample> samples;
    std::string error;
    REQUIRE_MESSAGE(testing::ParsePromText(out, &samples, &error), error);
    REQUIRE(samples.size() == values.size());
    for (size_t k = 0; k < values.size(); ++k) {
      std::string expected;
      for (size_t i = 0; i < values[k].size();) {
        const size_t n = Utf8SequenceLength(values[k], i);
        expected.append(n ? values[k].substr(i, n) : std::string(kUtf8Replacement));
        i += n ? n : 1;
      }
      CHECK(samples[k].name == "distkv_x");
      REQUIRE(samples[k].labels.size() == 2);
      CHECK(samples[k].labels[0].second == expected);
      CHECK(samples[k].labels[1].second == expected);
      CHECK(samples[k].value == round);
    }
  }
}

TEST_CASE("prometheus: the strict reader refuses what would corrupt a scrape") {
  // The reader the tests rely on is itself strict.
  std::vector<testing::PromSample> samples;
  std::string error;
  CHECK(testing::ParsePromText("x{a=\"1\"} 2\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x{a=\"1\"2\"} 2\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x{a=\"1\n\"} 2\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x{a=\"\\q\"} 2\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x{a=\"\xff\"} 2\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x 2", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("x two\n", &samples, &error));
  CHECK_FALSE(testing::ParsePromText("# TYPE x sort_of\n", &samples, &error));
}

}  // namespace
}  // namespace distkv
