// KeyIndex: the in-memory map key -> place of the key's newest record.
//
// Memory is the point of this class: a shard keeps every key in RAM, so the
// per-key overhead decides how many keys a node can hold. Layout:
//
//   slots   one uint64 per slot, open addressing with linear probing:
//           0 = empty, 1 = deleted (a tombstone slot), otherwise
//           (arena reference << 24) | (low 24 bits of the key's XXH3 hash).
//           The 24-bit fingerprint rejects almost every non-matching slot
//           without touching the arena.
//   arena   the entries, packed back to back in 1 MiB blocks (no per-key
//           allocation, no alignment padding):
//             u64 lsn | u32 segment | u32 value_len |
//             u40 (offset | deleted-flag << 39) | varint key length | key
//           = 21 bytes + 1..3 + the key. lsn == 0 marks a freed entry.
//
// A slot is found from the hash's high bits scaled to the capacity, which need
// not be a power of two: the table is rebuilt to about 55% load whenever
// live + tombstone slots pass 80%, so the slot cost stays between 10 and 15
// bytes a key instead of swinging 2x with power-of-two sizes. A rebuild also
// compacts the arena when more than a quarter of it is freed entries.
// Overwrites update an entry in place; erases free it.
//
// Cursor scans. Because a key's home slot grows with its hash (high bits
// scaled to the capacity) and linear probing only moves a key forward from
// its home, the table is nearly sorted by hash: every key whose home lies
// before an empty slot sits before it (wrap-around aside). Scan() walks from
// the cursor's home slot to an empty slot past the page, sorts what it saw by
// hash and returns keys in full-hash order; the cursor is the hash to resume
// from. It depends on neither the capacity nor the arena, so a rebuild
// between pages (growth, shrinkage, arena compaction) loses no key and
// repeats none, and the same cursor means the same place on a replica.
//
// Not thread-safe: the owning thread alone uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "storage/huge_page_allocator.h"

namespace distkv::storage {

struct IndexEntry {
  uint64_t lsn = 0;      // >= 1
  uint64_t offset = 0;   // of the record in its segment, < kMaxIndexOffset
  uint32_t segment = 0;  // segment id
  uint32_t value_len = 0;
  bool deleted = false;  // a tombstone; only recovery keeps these
};

inline constexpr uint64_t kMaxIndexOffset = 1ull << 39;

// One key of a scan page. key views the index's arena: valid until the index
// is next modified.
struct ScanItem {
  std::string_view key;
  IndexEntry entry;
  uint64_t hash = 0;
};

struct ScanPage {
  std::vector<ScanItem> items;  // in hash order
  uint64_t next = 0;            // the cursor of the next page
  bool end = false;             // no key hashes at or above next
};

class KeyIndex {
 public:
  KeyIndex();
  // With a seed of its owner's choosing (see hash_seed()).
  explicit KeyIndex(uint64_t seed);
  // The random seed of KeyIndex(), drawn once per process.
  static uint64_t ProcessSeed();
  ~KeyIndex();
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  bool Find(std::string_view key, IndexEntry* out) const;
  // Prefetches key's home slot: a batch of lookups that prefetches a few
  // keys ahead overlaps their cache misses (the table is far larger than
  // the cache, so each probe otherwise waits for memory).
  void Prefetch(std::string_view key) const { PrefetchHash(HashKey(key)); }
  // The same for a key whose hash (Hash()) the caller has already computed.
  void PrefetchHash(uint64_t hash) const { __builtin_prefetch(&slots_[Home(hash, slots_.size())]); }
  // The hash under which an index of this seed files key. A caller that
  // both prefetches and inserts a key (recovery) computes it once, and may
  // compute it on another thread: it depends on nothing but the seed.
  static uint64_t Hash(uint64_t seed, std::string_view key);
  uint64_t HashKey(std::string_view key) const { return Hash(seed_, key); }
  // Inserts or overwrites; returns true (and *old, if given) when the key was present.
  bool Put(std::string_view key, const IndexEntry& e, IndexEntry* old = nullptr);
  // Recovery's rule: stores e unless the present entry has an LSN >= e.lsn.
  // Returns true if e was stored; *replaced tells whether it displaced an entry (then in *old).
  bool PutIfNewer(std::string_view key, const IndexEntry& e, bool* replaced, IndexEntry* old) {
    return PutIfNewer(key, HashKey(key), e, replaced, old);
  }
  // The same with key's Hash(hash_seed(), key) given.
  bool PutIfNewer(std::string_view key, uint64_t hash, const IndexEntry& e, bool* replaced,
                  IndexEntry* old);
  // Returns true (and *old) if the key was present.
  bool Erase(std::string_view key, IndexEntry* old = nullptr);

  // Visits every entry (no order). fn must not modify the index.
  void ForEach(const std::function<void(std::string_view key, const IndexEntry& e)>& fn) const;
  // A page of the live (not tombstoned) keys whose XXH3 hash is >= cursor
  // and for which match (if given) returns true, in hash order: at most
  // max_keys of them (more only if several share one 64-bit hash), found by
  // looking at about max_slots slots. A page may be short, even empty, with
  // end false: the slot budget ran out first. Start with cursor 0.
  void Scan(uint64_t cursor, size_t max_keys, size_t max_slots,
            const std::function<bool(std::string_view key)>& match, ScanPage* page) const;

  // Sizes the slot array once for `keys` live keys (about 55% load), so that
  // inserting that many grows it no more. Recovery calls it with the number
  // of entries its hint files hold before loading them: a table grown one
  // rebuild at a time re-places every key about twice over on the way.
  void Reserve(size_t keys);
  // Gives back what a Reserve larger than the keys that came needs no more:
  // rebuilds for the live keys when the table is more than twice their size.
  void ShrinkToFit();

  // Erases every entry for which pred returns true.
  void EraseIf(const std::function<bool(std::string_view key, const IndexEntry& e)>& pred);

  size_t size() const { return live_; }
  size_t capacity() const { return slots_.size(); }
  // Bytes held: the slot array plus the arena blocks.
  size_t MemoryBytes() const;
  // The seed of the key hash: random, drawn once per process, so keys
  // crafted to collide under plain XXH3 do not pile into one probe run. (The
  // slot hash of sharding is unseeded: it is part of the protocol.)
  uint64_t hash_seed() const { return seed_; }

 private:
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kDeletedSlot = 1;
  static constexpr int kFingerprintBits = 24;
  static constexpr size_t kBlockBits = 20;  // 1 MiB arena blocks

  struct Block {
    char* data = nullptr;
    size_t used = 0;
    size_t capacity = 0;
  };

  // Probes for key. Returns true with *slot = its slot, or false with *slot =
  // where it would be inserted (the first deleted slot seen, else the empty one).
  bool Probe(std::string_view key, uint64_t hash, size_t* slot) const;
  static size_t Home(uint64_t hash, size_t capacity) {
    return static_cast<size_t>((static_cast<unsigned __int128>(hash) * capacity) >> 64);
  }
  static char* AtIn(const std::vector<Block>& blocks, uint64_t ref);
  static IndexEntry DecodeEntry(const char* p);
  template <typename Fn>
  static void WalkBlocks(const std::vector<Block>& blocks, Fn&& fn);
  char* At(uint64_t ref) const;
  std::string_view KeyAt(uint64_t ref) const;
  IndexEntry EntryAt(uint64_t ref) const;
  void WriteEntry(uint64_t ref, const IndexEntry& e);
  uint64_t Allocate(std::string_view key, const IndexEntry& e);
  void Free(uint64_t ref);
  size_t EntryBytes(uint64_t ref) const;
  // Visits arena entries in arena order: fn(ref). Freed entries are skipped.
  template <typename Fn>
  void WalkArena(Fn&& fn) const;
  // Inserts an absent key at the slot Probe() returned for it.
  void Insert(std::string_view key, uint64_t hash, size_t slot, const IndexEntry& e);
  void Rebuild(size_t min_live);
  void EraseAt(size_t slot);

  uint64_t seed_;
  using SlotArray = std::vector<uint64_t, HugePageAllocator<uint64_t>>;
  SlotArray slots_;
  std::vector<Block> blocks_;
  size_t live_ = 0;
  size_t deleted_slots_ = 0;
  size_t arena_used_ = 0;   // bytes of entries, live or freed
  size_t arena_freed_ = 0;  // bytes of freed entries
};

}  // namespace distkv::storage
