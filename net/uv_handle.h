// CloseAndDelete: the one way a heap-allocated libuv handle is closed and
// freed.
//
// libuv may still touch a handle until its close callback has run, so the
// memory of a closing handle is freed in that callback, never before, and
// the owner must not use the handle once it has asked for the close. An
// owner that must learn when the handle is gone (to finish a shutdown) names
// a function that is called, after the delete, with the handle's data
// pointer; an owner that goes away first sets data to nullptr.
//
// Handles embedded in an object (a connection's socket and timer) are not
// deleted one by one: the object counts its open handles and frees itself
// when the last close callback has run (ServerConnection, OutboundConnection).
#pragma once

#include <uv.h>

namespace distkv::net {

// The default "nothing to learn". (Not a null default tested with `if
// constexpr`: under -fsanitize=undefined g++ 12 does not treat a function
// pointer's comparison with nullptr as a constant expression.)
inline void IgnoreClosed(void*) {}

template <typename Handle, void (*OnClosed)(void* data) = IgnoreClosed>
void CloseAndDelete(Handle* handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) {
    void* data = h->data;
    delete reinterpret_cast<Handle*>(h);
    OnClosed(data);
  });
}

}  // namespace distkv::net
