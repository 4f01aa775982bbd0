// ctnn/layers/pooling1d.hpp: MaxPool1D<Pool, Stride, Pad> and
// AveragePooling1D<Pool, Stride, Pad, CountIncludePad> over sequences.
//
// Represents, for each window of Pool steps (stride Stride, default the pool size as in Keras)
// and each channel, the maximum or mean of a Steps x C input: the 2-D pooling of
// layers/pooling.hpp on a 1 x Steps x C image, with the same rules (padded steps ignored by the
// max; the mean divides by the window's steps inside the input, or by Pool with CountIncludePad,
// as ONNX's count_include_pad = 1; a NaN in a window makes its max NaN).
// Requires: a rank-2 input (steps, channels); Pad is valid, same, same_lower or pads(0, 0, l, r)
// (l steps before, r after); a pool no larger than the padded input; pads smaller than the pool.
// Output shape: Shape<OutSteps, C>. No parameters.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/layers/pooling.hpp"

namespace ctnn {
namespace detail {

template <PoolOp Op, std::size_t Pool, std::size_t Stride, Padding Pad, bool CountIncludePad>
struct Pool1D {
  static_assert(Pad.top == 0 && Pad.bottom == 0,
                "1-D pooling pads steps with the left and right of Padding::pads(t, b, l, r): "
                "top and bottom must be 0.");
  static constexpr std::size_t S = Stride == 0 ? Pool : Stride;
  using Pool2 = Pool2D<Op, 1, Pool, S, Pad, 1, CountIncludePad>;

  // The 1 x Steps x C image a Steps x C input is seen as (1 x 1 x 1 for a wrong rank, which the
  // static_assert below reports).
  template <ShapeType In>
  using image = Shape<1, In::rank == 2 ? In::dims[0] : 1, In::rank == 2 ? In::dims[1] : 1>;

  template <ShapeType In, class T>
  struct bind : Pool2::template bind<image<In>, T> {
    static_assert(In::rank == 2,
                  "MaxPool1D/AveragePooling1D need a sequence input of rank 2 (steps, channels) "
                  "(the shapes are in bind<...> above).");
    using base = typename Pool2::template bind<image<In>, T>;
    using input_shape = In;
    using output_shape = Shape<base::geom::ow, base::C>;
    static constexpr std::string_view name = Op == PoolOp::max ? "MaxPool1D" : "AveragePooling1D";
    static constexpr LayerKind kind = Op == PoolOp::max ? LayerKind::max_pool1d : LayerKind::avg_pool1d;
    // "2 stride 2 valid" (a pads(0, 0, l, r) is written "pads 0,0,l,r").
    static std::string config() {
      return std::to_string(Pool) + " stride " + std::to_string(S) + " " + padding_config(Pad) +
             (CountIncludePad ? " count_include_pad" : "");
    }
    static std::string spec() {
      return std::string("ctnn::") + std::string(name) + "<" + std::to_string(Pool) + ", " +
             std::to_string(S) + ", " + padding_spec(Pad) + (CountIncludePad ? ", true" : "") + ">";
    }
  };
};

}  // namespace detail

// Stride 0 means the pool size (Keras's default).
template <std::size_t Pool, std::size_t Stride = 0, Padding Pad = Padding::valid>
using MaxPool1D = detail::Pool1D<detail::PoolOp::max, Pool, Stride, Pad, false>;

template <std::size_t Pool, std::size_t Stride = 0, Padding Pad = Padding::valid,
          bool CountIncludePad = false>
using AveragePooling1D = detail::Pool1D<detail::PoolOp::average, Pool, Stride, Pad, CountIncludePad>;

}  // namespace ctnn
