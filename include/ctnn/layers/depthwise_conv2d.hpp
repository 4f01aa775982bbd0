// ctnn/layers/depthwise_conv2d.hpp: DepthwiseConv2D<KH, KW, Stride, Padding, DepthMultiplier,
// Dilation, KernelInit, BiasInit>, a convolution of each channel on its own.
//
// Represents y[oy][ox][c*M + m] = b[c*M + m] + sum_{ky,kx} x[oy*S + ky*D - pt][ox*S + kx*D - pl][c]
// * W[ky][kx][c][m] over an H x W x C input (channels last), M = DepthMultiplier: Keras's
// DepthwiseConv2D with depth_multiplier M and dilation_rate D. Padding: valid, same, same_lower or
// explicit pads (layers/spatial.hpp).
// Requires: a rank-3 input; for valid padding, a dilated kernel no larger than the input.
// Output shape: Shape<OH, OW, C*M>. Parameters: W in Keras's [KH][KW][C][M] order, then b [C*M]:
// KH*KW*C*M + C*M. Init: KernelInit fills W, BiasInit b, with Keras's fans of that kernel shape,
// fan_in = KH*KW*C and fan_out = KH*KW*M; defaults Glorot uniform W and zero b.
//
// How: W's [C][M] block of a tap is one contiguous row of C*M weights, one per output channel,
// so every tap is a multiply-add along the output channels (kernels/depthwise.hpp, vectorized
// with Highway). With M > 1 each input pixel is first repeated into C*M channels (scratch), which
// makes the input row line up with the weights. Forward and input gradient run samples in
// parallel; the weight and bias gradients run channel blocks in parallel, each summed over
// samples and positions in order, so they do not depend on the thread count and need no
// per-sample copy.
#pragma once
#include <cstddef>
#include <string>
#include <utility>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/depthwise.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/layers/spatial.hpp"

namespace ctnn {
namespace detail {

// The depthwise computation over an H x W x C image, with or without a bias (SeparableConv2D's
// depthwise step has none).
template <class T, std::size_t H, std::size_t W, std::size_t C, std::size_t M, std::size_t KH,
          std::size_t KW, std::size_t Stride, Padding Pad, std::size_t Dilation, bool HasBias>
struct DepthwiseBody {
  using geom = Window2D<H, W, C, KH, KW, Stride, Pad, Dilation>;
  static constexpr std::size_t CM = C * M;
  static constexpr std::size_t in_size = H * W * C;
  static constexpr std::size_t positions = geom::oh * geom::ow;
  static constexpr std::size_t out_size = positions * CM;
  static constexpr std::size_t weights = KH * KW * CM;
  static constexpr std::size_t param_count = weights + (HasBias ? CM : 0);
  // The input repeated to C*M channels (M > 1 only), kept for the weight gradient; the backward
  // pass then reuses it for the repeated input gradient.
  static constexpr std::size_t scratch_per_sample = M > 1 ? H * W * CM : 0;
  // Channels per parallel chunk of the weight gradient: whole 64-byte lines, so two threads never
  // write the same line.
  static constexpr std::size_t kChannelBlock = 64 / sizeof(T);

  // Calls f(tap, input pixel) for each tap of window (oy, ox) that lies inside the input.
  template <class F>
  static void for_taps(std::size_t oy, std::size_t ox, F&& f) {
    geom::for_taps(oy, ox, std::forward<F>(f));
  }

  // The input of sample s as C*M channels per pixel: x itself when M = 1.
  static const T* repeated(const T* x, T* scratch, std::size_t s) {
    const T* xs = x + s * in_size;
    if constexpr (M == 1) {
      return xs;
    } else {
      T* r = scratch + s * scratch_per_sample;
      for (std::size_t i = 0; i < H * W * C; ++i)
        for (std::size_t m = 0; m < M; ++m) r[i * M + m] = xs[i];
      return r;
    }
  }

  static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                      kernels::Epilogue act) {
    parallel_for(n, [&](std::size_t s) {
      const T* xr = repeated(x, scratch, s);
      T* ys = y + s * out_size;
      for (std::size_t oy = 0; oy < geom::oh; ++oy)
        for (std::size_t ox = 0; ox < geom::ow; ++ox) {
          T* out = ys + (oy * geom::ow + ox) * CM;
          for (std::size_t j = 0; j < CM; ++j) out[j] = HasBias ? p[weights + j] : T(0);
          for_taps(oy, ox, [&](std::size_t tap, std::size_t pixel) {
            kernels::mul_add_row(CM, xr + pixel * CM, p + tap * CM, out);
          });
        }
      if (act == kernels::Epilogue::relu)  // v <= 0 is false for NaN, which stays
        for (std::size_t i = 0; i < out_size; ++i) ys[i] = ys[i] <= T(0) ? T(0) : ys[i];
    }, n * out_size * KH * KW >= kParallelWork);
  }

  // dy: n x out_size. Writes dp (weights, then the bias if any) and, unless null, dx.
  static void backward(const T* p, const T* x, const T* dy, T* dx, T* dp, std::size_t n,
                       T* scratch) {
    // For M = 1 the input is read where it is; for M > 1 the forward pass left it repeated in
    // scratch (forward always precedes backward).
    const auto xr = [&](std::size_t s) {
      return M == 1 ? x + s * in_size : scratch + s * scratch_per_sample;
    };
    const std::size_t blocks = (CM + kChannelBlock - 1) / kChannelBlock;
    parallel_for_range(blocks, [&](std::size_t b0, std::size_t b1) {
      const std::size_t j0 = b0 * kChannelBlock, j1 = b1 * kChannelBlock < CM ? b1 * kChannelBlock : CM;
      const std::size_t len = j1 - j0;
      for (std::size_t t = 0; t < KH * KW; ++t)
        for (std::size_t j = j0; j < j1; ++j) dp[t * CM + j] = T(0);
      if constexpr (HasBias)
        for (std::size_t j = j0; j < j1; ++j) dp[weights + j] = T(0);
      for (std::size_t s = 0; s < n; ++s) {
        const T* xs = xr(s);
        for (std::size_t pos = 0; pos < positions; ++pos) {
          const T* g = dy + s * out_size + pos * CM + j0;
          if constexpr (HasBias)
            for (std::size_t j = 0; j < len; ++j) dp[weights + j0 + j] += g[j];
          for_taps(pos / geom::ow, pos % geom::ow, [&](std::size_t tap, std::size_t pixel) {
            kernels::mul_add_row(len, xs + pixel * CM + j0, g, dp + tap * CM + j0);
          });
        }
      }
    }, n * out_size * KH * KW >= kParallelWork);
    if (!dx) return;
    parallel_for(n, [&](std::size_t s) {
      // The gradient of the repeated input (over the repeated input itself, no longer needed),
      // then summed over the M copies of each channel.
      T* dxr = M == 1 ? dx + s * in_size : scratch + s * scratch_per_sample;
      for (std::size_t i = 0; i < H * W * CM; ++i) dxr[i] = T(0);
      const T* dys = dy + s * out_size;
      for (std::size_t pos = 0; pos < positions; ++pos)
        for_taps(pos / geom::ow, pos % geom::ow, [&](std::size_t tap, std::size_t pixel) {
          kernels::mul_add_row(CM, p + tap * CM, dys + pos * CM, dxr + pixel * CM);
        });
      if constexpr (M > 1) {
        T* dxs = dx + s * in_size;
        for (std::size_t i = 0; i < H * W * C; ++i) {
          T sum = T(0);
          for (std::size_t m = 0; m < M; ++m) sum += dxr[i * M + m];
          dxs[i] = sum;
        }
      }
    }, n * out_size * KH * KW >= kParallelWork);
  }
};

}  // namespace detail

template <std::size_t KH, std::size_t KW, std::size_t Stride = 1, Padding Pad = Padding::valid,
          std::size_t DepthMultiplier = 1, std::size_t Dilation = 1,
          class KernelInit = init::GlorotUniform, class BiasInit = init::Zeros>
struct DepthwiseConv2D {
  static_assert(KH >= 1 && KW >= 1 && Stride >= 1 && DepthMultiplier >= 1 && Dilation >= 1,
                "DepthwiseConv2D needs a kernel of at least 1x1 and a stride, depth multiplier "
                "and dilation >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "DepthwiseConv2D's KernelInit and BiasInit must be initializers such as "
                "ctnn::init::HeNormal (the list is in ctnn/core/init.hpp).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a DepthwiseConv2D takes valid, same, same_lower "
                "or pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind : detail::DepthwiseBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                      (In::rank > 2 ? In::dims[2] : 1), DepthMultiplier, KH, KW,
                                      Stride, Pad, Dilation, true> {
    using body = detail::DepthwiseBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                       (In::rank > 2 ? In::dims[2] : 1), DepthMultiplier, KH, KW,
                                       Stride, Pad, Dilation, true>;
    static_assert(In::rank == 3,
                  "DepthwiseConv2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "DepthwiseConv2D's kernel is larger than its input with valid padding (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t C = In::rank > 2 ? In::dims[2] : 1;

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, body::CM>;
    static constexpr std::string_view name = "DepthwiseConv2D";
    static constexpr LayerKind kind = LayerKind::depthwise_conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (DepthMultiplier != 1 ? " multiplier " + std::to_string(DepthMultiplier)
                                   : std::string());
    }
    static std::string spec() {
      return "ctnn::DepthwiseConv2D<" + std::to_string(KH) + ", " + std::to_string(KW) + ", " +
             std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
             std::to_string(DepthMultiplier) + ", " + std::to_string(Dilation) +
             detail::init_spec<KernelInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      KernelInit::fill(p, body::weights, KH * KW * C, KH * KW * DepthMultiplier, rng);
      BiasInit::fill(p + body::weights, body::CM, KH * KW * C, KH * KW * DepthMultiplier, rng);
    }
    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      body::forward(p, x, y, n, scratch, act);
    }
    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      body::backward(p, x, dy, dx, dp, n, scratch);
    }
  };
};

}  // namespace ctnn
