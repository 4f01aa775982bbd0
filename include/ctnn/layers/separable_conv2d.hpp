// ctnn/layers/separable_conv2d.hpp: SeparableConv2D<Filters, KH, KW, Stride, Padding,
// DepthMultiplier, Dilation, DepthwiseInit, PointwiseInit, BiasInit>, a depthwise convolution
// followed by a 1x1 convolution.
//
// Represents z = DepthwiseConv2D<KH, KW, Stride, Padding, M, Dilation>(x) without its bias, then
// y[oy][ox][f] = b[f] + sum_j z[oy][ox][j] * P[j][f] over the C*M channels j of z: Keras's
// SeparableConv2D with depth_multiplier M and dilation_rate D.
// Requires: a rank-3 input; for valid padding, a dilated kernel no larger than the input.
// Output shape: Shape<OH, OW, Filters>. Parameters in Keras's order: the depthwise kernel
// [KH][KW][C][M], the pointwise kernel [1][1][C*M][Filters], the bias [Filters]:
// KH*KW*C*M + C*M*Filters + Filters. Init (Keras's fans of each kernel shape): DepthwiseInit with
// fan_in = KH*KW*C, fan_out = KH*KW*M; PointwiseInit with fan_in = C*M, fan_out = Filters;
// BiasInit with the pointwise fans. Defaults Glorot uniform, Glorot uniform, zeros.
//
// How: the depthwise step of layers/depthwise_conv2d.hpp, its output z kept in scratch for all
// samples back to back, then the pointwise step as one GEMM over every position of the batch
// (bias and ReLU fused into its store). Backward: the pointwise kernel gradient is one GEMM over
// all positions (threads own disjoint filter columns), so no gradient is kept per sample and the
// result does not depend on the thread count; dz per sample, written over z; then the depthwise
// backward.
#pragma once
#include <cstddef>
#include <string>
#include <type_traits>

#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"
#include "ctnn/layers/conv2d.hpp"
#include "ctnn/layers/depthwise_conv2d.hpp"

namespace ctnn {

template <std::size_t Filters, std::size_t KH, std::size_t KW, std::size_t Stride = 1,
          Padding Pad = Padding::valid, std::size_t DepthMultiplier = 1, std::size_t Dilation = 1,
          class DepthwiseInit = init::GlorotUniform, class PointwiseInit = init::GlorotUniform,
          class BiasInit = init::Zeros>
struct SeparableConv2D {
  static_assert(Filters >= 1 && KH >= 1 && KW >= 1 && Stride >= 1 && DepthMultiplier >= 1 &&
                    Dilation >= 1,
                "SeparableConv2D needs at least one filter, a kernel of at least 1x1 and a "
                "stride, depth multiplier and dilation >= 1.");
  static_assert(is_initializer_v<DepthwiseInit> && is_initializer_v<PointwiseInit> &&
                    is_initializer_v<BiasInit>,
                "SeparableConv2D's DepthwiseInit, PointwiseInit and BiasInit must be initializers "
                "such as ctnn::init::HeNormal (the list is in ctnn/core/init.hpp).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a SeparableConv2D takes valid, same, same_lower "
                "or pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "SeparableConv2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1, M = DepthMultiplier;
    using dw = detail::DepthwiseBody<T, H, W, C, M, KH, KW, Stride, Pad, Dilation, false>;
    using geom = typename dw::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "SeparableConv2D's kernel is larger than its input with valid padding (the "
                  "shapes are in bind<...> above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, Filters>;
    static constexpr std::size_t CM = dw::CM, positions = dw::positions;
    static constexpr std::size_t depthwise_weights = dw::weights;
    static constexpr std::size_t pointwise_weights = CM * Filters;
    static constexpr std::size_t param_count = depthwise_weights + pointwise_weights + Filters;
    // Scratch for n samples: z of all samples back to back (the pointwise GEMMs read it as one
    // matrix), then from the next line each sample's gemm_nt accumulators, then the depthwise
    // step's scratch. Per sample, plus a line of slack for each rounding.
    static constexpr std::size_t kLine = 64 / sizeof(T);
    static constexpr std::size_t line_up(std::size_t v) { return (v + kLine - 1) / kLine * kLine; }
    static constexpr std::size_t z_floats = positions * CM;
    static constexpr std::size_t dz_rows = detail::nt_chunk_rows<T>(positions);
    static constexpr std::size_t acc_floats = line_up(kernels::gemm_nt_scratch<T>(dz_rows, CM));
    static constexpr std::size_t scratch_per_sample =
        z_floats + acc_floats + dw::scratch_per_sample + 2 * kLine;
    static T* acc_region(T* scratch, std::size_t n) { return scratch + line_up(n * z_floats); }
    static T* dw_region(T* scratch, std::size_t n) {
      return acc_region(scratch, n) + n * acc_floats;
    }
    static constexpr std::string_view name = "SeparableConv2D";
    static constexpr LayerKind kind = LayerKind::separable_conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (M != 1 ? " multiplier " + std::to_string(M) : std::string());
    }
    static std::string spec() {
      std::string s = "ctnn::SeparableConv2D<" + std::to_string(Filters) + ", " +
                      std::to_string(KH) + ", " + std::to_string(KW) + ", " +
                      std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
                      std::to_string(M) + ", " + std::to_string(Dilation);
      if constexpr (!std::is_same_v<DepthwiseInit, init::GlorotUniform> ||
                    !std::is_same_v<PointwiseInit, init::GlorotUniform> ||
                    !std::is_same_v<BiasInit, init::Zeros>)
        s += ", " + std::string(DepthwiseInit::spec) + ", " + std::string(PointwiseInit::spec) +
             ", " + std::string(BiasInit::spec);
      return s + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      DepthwiseInit::fill(p, depthwise_weights, KH * KW * C, KH * KW * M, rng);
      PointwiseInit::fill(p + depthwise_weights, pointwise_weights, CM, Filters, rng);
      BiasInit::fill(p + depthwise_weights + pointwise_weights, Filters, CM, Filters, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      T* z = scratch;
      dw::forward(p, x, z, n, dw_region(scratch, n), kernels::Epilogue::none);
      const T* P = p + depthwise_weights;
      kernels::gemm_nn(n * positions, Filters, CM, z, CM, 1, P, Filters, y, Filters, false,
                       P + pointwise_weights, act);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      T* z = scratch;
      const T* P = p + depthwise_weights;
      // dP[CM x Filters] = z^T dy and db over all n * positions rows, in row order.
      kernels::gemm_nn(CM, Filters, n * positions, z, 1, CM, dy, Filters, dp + depthwise_weights,
                       Filters, false, static_cast<const T*>(nullptr), kernels::Epilogue::none);
      kernels::sum_rows(n * positions, Filters, dy, dp + depthwise_weights + pointwise_weights);
      // dz_s[positions x CM] = dy_s P^T, over z_s (used above).
      parallel_for(n, [&](std::size_t s) {
        detail::gemm_nt_chunked<dz_rows>(positions, CM, Filters, dy + s * output_shape::size,
                                         Filters, P, Filters, z + s * z_floats, CM,
                                         acc_region(scratch, n) + s * acc_floats);
      }, n * positions * CM * Filters >= kParallelWork);
      dw::backward(p, x, z, dx, dp, n, dw_region(scratch, n));
    }
  };
};

}  // namespace ctnn
