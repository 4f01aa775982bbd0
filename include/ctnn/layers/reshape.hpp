// ctnn/layers/reshape.hpp: Reshape<Dims...>, the input seen with another shape of the same size
// (row-major, channels last, as Keras's Reshape((Dims...)) without the batch dimension).
//
// Represents y = x with output shape Shape<Dims...>: Flatten generalized (Reshape<In::size> is a
// Flatten). Requires: Dims... multiply to the input's size. No parameters, no work: Sequential
// hands the same buffer on, forward and backward (is_view).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/layers/flatten.hpp"

namespace ctnn {

template <std::size_t... Dims>
struct Reshape {
  static_assert(sizeof...(Dims) >= 1, "Reshape needs at least one dimension: Reshape<Dims...>.");

  // Flatten's bind with another output shape: the same copies when run on its own (tests),
  // none inside a model.
  template <ShapeType In, class T>
  struct bind : Flatten::bind<In, T> {
    static_assert(In::size == Shape<Dims...>::size,
                  "Reshape must keep the number of values: the input shape (first argument of "
                  "bind<...> above) and Shape<Dims...> of Reshape<Dims...> differ in size.");
    using output_shape = Shape<Dims...>;
    static constexpr std::string_view name = "Reshape";
    static constexpr LayerKind kind = LayerKind::reshape;
    static std::string spec() {
      std::string s = "ctnn::Reshape<";
      std::size_t i = 0;
      ((s += (i++ ? ", " : "") + std::to_string(Dims)), ...);
      return s + ">";
    }
  };
};

}  // namespace ctnn
