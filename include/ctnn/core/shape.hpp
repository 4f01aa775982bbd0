// ctnn/core/shape.hpp: compile-time tensor shapes.
//
// Shape<D...> is the shape of one sample (no batch dimension), channels last for images:
// Shape<28, 28, 1> is a 28x28 grey image, Shape<10> a vector of 10. Layers map one Shape type to
// another at compile time; the batch size is the only run-time dimension.
#pragma once
#include <array>
#include <cstddef>
#include <ostream>
#include <string>

namespace ctnn {

template <std::size_t... Dims>
struct Shape {
  static constexpr std::size_t rank = sizeof...(Dims);
  static constexpr std::size_t size = (std::size_t{1} * ... * Dims);
  static constexpr std::array<std::size_t, rank> dims{Dims...};

  // "(None, 26, 26, 32)", the way Keras prints a batched shape.
  static std::string str() {
    std::string s = "(None";
    for (std::size_t d : dims) s += ", " + std::to_string(d);
    return s + ")";
  }
};

template <class S>
inline constexpr bool is_shape_v = false;
template <std::size_t... D>
inline constexpr bool is_shape_v<Shape<D...>> = true;

// The concept a layer's input and output shapes satisfy.
template <class S>
concept ShapeType = is_shape_v<S>;

}  // namespace ctnn
