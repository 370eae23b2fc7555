// RingQueue: a FIFO over a circular array of slots that are reused.
//
// A connection's queue of pending requests takes one entry and gives one
// back every request. std::deque allocates a block per 512 bytes, which for
// entries of a few hundred bytes is an allocation and a free per request;
// here the slots stay, and the array only grows (doubling) when more
// entries are pending than ever before. A popped slot is reset to T{}, so
// it holds nothing (no buffer, no callback) until it is used again.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace distkv::net {

template <typename T>
class RingQueue {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return slots_[head_]; }
  T& back() { return (*this)[size_ - 1]; }
  // The i-th entry from the front.
  T& operator[](size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }

  // Appends a default (reset) entry and returns it, for the caller to fill
  // in place. The reference is valid until the next emplace_back.
  T& emplace_back() {
    if (size_ == slots_.size()) Grow();
    ++size_;
    return back();
  }
  void pop_front() {
    slots_[head_] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }
  void swap(RingQueue& other) noexcept {
    slots_.swap(other.slots_);
    std::swap(head_, other.head_);
    std::swap(size_, other.size_);
  }

 private:
  // Keeps the order: entry i moves to slot i. Sizes stay powers of two, so
  // an index wraps with a mask.
  void Grow() {
    std::vector<T> bigger(slots_.empty() ? 8 : 2 * slots_.size());
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace distkv::net
