// ctnn/loss/binary_crossentropy.hpp: BinaryCrossEntropy.
//
// Represents, per sample, the mean over its outputs of -(t log p + (1 - t) log(1 - p)) for
// probabilities p (a Sigmoid output) and targets t in [0, 1], p clipped to [1e-7, 1 - 1e-7] as
// Keras does. Targets: vectors of width values. Accuracy: binary, threshold 0.5.
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/loss/loss.hpp"

namespace ctnn {

struct BinaryCrossEntropy {
  static constexpr std::string_view name = "binary_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr Metric metric = Metric::binary;

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i) {
      const double c = double(detail::clip_probability(p[i])), y = double(t.values[i]);
      sum -= y * std::log(c) + (1 - y) * std::log(1 - c);
    }
    return sum / double(width);
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    const T denom = T(n) * T(width);
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      dp[i] = c == p[i] ? (c - t.values[i]) / (c * (T(1) - c) * denom) : T(0);
    }
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
