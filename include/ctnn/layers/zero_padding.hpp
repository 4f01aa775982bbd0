// ctnn/layers/zero_padding.hpp: ZeroPadding2D<Top, Bottom, Left, Right>, rows and columns of zeros
// around an image (Keras's ZeroPadding2D(((Top, Bottom), (Left, Right)))).
//
// Represents y[i][j][c] = x[i - Top][j - Left][c] where that lies inside the input, 0 elsewhere.
// ZeroPadding2D<p> pads every side by p, ZeroPadding2D<h, h, w> rows by h and columns by w (Keras's
// padding=p and padding=(h, w)).
// Requires: a rank-3 input (height, width, channels).
// Output shape: Shape<H + Top + Bottom, W + Left + Right, C>. No parameters.
// Backward: dx is dy without its border.
#pragma once
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"

namespace ctnn {

template <std::size_t Top, std::size_t Bottom = Top, std::size_t Left = Top, std::size_t Right = Left>
struct ZeroPadding2D {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "ZeroPadding2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::size_t OH = H + Top + Bottom, OW = W + Left + Right;
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<OH, OW, C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = "ZeroPadding2D";
    static constexpr LayerKind kind = LayerKind::zero_padding2d;
    // "1,1,2,2": top, bottom, left, right.
    static std::string config() {
      return std::to_string(Top) + "," + std::to_string(Bottom) + "," + std::to_string(Left) + "," +
             std::to_string(Right);
    }
    static std::string spec() {
      return "ctnn::ZeroPadding2D<" + std::to_string(Top) + ", " + std::to_string(Bottom) + ", " +
             std::to_string(Left) + ", " + std::to_string(Right) + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* ys = y + s * output_shape::size;
        for (std::size_t i = 0; i < output_shape::size; ++i) ys[i] = T(0);
        for (std::size_t i = 0; i < H; ++i)
          std::memcpy(ys + ((i + Top) * OW + Left) * C, xs + i * W * C, W * C * sizeof(T));
      }, n * output_shape::size >= kParallelWork);
    }

    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n, T*,
                         const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * output_shape::size;
        T* dxs = dx + s * In::size;
        for (std::size_t i = 0; i < H; ++i)
          std::memcpy(dxs + i * W * C, dys + ((i + Top) * OW + Left) * C, W * C * sizeof(T));
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
