// ExpiryTable: the expiry times of the keys that have one (PUT ?ttl=).
//
// Most keys never expire, so the time is not kept in the key index (whose
// entries stay as small as they are): keys with a TTL have an entry here,
// found by key, and a second, time-ordered copy from which the keys that are
// due come out oldest first. A key without a TTL costs nothing here, and a
// read of it one lookup in a table that is usually empty. Like the index, the
// table belongs to the store's owner thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace distkv::storage {

class ExpiryTable {
 public:
  // The key's expiry (Unix ms), 0 if it has none.
  uint64_t Get(std::string_view key) const {
    if (by_key_.empty()) return 0;
    auto it = by_key_.find(std::string(key));
    return it == by_key_.end() ? 0 : it->second;
  }

  // Sets the key's expiry; 0 removes it.
  void Set(std::string_view key, uint64_t expires_ms) {
    if (expires_ms == 0 && by_key_.empty()) return;
    std::string k(key);
    auto it = by_key_.find(k);
    if (it != by_key_.end()) {
      if (it->second == expires_ms) return;
      by_time_.erase({it->second, k});
      if (expires_ms == 0) {
        by_key_.erase(it);
        return;
      }
      it->second = expires_ms;
    } else {
      if (expires_ms == 0) return;
      by_key_.emplace(k, expires_ms);
    }
    by_time_.emplace(expires_ms, std::move(k));
  }

  // Appends up to max keys whose expiry is at or before now_ms, soonest first.
  void Due(uint64_t now_ms, size_t max, std::vector<std::string>* keys) const {
    for (auto it = by_time_.begin(); it != by_time_.end() && keys->size() < max; ++it) {
      if (it->first > now_ms) break;
      keys->push_back(it->second);
    }
  }

  size_t size() const { return by_key_.size(); }
  void Clear() {
    by_key_.clear();
    by_time_.clear();
  }

 private:
  std::unordered_map<std::string, uint64_t> by_key_;
  std::set<std::pair<uint64_t, std::string>> by_time_;
};

}  // namespace distkv::storage
