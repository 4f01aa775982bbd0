// ctnn/layers/spatial.hpp: output sizes and padding of sliding-window layers (convolutions,
// pooling), with Keras's (TensorFlow's) valid/same and PyTorch's/ONNX's explicit per-side pads.
#pragma once
#include <cstddef>
#include <string>

namespace ctnn {

// How a sliding window meets the input's border; a value usable as a template argument:
//   Padding::valid                windows lie inside the input.
//   Padding::same                 zero-padded so the output has ceil(in / stride) positions; an
//                                 odd total pad puts the extra row/column after (Keras,
//                                 TensorFlow, ONNX SAME_UPPER).
//   Padding::same_lower           the same sizes with the extra row/column before (ONNX SAME_LOWER).
//   Padding::pads(t, b, l, r)     exactly t rows above, b below, l columns left, r right
//                                 (PyTorch's padding=p is pads(p, p, p, p); ONNX's pads
//                                 [t, l, b, r] is pads(t, b, l, r)). 1-D layers use l and r.
//   Padding::causal               1-D layers only (Conv1D): Dilation*(K-1) zeros before the
//                                 sequence, none after, so output t sees inputs <= t (Keras).
struct Padding {
  enum class Mode { valid, same, same_lower, explicit_pads, causal };
  Mode mode = Mode::valid;
  std::size_t top = 0, bottom = 0, left = 0, right = 0;

  static const Padding valid, same, same_lower;
  static const Padding causal;
  static constexpr Padding pads(std::size_t t, std::size_t b, std::size_t l, std::size_t r) {
    return Padding{Mode::explicit_pads, t, b, l, r};
  }
  friend constexpr bool operator==(const Padding&, const Padding&) = default;
};
inline constexpr Padding Padding::valid{Padding::Mode::valid};
inline constexpr Padding Padding::same{Padding::Mode::same};
inline constexpr Padding Padding::same_lower{Padding::Mode::same_lower};
inline constexpr Padding Padding::causal{Padding::Mode::causal};

namespace detail {
// "ctnn::Padding::same", for the C++ text of a layer (deploy/export.hpp).
inline std::string padding_spec(Padding pad) {
  switch (pad.mode) {
    case Padding::Mode::same: return "ctnn::Padding::same";
    case Padding::Mode::same_lower: return "ctnn::Padding::same_lower";
    case Padding::Mode::explicit_pads:
      return "ctnn::Padding::pads(" + std::to_string(pad.top) + ", " + std::to_string(pad.bottom) +
             ", " + std::to_string(pad.left) + ", " + std::to_string(pad.right) + ")";
    case Padding::Mode::causal: return "ctnn::Padding::causal";
    case Padding::Mode::valid: break;
  }
  return "ctnn::Padding::valid";
}
// "valid", "same", "same_lower" or "pads 1,0,1,0" (top, bottom, left, right).
inline std::string padding_config(Padding pad) {
  switch (pad.mode) {
    case Padding::Mode::same: return "same";
    case Padding::Mode::same_lower: return "same_lower";
    case Padding::Mode::explicit_pads:
      return "pads " + std::to_string(pad.top) + "," + std::to_string(pad.bottom) + "," +
             std::to_string(pad.left) + "," + std::to_string(pad.right);
    case Padding::Mode::causal: return "causal";
    case Padding::Mode::valid: break;
  }
  return "valid";
}
// "3x3 stride 1 valid": a window's settings, for a model's topology string (io/model_file.hpp).
// A dilation other than 1 is appended (" dilation 2"), so older topology strings are unchanged.
inline std::string window_config(std::size_t kh, std::size_t kw, std::size_t stride, Padding pad,
                                 std::size_t dilation = 1) {
  std::string s = std::to_string(kh) + "x" + std::to_string(kw) + " stride " +
                  std::to_string(stride) + " " + padding_config(pad);
  if (dilation != 1) s += " dilation " + std::to_string(dilation);
  return s;
}

// The extent a window of k taps with dilation d covers: d * (k - 1) + 1.
constexpr std::size_t dilated_extent(std::size_t k, std::size_t d) {
  return k == 0 || d == 0 ? 0 : d * (k - 1) + 1;
}

// Pads along one axis: before and after are the explicit pads (used only by explicit_pads).
// Number of window positions along one axis of `in` values, for a window of k taps with stride s
// and dilation d. A window larger than its padded input, or a stride, window or dilation of 0,
// yields 1 here (the layer's static_assert reports the real problem) so no size underflows or
// divides by zero into a cascade of further errors.
constexpr std::size_t window_out(std::size_t in, std::size_t k, std::size_t stride, Padding p,
                                 std::size_t before = 0, std::size_t after = 0,
                                 std::size_t dilation = 1) {
  if (stride == 0 || k == 0 || dilation == 0) return 1;
  const std::size_t ext = dilated_extent(k, dilation);
  if (p.mode == Padding::Mode::same || p.mode == Padding::Mode::same_lower)
    return (in + stride - 1) / stride;
  const std::size_t padded = p.mode == Padding::Mode::explicit_pads ? in + before + after : in;
  return ext <= padded ? (padded - ext) / stride + 1 : 1;
}

// Zero rows/columns added before the input along one axis.
constexpr std::size_t window_pad_before(std::size_t in, std::size_t k, std::size_t stride,
                                        Padding p, std::size_t before = 0,
                                        std::size_t dilation = 1) {
  if (p.mode == Padding::Mode::valid) return 0;
  if (p.mode == Padding::Mode::explicit_pads) return before;
  const std::size_t out = window_out(in, k, stride, p, 0, 0, dilation);
  const std::size_t needed = (out - 1) * stride + dilated_extent(k, dilation);
  const std::size_t total = needed > in ? needed - in : 0;
  return p.mode == Padding::Mode::same ? total / 2 : (total + 1) / 2;
}

// Geometry of a 2-D window sweep over an H x W x C input: KH x KW taps, stride S in both
// directions, dilation D in both directions (tap ky reads row oy*S + ky*D - pad_top).
template <std::size_t H, std::size_t W, std::size_t C, std::size_t KH, std::size_t KW,
          std::size_t S, Padding P, std::size_t D = 1>
struct Window2D {
  static constexpr std::size_t oh = window_out(H, KH, S, P, P.top, P.bottom, D),
                               ow = window_out(W, KW, S, P, P.left, P.right, D);
  static constexpr std::size_t pad_top = window_pad_before(H, KH, S, P, P.top, D);
  static constexpr std::size_t pad_left = window_pad_before(W, KW, S, P, P.left, D);
  static constexpr std::size_t dilation = D;
  // Every window fits its (padded) input: same always does; valid and explicit pads need the
  // dilated window to fit.
  static constexpr bool fits =
      P.mode == Padding::Mode::same || P.mode == Padding::Mode::same_lower ||
      (dilated_extent(KH, D) <=
           H + (P.mode == Padding::Mode::explicit_pads ? P.top + P.bottom : 0) &&
       dilated_extent(KW, D) <= W + (P.mode == Padding::Mode::explicit_pads ? P.left + P.right : 0));

  // Calls f(tap, input pixel) for each tap of window (oy, ox) that lies inside the input, taps in
  // row-major order (tap = ky * KW + kx, pixel = iy * W + ix).
  template <class F>
  static void for_taps(std::size_t oy, std::size_t ox, F&& f) {
    for (std::size_t ky = 0; ky < KH; ++ky) {
      const std::ptrdiff_t iy = std::ptrdiff_t(oy * S + ky * D) - std::ptrdiff_t(pad_top);
      if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
      for (std::size_t kx = 0; kx < KW; ++kx) {
        const std::ptrdiff_t ix = std::ptrdiff_t(ox * S + kx * D) - std::ptrdiff_t(pad_left);
        if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
        f(ky * KW + kx, std::size_t(iy) * W + std::size_t(ix));
      }
    }
  }
};

}  // namespace detail
}  // namespace ctnn
