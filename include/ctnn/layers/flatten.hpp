// ctnn/layers/flatten.hpp: Flatten, the input seen as a vector (row-major, channels last, as
// Keras flattens). Output shape: Shape<In::size>. No parameters, no work: Sequential hands the
// same buffer on, forward and backward (is_view).
#pragma once
#include <cstring>

#include "ctnn/layers/param_free.hpp"

namespace ctnn {

struct Flatten {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    using output_shape = Shape<In::size>;
    static constexpr std::string_view name = "Flatten";
    static constexpr LayerKind kind = LayerKind::flatten;
    static constexpr bool is_view = true;
    // Used only when the layer runs on its own (tests); inside a model no copy is made.
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n, T*,
                         const PassContext&) {
      if (dx && dx != dy) std::memcpy(dx, dy, n * In::size * sizeof(T));
    }
  };
};

}  // namespace ctnn
