// Names of the fsync modes, as written in sharding.toml's [storage] fsync.
#include "storage/store.h"

namespace distkv::storage {

bool ParseFsyncMode(std::string_view text, FsyncMode* mode) {
  if (text == "always") {
    *mode = FsyncMode::kAlways;
  } else if (text == "everysec") {
    *mode = FsyncMode::kEverySec;
  } else if (text == "never") {
    *mode = FsyncMode::kNever;
  } else {
    return false;
  }
  return true;
}

std::string_view FsyncModeName(FsyncMode mode) {
  switch (mode) {
    case FsyncMode::kAlways:
      return "always";
    case FsyncMode::kEverySec:
      return "everysec";
    case FsyncMode::kNever:
      return "never";
  }
  return "unknown";
}

}  // namespace distkv::storage
