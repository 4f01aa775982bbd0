// ctnn/kernels/winograd.hpp: Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (below
// F(2x2)'s, after "F(4x4, 3x3)") for 3x3 stride-1 convolutions on channels-last images, and the
// adjoint of every transform (for backward).
//
// A 3x3 convolution computes each 2x2 block of outputs ("tile") from a 4x4 window of the input.
// With d the window, g a filter's 3x3 taps for one input channel and
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// the tile is A^T [(G g G^T) .* (B^T d B)] A: 16 products instead of 36. Summed over the input
// channels, the products become 16 independent matrix products, one per position xi = 4i + j of
// the 4x4 transformed tile:
//   M[xi] (tiles x F) = V[xi] (tiles x C) * U[xi] (C x F),
// V = B^T d B for every tile and channel (winograd_f23_input), U = G g G^T for every channel and
// filter (winograd_f23_weights), and the output tile A^T M A (winograd_f23_output). That is
// 16 / 36 of the direct convolution's multiplications (1 / 2.25) when the output is even.
//
// Backward: the convolution above is a linear map of x and of w; its gradients apply the
// transposes (adjoints) of the same transforms, in reverse:
//   dM = adjoint of the output transform applied to dy     (winograd_f23_output_adjoint)
//   dU[xi] = V[xi]^T dM[xi],  dV[xi] = dM[xi] U[xi]^T       (GEMMs)
//   dw = adjoint of the weight transform applied to dU     (winograd_f23_weights_adjoint)
//   dx += adjoint of the input transform applied to dV     (winograd_f23_input_adjoint)
// so the gradients are exactly those of the function computed forward.
//
// Tiles: tile (ty, tx) covers outputs (2ty + a, 2tx + b), a, b in {0, 1}, and reads input rows
// 2ty - pad_top + i and columns 2tx - pad_left + j, i, j in 0..3; what falls outside the input is
// zero (the padding) and outputs past oh x ow are not written (an odd output size computes one
// half-empty row or column of tiles). Tiles are numbered ty * tw + tx; V, M and their gradients
// hold, for each xi, one row per tile at xi * stride + tile * channels (stride >= tiles *
// channels, so a caller can put many samples' tiles in one matrix per xi).
//
// Every transform works along the channels (contiguous in channels-last images): full vectors and
// a one-lane tail with the same operations, so an element's result does not depend on the vector
// width split. Each output element's operations are fixed by the formulas, so results are
// bitwise the same at any thread count when callers split work by samples.
#pragma once
#include <cstddef>

#include "ctnn/core/epilogue.hpp"
#include "ctnn/kernels/highway.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace winograd_detail {

// The per-chunk bodies below are lambdas called once per vector of channels: inlined, their
// 16-vector tiles stay in registers (g++ otherwise calls them and passes the tiles in memory).
#if defined(__GNUC__)
#define CTNN_WG_INLINE __attribute__((always_inline))
#else
#define CTNN_WG_INLINE
#endif

// body(d, k) for k = 0, L, 2L, ... in full vectors of tag d, then body(d1, k) one lane at a time.
template <class T, class Body>
HWY_INLINE void for_lanes(std::size_t n, Body&& body) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t k = 0;
  for (; k < full; k += L) body(d, k);
  const hn::CappedTag<T, 1> d1;
  for (; k < n; ++k) body(d1, k);
}

// rows[i][j] = the pixel of image ([H][W][C]) read at position (i, j) of the N x N window of
// tile (ty, tx), tiles Step pixels apart (F(2x2): 4 and 2; F(4x4): 6 and 4), or null in the
// padding.
template <std::size_t N, std::size_t Step, class P>
HWY_INLINE void window(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                       std::size_t pad_left, std::size_t ty, std::size_t tx, P* image,
                       P* (&rows)[N][N]) {
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      const std::ptrdiff_t iy = std::ptrdiff_t(Step * ty + i) - std::ptrdiff_t(pad_top);
      const std::ptrdiff_t ix = std::ptrdiff_t(Step * tx + j) - std::ptrdiff_t(pad_left);
      const bool in = iy >= 0 && ix >= 0 && iy < std::ptrdiff_t(H) && ix < std::ptrdiff_t(W);
      rows[i][j] = in ? image + (std::size_t(iy) * W + std::size_t(ix)) * C : nullptr;
    }
}

template <class D, class V>
HWY_INLINE V activate(D d, V v, Epilogue act) {
  using T = hn::TFromD<D>;
  if (act == Epilogue::relu) return hn::IfThenZeroElse(v <= hn::Zero(d), v);
  if (act == Epilogue::relu6) {
    const auto six = hn::Set(d, T(6));
    return hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < hn::Zero(d), v));
  }
  return v;
}

}  // namespace winograd_detail

// U[xi][c][f] = (G g G^T)[i][j] for g = w[.][.][c][f], w in Keras's [3][3][C][F] layout.
template <class T>
void winograd_f23_weights(std::size_t C, std::size_t F, const T* HWY_RESTRICT w,
                          T* HWY_RESTRICT U) {
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      const auto half = hn::Set(d, T(0.5));
      const auto g = [&](std::size_t a, std::size_t b) {
        return hn::LoadU(d, w + ((a * 3 + b) * C + c) * F + f);
      };
      using V = decltype(g(0, 0));
      V t[4][3];  // G g
      for (std::size_t b = 0; b < 3; ++b) {
        const V g0 = g(0, b), g1 = g(1, b), g2 = g(2, b);
        t[0][b] = g0;
        t[1][b] = hn::Mul(half, hn::Add(hn::Add(g0, g1), g2));
        t[2][b] = hn::Mul(half, hn::Add(hn::Sub(g0, g1), g2));
        t[3][b] = g2;
      }
      for (std::size_t i = 0; i < 4; ++i) {
        T* u = U + (i * 4 * C + c) * F + f;
        const std::size_t step = C * F;  // from xi to xi + 1
        hn::StoreU(t[i][0], d, u);
        hn::StoreU(hn::Mul(half, hn::Add(hn::Add(t[i][0], t[i][1]), t[i][2])), d, u + step);
        hn::StoreU(hn::Mul(half, hn::Add(hn::Sub(t[i][0], t[i][1]), t[i][2])), d, u + 2 * step);
        hn::StoreU(t[i][2], d, u + 3 * step);
      }
    });
}

// dw[a][b][c][f] = (G^T dU G)[a][b]: the adjoint of winograd_f23_weights (overwrites dw).
template <class T>
void winograd_f23_weights_adjoint(std::size_t C, std::size_t F, const T* HWY_RESTRICT dU,
                                  T* HWY_RESTRICT dw) {
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      const auto half = hn::Set(d, T(0.5));
      const auto u = [&](std::size_t i, std::size_t j) {
        return hn::LoadU(d, dU + ((i * 4 + j) * C + c) * F + f);
      };
      using V = decltype(u(0, 0));
      V t[3][4];  // G^T dU
      for (std::size_t j = 0; j < 4; ++j) {
        const V u0 = u(0, j), u1 = u(1, j), u2 = u(2, j), u3 = u(3, j);
        const V s = hn::Mul(half, hn::Add(u1, u2)), e = hn::Mul(half, hn::Sub(u1, u2));
        t[0][j] = hn::Add(u0, s);
        t[1][j] = e;
        t[2][j] = hn::Add(s, u3);
      }
      for (std::size_t a = 0; a < 3; ++a) {
        const V s = hn::Mul(half, hn::Add(t[a][1], t[a][2]));
        const V e = hn::Mul(half, hn::Sub(t[a][1], t[a][2]));
        hn::StoreU(hn::Add(t[a][0], s), d, dw + ((a * 3 + 0) * C + c) * F + f);
        hn::StoreU(e, d, dw + ((a * 3 + 1) * C + c) * F + f);
        hn::StoreU(hn::Add(s, t[a][3]), d, dw + ((a * 3 + 2) * C + c) * F + f);
      }
    });
}

// V[xi * v_stride + (ty * tw + tx) * C + c] = (B^T d B)[i][j], d the 4x4 window of channel c
// of x ([H][W][C]) at tile (ty, tx), for th x tw tiles.
template <class T>
void winograd_f23_input(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                        std::size_t pad_left, std::size_t th, std::size_t tw,
                        const T* HWY_RESTRICT x, T* HWY_RESTRICT V, std::size_t v_stride) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* rows[4][4];  // the window's pixels, null in the padding
      winograd_detail::window<4, 2>(H, W, C, pad_top, pad_left, ty, tx, x, rows);
      T* out = V + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        const auto ld = [&](std::size_t i, std::size_t j) {
          return rows[i][j] ? hn::LoadU(d, rows[i][j] + c) : hn::Zero(d);
        };
        using Vec = decltype(ld(0, 0));
        Vec t[4][4];  // B^T d
        for (std::size_t j = 0; j < 4; ++j) {
          const Vec d0 = ld(0, j), d1 = ld(1, j), d2 = ld(2, j), d3 = ld(3, j);
          t[0][j] = hn::Sub(d0, d2);
          t[1][j] = hn::Add(d1, d2);
          t[2][j] = hn::Sub(d2, d1);
          t[3][j] = hn::Sub(d1, d3);
        }
        for (std::size_t i = 0; i < 4; ++i) {
          T* o = out + 4 * i * v_stride + c;
          hn::StoreU(hn::Sub(t[i][0], t[i][2]), d, o);
          hn::StoreU(hn::Add(t[i][1], t[i][2]), d, o + v_stride);
          hn::StoreU(hn::Sub(t[i][2], t[i][1]), d, o + 2 * v_stride);
          hn::StoreU(hn::Sub(t[i][1], t[i][3]), d, o + 3 * v_stride);
        }
      });
    }
}

// dx += the adjoint of winograd_f23_input applied to dV: each tile's (B dV B^T) added into the
// window it was read from, inside the image. Tiles are visited in order (they overlap by two
// rows and columns), so the sums have a fixed order.
template <class T>
void winograd_f23_input_adjoint(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                                std::size_t pad_left, std::size_t th, std::size_t tw,
                                const T* HWY_RESTRICT dV, std::size_t v_stride,
                                T* HWY_RESTRICT dx) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* rows[4][4];
      winograd_detail::window<4, 2>(H, W, C, pad_top, pad_left, ty, tx, dx, rows);
      const T* in = dV + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        const auto v = [&](std::size_t p, std::size_t q) {
          return hn::LoadU(d, in + (4 * p + q) * v_stride + c);
        };
        using Vec = decltype(v(0, 0));
        Vec t[4][4];  // dV B^T: t[p][j] = sum_q dV[p][q] B^T[q][j]
        for (std::size_t p = 0; p < 4; ++p) {
          const Vec v0 = v(p, 0), v1 = v(p, 1), v2 = v(p, 2), v3 = v(p, 3);
          t[p][0] = v0;
          t[p][1] = hn::Add(hn::Sub(v1, v2), v3);
          t[p][2] = hn::Add(hn::Sub(v1, v0), v2);
          t[p][3] = hn::Neg(v3);
        }
        for (std::size_t j = 0; j < 4; ++j) {  // B t: rows i from the p's
          const Vec s[4] = {t[0][j], hn::Add(hn::Sub(t[1][j], t[2][j]), t[3][j]),
                            hn::Add(hn::Sub(t[1][j], t[0][j]), t[2][j]), hn::Neg(t[3][j])};
          for (std::size_t i = 0; i < 4; ++i)
            if (T* px = rows[i][j]) hn::StoreU(hn::Add(hn::LoadU(d, px + c), s[i]), d, px + c);
        }
      });
    }
}

// y[2ty + a][2tx + b][f] = act((A^T M A)[a][b] + bias[f]) inside oh x ow (y is [oh][ow][F]);
// bias may be null.
template <class T>
void winograd_f23_output(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                         std::size_t tw, const T* HWY_RESTRICT M, std::size_t m_stride,
                         const T* HWY_RESTRICT bias, Epilogue act, T* HWY_RESTRICT y) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* in = M + (ty * tw + tx) * F;
      const bool down = 2 * ty + 1 < oh, right = 2 * tx + 1 < ow;
      T* y00 = y + ((2 * ty) * ow + 2 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        const auto m = [&](std::size_t i, std::size_t j) {
          return hn::LoadU(d, in + (4 * i + j) * m_stride + f);
        };
        using Vec = decltype(m(0, 0));
        Vec t[2][4];  // A^T M
        for (std::size_t j = 0; j < 4; ++j) {
          const Vec m0 = m(0, j), m1 = m(1, j), m2 = m(2, j), m3 = m(3, j);
          t[0][j] = hn::Add(hn::Add(m0, m1), m2);
          t[1][j] = hn::Sub(hn::Sub(m1, m2), m3);
        }
        const Vec b = bias ? hn::LoadU(d, bias + f) : hn::Zero(d);
        for (std::size_t a = 0; a < 2; ++a) {
          if (a == 1 && !down) break;
          T* row = y00 + a * ow * F + f;
          const Vec v0 = hn::Add(hn::Add(hn::Add(t[a][0], t[a][1]), t[a][2]), b);
          hn::StoreU(winograd_detail::activate(d, v0, act), d, row);
          if (right) {
            const Vec v1 = hn::Add(hn::Sub(hn::Sub(t[a][1], t[a][2]), t[a][3]), b);
            hn::StoreU(winograd_detail::activate(d, v1, act), d, row + F);
          }
        }
      });
    }
}

// dM = the adjoint of winograd_f23_output's linear part applied to dy ([oh][ow][F]): each tile's
// A dY A^T, with dY zero past oh x ow (dy is the gradient after the activation; the caller
// applies the activation's derivative before).
template <class T>
void winograd_f23_output_adjoint(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                                 std::size_t tw, const T* HWY_RESTRICT dy, T* HWY_RESTRICT dM,
                                 std::size_t m_stride) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* out = dM + (ty * tw + tx) * F;
      const bool down = 2 * ty + 1 < oh, right = 2 * tx + 1 < ow;
      const T* y00 = dy + ((2 * ty) * ow + 2 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec g[2][2];
        for (std::size_t a = 0; a < 2; ++a) {
          const bool row = a == 0 || down;
          g[a][0] = row ? hn::LoadU(d, y00 + a * ow * F + f) : hn::Zero(d);
          g[a][1] = row && right ? hn::LoadU(d, y00 + a * ow * F + F + f) : hn::Zero(d);
        }
        // r[a][j] = sum_b dY[a][b] A^T[b][j]: columns j of A^T are (1,0), (1,1), (1,-1), (0,-1).
        Vec r[2][4];
        for (std::size_t a = 0; a < 2; ++a) {
          r[a][0] = g[a][0];
          r[a][1] = hn::Add(g[a][0], g[a][1]);
          r[a][2] = hn::Sub(g[a][0], g[a][1]);
          r[a][3] = hn::Neg(g[a][1]);
        }
        for (std::size_t j = 0; j < 4; ++j) {
          T* o = out + j * m_stride + f;
          hn::StoreU(r[0][j], d, o);
          hn::StoreU(hn::Add(r[0][j], r[1][j]), d, o + 4 * m_stride);
          hn::StoreU(hn::Sub(r[0][j], r[1][j]), d, o + 8 * m_stride);
          hn::StoreU(hn::Neg(r[1][j]), d, o + 12 * m_stride);
        }
      });
    }
}

// ---- F(4x4, 3x3) ----
// The same scheme with 6x6 windows read every 4 pixels and 4x4 blocks of outputs: 36
// multiplications per 4x4 outputs and channel pair where the direct convolution takes 144 (1/4,
// against F(2x2)'s 1/2.25), and 36 / 16 = 2.25 transformed values per output against F(2x2)'s 4,
// so V and M take 44% less memory and traffic. Lavin and Gray's matrices (interpolation points
// 0, 1, -1, 2, -2 and infinity):
//   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1],
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0;  0 1 -1 2 -2 0;  0 1 1 4 4 0;  0 1 -1 8 -8 1].
// The points' powers (up to 8) and G's sixths round more: tests/kernels/test_winograd.cpp bounds
// F(4x4)'s difference from the direct convolution 3x looser than F(2x2)'s (1e-6 x sqrt(terms) fails
// it in float for a 28 x 28 weight gradient of 784 terms). Positions xi = 6i + j of the 6x6
// transformed tile; tile (ty, tx) covers outputs (4ty + a, 4tx + b), a, b in 0..3, and reads input
// rows 4ty - pad_top + i, columns 4tx - pad_left + j, i, j in 0..5 (zero outside the input);
// outputs past oh x ow are not written. Each function below is its F(2x2) namesake with these
// matrices.
namespace winograd_detail {

// The 1-D maps, y = Mat x for Mat = B^T, B, G, G^T, A^T and A, with shared partial sums.
struct F43 {
  template <class D, class V>
  static HWY_INLINE void bt(D d, const V (&x)[6], V (&y)[6]) {  // B^T
    using T = hn::TFromD<D>;
    const V four = hn::Set(d, T(4)), five = hn::Set(d, T(5)), two = hn::Set(d, T(2));
    y[0] = hn::MulAdd(four, x[0], hn::NegMulAdd(five, x[2], x[4]));
    y[1] = hn::NegMulAdd(four, hn::Add(x[1], x[2]), hn::Add(x[3], x[4]));
    y[2] = hn::MulAdd(four, hn::Sub(x[1], x[2]), hn::Sub(x[4], x[3]));
    const V g = hn::Sub(x[4], x[2]), h = hn::Sub(x[3], x[1]);
    y[3] = hn::MulAdd(two, h, g);
    y[4] = hn::NegMulAdd(two, h, g);
    y[5] = hn::MulAdd(four, x[1], hn::NegMulAdd(five, x[3], x[5]));
  }
  template <class D, class V>
  static HWY_INLINE void b(D d, const V (&g)[6], V (&y)[6]) {  // B = (B^T)^T
    using T = hn::TFromD<D>;
    const V four = hn::Set(d, T(4)), five = hn::Set(d, T(5)), two = hn::Set(d, T(2));
    y[0] = hn::Mul(four, g[0]);
    y[1] = hn::MulAdd(four, hn::Add(hn::Sub(g[2], g[1]), g[5]), hn::Mul(two, hn::Sub(g[4], g[3])));
    y[2] = hn::Neg(hn::Add(hn::MulAdd(five, g[0], hn::Mul(four, hn::Add(g[1], g[2]))),
                           hn::Add(g[3], g[4])));
    y[3] = hn::NegMulAdd(five, g[5], hn::MulAdd(two, hn::Sub(g[3], g[4]), hn::Sub(g[1], g[2])));
    y[4] = hn::Add(hn::Add(hn::Add(g[0], g[1]), hn::Add(g[2], g[3])), g[4]);
    y[5] = g[5];
  }
  template <class D, class V>
  static HWY_INLINE void g(D d, const V (&x)[3], V (&y)[6]) {  // G
    using T = hn::TFromD<D>;
    const V quarter = hn::Set(d, T(1) / T(4)), msixth = hn::Set(d, T(-1) / T(6));
    const V c24 = hn::Set(d, T(1) / T(24)), c12 = hn::Set(d, T(1) / T(12)),
            c6 = hn::Set(d, T(1) / T(6));
    const V s = hn::Add(x[0], x[2]);
    const V t = hn::MulAdd(c24, x[0], hn::Mul(c6, x[2]));
    y[0] = hn::Mul(quarter, x[0]);
    y[1] = hn::Mul(msixth, hn::Add(s, x[1]));
    y[2] = hn::Mul(msixth, hn::Sub(s, x[1]));
    y[3] = hn::MulAdd(c12, x[1], t);
    y[4] = hn::NegMulAdd(c12, x[1], t);
    y[5] = x[2];
  }
  template <class D, class V>
  static HWY_INLINE void gt(D d, const V (&u)[6], V (&y)[3]) {  // G^T
    using T = hn::TFromD<D>;
    const V quarter = hn::Set(d, T(1) / T(4)), msixth = hn::Set(d, T(-1) / T(6));
    const V c24 = hn::Set(d, T(1) / T(24)), c12 = hn::Set(d, T(1) / T(12)),
            c6 = hn::Set(d, T(1) / T(6));
    const V p = hn::Add(u[1], u[2]), q = hn::Add(u[3], u[4]);
    y[0] = hn::MulAdd(quarter, u[0], hn::MulAdd(msixth, p, hn::Mul(c24, q)));
    y[1] = hn::MulAdd(c6, hn::Sub(u[2], u[1]), hn::Mul(c12, hn::Sub(u[3], u[4])));
    y[2] = hn::Add(hn::MulAdd(msixth, p, hn::Mul(c6, q)), u[5]);
  }
  template <class D, class V>
  static HWY_INLINE void at(D d, const V (&m)[6], V (&y)[4]) {  // A^T
    using T = hn::TFromD<D>;
    const V two = hn::Set(d, T(2)), four = hn::Set(d, T(4)), eight = hn::Set(d, T(8));
    const V p = hn::Add(m[1], m[2]), q = hn::Add(m[3], m[4]);
    const V r = hn::Sub(m[1], m[2]), s = hn::Sub(m[3], m[4]);
    y[0] = hn::Add(hn::Add(m[0], p), q);
    y[1] = hn::MulAdd(two, s, r);
    y[2] = hn::MulAdd(four, q, p);
    y[3] = hn::Add(hn::MulAdd(eight, s, r), m[5]);
  }
  template <class D, class V>
  static HWY_INLINE void a(D d, const V (&g)[4], V (&y)[6]) {  // A = (A^T)^T
    using T = hn::TFromD<D>;
    const V two = hn::Set(d, T(2)), four = hn::Set(d, T(4)), eight = hn::Set(d, T(8));
    const V p = hn::Add(g[0], g[2]), q = hn::Add(g[1], g[3]);
    const V r = hn::MulAdd(four, g[2], g[0]), s = hn::MulAdd(two, g[1], hn::Mul(eight, g[3]));
    y[0] = g[0];
    y[1] = hn::Add(p, q);
    y[2] = hn::Sub(p, q);
    y[3] = hn::Add(r, s);
    y[4] = hn::Sub(r, s);
    y[5] = g[3];
  }
};

// out = Mat in Mat^T for the 1-D map f (y = Mat x): f on every column of in, then on every row
// of that, so out[i][j] = sum_k sum_l Mat[i][k] in[k][l] Mat[j][l].
template <std::size_t R, std::size_t N, class D, class V, class F>
HWY_INLINE void separable(D d, const V (&in)[N][N], V (&out)[R][R], F&& f) {
  V t[R][N];
  for (std::size_t j = 0; j < N; ++j) {
    V col[N], res[R];
    for (std::size_t i = 0; i < N; ++i) col[i] = in[i][j];
    f(d, col, res);
    for (std::size_t i = 0; i < R; ++i) t[i][j] = res[i];
  }
  for (std::size_t i = 0; i < R; ++i) f(d, t[i], out[i]);
}

}  // namespace winograd_detail

// U[xi][c][f] = (G g G^T)[i][j], xi = 6i + j, for g = w[.][.][c][f] (Keras's [3][3][C][F]).
template <class T>
void winograd_f43_weights(std::size_t C, std::size_t F, const T* HWY_RESTRICT w,
                          T* HWY_RESTRICT U) {
  using winograd_detail::F43;
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      using V = decltype(hn::Zero(d));
      V g[3][3], u[6][6];
      for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = 0; b < 3; ++b)
          g[a][b] = hn::LoadU(d, w + ((a * 3 + b) * C + c) * F + f);
      winograd_detail::separable<6>(d, g, u, [](auto dd, auto& x, auto& y) CTNN_WG_INLINE {
        F43::g(dd, x, y);
      });
      for (std::size_t xi = 0; xi < 36; ++xi)
        hn::StoreU(u[xi / 6][xi % 6], d, U + (xi * C + c) * F + f);
    });
}

// dw[a][b][c][f] = (G^T dU G)[a][b]: the adjoint of winograd_f43_weights (overwrites dw).
template <class T>
void winograd_f43_weights_adjoint(std::size_t C, std::size_t F, const T* HWY_RESTRICT dU,
                                  T* HWY_RESTRICT dw) {
  using winograd_detail::F43;
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      using V = decltype(hn::Zero(d));
      V u[6][6], g[3][3];
      for (std::size_t xi = 0; xi < 36; ++xi)
        u[xi / 6][xi % 6] = hn::LoadU(d, dU + (xi * C + c) * F + f);
      winograd_detail::separable<3>(d, u, g, [](auto dd, auto& x, auto& y) CTNN_WG_INLINE {
        F43::gt(dd, x, y);
      });
      for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = 0; b < 3; ++b)
          hn::StoreU(g[a][b], d, dw + ((a * 3 + b) * C + c) * F + f);
    });
}

// V[xi * v_stride + (ty * tw + tx) * C + c] = (B^T d B)[i][j], d the 6x6 window of channel c
// of x ([H][W][C]) at tile (ty, tx), for th x tw tiles.
template <class T>
void winograd_f43_input(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                        std::size_t pad_left, std::size_t th, std::size_t tw,
                        const T* HWY_RESTRICT x, T* HWY_RESTRICT V, std::size_t v_stride) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* rows[6][6];
      winograd_detail::window<6, 4>(H, W, C, pad_top, pad_left, ty, tx, x, rows);
      T* out = V + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec win[6][6], v[6][6];
        for (std::size_t i = 0; i < 6; ++i)
          for (std::size_t j = 0; j < 6; ++j)
            win[i][j] = rows[i][j] ? hn::LoadU(d, rows[i][j] + c) : hn::Zero(d);
        winograd_detail::separable<6>(d, win, v, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::bt(dd, a, b);
        });
        for (std::size_t xi = 0; xi < 36; ++xi)
          hn::StoreU(v[xi / 6][xi % 6], d, out + xi * v_stride + c);
      });
    }
}

// dx += the adjoint of winograd_f43_input applied to dV: each tile's (B dV B^T) added into the
// window it was read from, inside the image, tiles in order (they overlap by two rows and
// columns), so the sums have a fixed order.
template <class T>
void winograd_f43_input_adjoint(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                                std::size_t pad_left, std::size_t th, std::size_t tw,
                                const T* HWY_RESTRICT dV, std::size_t v_stride,
                                T* HWY_RESTRICT dx) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* rows[6][6];
      winograd_detail::window<6, 4>(H, W, C, pad_top, pad_left, ty, tx, dx, rows);
      const T* in = dV + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec v[6][6], s[6][6];
        for (std::size_t xi = 0; xi < 36; ++xi)
          v[xi / 6][xi % 6] = hn::LoadU(d, in + xi * v_stride + c);
        winograd_detail::separable<6>(d, v, s, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::b(dd, a, b);
        });
        for (std::size_t i = 0; i < 6; ++i)
          for (std::size_t j = 0; j < 6; ++j)
            if (T* px = rows[i][j]) hn::StoreU(hn::Add(hn::LoadU(d, px + c), s[i][j]), d, px + c);
      });
    }
}

// y[4ty + a][4tx + b][f] = act((A^T M A)[a][b] + bias[f]) inside oh x ow (y is [oh][ow][F]);
// bias may be null.
template <class T>
void winograd_f43_output(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                         std::size_t tw, const T* HWY_RESTRICT M, std::size_t m_stride,
                         const T* HWY_RESTRICT bias, Epilogue act, T* HWY_RESTRICT y) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* in = M + (ty * tw + tx) * F;
      const std::size_t rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4;
      const std::size_t cols = ow - 4 * tx < 4 ? ow - 4 * tx : 4;
      T* y00 = y + ((4 * ty) * ow + 4 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec m[6][6], o[4][4];
        for (std::size_t xi = 0; xi < 36; ++xi)
          m[xi / 6][xi % 6] = hn::LoadU(d, in + xi * m_stride + f);
        winograd_detail::separable<4>(d, m, o, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::at(dd, a, b);
        });
        const Vec b = bias ? hn::LoadU(d, bias + f) : hn::Zero(d);
        for (std::size_t a = 0; a < rows; ++a)
          for (std::size_t c = 0; c < cols; ++c)
            hn::StoreU(winograd_detail::activate(d, hn::Add(o[a][c], b), act), d,
                       y00 + (a * ow + c) * F + f);
      });
    }
}

// dM = the adjoint of winograd_f43_output's linear part applied to dy ([oh][ow][F]): each tile's
// A dY A^T, with dY zero past oh x ow (dy is the gradient after the activation).
template <class T>
void winograd_f43_output_adjoint(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                                 std::size_t tw, const T* HWY_RESTRICT dy, T* HWY_RESTRICT dM,
                                 std::size_t m_stride) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* out = dM + (ty * tw + tx) * F;
      const std::size_t rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4;
      const std::size_t cols = ow - 4 * tx < 4 ? ow - 4 * tx : 4;
      const T* y00 = dy + ((4 * ty) * ow + 4 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec g[4][4], m[6][6];
        for (std::size_t a = 0; a < 4; ++a)
          for (std::size_t c = 0; c < 4; ++c)
            g[a][c] = a < rows && c < cols ? hn::LoadU(d, y00 + (a * ow + c) * F + f) : hn::Zero(d);
        winograd_detail::separable<6>(d, g, m, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::a(dd, a, b);
        });
        for (std::size_t xi = 0; xi < 36; ++xi)
          hn::StoreU(m[xi / 6][xi % 6], d, out + xi * m_stride + f);
      });
    }
}

#undef CTNN_WG_INLINE

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::winograd_f23_input;
using ctnn::HWY_NAMESPACE::winograd_f23_input_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f23_output;
using ctnn::HWY_NAMESPACE::winograd_f23_output_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f23_weights;
using ctnn::HWY_NAMESPACE::winograd_f23_weights_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_input;
using ctnn::HWY_NAMESPACE::winograd_f43_input_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_output;
using ctnn::HWY_NAMESPACE::winograd_f43_output_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_weights;
using ctnn::HWY_NAMESPACE::winograd_f43_weights_adjoint;
}  // namespace ctnn::kernels
