// Io: every system call the store makes on its files goes through this
// interface, so that tests can put a file system of their own underneath.
//
// Io::Posix() is the real one (thin wrappers over pread, pwrite, fdatasync,
// rename, ...). FaultyIo (storage/faulty_io.h) is an in-memory one that
// remembers what was synced and can simulate a power cut, failing syncs,
// short writes and a full disk.
//
// Every call returns 0 or an errno value; file_util.h turns them into Status
// messages that name the file. Handles are small integers chosen by the Io
// (file descriptors for Posix). Calls may come from two threads at once (the
// store's thread and the one running a WriteBatch), never on the same handle
// at the same moment except for reads of bytes no write is changing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace distkv::storage {

class Io {
 public:
  virtual ~Io() = default;

  // The process's real file system. Never null, never freed.
  static Io* Posix();

  enum OpenFlags : int {
    kOpenExisting = 0,
    kCreate = 1,    // create if missing
    kTruncate = 2,  // cut to 0 bytes
  };
  // Opens a file for reading and writing.
  virtual int Open(const std::string& path, int flags, int* handle) = 0;
  // Opens a directory so that SyncDir can make its entries durable.
  virtual int OpenDir(const std::string& path, int* handle) = 0;
  virtual void Close(int handle) = 0;

  // Writes up to n bytes at off; *done receives how many (a short count is
  // allowed: callers loop).
  virtual int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) = 0;
  // Reads up to n bytes at off; *done < n only at the end of the file.
  virtual int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) = 0;
  // fdatasync: the file's data (and its size) reach the disk.
  virtual int Sync(int handle) = 0;
  // fsync of a directory: the entries created, renamed or removed in it
  // reach the disk.
  virtual int SyncDir(int handle) = 0;
  virtual int Truncate(int handle, uint64_t size) = 0;
  virtual int Size(int handle, uint64_t* size) = 0;

  virtual int Rename(const std::string& from, const std::string& to) = 0;
  virtual int Unlink(const std::string& path) = 0;
  // mkdir -p.
  virtual int CreateDirs(const std::string& path) = 0;
  // Names in a directory, without "." and "..".
  virtual int ListDir(const std::string& path, std::vector<std::string>* names) = 0;

  // Exclusive lock on a file (flock on Posix): EWOULDBLOCK if another holder
  // has it. Released by Close(handle).
  virtual int Lock(const std::string& path, int* handle) = 0;
};

}  // namespace distkv::storage
