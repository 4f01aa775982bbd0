// ONNX export: save_onnx writes a model ONNX's checker accepts, and ctnn's importer reads it back
// to the same model type with the same parameter and state bits, for a model trained here on
// Fashion-MNIST and for graphs with every layer kind save_onnx maps.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/onnx/load.hpp>
#include <ctnn/onnx/save.hpp>

namespace {
const std::string kTmp = CTNN_ONNX_TMP_DIR;

template <class Model>
void check_round_trip(const Model& model, const std::string& file) {
  const std::string path = kTmp + "/" + file;
  ctnn::onnx::save_onnx(path, model);
  const ::onnx::ModelProto m = ctnn::onnx::read_model_file(path);
  CHECK_NOTHROW(::onnx::checker::check_model(m));
  const ctnn::onnx::ImportedModel back = ctnn::onnx::import_model(m);
  // The same type, spelled as export_header spells it, and the same bits.
  CHECK(back.model_type() == ctnn::deploy::cpp_type<Model>());
  const std::vector<float> arena = back.arena(), state = back.state_arena();
  REQUIRE(arena.size() == model.parameters().size());
  REQUIRE(state.size() == model.state().size());
  CHECK(std::memcmp(arena.data(), model.parameters().data(), arena.size() * sizeof(float)) == 0);
  if (!state.empty()) CHECK(std::memcmp(state.data(), model.state().data(), state.size() * sizeof(float)) == 0);
  // load_onnx into a fresh model of the type gives the same predictions, bit for bit.
  auto loaded = std::make_unique<Model>(99);
  ctnn::onnx::load_onnx(path, *loaded);
  std::vector<float> x(Model::input_size);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.37 * double(i)));
  const auto a = model.predict(x), b = loaded->predict(x);
  CHECK(std::memcmp(a.data(), b.data(), sizeof(a)) == 0);
}
}  // namespace

TEST_CASE("save_onnx: a seed-like model trained on Fashion-MNIST is written, checked and read back bit for bit") {
  using Net = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU, ctnn::MaxPool2D<2>,
                               ctnn::Flatten, ctnn::Dense<32>, ctnn::ReLU, ctnn::Dropout<0.25>, ctnn::Dense<10>,
                               ctnn::Softmax>;
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto train = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", {.limit = 3000});
  const auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", {.limit = 1000});
  auto model = std::make_unique<Net>(3);
  ctnn::Adam opt(1e-3f);
  ctnn::fit(*model, opt, ctnn::SparseCategoricalCrossEntropy{}, train, {.epochs = 2, .seed = 3, .verbose = 0});
  const double accuracy = ctnn::evaluate(*model, test).accuracy;
  CHECK(accuracy > 0.7);
  check_round_trip(*model, "trained_seed.onnx");
  // The model read back classifies the test images as the original does.
  auto back = std::make_unique<Net>();
  ctnn::onnx::load_onnx(kTmp + "/trained_seed.onnx", *back);
  CHECK(ctnn::evaluate(*back, test).accuracy == accuracy);
}

TEST_CASE("save_onnx: graphs with residual joins, BatchNormalization state, depthwise, dilated, grouped and 1-D layers round-trip") {
  // A residual block with BatchNormalization (state), a projection, Concatenate, pools, global pooling.
  using Res = ctnn::NodeGraph<
      ctnn::Input<12, 12, 3>,
      ctnn::At<ctnn::Conv2D<8, 3, 3, 1, ctnn::Padding::same>, 0>,                 // 1
      ctnn::At<ctnn::BatchNormalization<>, 1>,                                     // 2
      ctnn::At<ctnn::ReLU6, 2>,                                                    // 3
      ctnn::At<ctnn::DepthwiseConv2D<3, 3, 1, ctnn::Padding::pads(1, 1, 1, 1), 2>, 3>,  // 4: 16 ch
      ctnn::At<ctnn::Conv2D<16, 1, 1>, 0>,                                         // 5: projection
      ctnn::At<ctnn::Add<>, 4, 5>,                                                 // 6
      ctnn::At<ctnn::Conv2D<16, 3, 3, 2, ctnn::Padding::same_lower, ctnn::init::GlorotUniform, ctnn::init::Zeros, 1, 4>, 6>,  // 7
      ctnn::At<ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::same, ctnn::init::GlorotUniform, ctnn::init::Zeros, 2, 1>, 6>,  // 8 dilated
      ctnn::At<ctnn::MaxPool2D<2>, 8>,                                             // 9
      ctnn::At<ctnn::Concatenate<>, 7, 9>,                                         // 10: 20 ch
      ctnn::At<ctnn::AvgPool2D<3, 3, 1, ctnn::Padding::pads(1, 1, 1, 1), 1, true>, 10>,  // 11
      ctnn::At<ctnn::LeakyReLU<0.1>, 11>,                                          // 12
      ctnn::At<ctnn::GlobalAveragePooling2D, 12>,                                  // 13
      ctnn::At<ctnn::Dense<6>, 13>,                                                // 14
      ctnn::At<ctnn::BatchNormalization<0.9, 0.00001>, 14>,                        // 15
      ctnn::At<ctnn::HardSwish, 15>,                                               // 16
      ctnn::At<ctnn::Dense<3>, 16>>;
  auto res = std::make_unique<Res>(5);
  // State that is not the initial zeros and ones (the arena's padding stays zero).
  for (std::size_t i = 0; i < 16; ++i) res->state()[Res::state_offset<1> + i] = 0.5f + 0.01f * float(i);
  for (std::size_t i = 0; i < 12; ++i) res->state()[Res::state_offset<14> + i] = 0.25f + 0.03f * float(i);
  check_round_trip(*res, "residual.onnx");

  // Sequences: Conv1D (causal, dilated, grouped), 1-D pools, ELU, Sigmoid, Tanh, HardSigmoid, a
  // Reshape of a flat tensor.
  using Seq = ctnn::Sequential<ctnn::Input<32, 4>, ctnn::Conv1D<8, 3, 1, ctnn::Padding::causal, 2>, ctnn::ELU<1.0>,
                               ctnn::Conv1D<8, 3, 2, ctnn::Padding::same, 1, ctnn::init::GlorotUniform, ctnn::init::Zeros, 2>,
                               ctnn::MaxPool1D<2>, ctnn::AveragePooling1D<2, 1, ctnn::Padding::pads(0, 0, 1, 0), true>,
                               ctnn::Sigmoid, ctnn::GlobalMaxPooling1D, ctnn::Reshape<2, 4>, ctnn::Tanh,
                               ctnn::Flatten, ctnn::HardSigmoid, ctnn::Dense<5>, ctnn::BoundedReLU<2.5>>;
  auto seq = std::make_unique<Seq>(6);
  check_round_trip(*seq, "sequence.onnx");
}

TEST_CASE("save_onnx: recurrent models (LSTM, GRU, SimpleRNN, every step or the last) round-trip") {
  using Rnn = ctnn::Sequential<ctnn::Input<7, 5>, ctnn::SimpleRNN<6, true>, ctnn::GRU<8, true>, ctnn::LSTM<9, true>,
                               ctnn::LSTM<4>, ctnn::Dense<3>>;
  auto rnn = std::make_unique<Rnn>(8);
  // Non-zero biases, so that the gate order of every bias block is checked too.
  ctnn::detail::static_for<Rnn::num_layers>([&]<std::size_t I>() {
    auto p = rnn->template layer_parameters<I>();
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += 0.01f * float(i % 13);
  });
  check_round_trip(*rnn, "recurrent.onnx");
  using Gru = ctnn::Sequential<ctnn::Input<6, 4>, ctnn::GRU<5>, ctnn::Dense<2>>;
  auto gru = std::make_unique<Gru>(9);
  check_round_trip(*gru, "gru.onnx");
}

TEST_CASE("save_onnx: a layer ONNX export does not map yet is an error naming it, and no file is written") {
  using Rnn = ctnn::Sequential<ctnn::Input<5, 3>, ctnn::Bidirectional<ctnn::LSTM<4>>, ctnn::Dense<2>>;
  auto m = std::make_unique<Rnn>();
  const std::string path = kTmp + "/lstm.onnx";
  std::remove(path.c_str());
  std::string e;
  try {
    ctnn::onnx::save_onnx(path, *m);
  } catch (const ctnn::Error& err) {
    e = err.what();
  }
  INFO(e);
  CHECK(e.find("layer 0 (ctnn::Bidirectional<ctnn::LSTM<4, false>, ctnn::Merge::concat>) cannot be written as ONNX") != std::string::npos);
  CHECK(!std::ifstream(path).good());
}
