// The optimizer fused into backward (train/trainer.hpp): a Trainer step that updates each layer
// right after its backward, as soon as its gradient is final, must give the same bits as the
// separate pass over the whole arena after backward,
// which is how every step ran before the fusion: parameters, optimizer state, reported losses
// and gradients, on Fashion-MNIST, at 1 and 2 threads, for Adam, AdamW, RMSprop and SGD, with a
// kernel regularizer, a graph with BatchNormalization state and a fan-out, a loss that does not
// fuse the Softmax, and recurrent layers in Bidirectional and TimeDistributed wrappers (one
// parameter segment each). Clipping (which needs every gradient first) falls back to the pass.
#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {
const std::string kDir = CTNN_FASHION_MNIST_DIR;
const data::Dataset& images() {
  static const data::Dataset d =
      data::load_idx(kDir + "/train-images-idx3-ubyte.gz", kDir + "/train-labels-idx1-ubyte.gz",
                     {.limit = 640});
  return d;
}

// The seed model's shape, smaller, with an L2-regularized Dense.
using Cnn = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3>, ReLU, MaxPool2D<2>, Flatten,
                       Regularized<Dense<64>, L2<1, 1000>>, ReLU, Dense<10>, Softmax>;

struct S;
// A residual block with BatchNormalization (state) and a fan-out, ending without a Softmax.
using Res = Graph<Input<28, 28, 1>, Conv2D<8, 3, 3, 2, Padding::same>, BatchNormalization<>, ReLU,
                  Tag<S>, Conv2D<8, 3, 3, 1, Padding::same>, BatchNormalization<>, ReLU,
                  Conv2D<8, 3, 3, 1, Padding::same>, Add<S>, ReLU, GlobalAveragePooling2D,
                  Dense<10>, Tanh>;

// Rows of the image as a sequence: Bidirectional LSTM, a per-step Dense, a GRU.
using Rnn = Sequential<Input<28, 28>, Bidirectional<LSTM<8, true>>, TimeDistributed<Dense<6>>, GRU<12>,
                       Dense<10>, Softmax>;

struct Outcome {
  std::vector<float> params, state, grads;
  std::vector<double> losses;
  bool all_fused = true, none_fused = true;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// 16 steps of 32 images (staged from the dataset or, with targets, as one-hot rows).
const int default_threads = max_threads();

template <class Model, class Opt, class L>
Outcome train(Opt opt, L loss, bool fused, int threads) {
  set_num_threads(threads);
  Model model(11);
  Trainer<Model, Opt, L> trainer(model, opt, loss, 32, 5);
  trainer.set_fused_update(fused);
  const data::Dataset& d = images();
  Outcome o;
  std::vector<float> x(32 * 784), targets(32 * 10);
  std::vector<std::int32_t> labels(32);
  for (std::size_t s = 0; s < 16; ++s) {
    for (std::size_t i = 0; i < 32; ++i) {
      const std::size_t k = (s * 32 + i) % d.size();
      std::copy(d.sample(k), d.sample(k) + 784, x.begin() + i * 784);
      labels[i] = d.labels[k];
      for (std::size_t c = 0; c < 10; ++c) targets[i * 10 + c] = c == std::size_t(labels[i]) ? 1.f : -1.f;
    }
    trainer.load_batch(x.data(), 32, labels.data(), targets.data());
    o.losses.push_back(trainer.step(32).loss_sum);
    o.all_fused = o.all_fused && trainer.last_step_fused();
    o.none_fused = o.none_fused && !trainer.last_step_fused();
  }
  o.params.assign(model.parameters().begin(), model.parameters().end());
  if constexpr (Model::state_size > 0) o.state.assign(model.state().begin(), model.state().end());
  o.grads.assign(trainer.gradients().begin(), trainer.gradients().end());
  set_num_threads(default_threads);
  return o;
}

template <class Model, class Opt, class L>
void check_fused_equals_pass(Opt opt, L loss) {
  const Outcome pass = train<Model>(opt, loss, false, 1);
  REQUIRE(pass.none_fused);
  for (int threads : {1, 2}) {
    INFO("fused at " << threads << " thread(s) against the separate pass at 1 thread");
    const Outcome fused = train<Model>(opt, loss, true, threads);
    REQUIRE(fused.all_fused);
    CHECK(same_bits(fused.params, pass.params));
    CHECK(same_bits(fused.state, pass.state));
    CHECK(same_bits(fused.grads, pass.grads));
    CHECK(fused.losses == pass.losses);
  }
  // The runs trained: the loss fell and the parameters moved from their initial values.
  CHECK(pass.losses.back() < pass.losses.front());
  Model fresh(11);
  CHECK_FALSE(same_bits(pass.params, std::vector<float>(fresh.parameters().begin(), fresh.parameters().end())));
}
}  // namespace

TEST_CASE("Adam fused into backward gives the separate pass's bits (CNN with an L2 Dense)") {
  check_fused_equals_pass<Cnn>(Adam(2e-3f), SparseCategoricalCrossEntropy{});
}

TEST_CASE("AdamW, RMSprop and SGD fused into backward give the separate pass's bits") {
  SECTION("AdamW") { check_fused_equals_pass<Cnn>(AdamW(2e-3f, 0.01f), SparseCategoricalCrossEntropy{}); }
  SECTION("RMSprop centered with momentum") {
    RMSprop o(1e-3f, 0.9f, 0.5f, 1e-7f, true);
    check_fused_equals_pass<Cnn>(o, SparseCategoricalCrossEntropy{});
  }
  SECTION("SGD Nesterov") {
    SGD o(0.02f, 0.9f, true);
    check_fused_equals_pass<Cnn>(o, SparseCategoricalCrossEntropy{});
  }
}

TEST_CASE("A graph with BatchNormalization and a fan-out, trained on MSE, fuses to the same bits") {
  check_fused_equals_pass<Res>(Adam(1e-2f), MeanSquaredError{});
}

TEST_CASE("Recurrent layers in wrappers fuse to the same bits (Bidirectional LSTM, TimeDistributed, GRU)") {
  check_fused_equals_pass<Rnn>(Adam(3e-3f), SparseCategoricalCrossEntropy{});
}

TEST_CASE("The optimizer's moments are the same after fused and separate steps") {
  const data::Dataset& d = images();
  std::vector<std::size_t> idx(32);
  std::vector<float> m[2], v[2], w[2];
  for (int fused = 0; fused < 2; ++fused) {
    Cnn model(3);
    Adam adam(1e-3f);
    Trainer<Cnn, Adam, SparseCategoricalCrossEntropy> trainer(model, adam, {}, 32, 1);
    trainer.set_fused_update(fused == 1);
    for (std::size_t s = 0; s < 6; ++s) {
      std::iota(idx.begin(), idx.end(), s * 32);
      trainer.load_batch(d, idx);
      trainer.step(32);
    }
    REQUIRE(trainer.last_step_fused() == (fused == 1));
    REQUIRE(adam.iterations() == 6);
    m[fused].assign(adam.first_moment().begin(), adam.first_moment().end());
    v[fused].assign(adam.second_moment().begin(), adam.second_moment().end());
    w[fused].assign(model.parameters().begin(), model.parameters().end());
  }
  CHECK(same_bits(m[0], m[1]));
  CHECK(same_bits(v[0], v[1]));
  CHECK(same_bits(w[0], w[1]));
}

TEST_CASE("With gradient clipping the step runs the separate pass (clipnorm needs every gradient)") {
  Adam opt(1e-3f);
  opt.clipping.clipnorm = 1.0;
  const Outcome o = train<Cnn>(opt, SparseCategoricalCrossEntropy{}, true, 2);
  CHECK(o.none_fused);
  CHECK(o.losses.back() < o.losses.front());
}
