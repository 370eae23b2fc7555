// The cluster page served at GET /ui: one self-contained HTML document (its
// CSS and JavaScript inline, nothing fetched from elsewhere) that polls
// /cluster/status on the node that served it. Its source is
// src/node/ui/page.html; the Makefile turns it into a C++ string at build
// time (build/gen/ui_page.cc), so the binary carries it.
#pragma once

#include <string_view>

namespace distkv {

std::string_view UiPage();

}  // namespace distkv
