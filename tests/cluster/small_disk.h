// SmallDisk: a full disk for real, for the cluster tests of what a node does
// when its writes find no room. A tmpfs of a few MiB is mounted on a
// directory of the test; Fill() leaves a given number of bytes free with a
// ballast file and Free() deletes it. PutDataOn() points a node's data
// directory at the small disk.
//
// Mounting needs root (CAP_SYS_ADMIN), which CI has. Where the mount is
// refused the test fails and says so: it never passes without a full disk.
#pragma once

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"

namespace distkv::clustertest {

// A tmpfs of `bytes` mounted on dir (created) for the life of the object.
class SmallDisk {
 public:
  SmallDisk(std::string dir, uint64_t bytes) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0;
    const int err = errno;
    REQUIRE_MESSAGE(mounted_, "cannot mount a tmpfs on " << dir_ << ": "
                                                         << std::string(std::strerror(err))
                                                         << " (the disk-full tests need root)");
  }
  ~SmallDisk() {
    // Lazily: a node the test left running may still hold files open.
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  std::string Sub(const std::string& name) const { return dir_ + "/" + name; }

  uint64_t FreeBytes() const {
    struct statvfs st;
    REQUIRE(::statvfs(dir_.c_str(), &st) == 0);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }

  // Leaves about free_bytes free (tmpfs allocates whole pages).
  void Fill(uint64_t free_bytes) {
    FILE* out = std::fopen(Sub("ballast").c_str(), "ab");
    REQUIRE(out != nullptr);
    const std::string block(4096, 'b');
    while (FreeBytes() >= free_bytes + block.size() &&
           std::fwrite(block.data(), 1, block.size(), out) == block.size() &&
           std::fflush(out) == 0) {
    }
    std::fclose(out);  // at free_bytes 0 the last write fails with ENOSPC
    MESSAGE("disk filled: " << FreeBytes() << " bytes free");
    REQUIRE(FreeBytes() < free_bytes + block.size());
  }

  void Free() { std::filesystem::remove(Sub("ballast")); }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Points the node's data directory (a path inside the cluster's directory)
// at a directory on the small disk.
inline void PutDataOn(const TestCluster& cluster, const std::string& node_label,
                      const SmallDisk& disk) {
  std::filesystem::create_directories(disk.Sub("data"));
  std::filesystem::create_directory_symlink(disk.Sub("data"),
                                            cluster.dir().Sub("data-" + node_label));
}

}  // namespace distkv::clustertest
