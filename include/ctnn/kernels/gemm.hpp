// ctnn/kernels/gemm.hpp: the matrix products behind Dense and Conv2D.
//
//   gemm_nt: C[m][n] = act(sum_k A[m][k] * B[n][k] + bias[n])   (dot products along contiguous K)
//   gemm_nn: C[m][n] (+)= act(sum_k A(m,k) * B[k][n] + bias[n])  (vectorized along contiguous N;
//            A(m,k) = A[m * a_m + k * a_k], so A may be read transposed: dW = dY^T X)
//
// Both are register-blocked: an MR x NR tile of vector accumulators stays in registers while K is
// walked, so each loaded vector feeds several FMAs. Every C element is summed in the same order
// whatever the tile or thread split (threads own disjoint column ranges), so results are bitwise
// identical at any thread count. gemm_nt adds the bias and applies the activation as it stores
// each sum (the epilogue), so its output is written once. gemm_nn walks K in blocks of KC and
// stores partial sums between them, so it applies bias and activation in a second sweep over its
// thread's columns after the last block (none when both are absent, as in backward).
#pragma once
#include <cstddef>
#include <type_traits>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/epilogue.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/highway.hpp"

namespace ctnn::kernels {
using ctnn::Epilogue;  // the activation applied in the store (core/epilogue.hpp)

// A stride of A known when the caller is compiled: gemm_nn_fixed<N>(..., A, kFixed<C>, kFixed<1>,
// ...) instead of gemm_nn's (C, 1). With run-time strides an MR-row tile needs MR row offsets
// in registers; x86's 16 general registers do not hold 12 of them beside the loop's pointers, so
// g++ reloads one from a spill before every broadcast FMA. A fixed stride makes each row's offset
// a constant in the instruction. Same operations in the same order: the results are bitwise those
// of the run-time stride. Measured on Zen 5 (AVX-512, one thread) for Winograd's 16-filter
// products when ResNet-8's 28 x 28 layers took F(2x2) (196 x 16 x 16, 16 per sample; F(4x4) now
// makes them 49 x 16 x 16, 36 per sample): 9.3-11.3 against 14.4-15.6 us; its weight gradient
// (16 x 16 x 6272, A transposed): 22-23 against 33 us.
template <std::size_t S>
inline constexpr std::integral_constant<std::size_t, S> kFixed{};

// Rows of A that gemm_nt accumulates at once (its row block).
inline constexpr std::size_t kGemmNtRows = 32;

// Scratch elements gemm_nt needs for an M x N product: one vector per output of a row block.
template <class T>
constexpr std::size_t gemm_nt_scratch(std::size_t M, std::size_t N) {
  return (M < kGemmNtRows ? M : kGemmNtRows) * N * (HWY_MAX_BYTES / sizeof(T));
}
}  // namespace ctnn::kernels

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using kernels::Epilogue;

// ReLU as kernels::relu_forward computes it: 0 where x <= 0, so NaN stays NaN. ReLU6 as
// kernels::bounded_relu_forward computes it (6 where x >= 6, 0 where x < 0), bit for bit.
template <class T>
HWY_INLINE T apply_epilogue(T x, Epilogue e) {
  if (e == Epilogue::relu6) return x >= T(6) ? T(6) : x < T(0) ? T(0) : x;
  return (e == Epilogue::relu && x <= T(0)) ? T(0) : x;
}

// Vector registers of the target: 16 on x86 up to AVX2, 32 with AVX-512 and on Arm (NEON, SVE).
// Tile sizes below are chosen so accumulators + operands fill them without spilling.
// CTNN_VECTOR_REGISTERS overrides it (the tests build the 32-register tiles on AVX2 machines too).
#if defined(CTNN_VECTOR_REGISTERS)
inline constexpr std::size_t kVectorRegisters = CTNN_VECTOR_REGISTERS;
#elif HWY_ARCH_X86 && HWY_TARGET >= HWY_AVX2
inline constexpr std::size_t kVectorRegisters = 16;
#else
inline constexpr std::size_t kVectorRegisters = 32;
#endif

// gemm_nt tile: MR rows of A x NR rows of B. The block of A comes from L2 and the B rows of a
// column tile from L1 (they are reused by every row). Measured at the Dense forward seed shape on
// Zen 3 (AVX2, 16 registers, one thread): 1 x 8 and 2 x 7 take 2.8-2.9 ms, 4 x 3 3.9 ms, 2 x 4
// 3.6 ms, 1 x 12 3.5 ms (spills). With 32 registers (Zen 5, AVX-512) 2 x 8 (16 accumulators, 10
// loads per 16 FMAs) beats 1 x 16 (17 loads per 16 FMAs) by 13-21% at M = 32 and 256 (1 and 2
// threads; 3 x 7 and 4 x 6 in between) and ties at M = 1. The tile shape does not change any
// output's operations (each is one vector accumulator over K in order): the same bits.
// The accumulators are whole vectors (lanes are summed only once, at the very end) and live in
// `acc` between K blocks.
inline constexpr std::size_t kNtMR = kVectorRegisters == 16 ? 1 : 2;
inline constexpr std::size_t kNtNR = 8;

template <std::size_t MR, std::size_t NR, class D, class T>
HWY_INLINE void nt_tile(D d, std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A,
                        std::size_t lda, const T* HWY_RESTRICT B, std::size_t ldb,
                        T* HWY_RESTRICT acc, std::size_t acc_ld, bool first) {
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<D>;
  V c[MR][NR];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j)
      c[r][j] = first ? hn::Zero(d) : hn::Load(d, acc + (r * acc_ld + j) * L);
  for (std::size_t k = k0; k < k1; k += L) {
    V b[NR];
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j) b[j] = hn::LoadU(d, B + j * ldb + k);
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      const V a = hn::LoadU(d, A + r * lda + k);
      HWY_UNROLL(16)
      for (std::size_t j = 0; j < NR; ++j) c[r][j] = hn::MulAdd(a, b[j], c[r][j]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j) hn::Store(c[r][j], d, acc + (r * acc_ld + j) * L);
}

// All rows of A against NR rows of B over [k0, k1): full MR tiles, then single rows.
template <std::size_t NR, class D, class T>
HWY_INLINE void nt_column(D d, std::size_t M, std::size_t k0, std::size_t k1, const T* A,
                          std::size_t lda, const T* B, std::size_t ldb, T* acc,
                          std::size_t acc_ld, bool first) {
  const std::size_t L = hn::Lanes(d);
  std::size_t m = 0;
  for (; m + kNtMR <= M; m += kNtMR)
    nt_tile<kNtMR, NR>(d, k0, k1, A + m * lda, lda, B, ldb, acc + m * acc_ld * L, acc_ld, first);
  for (; m < M; ++m)
    nt_tile<1, NR>(d, k0, k1, A + m * lda, lda, B, ldb, acc + m * acc_ld * L, acc_ld, first);
}

// C[M x N] = act(A[M x K] * B[N x K]^T + bias). bias may be null. `acc` is caller-provided,
// 64-byte aligned scratch of kernels::gemm_nt_scratch<T>(M, N) elements (vector accumulators,
// one per output of a block of rows; threads use disjoint columns of it).
//
// The Dense forward product: M is the batch (small), K the inputs (large). K is cut into blocks
// so a block of rows of A stays in cache while every column tile of B streams past it; B (the
// weights) is read from memory once per 32 rows. Each thread owns a range
// of columns and its own vector accumulators.
template <class T>
void gemm_nt(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
             std::size_t ldb, T* C, std::size_t ldc, const T* bias, Epilogue act,
             T* HWY_RESTRICT acc) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  // Measured at the seed shape (32 x 128 x 21632, Zen 3, one thread): blocks of 512 floats of K
  // and 32 rows (a 64 KiB block of A, in L2) beat 128 (A in L1) by ~20%: B is read as few longer
  // runs per row, which the hardware prefetchers follow; B is still read once per 32 rows.
  constexpr std::size_t KC = 2048 / sizeof(T);  // elements of K per block (a multiple of L)
  constexpr std::size_t MC = kernels::kGemmNtRows;  // rows of A per block
  const std::size_t kv = K - K % L;            // the vectorized part of K; the rest is scalar
  const std::size_t tiles = (N + kNtNR - 1) / kNtNR;
  parallel_for_range(
      tiles,
      [&](std::size_t t0, std::size_t t1) {
        const std::size_t n0 = t0 * kNtNR, n1 = t1 * kNtNR < N ? t1 * kNtNR : N;
        for (std::size_t m0 = 0; m0 < M; m0 += MC) {
          const std::size_t mc = M - m0 < MC ? M - m0 : MC;
          const T* Am = A + m0 * lda;
          for (std::size_t k0 = 0; k0 < kv || k0 == 0; k0 += KC) {
            const std::size_t k1 = k0 + KC < kv ? k0 + KC : kv;
            const bool first = k0 == 0;
            std::size_t n = n0;
            for (; n + kNtNR <= n1; n += kNtNR)
              nt_column<kNtNR>(d, mc, k0, k1, Am, lda, B + n * ldb, ldb, acc + n * L, N, first);
            for (; n < n1; ++n)
              nt_column<1>(d, mc, k0, k1, Am, lda, B + n * ldb, ldb, acc + n * L, N, first);
            if (kv == 0) break;
          }
          for (std::size_t m = 0; m < mc; ++m)
            for (std::size_t n = n0; n < n1; ++n) {
              T s = hn::GetLane(hn::SumOfLanes(d, hn::Load(d, acc + (m * N + n) * L)));
              const T* a = Am + m * lda;
              const T* b = B + n * ldb;
              for (std::size_t k = kv; k < K; ++k) s += a[k] * b[k];
              C[(m0 + m) * ldc + n] = apply_epilogue(bias ? s + bias[n] : s, act);
            }
        }
      },
      M * N * K >= kParallelWork);
}

// One MR x (NV vectors) tile of gemm_nn over k in [k0, k1): per k, NV vectors of B and one
// broadcast of A per row. Measured on Zen 3 (AVX2, one thread) for the Dense backward products at
// the seed shape (dX + dW): 6 x 2 takes 6.2-6.4 ms, 5 x 2 6.2-7.6, 8 x 1 7.2-7.4, 4 x 3 8.8-10.1
// (12 accumulators + 3 B + 1 A leave no room, and g++ refolds the loads). The 32-register choice
// (6 x 4) is not yet measured on AVX-512.
inline constexpr std::size_t kNnMR = 6;
inline constexpr std::size_t kNnNV = kVectorRegisters == 16 ? 2 : 4;

template <std::size_t MR, std::size_t NV, class T, class AM, class AK>
HWY_INLINE void nn_tile(std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A, AM a_m,
                        AK a_k, const T* HWY_RESTRICT B, std::size_t ldb,
                        T* HWY_RESTRICT C, std::size_t ldc, bool accumulate) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V acc[MR][NV];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c)
      acc[r][c] = accumulate ? hn::LoadU(d, C + r * ldc + c * L) : hn::Zero(d);
  for (std::size_t k = k0; k < k1; ++k) {
    V b[NV];
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) b[c] = hn::LoadU(d, B + k * ldb + c * L);
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      const V a = hn::Set(d, A[r * a_m + k * a_k]);
      HWY_UNROLL(16)
      for (std::size_t c = 0; c < NV; ++c) acc[r][c] = hn::MulAdd(a, b[c], acc[r][c]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) hn::StoreU(acc[r][c], d, C + r * ldc + c * L);
}

// Rows per tile when only 1, 2 or 3 vectors of columns remain: enough independent accumulators
// to cover the FMA latency (4 cycles, 2 FMAs a cycle) without spilling. Measured on Zen 5
// (AVX-512, one thread) for the 16-filter convolution of ResNet-8 (784 x 16 x 144): 12 x 1
// against the 6 x 1 of the general tile.
inline constexpr std::size_t kNnTallMR[4] = {0, kVectorRegisters == 16 ? 8 : 12,
                                             kVectorRegisters == 16 ? 6 : 8, 6};

// All M rows of one column tile of NV vectors: MR rows at a time, then the rest.
template <std::size_t MR, std::size_t NV, class T, class AM, class AK>
HWY_INLINE void nn_rows(std::size_t M, std::size_t k0, std::size_t k1, const T* A, AM a_m,
                        AK a_k, const T* B, std::size_t ldb, T* C, std::size_t ldc,
                        bool accumulate) {
  std::size_t m = 0;
  for (; m + MR <= M; m += MR)
    nn_tile<MR, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
  if constexpr (HWY_TARGET != HWY_SCALAR && MR > 4) {
    // The last M % MR rows in tiles of 4 and 2 rows, then one (the 4 rows left of 16 filters in
    // 6-row tiles): a single-row tile loads NV vectors of B for NV FMAs. Two heights only, to
    // keep the code (and its compile time) small.
    for (; m + 4 <= M; m += 4)
      nn_tile<4, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
    for (; m + 2 <= M; m += 2)
      nn_tile<2, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
  }
  for (; m < M; ++m) nn_tile<1, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
}

// A single row of A (M = 1: a recurrent step, batch-1 inference) has no other rows to share B's
// loads, so its tile is as wide as the registers allow: 16 (8 on 16-register targets) vectors of
// independent accumulators hide the FMA latency that a 4-vector tile waits on. Each element is
// still summed as every tile sums it (from C or zero, k in order), so the bits do not change.
inline constexpr std::size_t kNnRowNV = kVectorRegisters == 16 ? 8 : 16;

// Scalar column tail of gemm_nn (fewer than one vector of columns left).
template <class T, class AM, class AK>
HWY_INLINE void nn_scalar(std::size_t M, std::size_t k0, std::size_t k1, const T* A,
                          AM a_m, AK a_k, const T* B, std::size_t ldb, T* C,
                          std::size_t ldc, std::size_t cols, bool accumulate) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t c = 0; c < cols; ++c) {
      T s = accumulate ? C[m * ldc + c] : T(0);
      for (std::size_t k = k0; k < k1; ++k) s += A[m * a_m + k * a_k] * B[k * ldb + c];
      C[m * ldc + c] = s;
    }
}

// C[M x N] (+)= act(A(M x K) * B[K x N] + bias), A(m, k) = A[m * a_m + k * a_k]. bias may be
// null. With accumulate, the epilogue must be none and bias null (it adds to C as it is).
template <class T>
void gemm_nn(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t a_m,
             std::size_t a_k, const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate,
             const T* bias, Epilogue act) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  constexpr std::size_t MR = kNnMR, NV = kNnNV;
  // K blocks of 256 keep the B panel (256 x NV vectors) in L1 while the rows of A pass.
  constexpr std::size_t KC = 256;
  const std::size_t W = NV * L;  // columns per tile
  const std::size_t blocks = (N + W - 1) / W;
  // Rows [m0, m1) x columns [n0, n1) of C.
  const auto panel = [&](std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1) {
    const std::size_t rows = m1 - m0;
    const T* Am = A + m0 * a_m;
    T* Cm = C + m0 * ldc;
    for (std::size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
      const std::size_t k1 = k0 + KC < K ? k0 + KC : K;
      const bool acc = accumulate || k0 != 0;
      std::size_t n = n0;
      if (rows == 1)  // [n0, n) is a multiple of W columns: what the loop below would take
        for (; n + kNnRowNV * L <= n1; n += kNnRowNV * L)
          nn_tile<1, kNnRowNV>(k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
      for (; n + W <= n1; n += W) nn_rows<MR, NV>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
      // Fewer than NV vectors of columns left (all of them when N < NV vectors, as for
      // a convolution of 16 filters on AVX-512): a taller tile of 1, 2 or 3 vectors.
      // (Not on SCALAR, one lane a vector: the scalar tail does it, in less code for a
      // microcontroller's flash.)
      if constexpr (HWY_TARGET != HWY_SCALAR) {
        const std::size_t rest = (n1 - n) / L;
        if (NV > 3 && rest == 3) {
          nn_rows<kNnTallMR[3], 3>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += 3 * L;
        } else if (NV > 2 && rest == 2) {
          nn_rows<kNnTallMR[2], 2>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += 2 * L;
        } else if (rest == 1) {
          nn_rows<kNnTallMR[1], 1>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += L;
        }
      }
      if (n < n1) nn_scalar(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, n1 - n, acc);
      if (K == 0) break;
    }
    if (bias || act != Epilogue::none)
      for (std::size_t m = 0; m < rows; ++m)
        for (std::size_t n = n0; n < n1; ++n) {
          T& c = Cm[m * ldc + n];
          c = apply_epilogue(bias ? c + bias[n] : c, act);
        }
  };
  const bool worth_it = M * N * K >= kParallelWork;
  if (!worth_it) {  // one thread: what either split below runs then (and no thread queries)
    panel(0, M, 0, N);
    return;
  }
  // Threads own disjoint column blocks, or, when there are fewer blocks than threads (a
  // weight gradient of 64 filters: one block of 4 vectors), disjoint panels of kRowPanel rows.
  // Either way each element of C is summed by one thread in K order: the same bits at any thread
  // count.
  constexpr std::size_t kRowPanel = 24;  // a multiple of every tile's rows (6, 8, 12)
  const std::size_t panels = (M + kRowPanel - 1) / kRowPanel;
  if (blocks < std::size_t(max_threads()) && panels >= 2 && !in_parallel_region()) {
    parallel_for_range(
        panels,
        [&](std::size_t p0, std::size_t p1) {
          panel(p0 * kRowPanel, p1 * kRowPanel < M ? p1 * kRowPanel : M, 0, N);
        },
        worth_it);
    return;
  }
  parallel_for_range(
      blocks,
      [&](std::size_t jb0, std::size_t jb1) {
        panel(0, M, jb0 * W, jb1 * W < N ? jb1 * W : N);
      },
      worth_it);
}

// C[M x N] = A(M x K) * B[K x N]: gemm_nn with N and A's strides fixed at compile time (kFixed),
// so only the tiles of N's width are compiled (gemm_nn with fixed strides compiles all of them:
// 2-5 s more for examples/resnet8.cpp when its Winograd products took it). Bitwise what
// gemm_nn(M, N, K, A, a_m, a_k, B, ldb, C, ldc, false, nullptr, none) computes: each element is
// summed from zero over k in order in one accumulator, whatever the tile. Conv2D's Winograd
// products (layers/conv2d.hpp) take it; im2col's did not gain (forward with its bias and ReLU: 5.9
// against 7.9 us for ResNet-8's stem, but 13.5 against 11.3 for the seed model's convolution).
// Large products outside a parallel region split into panels of rows across threads. Only one
// or two vectors of columns take the fixed path: their tiles are 8 to 12 rows tall, the ones
// whose row offsets do not fit in registers (6-row tiles of 4 vectors ran as fast either way:
// 49 x 64 x 576, 16 us). Other widths, and scalable or scalar targets, are that gemm_nn call.
template <std::size_t N, class T, class AM, class AK>
void gemm_nn_fixed(std::size_t M, std::size_t K, const T* A, AM a_m, AK a_k, const T* B,
                   std::size_t ldb, T* C, std::size_t ldc) {
#if HWY_HAVE_SCALABLE || HWY_TARGET == HWY_SCALAR
  constexpr bool whole = false;
  constexpr std::size_t L = 1;  // unused
#else
  constexpr std::size_t L = hn::MaxLanes(hn::ScalableTag<T>());
  constexpr bool whole = N % L == 0 && N / L <= 2;
#endif
  if constexpr (!whole) {
    gemm_nn(M, N, K, A, std::size_t(a_m), std::size_t(a_k), B, ldb, C, ldc, false,
            static_cast<const T*>(nullptr), Epilogue::none);
  } else {
    constexpr std::size_t vectors = N / L, blocks = vectors / kNnNV, rest = vectors % kNnNV;
    constexpr std::size_t n = blocks * kNnNV * L;  // the first column of the rest
    const auto rows = [&](std::size_t m0, std::size_t m1) {
      const T* Am = A + m0 * a_m;
      T* Cm = C + m0 * ldc;
      for (std::size_t b = 0; b < blocks; ++b)
        nn_rows<kNnMR, kNnNV>(m1 - m0, 0, K, Am, a_m, a_k, B + b * kNnNV * L, ldb,
                              Cm + b * kNnNV * L, ldc, false);
      if constexpr (rest > 0)
        nn_rows<kNnTallMR[rest], rest>(m1 - m0, 0, K, Am, a_m, a_k, B + n, ldb, Cm + n, ldc,
                                       false);
    };
    constexpr std::size_t kRowPanel = 24;  // as gemm_nn's
    const std::size_t panels = (M + kRowPanel - 1) / kRowPanel;
    parallel_for_range(
        panels,
        [&](std::size_t p0, std::size_t p1) {
          rows(p0 * kRowPanel, p1 * kRowPanel < M ? p1 * kRowPanel : M);
        },
        M * N * K >= kParallelWork);
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::gemm_nn;
using ctnn::HWY_NAMESPACE::gemm_nn_fixed;
using ctnn::HWY_NAMESPACE::gemm_nt;
}  // namespace ctnn::kernels
