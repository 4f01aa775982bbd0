// ctnn/layers/hard_sigmoid.hpp: HardSigmoid as PyTorch (nn.Hardsigmoid) and Keras 3
// (keras.activations.hard_sigmoid) define it: y = relu6(x + 3) / 6.
//
// Represents 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between. Keras 2's hard_sigmoid was
// 0.2 x + 0.5 clipped to [0, 1]: a model from Keras 2 differs. Output shape: the input's. No
// parameters. Derivative as PyTorch's: 1/6 on (-3, 3), 0 elsewhere, at both kinks and at a NaN
// input (whose output is NaN).
#pragma once
#include "ctnn/kernels/activations.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct HardSigmoid {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "HardSigmoid";
    static constexpr LayerKind kind = LayerKind::hard_sigmoid;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::hard_sigmoid_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::hard_sigmoid_backward(n * In::size, x, dy, dx);
    }
  };
};

}  // namespace ctnn
