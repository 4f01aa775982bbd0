// ctnn/layers/layer_norm.hpp: LayerNormalization<Epsilon>, as Keras's (axis -1).
//
// Represents, for each position of the input (every index but the last axis) with its C values
// x[0..C) along the last axis:
//   mean = (1/C) sum x,  var = (1/C) sum (x - mean)^2   (biased, as Keras)
//   y = gamma * (x - mean) / sqrt(var + Epsilon) + beta
// the same in training and inference (nothing depends on the batch).
// Requires: an input of any rank; Epsilon > 0, a ctnn::Real (millionths), Keras's default 1e-3.
// Output shape: the input's. Parameters (Keras's order): gamma [C] (init ones), beta [C] (init
// zeros).
// How: each position's statistics come from two passes over its C values (the mean subtracted
// before squaring); forward keeps the mean and 1/sqrt(var + Epsilon) of each position in scratch for
// backward, which is
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma,  xhat = (x - mean) * rstd
// and dgamma = sum dy * xhat, dbeta = sum dy over every position of the batch, in sample and
// position order (the same bits at any thread count; samples run in parallel, the parameter
// sums afterwards in order).
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/real.hpp"

namespace ctnn {

template <Real Epsilon = 0.001>
struct LayerNormalization {
  static_assert(Epsilon.value() > 0.0,
                "LayerNormalization's epsilon must be positive, and at least 1e-6 (the resolution "
                "of ctnn::Real); Keras's default is 1e-3.");

  template <ShapeType In, class T>
  struct bind {
    using value_type = T;
    using input_shape = In;
    using output_shape = In;
    static constexpr std::size_t C = In::dims[In::rank - 1];
    static constexpr std::size_t positions = In::size / C;
    static constexpr std::size_t param_count = 2 * C;
    static constexpr std::size_t scratch_per_sample = 2 * positions;  // mean, rstd
    static constexpr std::string_view name = "LayerNormalization";
    static constexpr LayerKind kind = LayerKind::layer_norm;
    static std::string spec() {
      return "ctnn::LayerNormalization<" + std::to_string(Epsilon.value()) + ">";
    }
    static std::string config() { return "epsilon " + std::to_string(Epsilon.value()); }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    // One step of a sequence (deploy/streaming.hpp): each position is normalized alone.
    using step = typename LayerNormalization::template bind<Shape<C>, T>;

    static void init(T* p, Rng&) {
      for (std::size_t c = 0; c < C; ++c) {
        p[c] = T(1);
        p[C + c] = T(0);
      }
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const T eps = static_cast<T>(Epsilon.value());
      parallel_for(
          n * positions,
          [&](std::size_t r) {
            const T* xr = x + r * C;
            T* yr = y + r * C;
            T mean = 0;
            for (std::size_t c = 0; c < C; ++c) mean += xr[c];
            mean /= T(C);
            T var = 0;
            for (std::size_t c = 0; c < C; ++c) var += (xr[c] - mean) * (xr[c] - mean);
            var /= T(C);
            const T rstd = T(1) / std::sqrt(var + eps);
            scratch[2 * r] = mean;
            scratch[2 * r + 1] = rstd;
            for (std::size_t c = 0; c < C; ++c) yr[c] = p[c] * ((xr[c] - mean) * rstd) + p[C + c];
          },
          n * In::size >= kParallelWork);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      if (dx)
        parallel_for(
            n * positions,
            [&](std::size_t r) {
              const T* xr = x + r * C;
              const T* g = dy + r * C;
              const T mean = scratch[2 * r], rstd = scratch[2 * r + 1];
              T mg = 0, mgx = 0;
              for (std::size_t c = 0; c < C; ++c) {
                const T gc = g[c] * p[c];
                mg += gc;
                mgx += gc * ((xr[c] - mean) * rstd);
              }
              mg /= T(C);
              mgx /= T(C);
              for (std::size_t c = 0; c < C; ++c) {
                const T xhat = (xr[c] - mean) * rstd;
                dx[r * C + c] = rstd * (g[c] * p[c] - mg - xhat * mgx);
              }
            },
            n * In::size >= kParallelWork);
      for (std::size_t c = 0; c < 2 * C; ++c) dp[c] = T(0);
      for (std::size_t r = 0; r < n * positions; ++r) {
        const T* xr = x + r * C;
        const T mean = scratch[2 * r], rstd = scratch[2 * r + 1];
        for (std::size_t c = 0; c < C; ++c) {
          dp[c] += dy[r * C + c] * ((xr[c] - mean) * rstd);
          dp[C + c] += dy[r * C + c];
        }
      }
    }
  };
};

}  // namespace ctnn
