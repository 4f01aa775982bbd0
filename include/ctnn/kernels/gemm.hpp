// ctnn/kernels/gemm.hpp: the matrix products behind Dense and Conv2D.
//
//   gemm_nt: C[m][n] = act(sum_k A[m][k] * B[n][k] + bias[n])   (dot products along contiguous K)
//   gemm_nn: C[m][n] (+)= act(sum_k A(m,k) * B[k][n] + bias[n])  (vectorized along contiguous N;
//            A(m,k) = A[m * a_m + k * a_k], so A may be read transposed: dW = dY^T X)
//
// Both are register-blocked: an MR x NR tile of vector accumulators stays in registers while K is
// walked, so each loaded vector feeds several FMAs. Every C element is summed in the same order
// whatever the tile or thread split (threads own disjoint column ranges), so results are bitwise
// identical at any thread count. Bias and activation are fused into the store (the epilogue): the
// output is written once.
#pragma once
#include <cstddef>

#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/highway.hpp"

namespace ctnn::kernels {
// Activation applied in a GEMM epilogue.
enum class Epilogue { none, relu };
}  // namespace ctnn::kernels

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using kernels::Epilogue;

template <class T>
HWY_INLINE T apply_epilogue(T x, Epilogue e) {
  return (e == Epilogue::relu && !(x > T(0))) ? T(0) : x;
}

// One MR x NR tile of gemm_nt over k in [k0, k1). 4 x 2 accumulators + 4 A + 1 B vectors fit
// the 16 registers of AVX2/NEON with room; each A load feeds 2 FMAs and each B load 4.
template <std::size_t MR, std::size_t NR, class T>
HWY_INLINE void nt_tile(std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A, std::size_t lda,
                        const T* HWY_RESTRICT B, std::size_t ldb, T* HWY_RESTRICT C,
                        std::size_t ldc, bool accumulate) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V acc[MR][NR];
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NR; ++c) acc[r][c] = hn::Zero(d);
  std::size_t k = k0;
  for (; k + L <= k1; k += L) {
    V a[MR];
    for (std::size_t r = 0; r < MR; ++r) a[r] = hn::LoadU(d, A + r * lda + k);
    for (std::size_t c = 0; c < NR; ++c) {
      const V b = hn::LoadU(d, B + c * ldb + k);
      for (std::size_t r = 0; r < MR; ++r) acc[r][c] = hn::MulAdd(a[r], b, acc[r][c]);
    }
  }
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NR; ++c) {
      T s = hn::GetLane(hn::SumOfLanes(d, acc[r][c]));
      for (std::size_t kk = k; kk < k1; ++kk) s += A[r * lda + kk] * B[c * ldb + kk];
      T& out = C[r * ldc + c];
      out = accumulate ? out + s : s;
    }
}

template <std::size_t MR, std::size_t NR, class T>
HWY_INLINE void nt_rows(std::size_t M, std::size_t k0, std::size_t k1, const T* A, std::size_t lda,
                        const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate) {
  std::size_t m = 0;
  for (; m + MR <= M; m += MR)
    nt_tile<MR, NR>(k0, k1, A + m * lda, lda, B, ldb, C + m * ldc, ldc, accumulate);
  for (; m < M; ++m) nt_tile<1, NR>(k0, k1, A + m * lda, lda, B, ldb, C + m * ldc, ldc, accumulate);
}

// C[M x N] = act(A[M x K] * B[N x K]^T + bias). bias may be null.
template <class T>
void gemm_nt(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
             std::size_t ldb, T* C, std::size_t ldc, const T* bias, Epilogue act) {
  constexpr std::size_t MR = 4, NR = 2;
  // K is cut into blocks of 8 KiB per row so the A block of a 32-row batch stays in L2 while
  // every column pair streams past it; B (the weights) is then read from memory once.
  constexpr std::size_t KC = 8192 / sizeof(T);
  const std::size_t blocks = (N + NR - 1) / NR;
  parallel_for_range(
      blocks,
      [&](std::size_t jb0, std::size_t jb1) {
        const std::size_t n0 = jb0 * NR, n1 = jb1 * NR < N ? jb1 * NR : N;
        for (std::size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
          const std::size_t k1 = k0 + KC < K ? k0 + KC : K;
          const bool acc = k0 != 0;
          std::size_t n = n0;
          for (; n + NR <= n1; n += NR)
            nt_rows<MR, NR>(M, k0, k1, A, lda, B + n * ldb, ldb, C + n, ldc, acc);
          for (; n < n1; ++n) nt_rows<MR, 1>(M, k0, k1, A, lda, B + n * ldb, ldb, C + n, ldc, acc);
          if (K == 0) break;
        }
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t n = n0; n < n1; ++n) {
            T& c = C[m * ldc + n];
            c = apply_epilogue(bias ? c + bias[n] : c, act);
          }
      },
      M * N * K >= kParallelWork);
}

// One MR x (NV vectors) tile of gemm_nn over k in [k0, k1): 4 x 2 accumulators, 2 B vectors and
// one broadcast of A: each B load feeds 4 FMAs.
template <std::size_t MR, std::size_t NV, class T>
HWY_INLINE void nn_tile(std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A, std::size_t a_m,
                        std::size_t a_k, const T* HWY_RESTRICT B, std::size_t ldb,
                        T* HWY_RESTRICT C, std::size_t ldc, bool accumulate) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V acc[MR][NV];
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NV; ++c)
      acc[r][c] = accumulate ? hn::LoadU(d, C + r * ldc + c * L) : hn::Zero(d);
  for (std::size_t k = k0; k < k1; ++k) {
    V b[NV];
    for (std::size_t c = 0; c < NV; ++c) b[c] = hn::LoadU(d, B + k * ldb + c * L);
    for (std::size_t r = 0; r < MR; ++r) {
      const V a = hn::Set(d, A[r * a_m + k * a_k]);
      for (std::size_t c = 0; c < NV; ++c) acc[r][c] = hn::MulAdd(a, b[c], acc[r][c]);
    }
  }
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NV; ++c) hn::StoreU(acc[r][c], d, C + r * ldc + c * L);
}

// Scalar column tail of gemm_nn (fewer than one vector of columns left).
template <class T>
HWY_INLINE void nn_scalar(std::size_t M, std::size_t k0, std::size_t k1, const T* A,
                          std::size_t a_m, std::size_t a_k, const T* B, std::size_t ldb, T* C,
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
  constexpr std::size_t MR = 4, NV = 2;
  // K blocks of 256 keep the B panel (256 x 2 vectors) in L1 while the rows of A pass.
  constexpr std::size_t KC = 256;
  const std::size_t W = NV * L;  // columns per tile
  const std::size_t blocks = (N + W - 1) / W;
  parallel_for_range(
      blocks,
      [&](std::size_t jb0, std::size_t jb1) {
        const std::size_t n0 = jb0 * W, n1 = jb1 * W < N ? jb1 * W : N;
        for (std::size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
          const std::size_t k1 = k0 + KC < K ? k0 + KC : K;
          const bool acc = accumulate || k0 != 0;
          std::size_t n = n0;
          for (; n + W <= n1; n += W) {
            std::size_t m = 0;
            for (; m + MR <= M; m += MR)
              nn_tile<MR, NV>(k0, k1, A + m * a_m, a_m, a_k, B + n, ldb, C + m * ldc + n, ldc, acc);
            for (; m < M; ++m)
              nn_tile<1, NV>(k0, k1, A + m * a_m, a_m, a_k, B + n, ldb, C + m * ldc + n, ldc, acc);
          }
          for (; n + L <= n1; n += L) {
            std::size_t m = 0;
            for (; m + MR <= M; m += MR)
              nn_tile<MR, 1>(k0, k1, A + m * a_m, a_m, a_k, B + n, ldb, C + m * ldc + n, ldc, acc);
            for (; m < M; ++m)
              nn_tile<1, 1>(k0, k1, A + m * a_m, a_m, a_k, B + n, ldb, C + m * ldc + n, ldc, acc);
          }
          if (n < n1) nn_scalar(M, k0, k1, A, a_m, a_k, B + n, ldb, C + n, ldc, n1 - n, acc);
          if (K == 0) break;
        }
        if (bias || act != Epilogue::none)
          for (std::size_t m = 0; m < M; ++m)
            for (std::size_t n = n0; n < n1; ++n) {
              T& c = C[m * ldc + n];
              c = apply_epilogue(bias ? c + bias[n] : c, act);
            }
      },
      M * N * K >= kParallelWork);
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::gemm_nn;
using ctnn::HWY_NAMESPACE::gemm_nt;
}  // namespace ctnn::kernels
