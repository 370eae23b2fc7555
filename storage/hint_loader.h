// HintLoader: recovery's reader of hint files, one file ahead of the thread
// that applies them.
//
// Recovery spends its time on two kinds of work per hint entry: reading,
// checking (CRC, bounds) and hashing it, which needs nothing but the file,
// and inserting it into the key index, which must happen on the store's
// thread and in file order (the index keeps each key's highest LSN, and the
// LSN check walks the log in order). The loader does the first kind on a
// thread of its own while the store's thread does the second: it reads the
// hint files in the order given into one of two buffers, checks each whole
// (HintFile::Read) and computes the index hash of each entry's key, so that
// the store's thread only inserts. Two buffers are enough: the loader
// reads file i+1 while file i is applied, and the buffers (about 20 MB each
// for a 64 MB segment of small records) are reused from file to file.
//
// Nothing about what recovery trusts changes: a file comes back with the
// Status HintFile::Read gave it (NotFound, Corruption, an I/O error), and
// the caller decides, as before, to scan the segment instead.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/hint_file.h"
#include "storage/io.h"
#include "storage/status.h"

namespace distkv::storage {

class HintLoader {
 public:
  struct Request {
    std::string path;       // the hint file
    uint64_t segment_size;  // the size of the segment it must describe
  };
  // One file, read and checked. hashes[i] is KeyIndex::Hash(seed, key) of
  // the i-th entry (of its value for a gap entry, which is never inserted).
  struct Loaded {
    Status status;
    HintFile file;
    std::vector<uint64_t> hashes;
  };

  // Starts reading requests, in order, on a thread of its own (none if
  // there are no requests). io must be safe to call from two threads (io.h).
  HintLoader(Io* io, uint64_t seed, std::vector<Request> requests);
  // Stops the thread (after the file it is reading) and waits for it.
  ~HintLoader();
  HintLoader(const HintLoader&) = delete;
  HintLoader& operator=(const HintLoader&) = delete;

  // The next request's file, in the order given, once it is read: valid
  // until Release, which the caller must call before the next Take.
  const Loaded& Take();
  // Gives the buffers of the file Take returned back to the loader.
  void Release();

 private:
  void Run();

  static constexpr size_t kBuffers = 2;

  Io* const io_;
  const uint64_t seed_;
  const std::vector<Request> requests_;
  Loaded buffers_[kBuffers];  // request i uses buffers_[i % kBuffers]

  std::mutex mu_;
  std::condition_variable cv_;
  size_t loaded_ = 0;    // requests read so far (guarded by mu_)
  size_t released_ = 0;  // requests the caller is done with (guarded by mu_)
  bool stop_ = false;    // guarded by mu_
  std::thread thread_;
};

}  // namespace distkv::storage
