// ctnn/layers/relu.hpp: ReLU, y = max(x, 0). Output shape: the input's. No parameters.
// After Dense or Conv2D, Sequential fuses it into their GEMM's store (see FusesRelu).
#pragma once
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct ReLU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "ReLU";
    static constexpr LayerKind kind = LayerKind::relu;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::relu_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::relu_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
