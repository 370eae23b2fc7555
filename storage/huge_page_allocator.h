// HugePageAllocator: an allocator for large arrays read at random places,
// such as the key index's slot array, that asks the kernel to back them with
// transparent huge pages.
//
// Every lookup and insert of the key index lands on a random slot of an
// array that, at ten million keys, spans about 150 MB: with 4 KiB pages
// nearly every one is a TLB miss as well as a cache miss, and a page walk
// (two-dimensional, and so several more misses, inside a virtual machine)
// before the memory access can even start. Prefetching cannot hide that
// walk. With 2 MiB pages the whole array needs about 75 TLB entries.
//
// Arrays of at least kMinBytes are mapped on their own (mmap) with
// madvise(MADV_HUGEPAGE): only advice, which a kernel with transparent huge
// pages disabled ignores (the array then works as before). Smaller ones come
// from operator new, so that small indexes stay small.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace distkv::storage {

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  static constexpr size_t kHugePageBytes = size_t{2} << 20;
  static constexpr size_t kMinBytes = 2 * kHugePageBytes;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return static_cast<T*>(::operator new(bytes));
    void* p = mmap(nullptr, MappedBytes(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, MappedBytes(bytes), MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }

  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) {
      ::operator delete(p);
    } else {
      munmap(p, MappedBytes(bytes));
    }
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }

 private:
  static size_t MappedBytes(size_t bytes) {
    return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  }
};

}  // namespace distkv::storage
