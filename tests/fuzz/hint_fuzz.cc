// Fuzz target: hint files (storage/hint_file.h) — the decoder, and recovery
// of a sealed segment through its hint file.
//
// The input describes a sealed segment (a run of puts, deletes, puts with an
// expiry, gap records and atomic groups, encoded as the store encodes them)
// followed by a newest segment of one record, and then what becomes of the
// segment's hint file, which HintBuilder writes as the store does. The
// input's last byte picks it (FuzzedDataProvider takes numbers from the end
// and strings from the front; tests/fuzz/make_seeds.py lays seeds out so):
//   0  the hint as written;
//   1  the hint with some bytes overwritten;
//   2  the hint cut short, with bytes appended;
//   3  a forged hint: entries from the input under a trailer the target
//      fills in (the right segment size unless asked otherwise, the input's
//      entry count, magic, the right CRC), so mutations reach the entry
//      parser instead of dying at the CRC check.
// Checks:
//   - ReadHintFile never fails with anything but NotFound or Corruption; an
//     accepted hint re-encodes (HintBuilder) to the very bytes read;
//   - a damaged hint means "scan the segment", never an error: the store
//     opens on the segment with the hint exactly when it opens without it;
//   - the index recovered with the hint equals the one a scan recovers
//     (keys, values, LSNs, expiries, live and dead bytes, last LSN), whenever
//     the hint describes the segment's records — the one written, or any
//     other that decodes to the same entries. A forged hint with other
//     entries and a valid CRC cannot be told from a true one without reading
//     the segment, which is what a hint exists to avoid; for it the target
//     asks only that the store open or refuse with Corruption, and that a
//     store that opened takes a write and opens again.
// Everything runs on the in-memory FaultyIo.
#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/hint_file.h"
#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_store.h"

namespace {

namespace st = distkv::storage;
using st::Status;
using st::fuzz::Check;

constexpr uint64_t kHistory = 0x0123456789abcdefull;

// One decoded hint entry, owning its key.
using Entry = std::tuple<uint64_t, uint64_t, uint32_t, bool, bool, uint64_t, std::string>;

Status ReadEntries(st::Io* io, const std::string& path, uint64_t segment_size,
                   std::vector<Entry>* out) {
  out->clear();
  return st::ReadHintFile(io, path, segment_size, [&](const st::HintEntry& e) {
    out->emplace_back(e.lsn, e.offset, e.value_len, e.tombstone, e.gap, e.expires_ms,
                      std::string(e.key));
  });
}

// What recovery built, as far as a user or an operator can see it.
struct Index {
  std::map<std::string, std::tuple<std::string, uint64_t, uint64_t>> kv;  // value, LSN, expiry
  uint64_t keys, live_bytes, dead_bytes, sealed_dead_bytes, last_lsn, high_water, ttl_keys;
  bool operator==(const Index&) const = default;
};

Index Read(st::Store* store) {
  Index x;
  Status s = store->ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
    x.kv[std::string(k)] = {std::string(v), lsn, store->ExpiryOf(k)};
  });
  Check(s.ok(), "ForEach", s);
  const st::StoreStats stats = store->Stats();
  x.keys = stats.keys;
  x.live_bytes = stats.live_bytes;
  x.dead_bytes = stats.dead_bytes;
  x.sealed_dead_bytes = stats.sealed_dead_bytes;
  x.last_lsn = stats.last_lsn;
  x.high_water = stats.high_water_lsn;
  x.ttl_keys = stats.keys_with_ttl;
  return x;
}

// Opens a directory holding the two segments and, if hint is given, the
// first one's hint file. *index is what the store recovered.
Status Open(const std::string& seg1, const std::string& seg2, const std::string* hint,
            bool check_reads, Index* index) {
  st::fuzz::MemDir dir;
  dir.Write(st::SegmentFileName(1), seg1);
  dir.Write(st::SegmentFileName(2), seg2);
  if (hint) dir.Write(st::HintFileName(1), *hint);
  dir.SyncDir();

  const st::Options options = dir.StoreOptions(1 << 20);
  std::unique_ptr<st::Store> store;
  Status s = st::Store::Open(options, &store);
  if (!s.ok()) return s;
  if (check_reads) *index = Read(store.get());
  st::fuzz::WriteAndReopen(options, &store);
  std::string v;
  Status w = store->Get(st::fuzz::kNewKey, &v);
  Check(w.ok() && v == "v", "the write is there after the second open", w);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const uint8_t mode = input.ConsumeIntegral<uint8_t>() & 3;

  // The sealed segment and its hint, as the store writes them.
  std::string seg1;
  st::HintBuilder builder;
  std::vector<std::string> keep;  // owns the records' keys and values
  keep.reserve(64);
  uint64_t lsn = 0;
  const int records = input.ConsumeIntegralInRange<int>(1, 24);
  for (int i = 0; i < records && input.remaining_bytes() > 0; ++i) {
    const uint8_t op = input.ConsumeIntegral<uint8_t>();
    st::Record r;
    const int kind = (op & 7) % 5;  // bits 3-5: the key (or the gap), 6: own key, 7: group
    if (kind == 4) {
      const uint64_t prev = lsn;
      lsn += 1 + ((op >> 3) & 3);
      r.lsn = lsn;
      r.type = st::RecordType::kGap;
      keep.push_back(st::EncodeGapValue(prev, kHistory));
      r.value = keep.back();
    } else {
      r.lsn = ++lsn;
      r.type = kind == 2 ? st::RecordType::kDelete : st::RecordType::kPut;
      keep.push_back((op & 0x40) ? input.ConsumeRandomLengthString(12)
                                 : "k" + std::to_string((op >> 3) & 7));
      if (keep.back().empty()) keep.back() = "e";
      r.key = keep.back();
      if (kind != 2) {
        keep.push_back(input.ConsumeRandomLengthString(48));
        r.value = keep.back();
      }
      if (kind == 3) r.expires_ms = 4102444800000ull + (op & 7);
      r.group_continues = (op & 0x80) != 0;
    }
    builder.Add(r, seg1.size());
    st::EncodeRecord(r, &seg1);
  }
  std::string seg2;
  st::EncodeRecord(st::Record{lsn + 1, st::RecordType::kPut, "tail", "t"}, &seg2);
  const std::string written = builder.Finish(seg1.size());

  std::string hint = written;
  if (mode == 1) {
    const int n = input.ConsumeIntegralInRange<int>(1, 8);
    for (int i = 0; i < n && !hint.empty(); ++i) {
      const size_t at = input.ConsumeIntegralInRange<size_t>(0, hint.size() - 1);
      hint[at] = static_cast<char>(input.ConsumeIntegral<uint8_t>());
    }
  } else if (mode == 2) {
    hint.resize(input.ConsumeIntegralInRange<size_t>(0, hint.size()));
    hint += input.ConsumeRandomLengthString(32);
  } else if (mode == 3) {
    const uint8_t count = input.ConsumeIntegral<uint8_t>();
    const bool other_size = input.ConsumeBool();
    const uint64_t claimed = other_size ? input.ConsumeIntegral<uint64_t>() : seg1.size();
    hint = input.ConsumeRemainingBytesAsString();
    char t[24];
    st::EncodeFixed64(t, claimed);
    st::EncodeFixed64(t + 8, count);
    st::EncodeFixed32(t + 16, 0x31484B44);  // "DKH1"
    hint.append(t, 20);
    st::EncodeFixed32(t + 20, st::crc32c::Value(hint.data(), hint.size()));
    hint.append(t + 20, 4);
  }

  // The decoder on its own.
  std::vector<Entry> truth, got;
  {
    st::fuzz::MemDir dir;
    const std::string path = dir.Path(st::HintFileName(1));
    dir.Write(st::HintFileName(1), written);
    Status s = ReadEntries(&dir.io, path, seg1.size(), &truth);
    Check(s.ok(), "the hint HintBuilder wrote reads back", s);
    dir.Write(st::HintFileName(1), hint);
    s = ReadEntries(&dir.io, path, seg1.size(), &got);
    Check(s.ok() || s.IsCorruption(), "a bad hint is Corruption", s);
    if (s.ok()) {
      st::HintBuilder again;
      std::string value;
      for (const auto& [e_lsn, off, vlen, tomb, gap, expires, key] : got) {
        st::Record r;
        r.lsn = e_lsn;
        r.type = gap ? st::RecordType::kGap : tomb ? st::RecordType::kDelete : st::RecordType::kPut;
        r.expires_ms = expires;
        if (gap) {
          r.value = key;
        } else {
          Check(vlen <= seg1.size() && (!expires || vlen >= st::kExpiryBytes),
                "an accepted entry's value fits the segment (and holds its expiry)");
          r.key = key;
          value.assign(vlen - (expires ? st::kExpiryBytes : 0), 'x');
          r.value = value;
        }
        again.Add(r, off);
      }
      Check(again.Finish(seg1.size()) == hint, "an accepted hint re-encodes to its bytes");
    } else {
      got.clear();
    }
  }
  const bool forged = !got.empty() && got != truth;

  Index scanned, hinted;
  const Status scan = Open(seg1, seg2, nullptr, true, &scanned);
  const Status with_hint = Open(seg1, seg2, &hint, !forged, &hinted);
  if (forged) {
    Check(with_hint.ok() || with_hint.IsCorruption(), "a forged hint: open or Corruption",
          with_hint);
    return 0;
  }
  Check(scan.ok() == with_hint.ok(), "the store opens with the hint exactly when without",
        scan.ok() ? with_hint : scan);
  if (scan.ok()) Check(hinted == scanned, "the index from the hint equals a scan's");
  return 0;
}
