// Winograd F(2x2, 3x3) and F(4x4, 3x3) (kernels/winograd.hpp) against a direct convolution: the
// forward output, and the input and weight gradients through the adjoint transforms, for
// channels-last shapes that hit full vectors, one-lane tails, output sizes that are not a
// multiple of the tile (part-empty tiles), valid and padded windows, in float and double. With
// small integer data every intermediate value of F(2x2) is exact, so its results must equal the
// direct ones to the bit; with real-valued data both agree to rounding (F(4x4)'s G has sixths and
// its points' powers reach 8, so its bound is looser).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <ctnn/core/rng.hpp>
#include <ctnn/kernels/gemm.hpp>
#include <ctnn/kernels/winograd.hpp>

using namespace ctnn;

namespace {

struct Case {
  std::size_t H, W, C, F, pad_top, pad_bottom, pad_left, pad_right;
  std::size_t m = 2;  // the tile: F(m x m, 3x3)
  std::size_t oh() const { return H + pad_top + pad_bottom - 2; }
  std::size_t ow() const { return W + pad_left + pad_right - 2; }
  std::size_t th() const { return (oh() + m - 1) / m; }
  std::size_t tw() const { return (ow() + m - 1) / m; }
  std::size_t xis() const { return (m + 2) * (m + 2); }
};

// The transforms of F(k.m x k.m, 3x3).
struct Transforms {
  std::size_t m;
  template <class... A>
  void weights(A... a) const {
    m == 4 ? kernels::winograd_f43_weights(a...) : kernels::winograd_f23_weights(a...);
  }
  template <class... A>
  void weights_adjoint(A... a) const {
    m == 4 ? kernels::winograd_f43_weights_adjoint(a...)
           : kernels::winograd_f23_weights_adjoint(a...);
  }
  template <class... A>
  void input(A... a) const {
    m == 4 ? kernels::winograd_f43_input(a...) : kernels::winograd_f23_input(a...);
  }
  template <class... A>
  void input_adjoint(A... a) const {
    m == 4 ? kernels::winograd_f43_input_adjoint(a...)
           : kernels::winograd_f23_input_adjoint(a...);
  }
  template <class... A>
  void output(A... a) const {
    m == 4 ? kernels::winograd_f43_output(a...) : kernels::winograd_f23_output(a...);
  }
  template <class... A>
  void output_adjoint(A... a) const {
    m == 4 ? kernels::winograd_f43_output_adjoint(a...)
           : kernels::winograd_f23_output_adjoint(a...);
  }
};

template <class T>
struct Result {
  std::vector<T> y, dx, dw;
};

// Direct 3x3 convolution and its gradients in double, x [H][W][C], w [3][3][C][F].
template <class T>
Result<double> direct(const Case& k, const std::vector<T>& x, const std::vector<T>& w,
                      const std::vector<T>& b, const std::vector<T>& dy) {
  Result<double> r{std::vector<double>(k.oh() * k.ow() * k.F), std::vector<double>(x.size()),
                   std::vector<double>(w.size())};
  for (std::size_t oy = 0; oy < k.oh(); ++oy)
    for (std::size_t ox = 0; ox < k.ow(); ++ox)
      for (std::size_t f = 0; f < k.F; ++f) {
        double s = b[f];
        const double g = dy[(oy * k.ow() + ox) * k.F + f];
        for (std::size_t ky = 0; ky < 3; ++ky)
          for (std::size_t kx = 0; kx < 3; ++kx) {
            const std::ptrdiff_t iy = std::ptrdiff_t(oy + ky) - std::ptrdiff_t(k.pad_top);
            const std::ptrdiff_t ix = std::ptrdiff_t(ox + kx) - std::ptrdiff_t(k.pad_left);
            if (iy < 0 || ix < 0 || iy >= std::ptrdiff_t(k.H) || ix >= std::ptrdiff_t(k.W)) continue;
            for (std::size_t c = 0; c < k.C; ++c) {
              const std::size_t xi = (std::size_t(iy) * k.W + std::size_t(ix)) * k.C + c;
              const std::size_t wi = ((ky * 3 + kx) * k.C + c) * k.F + f;
              s += double(x[xi]) * double(w[wi]);
              r.dx[xi] += g * double(w[wi]);
              r.dw[wi] += g * double(x[xi]);
            }
          }
        r.y[(oy * k.ow() + ox) * k.F + f] = s;
      }
  return r;
}

// The same through the Winograd transforms and (m + 2)^2 GEMMs per pass.
template <class T>
Result<T> winograd(const Case& k, const std::vector<T>& x, const std::vector<T>& w,
                   const std::vector<T>& b, const std::vector<T>& dy) {
  const std::size_t tiles = k.th() * k.tw(), vs = tiles * k.C + 3, ms = tiles * k.F + 5;
  const std::size_t X = k.xis();
  const Transforms wg{k.m};
  std::vector<T> U(X * k.C * k.F), Ut(U.size()), V(X * vs, T(-7)), M(X * ms, T(-7));
  wg.weights(k.C, k.F, w.data(), U.data());
  wg.input(k.H, k.W, k.C, k.pad_top, k.pad_left, k.th(), k.tw(), x.data(), V.data(), vs);
  for (std::size_t xi = 0; xi < X; ++xi)
    kernels::gemm_nn(tiles, k.F, k.C, V.data() + xi * vs, k.C, 1, U.data() + xi * k.C * k.F, k.F,
                     M.data() + xi * ms, k.F, false, static_cast<const T*>(nullptr),
                     Epilogue::none);
  Result<T> r{std::vector<T>(k.oh() * k.ow() * k.F, T(-9)), std::vector<T>(x.size(), T(0)),
              std::vector<T>(w.size(), T(-9))};
  wg.output(k.oh(), k.ow(), k.F, k.th(), k.tw(), M.data(), ms, b.data(), Epilogue::none,
            r.y.data());
  // Backward: dM, then dU = V^T dM and dV = dM U^T per xi.
  std::vector<T> dM(X * ms, T(-7)), dU(X * k.C * k.F), dV(X * vs, T(-7));
  wg.output_adjoint(k.oh(), k.ow(), k.F, k.th(), k.tw(), dy.data(), dM.data(), ms);
  for (std::size_t xi = 0; xi < X; ++xi) {
    kernels::gemm_nn(k.C, k.F, tiles, V.data() + xi * vs, 1, k.C, dM.data() + xi * ms, k.F,
                     dU.data() + xi * k.C * k.F, k.F, false, static_cast<const T*>(nullptr),
                     Epilogue::none);
    for (std::size_t c = 0; c < k.C; ++c)
      for (std::size_t f = 0; f < k.F; ++f)
        Ut[(xi * k.F + f) * k.C + c] = U[(xi * k.C + c) * k.F + f];
    kernels::gemm_nn(tiles, k.C, k.F, dM.data() + xi * ms, k.F, 1, Ut.data() + xi * k.F * k.C, k.C,
                     dV.data() + xi * vs, k.C, false, static_cast<const T*>(nullptr),
                     Epilogue::none);
  }
  wg.weights_adjoint(k.C, k.F, dU.data(), r.dw.data());
  wg.input_adjoint(k.H, k.W, k.C, k.pad_top, k.pad_left, k.th(), k.tw(), dV.data(), vs,
                   r.dx.data());
  return r;
}

template <class T>
std::vector<T> draw(std::size_t n, Rng& rng, bool integers) {
  std::vector<T> v(n);
  for (auto& e : v)
    e = integers ? T(std::floor(rng.uniform01() * 7.0) - 3.0) : T(rng.uniform01() * 2.0 - 1.0);
  return v;
}

template <class T>
void check(const std::vector<T>& got, const std::vector<double>& want, double tol,
           const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "] = " << got[i] << ", direct " << want[i]);
    REQUIRE(std::abs(double(got[i]) - want[i]) <= tol * (1 + std::abs(want[i])));
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  }
  if (tol == 0) CHECK(worst == 0);
}

template <class T>
void run_case(const Case& k, bool integers, double tol) {
  Rng rng(k.H * 1000 + k.C * 10 + k.F);
  const auto x = draw<T>(k.H * k.W * k.C, rng, integers);
  const auto w = draw<T>(9 * k.C * k.F, rng, integers);
  const auto b = draw<T>(k.F, rng, integers);
  const auto dy = draw<T>(k.oh() * k.ow() * k.F, rng, integers);
  const auto want = direct(k, x, w, b, dy);
  const auto got = winograd(k, x, w, b, dy);
  INFO("F(" << k.m << "x" << k.m << " 3x3) H " << k.H << " W " << k.W << " C " << k.C << " F "
            << k.F << " pads " << k.pad_top << " " << k.pad_bottom << " " << k.pad_left << " "
            << k.pad_right);
  check(got.y, want.y, tol, "y");
  check(got.dx, want.dx, tol, "dx");
  check(got.dw, want.dw, tol, "dw");
}

const Case kCases[] = {
    {28, 28, 16, 16, 1, 1, 1, 1},  // ResNet-8's first stack
    {7, 7, 20, 24, 1, 1, 1, 1},    // odd output: a half-empty row and column of tiles
    {6, 5, 3, 5, 0, 0, 0, 0},      // valid: 4 x 3 outputs, tails only
    {5, 6, 17, 1, 1, 0, 0, 1},     // asymmetric padding, one filter
    {3, 3, 33, 18, 0, 0, 0, 0},    // one output pixel
};

}  // namespace

TEST_CASE("Winograd F(2x2 3x3) with small integers equals the direct convolution to the bit") {
  for (const auto& k : kCases) {
    run_case<float>(k, true, 0.0);
    run_case<double>(k, true, 0.0);
  }
}

TEST_CASE("Winograd F(2x2 3x3) with real data agrees with the direct convolution") {
  for (const auto& k : kCases) {
    // The longest sum: 9C products (y), 9F (dx) or one per output position (dw); the transforms
    // add a few roundings of values up to 4x the inputs.
    const double terms = std::sqrt(double(std::max({9 * k.C, 9 * k.F, k.oh() * k.ow()}) + 1));
    run_case<float>(k, false, 1e-6 * terms);
    run_case<double>(k, false, 2e-15 * terms);
  }
}

TEST_CASE("Winograd F(4x4 3x3) with real data agrees with the direct convolution") {
  const Case cases[] = {
      {28, 28, 16, 16, 1, 1, 1, 1, 4},  // ResNet-8's first stack: 7 x 7 whole tiles
      {7, 7, 20, 24, 1, 1, 1, 1, 4},    // 7 x 7 outputs: a row and column of part-empty tiles
      {6, 5, 3, 5, 0, 0, 0, 0, 4},      // valid: 4 x 3 outputs in one tile, tails only
      {5, 6, 17, 1, 1, 0, 0, 1, 4},     // asymmetric padding, one filter
      {3, 3, 33, 18, 0, 0, 0, 0, 4},    // one output pixel
      {10, 14, 8, 9, 0, 0, 1, 1, 4},    // 8 x 14: whole tiles down, three and a half across
  };
  for (const auto& k : cases) {
    // F(2x2)'s bound times 3: the transforms' larger factors (8 forward, 1/24). At 1e-6 a 28 x 28
    // weight gradient (784 terms) misses by 1.6x in float, at 2e-15 in double.
    const double terms = std::sqrt(double(std::max({9 * k.C, 9 * k.F, k.oh() * k.ow()}) + 1));
    run_case<float>(k, false, 3e-6 * terms);
    run_case<double>(k, false, 6e-15 * terms);
  }
}

TEST_CASE("Winograd's output transform applies the bias and ReLU6 as the GEMM epilogue does") {
  for (const std::size_t m : {2, 4}) {
    const Case k{6, 6, 2, 19, 1, 1, 1, 1, m};
    const Transforms wg{m};
    Rng rng(3);
    const auto x = draw<float>(k.H * k.W * k.C, rng, false);
    const auto w = draw<float>(9 * k.C * k.F, rng, false);
    std::vector<float> b(k.F, 0.0f);
    for (std::size_t f = 0; f < k.F; ++f) b[f] = float(f) - 9.0f;  // outputs both sides of 0 and 6
    const auto dy = draw<float>(k.oh() * k.ow() * k.F, rng, false);
    const auto plain = winograd(k, x, w, b, dy);
    const std::size_t tiles = k.th() * k.tw(), X = k.xis();
    std::vector<float> U(X * k.C * k.F), V(X * tiles * k.C), M(X * tiles * k.F);
    wg.weights(k.C, k.F, w.data(), U.data());
    wg.input(k.H, k.W, k.C, std::size_t{1}, std::size_t{1}, k.th(), k.tw(), x.data(), V.data(),
             tiles * k.C);
    for (std::size_t xi = 0; xi < X; ++xi)
      kernels::gemm_nn(tiles, k.F, k.C, V.data() + xi * tiles * k.C, k.C, 1,
                       U.data() + xi * k.C * k.F, k.F, M.data() + xi * tiles * k.F, k.F, false,
                       static_cast<const float*>(nullptr), Epilogue::none);
    for (auto act : {Epilogue::relu, Epilogue::relu6}) {
      std::vector<float> y(plain.y.size());
      wg.output(k.oh(), k.ow(), k.F, k.th(), k.tw(), static_cast<const float*>(M.data()),
                tiles * k.F, static_cast<const float*>(b.data()), act, y.data());
      std::size_t clipped = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const float v = plain.y[i];
        const float want =
            act == Epilogue::relu ? (v <= 0 ? 0.0f : v) : (v >= 6 ? 6.0f : v < 0 ? 0.0f : v);
        INFO("m " << m << " y[" << i << "]");
        REQUIRE(y[i] == want);
        clipped += y[i] != v;
      }
      CHECK(clipped > y.size() / 4);
    }
  }
}
