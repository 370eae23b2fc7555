// KeyIndex; the layout and its reasons are in key_index.h.
#include "storage/key_index.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <utility>

namespace distkv::storage {

namespace {

constexpr size_t kFixedBytes = 21;  // lsn, segment, value_len, offset+flag
constexpr size_t kMinCapacity = 16;
constexpr size_t kFirstBlockBytes = 4096;
constexpr uint64_t kDeletedFlag = 1ull << 39;

// Drawn once per process (a function-local static: thread-safe, and no
// index depends on when another was made).
uint64_t ProcessHashSeed() {
  static const uint64_t seed = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  return seed;
}

size_t VarintLength(size_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

char* PutVarint(char* p, size_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

const char* GetVarint(const char* p, size_t* v) {
  size_t result = 0;
  for (int shift = 0;; shift += 7) {
    uint8_t b = static_cast<uint8_t>(*p++);
    result |= static_cast<size_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) break;
  }
  *v = result;
  return p;
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void Store(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

}  // namespace

KeyIndex::KeyIndex() : KeyIndex(ProcessHashSeed()) {}

uint64_t KeyIndex::ProcessSeed() { return ProcessHashSeed(); }

KeyIndex::KeyIndex(uint64_t seed) : seed_(seed), slots_(kMinCapacity, kEmpty) {}

uint64_t KeyIndex::Hash(uint64_t seed, std::string_view key) {
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

KeyIndex::~KeyIndex() {
  for (Block& b : blocks_) std::free(b.data);
}

char* KeyIndex::AtIn(const std::vector<Block>& blocks, uint64_t ref) {
  return blocks[ref >> kBlockBits].data + (ref & ((1ull << kBlockBits) - 1));
}

char* KeyIndex::At(uint64_t ref) const { return AtIn(blocks_, ref); }

std::string_view KeyIndex::KeyAt(uint64_t ref) const {
  const char* p = At(ref) + kFixedBytes;
  size_t klen;
  p = GetVarint(p, &klen);
  return std::string_view(p, klen);
}

size_t KeyIndex::EntryBytes(uint64_t ref) const {
  size_t klen;
  const char* p = At(ref) + kFixedBytes;
  const char* key = GetVarint(p, &klen);
  return kFixedBytes + static_cast<size_t>(key - p) + klen;
}

IndexEntry KeyIndex::EntryAt(uint64_t ref) const { return DecodeEntry(At(ref)); }

IndexEntry KeyIndex::DecodeEntry(const char* p) {
  IndexEntry e;
  e.lsn = Load<uint64_t>(p);
  e.segment = Load<uint32_t>(p + 8);
  e.value_len = Load<uint32_t>(p + 12);
  uint64_t off = 0;
  std::memcpy(&off, p + 16, 5);
  e.deleted = (off & kDeletedFlag) != 0;
  e.offset = off & (kDeletedFlag - 1);
  return e;
}

void KeyIndex::WriteEntry(uint64_t ref, const IndexEntry& e) {
  assert(e.lsn != 0 && e.offset < kMaxIndexOffset);
  char* p = At(ref);
  Store<uint64_t>(p, e.lsn);
  Store<uint32_t>(p + 8, e.segment);
  Store<uint32_t>(p + 12, e.value_len);
  uint64_t off = e.offset | (e.deleted ? kDeletedFlag : 0);
  std::memcpy(p + 16, &off, 5);
}

uint64_t KeyIndex::Allocate(std::string_view key, const IndexEntry& e) {
  const size_t need = kFixedBytes + VarintLength(key.size()) + key.size();
  const size_t block_size = size_t{1} << kBlockBits;
  if (blocks_.empty() || blocks_.back().used + need > block_size) {
    Block b;
    // The first block grows from small so that tiny stores stay tiny; later
    // blocks are allocated whole.
    b.capacity = blocks_.empty() ? kFirstBlockBytes : block_size;
    b.used = blocks_.empty() ? 8 : 0;  // ref 0 is never an entry (slot value 0 = empty)
    b.data = static_cast<char*>(std::malloc(b.capacity));
    if (!b.data) throw std::bad_alloc();
    blocks_.push_back(b);
  }
  Block& b = blocks_.back();
  if (b.used + need > b.capacity) {
    size_t cap = b.capacity;
    while (cap < b.used + need) cap *= 2;
    if (cap > block_size) cap = block_size;
    char* grown = static_cast<char*>(std::realloc(b.data, cap));
    if (!grown) throw std::bad_alloc();
    b.data = grown;
    b.capacity = cap;
  }
  const uint64_t ref = (static_cast<uint64_t>(blocks_.size() - 1) << kBlockBits) | b.used;
  b.used += need;
  arena_used_ += need;
  char* p = At(ref) + kFixedBytes;
  p = PutVarint(p, key.size());
  std::memcpy(p, key.data(), key.size());
  WriteEntry(ref, e);
  return ref;
}

void KeyIndex::Free(uint64_t ref) {
  arena_freed_ += EntryBytes(ref);
  Store<uint64_t>(At(ref), 0);
}

template <typename Fn>
void KeyIndex::WalkBlocks(const std::vector<Block>& blocks, Fn&& fn) {
  for (size_t bi = 0; bi < blocks.size(); bi++) {
    const Block& b = blocks[bi];
    size_t pos = bi == 0 ? 8 : 0;
    while (pos < b.used) {
      const char* p = b.data + pos;
      size_t klen;
      const char* key = GetVarint(p + kFixedBytes, &klen);
      if (Load<uint64_t>(p) != 0) fn((static_cast<uint64_t>(bi) << kBlockBits) | pos);
      pos += static_cast<size_t>(key - p) + klen;
    }
  }
}

template <typename Fn>
void KeyIndex::WalkArena(Fn&& fn) const {
  WalkBlocks(blocks_, std::forward<Fn>(fn));
}

bool KeyIndex::Probe(std::string_view key, uint64_t hash, size_t* slot) const {
  const size_t cap = slots_.size();
  const uint64_t fp = hash & ((1ull << kFingerprintBits) - 1);
  size_t i = Home(hash, cap);
  size_t first_free = cap;
  for (;;) {
    const uint64_t s = slots_[i];
    if (s == kEmpty) {
      *slot = first_free != cap ? first_free : i;
      return false;
    }
    if (s == kDeletedSlot) {
      if (first_free == cap) first_free = i;
    } else if ((s & ((1ull << kFingerprintBits) - 1)) == fp &&
               KeyAt(s >> kFingerprintBits) == key) {
      *slot = i;
      return true;
    }
    if (++i == cap) i = 0;
  }
}

void KeyIndex::Insert(std::string_view key, uint64_t hash, size_t slot, const IndexEntry& e) {
  if (slots_[slot] == kEmpty && (live_ + deleted_slots_ + 1) * 5 > slots_.size() * 4) {
    Rebuild(live_ + 1);
    Probe(key, hash, &slot);
  }
  if (slots_[slot] == kDeletedSlot) deleted_slots_--;
  const uint64_t ref = Allocate(key, e);
  slots_[slot] = (ref << kFingerprintBits) | (hash & ((1ull << kFingerprintBits) - 1));
  live_++;
}

void KeyIndex::Rebuild(size_t min_live) {
  size_t cap = min_live * 20 / 11 + 1;  // about 55% load
  if (cap < kMinCapacity) cap = kMinCapacity;
  SlotArray slots(cap, kEmpty);
  // Placing an entry is a cache miss into the new slot array. Entries go
  // through a small ring: each one's home slot is prefetched when it enters
  // and written when it leaves, kRing entries later, so the misses overlap.
  constexpr size_t kRing = 16;
  struct PrefetchedEntry {
    uint64_t ref, hash;
    size_t home;
  } ring[kRing];
  size_t ring_n = 0;
  auto settle = [&](const PrefetchedEntry& p) {
    size_t i = p.home;
    while (slots[i] != kEmpty) {
      if (++i == cap) i = 0;
    }
    slots[i] = (p.ref << kFingerprintBits) | (p.hash & ((1ull << kFingerprintBits) - 1));
  };
  auto place = [&](uint64_t ref) {
    const uint64_t h = HashKey(KeyAt(ref));
    const size_t home = Home(h, cap);
    __builtin_prefetch(&slots[home], 1);
    PrefetchedEntry& slot = ring[ring_n++ % kRing];
    if (ring_n > kRing) settle(slot);
    slot = PrefetchedEntry{ref, h, home};
  };
  auto drain = [&] {
    const size_t n = ring_n < kRing ? ring_n : kRing;
    for (size_t k = 0; k < n; k++) settle(ring[k]);  // every pending entry, in any order
  };
  if (arena_freed_ * 4 > arena_used_) {
    // Copy the live entries, in arena order, into fresh blocks; entries are
    // read through `old`, which At() no longer sees once blocks_ is reset.
    const std::vector<Block> old = std::move(blocks_);
    blocks_.clear();
    arena_used_ = arena_freed_ = 0;
    WalkBlocks(old, [&](uint64_t ref) {
      const char* p = AtIn(old, ref);
      size_t klen;
      const char* k = GetVarint(p + kFixedBytes, &klen);
      IndexEntry e = DecodeEntry(p);
      place(Allocate(std::string_view(k, klen), e));
    });
    drain();
    for (const Block& b : old) std::free(b.data);
  } else {
    WalkArena(place);
    drain();
  }
  slots_.swap(slots);
  deleted_slots_ = 0;
}

bool KeyIndex::Find(std::string_view key, IndexEntry* out) const {
  size_t slot;
  if (!Probe(key, HashKey(key), &slot)) return false;
  *out = EntryAt(slots_[slot] >> kFingerprintBits);
  return true;
}

bool KeyIndex::Put(std::string_view key, const IndexEntry& e, IndexEntry* old) {
  const uint64_t h = HashKey(key);
  size_t slot;
  if (Probe(key, h, &slot)) {
    const uint64_t ref = slots_[slot] >> kFingerprintBits;
    if (old) *old = EntryAt(ref);
    WriteEntry(ref, e);
    return true;
  }
  Insert(key, h, slot, e);
  return false;
}

bool KeyIndex::PutIfNewer(std::string_view key, uint64_t h, const IndexEntry& e, bool* replaced,
                          IndexEntry* old) {
  size_t slot;
  if (Probe(key, h, &slot)) {
    const uint64_t ref = slots_[slot] >> kFingerprintBits;
    const IndexEntry cur = EntryAt(ref);
    if (cur.lsn >= e.lsn) {
      *replaced = false;
      return false;
    }
    if (old) *old = cur;
    WriteEntry(ref, e);
    *replaced = true;
    return true;
  }
  Insert(key, h, slot, e);
  *replaced = false;
  return true;
}

void KeyIndex::EraseAt(size_t slot) {
  Free(slots_[slot] >> kFingerprintBits);
  live_--;
  const size_t cap = slots_.size();
  // If the next slot is empty no probe sequence runs through this one, so it
  // (and the deleted slots just before it) can become empty again.
  if (slots_[(slot + 1) % cap] == kEmpty) {
    slots_[slot] = kEmpty;
    size_t i = slot;
    for (;;) {
      i = i == 0 ? cap - 1 : i - 1;
      if (slots_[i] != kDeletedSlot) break;
      slots_[i] = kEmpty;
      deleted_slots_--;
    }
  } else {
    slots_[slot] = kDeletedSlot;
    deleted_slots_++;
  }
}

bool KeyIndex::Erase(std::string_view key, IndexEntry* old) {
  size_t slot;
  if (!Probe(key, HashKey(key), &slot)) return false;
  if (old) *old = EntryAt(slots_[slot] >> kFingerprintBits);
  EraseAt(slot);
  return true;
}

void KeyIndex::ForEach(
    const std::function<void(std::string_view key, const IndexEntry& e)>& fn) const {
  WalkArena([&](uint64_t ref) { fn(KeyAt(ref), EntryAt(ref)); });
}

void KeyIndex::Reserve(size_t keys) {
  keys = std::max(keys, live_);
  // Insert rebuilds once live + deleted slots pass 80% of the capacity.
  if ((keys + deleted_slots_) * 5 > slots_.size() * 4) Rebuild(keys);
}

void KeyIndex::ShrinkToFit() {
  if (slots_.size() > 2 * (live_ * 20 / 11 + 1) && slots_.size() > kMinCapacity) Rebuild(live_);
}

void KeyIndex::EraseIf(const std::function<bool(std::string_view key, const IndexEntry& e)>& pred) {
  std::vector<uint64_t> doomed;
  WalkArena([&](uint64_t ref) {
    if (pred(KeyAt(ref), EntryAt(ref))) doomed.push_back(ref);
  });
  for (uint64_t ref : doomed) {
    size_t slot;
    bool found = Probe(KeyAt(ref), HashKey(KeyAt(ref)), &slot);
    assert(found);
    (void)found;
    EraseAt(slot);
  }
}

void KeyIndex::Scan(uint64_t cursor, size_t max_keys, size_t max_slots,
                    const std::function<bool(std::string_view key)>& match, ScanPage* page) const {
  page->items.clear();
  page->end = false;
  if (max_keys == 0) max_keys = 1;
  const size_t cap = slots_.size();
  const size_t start = Home(cursor, cap);
  // Walk positions start, start+1, ... (slot p % cap) and stop at an empty
  // slot once enough keys or slots were seen: every key whose home lies
  // before that empty slot has been seen. Past the table's end only keys that
  // wrapped around remain, so the walk then runs to the first empty slot.
  size_t p = start;
  size_t seen = 0;
  bool wrapped = false;
  for (;; ++p) {
    if (p == start + cap) {  // the whole table: nothing is left unseen
      wrapped = true;
      break;
    }
    const uint64_t s = slots_[p % cap];
    if (s == kEmpty) {
      if (p >= cap) {
        wrapped = true;
        break;
      }
      if (page->items.size() >= max_keys || seen >= max_slots) break;
      continue;
    }
    ++seen;
    if (s == kDeletedSlot) continue;
    const uint64_t ref = s >> kFingerprintBits;
    const std::string_view key = KeyAt(ref);
    const uint64_t h = HashKey(key);
    if (h < cursor) continue;
    const IndexEntry e = EntryAt(ref);
    if (e.deleted || (match && !match(key))) continue;
    page->items.push_back(ScanItem{key, e, h});
  }
  // Keys with a hash below `bound` have their home before position p, so all
  // of them were seen; keys seen at or above it wrapped around from the end.
  uint64_t bound = 0;
  if (!wrapped) {
    bound = static_cast<uint64_t>(((static_cast<unsigned __int128>(p) << 64) + cap - 1) / cap);
    std::erase_if(page->items, [bound](const ScanItem& it) { return it.hash >= bound; });
  }
  std::sort(page->items.begin(), page->items.end(),
            [](const ScanItem& a, const ScanItem& b) { return a.hash < b.hash; });
  if (page->items.size() > max_keys) {
    size_t n = max_keys;  // keep keys of one hash on one page
    while (n < page->items.size() && page->items[n].hash == page->items[n - 1].hash) ++n;
    if (n < page->items.size()) {
      page->next = page->items[n].hash;
      page->items.resize(n);
      return;
    }
  }
  page->end = wrapped;
  page->next = wrapped ? 0 : bound;
}

size_t KeyIndex::MemoryBytes() const {
  size_t bytes = slots_.capacity() * sizeof(uint64_t) + blocks_.capacity() * sizeof(Block);
  for (const Block& b : blocks_) bytes += b.capacity;
  return bytes;
}

}  // namespace distkv::storage
