// ctnn/kernels/batch_norm.hpp: the per-channel passes of batch normalization.
//
// Every kernel works on `rows` rows of C channels (x[r * C + c], channels last, as one sample of
// an H x W x C image or a batch of feature vectors is laid out) and is vectorized along the
// channels: a vector holds L neighbouring channels, so a channel's constants (mean, inverse
// standard deviation, gamma, beta) are loaded once per block and stay in registers for the whole
// row loop. Rows are visited in order, so a per-channel sum has one fixed order. The body of each
// kernel is written once as a generic lambda over a Highway tag: full vectors use the native tag,
// the channel tail a one-lane tag (no scalar copy of the math to drift out of sync).
#pragma once
#include <cstddef>

#include "ctnn/core/epilogue.hpp"
#include "ctnn/kernels/highway.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Calls f(d, c) for each block of channels starting at c: full vectors, then the tail one lane at
// a time.
template <class T, class F>
HWY_INLINE void for_channel_blocks(std::size_t channels, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = channels - channels % L;  // (c + L <= channels) trips a g++ 12 warning
  std::size_t c = 0;
  for (; c < full; c += L) f(d, c);
  const hn::CappedTag<T, 1> d1;
  for (; c < channels; ++c) f(d1, c);
}

// out[c] = sum over rows r of (x[r][c] - mean[c])^2, rows in order (the variance's numerator, the
// second of two passes: subtracting the mean first keeps the sum accurate when |mean| >> std).
template <class T>
void bn_squared_deviations(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                           const T* HWY_RESTRICT mean, T* HWY_RESTRICT out) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    auto s = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) {
      const auto v = hn::Sub(hn::LoadU(d, x + r * channels + c), m);
      s = hn::MulAdd(v, v, s);
    }
    hn::StoreU(s, d, out + c);
  });
}

// The activation a ReLU (or ReLU6) fused into the normalization applies as it stores, and the
// gradient mask its backward applies from that stored output y, as the ReLU layers' own passes
// do (kernels/elementwise.hpp, activations.hpp): ReLU passes dy where y > 0 (and where y is NaN),
// ReLU6 where 0 < y < 6.
// (NaN passes, as in the ReLU layers and the GEMM epilogue: no Max, which drops NaN on x86.)
template <Epilogue Act, class D, class V>
HWY_INLINE V bn_activate(D d, V v) {
  using T = hn::TFromD<D>;
  if constexpr (Act == Epilogue::relu) {
    return hn::IfThenZeroElse(v <= hn::Zero(d), v);
  } else if constexpr (Act == Epilogue::relu6) {
    const auto six = hn::Set(d, T(6));
    return hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < hn::Zero(d), v));
  } else {
    return v;
  }
}
template <Epilogue Act, class D, class V, class T>
HWY_INLINE V bn_masked(D d, V g, const T* HWY_RESTRICT y, std::size_t i) {
  if constexpr (Act == Epilogue::none) {
    (void)y, (void)i;
    return g;
  } else {
    const auto yv = hn::LoadU(d, y + i);
    if constexpr (Act == Epilogue::relu) return hn::IfThenZeroElse(yv <= hn::Zero(d), g);
    else return hn::IfThenZeroElse(hn::Or(yv <= hn::Zero(d), yv >= hn::Set(d, hn::TFromD<D>(6))), g);
  }
}

// y[r][c] = act((x[r][c] - mean[c]) * (inv_std[c] * gamma[c]) + beta[c]), act a fused ReLU or
// ReLU6 or none. y may be x.
template <Epilogue Act = Epilogue::none, class T>
void bn_normalize(std::size_t rows, std::size_t channels, const T* x, const T* HWY_RESTRICT mean,
                  const T* HWY_RESTRICT inv_std, const T* HWY_RESTRICT gamma,
                  const T* HWY_RESTRICT beta, T* y) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    const auto scale = hn::Mul(hn::LoadU(d, inv_std + c), hn::LoadU(d, gamma + c));
    const auto b = hn::LoadU(d, beta + c);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = r * channels + c;
      hn::StoreU(bn_activate<Act>(d, hn::MulAdd(hn::Sub(hn::LoadU(d, x + i), m), scale, b)), d,
                 y + i);
    }
  });
}

// The two sums of the backward pass, rows in order:
//   sum_dy[c] = sum_r dy[r][c]            (beta's gradient)
//   sum_dy_xhat[c] = sum_r dy[r][c] * (x[r][c] - mean[c]) * inv_std[c]   (gamma's gradient)
// (the product with inv_std is taken once, after the sum). With a fused activation Act, dy is the
// gradient of the activation's output y and is masked by it first (bn_masked).
template <Epilogue Act = Epilogue::none, class T>
void bn_backward_sums(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                      const T* HWY_RESTRICT y, const T* HWY_RESTRICT dy, const T* HWY_RESTRICT mean,
                      const T* HWY_RESTRICT inv_std, T* HWY_RESTRICT sum_dy,
                      T* HWY_RESTRICT sum_dy_xhat) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    auto s = hn::Zero(d), sx = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = r * channels + c;
      const auto g = bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i);
      s = hn::Add(s, g);
      sx = hn::MulAdd(g, hn::Sub(hn::LoadU(d, x + i), m), sx);
    }
    hn::StoreU(s, d, sum_dy + c);
    hn::StoreU(hn::Mul(sx, hn::LoadU(d, inv_std + c)), d, sum_dy_xhat + c);
  });
}

// The input gradient. With batch statistics (BatchStats), where the mean and variance are
// functions of every x of the batch (count values per channel):
//   dx = gamma * inv_std * (dy - (sum_dy + x_hat * sum_dy_xhat) / count),
//   x_hat = (x - mean) * inv_std;
// with fixed statistics (inference, the moving averages): dx = gamma * inv_std * dy, and
// sum_dy, sum_dy_xhat and count are not read. With a fused activation Act, dy is masked by y
// first, as in bn_backward_sums.
template <bool BatchStats, Epilogue Act = Epilogue::none, class T>
void bn_backward_dx(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                    const T* HWY_RESTRICT y, const T* HWY_RESTRICT dy, const T* HWY_RESTRICT mean,
                    const T* HWY_RESTRICT inv_std, const T* HWY_RESTRICT gamma,
                    const T* HWY_RESTRICT sum_dy, const T* HWY_RESTRICT sum_dy_xhat, T count,
                    T* HWY_RESTRICT dx) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto is = hn::LoadU(d, inv_std + c);
    const auto scale = hn::Mul(is, hn::LoadU(d, gamma + c));
    if constexpr (BatchStats) {
      const auto m = hn::LoadU(d, mean + c);
      const auto inv_count = hn::Set(d, T(1) / count);
      const auto a = hn::Mul(hn::LoadU(d, sum_dy + c), inv_count);       // mean of dy
      const auto k = hn::Mul(hn::LoadU(d, sum_dy_xhat + c), inv_count);  // mean of dy * x_hat
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t i = r * channels + c;
        const auto xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + i), m), is);
        // dy - a - x_hat * k
        const auto g = bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i);
        const auto inner = hn::NegMulAdd(xhat, k, hn::Sub(g, a));
        hn::StoreU(hn::Mul(scale, inner), d, dx + i);
      }
    } else {
      (void)x, (void)mean, (void)sum_dy, (void)sum_dy_xhat, (void)count;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t i = r * channels + c;
        hn::StoreU(hn::Mul(scale, bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i)), d, dx + i);
      }
    }
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::bn_backward_dx;
using ctnn::HWY_NAMESPACE::bn_backward_sums;
using ctnn::HWY_NAMESPACE::bn_normalize;
using ctnn::HWY_NAMESPACE::bn_squared_deviations;
}  // namespace ctnn::kernels
