// DirLock: exclusive ownership of a store directory, through flock(2) on its
// LOCK file. flock locks belong to an open file description, so a second
// Store in the same process is refused just like another process; the lock
// goes away with the descriptor, even if the process dies.
#pragma once

#include <string>

#include "storage/status.h"

namespace distkv::storage {

class DirLock {
 public:
  DirLock() = default;
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  // Busy if someone else holds the lock.
  Status Acquire(const std::string& path);

 private:
  int fd_ = -1;
};

}  // namespace distkv::storage
