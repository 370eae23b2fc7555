// See address.h. The checks are those of a URL authority (RFC 3986 §3.2.2),
// minus user info: a bracketed IPv6 literal, or a name of letters, digits,
// '-', '.' and '_' (the last for container and service names).
#include "net/address.h"

namespace distkv::net {

namespace {

bool ValidHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool ValidIpv6(const std::string& host) {
  if (host.empty()) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
              c == ':' || c == '.' || c == '%';
    if (!ok) return false;
  }
  return host.find(':') != std::string::npos;
}

}  // namespace

bool ParseHostPort(const std::string& address, HostPort* out, std::string* error) {
  std::string host, port;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      *error = "expected [ipv6]:port";
      return false;
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (!ValidIpv6(host)) {
      *error = "\"" + host + "\" is not an IPv6 address";
      return false;
    }
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) {
      *error = "expected host:port";
      return false;
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      *error = "an IPv6 address needs brackets: [" + host + "]:" + port;
      return false;
    }
    if (!ValidHostName(host)) {
      *error = "\"" + host + "\" is not a host name or IP address";
      return false;
    }
  }
  if (port.empty()) {
    *error = "the port is missing";
    return false;
  }
  long value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      *error = "port \"" + port + "\" is not a number";
      return false;
    }
    if (value <= 65535) value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) {
    *error = "port " + port + " is not within 1-65535";
    return false;
  }
  out->host = host;
  out->port = static_cast<int>(value);
  return true;
}

std::string FormatHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

int ResolveListenHost(uv_loop_t* loop, const std::string& host, std::string* ip) {
  sockaddr_in6 v6;
  sockaddr_in v4;
  if (uv_ip4_addr(host.c_str(), 0, &v4) == 0 || uv_ip6_addr(host.c_str(), 0, &v6) == 0) {
    *ip = host;
    return 0;
  }
  uv_getaddrinfo_t req;
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No callback: libuv resolves synchronously.
  int r = uv_getaddrinfo(loop, &req, nullptr, host.c_str(), nullptr, &hints);
  if (r != 0) return r;
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = req.addrinfo; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET && pick == nullptr) pick = a;
  }
  if (pick == nullptr) pick = req.addrinfo;
  char text[INET6_ADDRSTRLEN] = {0};
  r = pick == nullptr ? UV_EAI_NONAME
      : pick->ai_family == AF_INET
          ? uv_ip4_name(reinterpret_cast<const sockaddr_in*>(pick->ai_addr), text, sizeof text)
          : uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(pick->ai_addr), text, sizeof text);
  uv_freeaddrinfo(req.addrinfo);
  if (r == 0) *ip = text;
  return r;
}

}  // namespace distkv::net
