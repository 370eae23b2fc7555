// The text around toml11, for every TOML this project reads (sharding.toml,
// a tokens_file, the cluster map's tables): what must be true of the text
// before toml11 may read it, and its syntax errors cut to one line.
#pragma once

#include <string>

namespace distkv {

// TOML documents are UTF-8 (TOML 1.0), and toml11 must never see anything
// else: on a lead byte whose continuation bytes are missing at the end of
// the text it reads past its buffer (found by config_fuzz with "'\xff'").
// False, with "name:line: is not valid UTF-8 ...", unless text is UTF-8.
bool CheckTomlText(const std::string& text, const std::string& name, std::string* error);

// toml11's syntax error (its what()) as "name:line: syntax: <what>".
std::string TomlSyntaxError(const std::string& name, const std::string& what);

}  // namespace distkv
