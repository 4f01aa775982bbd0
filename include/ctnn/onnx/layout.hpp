// ctnn/onnx/layout.hpp: moving one sample between ONNX's element order and ctnn's.
//
// ONNX (and PyTorch) store an image channels first (C x H x W, a sequence C x L); ctnn stores it
// channels last (H x W x C, L x C), and after Flatten the two vectors hold the same values in
// different orders. A header written by ctnn-onnx (tools/ctnn_onnx.cpp) names, for its input and
// its output, the order that maps one onto the other:
//   order[i] = the ONNX (row-major) index of the value ctnn keeps at index i,
// and an empty order when both agree. These functions apply it to one sample. They need nothing
// but the standard library, so a firmware build of an imported model can use them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ctnn::onnx {

// ctnn[i] = onnx[order[i]]; a copy when `order` is empty. ctnn.size() values are written.
template <class T>
constexpr void to_ctnn(std::span<const std::uint32_t> order, const T* onnx, std::span<T> ctnn) {
  for (std::size_t i = 0; i < ctnn.size(); ++i) ctnn[i] = onnx[order.empty() ? i : order[i]];
}

// onnx[order[i]] = ctnn[i]; a copy when `order` is empty. ctnn.size() values are written.
template <class T>
constexpr void to_onnx(std::span<const std::uint32_t> order, std::span<const T> ctnn, T* onnx) {
  for (std::size_t i = 0; i < ctnn.size(); ++i) onnx[order.empty() ? i : order[i]] = ctnn[i];
}

// The order of a channels-first tensor (per sample [C, s1, s2, ...], ONNX's) that ctnn holds
// channels last ([s1, s2, ..., C]): order[p * C + c] = c * S + p, S the product of the s.
inline std::vector<std::uint32_t> channels_last_order(const std::vector<std::size_t>& onnx) {
  const std::size_t c = onnx.empty() ? 1 : onnx[0];
  std::size_t s = 1;
  for (std::size_t k = 1; k < onnx.size(); ++k) s *= onnx[k];
  std::vector<std::uint32_t> order(c * s);
  for (std::size_t p = 0; p < s; ++p)
    for (std::size_t ch = 0; ch < c; ++ch) order[p * c + ch] = static_cast<std::uint32_t>(ch * s + p);
  return order;
}

}  // namespace ctnn::onnx
