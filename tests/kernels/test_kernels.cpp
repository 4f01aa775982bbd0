// Every kernel against a plain scalar reference, over sizes that hit every tile edge and vector
// tail (1, odd, one below/above the vector and tile widths) and both float and double.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {

template <class T>
std::vector<T> rand_vec(std::size_t n, Rng& rng, double lo = -1, double hi = 1) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(lo + (hi - lo) * rng.uniform01());
  return v;
}

template <class T>
void require_near(const std::vector<T>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "] = " << got[i] << ", reference " << want[i]);
    REQUIRE(std::abs(double(got[i]) - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

const std::size_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 67};

// The tolerance of a K-term dot product, relative to 1 + |exact result| (the reference is
// accumulated in double). Each term's rounding error is ~eps times the running sum; for terms of
// random sign those errors are independent and add up like a random walk, ~sqrt(K) of them,
// while the size of the running sum (~sqrt(K) times a term) is what the 1 + |exact| factor
// already scales by. A bound linear in K (the worst case, all errors of one sign) would let a
// kernel that dropped or doubled a term pass at large K.
double dot_tolerance(double tol, std::size_t K) { return tol * std::sqrt(double(K + 1)); }

template <class T>
void gemm_nt_case(std::size_t M, std::size_t N, std::size_t K, bool bias, kernels::Epilogue act,
                  double tol) {
  Rng rng(M * 10007 + N * 101 + K);
  const std::size_t lda = K + 3, ldb = K + 1, ldc = N + 2;  // padded strides
  auto A = rand_vec<T>(M * lda, rng), B = rand_vec<T>(N * ldb, rng), b = rand_vec<T>(N, rng);
  std::vector<T> C(M * ldc, T(7));
  std::vector<double> want(M * ldc, 7.0);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      double s = bias ? double(b[n]) : 0.0;
      for (std::size_t k = 0; k < K; ++k) s += double(A[m * lda + k]) * double(B[n * ldb + k]);
      want[m * ldc + n] = act == kernels::Epilogue::relu && s < 0 ? 0.0 : s;
    }
  AlignedBuffer<T> acc(kernels::gemm_nt_scratch<T>(M, N));
  kernels::gemm_nt(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bias ? b.data() : nullptr,
                   act, acc.data());
  require_near(C, want, dot_tolerance(tol, K), "gemm_nt");
}

template <class T>
void gemm_nn_case(std::size_t M, std::size_t N, std::size_t K, bool transposed_a, bool accumulate,
                  bool bias, kernels::Epilogue act, double tol) {
  Rng rng(M * 7919 + N * 31 + K + accumulate);
  const std::size_t ldb = N + 1, ldc = N + 3;
  // A(m, k) = A[m * a_m + k * a_k]: row-major, or stored transposed (K x M) as for dW = dY^T X.
  const std::size_t a_m = transposed_a ? 1 : K + 2, a_k = transposed_a ? M + 1 : 1;
  auto A = rand_vec<T>((M + 1) * (K + 2) + 4, rng), B = rand_vec<T>(K * ldb + 1, rng),
       b = rand_vec<T>(N, rng);
  auto C = rand_vec<T>(M * ldc, rng);
  std::vector<double> want(C.begin(), C.end());
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      double s = accumulate ? double(C[m * ldc + n]) : 0.0;
      for (std::size_t k = 0; k < K; ++k) s += double(A[m * a_m + k * a_k]) * double(B[k * ldb + n]);
      if (bias) s += double(b[n]);
      want[m * ldc + n] = act == kernels::Epilogue::relu && s < 0 ? 0.0 : s;
    }
  kernels::gemm_nn(M, N, K, A.data(), a_m, a_k, B.data(), ldb, C.data(), ldc, accumulate,
                   bias ? b.data() : nullptr, act);
  require_near(C, want, dot_tolerance(tol, K + 1), "gemm_nn");  // K terms and C or the bias
}

}  // namespace

TEMPLATE_TEST_CASE("gemm_nt matches the scalar reference", "", float, double) {
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;
  for (std::size_t M : {1, 3, 4, 5, 9})
    for (std::size_t N : {1, 2, 3, 7, 16})
      for (std::size_t K : kSizes) {
        // Bias and ReLU each alone and together: an epilogue that applied one only with the
        // other would fail here.
        for (bool bias : {false, true})
          for (auto act : {kernels::Epilogue::none, kernels::Epilogue::relu})
            gemm_nt_case<TestType>(M, N, K, bias, act, tol);
      }
  // Large enough to split across threads and to cross the K blocking (8 KiB per row).
  for (bool bias : {false, true})
    for (auto act : {kernels::Epilogue::none, kernels::Epilogue::relu})
      gemm_nt_case<TestType>(33, 130, 2100 + 3, bias, act, tol);
  gemm_nt_case<TestType>(2, 3, 0, true, kernels::Epilogue::none, tol);
}

TEMPLATE_TEST_CASE("gemm_nn matches the scalar reference", "", float, double) {
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;
  // M up to 25: the 6-row tiles and the taller 8- and 12-row tiles of 1-3 column vectors, with
  // 1 to 5 rows left over (one shorter tile).
  for (std::size_t M : {1, 3, 4, 5, 8, 9, 12, 16, 25})
    for (std::size_t N : kSizes)
      for (std::size_t K : {1, 2, 9, 17, 257})  // 257: one past the K block
        for (bool tr : {false, true}) {
          const auto none = kernels::Epilogue::none, relu = kernels::Epilogue::relu;
          gemm_nn_case<TestType>(M, N, K, tr, false, false, none, tol);
          gemm_nn_case<TestType>(M, N, K, tr, true, false, none, tol);  // accumulate: no epilogue
          gemm_nn_case<TestType>(M, N, K, tr, false, true, none, tol);  // bias without ReLU
          gemm_nn_case<TestType>(M, N, K, tr, false, false, relu, tol);  // ReLU without bias
          gemm_nn_case<TestType>(M, N, K, tr, false, true, relu, tol);
        }
  // 3 column vectors left after the full tiles on AVX-512 (48, 50 and 112 columns), 2 or 1
  // elsewhere.
  for (std::size_t N : {48, 50, 112})
    for (bool tr : {false, true}) {
      gemm_nn_case<TestType>(25, N, 17, tr, false, true, kernels::Epilogue::relu, tol);
      gemm_nn_case<TestType>(13, N, 257, tr, true, false, kernels::Epilogue::none, tol);
    }
  // Crosses the K blocking (256) and is big enough to run in parallel.
  gemm_nn_case<TestType>(37, 300, 600, true, false, false, kernels::Epilogue::none, tol);
  gemm_nn_case<TestType>(37, 300, 600, false, false, true, kernels::Epilogue::none, tol);
  gemm_nn_case<TestType>(37, 300, 600, true, false, false, kernels::Epilogue::relu, tol);
  gemm_nn_case<TestType>(6, 1000, 40, false, true, false, kernels::Epilogue::none, tol);
}

TEMPLATE_TEST_CASE("gemm_nn gives a row the same bits alone as among other rows", "", float, double) {
  // One row takes the wide single-row tile (at least 16 vectors of columns): each element must
  // still be summed as in a multi-row tile (a streamed recurrent step relies on it), with the
  // bias, with accumulation and across the K blocking.
  using T = TestType;
  for (std::size_t N : {40, 256, 307, 512, 1000})
    for (std::size_t K : {1, 28, 128, 300})
      for (bool accumulate : {false, true}) {
        Rng rng(N + K);
        const std::size_t M = 7;
        const auto A = rand_vec<T>(M * K, rng), B = rand_vec<T>(K * N, rng), b = rand_vec<T>(N, rng);
        const auto C0 = rand_vec<T>(M * N, rng);
        auto all = C0;
        const T* bias = accumulate ? nullptr : b.data();
        kernels::gemm_nn(M, N, K, A.data(), K, 1, B.data(), N, all.data(), N, accumulate, bias,
                         kernels::Epilogue::none);
        for (std::size_t r : {0, 3, 6}) {
          std::vector<T> one(C0.begin() + std::ptrdiff_t(r * N), C0.begin() + std::ptrdiff_t((r + 1) * N));
          kernels::gemm_nn(1, N, K, A.data() + r * K, K, 1, B.data(), N, one.data(), N, accumulate,
                           bias, kernels::Epilogue::none);
          std::size_t differ = 0;
          for (std::size_t n = 0; n < N; ++n)
            differ += std::memcmp(&one[n], &all[r * N + n], sizeof(T)) != 0;
          INFO("N " << N << ", K " << K << ", accumulate " << accumulate << ", row " << r);
          REQUIRE(differ == 0);
        }
      }
}

namespace {
// gemm_nn_fixed<N> against gemm_nn with run-time strides, bit
// for bit: A row-major (stride 301) or transposed (stride 199), every row count that leaves 0-11
// rows after the tall tiles, K up to past gemm_nn's K block (196 x 300 x N splits across threads).
template <class T, std::size_t N>
void gemm_nn_fixed_case() {
  constexpr std::size_t kRowStride = 301, kColStride = 199;
  for (std::size_t M : {1, 2, 5, 12, 13, 16, 25, 196})
    for (std::size_t K : {1, 16, 17, 300})
      for (bool tr : {false, true}) {
        Rng rng(M * 131 + K * 7 + N + tr);
        const auto A = rand_vec<T>(std::max(M, K) * kRowStride + 8, rng);
        const auto B = rand_vec<T>(K * (N + 3), rng);
        const std::size_t ldb = N + 3, ldc = N + 5;
        std::vector<T> want(M * ldc, T(5)), fixed(want);
        const std::size_t a_m = tr ? 1 : kRowStride, a_k = tr ? kColStride : 1;
        kernels::gemm_nn(M, N, K, A.data(), a_m, a_k, B.data(), ldb, want.data(), ldc, false,
                         static_cast<const T*>(nullptr), kernels::Epilogue::none);
        if (tr) {
          kernels::gemm_nn_fixed<N>(M, K, A.data(), kernels::kFixed<1>, kernels::kFixed<kColStride>,
                                    B.data(), ldb, fixed.data(), ldc);
        } else {
          kernels::gemm_nn_fixed<N>(M, K, A.data(), kernels::kFixed<kRowStride>, kernels::kFixed<1>,
                                    B.data(), ldb, fixed.data(), ldc);
        }
        INFO("M " << M << ", N " << N << ", K " << K << ", transposed A " << tr);
        REQUIRE(std::memcmp(fixed.data(), want.data(), want.size() * sizeof(T)) == 0);
      }
}
}  // namespace

TEMPLATE_TEST_CASE("gemm_nn_fixed gives gemm_nn's bits", "", float, double) {
  // One or two whole vectors take the fixed tiles (8, 16 or 32 columns by target and type); wider
  // and partial widths (1, 17, 40, 48, 64, 112) are gemm_nn's call.
  gemm_nn_fixed_case<TestType, 1>();
  gemm_nn_fixed_case<TestType, 8>();
  gemm_nn_fixed_case<TestType, 16>();
  gemm_nn_fixed_case<TestType, 17>();
  gemm_nn_fixed_case<TestType, 32>();
  gemm_nn_fixed_case<TestType, 40>();
  gemm_nn_fixed_case<TestType, 48>();
  gemm_nn_fixed_case<TestType, 64>();
  gemm_nn_fixed_case<TestType, 112>();
}

TEMPLATE_TEST_CASE("activations match the scalar reference", "", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 4e-7 : 1e-15;
  for (std::size_t n : kSizes) {
    Rng rng(n);
    auto x = rand_vec<T>(n, rng, -6, 6), dy = rand_vec<T>(n, rng);
    std::vector<T> y(n), dx(n);
    std::vector<double> want(n), dwant(n);
    const auto check = [&](const char* what) { require_near(y, want, tol * 8, what); };
    const auto check_d = [&](const char* what) { require_near(dx, dwant, tol * 8, what); };

    kernels::relu_forward(n, x.data(), y.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = std::max(0.0, double(x[i]));
    check("relu");
    kernels::relu_backward(n, y.data(), dy.data(), dx.data());
    for (std::size_t i = 0; i < n; ++i) dwant[i] = x[i] > 0 ? double(dy[i]) : 0.0;
    check_d("relu'");

    kernels::leaky_relu_forward(n, x.data(), y.data(), T(0.3));
    for (std::size_t i = 0; i < n; ++i) want[i] = x[i] > 0 ? double(x[i]) : double(T(0.3) * x[i]);
    check("leaky_relu");
    kernels::leaky_relu_backward(n, x.data(), dy.data(), dx.data(), T(0.3));
    for (std::size_t i = 0; i < n; ++i) dwant[i] = x[i] > 0 ? double(dy[i]) : double(T(0.3) * dy[i]);
    check_d("leaky_relu'");

    kernels::sigmoid_forward(n, x.data(), y.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = 1.0 / (1.0 + std::exp(-double(x[i])));
    check("sigmoid");
    kernels::sigmoid_backward(n, y.data(), dy.data(), dx.data());
    for (std::size_t i = 0; i < n; ++i) dwant[i] = double(dy[i]) * double(y[i]) * (1 - double(y[i]));
    check_d("sigmoid'");

    kernels::tanh_forward(n, x.data(), y.data());
    for (std::size_t i = 0; i < n; ++i) want[i] = std::tanh(double(x[i]));
    check("tanh");
    kernels::tanh_backward(n, y.data(), dy.data(), dx.data());
    for (std::size_t i = 0; i < n; ++i) dwant[i] = double(dy[i]) * (1 - double(y[i]) * double(y[i]));
    check_d("tanh'");
  }
}

// relu(NaN) = NaN and relu'(NaN output) = dy, as PyTorch's threshold / threshold_backward
// (y <= 0 ? 0 : x); LeakyReLU(NaN) = NaN. A NaN in every lane position of the vector and the tail.
TEMPLATE_TEST_CASE("activations and the fused GEMM ReLU keep NaN", "", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::size_t n : kSizes)
    for (std::size_t at = 0; at < n; ++at) {
      INFO("n " << n << ", NaN at " << at);
      Rng rng(n * 100 + at);
      auto x = rand_vec<T>(n, rng, -6, 6), dy = rand_vec<T>(n, rng);
      x[at] = nan;
      std::vector<T> y(n), dx(n);
      kernels::relu_forward(n, x.data(), y.data());
      for (std::size_t i = 0; i < n; ++i)
        REQUIRE((i == at ? std::isnan(y[i]) : y[i] == (x[i] > 0 ? x[i] : T(0))));
      kernels::relu_backward(n, y.data(), dy.data(), dx.data());
      for (std::size_t i = 0; i < n; ++i) REQUIRE(dx[i] == (i == at || x[i] > 0 ? dy[i] : T(0)));
      kernels::leaky_relu_forward(n, x.data(), y.data(), T(0.3));
      REQUIRE(std::isnan(y[at]));
      kernels::leaky_relu_backward(n, x.data(), dy.data(), dx.data(), T(0.3));
      REQUIRE(dx[at] == T(0.3) * dy[at]);
    }
  // The GEMM epilogue: a NaN in row 1 of A makes row 1 of C NaN after the fused ReLU; rows 0 and
  // 2 (some sums negative) are the plain ReLU of their sums.
  for (std::size_t K : {std::size_t(1), std::size_t(5), std::size_t(37)})
    for (std::size_t N : {std::size_t(3), std::size_t(17)}) {
      INFO("K " << K << ", N " << N);
      Rng rng(K * 31 + N);
      const std::size_t M = 3;
      auto A = rand_vec<T>(M * K, rng), B = rand_vec<T>(N * K, rng), b = rand_vec<T>(N, rng);
      A[K + K / 2] = nan;
      std::vector<T> C(M * N), Bt(K * N);
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = 0; j < N; ++j) Bt[k * N + j] = B[j * K + k];
      const auto check = [&](const char* what) {
        INFO(what);
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t j = 0; j < N; ++j) {
            double s = double(b[j]);
            for (std::size_t k = 0; k < K; ++k) s += double(A[m * K + k]) * double(B[j * K + k]);
            if (m == 1) REQUIRE(std::isnan(C[m * N + j]));
            else REQUIRE(std::abs(double(C[m * N + j]) - (s > 0 ? s : 0.0)) <= 1e-5 * (1 + std::abs(s)));
          }
      };
      AlignedBuffer<T> acc(kernels::gemm_nt_scratch<T>(M, N));
      kernels::gemm_nt(M, N, K, A.data(), K, B.data(), K, C.data(), N, b.data(),
                       kernels::Epilogue::relu, acc.data());
      check("gemm_nt");
      kernels::gemm_nn(M, N, K, A.data(), K, 1, Bt.data(), N, C.data(), N, false, b.data(),
                       kernels::Epilogue::relu);
      check("gemm_nn");
    }
}

TEMPLATE_TEST_CASE("add_activate sums 2 or 3 arrays with a fused ReLU or ReLU6, NaN kept", "", float,
                   double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::size_t n : kSizes)
    for (std::size_t k : {2, 3})
      for (auto act : {Epilogue::none, Epilogue::relu, Epilogue::relu6}) {
        INFO("n " << n << ", inputs " << k << ", activation " << int(act));
        Rng rng(n * 7 + k);
        std::vector<std::vector<T>> in;
        for (std::size_t j = 0; j < k; ++j) in.push_back(rand_vec<T>(n, rng, -5, 5));
        in[0][n / 2] = nan;
        const T* xs[3] = {in[0].data(), in[1].data(), k > 2 ? in[2].data() : nullptr};
        std::vector<T> y(n);
        kernels::add_activate(n, xs, k, y.data(), act);
        for (std::size_t i = 0; i < n; ++i) {
          T s = in[0][i] + in[1][i];
          if (k > 2) s += in[2][i];
          if (i == n / 2) {
            REQUIRE(std::isnan(y[i]));
            continue;
          }
          const T want = act == Epilogue::none ? s
                         : act == Epilogue::relu ? (s > 0 ? s : T(0))
                                                 : (s >= 6 ? T(6) : s > 0 ? s : T(0));
          REQUIRE(y[i] == want);
        }
        kernels::add_activate(n, xs, k, in[0].data(), act);  // in place over input 0
        for (std::size_t i = 0; i < n; ++i)
          REQUIRE((std::isnan(y[i]) ? std::isnan(in[0][i]) : in[0][i] == y[i]));
      }
}

TEMPLATE_TEST_CASE("col2im_add scatters patch rows into the image as the scalar loop does", "",
                   float, double) {
  using T = TestType;
  // Rows of `patch` values, each adding group g's taps to its pixel's channels; pixels of a
  // 3x4 image reached by a 2x2 window at stride 1 (valid): 2 x 3 positions.
  for (std::size_t channels : {1, 3, 16, 17, 40})
    for (std::size_t groups : {1, 2}) {
      if (channels % groups) continue;
      INFO("channels " << channels << ", groups " << groups);
      const std::size_t gc = channels / groups, group_patch = 4 * gc, patch = group_patch * groups;
      const std::size_t rows = 6;
      Rng rng(channels * 10 + groups);
      const auto dpatches = rand_vec<T>(rows * patch, rng);
      const auto taps = [](std::size_t r, auto&& f) {
        const std::size_t oy = r / 3, ox = r % 3;
        for (std::size_t t = 0; t < 4; ++t) f(t, (oy + t / 2) * 4 + ox + t % 2);
      };
      std::vector<T> dx = rand_vec<T>(12 * channels, rng), want = dx;
      kernels::col2im_add(rows, patch, channels, groups, group_patch, dpatches.data(), taps,
                          dx.data());
      for (std::size_t r = 0; r < rows; ++r)
        taps(r, [&](std::size_t t, std::size_t pixel) {
          for (std::size_t g = 0; g < groups; ++g)
            for (std::size_t c = 0; c < gc; ++c)
              want[pixel * channels + g * gc + c] += dpatches[r * patch + g * group_patch + t * gc + c];
        });
      REQUIRE(dx == want);
    }
}

TEMPLATE_TEST_CASE("first_non_finite finds the first NaN or infinity at every position", "", float,
                   double) {
  using T = TestType;
  const T bad[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                   -std::numeric_limits<T>::infinity()};
  for (std::size_t n : kSizes) {
    Rng rng(n);
    auto x = rand_vec<T>(n, rng, -1e30, 1e30);
    x[0] = std::numeric_limits<T>::max();  // large but finite
    REQUIRE(kernels::first_non_finite(n, x.data()) == n);
    for (T b : bad)
      for (std::size_t at = 0; at < n; ++at) {
        auto y = x;
        y[at] = b;
        if (at + 2 < n) y[at + 2] = b;  // a later one does not count
        INFO("n " << n << ", " << b << " at " << at);
        REQUIRE(kernels::first_non_finite(n, y.data()) == at);
      }
  }
  REQUIRE(kernels::first_non_finite<T>(0, nullptr) == 0);
}

// kernels/loss.hpp against scalar references: the fused softmax + cross-entropy gradient
// (p - onehot) / n from softmax outputs of ordinary and extreme logits, MSE's (a - b) * 2 / count,
// and scale, over sizes with vector tails.
TEMPLATE_TEST_CASE("loss kernels match the scalar reference", "", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-15;
  for (double spread : {1.0, 80.0, 1e4})  // 1e4: exp overflows unless the max is subtracted
    for (std::size_t cols : kSizes) {
      const std::size_t rows = 3, n = rows * cols;
      Rng rng(cols * 7 + std::size_t(spread));
      auto z = rand_vec<T>(n, rng, -spread, spread);
      auto target = rand_vec<T>(n, rng);
      std::vector<T> p(n), out(n);
      kernels::softmax_forward(rows, cols, z.data(), p.data());
      std::vector<T> onehot(n, T(0));
      for (std::size_t r = 0; r < rows; ++r) onehot[r * cols + (r * 5) % cols] = T(1);
      const T s = T(1) / T(rows);
      std::vector<double> want(n);
      for (std::size_t i = 0; i < n; ++i) want[i] = (double(p[i]) - double(onehot[i])) * double(s);
      kernels::scaled_difference(n, p.data(), onehot.data(), s, out.data());
      for (T v : out) REQUIRE(std::isfinite(v));
      require_near(out, want, tol, "(p - onehot) / n");

      const T mse_scale = T(2) / T(n);
      for (std::size_t i = 0; i < n; ++i)
        want[i] = (double(z[i]) - double(target[i])) * double(mse_scale);
      kernels::scaled_difference(n, z.data(), target.data(), mse_scale, out.data());
      require_near(out, want, tol, "mse gradient");

      for (std::size_t i = 0; i < n; ++i) want[i] = double(z[i]) * double(s);
      kernels::scale(n, z.data(), s, out.data());
      require_near(out, want, tol, "scale");
    }
}

TEMPLATE_TEST_CASE("softmax and row sums match the scalar reference", "", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  for (std::size_t rows : {1, 3})
    for (std::size_t cols : kSizes) {
      Rng rng(rows * 100 + cols);
      auto x = rand_vec<T>(rows * cols, rng, -30, 30), dy = rand_vec<T>(rows * cols, rng);
      std::vector<T> y(rows * cols), dx(rows * cols), s(cols);
      std::vector<double> want(rows * cols), dwant(rows * cols), swant(cols, 0.0);
      for (std::size_t r = 0; r < rows; ++r) {
        double mx = -1e300, sum = 0, dot = 0;
        for (std::size_t j = 0; j < cols; ++j) mx = std::max(mx, double(x[r * cols + j]));
        for (std::size_t j = 0; j < cols; ++j) sum += std::exp(double(x[r * cols + j]) - mx);
        for (std::size_t j = 0; j < cols; ++j) want[r * cols + j] = std::exp(double(x[r * cols + j]) - mx) / sum;
        for (std::size_t j = 0; j < cols; ++j) dot += want[r * cols + j] * double(dy[r * cols + j]);
        for (std::size_t j = 0; j < cols; ++j)
          dwant[r * cols + j] = want[r * cols + j] * (double(dy[r * cols + j]) - dot);
        for (std::size_t j = 0; j < cols; ++j) swant[j] += double(x[r * cols + j]);
      }
      kernels::softmax_forward(rows, cols, x.data(), y.data());
      require_near(y, want, tol, "softmax");
      kernels::softmax_backward(rows, cols, want.empty() ? y.data() : y.data(), dy.data(), dx.data());
      require_near(dx, dwant, tol * 4, "softmax'");
      kernels::sum_rows(rows, cols, x.data(), s.data());
      require_near(s, swant, tol * 30, "sum_rows");
    }
}

TEMPLATE_TEST_CASE("Adam and SGD updates match the scalar reference", "", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  for (std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(17), std::size_t(70001)}) {
    Rng rng(n);
    auto w = rand_vec<T>(n, rng), g = rand_vec<T>(n, rng), m = rand_vec<T>(n, rng),
         v = rand_vec<T>(n, rng, 0, 1);
    std::vector<double> ww(n), mw(n), vw(n);
    const T step = T(0.01), b1 = T(0.9), b2 = T(0.999), eps = T(1e-7);
    for (std::size_t i = 0; i < n; ++i) {
      mw[i] = double(b1) * double(m[i]) + (1 - double(b1)) * double(g[i]);
      vw[i] = double(b2) * double(v[i]) + (1 - double(b2)) * double(g[i]) * double(g[i]);
      ww[i] = double(w[i]) - double(step) * mw[i] / (std::sqrt(vw[i]) + double(eps));
    }
    kernels::adam_update(n, w.data(), g.data(), m.data(), v.data(), step, b1, b2, eps);
    require_near(m, mw, tol, "adam m");
    require_near(v, vw, tol, "adam v");
    require_near(w, ww, tol * 10, "adam w");

    auto vel = rand_vec<T>(n, rng);
    std::vector<double> velw(n), w2(n);
    for (std::size_t i = 0; i < n; ++i) {
      velw[i] = 0.9 * double(vel[i]) - 0.05 * double(g[i]);
      w2[i] = double(w[i]) + 0.9 * velw[i] - 0.05 * double(g[i]);  // Nesterov
    }
    kernels::sgd_update(n, w.data(), g.data(), vel.data(), T(0.05), T(0.9), true);
    require_near(vel, velw, tol * 4, "sgd velocity");
    require_near(w, w2, tol * 4, "sgd w");
  }
}
