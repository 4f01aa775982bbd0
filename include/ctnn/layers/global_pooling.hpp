// ctnn/layers/global_pooling.hpp: GlobalAveragePooling2D, GlobalMaxPooling2D (H x W x C -> C) and
// GlobalAveragePooling1D, GlobalMaxPooling1D (Steps x C -> C), as Keras's (keepdims=False).
//
// Represents, for each channel c, the mean (or maximum) of the input over every position:
// y[c] = (1 / P) * sum_p x[p][c] (or max_p x[p][c]), P = H * W (or Steps).
// Requires: a rank-3 input (2D) or a rank-2 input (1D), channels last. Output shape: Shape<C>.
// No parameters.
// How: one kernel pass per sample (kernels/pooling.hpp), vectorized along the channels; each
// channel's values are combined in position order, so the result does not depend on the vector
// width or the thread count. A NaN in a channel makes its mean and its max NaN.
// Backward: the mean spreads dy[c] / P over the channel's positions; the max routes dy[c] to the
// first maximal position (the first NaN for a NaN max; found again from the input, nothing stored).
#pragma once
#include <cstddef>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/pooling.hpp"
#include "ctnn/layers/pooling.hpp"

namespace ctnn {
namespace detail {

// Rank 3 for the 2D layers, 2 for the 1D ones.
template <PoolOp Op, std::size_t Rank>
struct GlobalPool {
  template <ShapeType In, class T>
  struct bind {
    static_assert(Rank != 3 || In::rank == 3,
                  "GlobalAveragePooling2D/GlobalMaxPooling2D need an image input of rank 3 "
                  "(height, width, channels) (the shapes are in bind<...> above).");
    static_assert(Rank != 2 || In::rank == 2,
                  "GlobalAveragePooling1D/GlobalMaxPooling1D need a sequence input of rank 2 "
                  "(steps, channels) (the shapes are in bind<...> above).");
    static constexpr std::size_t C = In::rank == Rank ? In::dims[In::rank - 1] : 1;
    static constexpr std::size_t positions = In::size / C;
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name =
        Rank == 3 ? (Op == PoolOp::max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D")
                  : (Op == PoolOp::max ? "GlobalMaxPooling1D" : "GlobalAveragePooling1D");
    static constexpr LayerKind kind =
        Rank == 3 ? (Op == PoolOp::max ? LayerKind::global_max_pool2d : LayerKind::global_avg_pool2d)
                  : (Op == PoolOp::max ? LayerKind::global_max_pool1d : LayerKind::global_avg_pool1d);
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        if constexpr (Op == PoolOp::max) kernels::max_rows(positions, C, x + s * In::size, y + s * C);
        else kernels::mean_rows(positions, C, x + s * In::size, y + s * C);
      }, n * In::size >= kParallelWork);
    }

    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * C;
        T* dxs = dx + s * In::size;
        if constexpr (Op == PoolOp::max) {
          const T* xs = x + s * In::size;
          const T* ys = y + s * C;
          for (std::size_t i = 0; i < In::size; ++i) dxs[i] = T(0);
          for (std::size_t c = 0; c < C; ++c) {
            const T m = ys[c];
            for (std::size_t p = 0; p < positions; ++p) {
              const T v = xs[p * C + c];
              if (v == m || (v != v && m != m)) {  // a NaN max: the first NaN
                dxs[p * C + c] = dys[c];
                break;
              }
            }
          }
        } else {
          for (std::size_t p = 0; p < positions; ++p)
            for (std::size_t c = 0; c < C; ++c) dxs[p * C + c] = dys[c] / T(positions);
        }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace detail

using GlobalAveragePooling2D = detail::GlobalPool<detail::PoolOp::average, 3>;
using GlobalMaxPooling2D = detail::GlobalPool<detail::PoolOp::max, 3>;
using GlobalAveragePooling1D = detail::GlobalPool<detail::PoolOp::average, 2>;
using GlobalMaxPooling1D = detail::GlobalPool<detail::PoolOp::max, 2>;

}  // namespace ctnn
