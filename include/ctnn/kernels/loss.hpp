// ctnn/kernels/loss.hpp: the vector arithmetic of the losses' gradients.
#pragma once
#include <cstddef>

#include "ctnn/kernels/elementwise.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out = (a - b) * s. With a = softmax output and b = one-hot targets this is the fused
// softmax + cross-entropy gradient with respect to the logits; with a = prediction and b = target
// it is the MSE gradient (s = 2 / count).
template <class T>
void scaled_difference(std::size_t n, const T* a, const T* b, T s, T* out) {
  map2(n, a, b, out, [s](auto d, auto x, auto y) { return hn::Mul(hn::Sub(x, y), hn::Set(d, s)); });
}

// out = a * s.
template <class T>
void scale(std::size_t n, const T* a, T s, T* out) {
  map1(n, a, out, [s](auto d, auto x) { return hn::Mul(x, hn::Set(d, s)); });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::scale;
using ctnn::HWY_NAMESPACE::scaled_difference;
}  // namespace ctnn::kernels
