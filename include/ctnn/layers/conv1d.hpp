// ctnn/layers/conv1d.hpp: Conv1D<Filters, K, Stride, Padding, Dilation, KernelInit, BiasInit,
// Groups>, a 1-D convolution over sequences.
//
// Represents y[t][f] = b[f] + sum_{k,c} x[t*S + k*D - pl][g*C/G + c] * W[k][c][f] over a
// Steps x C input (time, channels), with g = f / (Filters/G): Keras's Conv1D with padding valid,
// same or causal (Dilation*(K-1) zeros before the sequence, so output t sees inputs <= t), and
// dilation_rate D. Padding::pads(t, b, l, r) pads l before and r after (t and b are ignored).
// Requires: a rank-2 input (Input<Steps, C>); C and Filters divisible by G; for valid padding, a
// dilated kernel D*(K-1)+1 no longer than the sequence.
// Output shape: Shape<OT, Filters>. Parameters: W in Keras's [K][C/G][Filters] order, then
// b [Filters]. Init: fan_in = K*C/G, fan_out = K*Filters (Keras's); defaults Glorot uniform W,
// zero b.
// How: Conv2D's implementation (layers/conv2d.hpp) on a 1 x Steps image with a 1 x K kernel, so
// the same GEMMs, the same thread-count-independent weight gradient and the same scratch.
#pragma once
#include <cstddef>
#include <string>

#include "ctnn/layers/conv2d.hpp"

namespace ctnn {
namespace detail {
// Conv1D's padding as the 2-D padding of a 1-row image: causal is K-1 dilated taps on the left.
constexpr Padding conv1d_padding(Padding p, std::size_t k, std::size_t dilation) {
  if (p.mode == Padding::Mode::causal) return Padding::pads(0, 0, dilation * (k - 1), 0);
  if (p.mode == Padding::Mode::explicit_pads) return Padding::pads(0, 0, p.left, p.right);
  return p;
}
}  // namespace detail

template <std::size_t Filters, std::size_t K, std::size_t Stride = 1,
          Padding Pad = Padding::valid, std::size_t Dilation = 1,
          class KernelInit = init::GlorotUniform, class BiasInit = init::Zeros,
          std::size_t Groups = 1>
struct Conv1D {
  static_assert(Filters >= 1 && K >= 1 && Stride >= 1 && Dilation >= 1 && Groups >= 1,
                "Conv1D needs at least one filter, a kernel of at least 1, and a stride, dilation "
                "and groups >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Conv1D's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");
  static_assert(Filters % (Groups == 0 ? 1 : Groups) == 0,
                "Conv1D's Filters must be a multiple of its Groups (each group has as many "
                "filters).");
  static constexpr Padding kPad2D = detail::conv1d_padding(Pad, K, Dilation);

  template <ShapeType In, class T>
  struct bind : detail::ConvBody<T, 1, In::dims[0], (In::rank > 1 ? In::dims[1] : 1), Filters, 1,
                                 K, Stride, kPad2D, Dilation, Groups, KernelInit, BiasInit> {
    using body = detail::ConvBody<T, 1, In::dims[0], (In::rank > 1 ? In::dims[1] : 1), Filters, 1,
                                  K, Stride, kPad2D, Dilation, Groups, KernelInit, BiasInit>;
    static_assert(In::rank == 2,
                  "Conv1D needs a sequence input of rank 2 (steps, channels): use "
                  "Input<Steps, C> (the shapes are in bind<...> above).");
    static_assert(In::rank != 2 || body::C % Groups == 0,
                  "Conv1D's input channels must be a multiple of its Groups (the shapes are in "
                  "bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 2 || geom::fits,
                  "Conv1D's dilated kernel is longer than its input with valid padding: use a "
                  "smaller kernel or Padding::same / Padding::causal (the shapes are in bind<...> "
                  "above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::ow, Filters>;
    static constexpr std::string_view name = "Conv1D";
    static constexpr LayerKind kind = LayerKind::conv1d;
    static std::string config() {
      std::string s = std::to_string(K) + " stride " + std::to_string(Stride) + " " +
                      detail::padding_config(Pad);
      if (Dilation != 1) s += " dilation " + std::to_string(Dilation);
      if (Groups != 1) s += " groups " + std::to_string(Groups);
      return s;
    }
    static std::string spec() {
      std::string s = "ctnn::Conv1D<" + std::to_string(Filters) + ", " + std::to_string(K) + ", " +
                      std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
                      std::to_string(Dilation);
      if (Groups != 1)
        s += ", " + std::string(KernelInit::spec) + ", " + std::string(BiasInit::spec) + ", " +
             std::to_string(Groups);
      else
        s += detail::init_spec<KernelInit, BiasInit>();
      return s + ">";
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
