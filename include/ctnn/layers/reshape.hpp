// ctnn/layers/reshape.hpp: Reshape<Dims...>, the input seen with another shape of the same size
// (row-major, channels last, as Keras's Reshape((Dims...)) without the batch dimension).
//
// Represents y = x with output shape Shape<Dims...>: Flatten generalized (Reshape<In::size> is a
// Flatten). Requires: Dims... multiply to the input's size. No parameters, no work: Sequential
// hands the same buffer on, forward and backward (is_view).
#pragma once
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "ctnn/layers/param_free.hpp"

namespace ctnn {

template <std::size_t... Dims>
struct Reshape {
  static_assert(sizeof...(Dims) >= 1, "Reshape needs at least one dimension: Reshape<Dims...>.");

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static_assert(In::size == Shape<Dims...>::size,
                  "Reshape must keep the number of values: the input shape (first argument of "
                  "bind<...> above) and Shape<Dims...> of Reshape<Dims...> differ in size.");
    using output_shape = Shape<Dims...>;
    static constexpr std::string_view name = "Reshape";
    static constexpr LayerKind kind = LayerKind::reshape;
    static constexpr bool is_view = true;
    static std::string spec() {
      std::string s = "ctnn::Reshape<";
      std::size_t i = 0;
      ((s += (i++ ? ", " : "") + std::to_string(Dims)), ...);
      return s + ">";
    }
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
