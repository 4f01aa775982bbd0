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

#include "torch_compare.hpp"
#include "torch_lstm.hpp"
#include "torch_resnet.hpp"

TEST_CASE("ctnn-onnx: PyTorch's residual CNN with BatchNorm gives PyTorch's 10,000 test predictions") {
  using Model = torch_resnet::Model;
  static_assert(!Model::is_chain, "the residual connection makes it a graph");
  static_assert(Model::state_count == 32, "the BatchNorm after the Add keeps its moving statistics");
  auto model = std::make_unique<Model>();
  std::copy(std::begin(torch_resnet::parameters), std::end(torch_resnet::parameters), model->parameters().begin());
  std::copy(std::begin(torch_resnet::state), std::end(torch_resnet::state), model->state().begin());
  ctnn_onnx_test::check_against_torch(*model, std::string(CTNN_ONNX_DATA_DIR) + "/torch_resnet_outputs.bin", 0.75);
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
  ctnn_onnx_test::check_against_torch(*model, std::string(CTNN_ONNX_DATA_DIR) + "/torch_lstm_outputs.bin", 0.75);
}
