#include "src/client/sync_client.h"

#include <signal.h>

namespace distkv::client {

SyncClient::SyncClient(Options options) {
  // A node that closes a connection must not kill the program with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop_);
  client_ = std::make_unique<Client>(&loop_, std::move(options));
}

SyncClient::~SyncClient() {
  client_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);  // let the closed connections finish closing
  uv_loop_close(&loop_);
}

// start(done_flag) issues one async call that sets *done when it completes.
// The client's timeouts bound every call, so the loop always comes back.
template <typename Fn>
void SyncClient::RunUntil(Fn&& start) {
  bool done = false;
  start(&done);
  while (!done && uv_run(&loop_, UV_RUN_ONCE) != 0) {
  }
}

Response SyncClient::Get(const std::string& key, const ReadOptions& options) {
  Response out;
  RunUntil([&](bool* done) {
    client_->Get(key, options, [&out, done](Response& r) {
      out = std::move(r);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::Put(const std::string& key, std::string value, const WriteOptions& options) {
  Response out;
  RunUntil([&](bool* done) {
    client_->Put(key, std::move(value), options, [&out, done](Response& r) {
      out = std::move(r);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::Delete(const std::string& key, const WriteOptions& options) {
  Response out;
  RunUntil([&](bool* done) {
    client_->Delete(key, options, [&out, done](Response& r) {
      out = std::move(r);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::Scan(const ScanRequest& request, ScanPage* page) {
  Response out;
  RunUntil([&](bool* done) {
    client_->Scan(request, [&out, page, done](Response& r, ScanPage& p) {
      out = std::move(r);
      *page = std::move(p);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::MGet(const std::vector<std::string>& keys, std::vector<KeyResult>* results) {
  Response out;
  RunUntil([&](bool* done) {
    client_->MGet(keys, [&out, results, done](Response& r, std::vector<KeyResult>& rs) {
      out = std::move(r);
      *results = std::move(rs);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::MPut(const std::vector<std::pair<std::string, std::string>>& pairs,
                          std::vector<KeyResult>* results) {
  Response out;
  RunUntil([&](bool* done) {
    client_->MPut(pairs, [&out, results, done](Response& r, std::vector<KeyResult>& rs) {
      out = std::move(r);
      *results = std::move(rs);
      *done = true;
    });
  });
  return out;
}

Response SyncClient::NodeGet(const std::string& node, const std::string& target) {
  Response out;
  RunUntil([&](bool* done) {
    client_->NodeGet(node, target, [&out, done](Response& r) {
      out = std::move(r);
      *done = true;
    });
  });
  return out;
}

bool SyncClient::RefreshMap(std::string* error) {
  bool ok = false;
  RunUntil([&](bool* done) {
    client_->RefreshMap([&ok, error, done](bool success, const std::string& why) {
      ok = success;
      if (error) *error = why;
      *done = true;
    });
  });
  return ok;
}

}  // namespace distkv::client
