// ctnn/layers/elu.hpp: ELU<Alpha = 1>, the exponential linear unit (Keras ELU, PyTorch nn.ELU).
//
// Represents y = x for x > 0, Alpha * (exp(x) - 1) otherwise; any Alpha, as in Keras and
// PyTorch. Output shape: the input's. No parameters.
// Derivative as PyTorch's: Alpha * exp(x) = y + Alpha for x <= 0 (Alpha at the kink when
// Alpha != 1), 1 above. ELU(-inf) = -Alpha; a NaN input gives NaN and passes dy back.
#pragma once
#include <string>

#include "ctnn/core/real.hpp"
#include "ctnn/kernels/activations.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

template <Real Alpha = 1.0>
struct ELU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "ELU";
    static constexpr LayerKind kind = LayerKind::elu;
    static std::string config() { return "alpha " + std::to_string(Alpha.value()); }
    static std::string spec() { return "ctnn::ELU<" + std::to_string(Alpha.value()) + ">"; }
    static constexpr T alpha = static_cast<T>(Alpha.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::elu_forward(n * In::size, x, y, alpha);
    }
    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::elu_backward(n * In::size, x, y, dy, dx, alpha);
    }
  };
};

}  // namespace ctnn
