// ctnn/layers/swish.hpp: Swish, also called SiLU (Keras swish / silu, PyTorch nn.SiLU).
//
// Represents y = x * sigmoid(x). Output shape: the input's. No parameters. Smooth: the
// derivative is s * (1 + x * (1 - s)) with s = sigmoid(x), recomputed in backward. Swish(-inf) =
// 0, Swish(inf) = inf, and a NaN input gives NaN, forward and backward.
#pragma once
#include "ctnn/kernels/activations.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct Swish {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Swish";
    static constexpr LayerKind kind = LayerKind::swish;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::swish_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::swish_backward(n * In::size, x, dy, dx);
    }
  };
};

// PyTorch's name for the same function (the same type: exported as ctnn::Swish).
using SiLU = Swish;

}  // namespace ctnn
