// The client commands of `distkv`; see cli.h for the exit codes.
#include "src/cli/cli.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "src/client/sync_client.h"
#include "src/obs/json_writer.h"

namespace distkv::cli {

namespace {

constexpr const char* kClientUsage =
    "usage: distkv [--cluster HOST:PORT,...] [--json] [--timeout MS] COMMAND ...\n"
    "  get KEY [--replica]                  print the value (raw bytes)\n"
    "  put KEY [VALUE | --file F | -]        store a value (from the argument, a file or stdin)\n"
    "      [--ttl S] [--if-match ETAG] [--if-none-match]\n"
    "  del KEY [--if-match ETAG]            delete a key\n"
    "  scan [--prefix P] [--limit N] [--values] [--cursor C --page]\n"
    "                                       list keys (every page, or one with --page)\n"
    "  ttl KEY                              seconds left before KEY expires (-1: never)\n"
    "  mget KEY...                          many values in one round trip per shard\n"
    "  mput KEY VALUE [KEY VALUE ...]        many writes, one request per shard\n"
    "  stats [--node HOST:PORT]             a node's /stats\n"
    "  cluster                              the cluster map\n"
    "\n"
    "  --cluster   nodes to ask first (default $DISTKV_CLUSTER, else 127.0.0.1:8080)\n"
    "  --json      machine-readable output\n"
    "exit: 0 ok, 1 not found, 2 usage, 3 condition failed, 4 unreachable/5xx, 5 refused\n";

constexpr int kOk = 0, kNotFound = 1, kUsage = 2, kCondition = 3, kUnavailable = 4, kRefused = 5;

int UsageError(const std::string& problem) {
  std::fprintf(stderr, "distkv: %s\n\n%s", problem.c_str(), kClientUsage);
  return kUsage;
}

struct Flags {
  std::vector<std::string> positional;
  std::vector<std::string> cluster;
  bool json = false;
  uint64_t timeout_ms = 5000;
  std::string file;
  bool stdin_value = false;
  int64_t ttl = -1;
  uint64_t if_match = 0;
  bool if_none_match = false;
  bool replica = false;
  std::string prefix;
  size_t limit = 100;
  bool values = false;
  std::string cursor;
  bool page = false;
  std::string node;
  std::vector<std::string> given;  // the command's own flags, as typed ("-" for stdin)
};

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// Digits only: no sign, no spaces, nothing after them, and a value past
// int64 refused rather than clamped.
bool ParseNumber(const std::string& s, int64_t* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  int64_t v = 0;
  const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (err != std::errc() || end != s.data() + s.size()) return false;
  *out = v;
  return true;
}

// Returns -1 when fine, else an exit code.
int ParseFlags(int argc, char** argv, int command_at, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    if (i == command_at) continue;
    std::string a = argv[i];
    std::string value;
    auto take = [&](const char* name) -> bool {
      if (i + 1 >= argc) return false;
      value = argv[++i];
      (void)name;
      return true;
    };
    int64_t n = 0;
    const bool global =
        a == "--help" || a == "-h" || a == "--json" || a == "--cluster" || a == "--timeout";
    if (!global && (a == "-" || a.rfind("--", 0) == 0)) f->given.push_back(a);
    if (a == "--help" || a == "-h") {
      std::fputs(kClientUsage, stdout);
      return kOk;
    } else if (a == "--json") {
      f->json = true;
    } else if (a == "--cluster") {
      if (!take("--cluster")) return UsageError("--cluster needs HOST:PORT[,...]");
      f->cluster = SplitComma(value);
    } else if (a == "--timeout") {
      if (!take("--timeout") || !ParseNumber(value, &n) || n <= 0)
        return UsageError("--timeout needs milliseconds");
      f->timeout_ms = static_cast<uint64_t>(n);
    } else if (a == "--file") {
      if (!take("--file")) return UsageError("--file needs a path");
      f->file = value;
    } else if (a == "--ttl") {
      if (!take("--ttl") || !ParseNumber(value, &n) || n < 0)
        return UsageError("--ttl needs seconds (0 removes a TTL)");
      f->ttl = n;
    } else if (a == "--if-match") {
      if (!take("--if-match")) return UsageError("--if-match needs an ETag");
      std::string digits;
      for (char c : value) {
        if (c != '"') digits += c;
      }
      if (!ParseNumber(digits, &n) || n <= 0) return UsageError("--if-match needs an ETag number");
      f->if_match = static_cast<uint64_t>(n);
    } else if (a == "--if-none-match") {
      f->if_none_match = true;
    } else if (a == "--replica") {
      f->replica = true;
    } else if (a == "--prefix") {
      if (!take("--prefix")) return UsageError("--prefix needs a value");
      f->prefix = value;
    } else if (a == "--limit") {
      if (!take("--limit") || !ParseNumber(value, &n) || n < 1 || n > 10000)
        return UsageError("--limit needs a number from 1 to 10000");
      f->limit = static_cast<size_t>(n);
    } else if (a == "--values") {
      f->values = true;
    } else if (a == "--cursor") {
      if (!take("--cursor")) return UsageError("--cursor needs a value");
      f->cursor = value;
    } else if (a == "--page") {
      f->page = true;
    } else if (a == "--node") {
      if (!take("--node")) return UsageError("--node needs HOST:PORT");
      f->node = value;
    } else if (a == "-") {
      f->stdin_value = true;
    } else if (a.size() > 2 && a.rfind("--", 0) == 0) {
      return UsageError("unknown flag " + a);
    } else {
      f->positional.push_back(a);
    }
  }
  if (f->cluster.empty()) {
    const char* env = std::getenv("DISTKV_CLUSTER");
    f->cluster = SplitComma(env && *env ? env : "127.0.0.1:8080");
  }
  return -1;
}

// One JSON document and a newline on standard output.
void PrintLine(const std::string& json) {
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
}

// The exit code for a response that is not a success.
int Fail(const client::Response& r, bool json) {
  int code = kRefused;
  if (r.status == 0 || r.status >= 500) code = kUnavailable;
  if (r.status == 404) code = kNotFound;
  if (r.status == 412) code = kCondition;
  if (json) {
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Field("status", r.status);
    w.Field("error", r.error);
    w.Field("message", r.message);
    w.EndObject();
    PrintLine(out);
  } else if (r.status == 404) {
    std::fputs("(not found)\n", stderr);
  } else {
    std::fprintf(stderr, "distkv: %s%s%s%s\n",
                 r.status ? ("HTTP " + std::to_string(r.status) + " ").c_str() : "",
                 r.error.c_str(), r.message.empty() ? "" : ": ", r.message.c_str());
  }
  return code;
}

// A failed batch item as one line: its code, and what happened.
std::string Failure(const client::KeyResult& k) {
  return k.message.empty() ? k.error : k.error + ": " + k.message;
}

void PrintBytes(const std::string& bytes, bool newline) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  if (newline) std::fputc('\n', stdout);
}

bool ReadAll(std::istream& in, std::string* out) {
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

int CmdGet(client::SyncClient& db, const Flags& f) {
  if (f.positional.size() != 1) return UsageError("get needs exactly one KEY");
  client::ReadOptions ro;
  ro.replica = f.replica;
  client::Response r = db.Get(f.positional[0], ro);
  if (!r.ok()) return Fail(r, f.json);
  if (f.json) {
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Key("key");
    w.Bytes(f.positional[0]);
    w.Key("value");
    w.Bytes(r.body);
    w.Field("etag", r.etag);
    if (r.expires_ms >= 0) w.Field("expires_ms", r.expires_ms);
    w.EndObject();
    PrintLine(out);
  } else {
    PrintBytes(r.body, false);
  }
  return kOk;
}

int CmdPut(client::SyncClient& db, const Flags& f) {
  const size_t sources = (f.positional.size() == 2) + !f.file.empty() + f.stdin_value;
  if (f.positional.empty() || f.positional.size() > 2 || sources != 1) {
    return UsageError("put needs KEY and one of VALUE, --file F or - (standard input)");
  }
  std::string value;
  if (f.positional.size() == 2) {
    value = f.positional[1];
  } else if (!f.file.empty()) {
    std::ifstream in(f.file, std::ios::binary);
    if (!in || !ReadAll(in, &value)) {
      std::fprintf(stderr, "distkv: cannot read %s\n", f.file.c_str());
      return kUsage;
    }
  } else if (!ReadAll(std::cin, &value)) {
    std::fputs("distkv: cannot read standard input\n", stderr);
    return kUsage;
  }
  client::WriteOptions wo;
  wo.ttl_seconds = f.ttl;
  wo.if_match = f.if_match;
  wo.if_none_match = f.if_none_match;
  client::Response r = db.Put(f.positional[0], std::move(value), wo);
  if (!r.ok()) return Fail(r, f.json);
  if (f.json) {
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Field("status", r.status);
    w.Field("etag", r.etag);
    w.EndObject();
    PrintLine(out);
  } else {
    std::printf("%s etag %llu\n", r.status == 201 ? "created" : "updated",
                static_cast<unsigned long long>(r.etag));
  }
  return kOk;
}

int CmdDel(client::SyncClient& db, const Flags& f) {
  if (f.positional.size() != 1) return UsageError("del needs exactly one KEY");
  client::WriteOptions wo;
  wo.if_match = f.if_match;
  client::Response r = db.Delete(f.positional[0], wo);
  if (!r.ok()) return Fail(r, f.json);
  if (f.json) {
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Field("status", 204);
    w.EndObject();
    PrintLine(out);
  } else {
    std::fputs("deleted\n", stdout);
  }
  return kOk;
}

int CmdTtl(client::SyncClient& db, const Flags& f) {
  if (f.positional.size() != 1) return UsageError("ttl needs exactly one KEY");
  client::Response r = db.Get(f.positional[0]);
  if (!r.ok()) return Fail(r, f.json);
  // Seconds left by the clock of the node that answered (not this
  // machine's, which may be off).
  const long long left = r.expires_ms >= 0 ? static_cast<long long>(r.ttl_seconds) : -1;
  if (f.json) {
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Field("ttl", left);
    w.Field("expires_ms", r.expires_ms);
    w.EndObject();
    PrintLine(out);
  } else {
    std::printf("%lld\n", left);
  }
  return kOk;
}

int CmdScan(client::SyncClient& db, const Flags& f) {
  if (!f.positional.empty()) return UsageError("scan takes no positional arguments");
  client::ScanRequest req;
  req.prefix = f.prefix;
  req.limit = f.limit;
  req.values = f.values;
  req.cursor = f.cursor;
  for (;;) {
    client::ScanPage page;
    client::Response r = db.Scan(req, &page);
    if (!r.ok()) return Fail(r, f.json);
    for (size_t i = 0; i < page.keys.size(); ++i) {
      if (f.json) {
        std::string out;
        JsonWriter w(&out);
        w.BeginObject();
        w.Key("key");
        w.Bytes(page.keys[i]);
        if (f.values && i < page.values.size()) {
          w.Key("value");
          w.Bytes(page.values[i]);
        }
        w.EndObject();
        PrintLine(out);
      } else {
        PrintBytes(page.keys[i], !f.values);
        if (f.values && i < page.values.size()) {
          std::fputc('\t', stdout);
          PrintBytes(page.values[i], true);
        }
      }
    }
    if (f.page) {
      if (f.json) {
        std::string out;
        JsonWriter w(&out);
        w.BeginObject();
        w.Field("cursor", page.cursor);
        w.EndObject();
        PrintLine(out);
      } else {
        std::fprintf(stderr, "cursor: %s\n", page.cursor.c_str());
      }
      return kOk;
    }
    if (page.cursor.empty()) return kOk;
    req.cursor = page.cursor;
  }
}

int CmdMget(client::SyncClient& db, const Flags& f) {
  if (f.positional.empty()) return UsageError("mget needs at least one KEY");
  std::vector<client::KeyResult> results;
  client::Response r = db.MGet(f.positional, &results);
  if (r.status == 0) return Fail(r, f.json);
  int code = kOk;
  std::string out;
  JsonWriter w(&out);
  if (f.json) w.BeginArray();
  for (size_t i = 0; i < results.size(); ++i) {
    const client::KeyResult& k = results[i];
    if (k.status == 404)
      code = std::max(code, kNotFound);
    else if (k.status != 200)
      code = kUnavailable;
    if (f.json) {
      w.BeginObject();
      w.Key("key");
      w.Bytes(k.key);
      w.Field("status", k.status);
      if (k.status == 200) {
        w.Key("value");
        w.Bytes(k.value);
        w.Field("etag", k.etag);
      } else {
        w.Field("error", k.error);
        if (!k.message.empty()) w.Field("message", k.message);
      }
      w.EndObject();
    } else if (k.status == 200) {
      PrintBytes(k.value, true);
    } else {
      std::fputs(k.status == 404 ? "(not found)\n" : ("(error " + Failure(k) + ")\n").c_str(),
                 stdout);
    }
  }
  if (f.json) {
    w.EndArray();
    PrintLine(out);
  }
  return code;
}

int CmdMput(client::SyncClient& db, const Flags& f) {
  if (f.positional.empty() || f.positional.size() % 2 != 0)
    return UsageError("mput needs KEY VALUE pairs");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < f.positional.size(); i += 2)
    pairs.emplace_back(f.positional[i], f.positional[i + 1]);
  std::vector<client::KeyResult> results;
  client::Response r = db.MPut(pairs, &results);
  if (r.status == 0) return Fail(r, f.json);
  int code = kOk;
  std::string out;
  JsonWriter w(&out);
  if (f.json) w.BeginArray();
  for (size_t i = 0; i < results.size(); ++i) {
    const client::KeyResult& k = results[i];
    const bool ok = k.status >= 200 && k.status < 300;
    if (!ok) code = kUnavailable;
    if (f.json) {
      w.BeginObject();
      w.Key("key");
      w.Bytes(k.key);
      w.Field("status", k.status);
      if (ok) {
        w.Field("etag", k.etag);
      } else {
        w.Field("error", k.error);
        if (!k.message.empty()) w.Field("message", k.message);
      }
      w.EndObject();
    } else {
      out += k.key + " " + (ok ? "etag " + std::to_string(k.etag) : "failed " + Failure(k)) + "\n";
    }
  }
  if (f.json) {
    w.EndArray();
    PrintLine(out);
  } else {
    std::fputs(out.c_str(), stdout);
  }
  return code;
}

int CmdRaw(client::SyncClient& db, const Flags& f, const std::string& target) {
  if (!f.positional.empty()) return UsageError("unexpected argument " + f.positional[0]);
  client::Response r = db.NodeGet(f.node, target);
  if (!r.ok()) return Fail(r, f.json);
  PrintBytes(r.body, !r.body.empty() && r.body.back() != '\n');
  return kOk;
}

// The position of the command word: the first argument that is not a global
// flag (--cluster X, --timeout X, --json), or -1.
int CommandAt(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cluster" || a == "--timeout") {
      ++i;
    } else if (a != "--json") {
      return i;
    }
  }
  return -1;
}

// The flags each command takes besides --cluster, --json and --timeout. A
// flag another command takes is a usage error, never ignored: `mput --ttl`
// would otherwise store keys that never expire.
int CheckFlagsFor(const std::string& command, const Flags& f) {
  static const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> kTakes = {
      {"get", {"--replica"}},
      {"put", {"--file", "-", "--ttl", "--if-match", "--if-none-match"}},
      {"del", {"--if-match"}},
      {"scan", {"--prefix", "--limit", "--values", "--cursor", "--page"}},
      {"ttl", {}},
      {"mget", {}},
      {"mput", {}},
      {"stats", {"--node"}},
      {"cluster", {}},
  };
  for (const auto& [name, takes] : kTakes) {
    if (name != command) continue;
    for (const std::string& flag : f.given) {
      if (std::find(takes.begin(), takes.end(), flag) == takes.end()) {
        return UsageError(command + " takes no " + flag +
                          (command == "mput" && flag == "--ttl"
                               ? " (write keys that expire with put --ttl)"
                               : ""));
      }
    }
  }
  return -1;
}

bool IsCommand(const std::string& word) {
  for (const char* c : {"get", "put", "del", "scan", "ttl", "mget", "mput", "stats", "cluster"}) {
    if (word == c) return true;
  }
  return false;
}

}  // namespace

bool IsClientCommand(int argc, char** argv) {
  const int at = CommandAt(argc, argv);
  return at > 0 && IsCommand(argv[at]);
}

int RunClientCommand(int argc, char** argv) {
  const int at = CommandAt(argc, argv);
  if (at < 0) return UsageError("missing command");
  const std::string command = argv[at];
  Flags f;
  if (int rc = ParseFlags(argc, argv, at, &f); rc >= 0) return rc;
  if (int rc = CheckFlagsFor(command, f); rc >= 0) return rc;
  client::Options options;
  options.seeds = f.cluster;
  options.request_timeout_ms = f.timeout_ms;
  client::SyncClient db(options);
  if (command == "get") return CmdGet(db, f);
  if (command == "put") return CmdPut(db, f);
  if (command == "del") return CmdDel(db, f);
  if (command == "ttl") return CmdTtl(db, f);
  if (command == "scan") return CmdScan(db, f);
  if (command == "mget") return CmdMget(db, f);
  if (command == "mput") return CmdMput(db, f);
  if (command == "stats") return CmdRaw(db, f, "/stats");
  if (command == "cluster") return CmdRaw(db, f, "/cluster");
  return UsageError("unknown command " + command);
}

}  // namespace distkv::cli
