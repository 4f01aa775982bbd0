// ctnn/loss/sparse_categorical_crossentropy.hpp: SparseCategoricalCrossEntropy.
//
// Represents, per sample, -log(p[label]) for probabilities p (the output of a Softmax), with p
// clipped to [1e-7, 1 - 1e-7] as Keras does. Targets: class labels in [0, width).
// After a Softmax, training uses backward_from_logits: d(mean loss)/dlogits = (p - onehot) / n.
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/kernels/loss.hpp"
#include "ctnn/loss/loss.hpp"

namespace ctnn {

struct SparseCategoricalCrossEntropy {
  static constexpr std::string_view name = "sparse_categorical_crossentropy";
  static constexpr bool uses_labels = true;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::sparse_categorical;

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum -= std::log(double(detail::clip_probability(p[i * width + static_cast<std::size_t>(t.labels[i])])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    for (std::size_t i = 0; i < n * width; ++i) dp[i] = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = i * width + std::size_t(t.labels[i]);
      const T c = detail::clip_probability(p[k]);
      dp[k] = c == p[k] ? T(-1) / (c * T(n)) : T(0);  // the clip's derivative is 0 outside
    }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    const T inv_n = T(1) / T(n);
    kernels::scale(n * width, p, inv_n, dz);
    for (std::size_t i = 0; i < n; ++i) dz[i * width + std::size_t(t.labels[i])] -= inv_n;
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
