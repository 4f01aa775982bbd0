// ctnn/layers/bounded_relu.hpp: BoundedReLU<MaxValue, NegativeSlope = 0, Threshold = 0>, Keras's
// ReLU(max_value, negative_slope, threshold), and ReLU6 = BoundedReLU<6> (MobileNet's).
//
// Represents y = MaxValue                           where x >= MaxValue,
//                x                                  where Threshold <= x < MaxValue,
//                NegativeSlope * (x - Threshold)    otherwise.
// Requires (as Keras): MaxValue, NegativeSlope and Threshold >= 0, and Threshold < MaxValue.
// (Keras's max_value=None is the plain ReLU or LeakyReLU layer.) Output shape: the input's. No
// parameters. Derivative at the kinks as PyTorch's: 0 at MaxValue, NegativeSlope at Threshold
// (ReLU6: 0 at 0 and at 6); a NaN input gives NaN and passes dy back.
// ReLU6 right after Dense or Conv2D is fused into their GEMM's store, as ReLU is (other settings
// run as a pass of their own).
#pragma once
#include <string>

#include "ctnn/core/real.hpp"
#include "ctnn/kernels/activations.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

template <Real MaxValue, Real NegativeSlope = 0.0, Real Threshold = 0.0>
struct BoundedReLU {
  static_assert(MaxValue.value() >= 0.0, "BoundedReLU's max value must be >= 0 (as in Keras).");
  static_assert(NegativeSlope.value() >= 0.0,
                "BoundedReLU's negative slope must be >= 0 (as in Keras).");
  static_assert(Threshold.value() >= 0.0, "BoundedReLU's threshold must be >= 0 (as in Keras).");
  static_assert(Threshold.value() < MaxValue.value(),
                "BoundedReLU's threshold must be below its max value, or every output is the max.");

  static constexpr bool is_relu6 =
      MaxValue.micros == 6'000'000 && NegativeSlope.micros == 0 && Threshold.micros == 0;

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = is_relu6 ? "ReLU6" : "BoundedReLU";
    static constexpr LayerKind kind = LayerKind::bounded_relu;
    // ReLU6 after Dense or Conv2D runs in their GEMM's store. Its backward then reads the
    // clamped output as x, which selects the same pieces (y >= 6 iff x >= 6, y <= 0 iff x <= 0).
    static constexpr Epilogue epilogue = is_relu6 ? Epilogue::relu6 : Epilogue::none;
    static std::string config() {
      return "max_value " + std::to_string(MaxValue.value()) + " negative_slope " +
             std::to_string(NegativeSlope.value()) + " threshold " +
             std::to_string(Threshold.value());
    }
    static std::string spec() {
      if (is_relu6) return "ctnn::ReLU6";
      return "ctnn::BoundedReLU<" + std::to_string(MaxValue.value()) + ", " +
             std::to_string(NegativeSlope.value()) + ", " + std::to_string(Threshold.value()) +
             ">";
    }
    static constexpr T max_value = static_cast<T>(MaxValue.value());
    static constexpr T negative_slope = static_cast<T>(NegativeSlope.value());
    static constexpr T threshold = static_cast<T>(Threshold.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::bounded_relu_forward(n * In::size, x, y, max_value, negative_slope, threshold);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx)
        kernels::bounded_relu_backward(n * In::size, x, dy, dx, max_value, negative_slope,
                                       threshold);
    }
  };
};

// ReLU6 (MobileNet; Keras ReLU(max_value=6), PyTorch nn.ReLU6): y = min(max(x, 0), 6).
using ReLU6 = BoundedReLU<6.0>;

}  // namespace ctnn
