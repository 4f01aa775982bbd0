// ctnn/layers/pooling.hpp: MaxPool2D<PH, PW, Stride, Pad, Dilation> and
// AvgPool2D<PH, PW, Stride, Pad, Dilation, CountIncludePad>.
//
// Represents, for each window of PH x PW taps (stride Stride, default the pool size as in Keras;
// tap (ky, kx) of window (oy, ox) reads row oy*Stride + ky*Dilation - pad_top and column
// ox*Stride + kx*Dilation - pad_left, as ONNX's dilations) and each channel, the maximum
// (MaxPool2D) or mean (AvgPool2D) of the input.
// Requires: a rank-3 input; for valid padding or explicit pads, a (dilated) pool no larger than the
// padded input; every window must overlap the input (pads smaller than the window, as PyTorch asks).
// Output shape: Shape<OH, OW, C> (layers/spatial.hpp: Padding::valid, same, same_lower,
// pads(t, b, l, r)). No parameters.
// Padded positions are ignored by the max (as if -inf, like PyTorch and ONNX). The mean divides
// by the window's taps inside the input (Keras's behaviour, ONNX's count_include_pad = 0), or,
// with CountIncludePad = true, by all PH * PW taps, the padded zeros counted (ONNX's
// count_include_pad = 1, PyTorch's default).
// A NaN in a window makes its max NaN (as in PyTorch; a plain `v > max` would skip it).
// Backward: max routes each gradient to the first maximal input of its window (the first NaN for
// a NaN max; recomputed from the input, so nothing is stored); average spreads it evenly.
// Overlapping windows add up.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/layers/spatial.hpp"

namespace ctnn {
namespace detail {

enum class PoolOp { max, average };

// Whether each of the `out` windows along one axis (k taps, stride s, dilation d, `before`
// padded positions ahead of the input) has at least one tap inside the input of `in` positions.
constexpr bool windows_overlap_input(std::size_t in, std::size_t k, std::size_t s, std::size_t d,
                                     std::size_t before, std::size_t out) {
  for (std::size_t o = 0; o < out; ++o) {
    bool any = false;
    for (std::size_t t = 0; t < k && !any; ++t) {
      const std::size_t pos = o * s + t * d;  // in padded coordinates
      any = pos >= before && pos - before < in;
    }
    if (!any) return false;
  }
  return true;
}

template <PoolOp Op, std::size_t PH, std::size_t PW, std::size_t Stride, Padding Pad,
          std::size_t Dilation = 1, bool CountIncludePad = false>
struct Pool2D {
  static_assert(PH >= 1 && PW >= 1, "A pooling window must be at least 1x1.");
  static_assert(Dilation >= 1, "A pooling layer's dilation must be at least 1.");
  static constexpr std::size_t S = Stride == 0 ? PH : Stride;

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "MaxPool2D/AvgPool2D need an image input of rank 3 (height, width, channels) "
                  "(the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    using geom = Window2D<H, W, C, PH, PW, S, Pad, Dilation>;
    static_assert(In::rank != 3 || geom::fits,
                  "The pooling window is larger than its input with valid padding (the shapes "
                  "are in bind<...> above).");
    static_assert(In::rank != 3 || !geom::fits ||
                      (windows_overlap_input(H, PH, S, Dilation, geom::pad_top, geom::oh) &&
                       windows_overlap_input(W, PW, S, Dilation, geom::pad_left, geom::ow)),
                  "A pooling window lies entirely in the padding: make each explicit pad smaller "
                  "than the (dilated) pool (the shapes are in bind<...> above).");
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = Op == PoolOp::max ? "MaxPool2D" : "AvgPool2D";
    static constexpr LayerKind kind =
        Op == PoolOp::max ? LayerKind::max_pool2d : LayerKind::avg_pool2d;
    // Unchanged text for dilation 1 without count_include_pad (older model files and exports).
    static std::string config() {
      return window_config(PH, PW, S, Pad, Dilation) +
             (CountIncludePad ? " count_include_pad" : "");
    }
    static std::string spec() {
      std::string s = std::string("ctnn::") + std::string(name) + "<" + std::to_string(PH) + ", " +
                      std::to_string(PW) + ", " + std::to_string(S) + ", " + padding_spec(Pad);
      if (Dilation != 1 || CountIncludePad) s += ", " + std::to_string(Dilation);
      if (CountIncludePad) s += ", true";
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    // Calls f(input offset) for each real input position of window (oy, ox), channel 0.
    template <class F>
    static void for_window(std::size_t oy, std::size_t ox, F&& f) {
      for (std::size_t ky = 0; ky < PH; ++ky) {
        const std::ptrdiff_t iy =
            std::ptrdiff_t(oy * S + ky * Dilation) - std::ptrdiff_t(geom::pad_top);
        if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
        for (std::size_t kx = 0; kx < PW; ++kx) {
          const std::ptrdiff_t ix =
              std::ptrdiff_t(ox * S + kx * Dilation) - std::ptrdiff_t(geom::pad_left);
          if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
          f((std::size_t(iy) * W + std::size_t(ix)) * C);
        }
      }
    }

    // The mean's divisor for a window with `count` taps in the input.
    static constexpr std::size_t divisor(std::size_t count) {
      return CountIncludePad ? PH * PW : count;
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* ys = y + s * output_shape::size;
        for (std::size_t oy = 0; oy < geom::oh; ++oy)
          for (std::size_t ox = 0; ox < geom::ow; ++ox) {
            T* out = ys + (oy * geom::ow + ox) * C;
            for (std::size_t c = 0; c < C; ++c) {
              T acc = T(0);
              std::size_t count = 0;
              for_window(oy, ox, [&](std::size_t off) {
                const T v = xs[off + c];
                // v != v: a NaN wins and stays (a NaN acc is never replaced), as in PyTorch.
                if constexpr (Op == PoolOp::max) acc = (count == 0 || v > acc || v != v) ? v : acc;
                else acc += v;
                ++count;
              });
              out[c] = Op == PoolOp::max ? acc : acc / T(divisor(count));
            }
          }
      }, n * In::size >= kParallelWork);
    }

    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* dxs = dx + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) dxs[i] = T(0);
        for (std::size_t oy = 0; oy < geom::oh; ++oy)
          for (std::size_t ox = 0; ox < geom::ow; ++ox) {
            const std::size_t o = (s * geom::oh * geom::ow + oy * geom::ow + ox) * C;
            for (std::size_t c = 0; c < C; ++c) {
              if constexpr (Op == PoolOp::max) {
                bool done = false;
                for_window(oy, ox, [&](std::size_t off) {
                  const T v = xs[off + c], m = y[o + c];
                  if (!done && (v == m || (v != v && m != m))) {  // a NaN max: the first NaN
                    dxs[off + c] += dy[o + c];
                    done = true;
                  }
                });
              } else {
                std::size_t count = 0;
                for_window(oy, ox, [&](std::size_t) { ++count; });
                const T g = dy[o + c] / T(divisor(count));
                for_window(oy, ox, [&](std::size_t off) { dxs[off + c] += g; });
              }
            }
          }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace detail

// Stride 0 means the pool size (Keras's default).
template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid,
          std::size_t Dilation = 1>
using MaxPool2D = detail::Pool2D<detail::PoolOp::max, PH, PW, Stride, Pad, Dilation>;

template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid,
          std::size_t Dilation = 1, bool CountIncludePad = false>
using AvgPool2D = detail::Pool2D<detail::PoolOp::average, PH, PW, Stride, Pad, Dilation,
                                 CountIncludePad>;

}  // namespace ctnn
