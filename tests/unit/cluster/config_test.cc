// sharding.toml parsing and validation: the seed format, the optional keys,
// and one clear error (file, line, field) for each kind of mistake.
#include <doctest/doctest.h>

#include "src/cluster/config.h"

using distkv::ClusterConfig;
using distkv::ParseConfig;

namespace {

const char* kSeed = R"(
[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
replicas = ["127.0.0.22:8080"]

[[shards]]
name = "Mumbai"
idx = 1
address = "127.0.0.3:8080"
replica = "127.0.0.33:8080"
)";

std::string ErrorOf(const std::string& text) {
  ClusterConfig c;
  std::string error;
  CHECK_FALSE(ParseConfig(text, "test.toml", &c, &error));
  return error;
}

}  // namespace

TEST_CASE("the seed format parses with defaults for everything else") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig(kSeed, "test.toml", &c, &error), error);
  REQUIRE(c.shards.size() == 2);
  CHECK(c.shards[0].name == "Delhi");
  CHECK(c.shards[0].replicas == std::vector<std::string>{"127.0.0.22:8080"});
  CHECK(c.shards[1].replicas == std::vector<std::string>{"127.0.0.33:8080"});
  CHECK(c.routing == distkv::RoutingMode::kProxy);
  CHECK(c.fsync == distkv::storage::FsyncMode::kAlways);
  CHECK_FALSE(c.reads_latest);
  CHECK(c.compact_priority == ClusterConfig::CompactPriority::kIdle);
  CHECK(c.compact_bytes_per_s == 0);
  // Default split: two equal contiguous halves.
  REQUIRE(c.shards[0].slots.size() == 1);
  CHECK(c.shards[0].slots[0].first == 0);
  CHECK(c.shards[0].slots[0].last == 8191);
  CHECK(c.shards[1].slots[0].first == 8192);
  CHECK(c.shards[1].slots[0].last == 16383);
}

TEST_CASE("optional sections are read") {
  ClusterConfig c;
  std::string error;
  std::string text = std::string(R"(
[cluster]
routing = "redirect"
forward_timeout_ms = 300
[storage]
fsync = "never"
reads = "latest"
segment_bytes = 1048576
compact_dead_ratio = 0.25
compact_min_bytes = 1000
compact_priority = "low"
compact_bytes_per_s = 2097152
replica_keep_records = 5
replica_keep_bytes = 4096
[replication]
stall_timeout_ms = 60000
[server]
header_timeout_ms = 1500
max_connections = 10
max_staged_bytes = 4096
[limits]
max_key_bytes = 100
max_value_bytes = 1000
)") + kSeed;
  REQUIRE_MESSAGE(ParseConfig(text, "test.toml", &c, &error), error);
  CHECK(c.routing == distkv::RoutingMode::kRedirect);
  CHECK(c.forward_timeout_ms == 300);
  CHECK(c.fsync == distkv::storage::FsyncMode::kNever);
  CHECK(c.reads_latest);
  CHECK(c.segment_bytes == 1048576);
  CHECK(c.compact_dead_ratio == 0.25);
  CHECK(c.compact_min_bytes == 1000);
  CHECK(c.compact_priority == ClusterConfig::CompactPriority::kLow);
  CHECK(c.compact_bytes_per_s == 2097152);
  CHECK(c.replica_keep_records == 5);
  CHECK(c.replica_keep_bytes == 4096);
  CHECK(c.stall_timeout_ms == 60000);
  CHECK(c.server.header_timeout_ms == 1500);
  CHECK(c.server.max_connections == 10);
  CHECK(c.server.max_staged_bytes == 4096);
  CHECK(c.max_key_bytes == 100);
  CHECK(c.max_value_bytes == 1000);
}

TEST_CASE("explicit slot ranges replace the default split") {
  ClusterConfig c;
  std::string error;
  const char* text = R"(
[[shards]]
name = "a"
idx = 0
address = "127.0.0.1:1"
slots = [[0, 99], "16000-16383"]
[[shards]]
name = "b"
idx = 1
address = "127.0.0.1:2"
slots = ["100-15999"]
)";
  REQUIRE_MESSAGE(ParseConfig(text, "test.toml", &c, &error), error);
  CHECK(c.shards[0].slots.size() == 2);
  CHECK(c.shards[1].slots[0].first == 100);
}

TEST_CASE("mistakes are refused with file, line and field") {
  SUBCASE("syntax error") {
    std::string e = ErrorOf("[[shards]\nname = 1\n");
    CHECK(e.rfind("test.toml:1:", 0) == 0);
  }
  SUBCASE("missing address") {
    std::string e = ErrorOf("[[shards]]\nname = \"a\"\nidx = 0\n");
    CHECK(e.find("shards[0].address") != std::string::npos);
    CHECK(e.rfind("test.toml:", 0) == 0);
  }
  SUBCASE("wrong type names the line") {
    std::string e = ErrorOf("[[shards]]\nname = \"a\"\nidx = \"zero\"\naddress = \"h:1\"\n");
    CHECK(e.find("test.toml:3: shards[0].idx") == 0);
  }
  SUBCASE("duplicate names") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\n"
        "[[shards]]\nname = \"a\"\nidx = 1\naddress = \"h:2\"\n");
    CHECK(e.find("duplicate shard name") != std::string::npos);
  }
  SUBCASE("duplicate idx") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\n"
        "[[shards]]\nname = \"b\"\nidx = 0\naddress = \"h:2\"\n");
    CHECK(e.find("duplicate idx") != std::string::npos);
  }
  SUBCASE("duplicate address, replicas included") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\n"
        "[[shards]]\nname = \"b\"\nidx = 1\naddress = \"h:2\"\nreplicas = [\"h:1\"]\n");
    CHECK(e.find("used twice") != std::string::npos);
  }
  SUBCASE("gap in idx") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\n"
        "[[shards]]\nname = \"b\"\nidx = 2\naddress = \"h:2\"\n");
    CHECK(e.find("test.toml:7: shards[1].idx: 2 is not within 0-1 (there are 2 shards)") == 0);
  }
  SUBCASE("overlapping slots") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\nslots = [\"0-10000\"]\n"
        "[[shards]]\nname = \"b\"\nidx = 1\naddress = \"h:2\"\nslots = [\"9000-16383\"]\n");
    CHECK(e.find("owned by both") != std::string::npos);
  }
  SUBCASE("a slot range in text that is not one") {
    const char* shard = "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\nslots = ";
    for (const char* bad : {"0-16383x", "0-100-16383", " 0-16383", "0-16384", "+0-16383", "9-1"}) {
      CAPTURE(bad);
      std::string e = ErrorOf(std::string(shard) + "[\"" + bad + "\"]\n");
      CHECK(e == std::string("test.toml:5: shards[0].slots[0]: \"") + bad +
                     "\" is not a slot range (\"first-last\" or \"slot\", within 0-16383)");
    }
  }
  SUBCASE("unowned slots") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\nslots = [\"0-100\"]\n"
        "[[shards]]\nname = \"b\"\nidx = 1\naddress = \"h:2\"\nslots = [\"200-16383\"]\n");
    CHECK(e.find("slot 101 has no owner") != std::string::npos);
  }
  SUBCASE("bad fsync mode") {
    std::string e = ErrorOf(std::string("[storage]\nfsync = \"sometimes\"\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.fsync") == 0);
  }
  SUBCASE("bad read mode") {
    std::string e = ErrorOf(std::string("[storage]\nreads = \"fast\"\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.reads: \"fast\" is not one of") == 0);
  }
  SUBCASE("compaction ratio out of range or of the wrong type") {
    std::string e = ErrorOf(std::string("[storage]\ncompact_dead_ratio = 1.5\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.compact_dead_ratio: must be between") == 0);
    e = ErrorOf(std::string("[storage]\ncompact_dead_ratio = \"half\"\n") + kSeed);
    CHECK(e.find("storage.compact_dead_ratio: has the wrong type") != std::string::npos);
    e = ErrorOf(std::string("[storage]\ncompact_min_bytes = -1\n") + kSeed);
    CHECK(e.find("storage.compact_min_bytes") != std::string::npos);
  }
  SUBCASE("compaction priority not one of the three") {
    std::string e = ErrorOf(std::string("[storage]\ncompact_priority = \"nice\"\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.compact_priority: \"nice\" is not one of \"idle\", "
                 "\"low\", \"normal\"") == 0);
    e = ErrorOf(std::string("[storage]\ncompact_priority = 19\n") + kSeed);
    CHECK(e.find("storage.compact_priority") != std::string::npos);
  }
  SUBCASE("compaction pace below 1 MiB/s, negative or not a number") {
    std::string e = ErrorOf(std::string("[storage]\ncompact_bytes_per_s = 50\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.compact_bytes_per_s: must be 0 (unpaced) or at least "
                 "1048576 (1 MiB/s; the value is in bytes per second)") == 0);
    e = ErrorOf(std::string("[storage]\ncompact_bytes_per_s = -1\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.compact_bytes_per_s: must be at least 0") == 0);
    e = ErrorOf(std::string("[storage]\ncompact_bytes_per_s = \"64MB\"\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.compact_bytes_per_s") == 0);
  }
  SUBCASE("replica bounds of the wrong type or sign") {
    std::string e = ErrorOf(std::string("[storage]\nreplica_keep_bytes = -1\n") + kSeed);
    CHECK(e.find("test.toml:2: storage.replica_keep_bytes") == 0);
    e = ErrorOf(std::string("[storage]\nreplica_keep_bytes = \"1 GiB\"\n") + kSeed);
    CHECK(e.find("storage.replica_keep_bytes") != std::string::npos);
    e = ErrorOf(std::string("[replication]\nstall_timeout_ms = 0\n") + kSeed);
    CHECK(e.find("test.toml:2: replication.stall_timeout_ms") == 0);
  }
  SUBCASE("bad routing") {
    std::string e = ErrorOf(std::string("[cluster]\nrouting = \"gossip\"\n") + kSeed);
    CHECK(e.find("cluster.routing") != std::string::npos);
  }
  SUBCASE("more acknowledgements than replicas") {
    std::string e = ErrorOf(std::string("[replication]\nmin_acks = 2\n") + kSeed);
    CHECK(e.find("test.toml:2: replication.min_acks") == 0);
  }
  SUBCASE("idx beyond 32 bits is not taken as 0") {
    std::string e = ErrorOf(
        "[[shards]]\nname = \"a\"\nidx = 4294967296\naddress = \"h:1\"\n"
        "[[shards]]\nname = \"b\"\nidx = 1\naddress = \"h:2\"\n");
    CHECK(e == "test.toml:3: shards[0].idx: 4294967296 is not within 0-1 (there are 2 shards)");
  }
  SUBCASE("a huge port") {
    std::string e =
        ErrorOf("[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:99999999999999999999\"\n");
    CHECK(e ==
          "test.toml:4: shards[0].address: \"h:99999999999999999999\" is not host:port: port "
          "99999999999999999999 is not within 1-65535");
  }
  SUBCASE("a replica's port out of range") {
    std::string e =
        ErrorOf("[[shards]]\nname = \"a\"\nidx = 0\naddress = \"h:1\"\nreplicas = [\"h:65536\"]\n");
    CHECK(e.find("test.toml:5: shards[0].replicas: \"h:65536\"") == 0);
  }
  SUBCASE("max_value_bytes above the record format's 4 GiB limit") {
    std::string e = ErrorOf(std::string("[limits]\nmax_value_bytes = 4294967296\n") + kSeed);
    CHECK(e == "test.toml:2: limits.max_value_bytes: 4294967296 is above the limit of 4294967295");
  }
  SUBCASE("min_acks far out of range") {
    std::string e = ErrorOf(std::string("[replication]\nmin_acks = 4294967296\n") + kSeed);
    CHECK(e.find("test.toml:2: replication.min_acks: 4294967296 is above") == 0);
  }
  SUBCASE("no shards") {
    std::string e = ErrorOf("[cluster]\nrouting = \"proxy\"\n");
    CHECK(e.find("at least one [[shards]]") != std::string::npos);
  }
}

TEST_CASE("coordinator.primary_reads: lease by default, always on request, nothing else") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig(kSeed, "test.toml", &c, &error), error);
  CHECK(c.primary_reads_need_lease);
  ClusterConfig always;
  REQUIRE_MESSAGE(ParseConfig(std::string("[coordinator]\nprimary_reads = \"always\"\n") + kSeed,
                              "test.toml", &always, &error),
                  error);
  CHECK_FALSE(always.primary_reads_need_lease);
  std::string e = ErrorOf(std::string("[coordinator]\nprimary_reads = \"never\"\n") + kSeed);
  CHECK(e.find("test.toml:2: coordinator.primary_reads: \"never\" is not one of") == 0);
}

TEST_CASE("unknown keys and sections are refused with file and line") {
  SUBCASE("a misspelt key in a section") {
    std::string e = ErrorOf(std::string("[replication]\nmin_ack = 1\n") + kSeed);
    CHECK(e.find("test.toml:2: replication.min_ack: unknown key (known keys: min_acks") == 0);
  }
  SUBCASE("a misspelt key of [storage]") {
    std::string e = ErrorOf(std::string("[storage]\n\nfsnyc = \"never\"\n") + kSeed);
    CHECK(e.find("test.toml:3: storage.fsnyc: unknown key") == 0);
  }
  SUBCASE("a misspelt section") {
    std::string e = ErrorOf(std::string("\n[storag]\nfsync = \"never\"\n") + kSeed);
    CHECK(e.find("test.toml:2: storag: unknown section (known sections: cluster") == 0);
  }
  SUBCASE("a misspelt key in a [[shards]] entry") {
    std::string e = ErrorOf(std::string(kSeed) + "adress = \"h:1\"\n");
    CHECK_MESSAGE(e.find("test.toml:13: shards[1].adress: unknown key") == 0, e);
  }
  SUBCASE("a setting outside any section") {
    std::string e = ErrorOf(std::string("fsync = \"never\"\n") + kSeed);
    CHECK(e.find("test.toml:1: fsync: unknown top-level key") == 0);
  }
}

TEST_CASE("host names and IPv6 addresses are accepted") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig("[[shards]]\nname = \"a\"\nidx = 0\naddress = \"localhost:8080\"\n"
                              "replicas = [\"[::1]:8081\", \"db-1.internal:8080\"]\n",
                              "test.toml", &c, &error),
                  error);
  CHECK(c.shards[0].address == "localhost:8080");
  CHECK(c.shards[0].replicas[0] == "[::1]:8081");
  CHECK(ErrorOf("[[shards]]\nname = \"a\"\nidx = 0\naddress = \"::1:8080\"\n")
            .find("an IPv6 address needs brackets") != std::string::npos);
}

TEST_CASE("the repository's sharding.toml is the 4-shard example cluster") {
  ClusterConfig c;
  std::string error;
  REQUIRE_MESSAGE(distkv::LoadConfig("sharding.toml", &c, &error), error);
  REQUIRE(c.shards.size() == 4);
  CHECK(c.shards[0].name == "Delhi");
  CHECK(c.shards[0].address == "127.0.0.2:8080");
  CHECK(c.shards[3].name == "Chennai");
  CHECK(c.shards[3].replicas == std::vector<std::string>{"127.0.0.55:8080"});
}

TEST_CASE("every setting with a fixed set of words refuses another one, listing them all") {
  const std::string secret = "cluster_secret = \"0123456789abcdef\"\n";
  struct Bad {
    std::string text;  // the line that is wrong is the file's line 2
    std::string error;
  };
  const Bad cases[] = {
      {"[cluster]\nrouting = \"gossip\"\n",
       "test.toml:2: cluster.routing: \"gossip\" is not one of \"proxy\", \"redirect\""},
      {"[storage]\nfsync = \"sometimes\"\n",
       "test.toml:2: storage.fsync: \"sometimes\" is not one of \"always\", \"everysec\", "
       "\"never\""},
      {"[storage]\nreads = \"fast\"\n",
       "test.toml:2: storage.reads: \"fast\" is not one of \"durable\", \"latest\""},
      {"[storage]\ncompact_priority = \"nice\"\n",
       "test.toml:2: storage.compact_priority: \"nice\" is not one of \"idle\", \"low\", "
       "\"normal\""},
      {"[coordinator]\nprimary_reads = \"never\"\n",
       "test.toml:2: coordinator.primary_reads: \"never\" is not one of \"lease\", \"always\""},
      {"[auth]\nstatus_role = \"node\"\n" + secret,
       "test.toml:2: auth.status_role: \"node\" is not one of \"none\", \"read\", \"write\", "
       "\"admin\""},
      {"[auth]\ntokens = [ { token = \"tttttttttttttttttt\", role = \"none\" } ]\n" + secret,
       "test.toml:2: auth.tokens[0].role: \"none\" is not one of \"read\", \"write\", "
       "\"admin\""},
      // Case matters: the words are written as listed.
      {"[storage]\nfsync = \"Always\"\n",
       "test.toml:2: storage.fsync: \"Always\" is not one of \"always\", \"everysec\", "
       "\"never\""},
  };
  for (const Bad& bad : cases) {
    CAPTURE(bad.text);
    CHECK(ErrorOf(bad.text + kSeed) == bad.error);
  }
}

TEST_CASE("every setting with a fixed set of words takes each of them") {
  using distkv::RoutingMode;
  using distkv::storage::FsyncMode;
  using P = ClusterConfig::CompactPriority;
  struct Good {
    const char* text;
    RoutingMode routing;
    FsyncMode fsync;
    bool reads_latest;
    P priority;
  };
  const Good cases[] = {
      {"[cluster]\nrouting = \"redirect\"\n[storage]\nfsync = \"never\"\nreads = \"latest\"\n"
       "compact_priority = \"idle\"\n",
       RoutingMode::kRedirect, FsyncMode::kNever, true, P::kIdle},
      {"[cluster]\nrouting = \"proxy\"\n[storage]\nfsync = \"everysec\"\nreads = \"durable\"\n"
       "compact_priority = \"normal\"\n",
       RoutingMode::kProxy, FsyncMode::kEverySec, false, P::kNormal},
  };
  for (const Good& good : cases) {
    CAPTURE(good.text);
    ClusterConfig c;
    std::string error;
    REQUIRE_MESSAGE(ParseConfig(std::string(good.text) + kSeed, "test.toml", &c, &error), error);
    CHECK(c.routing == good.routing);
    CHECK(c.fsync == good.fsync);
    CHECK(c.reads_latest == good.reads_latest);
    CHECK(c.compact_priority == good.priority);
  }
}

TEST_CASE("a config that is not UTF-8 is refused with its line, before the TOML parser reads it") {
  // The fuzzer's input: a literal string holding a lone 0xFF at the end of
  // the text, on which the TOML parser read past its buffer (ASan).
  std::string error = ErrorOf("'\xff'");
  CHECK(error.find("test.toml:1: is not valid UTF-8") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  // Anywhere else: a comment after a valid config, on its line 13.
  error = ErrorOf(std::string(kSeed) + "# caf\xe9\n");
  CHECK_MESSAGE(error.find("test.toml:13: is not valid UTF-8") != std::string::npos, error);
  // Valid UTF-8 beyond ASCII still parses.
  ClusterConfig c;
  CHECK(ParseConfig(std::string(kSeed) + "# caf\xc3\xa9 \xe2\x9c\x93\n", "test.toml", &c, &error));
}
