// Callbacks on real Fashion-MNIST runs: early stopping (with best weights restored), the
// learning-rate schedules and reduce-on-plateau, CSV / JSON-lines logs and the SVG plot.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/train/callbacks.hpp>
#include <ctnn/train/plot.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {
const std::string kDir = CTNN_FASHION_MNIST_DIR;
using Small = Sequential<Input<28, 28, 1>, Flatten, Dense<32>, ReLU, Dense<10>, Softmax>;

const data::Dataset& train_images() {
  static const data::Dataset d = data::load_idx(kDir + "/train-images-idx3-ubyte.gz",
                                                kDir + "/train-labels-idx1-ubyte.gz", {.limit = 3000});
  return d;
}
const data::Dataset& test_images() {
  static const data::Dataset d = data::load_idx(kDir + "/t10k-images-idx3-ubyte.gz",
                                                kDir + "/t10k-labels-idx1-ubyte.gz", {.limit = 1000});
  return d;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string temp_path(const std::string& name) {
  return std::string(P_tmpdir) + "/ctnn_test_callbacks_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<float> params_of(const Small& m) {
  return {m.parameters().begin(), m.parameters().end()};
}
}  // namespace

TEST_CASE("EarlyStopping stops when val_loss stops improving and restores the best epoch's weights") {
  // A high learning rate on 3,000 images overfits within a few epochs, so val_loss turns up.
  Small model(7);
  Adam opt(3e-3f);
  EarlyStopping stop({.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
  std::ostringstream log;
  const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, train_images(),
                     {.epochs = 40, .validation = &test_images(), .seed = 3, .out = &log,
                      .callbacks = {stop}});
  INFO(log.str());
  REQUIRE(h.stopped_early);
  REQUIRE(h.epochs.size() < 40);
  // It stopped exactly `patience` epochs after the best one, and the best is the history's best.
  CHECK(stop.stopped_epoch() == h.epochs.size());
  CHECK(stop.best_epoch() == h.best("val_loss").epoch);
  CHECK(h.epochs.size() == stop.best_epoch() + 2);
  CHECK_THAT(log.str(), Contains("Early stopping at epoch") && Contains("Restored the weights of epoch"));
  // The restored model has the best epoch's validation loss again (evaluation is deterministic).
  const auto e = evaluate(model, test_images());
  CHECK(e.loss == Approx(h.best("val_loss").val_loss).epsilon(1e-6));
  CHECK(e.loss < h.last().val_loss);
}

TEST_CASE("EarlyStopping without restore keeps the last weights, and patience 0 stops at once") {
  Small a(5), b(5);
  Adam opt_a(3e-3f), opt_b(3e-3f);
  EarlyStopping stop({.monitor = "val_accuracy", .patience = 0});
  const auto ha = fit(a, opt_a, SparseCategoricalCrossEntropy{}, train_images(),
                      {.epochs = 30, .validation = &test_images(), .verbose = 0, .callbacks = {stop}});
  REQUIRE(ha.stopped_early);
  // Stopped at the first epoch whose val_accuracy did not beat the best so far.
  const std::size_t n = ha.epochs.size();
  REQUIRE(n >= 2);
  for (std::size_t i = 1; i + 1 < n; ++i) CHECK(ha.epochs[i].val_accuracy > ha.epochs[i - 1].val_accuracy);
  CHECK(ha.epochs[n - 1].val_accuracy <= ha.epochs[n - 2].val_accuracy);
  // The same run without the callback for the same number of epochs ends with the same weights.
  fit(b, opt_b, SparseCategoricalCrossEntropy{}, train_images(),
      {.epochs = n, .validation = &test_images(), .verbose = 0});
  CHECK(params_of(a) == params_of(b));
}

TEST_CASE("Monitors are checked: unknown names at construction, val_* without validation data") {
  CHECK_THROWS_WITH(EarlyStopping({.monitor = "val_acc"}),
                    Contains("\"val_acc\"") && Contains("val_accuracy"));
  Small model(1);
  Adam opt;
  EarlyStopping stop({.monitor = "val_loss"});
  CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, data::head(train_images(), 100),
                        {.epochs = 2, .verbose = 0, .callbacks = {stop}}),
                    Contains("val_loss") && Contains("validation data"));
}

TEST_CASE("Learning-rate schedules set the rate of every epoch, and the optimizer uses it") {
  SECTION("the schedule functions") {
    CHECK(StepDecay{0.5, 2}(1, 1.0) == 1.0);
    CHECK(StepDecay{0.5, 2}(2, 1.0) == 1.0);
    CHECK(StepDecay{0.5, 2}(3, 1.0) == 0.5);
    CHECK(StepDecay{0.5, 2}(6, 1.0) == 0.25);
    CHECK(ExponentialDecay{0.9}(3, 2.0) == Approx(2.0 * 0.81));
    CHECK(CosineDecay{4, 0.1}(1, 1.0) == 1.0);
    CHECK(CosineDecay{4, 0.1}(3, 1.0) == Approx(0.55));
    CHECK(CosineDecay{4, 0.1}(5, 1.0) == Approx(0.1));
    CHECK(CosineDecay{4, 0.1}(9, 1.0) == Approx(0.1));
  }
  SECTION("fit applies them: the logged rates follow, and a zero rate freezes the weights") {
    Small model(3);
    Adam opt(1e-3f);
    LearningRateScheduler sched(StepDecay{0.1, 2});
    const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, data::head(train_images(), 500),
                       {.epochs = 5, .verbose = 0, .callbacks = {sched}});
    REQUIRE(h.epochs.size() == 5);
    CHECK(h.epochs[0].learning_rate == Approx(1e-3));
    CHECK(h.epochs[1].learning_rate == Approx(1e-3));
    CHECK(h.epochs[2].learning_rate == Approx(1e-4));
    CHECK(h.epochs[4].learning_rate == Approx(1e-5));
    CHECK(opt.learning_rate == Approx(1e-5f));

    // A rate of zero from epoch 2 on: Adam's step is then exactly zero, so the weights after
    // epochs 2 and 3 are those after epoch 1 (recorded by a callback of our own).
    struct Snapshots : Callback {
      std::vector<std::vector<std::byte>> after;
      void on_epoch_end(const EpochLog&, TrainingState& s) override {
        after.emplace_back(s.parameters.begin(), s.parameters.end());
      }
    } snapshots;
    LearningRateScheduler zero([](std::size_t epoch, double lr) { return epoch >= 2 ? 0.0 : lr; });
    Small frozen(3);
    const auto initial = params_of(frozen);
    Adam opt2(1e-3f);
    fit(frozen, opt2, SparseCategoricalCrossEntropy{}, data::head(train_images(), 300),
        {.epochs = 3, .verbose = 0, .callbacks = {zero, snapshots}});
    REQUIRE(snapshots.after.size() == 3);
    CHECK(params_of(frozen) != initial);
    CHECK(bool(snapshots.after[1] == snapshots.after[0]));  // bool(): Catch cannot print std::byte with clang
    CHECK(bool(snapshots.after[2] == snapshots.after[0]));
  }
  SECTION("a schedule giving a negative or NaN rate is an error naming the epoch") {
    Small model(3);
    Adam opt;
    LearningRateScheduler bad([](std::size_t epoch, double lr) { return epoch == 2 ? -lr : lr; });
    CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, data::head(train_images(), 64),
                          {.epochs = 3, .verbose = 0, .callbacks = {bad}}),
                      Contains("epoch 2") && Contains("-0.001"));
  }
}

TEST_CASE("ReduceLROnPlateau lowers the rate after `patience` epochs without improvement") {
  Small model(11);
  Adam opt(5e-3f);
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 1, .min_lr = 1e-3});
  std::ostringstream log;
  const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, train_images(),
                     {.epochs = 12, .validation = &test_images(), .out = &log, .callbacks = {plateau}});
  INFO(log.str());
  REQUIRE(plateau.reductions() >= 1);
  CHECK_THAT(log.str(), Contains("ReduceLROnPlateau"));
  // Replay the rule on the history: the rate halves after each epoch whose val_loss is not a new
  // best (by 1e-4), never below min_lr.
  double best = INFINITY, lr = 5e-3;
  for (const EpochLog& e : h.epochs) {
    CHECK(e.learning_rate == Approx(lr).epsilon(1e-6));
    if (e.val_loss < best - 1e-4) best = e.val_loss;
    else if (lr > 1e-3) lr = std::max(lr * 0.5, 1e-3);
  }
  CHECK(h.last().learning_rate >= 1e-3 * (1 - 1e-6));
}

TEST_CASE("CSV and JSON-lines logs hold every epoch, and the SVG plot has both curves") {
  const std::string csv = temp_path("log.csv"), jsonl = temp_path("log.jsonl"),
                    svg = temp_path("curves.svg");
  Small model(2);
  Adam opt;
  CsvLogger csv_log(csv);
  JsonLinesLogger json_log(jsonl);
  SvgPlot plot(svg);
  const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, train_images(),
                     {.epochs = 3, .validation = &test_images(), .verbose = 0,
                      .callbacks = {csv_log, json_log, plot}});
  const std::string c = read_all(csv);
  std::istringstream lines(c);
  std::string line;
  std::getline(lines, line);
  CHECK(line == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds");
  for (const EpochLog& e : h.epochs) {
    REQUIRE(std::getline(lines, line));
    std::istringstream cells(line);
    std::vector<double> v;
    for (std::string cell; std::getline(cells, cell, ',');) v.push_back(std::stod(cell));
    REQUIRE(v.size() == 7);
    CHECK(v[0] == double(e.epoch));
    CHECK(v[1] == Approx(e.loss).epsilon(1e-7));
    CHECK(v[2] == Approx(e.accuracy).epsilon(1e-7));
    CHECK(v[3] == Approx(e.val_loss).epsilon(1e-7));
    CHECK(v[4] == Approx(e.val_accuracy).epsilon(1e-7));
    CHECK(v[5] == Approx(1e-3));
  }
  CHECK_FALSE(std::getline(lines, line));

  const std::string j = read_all(jsonl);
  CHECK(std::count(j.begin(), j.end(), '\n') == 3);
  CHECK_THAT(j, Contains("{\"epoch\":1,\"loss\":") && Contains("\"val_accuracy\":"));

  const std::string s = read_all(svg);
  CHECK_THAT(s, Contains("<svg") && Contains("</svg>") && Contains(">loss</text>") &&
                    Contains(">accuracy</text>") && Contains("validation"));
  CHECK(std::count(s.begin(), s.end(), 'p') > 0);
  std::size_t polylines = 0;
  for (std::size_t at = 0; (at = s.find("<polyline", at)) != std::string::npos; ++at) ++polylines;
  CHECK(polylines == 4);  // loss and accuracy, training and validation
  std::remove(csv.c_str());
  std::remove(jsonl.c_str());
  std::remove(svg.c_str());
}

TEST_CASE("A regression history plots the loss only and has no val_loss to pick a best from") {
  History h;
  h.epochs.push_back({.epoch = 1, .loss = 2.0, .learning_rate = 0.1, .seconds = 1});
  h.epochs.push_back({.epoch = 2, .loss = 1.5, .learning_rate = 0.1, .seconds = 1});
  std::ostringstream os;
  plot_svg(h, os);
  CHECK_THAT(os.str(), Contains(">loss</text>") && !Contains(">accuracy</text>"));
  CHECK_THROWS_WITH(h.best("val_loss"), Contains("val_loss") && Contains("validation data"));
  CHECK(h.best("loss").epoch == 2);
}

TEST_CASE("A logger that cannot open its file says which file and why") {
  Small model(1);
  Adam opt;
  CsvLogger bad("/nonexistent-dir/log.csv");
  CHECK_THROWS_WITH(fit(model, opt, SparseCategoricalCrossEntropy{}, data::head(train_images(), 32),
                        {.epochs = 1, .verbose = 0, .callbacks = {bad}}),
                    Contains("/nonexistent-dir/log.csv") && Contains("No such file"));
}
