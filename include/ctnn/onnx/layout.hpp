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

}  // namespace ctnn::onnx
