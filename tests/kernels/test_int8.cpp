// The 8-bit kernels against plain scalar references: the integer GEMM bit-exact over sizes that hit
// every tile edge, vector tail, odd K and K block; the (re)quantizing stores exactly, with ties.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include <ctnn/core/buffer.hpp>
#include <ctnn/core/rng.hpp>
#include <ctnn/kernels/int8.hpp>

using namespace ctnn;

namespace {

const std::size_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 67};

template <class Q>
std::vector<Q> rand_q(std::size_t n, Rng& rng) {
  std::vector<Q> v(n);
  const int lo = kernels::kQuantMin<Q>, hi = kernels::kQuantMax<Q>;
  for (auto& x : v) {
    // A quarter of the values at the extremes, where an overflow or a saturation would show.
    const double u = rng.uniform01();
    x = Q(u < 0.125 ? lo : u < 0.25 ? hi : lo + int(rng.uniform01() * (hi - lo + 1) * 0.999999));
  }
  return v;
}

template <class TA>
void gemm_case(std::size_t M, std::size_t N, std::size_t K) {
  Rng rng(M * 7919 + N * 101 + K);
  const std::size_t lda = K + 3, ldc = N + 2;
  const auto A = rand_q<TA>(M * lda, rng);
  // Weights as Dense stores them ([N][K]) and as Conv2D does ([K][N]): both packings must agree.
  const auto W = rand_q<std::int8_t>(N * K, rng);
  std::vector<std::int8_t> Wt(K * N);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) Wt[k * N + n] = W[n * K + k];
  std::vector<std::int8_t> packed(kernels::int8_packed_size(K, N)), packed_t(packed.size());
  kernels::pack_int8_weights(K, N, W.data(), 1, K, packed.data());
  kernels::pack_int8_weights(K, N, Wt.data(), N, 1, packed_t.data());
  REQUIRE(packed == packed_t);

  std::vector<std::int32_t> C(M * ldc, 12345);  // untouched outside [M x N]
  std::vector<std::int32_t> want(M * ldc, 12345);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      std::int64_t s = 0;
      for (std::size_t k = 0; k < K; ++k) s += std::int64_t(A[m * lda + k]) * W[n * K + k];
      want[m * ldc + n] = std::int32_t(s);
    }
  kernels::gemm_int8(M, N, K, A.data(), lda, packed.data(), C.data(), ldc);
  for (std::size_t i = 0; i < C.size(); ++i) {
    INFO("M " << M << " N " << N << " K " << K << " element " << i);
    REQUIRE(C[i] == want[i]);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("gemm_int8 equals the scalar integer reference bit for bit", "", std::int8_t,
                   std::uint8_t) {
  for (std::size_t M : {1, 2, 5, 6, 7, 13})
    for (std::size_t N : kSizes)
      for (std::size_t K : {0, 1, 2, 3, 9, 16, 17, 33}) gemm_case<TestType>(M, N, K);
  // Crosses the K blocking (256 pairs) with an odd K, and is big enough to run in parallel.
  gemm_case<TestType>(13, 130, 2 * 2 * 256 + 1);
  // The seed model's Dense shape at batch 1: K = 21,632 at the largest magnitudes must not
  // overflow int32 (255 * 127 * 21,632 < 2^31).
  gemm_case<TestType>(1, 128, 21632);
}

TEST_CASE("gemm_int8 does not overflow at the largest products") {
  const std::size_t K = 21632, N = 3;
  std::vector<std::uint8_t> A(K, 255);
  std::vector<std::int8_t> W(N * K, -127), packed(kernels::int8_packed_size(K, N));
  kernels::pack_int8_weights(K, N, W.data(), 1, K, packed.data());
  std::vector<std::int32_t> C(N);
  kernels::gemm_int8(1, N, K, A.data(), K, packed.data(), C.data(), N);
  for (auto c : C) CHECK(c == -255 * 127 * std::int32_t(K));
}

namespace {
// The scalar references of the stores: round half to even (the default rounding mode), clamp.
template <class Q>
Q ref_quantize(float y, int lo) {
  const float r = std::nearbyint(y);
  const int hi = kernels::kQuantMax<Q>;
  return Q(r < float(lo) ? lo : r > float(hi) ? hi : int(r));
}
}  // namespace

TEMPLATE_TEST_CASE("quantize_8bit and requantize_8bit round half to even and clamp", "",
                   std::int8_t, std::uint8_t) {
  using Q = TestType;
  for (std::size_t n : kSizes) {
    Rng rng(n);
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i)
      x[i] = i % 5 == 0 ? float(int(i) - 3) + 0.5f  // exact ties: 2.5 -> 2, 3.5 -> 4
                        : float(rng.uniform(-400.0f, 400.0f));  // beyond both ranges
    std::vector<Q> q(n);
    kernels::quantize_8bit(n, x.data(), 1.0f, q.data());
    for (std::size_t i = 0; i < n; ++i) {
      INFO("x = " << x[i]);
      REQUIRE(int(q[i]) == int(ref_quantize<Q>(x[i], kernels::kQuantMin<Q>)));
    }
    // Two rows of int32 sums, per-column multipliers and biases, with and without ReLU.
    const std::size_t M = 2, ldc = n + 1, ldo = n + 3;
    std::vector<std::int32_t> C(M * ldc);
    for (auto& c : C) c = std::int32_t(rng.uniform(-5e4f, 5e4f));
    std::vector<float> mult(n), bias(n);
    for (std::size_t i = 0; i < n; ++i) {
      mult[i] = rng.uniform(1e-4f, 4e-3f);
      bias[i] = rng.uniform(-1.0f, 1.0f);
    }
    const float inv = 9.5f;
    for (bool relu : {false, true}) {
      std::vector<Q> out(M * ldo, Q(7));
      std::vector<float> outf(M * ldo, 7.0f);
      kernels::requantize_8bit(M, n, C.data(), ldc, mult.data(), bias.data(), inv, relu, out.data(),
                               ldo);
      kernels::dequantize_int32(M, n, C.data(), ldc, mult.data(), bias.data(), relu, outf.data(),
                                ldo);
      for (std::size_t m = 0; m < M; ++m)
        for (std::size_t i = 0; i < ldo; ++i) {
          if (i >= n) {
            REQUIRE(int(out[m * ldo + i]) == 7);
            REQUIRE(outf[m * ldo + i] == 7.0f);
            continue;
          }
          // MulAdd is fused on this target (FMA): the reference fuses too.
          const float y = std::fma(float(C[m * ldc + i]), mult[i], bias[i]);
          INFO("m " << m << " i " << i << " y " << y);
          REQUIRE(int(out[m * ldo + i]) ==
                  int(ref_quantize<Q>(y * inv, relu ? 0 : kernels::kQuantMin<Q>)));
          REQUIRE(outf[m * ldo + i] == (relu && y < 0 ? 0.0f : y));
        }
    }
  }
}
