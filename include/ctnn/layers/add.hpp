// ctnn/layers/add.hpp: Add<Names...>, a join of a Graph (core/graph.hpp): y = x0 + x1 + ..., the
// current tensor first, then the named ones in order, summed left to right. Every input must have
// the same shape, which is also the output's. No parameters. Backward: each input's gradient is
// dy (a copy; the planner sums it into a tensor that fans out).
#pragma once
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "ctnn/core/model.hpp"

namespace ctnn {

// Named in the error when Add's inputs differ: Add_input_shapes_differ<first input, other input>.
template <class First, class Other>
struct Add_input_shapes_differ {
  static_assert(std::is_same_v<First, Other>,
                "Add sums tensors of one shape, but two of its inputs differ: the shapes are the "
                "two arguments of Add_input_shapes_differ<first input, other input>.");
  static constexpr bool value = std::is_same_v<First, Other>;
};

namespace detail {

template <class T, ShapeType First, ShapeType... Others>
struct AddJoin {
  static_assert(sizeof...(Others) >= 1, "Add needs at least one named tensor to add.");
  // Instantiates the named check (the Graph calls it once lowered, so the error is short).
  static constexpr bool verify() { return (Add_input_shapes_differ<First, Others>::value && ...); }
  using value_type = T;
  using output_shape = First;
  static constexpr bool is_join = true;
  // y[i] depends on x_k[i] alone (an elementwise sum): y may be the storage of input 0 or 1
  // (the int8 plan runs it in place where such an input dies here).
  static constexpr bool elementwise_in_place = true;
  static constexpr std::size_t arity = 1 + sizeof...(Others);
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "Add";
  static void init(T*, Rng&) {}
  static void forward(const T* const* xs, T* y, std::size_t n) {
    const std::size_t m = n * First::size;
    const T* a = xs[0];
    const T* b = xs[1];
    for (std::size_t i = 0; i < m; ++i) y[i] = a[i] + b[i];
    for (std::size_t k = 2; k < arity; ++k) {
      const T* c = xs[k];
      for (std::size_t i = 0; i < m; ++i) y[i] += c[i];
    }
  }
  static void backward(const T* dy, std::size_t, T* dx, std::size_t n) {
    std::memcpy(dx, dy, n * First::size * sizeof(T));
  }
};

}  // namespace detail

template <class... Names>
struct Add {
  template <class T, class... In>
  using bind_join = detail::AddJoin<T, In...>;
};

}  // namespace ctnn
