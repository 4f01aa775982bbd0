// ctnn/layers/softmax.hpp: Softmax over the last (only) axis of a flat input.
// Requires: a rank-1 input. Output shape: the input's. No parameters.
// Followed by a cross-entropy loss, training skips this backward pass: the loss hands the
// gradient with respect to the logits (p - y) straight to the layer before (see train/).
#pragma once
#include "ctnn/kernels/softmax.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct Softmax {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static_assert(In::rank == 1,
                  "Softmax needs a flat (rank-1) input: put Flatten and a Dense before it (the "
                  "shapes are in bind<...> above).");
    static constexpr std::string_view name = "Softmax";
    static constexpr LayerKind kind = LayerKind::softmax;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::softmax_forward(n, In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::softmax_backward(n, In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
