// A PyTorch model with BatchNorm and a residual connection (scripts/torch_resnet_onnx.py trained
// and exported it; tests/onnx/data), through ctnn-onnx's header (written at build time): a
// ctnn::NodeGraph whose 10,000 test predictions are PyTorch's.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

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

TEST_CASE("ctnn-onnx: PyTorch's residual CNN with BatchNorm gives PyTorch's 10,000 test predictions") {
  using Model = torch_resnet::Model;
  static_assert(!Model::is_chain, "the residual connection makes it a graph");
  static_assert(Model::state_count == 32, "the BatchNorm after the Add keeps its moving statistics");
  auto model = std::make_unique<Model>();
  std::copy(std::begin(torch_resnet::parameters), std::end(torch_resnet::parameters), model->parameters().begin());
  std::copy(std::begin(torch_resnet::state), std::end(torch_resnet::state), model->state().begin());
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", {.scale = 1.0f});
  for (float& v : test.x) v = v / 255.0f;  // as PyTorch's script scales
  const std::vector<float> torch = read_floats(std::string(CTNN_ONNX_DATA_DIR) + "/torch_resnet_outputs.bin");
  REQUIRE(torch.size() == 10000 * 10);
  std::vector<float> y(10000 * 10);
  for (std::size_t i = 0; i < 10000; i += 500)
    model->predict(std::span<const float>(test.x).subspan(i * 784, 500 * 784), std::span<float>(y).subspan(i * 10, 500 * 10));
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
  INFO("largest logit difference " << worst << " of the sample's largest logit; " << same
       << " of 10000 classes agree; accuracy ctnn " << ours / 1e4 << ", PyTorch " << theirs / 1e4);
  CHECK(worst <= 1e-5);
  CHECK(same == 10000);
  CHECK(ours == theirs);
  CHECK(theirs > 7500);
  // The header's StaticModel (firmware's object) computes the same outputs as the model.
  static auto dev = torch_resnet::make();
  for (std::size_t i = 0; i < 20; ++i) {
    const float* d = dev.predict(test.x.data() + i * 784);
    for (std::size_t k = 0; k < 10; ++k) CHECK(std::abs(d[k] - y[i * 10 + k]) <= 1e-5f * std::max(1.0f, std::abs(y[i * 10 + k])));
  }
}
