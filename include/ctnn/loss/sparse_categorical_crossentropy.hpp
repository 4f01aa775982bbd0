// ctnn/loss/sparse_categorical_crossentropy.hpp: SparseCategoricalCrossEntropy.
//
// Represents, per sample, -log(p[label]) for probabilities p (the output of a Softmax), with p
// clipped to [1e-7, 1 - 1e-7] as Keras does. Targets: class labels in [0, width).
// After a Softmax, training uses backward_from_logits: d(mean loss)/dlogits = (p - onehot) / n.
// Label smoothing (label_smoothing = s in [0, 1], default 0) is CategoricalCrossEntropy's on the
// one-hot label: t'[j] = (1 - s) [j == label] + s / width (Keras's sparse loss has no such option;
// this gives what its categorical loss gives on one-hot targets).
#pragma once
#include <algorithm>
#include <cmath>

#include "ctnn/kernels/loss.hpp"
#include "ctnn/loss/loss.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

struct SparseCategoricalCrossEntropy {
  static constexpr std::string_view name = "sparse_categorical_crossentropy";
  static constexpr bool uses_labels = true;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::sparse_categorical;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("sparse_categorical_crossentropy", "label_smoothing",
                                 label_smoothing, 0, false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    double sum = 0;
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n; ++i) sum -= std::log(double(detail::clip_probability(p[i * width + static_cast<std::size_t>(t.labels[i])])));
      return sum;
    }
    const double s = label_smoothing, k = s / double(width);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < width; ++j)
        sum -= ((j == std::size_t(t.labels[i]) ? 1 - s : 0.0) + k) *
               std::log(double(detail::clip_probability(p[i * width + j])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n * width; ++i) dp[i] = T(0);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = i * width + std::size_t(t.labels[i]);
        const T c = detail::clip_probability(p[k]);
        dp[k] = c == p[k] ? T(-1) / (c * T(n)) : T(0);  // the clip's derivative is 0 outside
      }
      return value(p, t, n, width);
    }
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < width; ++j) {
        const T pij = p[i * width + j], c = detail::clip_probability(pij);
        const T target = (j == std::size_t(t.labels[i]) ? T(1) - s : T(0)) + k;
        dp[i * width + j] = c == pij ? -target / (c * T(n)) : T(0);
      }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    const T inv_n = T(1) / T(n);
    kernels::scale(n * width, p, inv_n, dz);
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n; ++i) dz[i * width + std::size_t(t.labels[i])] -= inv_n;
      return value(p, t, n, width);
    }
    // (p - t') / n with t' = (1 - s) onehot + s / width.
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n * width; ++i) dz[i] -= k * inv_n;
    for (std::size_t i = 0; i < n; ++i) dz[i * width + std::size_t(t.labels[i])] -= (T(1) - s) * inv_n;
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
