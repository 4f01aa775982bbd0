// ctnn/layers/leaky_relu.hpp: LeakyReLU<Alpha>, y = x for x > 0, else Alpha * x.
// Alpha defaults to 0.3 as in Keras (PyTorch's default is 0.01). Output shape: the input's.
#pragma once
#include <string>

#include "ctnn/core/real.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

template <Real Alpha = 0.3>
struct LeakyReLU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "LeakyReLU";
    static constexpr LayerKind kind = LayerKind::leaky_relu;
    static std::string config() { return "alpha " + std::to_string(Alpha.value()); }
    static std::string spec() { return "ctnn::LeakyReLU<" + std::to_string(Alpha.value()) + ">"; }
    static constexpr T alpha = static_cast<T>(Alpha.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::leaky_relu_forward(n * In::size, x, y, alpha);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::leaky_relu_backward(n * In::size, x, dy, dx, alpha);
    }
  };
};

}  // namespace ctnn
