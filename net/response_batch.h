// ResponseBatch: the bytes of one uv_write of a server connection — the
// ready answers at the front of its queue, gathered into as few buffers as
// possible.
//
// Pieces up to kCoalesceBytes (heads, small bodies, chunks) are copied into
// one growing buffer; a larger body is moved in whole and written from its
// own string, so a 16 MiB value is never copied. When the socket takes only
// part of a batch, Consume drops the written prefix and the rest goes out
// with uv_write. Batches are recycled by their connection.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <vector>

namespace distkv::net {

class ServerConnection;

struct ResponseBatch {
  uv_write_t req;
  ServerConnection* conn = nullptr;  // set while the batch is in a uv_write
  size_t bytes = 0;                  // not yet written

  // Takes the bytes of *s, leaving it empty (short strings keep their capacity).
  void Add(std::string* s);
  // Builds the buffers for uv_write; valid until the batch changes.
  void Seal();
  const std::vector<uv_buf_t>& bufs() const { return bufs_; }
  uv_buf_t* buf_data() { return bufs_.data(); }
  unsigned buf_count() const { return static_cast<unsigned>(bufs_.size()); }
  // Drops the first n bytes, already written.
  void Consume(size_t n);
  // Empties the batch for reuse; a very large copy buffer is released.
  void Reset();

 private:
  // One piece of the batch: a range of small_ or one of large_.
  struct Piece {
    bool small;
    size_t index;  // offset into small_, or index into large_
    size_t len;
  };

  std::string small_;
  std::vector<std::string> large_;
  std::vector<Piece> pieces_;
  std::vector<uv_buf_t> bufs_;
};

}  // namespace distkv::net
