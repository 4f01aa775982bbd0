// A model imported from PyTorch against PyTorch's own outputs on the 10,000 Fashion-MNIST test
// images (tests/onnx/data/*_outputs.bin, written by the scripts/torch_*_onnx.py that trained it).
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <ctnn/data/idx.hpp>

namespace ctnn_onnx_test {

inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  REQUIRE(f.good());
  std::vector<float> v(std::size_t(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

// The model's logits on the test images (784 values each, byte / 255 as PyTorch's scripts
// scale them) against PyTorch's in `outputs`: every predicted class the same, the same
// accuracy (at least `min_accuracy`: a trained model), each logit within 1e-5 of the sample's
// largest (a sum of thousands of products in another order differs by rounding relative to its
// terms, not to its value), and each predicted probability (softmax, in double) within 1e-5.
template <class Model>
void check_against_torch(const Model& model, const std::string& outputs, double min_accuracy) {
  static_assert(Model::input_size == 784 && Model::output_size == 10);
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", {.scale = 1.0f});
  for (float& v : test.x) v = v / 255.0f;
  const std::vector<float> torch = read_floats(outputs);
  REQUIRE(test.size() == 10000);
  REQUIRE(torch.size() == 10000 * 10);
  std::vector<float> y(10000 * 10);
  for (std::size_t i = 0; i < 10000; i += 500)  // in parts: a batch's buffers grow with it
    model.predict(std::span<const float>(test.x).subspan(i * 784, 500 * 784), std::span<float>(y).subspan(i * 10, 500 * 10));
  double worst_logit = 0, worst_prob = 0;
  std::size_t same = 0, ours = 0, theirs = 0;
  for (std::size_t i = 0; i < 10000; ++i) {
    const float* a = &y[i * 10];
    const float* b = &torch[i * 10];
    double scale = 0, za = 0, zb = 0;
    for (std::size_t k = 0; k < 10; ++k) scale = std::max(scale, std::abs(double(b[k])));
    for (std::size_t k = 0; k < 10; ++k) za += std::exp(double(a[k]) - scale), zb += std::exp(double(b[k]) - scale);
    std::size_t ca = 0, cb = 0;
    for (std::size_t k = 0; k < 10; ++k) {
      worst_logit = std::max(worst_logit, std::abs(double(a[k]) - b[k]) / std::max(1.0, scale));
      worst_prob = std::max(worst_prob, std::abs(std::exp(a[k] - scale) / za - std::exp(b[k] - scale) / zb));
      if (a[k] > a[ca]) ca = k;
      if (b[k] > b[cb]) cb = k;
    }
    same += ca == cb, ours += ca == std::size_t(test.labels[i]), theirs += cb == std::size_t(test.labels[i]);
  }
  INFO(outputs << ": largest logit difference " << worst_logit << " of the sample's largest logit; largest "
       << "probability difference " << worst_prob << "; " << same << " of 10000 classes agree; accuracy ctnn "
       << double(ours) / 1e4 << ", PyTorch " << double(theirs) / 1e4);
  CHECK(worst_logit <= 1e-5);
  CHECK(worst_prob <= 1e-5);
  CHECK(same == 10000);
  CHECK(ours == theirs);
  CHECK(double(theirs) / 1e4 >= min_accuracy);
}

}  // namespace ctnn_onnx_test
