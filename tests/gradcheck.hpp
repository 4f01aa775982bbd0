// tests/gradcheck.hpp: central-difference gradient checks in double.
//
// The scalar checked is f = sum_i r_i * y_i for fixed random r, so dy = r exercises every output.
// Analytic gradients are computed first, into buffers pre-filled with NaN (an element a backward
// pass forgets to write fails the comparison), then every input and parameter is nudged by +-h.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <ctnn/ctnn.hpp>

namespace ctnn_test {

inline void require_close(double analytic, double numeric, const char* what, std::size_t i,
                          double tol = 1e-6) {
  const double err = std::abs(analytic - numeric) / std::max(1.0, std::abs(numeric));
  INFO(what << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
  REQUIRE(std::isfinite(analytic));
  REQUIRE(err < tol);
}

inline std::vector<double> random_vector(std::size_t n, ctnn::Rng& rng, double lo = -1, double hi = 1) {
  std::vector<double> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform01();
  return v;
}

// Checks layer L (bound with T = double) on a batch of n samples.
template <class L>
void check_layer_gradients(std::size_t n = 3, bool training = false, std::uint64_t seed = 1) {
  using In = typename L::input_shape;
  using Out = typename L::output_shape;
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  ctnn::Rng rng(seed);
  std::vector<double> p(L::param_count + 1);
  L::init(p.data(), rng);
  // Random biases and weights of both signs: zero biases would hide bias-gradient mistakes.
  for (std::size_t i = 0; i < L::param_count; ++i) p[i] = 0.5 * p[i] + 0.3 * (rng.uniform01() - 0.5);
  std::vector<double> x = random_vector(n * In::size, rng);
  const std::vector<double> r = random_vector(n * Out::size, rng);
  std::vector<double> y(n * Out::size);
  ctnn::AlignedBuffer<double> scratch(n * L::scratch_per_sample + 1);  // kernels want it aligned
  const ctnn::PassContext ctx{training, 7};

  const auto f = [&] {
    std::vector<double> yy(n * Out::size, nan);
    ctnn::AlignedBuffer<double> s(n * L::scratch_per_sample + 1);
    L::forward(p.data(), x.data(), yy.data(), n, s.data(), ctx);
    double sum = 0;
    for (std::size_t i = 0; i < yy.size(); ++i) sum += r[i] * yy[i];
    return sum;
  };

  std::fill(y.begin(), y.end(), nan);
  L::forward(p.data(), x.data(), y.data(), n, scratch.data(), ctx);
  for (double v : y) REQUIRE(std::isfinite(v));
  std::vector<double> dx(n * In::size, nan), dp(L::param_count + 1, nan);
  L::backward(p.data(), x.data(), y.data(), r.data(), dx.data(), dp.data(), n, scratch.data(), ctx);

  const double h = 1e-6;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double fp = f();
    x[i] = keep - h;
    const double fm = f();
    x[i] = keep;
    require_close(dx[i], (fp - fm) / (2 * h), "dx", i);
  }
  for (std::size_t i = 0; i < L::param_count; ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double fp = f();
    p[i] = keep - h;
    const double fm = f();
    p[i] = keep;
    require_close(dp[i], (fp - fm) / (2 * h), "dparam", i);
  }
}

}  // namespace ctnn_test
