// ctnn/kernels/activations.hpp: the MobileNet-era activations, forward and backward, over
// contiguous arrays: bounded ReLU (ReLU6), HardSwish, HardSigmoid, Swish (SiLU) and ELU.
//
// Written like kernels/elementwise.hpp (one generic lambda per op, run by map1/map2/map3 over
// full vectors and a one-lane tail). Two rules hold for every op here:
//   NaN in, NaN out: pieces are chosen with compare + select (a compare with NaN is false), never
//     with Min/Max, which on x86 return their second operand when either is NaN. Backward at a NaN
//     input does what PyTorch's does: dy for the piecewise-linear ones and ELU, 0 for HardSigmoid,
//     NaN for Swish.
//   +-infinity gives the limit, not inf * 0 = NaN: Highway's Exp is valid on [-FLT_MAX, 104]
//     (float) and returns 0 below -104 (and for NaN, hence the compare + select), so the ops that
//     need exp take it of -|x| only, or of a clamped argument.
// They run in the calling thread, as elementwise.hpp's do: the result cannot depend on the
// thread count.
#pragma once
#include <cstddef>

#include "ctnn/kernels/elementwise.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = f(d, a[i], b[i], c[i]) for i < n.
template <class T, class F>
HWY_INLINE void map3(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                     const T* HWY_RESTRICT c, T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (i + L <= n) trips a false g++ 12 warning when inlined
  std::size_t i = 0;
  for (; i < full; i += L)
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i)
    hn::StoreU(f(d1, hn::LoadU(d1, a + i), hn::LoadU(d1, b + i), hn::LoadU(d1, c + i)), d1, out + i);
}

// Keras's ReLU(max_value, negative_slope, threshold):
//   y = max_value                        where x >= max_value
//       negative_slope * (x - threshold) where x < threshold
//       x                                otherwise, NaN included.
// With no slope the lower piece is a selected 0 (0 * -inf would be NaN, and 0 * -1 is -0).
template <class T>
void bounded_relu_forward(std::size_t n, const T* x, T* y, T max_value, T slope, T threshold) {
  if (slope == T(0)) {
    map1(n, x, y, [=](auto d, auto v) {
      const auto m = hn::Set(d, max_value);
      return hn::IfThenZeroElse(v < hn::Set(d, threshold), hn::IfThenElse(v >= m, m, v));
    });
    return;
  }
  map1(n, x, y, [=](auto d, auto v) {
    const auto t = hn::Set(d, threshold), m = hn::Set(d, max_value);
    const auto below = hn::Mul(hn::Set(d, slope), hn::Sub(v, t));
    return hn::IfThenElse(v >= m, m, hn::IfThenElse(v < t, below, v));
  });
}
// dx = 0 where x >= max_value, negative_slope * dy where x <= threshold, else dy. At the kinks
// this is PyTorch's choice: ReLU6 (hardtanh_backward) gives 0 at both 0 and 6, ReLU 0 at 0,
// LeakyReLU the slope at 0. A NaN x passes dy, as theirs do.
template <class T>
void bounded_relu_backward(std::size_t n, const T* x, const T* dy, T* dx, T max_value, T slope,
                           T threshold) {
  map2(n, x, dy, dx, [=](auto d, auto v, auto g) {
    const auto low = hn::IfThenElse(v <= hn::Set(d, threshold), hn::Mul(g, hn::Set(d, slope)), g);
    return hn::IfThenZeroElse(v >= hn::Set(d, max_value), low);
  });
}

// HardSwish (Keras, PyTorch): y = x * relu6(x + 3) / 6, written by pieces: 0 where x <= -3, x
// where x >= 3, x * (x + 3) / 6 between. (x * relu6(x + 3) would make -inf * 0 = NaN.)
template <class T>
void hard_swish_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto three = hn::Set(d, T(3));
    const auto mid = hn::Mul(v, hn::Mul(hn::Add(v, three), hn::Set(d, T(1) / T(6))));
    return hn::IfThenZeroElse(v <= hn::Neg(three), hn::IfThenElse(v >= three, v, mid));
  });
}
// PyTorch's hardswish_backward: dx = 0 where x < -3, dy * (x / 3 + 0.5) where -3 <= x <= 3, else
// dy (so -0.5 dy at -3 and 1.5 dy at 3, the middle piece's slopes). A NaN x passes dy.
template <class T>
void hard_swish_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto three = hn::Set(d, T(3));
    // x / 3, not x * (1/3): PyTorch's rounding, so -1/2 and 3/2 exactly at the kinks.
    const auto mid = hn::Mul(g, hn::Add(hn::Div(v, three), hn::Set(d, T(0.5))));
    return hn::IfThenZeroElse(v < hn::Neg(three), hn::IfThenElse(v <= three, mid, g));
  });
}

// HardSigmoid as PyTorch and Keras 3 define it: y = relu6(x + 3) / 6, i.e. 0 where x <= -3, 1
// where x >= 3, x / 6 + 1/2 between. (Keras 2 used 0.2 x + 0.5 clipped to [0, 1]: not this.)
template <class T>
void hard_sigmoid_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto three = hn::Set(d, T(3));
    const auto mid = hn::MulAdd(v, hn::Set(d, T(1) / T(6)), hn::Set(d, T(0.5)));
    return hn::IfThenZeroElse(v <= hn::Neg(three),
                              hn::IfThenElse(v >= three, hn::Set(d, T(1)), mid));
  });
}
// PyTorch's hardsigmoid_backward: dx = dy / 6 where -3 < x < 3, else 0 (0 at both kinks, and 0
// at a NaN x, as PyTorch's: its `(x > -3 && x < 3) ? dy / 6 : 0` is false for NaN).
template <class T>
void hard_sigmoid_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto three = hn::Set(d, T(3));
    const auto inside = hn::And(v > hn::Neg(three), v < three);
    return hn::IfThenElseZero(inside, hn::Mul(g, hn::Set(d, T(1) / T(6))));
  });
}

// Below this, sigmoid(x) is 0 in float and double alike (exp(-1000) underflows), so clamping
// x there changes no finite result and turns -inf * 0 into -1000 * 0.
template <class T>
inline constexpr T kSwishFloor = T(-1000);

// Swish / SiLU: y = x * sigmoid(x); swish(-inf) = 0, swish(inf) = inf, swish(NaN) = NaN.
template <class T>
void swish_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto lo = hn::Set(d, kSwishFloor<T>);
    const auto c = hn::IfThenElse(v < lo, lo, v);  // a compare: NaN stays NaN
    return hn::Mul(c, sigmoid_of(d, c));
  });
}
// dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x), recomputed (an exp is cheaper than keeping s
// from forward). x is clamped to [-1000, 1000] where the derivative is exactly 0 and 1 (in float
// and double), so +-inf gives 0 and dy, not inf * 0. A NaN x gives NaN (no kink to choose at).
template <class T>
void swish_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto lo = hn::Set(d, kSwishFloor<T>), hi = hn::Neg(lo);
    const auto c = hn::IfThenElse(v < lo, lo, hn::IfThenElse(v > hi, hi, v));
    const auto s = sigmoid_of(d, c);
    const auto one = hn::Set(d, T(1));
    return hn::Mul(g, hn::Mul(s, hn::MulAdd(c, hn::Sub(one, s), one)));
  });
}

// ELU (Keras, PyTorch): y = x where x > 0, alpha * (exp(x) - 1) elsewhere, with Expm1 of
// min(x, 0) (its valid range ends at +104; the value is unused where x > 0). ELU(-inf) = -alpha
// (Expm1 returns -1 below -104); ELU(NaN) = NaN (NaN > 0 is false, Expm1(NaN) is NaN, and the
// product with alpha keeps it: checked by the tests).
template <class T>
void elu_forward(std::size_t n, const T* x, T* y, T alpha) {
  map1(n, x, y, [alpha](auto d, auto v) {
    const auto z = hn::Zero(d);
    const auto neg = hn::IfThenElse(v > z, z, v);  // min(x, 0), keeping NaN
    return hn::IfThenElse(v > z, v, hn::Mul(hn::Set(d, alpha), hn::Expm1(d, neg)));
  });
}
// PyTorch's elu_backward: dx = dy * alpha * exp(x) = dy * (y + alpha) where x <= 0 (alpha dy at
// 0, the left piece's slope), else dy (also for a NaN x).
template <class T>
void elu_backward(std::size_t n, const T* x, const T* y, const T* dy, T* dx, T alpha) {
  map3(n, x, y, dy, dx, [alpha](auto d, auto v, auto yv, auto g) {
    return hn::IfThenElse(v <= hn::Zero(d), hn::Mul(g, hn::Add(yv, hn::Set(d, alpha))), g);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::bounded_relu_backward;
using ctnn::HWY_NAMESPACE::bounded_relu_forward;
using ctnn::HWY_NAMESPACE::elu_backward;
using ctnn::HWY_NAMESPACE::elu_forward;
using ctnn::HWY_NAMESPACE::hard_sigmoid_backward;
using ctnn::HWY_NAMESPACE::hard_sigmoid_forward;
using ctnn::HWY_NAMESPACE::hard_swish_backward;
using ctnn::HWY_NAMESPACE::hard_swish_forward;
using ctnn::HWY_NAMESPACE::swish_backward;
using ctnn::HWY_NAMESPACE::swish_forward;
}  // namespace ctnn::kernels
