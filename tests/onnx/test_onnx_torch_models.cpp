// Models PyTorch trained and exported (scripts/torch_resnet_onnx.py, scripts/torch_lstm_onnx.py;
// tests/onnx/data), through ctnn-onnx's headers (written at build time): a residual CNN with
// BatchNorm (a ctnn::NodeGraph) and an LSTM, each giving PyTorch's 10,000 test predictions.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "torch_lstm.hpp"
#include "torch_resnet.hpp"

namespace {
std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  REQUIRE(f.good());
  std::vector<float> v(std::size_t(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}
}  // namespace

// The model's logits on the 10,000 test images (as `shape` samples of 784 values scaled as
// PyTorch's scripts scale them) against PyTorch's: every class the same, the accuracy the same,
// each logit within 1e-5 of the sample's largest.
template <class Model>
void check_against_torch(const Model& model, const std::string& outputs, double min_accuracy) {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", {.scale = 1.0f});
  for (float& v : test.x) v = v / 255.0f;  // as PyTorch's script scales
  static_assert(Model::input_size == 784 && Model::output_size == 10);
  const std::vector<float> torch = read_floats(std::string(CTNN_ONNX_DATA_DIR) + "/" + outputs);
  REQUIRE(torch.size() == 10000 * 10);
  std::vector<float> y(10000 * 10);
  for (std::size_t i = 0; i < 10000; i += 500)
    model.predict(std::span<const float>(test.x).subspan(i * 784, 500 * 784), std::span<float>(y).subspan(i * 10, 500 * 10));
  double worst = 0;
  std::size_t same = 0, ours = 0, theirs = 0;
  for (std::size_t i = 0; i < 10000; ++i) {
    double scale = 1;
    for (std::size_t k = 0; k < 10; ++k) scale = std::max(scale, std::abs(double(torch[i * 10 + k])));
    std::size_t a = 0, b = 0;
    for (std::size_t k = 0; k < 10; ++k) {
      worst = std::max(worst, std::abs(double(y[i * 10 + k]) - torch[i * 10 + k]) / scale);
      if (y[i * 10 + k] > y[i * 10 + a]) a = k;
      if (torch[i * 10 + k] > torch[i * 10 + b]) b = k;
    }
    same += a == b, ours += a == std::size_t(test.labels[i]), theirs += b == std::size_t(test.labels[i]);
  }
  INFO(outputs << ": largest logit difference " << worst << " of the sample's largest logit; " << same
       << " of 10000 classes agree; accuracy ctnn " << ours / 1e4 << ", PyTorch " << theirs / 1e4);
  CHECK(worst <= 1e-5);
  CHECK(same == 10000);
  CHECK(ours == theirs);
  CHECK(double(theirs) / 1e4 >= min_accuracy);
}

TEST_CASE("ctnn-onnx: PyTorch's residual CNN with BatchNorm gives PyTorch's 10,000 test predictions") {
  using Model = torch_resnet::Model;
  static_assert(!Model::is_chain, "the residual connection makes it a graph");
  static_assert(Model::state_count == 32, "the BatchNorm after the Add keeps its moving statistics");
  auto model = std::make_unique<Model>();
  std::copy(std::begin(torch_resnet::parameters), std::end(torch_resnet::parameters), model->parameters().begin());
  std::copy(std::begin(torch_resnet::state), std::end(torch_resnet::state), model->state().begin());
  check_against_torch(*model, "torch_resnet_outputs.bin", 0.75);
  // The header's StaticModel (firmware's object) computes what the model computes.
  static auto dev = torch_resnet::make();
  std::vector<float> x(784);
  for (std::size_t i = 0; i < 784; ++i) x[i] = float(i % 29) / 29.0f;
  const auto want = model->predict(x);
  const float* got = dev.predict(x.data());
  for (std::size_t k = 0; k < 10; ++k) CHECK(std::abs(got[k] - want[k]) <= 1e-5f * std::max(1.0f, std::abs(want[k])));
}

TEST_CASE("ctnn-onnx: PyTorch's LSTM (batch_first, the last step) gives PyTorch's 10,000 test predictions") {
  using Model = torch_lstm::Model;
  static_assert(std::is_same_v<Model, ctnn::Sequential<ctnn::Input<28, 28>, ctnn::LSTM<64, false>, ctnn::Dense<10>>>,
                "PyTorch's Transposes, Squeeze, zero initial states and out[:, -1] vanish into one LSTM");
  auto model = std::make_unique<Model>();
  std::copy(std::begin(torch_lstm::parameters), std::end(torch_lstm::parameters), model->parameters().begin());
  check_against_torch(*model, "torch_lstm_outputs.bin", 0.75);
}
