// ctnn/kernels/softmax.hpp: row-wise softmax and its backward pass.
#pragma once
#include <cstddef>

#include "ctnn/kernels/highway.hpp"
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[r] = exp(x[r] - max(x[r])) / sum(...) for each of `rows` rows of `cols` values. Subtracting
// the row maximum keeps exp in range; the result is the same softmax.
template <class T>
void softmax_forward(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x,
                     T* HWY_RESTRICT y) {
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const std::size_t L = hn::Lanes(d);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    std::size_t j = 0;
    if (cols >= L) {
      auto m = hn::LoadU(d, xr);
      for (j = L; j + L <= cols; j += L) m = hn::Max(m, hn::LoadU(d, xr + j));
      mx = hn::GetLane(hn::MaxOfLanes(d, m));
    }
    for (; j < cols; ++j) mx = xr[j] > mx ? xr[j] : mx;
    auto sum = hn::Zero(d);
    T sum1 = 0;
    j = 0;
    for (; j + L <= cols; j += L) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, xr + j), hn::Set(d, mx)));
      hn::StoreU(e, d, yr + j);
      sum = hn::Add(sum, e);
    }
    for (; j < cols; ++j) {
      const auto e = hn::Exp(d1, hn::Sub(hn::LoadU(d1, xr + j), hn::Set(d1, mx)));
      hn::StoreU(e, d1, yr + j);
      sum1 += hn::GetLane(e);
    }
    const T inv = T(1) / (hn::GetLane(hn::SumOfLanes(d, sum)) + sum1);
    for (j = 0; j + L <= cols; j += L) hn::StoreU(hn::Mul(hn::LoadU(d, yr + j), hn::Set(d, inv)), d, yr + j);
    for (; j < cols; ++j) yr[j] *= inv;
  }
}

// dx = y * (dy - <dy, y>) row by row (the softmax Jacobian applied to dy).
template <class T>
void softmax_backward(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT y,
                      const T* HWY_RESTRICT dy, T* HWY_RESTRICT dx) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T dot = 0;
    for (std::size_t j = 0; j < cols; ++j) dot += yr[j] * gr[j];
    for (std::size_t j = 0; j < cols; ++j) dx[r * cols + j] = yr[j] * (gr[j] - dot);
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::softmax_backward;
using ctnn::HWY_NAMESPACE::softmax_forward;
}  // namespace ctnn::kernels
