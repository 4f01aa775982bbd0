// Adam and SGD (plain, momentum, Nesterov) against numbers: two steps on a five-value parameter
// vector, in float and double. The expected weights are literals computed in double by a plain
// script from Keras's formulas (keras/optimizers/adam.py and sgd.py), not by ctnn:
//   Adam:  lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);  m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);
//          w -= lr_t * m / (sqrt(v) + eps)
//   SGD:   w -= lr * g;  with momentum: vel = momentum * vel - lr * g, then w += vel, or with
//          Nesterov w += momentum * vel - lr * g.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <span>
#include <type_traits>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {

using Values = std::array<double, 5>;
constexpr Values kW0 = {0.5, -1.25, 2.0, 0.0, -0.75};
// Gradients of steps 1 and 2: zero, tiny and large values, both signs.
constexpr std::array<Values, 2> kGrads = {{{0.1, -0.2, 0.3, 0.0, -1e-3}, {-0.4, 0.5, 0.05, 0.7, 2.0}}};

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-6 : 1e-12;
}

// Runs two steps of `opt` from kW0 and checks the weights after each against `want`.
template <class T, class Optimizer>
void two_steps(Optimizer& opt, const std::array<Values, 2>& want) {
  std::vector<T> w(kW0.begin(), kW0.end());
  for (std::size_t t = 0; t < 2; ++t) {
    const std::vector<T> g(kGrads[t].begin(), kGrads[t].end());
    opt.step(std::span<T>(w), std::span<const T>(g));
    for (std::size_t i = 0; i < w.size(); ++i) {
      INFO("step " << t + 1 << ", weight " << i << ": " << w[i] << ", expected " << want[t][i]);
      REQUIRE(std::abs(double(w[i]) - want[t][i]) <= tolerance<T>());
    }
  }
  REQUIRE(opt.iterations() == 2);
}

}  // namespace

TEMPLATE_TEST_CASE("Adam's two bias-corrected steps match Keras's formulas", "", float, double) {
  using T = TestType;
  BasicAdam<T> opt(T(0.01));  // b1 0.9, b2 0.999, eps 1e-7
  std::vector<T> w(kW0.begin(), kW0.end());
  const std::vector<T> g1(kGrads[0].begin(), kGrads[0].end());
  opt.step(std::span<T>(w), std::span<const T>(g1));
  // Step 1 by hand: m = 0.1 g, v = 0.001 g^2, and the bias correction cancels both factors: the
  // step is lr * g / (|g| + eps / sqrt(0.001)), about 0.01 against the gradient's sign (0.00997
  // for g = -1e-3, where eps starts to count), and none where g = 0.
  for (std::size_t i = 0; i < 5; ++i) {
    INFO("weight " << i);
    REQUIRE(std::abs(double(opt.first_moment()[i]) - 0.1 * kGrads[0][i]) <= tolerance<T>() * 0.1);
    REQUIRE(std::abs(double(opt.second_moment()[i]) - 0.001 * kGrads[0][i] * kGrads[0][i]) <=
            tolerance<T>() * 1e-3);
    const double g = kGrads[0][i];
    const double want = kW0[i] - 0.01 * g / (std::abs(g) + 1e-7 / std::sqrt(0.001));
    REQUIRE(std::abs(double(w[i]) - want) <= tolerance<T>());
  }
  BasicAdam<T> fresh(T(0.01));
  two_steps<T>(fresh, {{{0.49000031621776635, -1.240000158111383, 1.9900001054081442, 0.0,
                         -0.7400315230918326},
                        {0.49559530824525294, -1.2444222847798039, 1.9821669134108488,
                         -0.007441334619146636, -0.7474695300224538}}});
}

TEMPLATE_TEST_CASE("SGD's plain, momentum and Nesterov steps match Keras's formulas", "", float,
                   double) {
  using T = TestType;
  SECTION("plain: w -= lr g") {
    BasicSGD<T> opt(T(0.1));
    two_steps<T>(opt, {{{0.49, -1.23, 1.97, 0.0, -0.7499}, {0.53, -1.28, 1.965, -0.07, -0.9499}}});
  }
  SECTION("momentum 0.9") {
    BasicSGD<T> opt(T(0.1), T(0.9));
    two_steps<T>(opt, {{{0.49, -1.23, 1.97, 0.0, -0.7499}, {0.521, -1.262, 1.938, -0.07, -0.94981}}});
  }
  SECTION("Nesterov momentum 0.9") {
    BasicSGD<T> opt(T(0.1), T(0.9), true);
    two_steps<T>(opt, {{{0.481, -1.212, 1.943, 0.0, -0.74981},
                        {0.5489, -1.2908, 1.9092, -0.133, -1.129729}}});
  }
  SECTION("Nesterov with momentum 0 is plain SGD, as in Keras") {
    BasicSGD<T> opt(T(0.1), T(0), true);
    two_steps<T>(opt, {{{0.49, -1.23, 1.97, 0.0, -0.7499}, {0.53, -1.28, 1.965, -0.07, -0.9499}}});
  }
}
