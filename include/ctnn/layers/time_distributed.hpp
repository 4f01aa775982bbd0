// ctnn/layers/time_distributed.hpp: TimeDistributed<Spec>, a layer applied to every step of a
// sequence with the same weights, as Keras's TimeDistributed.
//
// Represents y[t] = Inner(x[t]) for each step t of an input Shape<Steps, D...>, where Inner is
// Spec bound to one step's shape Shape<D...>: output Shape<Steps, Inner's output dims...>.
// Requires: a rank-2 or higher input; Spec a plain layer (Dense, an activation, Dropout, ...:
// not a stateful or join layer).
// Parameters: Inner's (Keras's TimeDistributed adds none), in its layout.
// How: the steps of n samples are n * Steps rows of Inner's input, contiguous already, so Inner
// runs once on them (one GEMM for a Dense) and its backward sums the weight gradients over every
// sample and step in that order: the same bits at any thread count.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/layer.hpp"

namespace ctnn {
namespace detail {
template <class S>
struct TailShape;
template <std::size_t First, std::size_t... Rest>
struct TailShape<Shape<First, Rest...>> {
  using type = Shape<Rest...>;
};
template <std::size_t Steps, class S>
struct PrependShape;
template <std::size_t Steps, std::size_t... D>
struct PrependShape<Steps, Shape<D...>> {
  using type = Shape<Steps, D...>;
};
}  // namespace detail

template <class Spec>
struct TimeDistributed {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank >= 2,
                  "TimeDistributed needs a sequence input of rank 2 or more (steps first): the "
                  "shapes are in bind<...> above.");
    using inner = typename Spec::template bind<typename detail::TailShape<In>::type, T>;
    static_assert(Layer<inner>,
                  "TimeDistributed wraps a plain layer (Dense, an activation, Dropout): a stateful "
                  "or join layer cannot run step by step.");
    static constexpr std::size_t steps = In::dims[0];
    using value_type = T;
    using input_shape = In;
    using output_shape = typename detail::PrependShape<steps, typename inner::output_shape>::type;
    static constexpr std::size_t param_count = inner::param_count;
    static constexpr std::size_t scratch_per_sample = steps * inner::scratch_per_sample;
    static constexpr std::string_view name = "TimeDistributed";
    static std::string spec() {
      if constexpr (requires { inner::spec(); })
        return "ctnn::TimeDistributed<" + inner::spec() + ">";
      else  // a built-in layer without settings is spelled by its name (deploy/export.hpp)
        return "ctnn::TimeDistributed<ctnn::" + std::string(inner::name) + ">";
    }
    static std::string config() { return std::string(inner::name); }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;
    // One step (deploy/streaming.hpp): the inner layer itself.
    using step = inner;

    static void init(T* p, Rng& rng) { inner::init(p, rng); }
    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      inner::forward(p, x, y, n * steps, scratch, ctx);
    }
    static void backward(const T* p, const T* x, const T* y, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      inner::backward(p, x, y, dy, dx, dp, n * steps, scratch, ctx);
    }
  };
};

}  // namespace ctnn
