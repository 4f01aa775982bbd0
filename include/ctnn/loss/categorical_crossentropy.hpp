// ctnn/loss/categorical_crossentropy.hpp: CategoricalCrossEntropy.
//
// Represents, per sample, -sum_j t[j] log(p[j]) for probabilities p (a Softmax output) and target
// distributions t (one-hot or soft labels), with p clipped to [1e-7, 1 - 1e-7] as Keras does.
// Targets: vectors of width values. After a Softmax, training uses backward_from_logits:
// d(mean loss)/dlogits = (p - t) / n (exact when each target row sums to 1).
// Label smoothing (Keras's label_smoothing = s in [0, 1], default 0): the targets become
// t' = t (1 - s) + s / width before all of the above.
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/kernels/loss.hpp"
#include "ctnn/loss/loss.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

struct CategoricalCrossEntropy {
  static constexpr std::string_view name = "categorical_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::categorical;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("categorical_crossentropy", "label_smoothing", label_smoothing,
                                 0, false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    double sum = 0;
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n * width; ++i)
        if (t.values[i] != T(0)) sum -= double(t.values[i]) * std::log(double(detail::clip_probability(p[i])));
      return sum;
    }
    const double s = label_smoothing, k = s / double(width);
    for (std::size_t i = 0; i < n * width; ++i)
      sum -= (double(t.values[i]) * (1 - s) + k) * std::log(double(detail::clip_probability(p[i])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      const T target = label_smoothing == 0 ? t.values[i] : t.values[i] * (T(1) - s) + k;
      dp[i] = c == p[i] ? -target / (c * T(n)) : T(0);
    }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    kernels::scaled_difference(n * width, p, t.values, T(1) / T(n), dz);
    if (label_smoothing != 0) {  // (p - t') / n = (p - t) / n + s (t - 1 / width) / n
      const T s = T(label_smoothing), k = s / T(width), inv_n = T(1) / T(n);
      for (std::size_t i = 0; i < n * width; ++i) dz[i] += (s * t.values[i] - k) * inv_n;
    }
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
