// The `distkv` command line for users: get, put, del, scan, ttl, mget, mput,
// stats and cluster, built on the client library (src/client). See
// kClientUsage in cli.cc for the flags, and README "Command line".
//
// Exit codes, for scripts:
//   0  success
//   1  the key does not exist (get, del, ttl; mget: at least one key)
//   2  bad usage
//   3  a condition failed (--if-match / --if-none-match: HTTP 412)
//   4  the cluster could not answer (unreachable, timeout, 5xx)
//   5  the request was refused (any other 4xx, e.g. a value too large)
#pragma once

namespace distkv::cli {

// True if the command word (after any global flags) is a client command.
bool IsClientCommand(int argc, char** argv);
// Runs `distkv <command> ...`; returns the exit code.
int RunClientCommand(int argc, char** argv);

}  // namespace distkv::cli
