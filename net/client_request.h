// Serialization of an OutboundRequest into HTTP/1.1 bytes.
#pragma once

#include <string>
#include <string_view>

#include "net/http_client.h"

namespace distkv::net {

// Appends the request line and headers of request to out, with a Host
// header (host_header, unless the request names its own) and a
// Content-Length when there is a body or the method expects one. Caller
// headers named Content-Length, Transfer-Encoding or Connection are dropped:
// the body is always sent with its length, and the connection stays
// keep-alive. The body itself is not appended.
void AppendRequestHead(std::string* out, const OutboundRequest& request,
                       std::string_view host_header);

// "host:port", with brackets around an IPv6 host.
std::string HostHeader(std::string_view host, int port);

// True for methods whose repetition has the effect of one request and whose
// answer needs no body (safe to resend on a fresh connection).
bool IsRetryableMethod(std::string_view method);

}  // namespace distkv::net
