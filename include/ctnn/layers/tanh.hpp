// ctnn/layers/tanh.hpp: Tanh, y = tanh(x). Output shape: the input's.
#pragma once
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct Tanh {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Tanh";
    static constexpr LayerKind kind = LayerKind::tanh;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::tanh_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::tanh_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
