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
                 4 * (TinyModel::activation_floats_per_sample +
                      TinyModel::inference_scratch_floats_per_sample));
  for (std::size_t i = 0; i < 100; ++i) {
    const std::span<const float> x(train.sample(i), TinyModel::input_size);
    const auto want = model.predict(x);
    const float* got = net.predict(x.data());
    CHECK(std::equal(want.begin(), want.end(), got));
    CHECK(net.predict_class(x.data()) == model.predict_class(x));
  }
}

namespace graph_export {
struct Skip;
struct Side;
struct Pooled;
using BN = BatchNormalization<0.99, 0.001>;
// A residual block with BatchNormalization, a branch joined by Concatenate, a regularized kernel
// (training only: not written).
using Net = Graph<Input<10, 10, 1>, Regularized<Conv2D<4, 3, 3, 1, Padding::same>, L2<1, 1000>>, BN,
                  ReLU, Tag<Skip>, Conv2D<4, 3, 3, 1, Padding::pads(1, 1, 1, 1)>, BN, Add<Skip>,
                  ReLU, Tag<Side>, MaxPool2D<2>, Tag<Pooled>, From<Side>, Conv2D<3, 1, 1, 2>,
                  Concatenate<Pooled>, GlobalAveragePooling2D, Dense<3>, Softmax>;
// What cpp_type<Net>() spells, written out: the same node list, layout and topology hash.
using Spelled = NodeGraph<Input<10, 10, 1>, At<Conv2D<4, 3, 3, 1, Padding::same>, 0>, At<BN, 1>,
                          At<ReLU, 2>, At<Conv2D<4, 3, 3, 1, Padding::pads(1, 1, 1, 1)>, 3>,
                          At<BN, 4>, At<Add<>, 5, 3>, At<ReLU, 6>, At<MaxPool2D<2>, 7>,
                          At<Conv2D<3, 1, 1, 2>, 7>, At<Concatenate<>, 9, 8>,
                          At<GlobalAveragePooling2D, 10>, At<Dense<3>, 11>, At<Softmax, 12>>;
static_assert(Net::topology_hash == Spelled::topology_hash && Net::arena_size == Spelled::arena_size &&
              Net::state_size == Spelled::state_size);
// A different wiring (the Add reading the first ReLU's input instead) is another topology.
using Rewired = NodeGraph<Input<10, 10, 1>, At<Conv2D<4, 3, 3, 1, Padding::same>, 0>, At<BN, 1>,
                          At<ReLU, 2>, At<Conv2D<4, 3, 3, 1, Padding::pads(1, 1, 1, 1)>, 3>,
                          At<BN, 4>, At<Add<>, 5, 2>, At<ReLU, 6>, At<MaxPool2D<2>, 7>,
                          At<Conv2D<3, 1, 1, 2>, 7>, At<Concatenate<>, 9, 8>,
                          At<GlobalAveragePooling2D, 10>, At<Dense<3>, 11>, At<Softmax, 12>>;
static_assert(Net::topology_hash != Rewired::topology_hash);
static_assert(Net::topology_hash != Sequential<Input<10, 10, 1>, Conv2D<4, 3, 3, 1, Padding::same>>::topology_hash);
}  // namespace graph_export

TEST_CASE("A Graph exports in its node form, and runs as StaticModel and StaticQuantizedModel") {
  using graph_export::Net;
  using graph_export::Spelled;
  CHECK(deploy::cpp_type<Net>() ==
        "ctnn::NodeGraph<ctnn::Input<10, 10, 1>, ctnn::At<ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::same>, 0>, "
        "ctnn::At<ctnn::BatchNormalization<0.990000, 0.001000>, 1>, ctnn::At<ctnn::ReLU, 2>, "
        "ctnn::At<ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::pads(1, 1, 1, 1)>, 3>, "
        "ctnn::At<ctnn::BatchNormalization<0.990000, 0.001000>, 4>, ctnn::At<ctnn::Add<>, 5, 3>, "
        "ctnn::At<ctnn::ReLU, 6>, ctnn::At<ctnn::MaxPool2D<2, 2, 2, ctnn::Padding::valid>, 7>, "
        "ctnn::At<ctnn::Conv2D<3, 1, 1, 2, ctnn::Padding::valid>, 7>, ctnn::At<ctnn::Concatenate<>, 9, 8>, "
        "ctnn::At<ctnn::GlobalAveragePooling2D, 10>, ctnn::At<ctnn::Dense<3>, 11>, ctnn::At<ctnn::Softmax, 12>>");
  CHECK(topology<Net>() == topology<Spelled>());
  // Trained a little on real pixels (a 10x10 corner of Fashion-MNIST images, labels mod 3), so
  // the BatchNormalization statistics are not their initial values.
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto images = data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                     dir + "/train-labels-idx1-ubyte.gz", {.limit = 600});
  data::Dataset d = images;
  d.sample_shape = {10, 10, 1};
  d.num_classes = 3;
  d.x.assign(images.size() * 100, 0.0f);
  for (std::size_t i = 0; i < images.size(); ++i) {
    for (std::size_t r = 0; r < 10; ++r)
      for (std::size_t c = 0; c < 10; ++c) d.x[i * 100 + r * 10 + c] = images.sample(i)[(r + 9) * 28 + c + 9];
    d.labels[i] %= 3;
  }
  Net model(7);
  Adam opt(3e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.epochs = 2, .verbose = 0});
  REQUIRE(model.state()[0] != 0.0f);  // moving means moved
  // The spelled type loads what the Graph computed: same outputs, bit for bit.
  Spelled spelled(0);
  std::copy(model.parameters().begin(), model.parameters().end(), spelled.parameters().begin());
  std::copy(model.state().begin(), model.state().end(), spelled.state().begin());
  static deploy::StaticModel<Spelled> net(model.parameters().data(), model.state().data());
  auto q = quantize(model, std::span<const float>(d.x.data(), 200 * 100));
  static deploy::StaticQuantizedModel<Net> qnet(q.int8_parameters());
  std::size_t same_class = 0;
  for (std::size_t i = 0; i < 100; ++i) {
    const std::span<const float> x(d.sample(i), 100);
    const auto want = model.predict(x);
    CHECK(spelled.predict(x) == want);
    const float* got = net.predict(x.data());
    CHECK(std::equal(want.begin(), want.end(), got));
    const auto want_q = q.predict(x);
    const float* got_q = qnet.predict(x.data());
    CHECK(std::equal(want_q.begin(), want_q.end(), got_q));
    same_class += q.predict_class(x) == model.predict_class(x);
  }
  CHECK(same_class >= 95);
}

TEST_CASE("fold_batch_norms: the folded model computes the same outputs without its BatchNormalizations") {
  using graph_export::Net;
  using F = FoldedModel<Net>;
  // The two BatchNormalizations follow a Conv2D each: both fold, the wiring is renumbered.
  STATIC_REQUIRE(F::num_layers == Net::num_layers - 2);
  STATIC_REQUIRE(F::state_size == 0 && F::param_count == Net::param_count - 2 * 2 * 4);
  STATIC_REQUIRE(F::inputs_of<3>[0] == 3 && F::inputs_of<3>[1] == 2);  // the Add: conv 2, stem ReLU
  CHECK(deploy::cpp_type<F>().find("BatchNormalization") == std::string::npos);
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto images = data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                     dir + "/train-labels-idx1-ubyte.gz", {.limit = 400});
  data::Dataset d = images;
  d.sample_shape = {10, 10, 1};
  d.num_classes = 3;
  d.x.assign(images.size() * 100, 0.0f);
  for (std::size_t i = 0; i < images.size(); ++i) {
    for (std::size_t r = 0; r < 10; ++r)
      for (std::size_t c = 0; c < 10; ++c) d.x[i * 100 + r * 10 + c] = images.sample(i)[(r + 9) * 28 + c + 9];
    d.labels[i] %= 3;
  }
  Net model(9);
  Adam opt(3e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.epochs = 2, .verbose = 0});
  const auto folded = fold_batch_norms(model);
  std::vector<float> a(d.size() * 3), b(d.size() * 3);
  model.predict(d.x, a);
  folded.predict(d.x, b);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  INFO("largest difference of the probabilities " << worst);
  CHECK(worst < 1e-5);
  // It runs as a StaticModel without state (and exports as any model).
  static deploy::StaticModel<F> net(folded.parameters().data());
  const float* y = net.predict(d.sample(0));
  for (std::size_t k = 0; k < 3; ++k) CHECK(std::abs(y[k] - a[k]) < 1e-5);

  // A Sequential stays a chain; a BatchNormalization after a ReLU stays, with its state.
  using S = Sequential<Input<10, 10, 1>, Conv2D<3, 3, 3>, BatchNormalization<>, ReLU,
                       BatchNormalization<>, Flatten, Dense<3>, BatchNormalization<>, Softmax>;
  using FS = FoldedModel<S>;
  STATIC_REQUIRE(FS::is_chain && FS::num_layers == S::num_layers - 2);
  STATIC_REQUIRE(layer_kind<FS::layer<2>> == LayerKind::batch_norm && FS::state_size > 0);
  S seq(4);
  fit(seq, opt, SparseCategoricalCrossEntropy{}, d, {.epochs = 1, .verbose = 0});
  const auto fseq = fold_batch_norms(seq);
  seq.predict(d.x, a);
  fseq.predict(d.x, b);
  worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  INFO("Sequential: largest difference " << worst);
  CHECK(worst < 1e-5);
}
