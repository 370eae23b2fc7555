// SyncClient: the client library as blocking calls, for programs without an
// event loop of their own (the `distkv` command line, scripts, tests). It
// owns a private libuv loop and a Client on it; each call runs the loop until
// its answer is in. Not thread-safe: one thread uses a SyncClient.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/client/client.h"

namespace distkv::client {

class SyncClient {
 public:
  explicit SyncClient(Options options);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  Response Get(const std::string& key, const ReadOptions& options = {});
  Response Put(const std::string& key, std::string value, const WriteOptions& options = {});
  Response Delete(const std::string& key, const WriteOptions& options = {});
  Response Scan(const ScanRequest& request, ScanPage* page);
  Response MGet(const std::vector<std::string>& keys, std::vector<KeyResult>* results);
  Response MPut(const std::vector<std::pair<std::string, std::string>>& pairs,
                std::vector<KeyResult>* results);
  Response NodeGet(const std::string& node, const std::string& target);
  // False with *error when no node gave a map.
  bool RefreshMap(std::string* error);

  Client& async() { return *client_; }

 private:
  template <typename Fn>
  void RunUntil(Fn&& start);

  uv_loop_t loop_;
  std::unique_ptr<Client> client_;
};

}  // namespace distkv::client
