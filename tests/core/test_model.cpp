// Model behaviour: seeded initialization, Keras-default init statistics, predict's checks and
// outputs, summary, and clear errors for bad data given to fit and evaluate.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include <ctnn/ctnn.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

using Small = Sequential<Input<8, 8, 1>, Conv2D<4, 3, 3>, ReLU, Flatten, Dense<5>, Softmax>;

TEST_CASE("Initialization is seeded and follows Glorot uniform with zero biases") {
  Small a(7), b(7), c(8);
  REQUIRE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  REQUIRE(!std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
  using Big = Sequential<Input<400>, Dense<200>>;
  Big big(1);
  const double limit = std::sqrt(6.0 / 600.0);
  double sum = 0, sq = 0;
  auto w = big.layer_parameters<0>();
  for (std::size_t i = 0; i < 400 * 200; ++i) {
    REQUIRE(std::abs(w[i]) <= limit);
    sum += w[i];
    sq += double(w[i]) * w[i];
  }
  CHECK(std::abs(sum / 80000) < 0.002);
  CHECK(sq / 80000 == Approx(limit * limit / 3).epsilon(0.02));  // variance of U(-l, l)
  for (std::size_t i = 400 * 200; i < w.size(); ++i) REQUIRE(w[i] == 0.0f);
}

TEST_CASE("predict returns probabilities and checks its input size") {
  Small m(1);
  std::vector<float> x(2 * 64, 0.5f);
  const auto p = m.predict(std::span<const float>(x.data(), 64));
  float s = 0;
  for (float v : p) s += v;
  CHECK(s == Approx(1.0f));
  std::vector<float> out(10);
  m.predict(std::span<const float>(x), std::span<float>(out));
  for (int j = 0; j < 5; ++j) CHECK(out[std::size_t(j)] == Approx(p[std::size_t(j)]));
  REQUIRE_THROWS_WITH(m.predict(std::span<const float>(x.data(), 63)),
                      Contains("63 input values") && Contains("(None, 8, 8, 1)"));
  REQUIRE_THROWS_WITH(m.predict(std::span<const float>(x.data(), 65), std::span<float>(out)),
                      Contains("65 input values"));
  std::vector<float> short_out(4);
  REQUIRE_THROWS_WITH(m.predict(std::span<const float>(x), std::span<float>(short_out)),
                      Contains("output span of 4"));
}

TEST_CASE("summary prints a Keras-like table") {
  Small m(1);
  std::ostringstream os;
  m.summary(os);
  const std::string s = os.str();
  CHECK_THAT(s, Contains("conv2d_0 (Conv2D)") && Contains("(None, 6, 6, 4)") && Contains("40"));
  CHECK_THAT(s, Contains("Total params: 765") && Contains("Highway target"));
}

TEST_CASE("fit and evaluate reject data that does not fit the model, with the values") {
  Small m(1);
  Adam opt;
  data::Dataset d;
  d.sample_shape = {8, 8, 1};
  d.x.assign(3 * 64, 0.1f);
  d.labels = {0, 4, 5};
  d.num_classes = 6;
  REQUIRE_THROWS_WITH(fit(m, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("label 5 at sample 2") && Contains("[0, 5)"));
  d.labels = {0, 1, 2};
  d.x[70] = std::nanf("");
  REQUIRE_THROWS_WITH(fit(m, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("non-finite") && Contains("sample 1, feature 6"));
  d.x[70] = 0;
  d.sample_shape = {9, 7, 1};
  d.x.assign(3 * 63, 0.1f);
  REQUIRE_THROWS_WITH(evaluate(m, d), Contains("(9, 7, 1)") && Contains("(None, 8, 8, 1)"));
  data::Dataset empty;
  empty.sample_shape = {8, 8, 1};
  REQUIRE_THROWS_WITH(fit(m, opt, SparseCategoricalCrossEntropy{}, empty, {.verbose = 0}),
                      Contains("empty"));
  d.sample_shape = {8, 8, 1};
  d.x.assign(3 * 64, 0.1f);
  REQUIRE_THROWS_WITH(fit(m, opt, MeanSquaredError{}, d, {.verbose = 0}), Contains("target vectors"));
  REQUIRE_THROWS_WITH(fit(m, opt, SparseCategoricalCrossEntropy{}, d, {.epochs = 0}),
                      Contains("at least one epoch"));
}

TEST_CASE("A diverging loss stops training with the epoch and batch") {
  Sequential<Input<2>, Dense<1>> m(1);
  SGD opt(1e6f);  // absurd learning rate: the regression explodes
  data::Dataset d;
  d.sample_shape = {2};
  for (int i = 0; i < 64; ++i) d.x.insert(d.x.end(), {float(i), float(-i)});
  d.targets.assign(64, 1e3f);
  d.target_size = 1;
  REQUIRE_THROWS_WITH(fit(m, opt, MeanSquaredError{}, d, {.epochs = 50, .batch_size = 8, .verbose = 0}),
                      Contains("diverged") && Contains("epoch") && Contains("batch"));
}
