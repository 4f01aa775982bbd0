// ctnn/loss/binary_crossentropy.hpp: BinaryCrossEntropy.
//
// Represents, per sample, the mean over its outputs of -(t log p + (1 - t) log(1 - p)) for
// probabilities p (a Sigmoid output) and targets t in [0, 1], p clipped to [1e-7, 1 - 1e-7] as
// Keras does. Targets: vectors of width values. Accuracy: binary, threshold 0.5.
// Label smoothing (Keras's label_smoothing = s in [0, 1], default 0): the targets become
// t' = t (1 - s) + s / 2 before the above (the accuracy still reads t).
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/loss/loss.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

struct BinaryCrossEntropy {
  static constexpr std::string_view name = "binary_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr Metric metric = Metric::binary;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("binary_crossentropy", "label_smoothing", label_smoothing, 0,
                                 false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    const double s = label_smoothing;
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i) {
      const double c = double(detail::clip_probability(p[i]));
      const double y = s == 0 ? double(t.values[i]) : double(t.values[i]) * (1 - s) + 0.5 * s;
      sum -= y * std::log(c) + (1 - y) * std::log(1 - c);
    }
    return sum / double(width);
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    const T denom = T(n) * T(width), s = T(label_smoothing);
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      const T y = label_smoothing == 0 ? t.values[i] : t.values[i] * (T(1) - s) + T(0.5) * s;
      dp[i] = c == p[i] ? (c - y) / (c * (T(1) - c) * denom) : T(0);
    }
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
