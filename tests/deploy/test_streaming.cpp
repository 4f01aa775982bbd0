// StreamingModel (deploy/streaming.hpp): a recurrent model run one time step per call gives,
// step by step, the bits the whole-sequence model gives, on a model trained on Fashion-MNIST rows
// and on stacks of every recurrent layer.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/streaming.hpp>

namespace {

std::size_t differing(const float* a, const float* b, std::size_t n) {
  std::size_t d = 0;
  for (std::size_t i = 0; i < n; ++i) d += std::memcmp(a + i, b + i, sizeof(float)) != 0;
  return d;
}

// Streams each sequence of x (Steps x Features values per sample) and compares every step's output
// with the whole model's: with return_sequences at the end, row t of its output; otherwise the
// whole model's output for the sequence cut after step t (checked at the last step, and at
// `cut` by running the whole model on a sequence that ends there).
template <class Model>
void check_streaming(const Model& model, const std::vector<float>& x, std::size_t samples) {
  using S = ctnn::deploy::StreamingModel<Model>;
  constexpr std::size_t steps = Model::input_shape::dims[0];
  constexpr std::size_t features = Model::input_shape::rank > 1 ? Model::input_shape::dims[1] : 1;
  static_assert(S::step_input_size == features);
  constexpr bool per_step = Model::output_size == steps * S::output_size && steps > 1;
  S stream(model.parameters().data(), model.state().data());
  std::vector<float> whole(samples * Model::output_size);
  model.predict(std::span<const float>(x.data(), samples * steps * features), std::span<float>(whole));
  for (std::size_t s = 0; s < samples; ++s) {
    stream.reset();
    for (std::size_t t = 0; t < steps; ++t) {
      const float* y = stream.step(x.data() + (s * steps + t) * features);
      INFO("sample " << s << ", step " << t);
      if (per_step)
        REQUIRE(differing(y, whole.data() + s * Model::output_size + t * S::output_size,
                          S::output_size) == 0);
      else if (t + 1 == steps)
        REQUIRE(differing(y, whole.data() + s * Model::output_size, Model::output_size) == 0);
    }
  }
}

// The seq-Fashion-MNIST model of examples/lstm_fashion_mnist.cpp, smaller.
using RowModel = ctnn::Sequential<ctnn::Input<28, 28>, ctnn::LSTM<32>, ctnn::Dense<10>, ctnn::Softmax>;

ctnn::data::Dataset rows(const char* images, const char* labels, std::size_t limit) {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  auto d = ctnn::data::load_idx(dir + "/" + images, dir + "/" + labels, {.limit = limit});
  d.sample_shape = {28, 28};
  return d;
}

}  // namespace

TEST_CASE("Streaming a trained Fashion-MNIST LSTM row by row gives the whole model's bits",
          "[deploy][streaming]") {
  const auto train = rows("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 3000);
  const auto test = rows("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 300);
  RowModel model(1);
  ctnn::Adam opt{2e-3f};
  ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
            {.epochs = 2, .batch_size = 32, .seed = 1, .verbose = 0});
  const auto r = ctnn::evaluate(model, test);
  INFO("test accuracy after 2 epochs on 3,000 images: " << r.accuracy);
  CHECK(r.accuracy > 0.6);  // a trained model, not random weights (chance is 0.1)
  check_streaming(model, test.x, test.size());

  // A stream longer than the training sequences keeps going, and reset() starts it again.
  ctnn::deploy::StreamingModel<RowModel> stream(model.parameters().data());
  for (std::size_t t = 0; t < 28; ++t) stream.step(test.sample(0) + t * 28);
  for (std::size_t t = 0; t < 100; ++t) {
    const float* y = stream.step(test.sample(1) + (t % 28) * 28);
    float sum = 0;
    for (std::size_t k = 0; k < 10; ++k) sum += y[k];
    REQUIRE(sum == Approx(1.0f).margin(1e-5));
  }
  stream.reset();
  const float* y = nullptr;
  for (std::size_t t = 0; t < 28; ++t) y = stream.step(test.sample(0) + t * 28);
  const auto p = model.predict(std::span<const float>(test.sample(0), 28 * 28));
  CHECK(differing(y, p.data(), 10) == 0);
}

TEST_CASE("Streaming stacked GRU, SimpleRNN and LSTM layers, and BatchNormalization after them",
          "[deploy][streaming]") {
  ctnn::Rng rng(9);
  std::vector<float> x(20 * 9 * 5);
  for (float& v : x) v = float(rng.uniform(-2, 2));
  // Every recurrent layer, returning sequences into the next.
  using Stack = ctnn::Sequential<ctnn::Input<9, 5>, ctnn::GRU<16, true>, ctnn::SimpleRNN<12, true>,
                                 ctnn::LSTM<20>, ctnn::Dense<6>, ctnn::Softmax>;
  check_streaming(Stack(3), x, 20);
  // The last recurrent layer returns sequences and is the output: one row per step.
  using PerStep = ctnn::Sequential<ctnn::Input<9, 5>, ctnn::LSTM<17, true>, ctnn::GRU<8, true>>;
  check_streaming(PerStep(4), x, 20);
  // Non-trainable state after the recurrent layer: the moving statistics are copied in, and
  // only the recurrent state is reset.
  using Normed = ctnn::Sequential<ctnn::Input<9, 5>, ctnn::SimpleRNN<16>,
                                  ctnn::BatchNormalization<>, ctnn::ReLU, ctnn::Dense<3>>;
  Normed normed(5);
  for (std::size_t i = 0; i < normed.state().size(); ++i)
    normed.state()[i] = 0.5f + 0.01f * float(i % 7);  // not the initial mean 0 and variance 1
  check_streaming(normed, x, 20);
}

TEST_CASE("Streaming token ids through an Embedding into recurrent layers", "[deploy][streaming]") {
  using Tokens = ctnn::Sequential<ctnn::Input<12>, ctnn::Embedding<9, 4>, ctnn::LSTM<6, true>,
                                  ctnn::GRU<5>, ctnn::Dense<3>, ctnn::Softmax>;
  ctnn::Rng rng(12);
  std::vector<float> x(15 * 12);
  for (float& v : x) v = float(rng.below(9));
  check_streaming(Tokens(6), x, 15);
}

TEST_CASE("StreamingModel's sizes are compile-time constants", "[deploy][streaming]") {
  using S = ctnn::deploy::StreamingModel<RowModel>;
  static_assert(S::step_input_size == 28 && S::output_size == 10);
  static_assert(S::weight_bytes == RowModel::arena_size * sizeof(float));
  // One step's activations and scratch, and the LSTM's h and c: nothing grows with the sequence
  // (the whole model's inference buffers hold all 28 steps' gates and states).
  static_assert(S::buffer_bytes < ctnn::deploy::StaticModel<RowModel>::buffer_bytes / 10);
}
