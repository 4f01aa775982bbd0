// BatchNormalization (layers/batch_norm.hpp), its kernels (kernels/batch_norm.hpp) and
// fold_batch_norm (layers/fold_batch_norm.hpp), tested at layer level: the planner's state arena
// that hands a model's BatchNormalization its state is not there yet.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "../gradcheck.hpp"

using namespace ctnn;

namespace {

template <class Spec, class T, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, T>;
using BN = BatchNormalization<>;

// Keras's summary of BatchNormalization() after Conv2D(32, ...): 128 parameters, 64 of them
// non-trainable (the moving mean and variance), 64 trainable (gamma and beta).
using Bn3 = On<BN, float, 26, 26, 32>;
static_assert(Bn3::param_count == 64, "BN(32) has 64 trainable parameters, as Keras counts them.");
static_assert(Bn3::state_count == 64, "BN(32) has 64 non-trainable values, as Keras counts them.");
static_assert(Bn3::param_count + Bn3::state_count == 128, "Keras's summary shows 4C for BN(C).");
static_assert(Bn3::channels == 32 && Bn3::positions == 26 * 26);
using Bn1 = On<BN, double, 10>;
static_assert(Bn1::param_count == 20 && Bn1::state_count == 20 && Bn1::positions == 1);
static_assert(std::is_same_v<Bn3::output_shape, Shape<26, 26, 32>>);
static_assert(layer_kind<Bn3> == LayerKind::batch_norm);
static_assert(Bn3::momentum == 0.99 && Bn3::epsilon == 0.001, "Keras's defaults.");
static_assert(On<BatchNormalization<0.9, 1e-5>, float, 4>::epsilon == 1e-5);

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One training or inference pass of bound layer L on a batch, with its own scratch.
template <class L>
struct Run {
  using T = typename L::value_type;
  std::size_t n;
  std::vector<T> params = std::vector<T>(L::param_count), state = std::vector<T>(L::state_count);
  AlignedBuffer<T> scratch;
  explicit Run(std::size_t n_) : n(n_), scratch(n_ * L::scratch_per_sample + 1) {
    Rng rng(1);
    L::init(params.data(), rng);
    L::init_state(state.data());
  }
  std::vector<T> forward(const std::vector<T>& x, bool training) {
    std::vector<T> y(x.size(), T(kNaN));
    L::forward(params.data(), state.data(), x.data(), y.data(), n, scratch.data(),
               PassContext{training, 5});
    return y;
  }
};

}  // namespace

TEST_CASE("BatchNormalization initializes gamma to ones, beta to zeros, mean 0 and variance 1") {
  using L = On<BN, float, 3, 2, 5>;
  Run<L> run(1);
  for (std::size_t c = 0; c < 5; ++c) {
    CHECK(run.params[c] == 1.0f);
    CHECK(run.params[5 + c] == 0.0f);
    CHECK(run.state[c] == 0.0f);
    CHECK(run.state[5 + c] == 1.0f);
  }
  CHECK(std::string(L::name) == "BatchNormalization");
  CHECK(L::spec() == "ctnn::BatchNormalization<0.990000, 0.001000>");
}

TEST_CASE("BatchNormalization forward in training normalizes with the batch's biased variance") {
  // Rank 1: 3 samples of 2 features. Feature 0: 1, 2, 6 (mean 3, biased variance 14/3);
  // feature 1: 10, 20, 60 (mean 30, biased variance 1400/3).
  using L = On<BN, double, 2>;
  Run<L> run(3);
  run.params = {2.0, 0.5, 1.0, -1.0};  // gamma, then beta
  const auto y = run.forward({1, 10, 2, 20, 6, 60}, true);
  const double s0 = 2.0 / std::sqrt(14.0 / 3 + 1e-3), s1 = 0.5 / std::sqrt(1400.0 / 3 + 1e-3);
  const double want[] = {(1 - 3) * s0 + 1, (10 - 30) * s1 - 1, (2 - 3) * s0 + 1,
                         (20 - 30) * s1 - 1, (6 - 3) * s0 + 1,  (60 - 30) * s1 - 1};
  for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == Approx(want[i]).epsilon(1e-14));

  // Rank 3: 2 samples of 1 x 2 positions x 2 channels; a channel's population is all 4 values.
  // Channel 0: 1, 3, 5, 7 (mean 4, variance 5); channel 1: -2, -2, 2, 2 (mean 0, variance 4).
  using L3 = On<BN, double, 1, 2, 2>;
  Run<L3> run3(2);
  const auto y3 = run3.forward({1, -2, 3, -2, 5, 2, 7, 2}, true);
  const double a = 1 / std::sqrt(5 + 1e-3), b = 1 / std::sqrt(4 + 1e-3);
  const double want3[] = {-3 * a, -2 * b, -1 * a, -2 * b, 1 * a, 2 * b, 3 * a, 2 * b};
  for (std::size_t i = 0; i < 8; ++i) CHECK(y3[i] == Approx(want3[i]).epsilon(1e-14));
}

TEST_CASE("BatchNormalization forward in inference normalizes with the moving averages") {
  using L = On<BN, double, 1, 2, 2>;
  Run<L> run(2);
  run.params = {2.0, -0.5, 0.25, 3.0};
  run.state = {1.0, -2.0, 4.0, 0.25};  // moving mean, then moving variance
  const std::vector<double> x{1, -2, 3, -2, 5, 2, 7, 2};
  const auto y = run.forward(x, false);
  for (std::size_t i = 0; i < 8; ++i) {
    const std::size_t c = i % 2;
    const double want =
        run.params[c] * (x[i] - run.state[c]) / std::sqrt(run.state[2 + c] + 1e-3) + run.params[2 + c];
    CHECK(y[i] == Approx(want).epsilon(1e-14));
  }
}

TEST_CASE("BatchNormalization's moving averages follow Keras's update for two steps") {
  // Keras 3: moving = moving * momentum + batch * (1 - momentum), with the biased batch variance.
  const auto check = [](auto momentum_tag, double momentum) {
    using L = On<BatchNormalization<decltype(momentum_tag)::value>, double, 2, 3>;
    Run<L> run(2);
    const std::vector<std::vector<double>> batches{
        {0.5, 1, 2, -1, 3, 4, 2, 0, 1, 8, 1, -3},
        {-4, 2, 0, 1, 1, 1, 7, 5, 3, 2, -6, 0.25}};
    double mm[3] = {0, 0, 0}, mv[3] = {1, 1, 1};  // Keras's initial state
    for (const auto& x : batches) {
      run.forward(x, true);
      for (std::size_t c = 0; c < 3; ++c) {
        double sum = 0, sq = 0;
        for (std::size_t i = c; i < x.size(); i += 3) sum += x[i];
        const double mean = sum / 4;
        for (std::size_t i = c; i < x.size(); i += 3) sq += (x[i] - mean) * (x[i] - mean);
        mm[c] = mm[c] * momentum + mean * (1 - momentum);
        mv[c] = mv[c] * momentum + sq / 4 * (1 - momentum);
        CHECK(run.state[c] == Approx(mm[c]).epsilon(1e-14));
        CHECK(run.state[3 + c] == Approx(mv[c]).epsilon(1e-14));
      }
    }
    CHECK(mm[0] != 0.0);  // the check above compared moving statistics that moved
  };
  check(std::integral_constant<Real, Real(0.99)>{}, 0.99);
  check(std::integral_constant<Real, Real(0.6)>{}, 0.6);
}

TEST_CASE("BatchNormalization in inference leaves its state bitwise unchanged") {
  using L = On<BN, float, 4, 3, 5>;
  Run<L> run(3);
  Rng rng(9);
  for (auto& v : run.state) v = static_cast<float>(rng.uniform01() + 0.1);
  std::vector<float> x(3 * L::input_shape::size);
  for (auto& v : x) v = static_cast<float>(rng.uniform01() * 4 - 2);
  const std::vector<float> before = run.state;
  run.forward(x, false);
  REQUIRE(std::memcmp(before.data(), run.state.data(), before.size() * sizeof(float)) == 0);
  run.forward(x, true);  // and training does change it
  REQUIRE(std::memcmp(before.data(), run.state.data(), before.size() * sizeof(float)) != 0);
}

namespace {

// Central differences in double on x and on gamma and beta. In training every f() runs the
// training forward, so a nudge of one x moves the batch mean and variance of its channel and the
// numeric gradient goes through them; the state is reset each time (it does not affect y in
// training, and in inference it must hold still).
template <class L>
void check_bn_gradients(std::size_t n, bool training, std::uint64_t seed = 1) {
  constexpr std::size_t size = L::input_shape::size;
  Rng rng(seed);
  std::vector<double> p(L::param_count), state0(L::state_count);
  L::init_state(state0.data());
  for (std::size_t c = 0; c < L::channels; ++c) {
    p[c] = 0.5 + rng.uniform01();                      // gamma
    p[L::channels + c] = rng.uniform01() - 0.5;        // beta
    state0[c] = rng.uniform01() - 0.5;                 // moving mean
    state0[L::channels + c] = 0.5 + rng.uniform01();  // moving variance
  }
  std::vector<double> x = ctnn_test::random_vector(n * size, rng);
  const std::vector<double> r = ctnn_test::random_vector(n * size, rng);
  const PassContext ctx{training, 3};
  const auto f = [&] {
    std::vector<double> y(n * size, kNaN), state = state0;
    AlignedBuffer<double> s(n * L::scratch_per_sample + 1);
    L::forward(p.data(), state.data(), x.data(), y.data(), n, s.data(), ctx);
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += r[i] * y[i];
    return sum;
  };
  std::vector<double> y(n * size, kNaN), state = state0, dx(n * size, kNaN),
      dp(L::param_count, kNaN);
  AlignedBuffer<double> scratch(n * L::scratch_per_sample + 1);
  L::forward(p.data(), state.data(), x.data(), y.data(), n, scratch.data(), ctx);
  L::backward(p.data(), x.data(), y.data(), r.data(), dx.data(), dp.data(), n, scratch.data(), ctx);

  // Each of v's values nudged by +-h against its analytic gradient g.
  const auto check = [&](std::vector<double>& v, const std::vector<double>& g, const char* what) {
    const double h = 1e-6;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double fp = f();
      v[i] = keep - h;
      const double fm = f();
      v[i] = keep;
      ctnn_test::require_close(g[i], (fp - fm) / (2 * h), what, i);
    }
  };
  check(x, dx, "dx");
  check(p, dp, "dparam");
  // y does not change when a channel's x all shift together in training, so there dx sums to 0
  // over each channel; with fixed statistics it sums to gamma * inv_std * sum(dy), not 0.
  for (std::size_t c = 0; c < L::channels; ++c) {
    double sum = 0, scale = 0;
    for (std::size_t i = c; i < dx.size(); i += L::channels) sum += dx[i], scale += std::abs(dx[i]);
    INFO("channel " << c << ": sum of dx " << sum << ", sum of |dx| " << scale);
    if (training) CHECK(std::abs(sum) < 1e-12 * scale);
    else CHECK(std::abs(sum) > 1e-6 * scale);
  }
}

}  // namespace

TEST_CASE("BatchNormalization gradients in training, through the batch mean and variance") {
  check_bn_gradients<On<BN, double, 5>>(3, true);                      // rank 1
  check_bn_gradients<On<BN, double, 17>>(4, true, 2);                  // a vector and a tail
  check_bn_gradients<On<BN, double, 3, 2, 4>>(3, true, 3);             // rank 3
  check_bn_gradients<On<BatchNormalization<0.9, 0.5>, double, 2, 3, 9>>(5, true, 4);
}

TEST_CASE("BatchNormalization gradients in inference, with the moving statistics held fixed") {
  check_bn_gradients<On<BN, double, 7>>(3, false);
  check_bn_gradients<On<BN, double, 3, 2, 4>>(3, false, 5);
}

TEST_CASE("BatchNormalization gives the same bits at 1, 2 and 3 threads") {
  using L = On<BN, float, 12, 12, 48>;
  constexpr std::size_t n = 10;  // 69,120 values: above kParallelWork, so the passes run parallel
  static_assert(n * L::input_shape::size >= kParallelWork);
  Rng rng(11);
  std::vector<float> x(n * L::input_shape::size), dy(x.size());
  for (auto& v : x) v = static_cast<float>(rng.uniform01() * 6 - 1);
  for (auto& v : dy) v = static_cast<float>(rng.uniform01() - 0.5);
  struct Result {
    std::vector<float> y, state, dx, dp, y_inference;
  };
  const auto run_at = [&](int threads) {
    set_num_threads(threads);
    reset_widest_team();
    Run<L> run(n);
    for (std::size_t c = 0; c < L::channels; ++c) run.params[c] = 1.0f + 0.01f * float(c);
    Result res;
    res.y = run.forward(x, true);
    res.dx.assign(x.size(), float(kNaN));
    res.dp.assign(L::param_count, float(kNaN));
    L::backward(run.params.data(), x.data(), res.y.data(), dy.data(), res.dx.data(), res.dp.data(),
                n, run.scratch.data(), PassContext{true, 5});
    res.state = run.state;
    res.y_inference = run.forward(x, false);
#ifdef _OPENMP
    CHECK(widest_team() == threads);
#endif
    return res;
  };
  const Result one = run_at(1);
  const auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  for (int threads : {2, 3}) {
    INFO(threads << " threads");
    const Result r = run_at(threads);
    CHECK(same_bits(r.y, one.y));
    CHECK(same_bits(r.state, one.state));
    CHECK(same_bits(r.dx, one.dx));
    CHECK(same_bits(r.dp, one.dp));
    CHECK(same_bits(r.y_inference, one.y_inference));
  }
  set_num_threads(max_threads());
  for (float v : one.dx) REQUIRE(std::isfinite(v));
}

TEST_CASE("BatchNormalization passes NaN on: to its channel in training, to its output in inference") {
  using L = On<BN, float, 3, 2>;  // 3 positions, 2 channels
  Run<L> run(3);
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  x[6 + 2 * 1 + 1] = float(kNaN);  // sample 1, position 1, channel 1
  const auto y = run.forward(x, true);
  for (std::size_t i = 0; i < y.size(); ++i) {
    INFO("output " << i << " = " << y[i]);
    if (i % 2 == 1) CHECK(std::isnan(y[i]));  // the batch statistics of channel 1 are NaN
    else CHECK(std::isfinite(y[i]));
  }
  CHECK(std::isnan(run.state[1]));
  CHECK(std::isnan(run.state[3]));
  CHECK(std::isfinite(run.state[0]));
  run.state = {0.5f, -1.0f, 2.0f, 3.0f};
  const auto yi = run.forward(x, false);
  for (std::size_t i = 0; i < yi.size(); ++i) {
    INFO("output " << i << " = " << yi[i]);
    CHECK(std::isnan(yi[i]) == (i == 9));
  }
}

// --- The kernels against scalar references, over channel counts with every tail. ---

namespace {

template <class T>
void check_kernels(std::size_t rows, std::size_t channels, std::uint64_t seed) {
  INFO("rows " << rows << ", channels " << channels);
  Rng rng(seed);
  const auto fill = [&](std::size_t k, double lo, double hi) {
    std::vector<T> v(k);
    for (auto& e : v) e = static_cast<T>(lo + (hi - lo) * rng.uniform01());
    return v;
  };
  const auto x = fill(rows * channels, -3, 5), dy = fill(rows * channels, -1, 1);
  const auto mean = fill(channels, -1, 2), inv_std = fill(channels, 0.2, 2);
  const auto gamma = fill(channels, -1.5, 1.5), beta = fill(channels, -1, 1);
  const auto sum_dy = fill(channels, -3, 3), sum_dy_xhat = fill(channels, -3, 3);
  const T count = static_cast<T>(rows * 3 + 1);
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-13;
  const auto close = [&](T got, double want, const char* what, std::size_t i) {
    INFO(what << "[" << i << "]: kernel " << got << ", reference " << want);
    REQUIRE(std::abs(double(got) - want) <= tol * std::max(1.0, std::abs(want)));
  };

  std::vector<T> out(channels, T(kNaN)), out2(channels, T(kNaN));
  kernels::bn_squared_deviations(rows, channels, x.data(), mean.data(), out.data());
  for (std::size_t c = 0; c < channels; ++c) {
    double s = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const double v = double(x[r * channels + c]) - double(mean[c]);
      s += v * v;
    }
    close(out[c], s, "squared deviations", c);
  }

  std::vector<T> y(rows * channels, T(kNaN));
  kernels::bn_normalize(rows, channels, x.data(), mean.data(), inv_std.data(), gamma.data(),
                        beta.data(), y.data());
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t c = i % channels;
    close(y[i], (double(x[i]) - mean[c]) * inv_std[c] * gamma[c] + beta[c], "normalize", i);
  }
  std::vector<T> in_place = x;  // y may be x
  kernels::bn_normalize(rows, channels, in_place.data(), mean.data(), inv_std.data(),
                        gamma.data(), beta.data(), in_place.data());
  REQUIRE(std::memcmp(in_place.data(), y.data(), y.size() * sizeof(T)) == 0);

  kernels::bn_backward_sums(rows, channels, x.data(), static_cast<const T*>(nullptr), dy.data(), mean.data(),
                            inv_std.data(), out.data(), out2.data());
  for (std::size_t c = 0; c < channels; ++c) {
    double s = 0, sx = 0, scale = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = r * channels + c;
      s += dy[i];
      sx += double(dy[i]) * (double(x[i]) - mean[c]) * inv_std[c];
      scale += std::abs(double(dy[i]) * (double(x[i]) - mean[c]) * inv_std[c]);
    }
    close(out[c], s, "sum of dy", c);
    close(out2[c], sx, "sum of dy * x_hat", c);
  }

  std::vector<T> dx(rows * channels, T(kNaN)), dx_fixed(rows * channels, T(kNaN));
  kernels::bn_backward_dx<true>(rows, channels, x.data(), static_cast<const T*>(nullptr), dy.data(), mean.data(),
                                inv_std.data(), gamma.data(), sum_dy.data(), sum_dy_xhat.data(),
                                count, dx.data());
  kernels::bn_backward_dx<false>(rows, channels, x.data(), static_cast<const T*>(nullptr), dy.data(), mean.data(),
                                 inv_std.data(), gamma.data(), sum_dy.data(), sum_dy_xhat.data(),
                                 count, dx_fixed.data());
  for (std::size_t i = 0; i < dx.size(); ++i) {
    const std::size_t c = i % channels;
    const double xhat = (double(x[i]) - mean[c]) * inv_std[c];
    const double m = double(count);
    close(dx[i], gamma[c] * inv_std[c] * (dy[i] - sum_dy[c] / m - xhat * sum_dy_xhat[c] / m),
          "dx with batch statistics", i);
    close(dx_fixed[i], double(gamma[c]) * inv_std[c] * dy[i], "dx with fixed statistics", i);
  }

  // A fused ReLU / ReLU6: the normalization's store clamps, and backward masks dy by that output
  // (dy passes where 0 < y, and y < 6 for ReLU6), exactly as the unfused layers would.
  const auto fused = [&]<Epilogue Act>() {
    INFO("fused activation " << int(Act));
    const double top = Act == Epilogue::relu6 ? 6.0 : 1e300;
    std::vector<T> ya(rows * channels, T(kNaN));
    kernels::bn_normalize<Act>(rows, channels, x.data(), mean.data(), inv_std.data(),
                               gamma.data(), beta.data(), ya.data());
    for (std::size_t i = 0; i < ya.size(); ++i) {
      const double v = double(y[i]);
      REQUIRE(ya[i] == static_cast<T>(v <= 0 ? 0.0 : v >= top ? top : v));
    }
    std::vector<T> g(dy.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      g[i] = (ya[i] > T(0) && double(ya[i]) < top) ? dy[i] : T(0);
    std::vector<T> s1(channels), s2(channels), r1(channels), r2(channels);
    kernels::bn_backward_sums<Act>(rows, channels, x.data(), ya.data(), dy.data(), mean.data(),
                                   inv_std.data(), s1.data(), s2.data());
    kernels::bn_backward_sums(rows, channels, x.data(), static_cast<const T*>(nullptr), g.data(), mean.data(),
                              inv_std.data(), r1.data(), r2.data());
    REQUIRE(s1 == r1);
    REQUIRE(s2 == r2);
    std::vector<T> da(dx.size()), dr(dx.size());
    kernels::bn_backward_dx<true, Act>(rows, channels, x.data(), ya.data(), dy.data(), mean.data(),
                                       inv_std.data(), gamma.data(), sum_dy.data(),
                                       sum_dy_xhat.data(), count, da.data());
    kernels::bn_backward_dx<true>(rows, channels, x.data(), static_cast<const T*>(nullptr), g.data(), mean.data(),
                                  inv_std.data(), gamma.data(), sum_dy.data(), sum_dy_xhat.data(),
                                  count, dr.data());
    REQUIRE(da == dr);
    kernels::bn_backward_dx<false, Act>(rows, channels, x.data(), ya.data(), dy.data(),
                                        mean.data(), inv_std.data(), gamma.data(), sum_dy.data(),
                                        sum_dy_xhat.data(), count, da.data());
    kernels::bn_backward_dx<false>(rows, channels, x.data(), static_cast<const T*>(nullptr), g.data(), mean.data(),
                                   inv_std.data(), gamma.data(), sum_dy.data(),
                                   sum_dy_xhat.data(), count, dr.data());
    REQUIRE(da == dr);
  };
  fused.template operator()<Epilogue::relu>();
  fused.template operator()<Epilogue::relu6>();
}

}  // namespace

TEST_CASE("Batch-norm kernels match scalar references over every channel tail") {
  std::uint64_t seed = 1;
  for (std::size_t channels : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 67})
    for (std::size_t rows : {1, 2, 5, 13}) {
      check_kernels<float>(rows, channels, seed++);
      check_kernels<double>(rows, channels, seed++);
    }
}

// --- Folding into the layer before. ---

namespace {

// Random gamma (both signs) and beta, and a non-trivial state: the moving statistics of three
// training batches of z (the previous layer's outputs on real images) with momentum 0.5, so the
// mean and variance are far from 0 and 1 and differ per channel.
template <class B>
void train_bn_state(std::vector<typename B::value_type>& params,
                    std::vector<typename B::value_type>& state,
                    const std::vector<typename B::value_type>& z, std::size_t n, Rng& rng) {
  using T = typename B::value_type;
  for (std::size_t c = 0; c < B::channels; ++c) {
    params[c] = static_cast<T>((0.5 + rng.uniform01()) * (c % 3 == 1 ? -1 : 1));
    params[B::channels + c] = static_cast<T>(rng.uniform01() * 2 - 1);
  }
  B::init_state(state.data());
  const std::size_t per_batch = n / 3;
  AlignedBuffer<T> scratch(per_batch * B::scratch_per_sample + 1);
  std::vector<T> y(per_batch * B::input_shape::size);
  for (std::size_t b = 0; b < 3; ++b)
    B::forward(params.data(), state.data(), z.data() + b * per_batch * B::input_shape::size,
               y.data(), per_batch, scratch.data(), PassContext{true, b});
  for (std::size_t c = 0; c < B::channels; ++c) {
    INFO("channel " << c << ": moving mean " << state[c] << ", variance " << state[B::channels + c]);
    REQUIRE(std::abs(double(state[c])) > 1e-3);
    REQUIRE(std::abs(double(state[B::channels + c]) - 1.0) > 1e-3);
  }
}

// Prev (Dense or Conv2D, bound on the image shape or its flattening) then BatchNormalization in
// inference, against Prev with the BatchNormalization folded in, on Fashion-MNIST test images.
template <class Prev, class T>
void check_fold(double tol) {
  using B = typename BatchNormalization<0.5>::template bind<typename Prev::output_shape, T>;
  static_assert(Prev::input_shape::size == 28 * 28);
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto images = data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                     dir + "/t10k-labels-idx1-ubyte.gz", {.limit = 48});
  const std::size_t n = images.size();
  REQUIRE(n == 48);
  const std::vector<T> x(images.x.begin(), images.x.end());
  Rng rng(21);
  std::vector<T> w(Prev::param_count);
  Prev::init(w.data(), rng);
  for (std::size_t i = Prev::param_count - B::channels; i < Prev::param_count; ++i)
    w[i] = static_cast<T>(rng.uniform01() - 0.5);  // non-zero biases
  AlignedBuffer<T> prev_scratch(n * Prev::scratch_per_sample + 1);
  std::vector<T> z(n * B::input_shape::size);
  Prev::forward(w.data(), x.data(), z.data(), n, prev_scratch.data(), PassContext{});

  std::vector<T> bp(B::param_count), state(B::state_count);
  train_bn_state<B>(bp, state, z, n, rng);
  std::vector<T> y(z.size());
  AlignedBuffer<T> bn_scratch(n * B::scratch_per_sample + 1);
  B::forward(bp.data(), state.data(), z.data(), y.data(), n, bn_scratch.data(), PassContext{});

  std::vector<T> folded = w;
  fold_batch_norm<Prev, B>(folded.data(), bp.data(), state.data());
  std::vector<T> y_folded(z.size());
  Prev::forward(folded.data(), x.data(), y_folded.data(), n, prev_scratch.data(), PassContext{});
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double err = std::abs(double(y_folded[i]) - double(y[i])) / std::max(1.0, std::abs(double(y[i])));
    worst = std::max(worst, err);
    largest = std::max(largest, std::abs(double(y[i])));
  }
  INFO("largest relative difference " << worst << " over outputs up to " << largest);
  CHECK(worst < tol);
  CHECK(largest > 1.0);  // the outputs are not all small, so the relative test has teeth
}

}  // namespace

TEST_CASE("Conv2D then BatchNormalization in inference equals the folded Conv2D on Fashion-MNIST") {
  check_fold<On<Conv2D<8, 3, 3>, float, 28, 28, 1>, float>(1e-5);
  check_fold<On<Conv2D<6, 5, 5, 2, Padding::same>, float, 28, 28, 1>, float>(1e-5);
  check_fold<On<Conv2D<8, 3, 3>, double, 28, 28, 1>, double>(1e-12);
}

TEST_CASE("Dense then BatchNormalization in inference equals the folded Dense on Fashion-MNIST") {
  check_fold<On<Dense<16>, float, 784>, float>(1e-5);
  check_fold<On<Dense<16>, double, 784>, double>(1e-12);
}

TEST_CASE("fold_batch_norm over arrays: both weight layouts, by hand") {
  // Two channels, fan-in 3. s = gamma / sqrt(var + eps) = {2 / 2, -1 / 4} with eps = 0.
  const double gamma[] = {2, -1}, beta[] = {0.5, 1}, mean[] = {1, -2}, var[] = {4, 16};
  std::vector<double> w_last{1, 2, 3, 4, 5, 6}, b_last{10, 20};  // W[i][c]
  fold_batch_norm(w_last.data(), b_last.data(), 3, 2, WeightLayout::channels_last, gamma, beta,
                  mean, var, 0.0);
  CHECK(w_last == std::vector<double>{1, -0.5, 3, -1, 5, -1.5});
  CHECK(b_last == std::vector<double>{(10 - 1) * 1 + 0.5, (20 + 2) * -0.25 + 1});
  std::vector<double> w_first{1, 2, 3, 4, 5, 6}, b_first{10, 20};  // W[c][i]
  fold_batch_norm(w_first.data(), b_first.data(), 3, 2, WeightLayout::channels_first, gamma, beta,
                  mean, var, 0.0);
  CHECK(w_first == std::vector<double>{1, 2, 3, -1, -1.25, -1.5});
  CHECK(b_first == b_last);
}

TEST_CASE("BatchNormalization in a Sequential model: state trained, read-only in inference") {
  // The planner's state arena holds the moving statistics (core/model.hpp).
  using M = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3>, BatchNormalization<>, ReLU, MaxPool2D<2>,
                       Flatten, Dense<10>, Softmax>;
  static_assert(M::state_count == 16);
  const auto train = data::load_idx(CTNN_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz",
                                    CTNN_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz",
                                    {.limit = 640});
  M model(1);
  const std::vector<float> before(model.state().begin(), model.state().end());
  CHECK(before[0] == 0.0f);   // moving mean starts at 0
  CHECK(before[8] == 1.0f);   // moving variance at 1
  Adam opt;
  fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 1, .verbose = 0});
  const std::vector<float> trained(model.state().begin(), model.state().end());
  std::size_t moved = 0;
  for (std::size_t i = 0; i < 16; ++i) moved += trained[i] != before[i];
  CHECK(moved == 16);
  std::vector<float> out(train.size() * 10);
  model.predict(std::span<const float>(train.x), std::span<float>(out));
  CHECK(std::equal(trained.begin(), trained.end(), model.state().begin()));
}
