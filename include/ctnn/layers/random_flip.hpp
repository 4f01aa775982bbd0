// ctnn/layers/random_flip.hpp: RandomFlip<Mode>, Keras's RandomFlip preprocessing layer.
//
// Represents, in training, y = x flipped left-right (horizontal: along the width) and/or
// upside-down (vertical: along the height), each with probability 1/2, drawn per sample;
// in inference, y = x. Mode: FlipMode::horizontal, vertical or horizontal_and_vertical (Keras's
// default). Requires a rank-3 input (height, width, channels). Output shape: the input's. No
// parameters. The flips of sample s in a step come from Rng(step seed, s) alone, so a seeded run
// flips the same samples at any thread count; they are kept in scratch (2 values a sample) and
// backward sends each gradient back through the same flip (a permutation: dx = flip(dy)).
#pragma once
#include <cstring>
#include <string>

#include "ctnn/core/parallel.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

enum class FlipMode { horizontal, vertical, horizontal_and_vertical };

template <FlipMode Mode = FlipMode::horizontal_and_vertical>
struct RandomFlip {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, 2> {
    static_assert(In::rank == 3,
                  "RandomFlip needs an image input of rank 3 (height, width, channels): use "
                  "Input<H, W, C> (the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::string_view name = "RandomFlip";
    // y = x in inference: the int8 plan (deploy/static_quantized.hpp) makes it a view.
    static constexpr bool identity_in_inference = true;
    static std::string config() {
      return Mode == FlipMode::horizontal ? "horizontal"
             : Mode == FlipMode::vertical ? "vertical" : "horizontal_and_vertical";
    }
    static std::string spec() { return "ctnn::RandomFlip<ctnn::FlipMode::" + config() + ">"; }

    // y[i][j] = x[flip_v ? H-1-i : i][flip_h ? W-1-j : j] over sample `from` into `to`; the map
    // is its own inverse, so backward uses it on dy.
    static void flip(const T* from, T* to, bool fh, bool fv) {
      for (std::size_t i = 0; i < H; ++i) {
        const std::size_t si = fv ? H - 1 - i : i;
        for (std::size_t j = 0; j < W; ++j) {
          const std::size_t sj = fh ? W - 1 - j : j;
          std::memcpy(to + (i * W + j) * C, from + (si * W + sj) * C, C * sizeof(T));
        }
      }
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T* flags,
                        const PassContext& ctx) {
      if (!ctx.training) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < 2 * n; ++i) flags[i] = T(0);
        return;
      }
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0xD1B54A32D192ED03ull + s);
        const bool fh = Mode != FlipMode::vertical && rng.uniform01() < 0.5;
        const bool fv = Mode != FlipMode::horizontal && rng.uniform01() < 0.5;
        flags[2 * s] = fh ? T(1) : T(0);
        flags[2 * s + 1] = fv ? T(1) : T(0);
        flip(x + s * In::size, y + s * In::size, fh, fv);
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* flags, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        flip(dy + s * In::size, dx + s * In::size, flags[2 * s] != T(0), flags[2 * s + 1] != T(0));
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
