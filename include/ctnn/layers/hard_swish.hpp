// ctnn/layers/hard_swish.hpp: HardSwish (MobileNetV3; Keras hard_swish, PyTorch nn.Hardswish).
//
// Represents y = x * relu6(x + 3) / 6: 0 for x <= -3, x for x >= 3. Output shape: the input's.
// No parameters. Derivative as PyTorch's: 0 below -3, x / 3 + 1/2 on [-3, 3] (so -1/2 at -3 and
// 3/2 at 3), 1 above. HardSwish(-inf) = 0; a NaN input gives NaN and passes dy back.
#pragma once
#include "ctnn/kernels/activations.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct HardSwish {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "HardSwish";
    static constexpr LayerKind kind = LayerKind::hard_swish;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::hard_swish_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::hard_swish_backward(n * In::size, x, dy, dx);
    }
  };
};

}  // namespace ctnn
