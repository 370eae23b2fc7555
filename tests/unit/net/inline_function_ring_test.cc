// Tests of the two small containers of the outbound client's hot path:
// InlineFunction (net/inline_function.h) and RingQueue (net/ring_queue.h).
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <string>

#include "net/inline_function.h"
#include "net/ring_queue.h"

namespace distkv::net {

TEST_CASE("InlineFunction keeps a small capture in place and a large one on the heap") {
  using Fn = InlineFunction<int(int), 32>;
  int base = 10;
  auto small = [&base](int x) { return base + x; };
  std::array<int, 16> big{};
  big[15] = 5;
  auto large = [big](int x) { return big[15] + x; };
  static_assert(Fn::kFitsInline<decltype(small)>);
  static_assert(!Fn::kFitsInline<decltype(large)>);
  Fn a = small;
  Fn b = large;
  CHECK(a(1) == 11);
  CHECK(b(1) == 6);
  // Moving hands the target over, in place or on the heap alike.
  Fn c = std::move(a);
  Fn d = std::move(b);
  CHECK_FALSE(a);
  CHECK_FALSE(b);
  CHECK(c(2) == 12);
  CHECK(d(2) == 7);
}

TEST_CASE("InlineFunction holds move-only captures and destroys each exactly once") {
  auto token = std::make_shared<int>(42);
  {
    using Fn = InlineFunction<int(), 24>;
    auto owned = std::make_unique<int>(7);
    Fn f = [owned = std::move(owned), token] { return *owned + *token; };
    CHECK(token.use_count() == 2);
    Fn g = std::move(f);
    CHECK(token.use_count() == 2);  // moved, not copied
    CHECK(g() == 49);
    Fn h;
    h = std::move(g);
    CHECK(h() == 49);
    h = nullptr;
    CHECK(token.use_count() == 1);
    // On the heap too.
    std::array<char, 64> pad{};
    Fn big = [token, pad] { return *token + pad[0]; };
    CHECK(token.use_count() == 2);
    Fn moved = std::move(big);
    CHECK(token.use_count() == 2);
    CHECK(moved() == 42);
  }
  CHECK(token.use_count() == 1);
}

TEST_CASE("RingQueue stays in order across wrap-around and growth, and resets popped slots") {
  RingQueue<std::string> q;
  int pushed = 0;
  int popped = 0;
  auto push = [&](int n) {
    for (int i = 0; i < n; ++i) q.emplace_back() = "entry-" + std::to_string(pushed++);
  };
  auto pop = [&](int n) {
    for (int i = 0; i < n; ++i) {
      REQUIRE_FALSE(q.empty());
      CHECK(q.front() == "entry-" + std::to_string(popped++));
      q.pop_front();
    }
  };
  push(6);
  pop(5);   // the head is now in the middle of the 8 slots
  push(7);  // wraps around the end
  CHECK(q.size() == 8);
  push(9);  // grows twice while the entries wrap: order must survive the copy
  CHECK(q.size() == 17);
  for (size_t i = 0; i < q.size(); ++i) CHECK(q[i] == "entry-" + std::to_string(popped + i));
  pop(17);
  CHECK(q.empty());
  push(3);
  CHECK(q.back() == "entry-24");
  pop(3);
  // A reused slot starts empty: emplace_back gives a reset entry.
  CHECK(q.emplace_back().empty());
}

}  // namespace distkv::net
