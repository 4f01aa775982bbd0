// ctnn/layers/spatial.hpp: output sizes and padding of sliding-window layers (Conv2D, pooling),
// with Keras's (TensorFlow's) conventions.
#pragma once
#include <cstddef>
#include <string>

namespace ctnn {

// valid: windows lie inside the input. same: the input is zero-padded so the output has
// ceil(in / stride) positions; an odd total pad puts the extra row/column after (bottom/right).
enum class Padding { valid, same };

namespace detail {
// "3x3 stride 1 valid": a window's settings, for a model's topology string (io/model_file.hpp).
// "ctnn::Padding::same", for the C++ text of a layer (deploy/export.hpp).
inline std::string padding_spec(Padding pad) {
  return pad == Padding::same ? "ctnn::Padding::same" : "ctnn::Padding::valid";
}
inline std::string window_config(std::size_t kh, std::size_t kw, std::size_t stride, Padding pad) {
  return std::to_string(kh) + "x" + std::to_string(kw) + " stride " + std::to_string(stride) +
         (pad == Padding::same ? " same" : " valid");
}
}  // namespace detail

namespace detail {

// Number of window positions along one axis. A window larger than a valid input, or a stride or
// window of 0, yields 1 here (the layer's static_assert reports the real problem) so no size
// underflows or divides by zero into a cascade of further errors.
constexpr std::size_t window_out(std::size_t in, std::size_t k, std::size_t stride, Padding p) {
  if (stride == 0 || k == 0) return 1;
  if (p == Padding::same) return (in + stride - 1) / stride;
  return k <= in ? (in - k) / stride + 1 : 1;
}

// Zero rows/columns added before the input along one axis.
constexpr std::size_t window_pad_before(std::size_t in, std::size_t k, std::size_t stride,
                                        Padding p) {
  if (p == Padding::valid) return 0;
  const std::size_t out = window_out(in, k, stride, p);
  const std::size_t needed = (out - 1) * stride + k;
  return needed > in ? (needed - in) / 2 : 0;
}

// Geometry of a 2-D window sweep over an H x W x C input.
template <std::size_t H, std::size_t W, std::size_t C, std::size_t KH, std::size_t KW,
          std::size_t S, Padding P>
struct Window2D {
  static constexpr std::size_t oh = window_out(H, KH, S, P), ow = window_out(W, KW, S, P);
  static constexpr std::size_t pad_top = window_pad_before(H, KH, S, P);
  static constexpr std::size_t pad_left = window_pad_before(W, KW, S, P);
  static constexpr bool fits = P == Padding::same || (KH <= H && KW <= W);
};

}  // namespace detail
}  // namespace ctnn
