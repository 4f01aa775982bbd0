// AdamW, RMSprop and gradient clipping against hand computations: two steps on a five-value
// parameter vector, in float and double, each expected weight computed here in double by a plain
// loop over Keras's formulas (keras/optimizers/adamw.py, rmsprop.py, base_optimizer.py), not by
// ctnn's kernels. Also: the hyperparameter sentences, checkpoint resumption, and bitwise equal
// updates at 1, 2 and 3 threads.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <ctnn/ctnn.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {

using Values = std::array<double, 5>;
constexpr Values kW0 = {0.5, -1.25, 2.0, 0.0, -0.75};
constexpr std::array<Values, 2> kGrads = {{{0.1, -0.2, 0.3, 0.0, -1e-3}, {-0.4, 0.5, 0.05, 0.7, 2.0}}};

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 4e-6 : 1e-12;
}

// Two steps of `opt` from kW0 on kGrads; checks the weights after each against `want`.
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

// Keras's AdamW in double, with the gradients given (already clipped).
std::array<Values, 2> adamw_reference(double lr, double wd, const std::array<Values, 2>& grads) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
  Values w = kW0, m{}, v{};
  std::array<Values, 2> out{};
  for (int t = 1; t <= 2; ++t) {
    for (std::size_t i = 0; i < 5; ++i) {
      const double g = grads[std::size_t(t - 1)][i];
      w[i] = w[i] - w[i] * wd * lr;  // _apply_weight_decay, before update_step
      m[i] += (g - m[i]) * (1 - b1);
      v[i] += (g * g - v[i]) * (1 - b2);
      const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
      w[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
    }
    out[std::size_t(t - 1)] = w;
  }
  return out;
}

// Keras's RMSprop in double.
std::array<Values, 2> rmsprop_reference(double lr, double rho, double mom, double eps, bool centered) {
  Values w = kW0, vel{}, avg{}, mo{};
  std::array<Values, 2> out{};
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t i = 0; i < 5; ++i) {
      const double g = kGrads[t][i];
      vel[i] = rho * vel[i] + (1 - rho) * g * g;
      double den = vel[i] + eps;
      if (centered) {
        avg[i] = rho * avg[i] + (1 - rho) * g;
        den = vel[i] - avg[i] * avg[i] + eps;
      }
      const double inc = lr * g / std::sqrt(den);
      if (mom > 0) {
        mo[i] = mom * mo[i] + inc;
        w[i] -= mo[i];
      } else {
        w[i] -= inc;
      }
    }
    out[t] = w;
  }
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("AdamW decays the weights, then takes Adam's step, as Keras orders them", "",
                   float, double) {
  using T = TestType;
  BasicAdamW<T> opt(T(0.01), T(0.5));  // a large decay, so that its order shows
  two_steps<T>(opt, adamw_reference(0.01, 0.5, kGrads));
  // Keras's defaults.
  const BasicAdamW<T> def;
  CHECK(def.learning_rate == T(1e-3));
  CHECK(def.weight_decay == T(0.004));
  CHECK(def.epsilon == T(1e-7));
  // The other order, Adam's step first and the decay after it, gives other weights: the test
  // tells the two apart.
  const auto ref = adamw_reference(0.01, 0.5, kGrads);
  BasicAdam<T> adam(T(0.01));
  std::vector<T> w(kW0.begin(), kW0.end());
  const std::vector<T> g(kGrads[0].begin(), kGrads[0].end());
  adam.step(std::span<T>(w), std::span<const T>(g));
  CHECK(std::abs((double(w[0]) * (1 - 0.005)) - ref[0][0]) > 1e-5);
  // weight_decay 0 is Adam.
  BasicAdamW<T> no_decay(T(0.01), T(0));
  two_steps<T>(no_decay, adamw_reference(0.01, 0, kGrads));
}

TEMPLATE_TEST_CASE("RMSprop's plain, momentum and centered steps match Keras's formulas", "", float,
                   double) {
  using T = TestType;
  SECTION("Keras's defaults: rho 0.9, momentum 0, epsilon 1e-7, not centered") {
    BasicRMSprop<T> opt(T(0.01));
    CHECK(opt.rho == T(0.9));
    CHECK(opt.momentum == T(0));
    CHECK(opt.epsilon == T(1e-7));
    CHECK(!opt.centered);
    two_steps<T>(opt, rmsprop_reference(0.01, 0.9, 0, 1e-7, false));
  }
  SECTION("momentum 0.5") {
    BasicRMSprop<T> opt(T(0.01), T(0.9), T(0.5));
    two_steps<T>(opt, rmsprop_reference(0.01, 0.9, 0.5, 1e-7, false));
  }
  SECTION("centered") {
    BasicRMSprop<T> opt(T(0.01), T(0.8), T(0), T(1e-7), true);
    two_steps<T>(opt, rmsprop_reference(0.01, 0.8, 0, 1e-7, true));
  }
  SECTION("centered with momentum and a large epsilon (inside the root, as Keras)") {
    BasicRMSprop<T> opt(T(0.01), T(0.9), T(0.9), T(0.1), true);
    two_steps<T>(opt, rmsprop_reference(0.01, 0.9, 0.9, 0.1, true));
  }
}

TEMPLATE_TEST_CASE("Gradient clipping: clipnorm per tensor, global_clipnorm, clipvalue", "", float,
                   double) {
  using T = TestType;
  // SGD with learning rate 1 moves each weight by exactly its clipped gradient.
  const auto clipped_step = [](BasicSGD<T>& opt, const Values& g) {
    std::vector<T> w(kW0.begin(), kW0.end());
    const std::vector<T> gv(g.begin(), g.end());
    opt.step(std::span<T>(w), std::span<const T>(gv));
    Values d{};
    for (std::size_t i = 0; i < 5; ++i) d[i] = kW0[i] - double(w[i]);
    return d;
  };
  const Values& g = kGrads[1];  // norms: tensor [0, 2) 0.6403, [2, 5) 2.1195, all 2.2141
  const auto norm = [&](std::size_t b, std::size_t e) {
    double s = 0;
    for (std::size_t i = b; i < e; ++i) s += g[i] * g[i];
    return std::sqrt(s);
  };
  const auto check = [](const Values& got, const Values& want) {
    for (std::size_t i = 0; i < 5; ++i) {
      INFO("gradient " << i << ": " << got[i] << ", expected " << want[i]);
      REQUIRE(std::abs(got[i] - want[i]) <= tolerance<T>());
    }
  };
  BasicSGD<T> opt(T(1));
  SECTION("clipnorm scales each tensor whose norm exceeds it: g * c / max(||g||, c)") {
    opt.clipping.clipnorm = 1.0;
    opt.set_tensors({{0, 2}, {2, 3}});
    Values want{};
    for (std::size_t i = 0; i < 5; ++i) want[i] = i < 2 ? g[i] : g[i] / norm(2, 5);  // 0.64 <= 1
    check(clipped_step(opt, g), want);
    // Without a layout the arena is one tensor.
    BasicSGD<T> whole(T(1));
    whole.clipping.clipnorm = 1.0;
    for (std::size_t i = 0; i < 5; ++i) want[i] = g[i] / norm(0, 5);
    check(clipped_step(whole, g), want);
  }
  SECTION("global_clipnorm scales every tensor by the norm over all of them") {
    opt.clipping.global_clipnorm = 0.5;
    opt.set_tensors({{0, 2}, {2, 3}});
    Values want{};
    for (std::size_t i = 0; i < 5; ++i) want[i] = g[i] * 0.5 / norm(0, 5);
    check(clipped_step(opt, g), want);
  }
  SECTION("clipvalue clips each element to [-c, c]") {
    opt.clipping.clipvalue = 0.45;
    check(clipped_step(opt, g), {-0.4, 0.45, 0.05, 0.45, 0.45});
  }
  SECTION("a gradient under the limits passes unchanged") {
    opt.clipping.global_clipnorm = 10;
    check(clipped_step(opt, g), g);
  }
  SECTION("a NaN gradient stays NaN, and makes the clipped tensor NaN") {
    opt.clipping.global_clipnorm = 1;
    std::vector<T> w(kW0.begin(), kW0.end());
    std::vector<T> gv(g.begin(), g.end());
    gv[1] = std::numeric_limits<T>::quiet_NaN();
    opt.step(std::span<T>(w), std::span<const T>(gv));
    for (T v : w) CHECK(std::isnan(v));
    BasicSGD<T> byvalue(T(1));
    byvalue.clipping.clipvalue = 0.1;
    std::vector<T> w2(kW0.begin(), kW0.end());
    byvalue.step(std::span<T>(w2), std::span<const T>(gv));
    CHECK(std::isnan(w2[1]));
    CHECK(w2[0] == T(kW0[0]) + T(0.1));
  }
  SECTION("AdamW clips first, then decays, then steps") {
    BasicAdamW<T> adamw(T(0.01), T(0.5));
    adamw.clipping.clipvalue = 0.3;
    std::array<Values, 2> clipped = kGrads;
    for (auto& row : clipped)
      for (double& v : row) v = std::min(std::max(v, -0.3), 0.3);
    two_steps<T>(adamw, adamw_reference(0.01, 0.5, clipped));
  }
}

TEST_CASE("AdamW, RMSprop and clipping refuse bad hyperparameters with a sentence") {
  CHECK_THROWS_WITH(AdamW(1e-3f, -0.1f),
                    Contains("AdamW's weight_decay must be a finite number >= 0; it is -0.1"));
  CHECK_THROWS_WITH(AdamW(1e-3f, 0.004f, 1.0f), Contains("AdamW's beta_1 must be a number in [0, 1); it is 1."));
  CHECK_THROWS_WITH(RMSprop(1e-3f, 1.0f), Contains("RMSprop's rho must be a number in [0, 1); it is 1."));
  CHECK_THROWS_WITH(RMSprop(1e-3f, 0.9f, 1.5f),
                    Contains("RMSprop's momentum must be a number in [0, 1]; it is 1.5."));
  CHECK_THROWS_WITH(RMSprop(1e-3f, 0.9f, 0.0f, 0.0f),
                    Contains("RMSprop's epsilon must be a finite number > 0; it is 0."));
  CHECK_THROWS_WITH(RMSprop(-1.0f), Contains("RMSprop's learning rate must be a finite number >= 0; it is -1."));
  Adam adam;
  adam.clipping.clipnorm = -1;
  CHECK_THROWS_WITH(adam.check_hyperparameters(),
                    Contains("Adam's clipnorm must be a finite number >= 0; it is -1."));
  SGD sgd;
  sgd.clipping.clipnorm = 1;
  sgd.clipping.clipvalue = 0.5;
  CHECK_THROWS_WITH(sgd.check_hyperparameters(),
                    Contains("SGD may clip gradients in one way only") && Contains("clipnorm is 1") &&
                        Contains("clipvalue 0.5"));
  RMSprop rms;
  rms.clipping.global_clipnorm = std::nan("");
  std::vector<float> w(3), g(3);
  CHECK_THROWS_WITH(rms.step(std::span<float>(w), std::span<const float>(g)),
                    Contains("RMSprop's global_clipnorm must be a finite number >= 0; it is nan"));
}

namespace {

using Tiny = Sequential<Input<4>, Dense<8>, ReLU, Dense<2>, Softmax>;

data::Dataset tiny_data() {
  data::Dataset d;
  d.sample_shape = {4};
  d.num_classes = 2;
  for (int i = 0; i < 64; ++i) {
    for (int j = 0; j < 4; ++j) d.x.push_back(float((i * 7 + j * 3) % 11) / 11.0f - 0.4f);
    d.labels.push_back((i * 5) % 3 == 0 ? 1 : 0);
  }
  return d;
}

// Trains 4 epochs unbroken, and 2 + checkpoint + 2 resumed; the weights must match bitwise.
template <class Optimizer>
void check_resumes(const Optimizer& prototype, const char* file) {
  const data::Dataset d = tiny_data();
  const FitOptions o{.epochs = 4, .batch_size = 16, .seed = 3, .verbose = 0};
  Tiny a(5);
  Optimizer oa = prototype;
  fit(a, oa, SparseCategoricalCrossEntropy{}, d, o);

  const std::string path = (std::filesystem::temp_directory_path() /
                            (std::string(file) + std::to_string(::getpid()))).string();
  {
    Tiny b(5);
    Optimizer ob = prototype;
    FitOptions first = o;
    first.epochs = 2;
    fit(b, ob, SparseCategoricalCrossEntropy{}, d, first);
    save_checkpoint(path, b, ob);
  }
  Tiny c(9);
  Optimizer oc;  // defaults: the checkpoint brings the hyperparameters
  load_checkpoint(path, c, oc);
  std::filesystem::remove(path);
  CHECK(oc.hyperparameters() == prototype.hyperparameters());
  FitOptions rest = o;
  rest.initial_epoch = 2;
  fit(c, oc, SparseCategoricalCrossEntropy{}, d, rest);
  REQUIRE(oc.iterations() == oa.iterations());
  const auto pa = a.parameters(), pc = c.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO("parameter " << i);
    REQUIRE(pa[i] == pc[i]);
  }
}

}  // namespace

TEST_CASE("AdamW and RMSprop resume from a checkpoint exactly where an unbroken run is") {
  check_resumes(AdamW(0.01f, 0.05f), "adamw.ctnn");
  check_resumes(RMSprop(0.01f, 0.8f, 0.5f, 1e-7f, true), "rmsprop.ctnn");
  check_resumes(RMSprop(0.01f), "rmsprop_plain.ctnn");
  RMSprop wrong;
  std::vector<float> w(3);
  CHECK_THROWS_WITH(wrong.restore_state(1, 2, 3), Contains("RMSprop keeps 0 or 3 state buffers, not 2."));
}

TEST_CASE("AdamW, RMSprop and clipped updates are bitwise equal at 1, 2 and 3 threads") {
  // 300,000 parameters: the update kernels split the arena between threads.
  const std::size_t n = 300000;
  std::vector<float> w0(n), g(n);
  Rng rng(11);
  for (std::size_t i = 0; i < n; ++i) {
    w0[i] = rng.uniform(-1, 1);
    g[i] = rng.uniform(-2, 2);
  }
  const auto run = [&](int threads) {
    const int saved = max_threads();
    set_num_threads(threads);
    std::vector<float> w1 = w0, w2 = w0;
    AdamW a(1e-3f, 0.01f);
    a.clipping.global_clipnorm = 5;
    a.set_tensors({{0, 1000}, {1000, n - 1000}});
    RMSprop r(1e-3f, 0.9f, 0.9f, 1e-7f, true);
    r.clipping.clipnorm = 3;
    r.set_tensors({{0, 1000}, {1000, n - 1000}});
    for (int s = 0; s < 3; ++s) {
      a.step(std::span<float>(w1), std::span<const float>(g));
      r.step(std::span<float>(w2), std::span<const float>(g));
    }
    set_num_threads(saved);
    w1.insert(w1.end(), w2.begin(), w2.end());
    return w1;
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}
