// Post-training int8 quantization and 16-bit weight storage: scales by hand, the int8 model on
// real Fashion-MNIST against its float original, models exercising every supported layer kind,
// no allocation after reserve, and fp16/bf16 conversions against scalar references.
#include <catch2/catch.hpp>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <new>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/half.hpp>
#include <ctnn/deploy/quantize.hpp>

#include "../allocation_counter.hpp"

using namespace ctnn;

namespace {

const std::string kDir = CTNN_FASHION_MNIST_DIR;
data::Dataset train_set(std::size_t n) {
  return data::load_idx(kDir + "/train-images-idx3-ubyte.gz", kDir + "/train-labels-idx1-ubyte.gz",
                        {.limit = n});
}
data::Dataset test_set(std::size_t n) {
  return data::load_idx(kDir + "/t10k-images-idx3-ubyte.gz", kDir + "/t10k-labels-idx1-ubyte.gz",
                        {.limit = n});
}

// Samples [begin, end) of a dataset as a new dataset.
data::Dataset slice(const data::Dataset& d, std::size_t begin, std::size_t end) {
  data::Dataset s = d;
  const std::size_t f = d.feature_size();
  s.x.assign(d.x.begin() + std::ptrdiff_t(begin * f), d.x.begin() + std::ptrdiff_t(end * f));
  s.labels.assign(d.labels.begin() + std::ptrdiff_t(begin), d.labels.begin() + std::ptrdiff_t(end));
  return s;
}

template <class M>
std::vector<float> outputs(M& model, const data::Dataset& d) {
  std::vector<float> out(d.size() * M::output_size);
  model.predict(d.x, out);
  return out;
}

std::size_t argmax(const float* p, std::size_t n) {
  return std::size_t(std::max_element(p, p + n) - p);
}

double accuracy(const std::vector<float>& out, const data::Dataset& d, std::size_t classes) {
  std::size_t right = 0;
  for (std::size_t i = 0; i < d.size(); ++i)
    right += argmax(out.data() + i * classes, classes) == std::size_t(d.labels[i]);
  return double(right) / double(d.size());
}

double agreement(const std::vector<float>& a, const std::vector<float>& b, std::size_t classes) {
  std::size_t same = 0;
  const std::size_t n = a.size() / classes;
  for (std::size_t i = 0; i < n; ++i)
    same += argmax(a.data() + i * classes, classes) == argmax(b.data() + i * classes, classes);
  return double(same) / double(n);
}

}  // namespace

TEST_CASE("Weights get one symmetric int8 scale per output channel") {
  using Model = Sequential<Input<4>, Dense<3>>;
  Model model(1);
  auto p = model.layer_parameters<0>();
  const float W[3][4] = {{1.0f, -2.54f, 0.5f, 0.3f},       // max |w| 2.54: scale 0.02
                         {0.01f, 0.02f, -0.127f, 0.0f},    // 0.127: scale 0.001
                         {0.0f, 0.0f, 0.0f, 0.0f}};        // all zero: scale 1, weights 0
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t k = 0; k < 4; ++k) p[n * 4 + k] = W[n][k];
  p[12] = 0.5f, p[13] = -0.25f, p[14] = 2.0f;  // biases stay float

  SECTION("non-negative calibration data: uint8 inputs, scale = max / 255") {
    const std::vector<float> calib = {0.0f, 0.5f, 1.0f, 2.55f, 0.1f, 0.2f, 0.3f, 0.4f};
    auto q = quantize(model, std::span<const float>(calib));
    const auto s = q.weight_scales<0>();
    REQUIRE(s.size() == 3);
    CHECK(s[0] == Approx(0.02f));
    CHECK(s[1] == Approx(0.001f));
    CHECK(s[2] == 1.0f);
    const int want[3][4] = {{50, -127, 25, 15}, {10, 20, -127, 0}, {0, 0, 0, 0}};
    for (std::size_t n = 0; n < 3; ++n)
      for (std::size_t k = 0; k < 4; ++k) {
        INFO("n " << n << " k " << k);
        CHECK(int(q.weight<0>(k, n)) == want[n][k]);
      }
    CHECK_FALSE(q.input_is_signed<0>());
    CHECK(q.input_scale<0>() == Approx(2.55f / 255.0f));
    // Inputs on the quantization grid: the only error left is the weights' rounding.
    const std::vector<float> x = {0.01f, 0.5f, 2.55f, 1.0f};
    const auto yq = q.predict(x);
    const auto yf = model.predict(x);
    for (std::size_t n = 0; n < 3; ++n) CHECK(yq[n] == Approx(yf[n]).margin(1e-3));
    CHECK(yq[2] == 2.0f);  // a zero channel gives exactly its bias
  }
  SECTION("calibration data with negatives: int8 inputs, scale = max |x| / 127") {
    const std::vector<float> calib = {-1.27f, 0.5f, 1.0f, 0.2f};
    auto q = quantize(model, std::span<const float>(calib));
    CHECK(q.input_is_signed<0>());
    CHECK(q.input_scale<0>() == Approx(0.01f));
    const std::vector<float> x = {-1.0f, 0.25f, 0.5f, -0.03f};
    const auto yq = q.predict(x);
    const auto yf = model.predict(x);
    for (std::size_t n = 0; n < 3; ++n) CHECK(yq[n] == Approx(yf[n]).margin(2e-3));
  }
  SECTION("misuse is a sentence") {
    const std::vector<float> calib = {1.0f, 2.0f, 3.0f};
    CHECK_THROWS_WITH(quantize(model, std::span<const float>(calib)),
                      Catch::Matchers::Contains("calibration samples of 4 values"));
    const std::vector<float> ok = {1.0f, 2.0f, 3.0f, 4.0f};
    auto q = quantize(model, std::span<const float>(ok));
    CHECK_THROWS_WITH(q.predict(std::span<const float>(calib)),
                      Catch::Matchers::Contains("3 input values"));
    CHECK_THROWS_WITH(quantize(model, std::span<const float>(ok), {.percentile = 0.0}),
                      Catch::Matchers::Contains("percentile"));
  }
}

namespace graph_int8 {
struct Skip;
struct Side;
struct Pooled;
// Conv+BN+ReLU stem read twice (a fan-out), a residual block whose inner Conv+BN+ReLU feeds the
// next Conv in bytes, a ReLU after the Add in float, two branches joined by Concatenate.
using Net = Graph<Input<12, 12, 2>,
                  Conv2D<6, 3, 3, 1, Padding::same>, BatchNormalization<>, ReLU, Tag<Skip>,  // 0-2
                  Conv2D<6, 3, 3, 1, Padding::same>, BatchNormalization<>, ReLU,             // 3-5
                  Conv2D<6, 3, 3, 1, Padding::same>, BatchNormalization<>, Add<Skip>, ReLU,  // 6-9
                  Tag<Side>, MaxPool2D<2>, Conv2D<4, 3, 3, 1, Padding::same>, ReLU,          // 10-12
                  Tag<Pooled>, From<Side>, Conv2D<4, 1, 1, 2>, Concatenate<Pooled>,          // 13-14
                  GlobalAveragePooling2D, Dense<5>>;                                        // 15-16
using P = detail::Int8Forward<Net>;
static_assert(P::plan.fold[0] == 1 && P::plan.fold[3] == 4 && P::plan.fold[6] == 7 &&
                  P::plan.alias[1] && P::plan.alias[4] && P::plan.alias[7],
              "Each BatchNormalization folds into the Conv2D before it.");
static_assert(P::plan.next[3] == 6 && P::plan.relu[3] && P::plan.alias[5] && P::plan.in_bytes[6] &&
                  P::plan.bytes[4] && P::plan.bytes[6] && P::plan.in_slot[6] == P::plan.index[6],
              "Conv+BN+ReLU feeding a Conv alone stays in bytes, the ReLU its store's clamp.");
static_assert(P::plan.next[0] == P::kNone && P::plan.relu[0] && P::plan.alias[2] &&
                  P::plan.bytes[3] && P::plan.unsigned_bytes[3] && P::plan.in_bytes[3] &&
                  P::plan.out_slot[0] == P::plan.index[3] && P::plan.slot[3] == P::plan.index[3],
              "A tensor read twice by a Conv and an Add (the residual's input) is stored in bytes "
              "on the Conv's input scale, the ReLU the clamp of its store.");
static_assert(P::plan.kind[8] == detail::QKind::add && P::plan.bytes[8] && !P::plan.unsigned_bytes[8] &&
                  P::plan.out_slot[6] == P::plan.slot[8] && P::plan.slot[8] >= P::plan.computes &&
                  P::plan.obs_node[P::plan.slot[8]] == 8 && P::plan.obs_input[P::plan.slot[8]] == 0,
              "The Conv+BN read by the Add alone is stored in bytes on a scale of its own (signed), "
              "calibrated at the Add.");
static_assert(P::plan.add8[8] && !P::plan.bytes[9] && !P::plan.alias[9] && P::plan.relu[11] &&
                  P::plan.alias[12],
              "The Add rescales its bytes into float (a MaxPool reads its output, after a float "
              "ReLU); a ReLU before a join is fused.");
static_assert(P::plan.kind[15] == detail::QKind::gap && !P::plan.in_bytes[15],
              "Global average pooling after a Concatenate runs in float.");
// The arena holds the live tensors at their peak: less than keeping every tensor.
static_assert(P::plan.arena < (12 * 12 * 6 * 4) * 4);

// Random BatchNormalization statistics and affine parameters, so folding has work to do.
template <class M>
void randomize_batch_norms(M& model, std::uint64_t seed) {
  Rng rng(seed);
  detail::static_for<M::num_layers>([&]<std::size_t I>() {
    if constexpr (layer_kind<typename M::template layer<I>> == LayerKind::batch_norm) {
      auto p = model.template layer_parameters<I>();
      auto st = model.template layer_state<I>();
      const std::size_t c = p.size() / 2;
      for (std::size_t k = 0; k < c; ++k) {
        p[k] = float(0.5 + rng.uniform01());        // gamma
        p[c + k] = float(rng.uniform01() - 0.5);    // beta
        st[k] = float(0.4 * (rng.uniform01() - 0.5));  // moving mean
        st[c + k] = float(0.5 + 1.5 * rng.uniform01()); // moving variance
      }
    }
  });
}
}  // namespace graph_int8

TEST_CASE("The int8 CNN keeps Fashion-MNIST accuracy within 1 point and agrees with float on 97%", "[long]") {
  using Model = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<32>,
                           ReLU, Dense<10>, Softmax>;
  using Q = QuantizedModel<Model>;
  // Sizes are constants: 72 + 43,264 + 320 int8 weights; 50 channel scales, 3 input scales and 50
  // biases in float.
  static_assert(Q::weight_bytes == 9 * 8 + 1352 * 32 + 32 * 10);
  static_assert(Q::scale_bytes == (8 + 32 + 10 + 3) * 4 && Q::bias_bytes == (8 + 32 + 10) * 4);
  static_assert(Q::float_parameter_bytes == Model::param_count * 4);
  static_assert(Q::parameter_bytes * 3 < Q::float_parameter_bytes);

  const auto train = train_set(7000);
  const auto fit_set = slice(train, 0, 6000);
  const auto calib = slice(train, 6000, 7000);  // images the model did not train on
  const auto test = test_set(2000);
  Model model(42);
  Adam opt(1e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, fit_set, {.epochs = 2, .verbose = 0});
  const auto yf = outputs(model, test);
  const double acc_f = accuracy(yf, test, 10);

  for (double pct : {100.0, 99.99}) {
    auto q = quantize(model, calib, {.percentile = pct});
    CHECK_FALSE(q.input_is_signed<0>());  // pixels in [0, 1]
    CHECK_FALSE(q.input_is_signed<4>());  // after ReLU and max pooling
    CHECK_FALSE(q.input_is_signed<6>());
    if (pct == 100.0) CHECK(q.input_scale<0>() == Approx(1.0f / 255.0f));  // the largest pixel is 1
    const auto yq = outputs(q, test);
    const double acc_q = accuracy(yq, test, 10), agree = agreement(yf, yq, 10);
    std::cout << "small CNN, calibration percentile " << pct << ": float accuracy " << acc_f
              << ", int8 " << acc_q << ", same class on " << agree << " of the test images\n";
    INFO("percentile " << pct << ": float " << acc_f << ", int8 " << acc_q << ", agreement "
                       << agree);
    CHECK(acc_f > 0.75);
    CHECK(acc_q >= acc_f - 0.01);
    CHECK(agree >= 0.97);
    // One sample at a time gives the batch's answers exactly (integer sums, same stores).
    for (std::size_t i = 0; i < 20; ++i) {
      const auto one = q.predict(std::span<const float>(test.sample(i), 784));
      for (std::size_t c = 0; c < 10; ++c) REQUIRE(one[c] == yq[i * 10 + c]);
    }
  }
}

TEST_CASE("Every supported layer kind quantizes: outputs stay close to the float model") {
  const auto data = test_set(300);
  SECTION("Conv2D with same padding and stride, LeakyReLU, AvgPool2D, Tanh, Dropout in float") {
    // Tanh and LeakyReLU give signed Dense inputs; AvgPool2D and Tanh run in float.
    using Model = Sequential<Input<28, 28, 1>, Conv2D<6, 5, 5, 2, Padding::same>, LeakyReLU<0.1>,
                             AvgPool2D<2>, Conv2D<5, 3, 3>, ReLU, MaxPool2D<2, 2, 1>, Flatten,
                             Dropout<0.2>, Dense<17>, Tanh, Dense<10>, Softmax>;
    Model model(3);
    auto q = quantize(model, data);
    CHECK(q.input_is_signed<3>());   // LeakyReLU lets negatives through
    CHECK_FALSE(q.input_is_signed<8>());
    CHECK(q.input_is_signed<10>());  // Tanh
    const auto yf = outputs(model, data), yq = outputs(q, data);
    double worst = 0;
    for (std::size_t i = 0; i < yf.size(); ++i) worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
    INFO("largest probability difference " << worst);
    CHECK(worst < 0.02);
    CHECK(agreement(yf, yq, 10) >= 0.95);
  }
  SECTION("DepthwiseConv2D (multiplier 1 and 2, stride, dilation, padding) with folded "
          "BatchNormalization, in bytes between convolutions") {
    using Model = Sequential<Input<28, 28, 1>, Conv2D<4, 3, 3, 2, Padding::same>, ReLU,
                             DepthwiseConv2D<3, 3, 1, Padding::same>, BatchNormalization<>, ReLU,
                             Conv2D<6, 1, 1>, ReLU,
                             DepthwiseConv2D<3, 3, 2, Padding::pads(1, 0, 1, 0), 2>, ReLU,
                             DepthwiseConv2D<3, 3, 1, Padding::valid, 1, 2>, Flatten, Dense<10>>;
    using P = detail::Int8Forward<Model>;
    static_assert(P::plan.kind[2] == detail::QKind::depthwise && P::plan.fold[2] == 3 &&
                  P::plan.in_bytes[2] && P::plan.next[2] == 5 && P::plan.relu[2]);
    static_assert(P::plan.next[7] == 9 && P::plan.next[9] == 11 && QuantizedModel<Model>::quantized_layers == 6);
    Model model(8);
    graph_int8::randomize_batch_norms(model, 9);
    auto q = quantize(model, data);
    // The int8 weights of a depthwise layer are its float ones on the channel's scale.
    const float* w = model.parameters().data() + Model::param_offset<7>;  // [3][3][6][2]
    const auto s = q.weight_scales<7>();
    for (std::size_t k = 0; k < 9; ++k)
      for (std::size_t ch = 0; ch < 12; ++ch)
        CHECK(std::abs(q.weight<7>(k, ch) * s[ch] - w[k * 12 + ch]) <= 0.5f * s[ch] + 1e-7f);
    const auto yf = outputs(model, data), yq = outputs(q, data);
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < yf.size(); ++i) {
      worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
      largest = std::max(largest, double(std::abs(yf[i])));
    }
    // Six quantized layers in a row at random weights: a few percent of the outputs' range.
    INFO("largest difference " << worst << " of outputs up to " << largest);
    CHECK(largest > 0.001);
    CHECK(worst < 0.05 * largest);
  }
  SECTION("A dense model that starts with Flatten and ends with a ReLU") {
    using Model = Sequential<Input<28, 28, 1>, Flatten, Dense<33>, ReLU, Dense<7>, ReLU>;
    Model model(4);
    auto q = quantize(model, data);
    const auto yf = outputs(model, data), yq = outputs(q, data);
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < yf.size(); ++i) {
      CHECK(yq[i] >= 0.0f);
      worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
      largest = std::max(largest, double(std::abs(yf[i])));
    }
    INFO("largest difference " << worst << " of outputs up to " << largest);
    CHECK(worst < 0.02 * largest);
  }
}


TEST_CASE("A Graph quantizes: BatchNormalization folded, fan-out, residual Add and Concatenate") {
  using graph_int8::Net;
  const auto data = test_set(300);
  std::vector<float> x(data.size() * Net::input_size);
  for (std::size_t i = 0; i < data.size(); ++i)  // two channels from each image's 12x12 corner
    for (std::size_t r = 0; r < 12; ++r)
      for (std::size_t c = 0; c < 12; ++c)
        for (std::size_t ch = 0; ch < 2; ++ch)
          x[i * 288 + (r * 12 + c) * 2 + ch] = data.sample(i)[(r + 8 * ch) * 28 + c + 8];
  Net model(5);
  graph_int8::randomize_batch_norms(model, 6);
  auto q = quantize(model, x);
  CHECK(QuantizedModel<Net>::quantized_layers == 6);
  std::vector<float> yf(data.size() * 5), yq(data.size() * 5);
  model.predict(x, yf);
  q.predict(x, yq);
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < yf.size(); ++i) {
    worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
    largest = std::max(largest, double(std::abs(yf[i])));
  }
  INFO("largest difference " << worst << " of outputs up to " << largest);
  CHECK(largest > 0.05);
  CHECK(worst < 0.03 * largest);
  CHECK(agreement(yf, yq, 5) >= 0.95);
  // Batch and single-sample inference give the same bytes.
  for (std::size_t i = 0; i < 10; ++i) {
    const auto one = q.predict(std::span<const float>(x.data() + i * 288, 288));
    for (std::size_t c = 0; c < 5; ++c) REQUIRE(one[c] == yq[i * 5 + c]);
  }
  // Quantization reads the folded weights: a BatchNormalization with gamma 0 zeroes its
  // channel, and the int8 model follows.
  auto gamma = model.layer_parameters<1>();
  std::fill(gamma.begin(), gamma.begin() + 6, 0.0f);
  auto q0 = quantize(model, x);
  CHECK(q0.weight_scales<0>()[0] == 1.0f);  // an all-zero channel keeps scale 1
  for (std::size_t k = 0; k < 18; ++k) CHECK(q0.weight<0>(k, 0) == 0);
}

// A Fashion-MNIST model trained briefly (2 epochs on 6,000 training images, Adam at `lr`), then
// quantized on the next 1,000 and compared with its int8 model on 2,000 test images.
template <class Model>
struct Int8Run {
  data::Dataset test = test_set(2000);
  QuantizedModel<Model> q;
  std::vector<float> int8_outputs{};
  double float_accuracy = 0, int8_accuracy = 0, agreement = 0;
};
template <class Model>
Int8Run<Model> train_and_quantize(Model& model, float lr, const char* what) {
  const auto train = train_set(7000);
  Adam opt(lr);
  fit(model, opt, SparseCategoricalCrossEntropy{}, slice(train, 0, 6000), {.epochs = 2, .verbose = 0});
  Int8Run<Model> r{.q = quantize(model, slice(train, 6000, 7000))};
  const auto yf = outputs(model, r.test);
  r.int8_outputs = outputs(r.q, r.test);
  r.float_accuracy = accuracy(yf, r.test, 10);
  r.int8_accuracy = accuracy(r.int8_outputs, r.test, 10);
  r.agreement = agreement(yf, r.int8_outputs, 10);
  std::cout << what << ": float accuracy " << r.float_accuracy << ", int8 " << r.int8_accuracy
            << ", same class on " << r.agreement << " of the test images\n";
  return r;
}

TEST_CASE("A residual Graph with BatchNormalization keeps Fashion-MNIST accuracy in int8", "[long]") {
  struct Res;
  using Model = Graph<Input<28, 28, 1>, Conv2D<8, 3, 3, 2, Padding::same>, BatchNormalization<>,
                      ReLU, Tag<Res>, Conv2D<8, 3, 3, 1, Padding::same>, BatchNormalization<>,
                      ReLU, Conv2D<8, 3, 3, 1, Padding::same>, BatchNormalization<>, Add<Res>,
                      ReLU, MaxPool2D<2>, Flatten, Dense<10>, Softmax>;
  Model model(42);
  const auto r = train_and_quantize(model, 1e-3f, "residual CNN with BatchNormalization");
  CHECK(r.float_accuracy > 0.75);  // trained (2 epochs on 6,000 images reach about 0.79)
  CHECK(r.int8_accuracy >= r.float_accuracy - 0.01);
  CHECK(r.agreement >= 0.97);
}

TEST_CASE("Residual Adds and global average pooling run on bytes within a point of float", "[long]") {
  // ResNet's shape: a stem read twice (by the block and by the Add), two Conv+BN in the block, the
  // Add and its ReLU, global average pooling, Dense. Every tensor up to the pooled means is 8-bit.
  // Momentum 0.9: the moving statistics settle within the 375 steps of this short run.
  struct Res;
  using BN = BatchNormalization<0.9>;
  using Model = Graph<Input<28, 28, 1>, Conv2D<16, 3, 3, 2, Padding::same>, BN, ReLU, Tag<Res>,  // 0-2
                      Conv2D<16, 3, 3, 1, Padding::same>, BN, ReLU,                            // 3-5
                      Conv2D<16, 3, 3, 1, Padding::same>, BN, Add<Res>,                        // 6-8
                      ReLU, GlobalAveragePooling2D, Dense<10>, Softmax>;                  // 9-12
  using P = detail::Int8Forward<Model>;
  static_assert(P::plan.bytes[3] && P::plan.bytes[8] && P::plan.bytes[9] && P::plan.bytes[10] &&
                    P::plan.add8[8] && P::plan.alias[9] && P::plan.unsigned_bytes[10] &&
                    P::plan.kind[10] == detail::QKind::gap && P::plan.in_bytes[10] &&
                    !P::plan.bytes[11] && P::plan.scales == P::plan.computes + 2,
                "The stem's fan-out, the Add's inputs and its ReLU'd output are bytes; the pool "
                "reads bytes; two tensors have scales of their own.");
  // The arena at its peak holds the 14x14x16 stem output and two more such tensors, in bytes.
  static_assert(P::plan.arena <= 3 * 14 * 14 * 16 + 1024);
  Model model(7);
  const auto r = train_and_quantize(model, 2e-3f, "residual CNN with global average pooling, Adds on bytes");
  CHECK(r.float_accuracy > 0.6);  // measured 0.636-0.651 (g++ Release, Zen 5)
  CHECK(r.int8_accuracy >= r.float_accuracy - 0.01);
  CHECK(r.agreement >= 0.95);
  // Batch and single-sample inference give the same outputs.
  for (std::size_t i = 0; i < 20; ++i) {
    const auto one = r.q.predict(std::span<const float>(r.test.sample(i), Model::input_size));
    for (std::size_t c = 0; c < 10; ++c) REQUIRE(one[c] == r.int8_outputs[i * 10 + c]);
  }
}

// Augmentation layers are the identity in inference: the int8 plan makes them views, so a model
// trained with them quantizes to the bytes of the same model without them, with no buffer more.
namespace augment_int8 {
using Body = Graph<Input<28, 28, 1>, Conv2D<4, 3, 3, 2>, ReLU, Flatten, Dense<10>, Softmax>;
using Aug = Graph<Input<28, 28, 1>, RandomTranslation<0.1, 0.1>, RandomFlip<FlipMode::horizontal>,
                  Conv2D<4, 3, 3, 2>, ReLU, Flatten, Dense<10>, Softmax>;
using PA = detail::Int8Forward<Aug>;
static_assert(PA::plan.kind[0] == detail::QKind::identity && PA::plan.alias[0] &&
                  PA::plan.kind[1] == detail::QKind::identity && PA::plan.alias[1],
              "RandomTranslation and RandomFlip are views in the int8 plan.");
static_assert(deploy::StaticQuantizedModel<Aug>::buffer_bytes ==
                  deploy::StaticQuantizedModel<Body>::buffer_bytes &&
              PA::plan.arena == detail::Int8Forward<Body>::plan.arena);
}  // namespace augment_int8

TEST_CASE("A model with augmentation layers quantizes to the int8 outputs of the model without") {
  using augment_int8::Aug;
  using augment_int8::Body;
  const auto data = test_set(400);
  Aug aug(3);
  Body body(0);
  REQUIRE(Aug::param_count == Body::param_count);
  std::copy(aug.parameters().begin(), aug.parameters().end(), body.parameters().begin());
  const std::span<const float> calibration(data.x.data(), 200 * Aug::input_size);
  const auto qa = quantize(aug, calibration);
  const auto qb = quantize(body, calibration);
  std::vector<float> ya(data.size() * 10), yb(data.size() * 10);
  qa.predict(data.x, ya);
  qb.predict(data.x, yb);
  CHECK(ya == yb);
  CHECK(qa.accuracy(data) == qb.accuracy(data));
  // and those are the float model's answers, not a constant
  std::vector<float> yf(data.size() * 10);
  aug.predict(data.x, yf);
  CHECK(agreement(ya, yf, 10) >= 0.9);
  CHECK(ya[0] != ya[10]);
}

TEST_CASE("QuantizedModel::accuracy counts the int8 model's right classes and refuses bad data") {
  using Model = Sequential<Input<28, 28, 1>, Conv2D<4, 3, 3, 2>, ReLU, Flatten, Dense<10>, Softmax>;
  const auto data = test_set(600);  // more than one 256-sample chunk
  Model model(11);
  Adam opt(3e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, slice(data, 0, 300), {.epochs = 2, .verbose = 0});
  const auto q = quantize(model, data);
  const double acc = q.accuracy(data);
  CHECK(acc == accuracy(outputs(q, data), data, 10));
  CHECK(acc > 0.5);
  auto bad = slice(data, 0, 10);
  bad.labels[7] = 10;
  CHECK_THROWS_WITH(q.accuracy(bad), Catch::Matchers::Contains("label 10 of sample 7") &&
                                         Catch::Matchers::Contains("[0, 10)"));
  bad = slice(data, 0, 10);
  bad.x[3 * 784 + 5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(q.accuracy(bad), Catch::Matchers::Contains("sample 3 holds nan (value 5)"));
  bad = slice(data, 0, 10);
  bad.labels.clear();
  CHECK_THROWS_WITH(q.accuracy(bad), Catch::Matchers::Contains("one class label per sample"));
  bad.sample_shape = {14, 56, 2};
  CHECK_THROWS_WITH(q.accuracy(bad), Catch::Matchers::Contains("samples of 1568 values"));
}

TEST_CASE("A NaN or infinite input gets NaN outputs from the int8 model and no class") {
  // The seed of issue 11: 8-bit values cannot hold NaN, and quantizing clamped it into range, so
  // a NaN sample got a confident class. Now its outputs are NaN (QuantizedModel and
  // StaticQuantizedModel alike) and predict_class refuses it.
  using Model = Sequential<Input<4>, Dense<8>, ReLU, Dense<3>, Softmax>;
  Model model(1);
  std::vector<float> calibration(64 * 4);
  Rng rng(5);
  for (float& v : calibration) v = float(rng.uniform01() * 2 - 1);
  auto q = quantize(model, std::span<const float>(calibration));
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // A batch: finite, NaN, +inf, finite, -inf. The finite samples keep their own outputs.
  const std::vector<float> x{0.5f, -0.25f, 1.0f, 0.0f,  0.5f, nan, 1.0f, 0.0f,
                             inf,  0.1f,   0.2f, 0.3f,  -0.5f, 0.2f, 0.3f, 0.9f,
                             0.1f, 0.2f,   -inf, 0.3f};
  std::vector<float> y(5 * 3);
  q.predict(x, y);
  for (std::size_t s = 0; s < 5; ++s)
    for (std::size_t k = 0; k < 3; ++k) {
      INFO("sample " << s << ", output " << k << " = " << y[s * 3 + k]);
      CHECK(std::isnan(y[s * 3 + k]) == (s == 1 || s == 2 || s == 4));
    }
  const auto alone = q.predict(std::span<const float>(x.data() + 12, 4));
  CHECK(alone[0] == y[9]);
  CHECK_THROWS_WITH(q.predict_class(std::span<const float>(x.data() + 4, 4)),
                    Catch::Contains("input value 1 is nan") &&
                        Catch::Contains("8-bit inference cannot represent"));
  CHECK(q.predict_class(std::span<const float>(x.data(), 4)) < 3);
  static deploy::StaticQuantizedModel<Model> net(q.int8_parameters());
  const float* ys = net.predict(x.data() + 4);
  for (std::size_t k = 0; k < 3; ++k) CHECK(std::isnan(ys[k]));
  ys = net.predict(x.data());
  for (std::size_t k = 0; k < 3; ++k) CHECK(ys[k] == y[k]);
}

TEST_CASE("Quantized inference allocates nothing after reserve") {
  using Model = Sequential<Input<28, 28, 1>, Conv2D<4, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<16>,
                           ReLU, Dense<10>, Softmax>;
  Model model(5);
  const auto data = test_set(300);
  auto q = quantize(model, data);
  q.reserve(300);
  std::vector<float> out(300 * 10);
  const std::size_t before = g_allocations.load();
  q.predict(data.x, out);
  const auto one = q.predict(std::span<const float>(data.sample(0), 784));
  const std::size_t after = g_allocations.load();
  CHECK(after == before);
  CHECK(one[0] == out[0]);
}

// ---------------------------------------------------------------------------------------------
// fp16 / bf16

namespace {

float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }
std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }

// The value of an fp16 code, from the IEEE-754 definition.
double ref_fp16_value(std::uint16_t h) {
  const int sign = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 31) v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0) v = std::ldexp(double(m), -24);
  else v = std::ldexp(double(1024 + m), e - 25);
  return sign ? -v : v;
}

// x rounded to the nearest value with `mant` fraction bits and exponents >= emin (below: the
// subnormal grid), ties to even; +-inf at or beyond `overflow`. Computed in double, exactly.
double ref_round(double x, int mant, int emin, double overflow) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const double a = std::abs(x);
  if (a == 0) return x;
  const int e = std::max(std::ilogb(a), emin);
  const double ulp = std::ldexp(1.0, e - mant);
  double r = std::nearbyint(a / ulp) * ulp;
  if (r >= overflow) r = std::numeric_limits<double>::infinity();
  return std::copysign(r, x);
}

// Checks the 16-bit conversions of `xs` against the references.
void check_conversions(const std::vector<float>& xs) {
  const auto h = to_fp16(xs), b = to_bf16(xs);
  const auto back_h = from_fp16(h), back_b = from_bf16(b);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const float x = xs[i];
    INFO("x = " << x << " (bits 0x" << std::hex << bits_of(x) << ", fp16 0x" << h[i] << ", bf16 0x"
                << b[i] << std::dec << ")");
    if (std::isnan(x)) {
      REQUIRE(std::isnan(back_h[i]));
      REQUIRE(std::isnan(back_b[i]));
      REQUIRE(std::signbit(back_h[i]) == std::signbit(x));
      REQUIRE(std::signbit(back_b[i]) == std::signbit(x));
      continue;
    }
    // fp16: 10 fraction bits, exponents from -14, largest finite 65504 (65520 rounds to Inf).
    const double want_h = ref_round(x, 10, -14, 65520.0);
    REQUIRE(double(back_h[i]) == want_h);
    REQUIRE(std::signbit(back_h[i]) == std::signbit(x));
    REQUIRE(ref_fp16_value(h[i]) == want_h);
    // bf16: 7 fraction bits, fp32's exponents (-126 and the subnormals below it).
    const double want_b = ref_round(x, 7, -126, std::ldexp(2.0 - std::ldexp(1.0, -8), 127));
    REQUIRE(double(back_b[i]) == want_b);
    REQUIRE(std::signbit(back_b[i]) == std::signbit(x));
  }
}

}  // namespace

TEST_CASE("from_fp16 widens every fp16 code exactly") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = std::uint16_t(i);
  const auto f = from_fp16(all);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const double want = ref_fp16_value(all[i]);
    INFO("code 0x" << std::hex << i);
    if (std::isnan(want)) REQUIRE(std::isnan(f[i]));
    else REQUIRE(double(f[i]) == want);
    REQUIRE(std::signbit(f[i]) == bool(i & 0x8000));
  }
  // And back: every non-NaN code survives the round trip bit for bit.
  const auto h = to_fp16(f);
  for (std::size_t i = 0; i < all.size(); ++i)
    if (!std::isnan(f[i])) REQUIRE(h[i] == all[i]);
}

TEST_CASE("to_fp16 and to_bf16 round to nearest even, with Inf, NaN, zeros and subnormals") {
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f,
                           1e6f, std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(),
                           -std::numeric_limits<float>::quiet_NaN(),
                           from_bits(0x7F800001u),  // a signalling NaN: stays NaN
                           std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                           std::numeric_limits<float>::min(),
                           std::numeric_limits<float>::denorm_min(),
                           std::ldexp(1.0f, -14), std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                           std::ldexp(1.5f, -25), std::ldexp(1.0f, -26), 0.1f, 3.14159265f};
  // Exact ties between neighbouring fp16 values: normal and subnormal, both parities.
  for (std::uint16_t h : {0x0001, 0x0002, 0x03FF, 0x0400, 0x3C00, 0x3C01, 0x7BFE, 0x8401}) {
    const double lo = ref_fp16_value(h), hi = ref_fp16_value(std::uint16_t(h + 1));
    xs.push_back(float((lo + hi) / 2));
  }
  // Exact bf16 ties: the dropped 16 bits are exactly 0x8000, with the kept lsb odd and even.
  for (std::uint32_t b : {0x3F800000u, 0x3F810000u, 0xBF810000u, 0x00010000u, 0x7F7F0000u})
    xs.push_back(from_bits(b | 0x8000u));
  // A sweep over the float bit patterns (a stride prime to every power of 2), every sign,
  // exponent and NaN payload region included.
  for (std::uint64_t b = 0; b < (std::uint64_t(1) << 32); b += 4099) xs.push_back(from_bits(std::uint32_t(b)));
  check_conversions(xs);
  // Lengths that leave every vector tail.
  for (std::size_t n = 0; n < 20; ++n) check_conversions(std::vector<float>(xs.begin(), xs.begin() + std::ptrdiff_t(n)));
}

TEST_CASE("A trained model stored as fp16 or bf16 keeps its accuracy", "[long]") {
  using Model = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<32>,
                           ReLU, Dense<10>, Softmax>;
  static_assert(half_parameter_bytes<Model> * 2 == Model::param_count * sizeof(float));
  Model model(7);
  Adam opt(1e-3f);
  fit(model, opt, SparseCategoricalCrossEntropy{}, train_set(3000), {.epochs = 1, .verbose = 0});
  const auto test = test_set(2000);
  const double acc = accuracy(outputs(model, test), test, 10);
  for (HalfFormat format : {HalfFormat::fp16, HalfFormat::bf16}) {
    const auto stored = half_parameters(model, format);
    REQUIRE(stored.size() == model.parameters().size());
    Model copy(0);
    set_half_parameters(copy, stored, format);
    double worst = 0;  // relative change of any normal weight: half an ulp at most
    for (std::size_t i = 0; i < stored.size(); ++i)
      if (std::abs(model.parameters()[i]) >= std::ldexp(1.0f, -14))
        worst = std::max(worst, double(std::abs(copy.parameters()[i] - model.parameters()[i]) /
                                       std::abs(model.parameters()[i])));
    const double acc16 = accuracy(outputs(copy, test), test, 10);
    std::cout << (format == HalfFormat::fp16 ? "fp16" : "bf16") << " round trip: accuracy "
              << acc << " -> " << acc16 << ", largest relative weight change " << worst << "\n";
    CHECK(worst <= (format == HalfFormat::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8)));
    CHECK(std::abs(acc16 - acc) <= 0.005);
  }
  const std::vector<std::uint16_t> wrong(5);
  CHECK_THROWS_WITH(set_half_parameters(model, wrong, HalfFormat::fp16),
                    Catch::Matchers::Contains("5 16-bit values"));
}
