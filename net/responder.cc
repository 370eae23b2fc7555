// Responder and ServerConnection's answers: how a handler's answer becomes
// the bytes of its response slot. A slot's head is written when the answer
// is given (its Connection header decided then, from the request and the
// server's state); the slot is flushed with the ready prefix of the queue.
#include <charconv>

#include "net/server_connection.h"

namespace distkv::net {

namespace {

constexpr size_t kSmallBody = 1024;  // bodies up to this travel in the head's buffer
constexpr size_t kMaxFreeSlots = 16;

bool ParseLength(std::string_view text, uint64_t* out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace

void Responder::Send(HttpResponse&& response) {
  if (slot_ && slot_->conn) slot_->conn->Answer(slot_.get(), std::move(response));
}

void Responder::BeginStream(HttpResponse&& head) {
  if (slot_ && slot_->conn) slot_->conn->BeginStream(slot_.get(), std::move(head));
}

void Responder::WriteChunk(std::string_view data) {
  if (slot_ && slot_->conn) slot_->conn->WriteChunk(slot_.get(), data);
}

void Responder::EndStream() {
  if (slot_ && slot_->conn) slot_->conn->EndStream(slot_.get());
}

size_t Responder::queued_bytes() const {
  return slot_ && slot_->conn ? slot_->conn->queued_bytes() : 0;
}

bool Responder::alive() const { return slot_ && slot_->conn; }

void Responder::OnClose(std::function<void()> fn) {
  if (slot_ && slot_->conn) slot_->on_close = std::move(fn);
}

std::shared_ptr<Responder::Slot> ServerConnection::NewSlot() {
  if (free_slots_.empty()) return std::make_shared<Responder::Slot>();
  std::shared_ptr<Responder::Slot> slot = std::move(free_slots_.back());
  free_slots_.pop_back();
  return slot;
}

void ServerConnection::RecycleSlot(std::shared_ptr<Responder::Slot>&& slot) {
  // Only a slot no Responder still holds can be reused.
  if (slot.use_count() != 1 || free_slots_.size() >= kMaxFreeSlots) return;
  Responder::Slot& s = *slot;
  s.conn = nullptr;
  s.state = Responder::Slot::State::kReceiving;
  s.head_request = s.http10 = s.chunked = s.close_after = false;
  s.keep_alive = true;
  s.out.clear();
  s.body.clear();
  s.staged = 0;
  s.on_close = nullptr;
  free_slots_.push_back(std::move(slot));
}

ConnectionHeader ServerConnection::DecideConnection(Responder::Slot* slot,
                                                    bool handler_asks_close) {
  if (handler_asks_close || !slot->keep_alive || slot->close_after) {
    slot->close_after = true;
    return ConnectionHeader::kClose;
  }
  // Shutting down: the last response says so; the connection closes once all
  // are written.
  if (ctx_ != nullptr && ctx_->draining() && slots_.back().get() == slot) {
    return ConnectionHeader::kClose;
  }
  return slot->http10 ? ConnectionHeader::kKeepAlive : ConnectionHeader::kNone;
}

void ServerConnection::FreeStaged(Responder::Slot* slot) {
  if (slot->staged == 0) return;
  const size_t n = slot->staged;
  slot->staged = 0;
  if (ctx_ != nullptr) ctx_->ReleaseStaged(n);
}

void ServerConnection::Answer(Responder::Slot* slot, HttpResponse&& response) {
  if (slot->state != Responder::Slot::State::kPending) return;
  const ConnectionHeader connection = DecideConnection(slot, ResponseAsksClose(response));
  BodyFraming framing = BodyFraming::kContentLength;
  uint64_t length = response.body.size();
  if (!StatusHasBody(response.status)) {
    framing = BodyFraming::kNone;
    response.body.clear();
  } else if (slot->head_request) {
    // A HEAD answer describes the GET body without sending it; a handler may
    // also leave the body out and state its length itself.
    if (response.body.empty()) {
      if (const std::string* declared = response.header("Content-Length")) {
        uint64_t n = 0;
        if (ParseLength(*declared, &n)) length = n;
      }
    }
    response.body.clear();
  }
  const size_t before = slot->out.size();
  AppendResponseHead(response, framing, length, connection, ctx_->extra_headers(), &slot->out);
  if (response.body.size() <= kSmallBody)
    slot->out.append(response.body);
  else
    slot->body = std::move(response.body);
  AddUnsent(slot->out.size() - before + slot->body.size());
  slot->state = Responder::Slot::State::kDone;
  --unanswered_;
  FreeStaged(slot);  // the request is done with its body
  OutputReady();
}

void ServerConnection::BeginStream(Responder::Slot* slot, HttpResponse&& head) {
  if (slot->state != Responder::Slot::State::kPending) return;
  ConnectionHeader connection = DecideConnection(slot, ResponseAsksClose(head));
  BodyFraming framing = BodyFraming::kChunked;
  slot->chunked = true;
  if (slot->http10) {  // no chunked coding in HTTP/1.0: the body ends with the connection
    framing = BodyFraming::kUntilClose;
    slot->chunked = false;
    slot->close_after = true;
    connection = ConnectionHeader::kClose;
  }
  const size_t before = slot->out.size();
  AppendResponseHead(head, framing, 0, connection, ctx_->extra_headers(), &slot->out);
  AddUnsent(slot->out.size() - before);
  slot->state = Responder::Slot::State::kStreaming;
  FreeStaged(slot);
  OutputReady();
}

void ServerConnection::WriteChunk(Responder::Slot* slot, std::string_view data) {
  if (slot->state != Responder::Slot::State::kStreaming || data.empty() || slot->head_request) {
    return;
  }
  const size_t before = slot->out.size();
  if (slot->chunked)
    AppendChunk(data, &slot->out);
  else
    slot->out.append(data);
  AddUnsent(slot->out.size() - before);
  OutputReady();
}

void ServerConnection::EndStream(Responder::Slot* slot) {
  if (slot->state != Responder::Slot::State::kStreaming) return;
  if (slot->chunked && !slot->head_request) {
    const size_t before = slot->out.size();
    AppendLastChunk(&slot->out);
    AddUnsent(slot->out.size() - before);
  }
  slot->state = Responder::Slot::State::kDone;
  --unanswered_;
  OutputReady();
}

void ServerConnection::OutputReady() {
  if (in_parse_) return;  // the parse's caller flushes when it ends
  if (ctx_ != nullptr)
    ctx_->ScheduleFlush(this);
  else
    FlushAndResume();
}

}  // namespace distkv::net
