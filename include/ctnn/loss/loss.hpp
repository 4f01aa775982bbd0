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
template <class L>
constexpr bool needs_class_scores() {
  if constexpr (requires { { L::needs_class_scores } -> std::convertible_to<bool>; })
    return L::needs_class_scores;
  else
    return false;
}
}  // namespace detail

// Whether loss L can read a model output of shape Out (one sample), checked where a loss meets a
// model (fit, Trainer, evaluate, report). A cross-entropy over classes (it declares
// `needs_class_scores = true`) reads each sample's outputs as ONE distribution over classes, so it
// needs a flat vector of at least two class scores: over a feature map it would take every map
// value for a class and train to nonsense (Keras refuses one label per sample against such an output too). Losses that read each
// output on its own (mean squared error, binary cross-entropy) accept any shape, as in Keras.
template <class L, class Out>
struct LossReadsOutput {
  static constexpr bool classes = detail::needs_class_scores<L>();
  static_assert(!classes || Out::rank == 1,
                "A cross-entropy over classes (sparse or categorical) needs a flat (rank-1) model "
                "output with one score per class: end the model with Flatten, Dense<classes> and "
                "Softmax (the loss and the output Shape are in this instantiation).");
  static_assert(!classes || Out::rank != 1 || Out::size >= 2,
                "A cross-entropy over classes (sparse or categorical) needs at least 2 outputs, "
                "one per class: end the model with Dense<classes> and Softmax, or use "
                "BinaryCrossEntropy with one Sigmoid output for a yes/no target.");
  static constexpr bool value = true;
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
