// NaN stays NaN, as in PyTorch and Keras: ReLU (standalone and fused into Dense/Conv2D) and
// MaxPool2D pass it on instead of turning it into 0 or skipping it, so a NaN input gives NaN
// outputs instead of a confident class.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, float>;

template <std::size_t N>
void require_all_nan(const std::array<float, N>& y) {
  for (std::size_t i = 0; i < N; ++i) {
    INFO("output " << i << " = " << y[i]);
    REQUIRE(std::isnan(y[i]));
  }
}
}  // namespace

TEST_CASE("Input<4>, Dense<8>, ReLU, Dense<3>, Softmax predicts NaN, not 1/3, for a NaN input") {
  using Model = Sequential<Input<4>, Dense<8>, ReLU, Dense<3>, Softmax>;  // ReLU fused into Dense
  Model model(1);
  require_all_nan(model.predict(std::array<float, 4>{kNaN, kNaN, kNaN, kNaN}));
  require_all_nan(model.predict(std::array<float, 4>{0.5f, kNaN, -0.25f, 1.0f}));
  // A NaN output has no class (max_element would have said class 0).
  REQUIRE_THROWS_WITH(model.predict_class(std::array<float, 4>{kNaN, kNaN, kNaN, kNaN}),
                      Catch::Contains("output 0 of the model is NaN"));
  // A finite input still gives finite probabilities summing to 1.
  const auto y = model.predict(std::array<float, 4>{0.5f, 2.0f, -0.25f, 1.0f});
  REQUIRE(std::abs(y[0] + y[1] + y[2] - 1.0f) < 1e-6f);
}

TEST_CASE("A standalone ReLU and a Conv2D with fused ReLU and MaxPool2D pass NaN on") {
  // Tanh before ReLU: the ReLU is not fused, so the elementwise kernel runs.
  Sequential<Input<4>, Tanh, ReLU, Dense<2>> standalone(2);
  require_all_nan(standalone.predict(std::array<float, 4>{-1.0f, kNaN, -2.0f, -3.0f}));
  // One NaN pixel at (1, 1) lies in all four 3x3 windows of a 4x4 image.
  Sequential<Input<4, 4, 1>, Conv2D<2, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<2>> cnn(3);
  std::array<float, 16> image{};
  image[5] = kNaN;
  require_all_nan(cnn.predict(image));
}

TEST_CASE("ReLU: relu(NaN) is NaN and its gradient at a NaN output passes dy, as PyTorch's") {
  using L = On<ReLU, 5>;
  const std::vector<float> x{kNaN, -1.0f, 2.0f, 0.0f, -0.0f};
  std::vector<float> y(5, 7.0f), dx(5, 7.0f);
  const std::vector<float> dy{3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
  L::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == 0.0f);
  CHECK(y[2] == 2.0f);
  CHECK(y[3] == 0.0f);
  CHECK(y[4] == 0.0f);
  // PyTorch: threshold_backward(dy, y, 0) = (y <= 0 ? 0 : dy).
  L::backward(nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, 1, nullptr, PassContext{});
  CHECK(dx == std::vector<float>{3.0f, 0.0f, 5.0f, 0.0f, 0.0f});
}

TEST_CASE("LeakyReLU: NaN in gives NaN out, and alpha * dy back, as PyTorch's") {
  using L = On<LeakyReLU<0.5>, 2>;
  const std::vector<float> x{kNaN, -2.0f}, dy{4.0f, 4.0f};
  std::vector<float> y(2), dx(2);
  L::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == -1.0f);
  L::backward(nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, 1, nullptr, PassContext{});
  CHECK(dx == std::vector<float>{2.0f, 2.0f});
}

TEST_CASE("MaxPool2D: a NaN anywhere in a window makes its max NaN, and the gradient goes to it") {
  using L = On<MaxPool2D<2>, 2, 4, 1>;  // two windows: x[0, 1, 4, 5] and x[2, 3, 6, 7]
  for (std::size_t nan_at : {0, 1, 4, 5}) {
    std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8};
    x[nan_at] = kNaN;
    std::vector<float> y(2), dx(8, 7.0f);
    const std::vector<float> dy{10.0f, 20.0f};
    INFO("NaN at input " << nan_at);
    L::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 8.0f);
    L::backward(nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, 1, nullptr, PassContext{});
    std::vector<float> want(8, 0.0f);
    want[nan_at] = 10.0f;
    want[7] = 20.0f;
    CHECK(dx == want);
  }
}
