// Thin wrappers over the Io calls the store makes, turning errno into a
// Status that names the file. Short reads and writes are handled here so that
// callers never see them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/io.h"
#include "storage/status.h"

namespace distkv::storage {

// Writes all n bytes at offset off.
Status PwriteAll(Io* io, int fd, const char* data, size_t n, uint64_t off, std::string_view name);
// Writes n zero bytes at offset off.
Status WriteZeros(Io* io, int fd, uint64_t off, uint64_t n, std::string_view name);
// Reads up to n bytes at off; *got receives how many (fewer only at end of file).
Status PreadSome(Io* io, int fd, char* data, size_t n, uint64_t off, size_t* got,
                 std::string_view name);
// Reads exactly n bytes at off; Corruption if the file ends first.
Status PreadExact(Io* io, int fd, char* data, size_t n, uint64_t off, std::string_view name);
Status FileSize(Io* io, int fd, uint64_t* size, std::string_view name);
Status SyncFile(Io* io, int fd, std::string_view name);
Status SyncDir(Io* io, int dir_fd, std::string_view name);
// Writes bytes to "<dir>/<name>.tmp", fsyncs it and renames it over
// "<dir>/<name>", so a crash leaves the old file or the new one, never a mix.
// With dir_fd >= 0 the directory is fsynced too; when that last sync fails
// (the rename may or may not survive a crash) *dir_sync_failed is set.
Status WriteFileAtomically(Io* io, const std::string& dir, const std::string& name,
                           std::string_view bytes, int dir_fd, bool* dir_sync_failed = nullptr);
// mkdir -p.
Status CreateDirs(Io* io, const std::string& path);
// Names of the entries of a directory, without "." and "..".
Status ListDir(Io* io, const std::string& path, std::vector<std::string>* names);

std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace distkv::storage
