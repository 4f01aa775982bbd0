// Weight initializers (core/init.hpp): each draw's bounds, mean and variance against its formula,
// what Dense and Conv2D give each initializer (fans, kernel vs bias), the spec() written for
// exported models, and a network with non-default initializers training on Fashion-MNIST.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {
struct Moments {
  double mean = 0, var = 0, min = 0, max = 0;
};
Moments moments(const std::vector<float>& w) {
  Moments m;
  m.min = *std::min_element(w.begin(), w.end());
  m.max = *std::max_element(w.begin(), w.end());
  for (float v : w) m.mean += v;
  m.mean /= double(w.size());
  for (float v : w) m.var += (v - m.mean) * (v - m.mean);
  m.var /= double(w.size() - 1);
  return m;
}

template <class I>
std::vector<float> draw(std::size_t n, std::size_t fan_in, std::size_t fan_out, std::uint64_t seed = 7) {
  std::vector<float> w(n, std::nanf(""));
  Rng rng(seed);
  I::fill(w.data(), n, fan_in, fan_out, rng);
  return w;
}

// n uniform draws on (-l, l): bounds, mean 0 and variance l^2 / 3, each to a few standard errors.
template <class I>
void check_uniform(std::size_t fan_in, std::size_t fan_out, double l) {
  const std::size_t n = 200'000;
  const auto m = moments(draw<I>(n, fan_in, fan_out));
  INFO(I::spec << " fan_in " << fan_in << " fan_out " << fan_out << ": limit " << l << ", mean "
               << m.mean << ", var " << m.var << ", min " << m.min << ", max " << m.max);
  CHECK(m.min >= -l);
  CHECK(m.max < l);
  CHECK(m.min < -0.999 * l);  // the whole interval is used
  CHECK(m.max > 0.999 * l);
  const double var = l * l / 3;
  CHECK(std::abs(m.mean) < 5 * std::sqrt(var / double(n)));
  CHECK(m.var == Approx(var).epsilon(0.015));
}

// Keras's truncated normal: |w| <= 2 s / 0.8796..., mean 0, variance s^2.
template <class I>
void check_truncated_normal(std::size_t fan_in, std::size_t fan_out, double s) {
  const std::size_t n = 200'000;
  const auto m = moments(draw<I>(n, fan_in, fan_out));
  INFO(I::spec << " fan_in " << fan_in << " fan_out " << fan_out << ": s " << s << ", mean " << m.mean
               << ", var " << m.var << ", min " << m.min << ", max " << m.max);
  const double bound = 2 * s / 0.87962566103423978;
  CHECK(m.min >= -bound * (1 + 1e-6));
  CHECK(m.max <= bound * (1 + 1e-6));
  CHECK(m.max > 0.99 * bound);  // truncated, not clipped short
  CHECK(std::abs(m.mean) < 5 * s / std::sqrt(double(n)));
  CHECK(m.var == Approx(s * s).epsilon(0.015));
}
}  // namespace

TEST_CASE("Uniform initializers draw from the interval Keras and PyTorch define") {
  check_uniform<init::GlorotUniform>(300, 100, std::sqrt(6.0 / 400));
  check_uniform<init::HeUniform>(300, 100, std::sqrt(6.0 / 300));
  check_uniform<init::LecunUniform>(300, 100, std::sqrt(3.0 / 300));
  check_uniform<init::TorchUniform>(300, 100, 1 / std::sqrt(300.0));
  check_uniform<init::TorchUniform>(9, 288, 1.0 / 3.0);  // the seed model's Conv2D
}

TEST_CASE("Normal initializers are Keras's truncated normals with the stated variance") {
  check_truncated_normal<init::GlorotNormal>(300, 100, std::sqrt(2.0 / 400));
  check_truncated_normal<init::HeNormal>(300, 100, std::sqrt(2.0 / 300));
  check_truncated_normal<init::LecunNormal>(300, 100, std::sqrt(1.0 / 300));
}

TEST_CASE("Constant initializers write every element") {
  for (float v : draw<init::Zeros>(37, 3, 4)) CHECK(v == 0.0f);
  for (float v : draw<init::Ones>(37, 3, 4)) CHECK(v == 1.0f);
}

TEST_CASE("Initializers are reproducible from the seed and differ between seeds") {
  CHECK(draw<init::HeNormal>(1000, 50, 5, 1) == draw<init::HeNormal>(1000, 50, 5, 1));
  CHECK(draw<init::HeNormal>(1000, 50, 5, 1) != draw<init::HeNormal>(1000, 50, 5, 2));
  CHECK(draw<init::TorchUniform>(1000, 50, 5, 3) == draw<init::TorchUniform>(1000, 50, 5, 3));
}

TEST_CASE("Rng::uniform rounds once (a fused multiply-add) whatever the compiler contracts") {
  // Written as lo + (hi - lo) * u, the draw was rounded twice or once depending on whether the
  // compiler contracted it (GCC under -std=gnu++20, by inlining context): Model(7) gave Dense
  // weights a bit apart in two test programs. Each draw must be the one-rounding value.
  const float lo = -0.4803844f, hi = 0.4803844f;  // Glorot's limit for fans 16 and 10
  Rng a(7), b(7);
  std::size_t twice_differs = 0;
  for (int i = 0; i < 100000; ++i) {
    const float u = static_cast<float>(b.next_u64() >> 40) * 0x1.0p-24f;
    const float once = std::min(std::fma(hi - lo, u, lo), std::nextafter(hi, lo));
    volatile float product = (hi - lo) * u;  // the product rounded on its own
    const float twice = std::min(lo + product, std::nextafter(hi, lo));
    twice_differs += once != twice;
    REQUIRE(a.uniform(lo, hi) == once);
  }
  CHECK(twice_differs > 1000);  // the two roundings do differ: the check above can fail
}

TEST_CASE("Dense and Conv2D pass their fans to the kernel and bias initializers") {
  SECTION("Keras's defaults: Glorot uniform kernel, zero bias, same draws as GlorotUniform itself") {
    using L = Dense<64>::bind<Shape<500>, float>;
    static_assert(std::is_same_v<Dense<64>, Dense<64, init::GlorotUniform, init::Zeros>>);
    std::vector<float> p(L::param_count, std::nanf(""));
    Rng rng(11);
    L::init(p.data(), rng);
    const auto expect = draw<init::GlorotUniform>(64 * 500, 500, 64, 11);
    CHECK(std::equal(expect.begin(), expect.end(), p.begin()));
    CHECK(std::all_of(p.begin() + 64 * 500, p.end(), [](float v) { return v == 0.0f; }));
  }
  SECTION("Dense with He normal kernel and PyTorch's uniform bias: fan_in = inputs") {
    using L = Dense<64, init::HeNormal, init::TorchUniform>::bind<Shape<500>, float>;
    std::vector<float> p(L::param_count, std::nanf(""));
    Rng rng(5);
    L::init(p.data(), rng);
    const auto k = moments(std::vector<float>(p.begin(), p.begin() + 64 * 500));
    CHECK(k.var == Approx(2.0 / 500).epsilon(0.03));
    const auto b = moments(std::vector<float>(p.begin() + 64 * 500, p.end()));
    CHECK(b.max < 1 / std::sqrt(500.0));
    CHECK(b.min >= -1 / std::sqrt(500.0));
    CHECK(b.max - b.min > 0.5 / std::sqrt(500.0));  // drawn, not zero
  }
  SECTION("Conv2D: fan_in = KH*KW*C, fan_out = KH*KW*Filters (Keras and PyTorch)") {
    using L = Conv2D<64, 3, 3, 1, Padding::valid, init::GlorotUniform, init::TorchUniform>::bind<
        Shape<10, 10, 16>, float>;
    std::vector<float> p(L::param_count, std::nanf(""));
    Rng rng(9);
    L::init(p.data(), rng);
    const double l = std::sqrt(6.0 / (9 * 16 + 9 * 64));
    const auto k = moments(std::vector<float>(p.begin(), p.begin() + L::weights));
    CHECK(k.max < l);
    CHECK(k.max > 0.99 * l);
    CHECK(k.var == Approx(l * l / 3).epsilon(0.05));
    const auto b = moments(std::vector<float>(p.begin() + L::weights, p.end()));
    CHECK(b.max < 1 / std::sqrt(144.0));
    CHECK(b.max - b.min > 0.5 / std::sqrt(144.0));
  }
  SECTION("HeUniform on a Conv2D uses fan_in only") {
    using L = Conv2D<8, 5, 5, 2, Padding::same, init::HeUniform>::bind<Shape<12, 12, 3>, double>;
    std::vector<double> p(L::param_count, std::nan(""));
    Rng rng(3);
    L::init(p.data(), rng);
    const double l = std::sqrt(6.0 / 75);
    CHECK(*std::max_element(p.begin(), p.begin() + L::weights) < l);
    CHECK(*std::max_element(p.begin(), p.begin() + L::weights) > 0.9 * l);
    CHECK(std::all_of(p.begin() + L::weights, p.end(), [](double v) { return v == 0.0; }));
  }
}

TEST_CASE("spec() names non-default initializers, so exported models keep them") {
  CHECK(Dense<10>::bind<Shape<4>, float>::spec() == "ctnn::Dense<10>");
  CHECK(Dense<10, init::HeNormal>::bind<Shape<4>, float>::spec() ==
        "ctnn::Dense<10, ctnn::init::HeNormal, ctnn::init::Zeros>");
  CHECK(Conv2D<4, 3, 3>::bind<Shape<8, 8, 1>, float>::spec() ==
        "ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::valid>");
  CHECK(Conv2D<4, 3, 3, 1, Padding::valid, init::TorchUniform, init::TorchUniform>::bind<
            Shape<8, 8, 1>, float>::spec() ==
        "ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::valid, ctnn::init::TorchUniform, "
        "ctnn::init::TorchUniform>");
  using M = Sequential<Input<8, 8, 1>, Conv2D<4, 3, 3, 1, Padding::valid, init::HeUniform>, ReLU,
                       Flatten, Dense<3, init::LecunNormal, init::Ones>, Softmax>;
  const std::string t = deploy::cpp_type<M>();
  CHECK_THAT(t, Catch::Matchers::Contains("ctnn::init::HeUniform") &&
                    Catch::Matchers::Contains("ctnn::Dense<3, ctnn::init::LecunNormal, ctnn::init::Ones>"));
}

TEST_CASE("A network with He and PyTorch initializers learns Fashion-MNIST: above 0.76 after 2 epochs on 4,000 images", "[long]") {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto train = data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                    dir + "/train-labels-idx1-ubyte.gz", {.limit = 4000});
  const auto test = data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                   dir + "/t10k-labels-idx1-ubyte.gz", {.limit = 2000});
  using Model = Sequential<Input<28, 28, 1>,
                           Conv2D<8, 3, 3, 1, Padding::valid, init::HeNormal, init::TorchUniform>,
                           ReLU, MaxPool2D<2>, Flatten, Dense<32, init::HeUniform>, ReLU,
                           Dense<10, init::TorchUniform, init::TorchUniform>, Softmax>;
  Model model(42);
  Adam opt(1e-3f);
  const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 2, .verbose = 0});
  CHECK(h.epochs[1].loss < h.epochs[0].loss);
  const auto r = evaluate(model, test);
  INFO("test accuracy " << r.accuracy << ", loss " << r.loss);
  CHECK(r.accuracy > 0.76);
}
