// EventLog (the recent-events ring) and ProgressBoard (long operations'
// progress): what /stats shows of them.
#include <doctest/doctest.h>

#include <string>

#include "src/obs/events.h"
#include "src/obs/metrics.h"
#include "src/obs/progress.h"

namespace distkv {
namespace {

TEST_CASE("EventLog keeps the newest events in order, stamped, and drops the oldest") {
  uint64_t now = 1000;
  EventLog log([&] { return now; });
  CHECK(log.Recent().empty());
  std::string empty;
  {
    JsonWriter w(&empty);
    log.WriteJson(&w);
  }
  CHECK(empty == "[]");

  log.Add("start", "primary of Delhi");
  now = 2000;
  log.Add("failover", "promoted \"b\"");
  std::string json;
  {
    JsonWriter w(&json);
    log.WriteJson(&w);
  }
  CHECK(json ==
        "[{\"seq\":1,\"time_ms\":1000,\"kind\":\"start\",\"message\":\"primary of Delhi\"},"
        "{\"seq\":2,\"time_ms\":2000,\"kind\":\"failover\",\"message\":\"promoted \\\"b\\\"\"}]");

  for (size_t i = 0; i < EventLog::kCapacity + 5; ++i) log.Add("compaction", std::to_string(i));
  const auto recent = log.Recent();
  REQUIRE(recent.size() == EventLog::kCapacity);
  CHECK(log.total() == EventLog::kCapacity + 7);
  CHECK(recent.front().seq == 8);  // the first 7 were pushed out
  CHECK(recent.back().seq == EventLog::kCapacity + 7);
  CHECK(recent.back().message == std::to_string(EventLog::kCapacity + 4));
  for (size_t i = 1; i < recent.size(); ++i) CHECK(recent[i].seq == recent[i - 1].seq + 1);
}

TEST_CASE("ProgressBoard shows a running operation, then its outcome; a new run starts afresh") {
  uint64_t now = 10;
  ProgressBoard board([&] { return now; });
  board.Update("compaction", 0, 100, "bytes");
  now = 20;
  board.Update("compaction", 40, 100, "bytes", "3 segments, copying");
  const ProgressBoard::Entry* e = board.Find("compaction");
  REQUIRE(e != nullptr);
  CHECK(e->running);
  CHECK(e->done == 40);
  CHECK(e->started_ms == 10);
  CHECK(e->updated_ms == 20);
  std::string json;
  {
    JsonWriter w(&json);
    board.WriteJson(&w);
  }
  CHECK(
      json ==
      "{\"compaction\":{\"running\":true,\"done\":40,\"total\":100,\"unit\":\"bytes\","
      "\"detail\":\"3 segments, copying\",\"started_ms\":10,\"updated_ms\":20,\"outcome\":\"\"}}");

  now = 30;
  board.Finish("compaction", "done");
  CHECK_FALSE(board.Find("compaction")->running);
  CHECK(board.Find("compaction")->outcome == "done");
  board.Finish("resync", "never started");  // unknown: ignored
  CHECK(board.Find("resync") == nullptr);

  now = 40;
  board.Update("compaction", 1, 50, "bytes");
  CHECK(board.Find("compaction")->started_ms == 40);
  CHECK(board.Find("compaction")->outcome.empty());
}

TEST_CASE("RequestMetrics keeps key-value latency apart from status pages") {
  RequestMetrics m;
  m.Record(Route::kKvGet, 200, 80);
  m.Record(Route::kForwarded, 200, 300);
  m.Record(Route::kStats, 200, 5'000'000);
  CHECK(m.latency().count() == 3);
  CHECK(m.kv_latency().count() == 2);
  CHECK(m.kv_latency().QuantileUpperBoundUs(1.0) == 500);
  std::string json;
  {
    JsonWriter w(&json);
    m.kv_latency().WriteJson(&w);
  }
  CHECK(json.rfind("{\"bounds_us\":[50,100,250,500,", 0) == 0);
  CHECK(json.find("\"counts\":[0,1,0,1,0,") != std::string::npos);
}

}  // namespace
}  // namespace distkv
