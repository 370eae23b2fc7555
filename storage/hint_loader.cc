// HintLoader; the mechanism is described in hint_loader.h.
#include "storage/hint_loader.h"

#include <cassert>

#include "storage/key_index.h"

namespace distkv::storage {

HintLoader::HintLoader(Io* io, uint64_t seed, std::vector<Request> requests)
    : io_(io), seed_(seed), requests_(std::move(requests)) {
  if (!requests_.empty()) thread_ = std::thread([this] { Run(); });
}

HintLoader::~HintLoader() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HintLoader::Run() {
  for (size_t i = 0; i < requests_.size(); i++) {
    {
      // Buffer i % kBuffers is free once the caller released the request
      // that used it before.
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || released_ + kBuffers > i; });
      if (stop_) return;
    }
    // The buffer is this thread's alone until loaded_ passes i.
    Loaded& b = buffers_[i % kBuffers];
    b.status = b.file.Read(io_, requests_[i].path, requests_[i].segment_size);
    b.hashes.clear();
    if (b.status.ok()) {
      b.hashes.reserve(b.file.entries());
      HintEntry e;
      for (HintFile::Cursor c(b.file); !c.done();) {
        c.Next(&e);
        b.hashes.push_back(KeyIndex::Hash(seed_, e.key));
      }
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      loaded_ = i + 1;
    }
    cv_.notify_all();
  }
}

const HintLoader::Loaded& HintLoader::Take() {
  std::unique_lock<std::mutex> l(mu_);
  assert(released_ < requests_.size());
  cv_.wait(l, [&] { return loaded_ > released_; });
  return buffers_[released_ % kBuffers];
}

void HintLoader::Release() {
  {
    std::lock_guard<std::mutex> l(mu_);
    released_++;
  }
  cv_.notify_all();
}

}  // namespace distkv::storage
