// ctnn/kernels/elementwise.hpp: activations, forward and backward, over contiguous arrays.
//
// Each op is written once as a generic lambda over a Highway tag; full vectors use the native
// tag and the tail a one-lane tag, so there is no scalar copy of the math to drift out of sync.
// Backward ops take the forward output (y) where the derivative is cheapest from it.
#pragma once
#include <cstddef>

#include "ctnn/core/epilogue.hpp"
#include "ctnn/kernels/highway.hpp"
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = f(d, in[i]) for i < n.
template <class T, class F>
HWY_INLINE void map1(std::size_t n, const T* HWY_RESTRICT in, T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (i + L <= n) trips a false g++ 12 warning when inlined
  std::size_t i = 0;
  for (; i < full; i += L) hn::StoreU(f(d, hn::LoadU(d, in + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) hn::StoreU(f(d1, hn::LoadU(d1, in + i)), d1, out + i);
}

// out[i] = f(d, a[i], b[i]) for i < n.
template <class T, class F>
HWY_INLINE void map2(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                     T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L)
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) hn::StoreU(f(d1, hn::LoadU(d1, a + i), hn::LoadU(d1, b + i)), d1, out + i);
}

// y = 0 where x <= 0, else x: NaN stays NaN (NaN <= 0 is false), as in PyTorch and Keras.
// Not Max(x, 0): on x86 it returns the second operand when either is NaN, turning NaN into 0.
// The compare + blend costs one instruction more than Max per vector.
template <class T>
void relu_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return hn::IfThenZeroElse(v <= hn::Zero(d), v); });
}
// dx = 0 where y <= 0, else dy: where y is NaN the gradient passes, as PyTorch's
// threshold_backward does.
template <class T>
void relu_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx,
       [](auto d, auto yv, auto g) { return hn::IfThenZeroElse(yv <= hn::Zero(d), g); });
}

template <class T>
void leaky_relu_forward(std::size_t n, const T* x, T* y, T alpha) {
  map1(n, x, y, [alpha](auto d, auto v) {
    return hn::IfThenElse(v > hn::Zero(d), v, hn::Mul(v, hn::Set(d, alpha)));
  });
}
// dx = dy where x > 0, else alpha * dy.
template <class T>
void leaky_relu_backward(std::size_t n, const T* x, const T* dy, T* dx, T alpha) {
  map2(n, x, dy, dx, [alpha](auto d, auto xv, auto g) {
    return hn::IfThenElse(xv > hn::Zero(d), g, hn::Mul(g, hn::Set(d, alpha)));
  });
}

// sigmoid(x) from e = exp(-|x|) in [0, 1]: 1 / (1 + e) for x >= 0, e / (1 + e) below. Not
// 1 / (1 + exp(-x)): Highway's Exp is valid up to +104 only (float; sigmoid(-200) came out 1), and
// returns 0 for NaN (sigmoid(NaN) came out 1), so NaN is selected back in.
template <class D, class V>
HWY_INLINE V sigmoid_of(D d, V v) {
  using T = hn::TFromD<D>;
  const auto e = hn::Exp(d, hn::Neg(hn::Abs(v)));
  const auto r = hn::Div(hn::Set(d, T(1)), hn::Add(hn::Set(d, T(1)), e));
  return hn::IfThenElse(hn::IsNaN(v), v, hn::IfThenElse(v >= hn::Zero(d), r, hn::Mul(e, r)));
}

// y = 1 / (1 + exp(-x)).
template <class T>
void sigmoid_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return sigmoid_of(d, v); });
}
// dx = dy * y * (1 - y).
template <class T>
void sigmoid_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx, [](auto d, auto yv, auto g) {
    return hn::Mul(g, hn::Mul(yv, hn::Sub(hn::Set(d, T(1)), yv)));
  });
}

template <class T>
void tanh_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return hn::Tanh(d, v); });
}
// dx = dy * (1 - y^2).
template <class T>
void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx, [](auto d, auto yv, auto g) {
    return hn::Mul(g, hn::NegMulAdd(yv, yv, hn::Set(d, T(1))));
  });
}

// The index of the first value of x[0..n) that is NaN or infinite, or n if all are finite: one
// compare per vector while all are finite (the training loop scans the parameter arena with it).
template <class T>
std::size_t first_non_finite(std::size_t n, const T* HWY_RESTRICT x) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L)
    if (!hn::AllTrue(d, hn::IsFinite(hn::LoadU(d, x + i)))) break;
  for (; i < n; ++i)
    if (!(x[i] - x[i] == T(0))) return i;  // inf - inf and NaN - NaN are NaN
  return n;
}

// out[j] = sum over rows r of x[r * cols + j], rows summed in order (the bias gradient).
template <class T>
void sum_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = cols - cols % L;  // (j + L <= cols) trips a false g++ 12 warning here
  std::size_t j = 0;
  for (; j < full; j += L) {
    auto s = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) s = hn::Add(s, hn::LoadU(d, x + r * cols + j));
    hn::StoreU(s, d, out + j);
  }
  for (; j < cols; ++j) {
    T s = 0;
    for (std::size_t r = 0; r < rows; ++r) s += x[r * cols + j];
    out[j] = s;
  }
}

// y = act(xs[0] + xs[1] + ... + xs[k-1]), summed left to right, act a fused ReLU/ReLU6 (NaN
// passes, as in relu_forward) or none. y may be xs[0] or xs[1] (each vector is read before it
// is written).
template <class T>
void add_activate(std::size_t n, const T* const* xs, std::size_t k, T* y, Epilogue act) {
  const auto run = [&](auto d, std::size_t i) {
    using D = decltype(d);
    auto v = hn::Add(hn::LoadU(d, xs[0] + i), hn::LoadU(d, xs[1] + i));
    for (std::size_t j = 2; j < k; ++j) v = hn::Add(v, hn::LoadU(d, xs[j] + i));
    const auto zero = hn::Zero(d);
    if (act == Epilogue::relu) {
      v = hn::IfThenZeroElse(v <= zero, v);
    } else if (act == Epilogue::relu6) {
      const auto six = hn::Set(d, hn::TFromD<D>(6));
      v = hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < zero, v));
    }
    hn::StoreU(v, d, y + i);
  };
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L) run(d, i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) run(d1, i);
}

// The adjoint of im2col (col2im) for `rows` rows of patch gradients, each `patch` long: for every
// (tap, pixel) that taps(r, f) reports for row r (it calls f(tap, pixel)), and every group g,
//   dx[pixel * channels + g * gc + c] += dpatches[r * patch + g * group_patch + tap * gc + c]
// for c < gc = channels / groups, rows in order, taps in the order reported. Vectorized along the
// channels (a plain loop here was scalar: the compiler cannot rule out that dx and dpatches
// overlap, and 16 scalar read-modify-writes a tap cost more than the GEMM that made the rows).
template <class T, class Taps>
void col2im_add(std::size_t rows, std::size_t patch, std::size_t channels, std::size_t groups,
                std::size_t group_patch, const T* HWY_RESTRICT dpatches, Taps taps,
                T* HWY_RESTRICT dx) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t gc = channels / groups;
  const std::size_t full = gc - gc % L;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = dpatches + r * patch;
    taps(r, [&](std::size_t tap, std::size_t pixel) {
      for (std::size_t g = 0; g < groups; ++g) {
        const T* src = row + g * group_patch + tap * gc;
        T* dst = dx + pixel * channels + g * gc;
        std::size_t c = 0;
        for (; c < full; c += L)
          hn::StoreU(hn::Add(hn::LoadU(d, dst + c), hn::LoadU(d, src + c)), d, dst + c);
        for (; c < gc; ++c) dst[c] += src[c];
      }
    });
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::add_activate;
using ctnn::HWY_NAMESPACE::col2im_add;
using ctnn::HWY_NAMESPACE::first_non_finite;
using ctnn::HWY_NAMESPACE::leaky_relu_backward;
using ctnn::HWY_NAMESPACE::leaky_relu_forward;
using ctnn::HWY_NAMESPACE::relu_backward;
using ctnn::HWY_NAMESPACE::relu_forward;
using ctnn::HWY_NAMESPACE::sigmoid_backward;
using ctnn::HWY_NAMESPACE::sigmoid_forward;
using ctnn::HWY_NAMESPACE::sum_rows;
using ctnn::HWY_NAMESPACE::tanh_backward;
using ctnn::HWY_NAMESPACE::tanh_forward;
}  // namespace ctnn::kernels
