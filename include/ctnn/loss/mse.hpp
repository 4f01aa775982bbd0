// ctnn/loss/mse.hpp: MeanSquaredError.
//
// Represents, per sample, the mean over its outputs of (y - t)^2 (Keras's reduction).
// Targets: vectors of width values. No accuracy (regression).
#pragma once
#include "ctnn/kernels/loss.hpp"
#include "ctnn/loss/loss.hpp"

namespace ctnn {

struct MeanSquaredError {
  static constexpr std::string_view name = "mean_squared_error";
  static constexpr bool uses_labels = false;
  static constexpr Metric metric = Metric::none;

  template <class T>
  double value(const T* y, Targets<T> t, std::size_t n, std::size_t width) const {
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i) {
      const double e = double(y[i]) - double(t.values[i]);
      sum += e * e;
    }
    return sum / double(width);
  }

  template <class T>
  double backward(const T* y, Targets<T> t, std::size_t n, std::size_t width, T* dy) const {
    kernels::scaled_difference(n * width, y, t.values, T(2) / (T(n) * T(width)), dy);
    return value(y, t, n, width);
  }
};

using MSE = MeanSquaredError;

}  // namespace ctnn
