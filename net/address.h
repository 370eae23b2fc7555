// "host:port" addresses as written in sharding.toml and on the command line.
//
// The host is an IPv4 literal (127.0.0.1), a bracketed IPv6 literal ([::1])
// or a host name (localhost, db-1.internal); the port is 1-65535. Splitting is
// pure text: host names are resolved later, on libuv's thread pool, by whoever
// connects or listens, so the loop never blocks on DNS.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace distkv::net {

struct HostPort {
  std::string host;  // without brackets: "::1", "localhost", "10.0.0.2"
  int port = 0;
};

// Splits `address` into host and port. On failure returns false and sets
// *error to what is wrong ("port 99999 is above 65535").
bool ParseHostPort(const std::string& address, HostPort* out, std::string* error);

// The text form again: "[::1]:8080" for IPv6 literals, "host:port" otherwise.
std::string FormatHostPort(const std::string& host, int port);

// The IP address to bind for a listen host: an IP literal as it is, a host
// name resolved (IPv4 preferred, as peers that resolve the same name on this
// machine mostly try it first). Resolution is synchronous: call it before the
// loop serves anything (at start-up), never from a callback. 0 or a libuv error.
int ResolveListenHost(uv_loop_t* loop, const std::string& host, std::string* ip);

}  // namespace distkv::net
