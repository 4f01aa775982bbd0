// ctnn/layers/sigmoid.hpp: Sigmoid, y = 1 / (1 + exp(-x)). Output shape: the input's.
#pragma once
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct Sigmoid {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Sigmoid";
    static constexpr LayerKind kind = LayerKind::sigmoid;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::sigmoid_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::sigmoid_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
