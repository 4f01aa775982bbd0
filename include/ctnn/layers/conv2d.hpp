// ctnn/layers/conv2d.hpp: Conv2D<Filters, KH, KW, Stride, Padding, KernelInit, BiasInit>, a 2-D
// convolution.
//
// Represents y[oy][ox][f] = b[f] + sum_{ky,kx,c} x[oy*S+ky-pt][ox*S+kx-pl][c] * W[ky][kx][c][f]
// over an H x W x C input (channels last), with Keras's valid/same padding.
// Requires: a rank-3 input; for valid padding, a kernel no larger than the input.
// Output shape: Shape<OH, OW, Filters>. Parameters: W in Keras's [KH][KW][C][Filters] order, then
// b [Filters]: KH*KW*C*Filters + Filters. Init: KernelInit fills W and BiasInit b, with
// fan_in = KH*KW*C and fan_out = KH*KW*Filters; the defaults are Keras's, Glorot uniform W and zero
// b (core/init.hpp lists the others).
//
// How: each sample's input is unfolded into patches [OH*OW x KH*KW*C] (im2col, kept in scratch for
// the backward pass) and multiplied by W with the GEMM that vectorizes along the filters, bias
// and ReLU fused into its store. Samples run in parallel; the weight gradient of each sample goes
// to its own scratch slot and the slots are summed in sample order, so the result does not
// depend on the thread count.
#pragma once
#include <cstddef>
#include <cstring>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/spatial.hpp"

namespace ctnn {

template <std::size_t Filters, std::size_t KH, std::size_t KW, std::size_t Stride = 1,
          Padding Pad = Padding::valid, class KernelInit = init::GlorotUniform,
          class BiasInit = init::Zeros>
struct Conv2D {
  static_assert(Filters >= 1 && KH >= 1 && KW >= 1 && Stride >= 1,
                "Conv2D needs at least one filter, a kernel of at least 1x1 and a stride >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Conv2D's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "Conv2D needs an image input of rank 3 (height, width, channels): use "
                  "Input<H, W, C> (the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    using geom = detail::Window2D<H, W, C, KH, KW, Stride, Pad>;
    static_assert(In::rank != 3 || geom::fits,
                  "Conv2D's kernel is larger than its input with valid padding: use a smaller "
                  "kernel or Padding::same (the shapes are in bind<...> above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, Filters>;
    static constexpr std::size_t positions = geom::oh * geom::ow;
    static constexpr std::size_t patch = KH * KW * C;  // the GEMM's K
    static constexpr std::size_t weights = patch * Filters;
    static constexpr std::size_t param_count = weights + Filters;
    // Per sample, each part starting on a 64-byte line: the patches, that sample's share of the
    // parameter gradient, and the vector accumulators of the backward gemm_nt.
    static constexpr std::size_t kLine = 64 / sizeof(T);
    static constexpr std::size_t line_up(std::size_t v) { return (v + kLine - 1) / kLine * kLine; }
    static constexpr std::size_t grad_offset = line_up(positions * patch);
    static constexpr std::size_t acc_offset = grad_offset + line_up(param_count);
    static constexpr std::size_t scratch_per_sample =
        acc_offset + line_up(kernels::gemm_nt_scratch<T>(positions, patch));
    static constexpr std::string_view name = "Conv2D";
    static constexpr LayerKind kind = LayerKind::conv2d;
    static std::string config() { return detail::window_config(KH, KW, Stride, Pad); }
    static std::string spec() {  // the layer as C++ source, for exported models
      return "ctnn::Conv2D<" + std::to_string(Filters) + ", " + std::to_string(KH) + ", " +
             std::to_string(KW) + ", " + std::to_string(Stride) + ", " + detail::padding_spec(Pad) +
             detail::init_spec<KernelInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;
    static constexpr std::size_t kWorkPerSample = positions * patch * Filters;

    static void init(T* p, Rng& rng) {
      KernelInit::fill(p, weights, patch, KH * KW * Filters, rng);
      BiasInit::fill(p + weights, Filters, patch, KH * KW * Filters, rng);
    }

    // patches[pos][(ky*KW + kx)*C + c] = x at that tap, or 0 in the padding.
    static void im2col(const T* x, T* patches) {
      for (std::size_t oy = 0; oy < geom::oh; ++oy)
        for (std::size_t ox = 0; ox < geom::ow; ++ox) {
          T* row = patches + (oy * geom::ow + ox) * patch;
          for (std::size_t ky = 0; ky < KH; ++ky) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * Stride + ky) - std::ptrdiff_t(geom::pad_top);
            for (std::size_t kx = 0; kx < KW; ++kx) {
              const std::ptrdiff_t ix =
                  std::ptrdiff_t(ox * Stride + kx) - std::ptrdiff_t(geom::pad_left);
              T* dst = row + (ky * KW + kx) * C;
              if (iy < 0 || ix < 0 || iy >= std::ptrdiff_t(H) || ix >= std::ptrdiff_t(W))
                for (std::size_t c = 0; c < C; ++c) dst[c] = T(0);
              else
                std::memcpy(dst, x + (std::size_t(iy) * W + std::size_t(ix)) * C, C * sizeof(T));
            }
          }
        }
    }

    // The adjoint of im2col: dx = sum of every patch gradient at the taps it came from.
    static void col2im(const T* dpatches, T* dx) {
      for (std::size_t i = 0; i < In::size; ++i) dx[i] = T(0);
      for (std::size_t oy = 0; oy < geom::oh; ++oy)
        for (std::size_t ox = 0; ox < geom::ow; ++ox) {
          const T* row = dpatches + (oy * geom::ow + ox) * patch;
          for (std::size_t ky = 0; ky < KH; ++ky) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * Stride + ky) - std::ptrdiff_t(geom::pad_top);
            if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
            for (std::size_t kx = 0; kx < KW; ++kx) {
              const std::ptrdiff_t ix =
                  std::ptrdiff_t(ox * Stride + kx) - std::ptrdiff_t(geom::pad_left);
              if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
              T* dst = dx + (std::size_t(iy) * W + std::size_t(ix)) * C;
              const T* src = row + (ky * KW + kx) * C;
              for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];
            }
          }
        }
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      parallel_for(n, [&](std::size_t s) {
        T* patches = scratch + s * scratch_per_sample;
        im2col(x + s * In::size, patches);
        kernels::gemm_nn(positions, Filters, patch, patches, patch, 1, p, Filters,
                         y + s * output_shape::size, Filters, false, p + weights, act);
      }, n * kWorkPerSample >= kParallelWork);
    }

    static void backward(const T* p, const T*, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T* scratch, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        T* patches = scratch + s * scratch_per_sample;
        T* dps = patches + grad_offset;
        const T* dys = dy + s * output_shape::size;
        // dW_s[patch x Filters] = patches^T dy_s; db_s = column sums of dy_s.
        kernels::gemm_nn(patch, Filters, positions, patches, 1, patch, dys, Filters, dps, Filters,
                         false, static_cast<const T*>(nullptr), kernels::Epilogue::none);
        kernels::sum_rows(positions, Filters, dys, dps + weights);
        if (dx) {
          // dpatches[positions x patch] = dy_s W^T, written over the patches (no longer needed).
          kernels::gemm_nt(positions, patch, Filters, dys, Filters, p, Filters, patches, patch,
                           static_cast<const T*>(nullptr), kernels::Epilogue::none,
                           patches + acc_offset);
          col2im(patches, dx + s * In::size);
        }
      }, n * kWorkPerSample >= kParallelWork);
      // Sum the per-sample gradients in sample order.
      for (std::size_t i = 0; i < param_count; ++i) dp[i] = T(0);
      for (std::size_t s = 0; s < n; ++s) {
        const T* dps = scratch + s * scratch_per_sample + grad_offset;
        for (std::size_t i = 0; i < param_count; ++i) dp[i] += dps[i];
      }
    }
  };
};

}  // namespace ctnn
