// ctnn/layers/fold_batch_norm.hpp: fold an inference-mode BatchNormalization into the Dense or
// Conv2D before it.
//
// In inference a BatchNormalization is an affine map per channel, y = s[c] * (z - mean[c]) +
// beta[c] with s[c] = gamma[c] / sqrt(moving_var[c] + epsilon), so after z = W x + b it can be
// merged into the weights:
//     W'[..][c] = W[..][c] * s[c],   b'[c] = (b[c] - moving_mean[c]) * s[c] + beta[c].
// The folded layer alone then computes what the pair computed (up to rounding): one layer fewer
// to run at inference, to quantize to int8 and to export. These are functions over parameter
// arrays, for the planner to call on its arenas. s is computed in double and rounded once.
// Only valid when nothing (no activation) runs between the two layers.
#pragma once
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "ctnn/core/layer.hpp"

namespace ctnn {

// Where the output channel c sits in a weight array of fan_in x channels values.
enum class WeightLayout {
  channels_last,   // W[i][c], index i * channels + c (Conv2D's [KH][KW][C][Filters])
  channels_first,  // W[c][i], index c * fan_in + i (Dense's [Units][In])
};

// Folds a BatchNormalization's gamma, beta, moving mean and moving variance (channels values
// each) and its epsilon into weights (fan_in x channels, in `layout`) and bias (channels), in
// place.
template <class T>
void fold_batch_norm(T* weights, T* bias, std::size_t fan_in, std::size_t channels,
                     WeightLayout layout, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double epsilon) {
  for (std::size_t c = 0; c < channels; ++c) {
    const double s = double(gamma[c]) / std::sqrt(double(moving_var[c]) + epsilon);
    for (std::size_t i = 0; i < fan_in; ++i) {
      T& w = layout == WeightLayout::channels_last ? weights[i * channels + c]
                                                   : weights[c * fan_in + i];
      w = static_cast<T>(double(w) * s);
    }
    bias[c] = static_cast<T>((double(bias[c]) - double(moving_mean[c])) * s + double(beta[c]));
  }
}

// Folds bound BatchNormalization BN (its params gamma, beta and its state) into the parameters of
// the bound Dense, Conv2D or DepthwiseConv2D Prev that feeds it: prev_params is Prev's slice of the parameter
// arena, weights then bias, as both lay them out.
template <class Prev, class BN>
void fold_batch_norm(typename Prev::value_type* prev_params,
                     const typename BN::value_type* bn_params,
                     const typename BN::value_type* bn_state) {
  using T = typename Prev::value_type;
  static_assert(std::is_same_v<T, typename BN::value_type>,
                "fold_batch_norm needs both layers bound with the same scalar type.");
  static_assert(layer_kind<BN> == LayerKind::batch_norm,
                "fold_batch_norm's second layer must be a BatchNormalization.");
  static_assert(layer_kind<Prev> == LayerKind::dense || layer_kind<Prev> == LayerKind::conv2d ||
                    layer_kind<Prev> == LayerKind::depthwise_conv2d,
                "fold_batch_norm folds into a Dense, Conv2D or DepthwiseConv2D only (the layer "
                "before the BatchNormalization has another kind).");
  static_assert(std::is_same_v<typename Prev::output_shape, typename BN::input_shape>,
                "fold_batch_norm needs the BatchNormalization to take the previous layer's output "
                "shape: they are not consecutive layers.");
  constexpr std::size_t C = BN::channels;
  constexpr std::size_t weights = Prev::param_count - C;  // both: weights, then C biases
  static_assert(weights % C == 0, "fold_batch_norm: the weights are not fan_in x channels.");
  constexpr WeightLayout layout = layer_kind<Prev> == LayerKind::dense
                                      ? WeightLayout::channels_first
                                      : WeightLayout::channels_last;
  fold_batch_norm(prev_params, prev_params + weights, weights / C, C, layout, bn_params,
                  bn_params + C, bn_state, bn_state + C, BN::epsilon);
}

}  // namespace ctnn
