// ctnn/layers/add.hpp: Add<Names...>, a join of a Graph (core/graph.hpp): y = x0 + x1 + ..., the
// current tensor first, then the named ones in order, summed left to right. Every input must have
// the same shape, which is also the output's. No parameters. Backward: each input's gradient is
// dy (a copy; the planner sums it into a tensor that fans out). A ReLU or ReLU6 right after it is
// fused into it, forward and backward.
#pragma once
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "ctnn/core/model.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/activations.hpp"
#include "ctnn/kernels/elementwise.hpp"

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
  // A ReLU (ReLU6) right after it runs in its store, and that ReLU's backward in its backward
  // (the planner passes `act`, core/model.hpp): the residual block's add-then-ReLU in one pass.
  static constexpr bool fuses_relu = true;
  static constexpr bool absorbs_activation_backward = true;
  // Samples in parallel for a large batch (each sample's values are summed alone: the same bits
  // at any thread count).
  static void forward(const T* const* xs, T* y, std::size_t n, Epilogue act = Epilogue::none) {
    parallel_for(n, [&](std::size_t s) {
      const T* in[arity];
      for (std::size_t k = 0; k < arity; ++k) in[k] = xs[k] + s * First::size;
      kernels::add_activate(First::size, in, arity, y + s * First::size, act);
    }, n * First::size >= kParallelWork);
  }
  static void backward(const T* dy, std::size_t, T* dx, std::size_t n) {
    std::memcpy(dx, dy, n * First::size * sizeof(T));
  }
  // With a fused activation: each input's gradient is dy masked by the stored output y.
  static void backward(const T* dy, std::size_t k, T* dx, std::size_t n, const T* y,
                       Epilogue act) {
    if (act == Epilogue::none) return backward(dy, k, dx, n);
    parallel_for(n, [&](std::size_t s) {
      const std::size_t o = s * First::size;
      if (act == Epilogue::relu)
        kernels::relu_backward(First::size, y + o, dy + o, dx + o);
      else
        kernels::bounded_relu_backward(First::size, y + o, dy + o, dx + o, T(6), T(0), T(0));
    }, n * First::size >= kParallelWork);
  }
};

}  // namespace detail

template <class... Names>
struct Add {
  template <class T, class... In>
  using bind_join = detail::AddJoin<T, In...>;
};

}  // namespace ctnn
