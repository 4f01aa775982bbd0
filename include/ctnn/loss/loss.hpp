// ctnn/loss/loss.hpp: what a loss is, and the targets it reads.
//
// A loss compares a batch of model outputs y [n x width] with targets and reports the SUM of
// the per-sample losses (fit divides by the sample count for the epoch mean). Its backward writes
// d(mean loss over the batch) / dy, the gradient Keras's default reduction gives. Every loss
// states which targets it reads (class labels or target vectors) and which accuracy goes with it.
#pragma once
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ctnn {

// A batch of targets: n labels, or n rows of `width` values. Unused pointers are null.
template <class T>
struct Targets {
  const std::int32_t* labels = nullptr;
  const T* values = nullptr;
};

// The accuracy that accompanies a loss (Keras resolves "accuracy" the same way).
enum class Metric {
  sparse_categorical,  // argmax(y) == label
  categorical,         // argmax(y) == argmax(target)
  binary,              // (y > 0.5) == (target > 0.5), averaged over outputs
  none,                // regression: no accuracy
};

// Clipping of probabilities before a log, as Keras does (its backend epsilon).
inline constexpr double kProbabilityEpsilon = 1e-7;

template <class L>
concept Loss = requires(const L& l, const float* y, Targets<float> t, std::size_t n, float* dy) {
  { L::name } -> std::convertible_to<std::string_view>;
  { L::uses_labels } -> std::convertible_to<bool>;
  { L::metric } -> std::convertible_to<Metric>;
  { l.value(y, t, n, n) } -> std::convertible_to<double>;
  { l.backward(y, t, n, n, dy) } -> std::convertible_to<double>;
};

// A cross-entropy loss that can hand the gradient with respect to the logits of a preceding
// Softmax straight back (p - target): one cheap pass instead of the loss gradient followed by the
// softmax Jacobian, and no division by small probabilities.
template <class L>
concept FusesSoftmax = Loss<L> && requires(const L& l, const float* p, Targets<float> t,
                                           std::size_t n, float* d) {
  { l.backward_from_logits(p, t, n, n, d) } -> std::convertible_to<double>;
};

namespace detail {

// A probability clipped to [1e-7, 1 - 1e-7] before its log.
template <class T>
T clip_probability(T p) {
  return std::clamp(p, T(kProbabilityEpsilon), T(1 - kProbabilityEpsilon));
}

template <class T>
std::size_t argmax(const T* row, std::size_t width) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < width; ++j)
    if (row[j] > row[best]) best = j;
  return best;
}

// Sum over the batch of per-sample accuracy (1 or 0; for binary, the fraction of outputs right).
template <class T>
double correct(Metric m, const T* y, Targets<T> t, std::size_t n, std::size_t width) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T* row = y + i * width;
    switch (m) {
      case Metric::sparse_categorical:
        sum += argmax(row, width) == static_cast<std::size_t>(t.labels[i]) ? 1.0 : 0.0;
        break;
      case Metric::categorical:
        sum += argmax(row, width) == argmax(t.values + i * width, width) ? 1.0 : 0.0;
        break;
      case Metric::binary: {
        std::size_t ok = 0;
        for (std::size_t j = 0; j < width; ++j)
          ok += (row[j] > T(0.5)) == (t.values[i * width + j] > T(0.5));
        sum += double(ok) / double(width);
        break;
      }
      case Metric::none:
        break;
    }
  }
  return sum;
}

}  // namespace detail
}  // namespace ctnn
