// ctnn/layers/dropout.hpp: Dropout<Rate>, inverted dropout as in Keras.
//
// Represents, in training, y = x * mask / (1 - Rate) with each mask element 0 with probability
// Rate; in inference, y = x. Requires 0 <= Rate < 1. Output shape: the input's. No parameters.
// The mask of sample s in a step comes from Rng(step seed, s) alone, so a seeded run draws the same
// masks at any thread count; it is kept in scratch (already scaled) for the backward pass.
#pragma once
#include <cstring>
#include <string>

#include "ctnn/core/parallel.hpp"
#include "ctnn/core/real.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

template <Real Rate>
struct Dropout {
  static_assert(Rate.value() >= 0.0 && Rate.value() < 1.0, "Dropout's rate must be in [0, 1).");

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, In::size> {
    static constexpr std::string_view name = "Dropout";
    static constexpr LayerKind kind = LayerKind::dropout;
    static std::string config() { return "rate " + std::to_string(Rate.value()); }
    static std::string spec() { return "ctnn::Dropout<" + std::to_string(Rate.value()) + ">"; }
    static constexpr double rate = Rate.value();

    static void forward(const T*, const T* x, T* y, std::size_t n, T* mask,
                        const PassContext& ctx) {
      if (!ctx.training || rate == 0.0) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < n * In::size; ++i) mask[i] = T(1);
        return;
      }
      const T keep_scale = static_cast<T>(1.0 / (1.0 - rate));
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0x9E3779B97F4A7C15ull + s);
        T* ms = mask + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) {
          ms[i] = rng.uniform01() < rate ? T(0) : keep_scale;
          y[s * In::size + i] = x[s * In::size + i] * ms[i];
        }
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* mask, const PassContext&) {
      if (dx)
        for (std::size_t i = 0; i < n * In::size; ++i) dx[i] = dy[i] * mask[i];
    }
  };
};

}  // namespace ctnn
