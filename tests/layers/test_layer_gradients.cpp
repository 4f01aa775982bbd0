// Central-difference gradient checks, in double, for every layer (see tests/gradcheck.hpp).
#include "../gradcheck.hpp"

using namespace ctnn;
using ctnn_test::check_layer_gradients;

template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, double>;

TEST_CASE("Dense gradients") {
  check_layer_gradients<On<Dense<5>, 7>>();
  check_layer_gradients<On<Dense<1>, 1>>(1);
  check_layer_gradients<On<Dense<17>, 19>>(5);  // tails of every tile in both GEMMs
}

TEST_CASE("Conv2D gradients, valid padding") {
  check_layer_gradients<On<Conv2D<3, 3, 3>, 6, 5, 2>>();
  check_layer_gradients<On<Conv2D<1, 1, 1>, 3, 4, 3>>();
  check_layer_gradients<On<Conv2D<9, 2, 3, 2>, 7, 8, 1>>(2);
}

TEST_CASE("Conv2D gradients, same padding") {
  check_layer_gradients<On<Conv2D<4, 3, 3, 1, Padding::same>, 5, 6, 2>>();
  check_layer_gradients<On<Conv2D<3, 2, 4, 2, Padding::same>, 7, 6, 3>>(2);
}

TEST_CASE("MaxPool2D gradients") {
  check_layer_gradients<On<MaxPool2D<2>, 6, 6, 3>>();
  check_layer_gradients<On<MaxPool2D<3, 2, 1>, 5, 6, 2>>();  // overlapping windows
  check_layer_gradients<On<MaxPool2D<2, 2, 2, Padding::same>, 5, 7, 2>>();
}

TEST_CASE("AvgPool2D gradients") {
  check_layer_gradients<On<AvgPool2D<2>, 6, 6, 3>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::same>, 7, 7, 2>>();
}

TEST_CASE("Activation gradients") {
  check_layer_gradients<On<ReLU, 4, 3, 2>>();
  check_layer_gradients<On<LeakyReLU<0.1>, 29>>();
  check_layer_gradients<On<LeakyReLU<>, 5>>();
  check_layer_gradients<On<Sigmoid, 33>>();
  check_layer_gradients<On<Tanh, 3, 11>>();
  check_layer_gradients<On<Softmax, 7>>();
  check_layer_gradients<On<Softmax, 19>>(4);
}

TEST_CASE("Flatten and Dropout gradients") {
  check_layer_gradients<On<Flatten, 3, 4, 2>>();
  check_layer_gradients<On<Dropout<0.3>, 40>>(3, /*training=*/true);
  check_layer_gradients<On<Dropout<0.3>, 40>>(3, /*training=*/false);
}

TEST_CASE("Dropout drops about Rate of its inputs in training and none in inference") {
  using L = On<Dropout<0.25>, 1000>;
  std::vector<double> x(2000, 1.0), y(2000), mask(2000);
  L::forward(nullptr, x.data(), y.data(), 2, mask.data(), PassContext{true, 3});
  std::size_t dropped = 0;
  for (double v : y) {
    REQUIRE((v == 0.0 || std::abs(v - 1.0 / 0.75) < 1e-12));
    dropped += v == 0.0;
  }
  CHECK(dropped > 400);
  CHECK(dropped < 600);
  L::forward(nullptr, x.data(), y.data(), 2, mask.data(), PassContext{false, 3});
  for (double v : y) REQUIRE(v == 1.0);
}
