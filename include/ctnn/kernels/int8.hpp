// ctnn/kernels/int8.hpp: the 8-bit integer kernels behind deploy/quantize.hpp.
//
//   pack_int8_weights: W(k, n) (int8, any strides) -> the packed layout gemm_int8 reads
//   gemm_int8:         C[m][n] = sum_k A[m][k] * W(k, n)   (A int8 or uint8, W int8, C int32)
//   quantize_8bit:     q = clamp(round_even(x * inv_scale))           (float -> int8/uint8)
//   requantize_8bit:   q = clamp(round_even((C * mult[n] + bias[n]) * inv_scale))
//   dequantize_int32:  y = act(C * mult[n] + bias[n])                  (-> float)
//
// How gemm_int8 multiplies: x86 before AVX-512 VNNI has no 8-bit dot product that is exact for
// signed x signed bytes (pmaddubsw saturates), so both operands are widened to int16 and
// multiplied pairwise into int32 lanes (Highway 1.0.3's ReorderWidenMulAccumulate, vpmaddwd on
// AVX2): one instruction does 2 multiply-adds per 32-bit lane, |a| <= 255 and |w| <= 127 keep
// every product exact and a sum of K < 2^31 / (255 * 127) ~ 66,000 terms cannot overflow.
// The product is vectorized along N (output channels): W is packed as [K/2][Np][2], so one
// 16-byte load widens to the weights of L columns for two consecutive k, and one broadcast 32-bit
// pair (a[k], a[k+1]) of a row of A serves every column vector. Columns are padded to
// kInt8ColumnPad and an odd K gets a zero k, both in the packing, so the inner loop has no tail.
// Integer sums are exact, so results are bitwise identical at any tile, block or thread split.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ctnn/core/error.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/gemm.hpp"
#include "ctnn/kernels/highway.hpp"

namespace ctnn::kernels {

// Packed weight columns are padded to a multiple of the widest int32 vector of the target.
inline constexpr std::size_t kInt8ColumnPad = HWY_MAX_BYTES / sizeof(std::int32_t);

constexpr std::size_t int8_padded_columns(std::size_t N) {
  return (N + kInt8ColumnPad - 1) / kInt8ColumnPad * kInt8ColumnPad;
}
// Bytes of the packed form of a K x N int8 weight matrix.
constexpr std::size_t int8_packed_size(std::size_t K, std::size_t N) {
  return (K + 1) / 2 * int8_padded_columns(N) * 2;
}

// Writes the packed form of W(k, n) = W[k * w_k + n * w_n] (K x N) into `packed`
// (int8_packed_size(K, N) bytes): packed[((k / 2) * Np + n) * 2 + k % 2] = W(k, n), zero in the
// padding. Dense weights [N][K] are w_k = 1, w_n = K; Conv2D's HWIO [K][N] are w_k = N, w_n = 1.
// constexpr so an exported header's weights are packed by the compiler, for its own target.
constexpr void pack_int8_weights(std::size_t K, std::size_t N, const std::int8_t* W, std::size_t w_k,
                                 std::size_t w_n, std::int8_t* packed) {
  const std::size_t Np = int8_padded_columns(N);
  for (std::size_t i = 0; i < int8_packed_size(K, N); ++i) packed[i] = 0;
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t n = 0; n < N; ++n) packed[((k / 2) * Np + n) * 2 + k % 2] = W[k * w_k + n * w_n];
}

// Value range of an 8-bit activation: uint8 [0, 255]; int8 symmetric [-127, 127] (-128 is left
// out so negation and symmetric scales stay exact).
template <class Q>
inline constexpr int kQuantMin = std::is_signed_v<Q> ? -127 : 0;
template <class Q>
inline constexpr int kQuantMax = std::is_signed_v<Q> ? 127 : 255;

}  // namespace ctnn::kernels

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// gemm_int8 tile: MR rows x NV int32 vectors. With 16 registers, 6 x 2 holds 12 accumulators,
// 2 widened weight vectors and 1 broadcast pair (the same budget as gemm_nn's float tile); 32
// registers allow 6 x 4.
inline constexpr std::size_t kI8MR = 6;
inline constexpr std::size_t kI8NV = kVectorRegisters == 16 ? 2 : 4;
// Pairs of k per block: for a 2-vector column tile on AVX2, 256 pairs are 8 KiB of packed weights,
// so the panel stays in L1 while every row tile passes over it. SCALAR (a microcontroller build)
// has no such cache but a small stack: 32 pairs keep gemm_int8's widened rows at 768 bytes.
inline constexpr std::size_t kI8KC = HWY_TARGET == HWY_SCALAR ? 32 : 256;

// Rows [0, rows) of A, k in [2 p0, min(2 p1, K)), widened to int16 into w[r * 2 * kI8KC + ...]
// with a zero after an odd K: each (k, k+1) int16 pair is then one 32-bit value that the tile
// broadcasts with a single load, instead of assembling it from two bytes for every column tile.
template <class TA>
HWY_INLINE void widen_rows(std::size_t rows, std::size_t p0, std::size_t p1, std::size_t K,
                           const TA* HWY_RESTRICT A, std::size_t lda, std::int16_t* HWY_RESTRICT w) {
  const hn::ScalableTag<std::int16_t> d16;
  const hn::Rebind<TA, decltype(d16)> d8;
  const std::size_t L = hn::Lanes(d16);
  const std::size_t k0 = 2 * p0, k1 = 2 * p1 < K ? 2 * p1 : K;
  for (std::size_t r = 0; r < rows; ++r) {
    const TA* a = A + r * lda;
    std::int16_t* out = w + r * 2 * kI8KC - k0;
    std::size_t k = k0;
    for (; k + L <= k1; k += L) hn::StoreU(hn::PromoteTo(d16, hn::LoadU(d8, a + k)), d16, out + k);
    for (; k < k1; ++k) out[k] = std::int16_t(a[k]);
    if (k1 % 2 == 1) out[k1] = 0;
  }
}

// One MR x NV tile over `count` pairs: C (+)= A * W for those k. Aw: the widened rows
// (widen_rows), Bp: the packed weights from the block's first pair and the tile's first column.
#if HWY_TARGET == HWY_SCALAR
// SCALAR (e.g. a Cortex-M build) has one lane per vector, too few to hold an int16 pair in an int32
// lane: the tile is plain C++ over the same packed layout, one column per "vector" (L = 1).
template <std::size_t MR, std::size_t NV>
HWY_INLINE void int8_tile(std::size_t count, const std::int16_t* HWY_RESTRICT Aw,
                          const std::int8_t* HWY_RESTRICT Bp, std::size_t Np,
                          std::int32_t* HWY_RESTRICT C, std::size_t ldc, std::size_t cols,
                          bool accumulate) {
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NV && c < cols; ++c) {
      std::int32_t s = 0;
      for (std::size_t p = 0; p < count; ++p) {
        const std::int8_t* w = Bp + (p * Np + c) * 2;
        s += std::int32_t(Aw[r * 2 * kI8KC + 2 * p]) * w[0] +
             std::int32_t(Aw[r * 2 * kI8KC + 2 * p + 1]) * w[1];
      }
      std::int32_t* out = C + r * ldc + c;
      *out = (accumulate ? *out : 0) + s;
    }
}
#else
template <std::size_t MR, std::size_t NV>
HWY_INLINE void int8_tile(std::size_t count, const std::int16_t* HWY_RESTRICT Aw,
                          const std::int8_t* HWY_RESTRICT Bp, std::size_t Np,
                          std::int32_t* HWY_RESTRICT C, std::size_t ldc, std::size_t cols,
                          bool accumulate) {
  const hn::ScalableTag<std::int32_t> d32;
  const hn::Repartition<std::int16_t, decltype(d32)> d16;
  const hn::Rebind<std::int8_t, decltype(d16)> d8;
  const std::size_t L = hn::Lanes(d32);
  using V32 = hn::Vec<decltype(d32)>;
  using V16 = hn::Vec<decltype(d16)>;
  // sum1 is Highway's second accumulator for targets whose widening multiply splits odd and even
  // lanes (on AVX2 it stays zero and the compiler drops it).
  V32 s0[MR][NV], s1[MR][NV];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) s0[r][c] = s1[r][c] = hn::Zero(d32);
  for (std::size_t p = 0; p < count; ++p) {
    V16 b[NV];
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c)
      b[c] = hn::PromoteTo(d16, hn::LoadU(d8, Bp + (p * Np + c * L) * 2));
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      std::int32_t pair;  // (A(r, 2p), A(r, 2p+1)) as the int16 halves of one int32
      std::memcpy(&pair, Aw + r * 2 * kI8KC + 2 * p, sizeof pair);
      const V16 a = hn::BitCast(d16, hn::Set(d32, pair));
      HWY_UNROLL(16)
      for (std::size_t c = 0; c < NV; ++c)
        s0[r][c] = hn::ReorderWidenMulAccumulate(d32, a, b[c], s0[r][c], s1[r][c]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) {
      V32 s = hn::RearrangeToOddPlusEven(s0[r][c], s1[r][c]);
      std::int32_t* out = C + r * ldc + c * L;
      if (c * L + L <= cols) {
        if (accumulate) s = hn::Add(s, hn::LoadU(d32, out));
        hn::StoreU(s, d32, out);
      } else {  // the last, partial column vector: only `cols - c * L` outputs exist
        alignas(64) std::int32_t lanes[HWY_MAX_BYTES / sizeof(std::int32_t)];
        hn::Store(s, d32, lanes);
        for (std::size_t j = 0; c * L + j < cols; ++j) out[j] = (accumulate ? out[j] : 0) + lanes[j];
      }
    }
}
#endif  // HWY_TARGET == HWY_SCALAR

// C[M x N] = A[M x K] * W[K x N] in int32, W given packed (kernels::pack_int8_weights). TA is
// int8_t or uint8_t. lda >= K, ldc >= N.
template <class TA>
void gemm_int8(std::size_t M, std::size_t N, std::size_t K, const TA* A, std::size_t lda,
               const std::int8_t* Bp, std::int32_t* C, std::size_t ldc) {
  static_assert(std::is_same_v<TA, std::int8_t> || std::is_same_v<TA, std::uint8_t>,
                "gemm_int8 multiplies int8 or uint8 activations by int8 weights.");
  const hn::ScalableTag<std::int32_t> d32;
  const std::size_t L = hn::Lanes(d32);
  const std::size_t Np = kernels::int8_padded_columns(N);
  const std::size_t pairs = (K + 1) / 2;
  const std::size_t vecs = (N + L - 1) / L;  // column vectors, the last maybe partial
  if (K == 0) {  // empty sums; the packed weights may be an empty (null) buffer
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n) C[m * ldc + n] = 0;
    return;
  }
  parallel_for_range(
      (vecs + kI8NV - 1) / kI8NV,
      [&](std::size_t t0, std::size_t t1) {
        const std::size_t v0 = t0 * kI8NV, v1 = t1 * kI8NV < vecs ? t1 * kI8NV : vecs;
        // The widened rows of a row tile for one K block: 6 x 512 int16 = 6 KiB (768 bytes on
        // SCALAR), on the stack of each thread (L1-resident while every column tile reads it).
        alignas(64) std::int16_t Aw[kI8MR * 2 * kI8KC];
        for (std::size_t p0 = 0; p0 < pairs || p0 == 0; p0 += kI8KC) {
          const std::size_t p1 = p0 + kI8KC < pairs ? p0 + kI8KC : pairs;
          const bool acc = p0 != 0;
          const std::int8_t* Bk = Bp + p0 * Np * 2;
          // Rows [m, m + MR) against the thread's columns.
          const auto rows = [&]<std::size_t MR>(std::size_t m) {
            widen_rows(MR, p0, p1, K, A + m * lda, lda, Aw);
            std::size_t v = v0;
            for (; v + kI8NV <= v1; v += kI8NV)
              int8_tile<MR, kI8NV>(p1 - p0, Aw, Bk + v * L * 2, Np, C + m * ldc + v * L, ldc,
                                   N - v * L, acc);
            for (; v < v1; ++v)
              int8_tile<MR, 1>(p1 - p0, Aw, Bk + v * L * 2, Np, C + m * ldc + v * L, ldc,
                               N - v * L, acc);
          };
          std::size_t m = 0;
          for (; m + kI8MR <= M; m += kI8MR) rows.template operator()<kI8MR>(m);
          for (; m < M; ++m) rows.template operator()<1>(m);
          if (pairs == 0) break;
        }
      },
      M * N * K >= kParallelWork);
}

// Shared by the stores below: f(d, i) computes the float values of elements [i, i + Lanes(d)) of
// a row; full vectors use the native tag and the tail a one-lane tag (one copy of the math).
template <class F>
HWY_INLINE void for_row(std::size_t N, F f) {
  const hn::ScalableTag<float> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = N - N % L;
  std::size_t i = 0;
  for (; i < full; i += L) f(d, i);
  const hn::CappedTag<float, 1> d1;
  for (; i < N; ++i) f(d1, i);
}

// Rounds (ties to even, as NearestInt does in the default rounding mode), clamps to Q's range
// and stores as Q. `lo` raises the lower bound (0 applies a ReLU).
template <class Q, class D, class V>
HWY_INLINE void store_quantized(D df, V y, int lo, Q* out) {
  const hn::RebindToSigned<D> di;
  const hn::Rebind<Q, D> dq;
  auto q = hn::Min(hn::Max(hn::NearestInt(y), hn::Set(di, lo)), hn::Set(di, kernels::kQuantMax<Q>));
  (void)df;
  hn::StoreU(hn::DemoteTo(dq, q), dq, out);
}

// q[i] = clamp(round(x[i] * inv_scale)) for i < n.
template <class Q>
void quantize_8bit(std::size_t n, const float* HWY_RESTRICT x, float inv_scale, Q* HWY_RESTRICT q) {
  for_row(n, [&](auto d, std::size_t i) {
    store_quantized<Q>(d, hn::Mul(hn::LoadU(d, x + i), hn::Set(d, inv_scale)),
                       kernels::kQuantMin<Q>, q + i);
  });
}

// out[m][n] = clamp(round((C[m][n] * mult[n] + bias[n]) * inv_scale)), clamped at 0 below too
// with relu: a Dense/Conv2D output requantized straight to the next layer's input scale.
template <class Q>
void requantize_8bit(std::size_t M, std::size_t N, const std::int32_t* C, std::size_t ldc,
                     const float* mult, const float* bias, float inv_scale, bool relu, Q* out,
                     std::size_t ldo) {
  const int lo = relu ? 0 : kernels::kQuantMin<Q>;
  for (std::size_t m = 0; m < M; ++m)
    for_row(N, [&](auto d, std::size_t i) {
      const hn::RebindToSigned<decltype(d)> di;
      const auto y = hn::MulAdd(hn::ConvertTo(d, hn::LoadU(di, C + m * ldc + i)),
                                hn::LoadU(d, mult + i), hn::LoadU(d, bias + i));
      store_quantized<Q>(d, hn::Mul(y, hn::Set(d, inv_scale)), lo, out + m * ldo + i);
    });
}

// out[m][n] = act(C[m][n] * mult[n] + bias[n]) in float (the last quantized layer of a run).
inline void dequantize_int32(std::size_t M, std::size_t N, const std::int32_t* C, std::size_t ldc,
                             const float* mult, const float* bias, bool relu, float* out,
                             std::size_t ldo) {
  for (std::size_t m = 0; m < M; ++m)
    for_row(N, [&](auto d, std::size_t i) {
      const hn::RebindToSigned<decltype(d)> di;
      auto y = hn::MulAdd(hn::ConvertTo(d, hn::LoadU(di, C + m * ldc + i)), hn::LoadU(d, mult + i),
                          hn::LoadU(d, bias + i));
      if (relu) y = hn::IfThenZeroElse(y <= hn::Zero(d), y);  // NaN stays NaN, as relu_forward
      hn::StoreU(y, d, out + m * ldo + i);
    });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::dequantize_int32;
using ctnn::HWY_NAMESPACE::gemm_int8;
using ctnn::HWY_NAMESPACE::quantize_8bit;
using ctnn::HWY_NAMESPACE::requantize_8bit;
}  // namespace ctnn::kernels
