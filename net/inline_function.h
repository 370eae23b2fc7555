// InlineFunction: a move-only callable that keeps its target inside the
// object when it fits in Capacity bytes, and on the heap only when not.
//
// Why not std::function: libstdc++ keeps a callable in place only up to 16
// bytes, so a lambda that captures a Responder and a pointer or two already
// costs an allocation and a free, and a forwarded request nests three such
// callbacks (the node's, the forwarder's, the pool's) — three allocations a
// request. std::function must also be copyable, which forbids moving a
// unique_ptr into a capture. Callers pick a Capacity that fits the callbacks
// they nest, and can check a lambda with kFitsInline<decltype(fn)>.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace distkv::net {

template <typename Signature, size_t Capacity>
class InlineFunction;

template <typename R, typename... Args, size_t Capacity>
class InlineFunction<R(Args...), Capacity> {
  static_assert(Capacity >= sizeof(void*), "room for at least a pointer to a heap target");

 public:
  // Whether a callable of type F is kept in place (no allocation).
  template <typename F>
  static constexpr bool kFitsInline =
      sizeof(F) <= Capacity &&
      alignof(F) <= alignof(void*) && std::is_nothrow_move_constructible_v<F>;

  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}  // NOLINT: as std::function
  template <typename F, typename D = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<D, InlineFunction> &&
                                        std::is_invocable_r_v<R, D&, Args...>>>
  InlineFunction(F&& f) {  // NOLINT: implicit, as std::function
    if constexpr (kFitsInline<D>) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInPlace<D>;
    } else {
      ::new (static_cast<void*>(storage_)) D*(new D(std::forward<F>(f)));
      ops_ = &kOnHeap<D>;
    }
  }
  InlineFunction(InlineFunction&& other) noexcept { Take(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      Reset();
      Take(other);
    }
    return *this;
  }
  InlineFunction& operator=(std::nullptr_t) {
    Reset();
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { Reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(storage_, std::forward<Args>(args)...); }

 private:
  struct Ops {
    R (*call)(void* target, Args&&... args);
    void (*relocate)(void* from, void* to);  // move-constructs at to, destroys at from
    void (*destroy)(void* target);
  };
  template <typename F>
  static constexpr Ops kInPlace = {
      [](void* t, Args&&... args) -> R {
        return (*std::launder(static_cast<F*>(t)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) {
        F* f = std::launder(static_cast<F*>(from));
        ::new (to) F(std::move(*f));
        f->~F();
      },
      [](void* t) { std::launder(static_cast<F*>(t))->~F(); }};
  template <typename F>
  static constexpr Ops kOnHeap = {
      [](void* t, Args&&... args) -> R {
        return (**std::launder(static_cast<F**>(t)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) { ::new (to) F*(*std::launder(static_cast<F**>(from))); },
      [](void* t) { delete *std::launder(static_cast<F**>(t)); }};

  void Take(InlineFunction& other) noexcept {
    if (other.ops_ == nullptr) return;
    other.ops_->relocate(other.storage_, storage_);
    ops_ = other.ops_;
    other.ops_ = nullptr;
  }
  void Reset() {
    if (ops_ == nullptr) return;
    const Ops* ops = ops_;
    ops_ = nullptr;
    ops->destroy(storage_);
  }

  alignas(void*) unsigned char storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace distkv::net
