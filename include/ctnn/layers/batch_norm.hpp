// ctnn/layers/batch_norm.hpp: BatchNormalization<Momentum, Epsilon>, batch normalization as in
// Keras (axis -1: per channel after Conv2D, per feature after Dense).
//
// Represents, for each channel c of the last axis (C channels; the m = n x positions values of a
// channel in a batch of n samples are its population):
//   training:  y = gamma[c] * (x - mean_B[c]) / sqrt(var_B[c] + Epsilon) + beta[c], where
//              mean_B and var_B are the batch's mean and BIASED variance (divided by m, not m - 1,
//              as Keras's ops.moments; PyTorch uses m - 1 in its moving variance, Keras does not),
//              and then the moving averages become
//                moving_mean = moving_mean * Momentum + mean_B * (1 - Momentum)
//                moving_var  = moving_var  * Momentum + var_B  * (1 - Momentum)
//              (Keras 3's BatchNormalization.call, which updates them only in training).
//   inference: y = gamma[c] * (x - moving_mean[c]) / sqrt(moving_var[c] + Epsilon) + beta[c];
//              the moving averages are read, never written.
// Requires: an input of any rank (the last axis holds the channels); 0 <= Momentum <= 1;
// Epsilon > 0. Momentum and Epsilon are ctnn::Real (millionths, since clang 14 takes no float
// template parameters), so Epsilon's resolution is 1e-6. Defaults: Keras's, 0.99 and 1e-3.
// Output shape: the input's. Parameters (trainable, Keras's order): gamma [C] (init ones), then
// beta [C] (init zeros): param_count = 2C. State (non-trainable, never stepped by an optimizer):
// moving mean [C] (init zeros), then moving variance [C] (init ones): state_count = 2C. Keras's
// summary counts 4C parameters, 2C of them non-trainable.
//
// The contract differs from core/layer.hpp's Layer in one place: forward takes the state
//     forward(params, state, x, y, n, scratch, ctx)
// (the planner's state arena hands each stateful layer its slice), and both forward and backward
// take a fused ReLU/ReLU6 as the template argument Act (none by default). backward is the usual one;
// it reads x, and y only to mask dy by a fused ReLU's output (fuses_relu below); after a training
// forward it is the full gradient through the batch statistics (mean_B and var_B depend on every
// x of the batch); after an inference forward it is
// the gradient with the moving statistics held fixed (a frozen BatchNormalization, as Keras runs
// one whose trainable is false).
//
// How: scratch per sample is [batch statistics 2C | partial sums 2C]; the batch statistics (the
// mean and 1/sqrt(var + Epsilon) that normalized the batch, kept for backward) live in sample 0's
// part only. Each sample's per-channel sums over its positions go to its own partial slot, in
// parallel, and the slots are then added in sample order: the results are the same bits at any
// thread count. The variance takes a second pass over x, with the mean subtracted first (no
// E[x^2] - E[x]^2 cancellation). A NaN input makes its channel's batch mean NaN, so in training
// the whole channel of the batch (and its moving averages) becomes NaN, as in Keras; in inference
// only the outputs it reaches are NaN.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/real.hpp"
#include "ctnn/kernels/batch_norm.hpp"
#include "ctnn/kernels/elementwise.hpp"

namespace ctnn {

template <Real Momentum = 0.99, Real Epsilon = 0.001>
struct BatchNormalization {
  static_assert(Momentum.value() >= 0.0 && Momentum.value() <= 1.0,
                "BatchNormalization's momentum must be in [0, 1] (Keras's default is 0.99).");
  static_assert(Epsilon.value() > 0.0,
                "BatchNormalization's epsilon must be positive, and at least 1e-6 (the resolution "
                "of ctnn::Real); Keras's default is 1e-3.");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank >= 1, "BatchNormalization needs an input with at least one axis.");
    using value_type = T;
    using input_shape = In;
    using output_shape = In;
    static constexpr std::size_t channels = In::dims[In::rank - 1];  // C, the last axis
    static constexpr std::size_t positions = In::size / channels;    // values of a channel per sample
    static constexpr std::size_t param_count = 2 * channels;         // gamma, beta
    static constexpr std::size_t state_count = 2 * channels;         // moving mean, moving variance
    static constexpr std::size_t partial_offset = 2 * channels;
    static constexpr std::size_t scratch_per_sample = 4 * channels;
    static constexpr double momentum = Momentum.value();
    static constexpr double epsilon = Epsilon.value();
    static constexpr std::string_view name = "BatchNormalization";
    static constexpr LayerKind kind = LayerKind::batch_norm;
    // A ReLU or ReLU6 right after it (and read by nothing else) runs in its normalization's store,
    // and that ReLU's backward in its backward, which masks dy by the stored output y: the
    // planner names the activation as the template argument Act of both (core/model.hpp,
    // absorbs_activation_backward).
    static constexpr bool fuses_relu = true;
    static constexpr bool absorbs_activation_backward = true;
    static constexpr bool is_view = false;
    static std::string config() {
      return "momentum " + std::to_string(momentum) + ", epsilon " + std::to_string(epsilon);
    }
    static std::string spec() {
      return "ctnn::BatchNormalization<" + std::to_string(momentum) + ", " +
             std::to_string(epsilon) + ">";
    }

    static void init(T* p, Rng&) {
      for (std::size_t c = 0; c < channels; ++c) p[c] = T(1), p[channels + c] = T(0);
    }
    static void init_state(T* state) {
      for (std::size_t c = 0; c < channels; ++c) state[c] = T(0), state[channels + c] = T(1);
    }

    template <Epilogue Act = Epilogue::none>
    static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      if (n == 0) return;
      T* mean = scratch;
      T* inv_std = scratch + channels;
      const bool wide = n * In::size >= kParallelWork;
      if (ctx.training) {
        const T count = static_cast<T>(n * positions);
        // Pass 1: the mean.
        parallel_for(n, [&](std::size_t s) {
          kernels::sum_rows(positions, channels, x + s * In::size, partial(scratch, s));
        }, wide);
        sum_over_samples(scratch, n, 0, mean);
        for (std::size_t c = 0; c < channels; ++c) mean[c] /= count;
        // Pass 2: the biased variance (into inv_std until the state has it).
        parallel_for(n, [&](std::size_t s) {
          kernels::bn_squared_deviations(positions, channels, x + s * In::size, mean,
                                         partial(scratch, s) + channels);
        }, wide);
        sum_over_samples(scratch, n, channels, inv_std);
        // (1 - Momentum) is taken in double and rounded once, as Keras's Python float is.
        const T keep = static_cast<T>(momentum), take = static_cast<T>(1.0 - momentum);
        for (std::size_t c = 0; c < channels; ++c) {
          const T var = inv_std[c] / count;
          state[c] = state[c] * keep + mean[c] * take;
          state[channels + c] = state[channels + c] * keep + var * take;
          inv_std[c] = T(1) / std::sqrt(var + static_cast<T>(epsilon));
        }
      } else {
        for (std::size_t c = 0; c < channels; ++c) {
          mean[c] = state[c];
          inv_std[c] = T(1) / std::sqrt(state[channels + c] + static_cast<T>(epsilon));
        }
      }
      parallel_for(n, [&](std::size_t s) {
        kernels::bn_normalize<Act>(positions, channels, x + s * In::size, mean, inv_std, p,
                                   p + channels, y + s * In::size);
      }, wide);
    }

    template <Epilogue Act = Epilogue::none>
    static void backward(const T* p, const T* x, const T* y, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      T* dgamma = dp;
      T* dbeta = dp + channels;
      if (n == 0) {
        for (std::size_t i = 0; i < param_count; ++i) dp[i] = T(0);
        return;
      }
      const T* mean = scratch;
      const T* inv_std = scratch + channels;
      const bool wide = n * In::size >= kParallelWork;
      parallel_for(n, [&](std::size_t s) {
        T* part = partial(scratch, s);
        kernels::bn_backward_sums<Act>(positions, channels, x + s * In::size, y + s * In::size,
                                       dy + s * In::size, mean, inv_std, part, part + channels);
      }, wide);
      sum_over_samples(scratch, n, 0, dbeta);
      sum_over_samples(scratch, n, channels, dgamma);
      if (!dx) return;
      const T count = static_cast<T>(n * positions);
      parallel_for(n, [&](std::size_t s) {
        const std::size_t o = s * In::size;
        if (ctx.training)
          kernels::bn_backward_dx<true, Act>(positions, channels, x + o, y + o, dy + o, mean,
                                             inv_std, p, dbeta, dgamma, count, dx + o);
        else
          kernels::bn_backward_dx<false, Act>(positions, channels, x + o, y + o, dy + o, mean,
                                              inv_std, p, dbeta, dgamma, count, dx + o);
      }, wide);
    }

   private:
    static T* partial(T* scratch, std::size_t s) {
      return scratch + s * scratch_per_sample + partial_offset;
    }
    // out[c] = sum over samples s, in order, of partial slot s at [offset + c].
    static void sum_over_samples(T* scratch, std::size_t n, std::size_t offset, T* out) {
      for (std::size_t c = 0; c < channels; ++c) out[c] = partial(scratch, 0)[offset + c];
      for (std::size_t s = 1; s < n; ++s) {
        const T* part = partial(scratch, s) + offset;
        for (std::size_t c = 0; c < channels; ++c) out[c] += part[c];
      }
    }
  };
};

}  // namespace ctnn
