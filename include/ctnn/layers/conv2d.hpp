// ctnn/layers/conv2d.hpp: Conv2D<Filters, KH, KW, Stride, Padding, KernelInit, BiasInit,
// Dilation, Groups>, a 2-D convolution.
//
// Represents y[oy][ox][f] = b[f] + sum_{ky,kx,c} x[oy*S + ky*D - pt][ox*S + kx*D - pl][g*C/G + c]
// * W[ky][kx][c][f] over an H x W x C input (channels last), with g = f / (Filters/G) the group of
// filter f and c < C/G: Keras's Conv2D with dilation_rate D and groups G (G = 1: every filter sees
// every channel; G = C = Filters would be a depthwise convolution, for which DepthwiseConv2D is
// faster). Padding: valid, same, same_lower or explicit pads (layers/spatial.hpp).
// Requires: a rank-3 input; C and Filters divisible by G; for valid padding, a dilated kernel
// (D*(K-1)+1) no larger than the input.
// Output shape: Shape<OH, OW, Filters>. Parameters: W in Keras's [KH][KW][C/G][Filters] order,
// then b [Filters]: KH*KW*(C/G)*Filters + Filters. Init: KernelInit fills W and BiasInit b, with
// fan_in = KH*KW*C/G and fan_out = KH*KW*Filters (Keras's fans of that kernel shape); the
// defaults are Keras's, Glorot uniform W and zero b (core/init.hpp lists the others).
//
// How: each sample's input is unfolded into patches [OH*OW x KH*KW*C] (im2col, kept in scratch
// for the backward pass; each row holds group 0's KH*KW*C/G taps, then group 1's, ...) and each
// group's patches are multiplied by its W columns with the GEMM that vectorizes along the
// filters, bias and ReLU fused into its store. The patches of a batch lie back to back in
// scratch, so the weight gradient of a large layer is ONE GEMM over all samples' positions
// (K = n*OH*OW): its threads own disjoint filter columns and walk K in order, so the result does
// not depend on the thread count, and no per-sample copy of the gradient is kept. A small layer
// (gradient no larger than a sample's patches, such as the seed's) keeps one per sample and sums
// them in sample order (per_sample_grad below): faster, and still thread-count independent. The
// input gradient is computed per sample in parallel.
// A 3x3 stride-1 convolution with at least 8 input channels (ResNet's) instead takes Winograd's
// F(2x2, 3x3) or, where the output is a multiple of 4 on both sides (and the scratch rule below
// allows it), F(4x4, 3x3) (kernels/winograd.hpp): 16 multiplications per 2x2 outputs and channel
// pair, or 36 per 4x4, where the GEMM takes 36 or 144. The batch's transformed inputs V are kept in
// scratch for the backward pass, the 16 (36) products of each pass are GEMMs over all samples'
// tiles (the weight gradient's K = n * tiles, summed in sample and tile order), and the gradients
// go back through the adjoints of the same transforms: the exact gradients of the function computed
// forward, the same bits at any thread count. Its results differ from the GEMM path's by rounding
// only.
#pragma once
#include <cstddef>
#include <cstring>
#include <string>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"
#include "ctnn/kernels/winograd.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/spatial.hpp"

namespace ctnn {
namespace detail {

// Rows per gemm_nt call when an input gradient dX = dY W^T is computed for `positions` rows: at
// most 32 (gemm_nt's own row block) and small enough that the call's vector accumulators (rows x
// K vectors of the widest target) take no more scratch than the rows' patches themselves. Each
// element's sum runs over the filters alone, so the split does not change any result.
template <class T>
constexpr std::size_t nt_chunk_rows(std::size_t positions) {
  const std::size_t r = positions / (HWY_MAX_BYTES / sizeof(T));
  return r < 1 ? 1 : r > kernels::kGemmNtRows ? kernels::kGemmNtRows : r;
}

// C[M x N] = A[M x K] B[N x K]^T in calls of at most R rows, with accumulators `acc` of
// kernels::gemm_nt_scratch<T>(R, N) elements.
template <std::size_t R, class T>
void gemm_nt_chunked(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda,
                     const T* B, std::size_t ldb, T* C, std::size_t ldc, T* acc) {
  for (std::size_t m0 = 0; m0 < M; m0 += R)
    kernels::gemm_nt(M - m0 < R ? M - m0 : R, N, K, A + m0 * lda, lda, B, ldb, C + m0 * ldc, ldc,
                     static_cast<const T*>(nullptr), kernels::Epilogue::none, acc);
}

// The computation of a convolution over an H x W x C image, shared by Conv2D and Conv1D (a
// 1 x Steps image). Shapes are set by the layer that derives from it.
template <class T, std::size_t H_, std::size_t W_, std::size_t C_, std::size_t Filters,
          std::size_t KH, std::size_t KW, std::size_t Stride, Padding Pad, std::size_t Dilation,
          std::size_t Groups, class KernelInit, class BiasInit>
struct ConvBody {
  static constexpr std::size_t H = H_, W = W_, C = C_;
  using geom = Window2D<H, W, C, KH, KW, Stride, Pad, Dilation>;
  static constexpr std::size_t in_size = H * W * C;
  static constexpr std::size_t out_size = geom::oh * geom::ow * Filters;
  static constexpr std::size_t positions = geom::oh * geom::ow;
  static constexpr std::size_t groups = Groups, dilation = Dilation;
  static constexpr std::size_t group_channels = Groups == 0 ? 1 : C / Groups;
  static constexpr std::size_t group_filters = Groups == 0 ? 1 : Filters / Groups;
  static constexpr std::size_t group_patch = KH * KW * group_channels;  // one group's GEMM K
  static constexpr std::size_t patch = group_patch * Groups;            // a row of patches
  static constexpr std::size_t weights = group_patch * Filters;
  static constexpr std::size_t param_count = weights + Filters;

  // Scratch for a batch of n: the patches of all n samples back to back (so the weight-gradient
  // GEMM reads them as one matrix), then, from the next 64-byte line, each sample's buffer of
  // input-gradient rows (dx_rows rows of patch gradients, scattered into dx before the next
  // rows) and, for a small layer, its weight-gradient copy. Per sample: patches + rows + copy +
  // one line of slack for the rounding between the two regions. No parameter gradient.
  static constexpr std::size_t kLine = 64 / sizeof(T);
  static constexpr std::size_t line_up(std::size_t v) { return (v + kLine - 1) / kLine * kLine; }
  static constexpr std::size_t patch_floats = positions * patch;
  static constexpr std::size_t dx_rows = positions < 48 ? positions : 48;  // 4 x 12, 8 x 6 rows
  static constexpr std::size_t rows_floats = line_up(dx_rows * patch);
  // A layer whose gradient is no larger than one sample's patches (the seed's 320 against 6,084)
  // keeps one per sample after its rows buffer and sums them in sample order, samples in
  // parallel: measured 112 against 61 GFLOP/s for the one-GEMM path at the seed shape (2 threads,
  // Zen 5), and bitwise the results of before. Larger layers take the one GEMM: their scratch
  // never holds a gradient copy larger than the patches.
  static constexpr bool per_sample_grad = Groups == 1 && param_count <= patch_floats;
  static constexpr std::size_t grad_floats = per_sample_grad ? line_up(param_count) : 0;
  // A sample's weight gradient is the product of its patches and dy over the positions. With
  // more taps than filters (ResNet-8's 16-filter 3x3 layers: 144 against 16) it is taken as
  // dW^T = dy^T P ([Filters x patch], vectorized along the 144 taps) and added transposed:
  // dy P^T's [patch x Filters] would be one vector wide, a tile that loads more than it
  // multiplies (that layer's weight gradient for a batch of 32 went from 1,108 to about 750 us
  // with gemm_nn's short last tile, in a training step at 2 threads on Zen 5).
  static constexpr bool transposed_grad = patch > Filters;
  static constexpr std::size_t im2col_scratch = patch_floats + rows_floats + grad_floats + kLine;

  // Winograd F(m x m, 3x3), m = 2 or 4: th x tw tiles of m x m outputs, xis = (m + 2)^2 transformed
  // positions. Scratch for a batch of n: V [xis][n][tiles][C] (kept for backward, then the input
  // gradient's dV), M [xis][n][tiles][F] (then dM), U [xis][C][F] and one more [xis][C][F] (dU,
  // then U transposed). The two shared matrices count in every sample's share, so the path is taken
  // only where they are no larger than one sample's V and M (not for 64 filters on 7x7, whose
  // im2col scratch is smaller). F(4x4) where the output is a multiple of 4 on both sides and its
  // matrices fit so (ResNet-8's 28 x 28 layers: 49 tiles x 36 against 196 x 16 multiplications and
  // transformed values per channel pair; forward and backward of a batch of 32 at one thread on Zen
  // 5, 1.04-1.16 ms against 1.64-1.84 for F(2x2)), F(2x2) elsewhere (at 14 x 14, 16 tiles of F(4x4)
  // compute 256 outputs for 196: 1.25-1.26 ms against 1.06-1.09, the shared matrices' limit aside).
  static constexpr std::size_t wg_tiles(std::size_t m) {
    return (geom::oh + m - 1) / m * ((geom::ow + m - 1) / m);
  }
  static constexpr bool wg_fits(std::size_t m) {  // shared matrices no larger than V and M
    return 2 * (m + 2) * (m + 2) * C * Filters <= (m + 2) * (m + 2) * wg_tiles(m) * (C + Filters);
  }
  static constexpr std::size_t wg_m =
      geom::oh % 4 == 0 && geom::ow % 4 == 0 && wg_fits(4) ? 4 : 2;
  static constexpr std::size_t xis = (wg_m + 2) * (wg_m + 2);
  static constexpr std::size_t th = (geom::oh + wg_m - 1) / wg_m,
                               tw = (geom::ow + wg_m - 1) / wg_m, tiles = th * tw;
  static constexpr std::size_t wg_sample = xis * tiles * (C + Filters);
  static constexpr std::size_t wg_shared = 2 * xis * C * Filters;
  static constexpr bool winograd = KH == 3 && KW == 3 && Stride == 1 && Dilation == 1 &&
                                   Groups == 1 && C >= 8 && wg_shared <= wg_sample;
  static constexpr std::size_t scratch_per_sample =
      winograd ? wg_sample + wg_shared : im2col_scratch;
  static T* rows_region(T* scratch, std::size_t n, std::size_t s) {
    return scratch + line_up(n * patch_floats) + s * (rows_floats + grad_floats);
  }
  static T* grad_region(T* scratch, std::size_t n, std::size_t s) {
    return rows_region(scratch, n, s) + rows_floats;
  }
  static constexpr std::size_t kWorkPerSample = positions * patch * group_filters;

  static void init(T* p, Rng& rng) {
    KernelInit::fill(p, weights, group_patch, KH * KW * Filters, rng);
    BiasInit::fill(p + weights, Filters, group_patch, KH * KW * Filters, rng);
  }

  // patches[pos][g][(ky*KW + kx)*C/G + c] = x[iy][ix][g*C/G + c] at that (dilated) tap, or 0 in
  // the padding. With one group, [pos][(ky*KW + kx)*C + c], the int8 path's layout too.
  static void im2col(const T* x, T* patches) {
    for (std::size_t oy = 0; oy < geom::oh; ++oy)
      for (std::size_t ox = 0; ox < geom::ow; ++ox) {
        T* row = patches + (oy * geom::ow + ox) * patch;
        for (std::size_t ky = 0; ky < KH; ++ky) {
          const std::ptrdiff_t iy =
              std::ptrdiff_t(oy * Stride + ky * Dilation) - std::ptrdiff_t(geom::pad_top);
          for (std::size_t kx = 0; kx < KW; ++kx) {
            const std::ptrdiff_t ix =
                std::ptrdiff_t(ox * Stride + kx * Dilation) - std::ptrdiff_t(geom::pad_left);
            const bool inside = iy >= 0 && ix >= 0 && iy < std::ptrdiff_t(H) && ix < std::ptrdiff_t(W);
            const T* src = inside ? x + (std::size_t(iy) * W + std::size_t(ix)) * C : nullptr;
            for (std::size_t g = 0; g < Groups; ++g) {
              T* dst = row + g * group_patch + (ky * KW + kx) * group_channels;
              if (!inside)
                for (std::size_t c = 0; c < group_channels; ++c) dst[c] = T(0);
              else
                std::memcpy(dst, src + g * group_channels, group_channels * sizeof(T));
            }
          }
        }
      }
  }

  // The adjoint of im2col for output positions [r0, r1): adds each patch gradient (rows of
  // dpatches, the first for position r0) into dx at the taps it came from.
  static void col2im_add(const T* dpatches, std::size_t r0, std::size_t r1, T* dx) {
    kernels::col2im_add(r1 - r0, patch, C, Groups, group_patch, dpatches,
                        [r0](std::size_t r, auto&& f) {
                          geom::for_taps((r0 + r) / geom::ow, (r0 + r) % geom::ow, f);
                        },
                        dx);
  }

  // The transforms of F(wg_m x wg_m, 3x3) (kernels/winograd.hpp).
  template <class... A>
  static void wg_weights(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_weights(a...);
    else kernels::winograd_f23_weights(a...);
  }
  template <class... A>
  static void wg_weights_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_weights_adjoint(a...);
    else kernels::winograd_f23_weights_adjoint(a...);
  }
  template <class... A>
  static void wg_input(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_input(a...);
    else kernels::winograd_f23_input(a...);
  }
  template <class... A>
  static void wg_input_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_input_adjoint(a...);
    else kernels::winograd_f23_input_adjoint(a...);
  }
  template <class... A>
  static void wg_output(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_output(a...);
    else kernels::winograd_f23_output(a...);
  }
  template <class... A>
  static void wg_output_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_output_adjoint(a...);
    else kernels::winograd_f23_output_adjoint(a...);
  }

  // Forward in one pass over the samples: each sample's tiles, its xis GEMMs (tiles x C by
  // C x F) and its outputs.
  static void winograd_forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                               kernels::Epilogue act) {
    const std::size_t vs = n * tiles * C, ms = n * tiles * Filters;
    T* V = scratch;
    T* M = V + xis * vs;
    T* U = M + xis * ms;
    wg_weights(C, Filters, p, U);
    parallel_for(n, [&](std::size_t s) {
      T* Vs = V + s * tiles * C;
      T* Ms = M + s * tiles * Filters;
      wg_input(H, W, C, geom::pad_top, geom::pad_left, th, tw, x + s * in_size, Vs, vs);
      for (std::size_t xi = 0; xi < xis; ++xi)
        kernels::gemm_nn_fixed<Filters>(tiles, C, Vs + xi * vs, kernels::kFixed<C>,
                                        kernels::kFixed<1>, U + xi * C * Filters, Filters,
                                        Ms + xi * ms, Filters);
      wg_output(geom::oh, geom::ow, Filters, th, tw, Ms, ms, p + weights, act, y + s * out_size);
    }, n * kWorkPerSample >= kParallelWork);
  }

  // Backward in three passes: each sample's dM; dU = V^T dM for each xi over all samples' tiles
  // in (sample, tile) order, then dW and db; each sample's dV = dM U^T (into its V, no longer
  // needed) and dx.
  static void winograd_backward(const T* p, const T* dy, T* dx, T* dp, std::size_t n,
                                T* scratch) {
    const std::size_t vs = n * tiles * C, ms = n * tiles * Filters;
    T* V = scratch;
    T* dM = V + xis * vs;
    T* U = dM + xis * ms;
    T* B = U + xis * C * Filters;
    const bool par = n * kWorkPerSample >= kParallelWork;
    parallel_for(n, [&](std::size_t s) {
      wg_output_adjoint(geom::oh, geom::ow, Filters, th, tw, dy + s * out_size,
                        dM + s * tiles * Filters, ms);
    }, par);
    parallel_for(xis, [&](std::size_t xi) {
      kernels::gemm_nn_fixed<Filters>(C, n * tiles, V + xi * vs, kernels::kFixed<1>,
                                      kernels::kFixed<C>, dM + xi * ms, Filters,
                                      B + xi * C * Filters, Filters);
    }, par);
    wg_weights_adjoint(C, Filters, B, dp);
    kernels::sum_rows(n * positions, Filters, dy, dp + weights);
    if (!dx) return;
    wg_weights(C, Filters, p, U);
    for (std::size_t xi = 0; xi < xis; ++xi)  // B = U^T, [xis][F][C]
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t f = 0; f < Filters; ++f)
          B[(xi * Filters + f) * C + c] = U[(xi * C + c) * Filters + f];
    parallel_for(n, [&](std::size_t s) {
      T* dVs = V + s * tiles * C;
      const T* dMs = dM + s * tiles * Filters;
      for (std::size_t xi = 0; xi < xis; ++xi)
        kernels::gemm_nn_fixed<C>(tiles, Filters, dMs + xi * ms, kernels::kFixed<Filters>,
                                  kernels::kFixed<1>, B + xi * Filters * C, C, dVs + xi * vs, C);
      T* dxs = dx + s * in_size;
      for (std::size_t i = 0; i < in_size; ++i) dxs[i] = T(0);
      wg_input_adjoint(H, W, C, geom::pad_top, geom::pad_left, th, tw, dVs, vs, dxs);
    }, par);
  }

  static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                      kernels::Epilogue act) {
    if constexpr (winograd) {
      winograd_forward(p, x, y, n, scratch, act);
      return;
    }
    parallel_for(n, [&](std::size_t s) {
      T* patches = scratch + s * patch_floats;
      im2col(x + s * in_size, patches);
      for (std::size_t g = 0; g < Groups; ++g)
        kernels::gemm_nn(positions, group_filters, group_patch, patches + g * group_patch, patch,
                         1, p + g * group_filters, Filters, y + s * out_size + g * group_filters,
                         Filters, false, p + weights + g * group_filters, act);
    }, n * kWorkPerSample >= kParallelWork);
  }

  static void backward(const T* p, const T* dy, T* dx, T* dp, std::size_t n, T* scratch) {
    if constexpr (winograd) {
      winograd_backward(p, dy, dx, dp, n, scratch);
      return;
    }
    // The input gradient first, while dp is free: it holds W transposed per group,
    // wt[f][j] = W[j][f] ([Filters][group_patch]), so that dpatches_g = dy_g wt_g is a gemm_nn
    // vectorized along the patch (a gemm_nt would reduce along the few filters). dx_rows rows at a
    // time go to the sample's rows buffer and are scattered into dx; the patches stay intact.
    if (dx) {
      T* wt = dp;
      for (std::size_t j = 0; j < group_patch; ++j)
        for (std::size_t f = 0; f < Filters; ++f) wt[f * group_patch + j] = p[j * Filters + f];
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * out_size;
        T* dxs = dx + s * in_size;
        T* rows = rows_region(scratch, n, s);
        for (std::size_t i = 0; i < in_size; ++i) dxs[i] = T(0);
        for (std::size_t r0 = 0; r0 < positions; r0 += dx_rows) {
          const std::size_t m = positions - r0 < dx_rows ? positions - r0 : dx_rows;
          for (std::size_t g = 0; g < Groups; ++g)
            kernels::gemm_nn(m, group_patch, group_filters, dys + r0 * Filters + g * group_filters,
                             Filters, 1, wt + g * group_filters * group_patch, group_patch,
                             rows + g * group_patch, patch, false, static_cast<const T*>(nullptr),
                             kernels::Epilogue::none);
          col2im_add(rows, r0, r0 + m, dxs);
        }
      }, n * kWorkPerSample >= kParallelWork);
    }
    // dW_g[group_patch x group_filters] = patches_g^T dy_g over all n * positions rows at once,
    // summed in row (sample, then position) order; db = column sums of dy, in the same order.
    // Both overwrite dp (and so wt).
    if constexpr (per_sample_grad) {
      parallel_for(n, [&](std::size_t s) {
        T* dps = grad_region(scratch, n, s);
        const T* dys = dy + s * out_size;
        if constexpr (transposed_grad)
          kernels::gemm_nn(Filters, patch, positions, dys, 1, Filters, scratch + s * patch_floats,
                           patch, dps, patch, false, static_cast<const T*>(nullptr),
                           kernels::Epilogue::none);
        else
          kernels::gemm_nn(patch, Filters, positions, scratch + s * patch_floats, 1, patch, dys,
                           Filters, dps, Filters, false, static_cast<const T*>(nullptr),
                           kernels::Epilogue::none);
        kernels::sum_rows(positions, Filters, dys, dps + weights);
      }, n * kWorkPerSample >= kParallelWork);
      for (std::size_t i = 0; i < param_count; ++i) dp[i] = T(0);
      for (std::size_t s = 0; s < n; ++s) {
        const T* dps = grad_region(scratch, n, s);
        if constexpr (transposed_grad) {
          for (std::size_t j = 0; j < patch; ++j)
            for (std::size_t f = 0; f < Filters; ++f) dp[j * Filters + f] += dps[f * patch + j];
          for (std::size_t f = 0; f < Filters; ++f) dp[weights + f] += dps[weights + f];
        } else {
          for (std::size_t i = 0; i < param_count; ++i) dp[i] += dps[i];
        }
      }
    } else {
      for (std::size_t g = 0; g < Groups; ++g)
        kernels::gemm_nn(group_patch, group_filters, n * positions, scratch + g * group_patch, 1,
                         patch, dy + g * group_filters, Filters, dp + g * group_filters, Filters,
                         false, static_cast<const T*>(nullptr), kernels::Epilogue::none);
      kernels::sum_rows(n * positions, Filters, dy, dp + weights);
    }
  }

  // ", KernelInit, BiasInit, Dilation, Groups" for spec(), or the short form while both are 1.
  static std::string tail_spec() {
    if (Dilation == 1 && Groups == 1) return detail::init_spec<KernelInit, BiasInit>();
    return ", " + std::string(KernelInit::spec) + ", " + std::string(BiasInit::spec) + ", " +
           std::to_string(Dilation) + ", " + std::to_string(Groups);
  }
};

}  // namespace detail

template <std::size_t Filters, std::size_t KH, std::size_t KW, std::size_t Stride = 1,
          Padding Pad = Padding::valid, class KernelInit = init::GlorotUniform,
          class BiasInit = init::Zeros, std::size_t Dilation = 1, std::size_t Groups = 1>
struct Conv2D {
  static_assert(Filters >= 1 && KH >= 1 && KW >= 1 && Stride >= 1,
                "Conv2D needs at least one filter, a kernel of at least 1x1 and a stride >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Conv2D's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");
  static_assert(Dilation >= 1 && Groups >= 1, "Conv2D needs a dilation >= 1 and groups >= 1.");
  static_assert(Filters % (Groups == 0 ? 1 : Groups) == 0,
                "Conv2D's Filters must be a multiple of its Groups (each group has as many "
                "filters).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a Conv2D takes valid, same, same_lower or "
                "pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind
      : detail::ConvBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                         (In::rank > 2 ? In::dims[2] : 1), Filters, KH, KW, Stride, Pad, Dilation,
                         Groups, KernelInit, BiasInit> {
    using body = detail::ConvBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                  (In::rank > 2 ? In::dims[2] : 1), Filters, KH, KW, Stride, Pad,
                                  Dilation, Groups, KernelInit, BiasInit>;
    static_assert(In::rank == 3,
                  "Conv2D needs an image input of rank 3 (height, width, channels): use "
                  "Input<H, W, C> (the shapes are in bind<...> above).");
    static_assert(In::rank != 3 || body::C % Groups == 0,
                  "Conv2D's input channels must be a multiple of its Groups (each group sees "
                  "C / Groups channels; the shapes are in bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "Conv2D's kernel is larger than its input with valid padding: use a smaller "
                  "kernel or Padding::same (the shapes are in bind<...> above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, Filters>;
    static constexpr std::string_view name = "Conv2D";
    static constexpr LayerKind kind = LayerKind::conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (Groups != 1 ? " groups " + std::to_string(Groups) : std::string());
    }
    static std::string spec() {  // the layer as C++ source, for exported models
      return "ctnn::Conv2D<" + std::to_string(Filters) + ", " + std::to_string(KH) + ", " +
             std::to_string(KW) + ", " + std::to_string(Stride) + ", " + detail::padding_spec(Pad) +
             body::tail_spec() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      body::forward(p, x, y, n, scratch, act);
    }
    static void backward(const T* p, const T*, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T* scratch, const PassContext&) {
      body::backward(p, dy, dx, dp, n, scratch);
    }
  };
};

}  // namespace ctnn
