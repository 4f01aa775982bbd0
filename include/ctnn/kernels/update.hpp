// ctnn/kernels/update.hpp: optimizer updates, each one pass over the contiguous parameter arena.
//
// Fused: the whole Adam (or momentum SGD) step for every parameter of the model is one loop that
// reads w, g, m, v once and writes w, m, v once; there is no per-layer or per-tensor loop.
#pragma once
#include <cstddef>

#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/highway.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Calls body(tag, i) for every vector of [0, n) (a one-lane tag for the tail), split across
// threads in blocks of 1024 elements. An element's arithmetic does not depend on the split, so
// the result is the same at any thread count.
template <class T, class Body>
HWY_INLINE void for_each_vector(std::size_t n, const Body& body) {
  constexpr std::size_t kBlock = 1024;
  parallel_for_range(
      (n + kBlock - 1) / kBlock,
      [&](std::size_t b0, std::size_t b1) {
        const hn::ScalableTag<T> d;
        const std::size_t L = hn::Lanes(d);
        const std::size_t end = b1 * kBlock < n ? b1 * kBlock : n;
        std::size_t i = b0 * kBlock;
        for (; i + L <= end; i += L) body(d, i);
        for (; i < end; ++i) body(hn::CappedTag<T, 1>(), i);
      },
      n >= kParallelWork);
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= step * m / (sqrt(v) + eps)
// where the caller folds the bias corrections into step = lr * sqrt(1 - b2^t) / (1 - b1^t)
// (Keras's formulation).
template <class T>
void adam_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT m,
                 T* HWY_RESTRICT v, T step, T b1, T b2, T eps) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto mv = hn::MulAdd(hn::Set(d, b1), hn::LoadU(d, m + i), hn::Mul(hn::Set(d, T(1) - b1), gv));
    const auto vv = hn::MulAdd(hn::Set(d, b2), hn::LoadU(d, v + i),
                               hn::Mul(hn::Set(d, T(1) - b2), hn::Mul(gv, gv)));
    const auto upd = hn::Div(mv, hn::Add(hn::Sqrt(vv), hn::Set(d, eps)));
    hn::StoreU(mv, d, m + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(hn::NegMulAdd(hn::Set(d, step), upd, hn::LoadU(d, w + i)), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// AdamW (Keras: decoupled weight decay before the Adam step): w -= w * decay with
// decay = lr * weight_decay, then the Adam step of adam_update on the decayed w.
template <class T>
void adamw_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT m,
                  T* HWY_RESTRICT v, T step, T b1, T b2, T eps, T decay) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto mv = hn::MulAdd(hn::Set(d, b1), hn::LoadU(d, m + i), hn::Mul(hn::Set(d, T(1) - b1), gv));
    const auto vv = hn::MulAdd(hn::Set(d, b2), hn::LoadU(d, v + i),
                               hn::Mul(hn::Set(d, T(1) - b2), hn::Mul(gv, gv)));
    const auto upd = hn::Div(mv, hn::Add(hn::Sqrt(vv), hn::Set(d, eps)));
    const auto wv = hn::LoadU(d, w + i);
    const auto decayed = hn::NegMulAdd(wv, hn::Set(d, decay), wv);
    hn::StoreU(mv, d, m + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(hn::NegMulAdd(hn::Set(d, step), upd, decayed), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// Keras RMSprop: v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g and
// den = v - a^2 + eps, else den = v + eps; inc = lr g / sqrt(den); with momentum
// mo = momentum mo + inc and w -= mo, else w -= inc. a and mo may be null when unused.
template <class T>
void rmsprop_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT v,
                    T* HWY_RESTRICT mo, T* HWY_RESTRICT a, T lr, T rho, T momentum, T eps) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto r = hn::Set(d, rho), one_r = hn::Set(d, T(1) - rho);
    const auto vv = hn::MulAdd(r, hn::LoadU(d, v + i), hn::Mul(one_r, hn::Mul(gv, gv)));
    hn::StoreU(vv, d, v + i);
    auto den = hn::Add(vv, hn::Set(d, eps));
    if (a != nullptr) {
      const auto av = hn::MulAdd(r, hn::LoadU(d, a + i), hn::Mul(one_r, gv));
      hn::StoreU(av, d, a + i);
      den = hn::Add(hn::NegMulAdd(av, av, vv), hn::Set(d, eps));
    }
    auto inc = hn::Div(hn::Mul(hn::Set(d, lr), gv), hn::Sqrt(den));
    if (mo != nullptr) {
      inc = hn::MulAdd(hn::Set(d, momentum), hn::LoadU(d, mo + i), inc);
      hn::StoreU(inc, d, mo + i);
    }
    hn::StoreU(hn::Sub(hn::LoadU(d, w + i), inc), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// Keras SGD: vel = momentum * vel - lr * g;  w += vel (Nesterov: w += momentum * vel - lr * g).
// With momentum 0, vel may be null and this is w -= lr * g.
template <class T>
void sgd_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT vel,
                T lr, T momentum, bool nesterov) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto wv = hn::LoadU(d, w + i);
    const auto lr_g = hn::Mul(hn::Set(d, lr), gv);
    if (vel == nullptr) {
      hn::StoreU(hn::Sub(wv, lr_g), d, w + i);
      return;
    }
    const auto mom = hn::Set(d, momentum);
    const auto vv = hn::MulSub(mom, hn::LoadU(d, vel + i), lr_g);
    hn::StoreU(vv, d, vel + i);
    hn::StoreU(nesterov ? hn::Add(wv, hn::MulSub(mom, vv, lr_g)) : hn::Add(wv, vv), d, w + i);
  };
  for_each_vector<T>(n, body);
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::adam_update;
using ctnn::HWY_NAMESPACE::adamw_update;
using ctnn::HWY_NAMESPACE::rmsprop_update;
using ctnn::HWY_NAMESPACE::sgd_update;
}  // namespace ctnn::kernels
