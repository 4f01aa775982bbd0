// ctnn/kernels/depthwise.hpp: the per-channel products behind DepthwiseConv2D.
//
//   mul_add_row: out[j] = a[j] * b[j] + out[j] for j < n   (one fused multiply-add per element)
//
// A depthwise convolution is, at each output position and tap, this product along the channels
// (input row at that tap x the tap's weights), so it vectorizes along the channels, which are
// contiguous in channels-last images. Full vectors use the native tag and the tail a one-lane tag
// with the same MulAdd, so an element's result does not depend on whether it fell in a vector or
// the tail: a caller may split the channels among threads anywhere and get the same bits.
#pragma once
#include <cstddef>

#include "ctnn/kernels/highway.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class T>
void mul_add_row(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                 T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (j + L <= n) trips a false g++ 12 warning when inlined
  std::size_t j = 0;
  for (; j < full; j += L)
    hn::StoreU(hn::MulAdd(hn::LoadU(d, a + j), hn::LoadU(d, b + j), hn::LoadU(d, out + j)), d,
               out + j);
  const hn::CappedTag<T, 1> d1;
  for (; j < n; ++j)
    hn::StoreU(hn::MulAdd(hn::LoadU(d1, a + j), hn::LoadU(d1, b + j), hn::LoadU(d1, out + j)), d1,
               out + j);
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::mul_add_row;
}  // namespace ctnn::kernels
