// fit() refuses what would train silently into garbage: bad options, bad optimizer
// hyperparameters (given, changed between fits, or set by a callback), and non-finite
// parameters, which it names by layer (index, name) and index.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;
using Catch::Contains;

namespace {
using Model = Sequential<Input<4>, Dense<8>, ReLU, Dense<3>, Softmax>;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// 12 samples of 4 features, labels 0..2.
data::Dataset small_set() {
  data::Dataset d;
  d.sample_shape = {4};
  d.num_classes = 3;
  Rng rng(7);
  for (std::size_t i = 0; i < 12; ++i) {
    for (int j = 0; j < 4; ++j) d.x.push_back(float(rng.uniform01() * 2 - 1));
    d.labels.push_back(std::int32_t(i % 3));
  }
  return d;
}

// Writes NaN into parameter `index` of the arena when epoch `epoch` begins (after fit's checks).
struct PlantNaN : Callback {
  std::size_t epoch, index;
  PlantNaN(std::size_t e, std::size_t i) : epoch(e), index(i) {}
  void on_epoch_begin(TrainingState& s) override {
    if (s.epoch == epoch) reinterpret_cast<float*>(s.parameters.data())[index] = kNaN;
  }
};

// Sets the learning rate to `rate` when epoch `epoch` begins.
struct SetRate : Callback {
  std::size_t epoch;
  double rate;
  SetRate(std::size_t e, double r) : epoch(e), rate(r) {}
  void on_epoch_begin(TrainingState& s) override {
    if (s.epoch == epoch) s.learning_rate = rate;
  }
};
}  // namespace

TEST_CASE("A NaN weight planted in Dense 0 stops fit within the first epoch, naming layer 0") {
  const auto d = small_set();
  SECTION("planted before fit: refused before the first step") {
    Model model(1);
    model.layer_parameters<0>()[5] = kNaN;
    Adam opt;
    REQUIRE_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.epochs = 3, .verbose = 0}),
                        Contains("parameter 5 of layer 0 (Dense) is nan before training"));
  }
  SECTION("planted as epoch 1 begins: the NaN reaches the loss through ReLU at batch 1") {
    // (The step of batch 1 has spread it over all of Dense 0 by the time the loss is checked.)
    Model model(1);
    Adam opt;
    PlantNaN plant(1, 5);
    REQUIRE_THROWS_WITH(
        fit(model, opt, SparseCategoricalCrossEntropy{}, d,
            {.epochs = 3, .batch_size = 4, .verbose = 0, .callbacks = {plant}}),
        Contains("the loss is nan at epoch 1, batch 1 of 3") &&
            Contains("of layer 0 (Dense) is nan"));
  }
}

TEST_CASE("A parameter that overflows while the loss is finite stops fit after that epoch") {
  // MSE against targets of 1e6: gradients ~1e6, so a learning rate of 1e36 (finite, allowed)
  // sends parameters to infinity in the one step of epoch 1, whose loss (~1e12) was finite.
  using Reg = Sequential<Input<4>, Dense<8>, ReLU, Dense<1>>;
  Reg model(2);
  data::Dataset d = small_set();
  d.labels.clear();
  d.target_size = 1;
  d.targets.assign(12, 1e6f);
  SGD opt(1e36f);
  REQUIRE_THROWS_WITH(fit(model, opt, MeanSquaredError{}, d, {.epochs = 3, .batch_size = 12, .verbose = 0}),
                      Contains("Training diverged: the model's parameter") &&
                          Contains("after epoch 1 (the loss was finite)"));
}

TEST_CASE("Optimizers refuse bad hyperparameters on construction, naming the value and the range") {
  CHECK_THROWS_WITH(Adam(-0.001f), "Adam's learning rate must be a finite number >= 0; it is -0.001.");
  CHECK_THROWS_WITH(Adam(kNaN), Contains("Adam's learning rate") && Contains("it is nan"));
  CHECK_THROWS_WITH(Adam(kInf), Contains("Adam's learning rate") && Contains("it is inf"));
  CHECK_THROWS_WITH(Adam(1e-3f, 1.0f), "Adam's beta_1 must be a number in [0, 1); it is 1.");
  CHECK_THROWS_WITH(Adam(1e-3f, -0.5f), Contains("Adam's beta_1") && Contains("it is -0.5"));
  CHECK_THROWS_WITH(Adam(1e-3f, 0.9f, kNaN), Contains("Adam's beta_2 must be a number in [0, 1)"));
  CHECK_THROWS_WITH(Adam(1e-3f, 0.9f, 0.999f, 0.0f),
                    "Adam's epsilon must be a finite number > 0; it is 0.");
  CHECK_THROWS_WITH(SGD(-1.0f), "SGD's learning rate must be a finite number >= 0; it is -1.");
  CHECK_THROWS_WITH(SGD(0.01f, 1.5f), "SGD's momentum must be a number in [0, 1]; it is 1.5.");
  CHECK_THROWS_WITH(SGD(0.01f, -0.1f), Contains("SGD's momentum") && Contains("it is -0.1"));
  CHECK_THROWS_WITH(BasicSGD<double>(0.01, kNaN), Contains("SGD's momentum") && Contains("nan"));
  // The edges of the ranges are allowed: a rate of 0 ends a cosine schedule; Keras allows
  // momentum 1 and Nesterov without momentum.
  CHECK_NOTHROW(Adam(0.0f, 0.0f, 0.0f, 1e-30f));
  CHECK_NOTHROW(SGD(0.0f, 1.0f, true));
  CHECK_NOTHROW(SGD(0.01f, 0.0f, true));
}

TEST_CASE("fit() and step() refuse hyperparameters changed to bad values after construction") {
  const auto d = small_set();
  Model model(1);
  SECTION("Adam: each hyperparameter") {
    Adam opt;
    opt.learning_rate = -0.001f;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      "Adam's learning rate must be a finite number >= 0; it is -0.001.");
    opt.learning_rate = 1e-3f;
    opt.beta_1 = 1.0f;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("Adam's beta_1"));
    opt.beta_1 = 0.9f;
    opt.beta_2 = kInf;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("Adam's beta_2"));
    opt.beta_2 = 0.999f;
    opt.epsilon = -1e-7f;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("Adam's epsilon"));
    opt.epsilon = 1e-7f;
    CHECK(opt.iterations() == 0);  // nothing was trained
    // A direct step (Trainer, or a loop of one's own) checks too.
    std::vector<float> w(3, 1.0f), g(3, 1.0f);
    opt.learning_rate = kNaN;
    CHECK_THROWS_WITH(opt.step(w, g), Contains("Adam's learning rate"));
    CHECK(w == std::vector<float>(3, 1.0f));
  }
  SECTION("SGD: learning rate and momentum") {
    SGD opt;
    opt.learning_rate = kNaN;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      Contains("SGD's learning rate") && Contains("nan"));
    opt.learning_rate = 0.01f;
    opt.momentum = 2.0f;
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d, {.verbose = 0}),
                      "SGD's momentum must be a number in [0, 1]; it is 2.");
    CHECK(opt.iterations() == 0);
  }
}

TEST_CASE("A callback that sets a bad learning rate is refused when it does") {
  const auto d = small_set();
  for (double bad : {-0.5, double(kNaN), double(kInf)}) {
    Model model(1);
    Adam opt;
    SetRate set(2, bad);
    std::ostringstream want;
    want << "A callback set the learning rate to " << bad << " at epoch 2; a learning rate must "
         << "be a finite number >= 0.";
    INFO("rate " << bad);
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, d,
                          {.epochs = 3, .batch_size = 4, .verbose = 0, .callbacks = {set}}),
                      want.str());
    CHECK(opt.iterations() == 3);  // epoch 1 ran, epoch 2 did not
    CHECK(opt.learning_rate == 1e-3f);
  }
}

TEST_CASE("fit() checks every option before the first step") {
  const auto d = small_set();
  Model model(1);
  Adam opt;
  const auto run = [&](FitOptions o) { return fit(model, opt, SparseCategoricalCrossEntropy{}, d, o); };
  CHECK_THROWS_WITH(run({.epochs = 0, .verbose = 0}), Contains("options.epochs is 0"));
  CHECK_THROWS_WITH(run({.epochs = 2, .initial_epoch = 2, .verbose = 0}),
                    Contains("initial_epoch (2) must be below epochs (2)"));
  CHECK_THROWS_WITH(run({.batch_size = 0, .verbose = 0}), Contains("options.batch_size is 0"));
  CHECK_THROWS_WITH(run({.validation_split = double(kNaN), .verbose = 0}),
                    "validation_split must be in [0, 1), got nan.");
  CHECK_THROWS_WITH(run({.validation_split = 1.0, .verbose = 0}),
                    "validation_split must be in [0, 1), got 1.");
  CHECK_THROWS_WITH(run({.validation_split = -0.1, .verbose = 0}), Contains("got -0.1"));
  CHECK_THROWS_WITH(run({.verbose = 2}),
                    "fit(): options.verbose must be 0 (silent) or 1 (progress); it is 2.");
  CHECK_THROWS_WITH(run({.verbose = -1}), Contains("options.verbose") && Contains("it is -1"));
  CHECK_THROWS_WITH(run({.verbose = 1, .out = nullptr}), Contains("options.out is null"));
  CHECK(opt.iterations() == 0);
  // And valid options train.
  std::ostringstream log;
  CHECK(run({.batch_size = 5, .validation_split = 0.25, .verbose = 1, .out = &log}).epochs.size() == 1);
  CHECK(opt.iterations() == 2);  // 9 training samples after the split: batches of 5 and 4
}
