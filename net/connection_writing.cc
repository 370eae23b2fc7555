// ServerConnection, writing: the ready prefix of the response queue leaves
// in one ResponseBatch. A batch is first offered to the socket with
// uv_try_write; what the socket does not take goes out with uv_write, and
// its completion resumes reading when back-pressure has eased.
#include "net/server_connection.h"

namespace distkv::net {

namespace {
constexpr size_t kMaxFreeBatches = 4;
}  // namespace

void ServerConnection::FlushAndResume() {
  if (closing_) return;
  Flush();
  MaybeResume();
  MaybeFinish();
  ArmTimer();
}

void ServerConnection::Flush() {
  if (closing_ || lingering_) return;
  bool close_after = false;
  ResponseBatch* batch = CollectReady(&close_after);
  if (batch != nullptr) Write(batch);
  if (close_after && !closing_) {  // later requests are not answered: the client must retry them
    stop_parsing_ = true;
    pending_input_.clear();
    StopReading();
    DropSlots();
  }
}

ResponseBatch* ServerConnection::CollectReady(bool* close_after) {
  ResponseBatch* batch = nullptr;
  while (!slots_.empty()) {
    Responder::Slot* slot = slots_.front().get();
    if (!slot->out.empty() || !slot->body.empty()) {
      if (batch == nullptr) {
        if (free_batches_.empty()) {
          batch = new ResponseBatch;
        } else {
          batch = free_batches_.back();
          free_batches_.pop_back();
        }
      }
      batch->Add(&slot->out);
      batch->Add(&slot->body);
    }
    if (slot->state != Responder::Slot::State::kDone) break;  // unanswered or still streaming
    *close_after = slot->close_after;
    slot->conn = nullptr;
    std::shared_ptr<Responder::Slot> done = std::move(slots_.front());
    slots_.pop_front();
    RecycleSlot(std::move(done));
    if (*close_after) break;
  }
  return batch;
}

void ServerConnection::Write(ResponseBatch* batch) {
  if (tls_ != nullptr) {
    TlsWrite(batch);
    return;
  }
  batch->Seal();
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  const auto nbufs = batch->buf_count();
  if (writes_in_flight_ == 0) {
    // Most batches fit in the socket buffer: write them at once. Besides
    // saving a loop turn, this skips the write request whose completion
    // makes libuv re-register the socket with epoll.
    const int n = uv_try_write(stream, batch->buf_data(), nbufs);
    if (n < 0 && n != UV_EAGAIN) {
      unsent_bytes_ -= batch->bytes;
      RecycleBatch(batch);
      Close();
      return;
    }
    if (n > 0) {
      const auto written = static_cast<size_t>(n);
      unsent_bytes_ -= written;
      last_activity_ = uv_now(ctx_->loop());
      if (written == batch->bytes) {
        RecycleBatch(batch);
        return;
      }
      batch->Consume(written);
    }
  }
  batch->conn = this;
  batch->req.data = batch;
  const int r = uv_write(&batch->req, stream, batch->buf_data(), batch->buf_count(), OnWrite);
  if (r != 0) {
    unsent_bytes_ -= batch->bytes;
    RecycleBatch(batch);
    Close();
    return;
  }
  ++writes_in_flight_;
}

void ServerConnection::RecycleBatch(ResponseBatch* batch) {
  batch->Reset();
  if (free_batches_.size() < kMaxFreeBatches)
    free_batches_.push_back(batch);
  else
    delete batch;
}

void ServerConnection::OnWrite(uv_write_t* req, int status) {
  auto* batch = static_cast<ResponseBatch*>(req->data);
  ServerConnection* c = batch->conn;
  c->unsent_bytes_ -= batch->bytes;
  --c->writes_in_flight_;
  c->RecycleBatch(batch);
  c->AfterWrite(status);
}

void ServerConnection::AfterWrite(int status) {
  if (closing_) return;
  if (status < 0) {
    Close();
    return;
  }
  last_activity_ = uv_now(ctx_->loop());
  MaybeResume();
  MaybeFinish();
  ArmTimer();
}

}  // namespace distkv::net
