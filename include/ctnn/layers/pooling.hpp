// ctnn/layers/pooling.hpp: MaxPool2D and AvgPool2D.
//
// Represents, for each window of PH x PW positions (stride Stride, default the pool size as in
// Keras) and each channel, the maximum (MaxPool2D) or mean (AvgPool2D) of the input.
// Requires: a rank-3 input; for valid padding, a pool no larger than the input.
// Output shape: Shape<OH, OW, C>. No parameters.
// With same padding, padded positions are ignored: a max over the real inputs, a mean over the
// real inputs of the window (Keras's behaviour).
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

template <PoolOp Op, std::size_t PH, std::size_t PW, std::size_t Stride, Padding Pad>
struct Pool2D {
  static_assert(PH >= 1 && PW >= 1, "A pooling window must be at least 1x1.");
  static constexpr std::size_t S = Stride == 0 ? PH : Stride;

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "MaxPool2D/AvgPool2D need an image input of rank 3 (height, width, channels) "
                  "(the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    using geom = Window2D<H, W, C, PH, PW, S, Pad>;
    static_assert(In::rank != 3 || geom::fits,
                  "The pooling window is larger than its input with valid padding (the shapes "
                  "are in bind<...> above).");
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = Op == PoolOp::max ? "MaxPool2D" : "AvgPool2D";
    static constexpr LayerKind kind =
        Op == PoolOp::max ? LayerKind::max_pool2d : LayerKind::avg_pool2d;
    static std::string config() { return window_config(PH, PW, S, Pad); }
    static std::string spec() {
      return std::string("ctnn::") + std::string(name) + "<" + std::to_string(PH) + ", " +
             std::to_string(PW) + ", " + std::to_string(S) + ", " + padding_spec(Pad) + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    // Calls f(input offset) for each real input position of window (oy, ox), channel 0.
    template <class F>
    static void for_window(std::size_t oy, std::size_t ox, F&& f) {
      for (std::size_t ky = 0; ky < PH; ++ky) {
        const std::ptrdiff_t iy = std::ptrdiff_t(oy * S + ky) - std::ptrdiff_t(geom::pad_top);
        if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
        for (std::size_t kx = 0; kx < PW; ++kx) {
          const std::ptrdiff_t ix = std::ptrdiff_t(ox * S + kx) - std::ptrdiff_t(geom::pad_left);
          if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
          f((std::size_t(iy) * W + std::size_t(ix)) * C);
        }
      }
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
              out[c] = Op == PoolOp::max ? acc : acc / T(count);
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
                const T g = dy[o + c] / T(count);
                for_window(oy, ox, [&](std::size_t off) { dxs[off + c] += g; });
              }
            }
          }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace detail

template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid>
using MaxPool2D = detail::Pool2D<detail::PoolOp::max, PH, PW, Stride, Pad>;

template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid>
using AvgPool2D = detail::Pool2D<detail::PoolOp::average, PH, PW, Stride, Pad>;

}  // namespace ctnn
