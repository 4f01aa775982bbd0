// Exported headers and the static inference path: the C++ text of a model, exact values, and
// StaticModel agreeing bit for bit with the model it came from, without allocating.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/export.hpp>

#include "tiny_model.hpp"

using namespace ctnn;
using Catch::Matchers::Contains;

TEST_CASE("cpp_type spells the model as C++ source, settings included") {
  CHECK(deploy::cpp_type<TinyModel>() ==
        "ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<4, 3, 3, 2, ctnn::Padding::valid>, "
        "ctnn::ReLU, ctnn::MaxPool2D<2, 2, 2, ctnn::Padding::valid>, ctnn::Flatten, ctnn::Dense<16>, "
        "ctnn::ReLU, ctnn::Dense<10>, ctnn::Softmax>");
  using Other = BasicSequential<double, Input<8>, Dense<4>, LeakyReLU<0.1>, Dropout<0.25>,
                                Dense<3>, Sigmoid>;
  CHECK(deploy::cpp_type<Other>() ==
        "ctnn::BasicSequential<double, ctnn::Input<8>, ctnn::Dense<4>, ctnn::LeakyReLU<0.100000>, "
        "ctnn::Dropout<0.250000>, ctnn::Dense<3>, ctnn::Sigmoid>");
  // The text names the same type: the topologies agree.
  using Respelled = Sequential<Input<28, 28, 1>, Conv2D<4, 3, 3, 2, Padding::valid>, ReLU,
                               AvgPool2D<2, 2, 2, Padding::valid>, Flatten, Dense<16>, ReLU,
                               Dense<10>, Softmax>;
  CHECK(topology<Respelled>() != topology<TinyModel>());  // AvgPool is not MaxPool
  CHECK_THAT(deploy::cpp_type<Respelled>(), Contains("ctnn::AvgPool2D<2, 2, 2, ctnn::Padding::valid>"));
}

TEST_CASE("Exported arrays hold every value exactly, and refuse non-finite ones") {
  const std::vector<float> v = {0.0f, -0.0f, 1.0f / 3, -1e-38f, 3.4e38f, 1e-45f, 0.1f, -2.5f};
  std::ostringstream os;
  deploy::write_constexpr_array<float>(os, "values", v);
  const std::string text = os.str();
  CHECK_THAT(text, Contains("alignas(64) inline constexpr float values[8] = {"));
  // Parse the literals back.
  const std::string body = text.substr(text.find('{') + 1);
  std::vector<float> back;
  const char* p = body.c_str();
  for (char* end = nullptr;; p = end + 1) {
    const float f = std::strtof(p, &end);
    if (end == p) break;
    back.push_back(f);
    if (*end == 'f') ++end;  // the float suffix
    if (*end != ',') break;
  }
  REQUIRE(back.size() == v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    CHECK(back[i] == v[i]);
    CHECK(std::signbit(back[i]) == std::signbit(v[i]));
  }
  const std::vector<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  std::ostringstream ignored;
  CHECK_THROWS_WITH(deploy::write_constexpr_array<float>(ignored, "w", bad),
                    Contains("w[1]") && Contains("finite"));
  TinyModel m(1);
  CHECK_THROWS_WITH(deploy::export_header("/tmp/x.hpp", m, "3d"), Contains("not a C++ identifier"));
}

TEST_CASE("StaticModel over a model's parameters predicts what the model predicts, bit for bit") {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto train = data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                    dir + "/train-labels-idx1-ubyte.gz", {.limit = 2000});
  TinyModel model(3);
  Adam opt(3e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 1, .verbose = 0});
  static deploy::StaticModel<TinyModel> net(model.parameters().data());
  STATIC_REQUIRE(decltype(net)::weight_bytes == TinyModel::arena_size * 4);
  STATIC_REQUIRE(decltype(net)::buffer_bytes ==
                 4 * (TinyModel::activation_floats_per_sample + TinyModel::scratch_floats_per_sample));
  for (std::size_t i = 0; i < 100; ++i) {
    const std::span<const float> x(train.sample(i), TinyModel::input_size);
    const auto want = model.predict(x);
    const float* got = net.predict(x.data());
    CHECK(std::equal(want.begin(), want.end(), got));
    CHECK(net.predict_class(x.data()) == model.predict_class(x));
  }
}
