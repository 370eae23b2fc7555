// ResponseBatch; see response_batch.h.
#include "net/response_batch.h"

namespace distkv::net {

namespace {
constexpr size_t kCoalesceBytes = 4096;  // pieces up to this are copied into one write buffer
constexpr size_t kMaxKeptBatchBuffer = 64 * 1024;
}  // namespace

void ResponseBatch::Add(std::string* s) {
  if (s->empty()) return;
  bytes += s->size();
  if (s->size() <= kCoalesceBytes) {
    if (!pieces_.empty() && pieces_.back().small)
      pieces_.back().len += s->size();
    else
      pieces_.push_back(Piece{true, small_.size(), s->size()});
    small_.append(*s);
    s->clear();
  } else {
    pieces_.push_back(Piece{false, large_.size(), s->size()});
    large_.push_back(std::move(*s));
    s->clear();
  }
}

void ResponseBatch::Seal() {
  bufs_.clear();
  for (const Piece& p : pieces_) {
    char* base = p.small ? small_.data() + p.index : large_[p.index].data();
    bufs_.push_back(uv_buf_init(base, static_cast<unsigned>(p.len)));
  }
}

void ResponseBatch::Consume(size_t n) {
  bytes -= n;
  size_t drop = 0;
  while (n > 0 && n >= bufs_[drop].len) n -= bufs_[drop++].len;
  bufs_.erase(bufs_.begin(), bufs_.begin() + static_cast<ptrdiff_t>(drop));
  if (n > 0) {
    bufs_.front().base += n;
    bufs_.front().len -= n;
  }
}

void ResponseBatch::Reset() {
  if (small_.capacity() > kMaxKeptBatchBuffer) std::string().swap(small_);
  small_.clear();
  large_.clear();
  pieces_.clear();
  bufs_.clear();
  bytes = 0;
  conn = nullptr;
}

}  // namespace distkv::net
