#include "net/client_request.h"

#include <charconv>

namespace distkv::net {

namespace {

bool MethodExpectsBody(std::string_view method) {
  return method == "PUT" || method == "POST" || method == "PATCH";
}

}  // namespace

void AppendRequestHead(std::string* out, const OutboundRequest& request,
                       std::string_view host_header) {
  // Room for the whole head at once: growing it line by line costs several
  // reallocations per request on the forwarding path.
  size_t size = request.method.size() + request.target.size() + host_header.size() + 64;
  for (const Header& h : request.headers) size += h.name.size() + h.value.size() + 4;
  if (request.header_lines != nullptr) size += request.header_lines->size();
  out->reserve(out->size() + size);
  out->append(request.method);
  out->push_back(' ');
  out->append(request.target.empty() ? std::string_view("/") : std::string_view(request.target));
  out->append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const Header& h : request.headers) {
    if (EqualsIgnoreCase(h.name, "content-length") ||
        EqualsIgnoreCase(h.name, "transfer-encoding") || EqualsIgnoreCase(h.name, "connection")) {
      continue;
    }
    if (EqualsIgnoreCase(h.name, "host")) has_host = true;
    out->append(h.name);
    out->append(": ");
    out->append(h.value);
    out->append("\r\n");
  }
  if (request.header_lines != nullptr) out->append(*request.header_lines);
  if (!has_host) {
    out->append("Host: ");
    out->append(host_header);
    out->append("\r\n");
  }
  if (!request.body.empty() || MethodExpectsBody(request.method)) {
    out->append("Content-Length: ");
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, request.body.size());
    out->append(digits, result.ptr);
    out->append("\r\n");
  }
  out->append("\r\n");
}

std::string HostHeader(std::string_view host, int port) {
  std::string out;
  bool v6 = host.find(':') != std::string_view::npos;
  if (v6) out.push_back('[');
  out.append(host);
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

bool IsRetryableMethod(std::string_view method) { return method == "GET" || method == "HEAD"; }

}  // namespace distkv::net
