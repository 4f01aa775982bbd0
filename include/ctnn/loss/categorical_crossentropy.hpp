// ctnn/loss/categorical_crossentropy.hpp: CategoricalCrossEntropy.
//
// Represents, per sample, -sum_j t[j] log(p[j]) for probabilities p (a Softmax output) and target
// distributions t (one-hot or soft labels), with p clipped to [1e-7, 1 - 1e-7] as Keras does.
// Targets: vectors of width values. After a Softmax, training uses backward_from_logits:
// d(mean loss)/dlogits = (p - t) / n (exact when each target row sums to 1).
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/kernels/loss.hpp"
#include "ctnn/loss/loss.hpp"

namespace ctnn {

struct CategoricalCrossEntropy {
  static constexpr std::string_view name = "categorical_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::categorical;

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i)
      if (t.values[i] != T(0)) sum -= double(t.values[i]) * std::log(double(detail::clip_probability(p[i])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      dp[i] = c == p[i] ? -t.values[i] / (c * T(n)) : T(0);
    }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    kernels::scaled_difference(n * width, p, t.values, T(1) / T(n), dz);
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
