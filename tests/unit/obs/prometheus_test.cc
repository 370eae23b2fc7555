// PromWriter: families, samples, and escaping of label values and help text.
#include "src/obs/prometheus.h"

#include <doctest/doctest.h>

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

}  // namespace
}  // namespace distkv
