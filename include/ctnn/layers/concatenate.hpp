// ctnn/layers/concatenate.hpp: Concatenate<Names...>, a join of a Graph (core/graph.hpp): the
// current tensor and the named ones, in that order, joined along the last axis (channels, for
// images), as Keras's Concatenate(axis=-1). Every input must agree on all other axes. No
// parameters. Backward: each input's gradient is its slice of dy.
#pragma once
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ctnn/core/model.hpp"

namespace ctnn {

namespace detail {
template <ShapeType S>
inline constexpr std::size_t last_axis = S::dims[S::rank - 1];
template <ShapeType S>
inline constexpr std::size_t leading_size = S::size / last_axis<S>;
template <ShapeType A, ShapeType B>
constexpr bool same_leading() {
  if (A::rank != B::rank) return false;
  for (std::size_t k = 0; k + 1 < A::rank; ++k)
    if (A::dims[k] != B::dims[k]) return false;
  return true;
}
template <ShapeType S, std::size_t Last, class Seq>
struct WithLast;
template <ShapeType S, std::size_t Last, std::size_t... K>
struct WithLast<S, Last, std::index_sequence<K...>> {
  using type = Shape<S::dims[K]..., Last>;
};
}  // namespace detail

// Named in the error when Concatenate's inputs disagree on an axis other than the last:
// Concatenate_inputs_differ_before_the_last_axis<first input, other input>.
template <class First, class Other>
struct Concatenate_inputs_differ_before_the_last_axis {
  static constexpr bool value = detail::same_leading<First, Other>();
  static_assert(value,
                "Concatenate joins tensors along the last axis, so they must agree on every other "
                "axis (and on rank), but two of its inputs do not: the shapes are the two "
                "arguments of Concatenate_inputs_differ_before_the_last_axis<first, other>.");
};

namespace detail {

template <class T, ShapeType First, ShapeType... Others>
struct ConcatenateJoin {
  static_assert(sizeof...(Others) >= 1, "Concatenate needs at least one named tensor to join.");
  // Instantiates the named check (the Graph calls it once lowered, so the error is short).
  static constexpr bool verify() {
    return (Concatenate_inputs_differ_before_the_last_axis<First, Others>::value && ...);
  }
  using value_type = T;
  static constexpr std::size_t arity = 1 + sizeof...(Others);
  static constexpr std::size_t rows = leading_size<First>;  // positions per sample
  static constexpr std::array<std::size_t, arity> width{last_axis<First>, last_axis<Others>...};
  static constexpr std::size_t total = (last_axis<First> + ... + last_axis<Others>);
  static constexpr std::array<std::size_t, arity> start = [] {
    std::array<std::size_t, arity> s{};
    for (std::size_t k = 1; k < arity; ++k) s[k] = s[k - 1] + width[k - 1];
    return s;
  }();
  using output_shape =
      typename WithLast<First, total, std::make_index_sequence<First::rank - 1>>::type;
  static constexpr bool is_join = true;
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "Concatenate";
  static void init(T*, Rng&) {}
  static void forward(const T* const* xs, T* y, std::size_t n) {
    for (std::size_t k = 0; k < arity; ++k)
      for (std::size_t r = 0; r < n * rows; ++r)
        std::memcpy(y + r * total + start[k], xs[k] + r * width[k], width[k] * sizeof(T));
  }
  static void backward(const T* dy, std::size_t j, T* dx, std::size_t n) {
    for (std::size_t r = 0; r < n * rows; ++r)
      std::memcpy(dx + r * width[j], dy + r * total + start[j], width[j] * sizeof(T));
  }
};

}  // namespace detail

template <class... Names>
struct Concatenate {
  template <class T, class... In>
  using bind_join = detail::ConcatenateJoin<T, In...>;
};

}  // namespace ctnn
