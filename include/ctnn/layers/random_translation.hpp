// ctnn/layers/random_translation.hpp: RandomTranslation<HeightFactor, WidthFactor, Fill>, Keras's
// RandomTranslation preprocessing layer with interpolation "nearest".
//
// Represents, in training, y[i][j] = x[i - dy][j - dx] for whole-pixel shifts
// dy = round(u * H), u uniform in [-HeightFactor, HeightFactor], and dx = round(v * W), v uniform
// in [-WidthFactor, WidthFactor], drawn per sample; in inference, y = x. Pixels read from outside
// the image follow Fill: TranslationFill::reflect (Keras's default, "d c b a | a b c d | d c b a":
// the edge pixel repeats) or TranslationFill::constant (zeros, Keras's fill_value 0). Keras's
// default interpolation "bilinear" would shift by fractions of a pixel; this layer rounds the
// shift to whole pixels, as Keras's interpolation="nearest" does.
// Requires a rank-3 input (height, width, channels) and factors in [0, 1] (fractions of the size,
// written as Real like Dropout's rate: RandomTranslation<0.1, 0.1>). Output shape: the input's.
// No parameters. The shifts of sample s in a step come from Rng(step seed, s) alone, so a seeded
// run shifts alike at any thread count; they are kept in scratch (2 values a sample) and backward
// adds each output gradient into the input pixel it was read from (reflection can read one pixel
// several times; constant fill reads none from outside).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "ctnn/core/parallel.hpp"
#include "ctnn/core/real.hpp"
#include "ctnn/layers/param_free.hpp"

namespace ctnn {

enum class TranslationFill { reflect, constant };

template <Real HeightFactor, Real WidthFactor, TranslationFill Fill = TranslationFill::reflect>
struct RandomTranslation {
  static_assert(HeightFactor.value() >= 0.0 && HeightFactor.value() <= 1.0 &&
                    WidthFactor.value() >= 0.0 && WidthFactor.value() <= 1.0,
                "RandomTranslation's height and width factors must be fractions in [0, 1].");

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, 2> {
    static_assert(In::rank == 3,
                  "RandomTranslation needs an image input of rank 3 (height, width, channels): "
                  "use Input<H, W, C> (the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::string_view name = "RandomTranslation";
    // y = x in inference: the int8 plan (deploy/static_quantized.hpp) makes it a view.
    static constexpr bool identity_in_inference = true;
    static std::string config() {
      return "height " + std::to_string(HeightFactor.value()) + ", width " +
             std::to_string(WidthFactor.value()) +
             (Fill == TranslationFill::reflect ? ", reflect" : ", constant");
    }
    static std::string spec() {
      return "ctnn::RandomTranslation<" + std::to_string(HeightFactor.value()) + ", " +
             std::to_string(WidthFactor.value()) +
             (Fill == TranslationFill::reflect ? "" : ", ctnn::TranslationFill::constant") + ">";
    }

    // The index in [0, n) that position r reads, or -1 (constant fill) for none.
    static std::int64_t source(std::int64_t r, std::int64_t n) {
      if (r >= 0 && r < n) return r;
      if constexpr (Fill == TranslationFill::constant) {
        return -1;
      } else {
        std::int64_t m = r % (2 * n);
        if (m < 0) m += 2 * n;
        return m < n ? m : 2 * n - 1 - m;
      }
    }
    // A shift of u * size pixels for u uniform in [-f, f], rounded half away from zero.
    static std::int64_t draw_shift(Rng& rng, double f, std::size_t size) {
      const double u = -f + 2 * f * rng.uniform01();
      return std::int64_t(std::lround(u * double(size)));
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T* shifts,
                        const PassContext& ctx) {
      if (!ctx.training) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < 2 * n; ++i) shifts[i] = T(0);
        return;
      }
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0x8CB92BA72F3D8DD7ull + s);
        const std::int64_t dy = draw_shift(rng, HeightFactor.value(), H);
        const std::int64_t dx = draw_shift(rng, WidthFactor.value(), W);
        shifts[2 * s] = T(dy);
        shifts[2 * s + 1] = T(dx);
        const T* xs = x + s * In::size;
        T* ys = y + s * In::size;
        for (std::size_t i = 0; i < H; ++i) {
          const std::int64_t si = source(std::int64_t(i) - dy, std::int64_t(H));
          for (std::size_t j = 0; j < W; ++j) {
            const std::int64_t sj = source(std::int64_t(j) - dx, std::int64_t(W));
            T* out = ys + (i * W + j) * C;
            if (si < 0 || sj < 0)
              for (std::size_t c = 0; c < C; ++c) out[c] = T(0);
            else
              std::memcpy(out, xs + (std::size_t(si) * W + std::size_t(sj)) * C, C * sizeof(T));
          }
        }
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* shifts, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const std::int64_t sy = std::int64_t(shifts[2 * s]), sx = std::int64_t(shifts[2 * s + 1]);
        const T* g = dy + s * In::size;
        T* d = dx + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) d[i] = T(0);
        for (std::size_t i = 0; i < H; ++i) {
          const std::int64_t si = source(std::int64_t(i) - sy, std::int64_t(H));
          for (std::size_t j = 0; j < W; ++j) {
            const std::int64_t sj = source(std::int64_t(j) - sx, std::int64_t(W));
            if (si < 0 || sj < 0) continue;
            T* to = d + (std::size_t(si) * W + std::size_t(sj)) * C;
            const T* from = g + (i * W + j) * C;
            for (std::size_t c = 0; c < C; ++c) to[c] += from[c];
          }
        }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
