// Grid and random search over run-time hyperparameters, scored on a real validation split.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <string>

#include <ctnn/ctnn.hpp>
#include <ctnn/tune/search.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {
const std::string kDir = CTNN_FASHION_MNIST_DIR;
using Small = Sequential<Input<28, 28, 1>, Flatten, Dense<16>, ReLU, Dense<10>, Softmax>;

struct Split {
  data::Dataset train, val;
};
const Split& split() {
  static const Split s = [] {
    auto all = data::load_idx(kDir + "/train-images-idx3-ubyte.gz",
                              kDir + "/train-labels-idx1-ubyte.gz", {.limit = 1500});
    auto [t, v] = data::train_test_split(all, 0.3, 9);
    return Split{std::move(t), std::move(v)};
  }();
  return s;
}

// The objective a user writes: train with the trial's settings, score on the validation split.
double train_and_score(const tune::Params& p) {
  Small model(1);
  Adam opt{float(p["learning_rate"])};
  const auto h = fit(model, opt, SparseCategoricalCrossEntropy{}, split().train,
                     {.epochs = p.count("epochs"), .batch_size = p.count("batch_size"),
                      .validation = &split().val, .verbose = 0});
  return h.best("val_accuracy").val_accuracy;
}
}  // namespace

TEST_CASE("grid_search runs every combination, keeps failures, and picks the best validation score") {
  tune::Space space;
  space.grid("learning_rate", {1e-4, 3e-3}).grid("batch_size", {0, 32}).grid("epochs", {2});
  std::ostringstream progress;
  const auto r = tune::grid_search(space, train_and_score,
                                   {.score_name = "val_accuracy", .out = &progress});
  REQUIRE(r.trials.size() == 4);
  // The first dimension varies slowest.
  CHECK(r.trials[0].params["learning_rate"] == 1e-4);
  CHECK(r.trials[0].params["batch_size"] == 0);
  CHECK(r.trials[1].params["batch_size"] == 32);
  CHECK(r.trials[2].params["learning_rate"] == 3e-3);
  // batch size 0 is refused by fit(): those trials fail with its message, the search goes on.
  CHECK_FALSE(r.trials[0].ok());
  CHECK_THAT(r.trials[0].error, Contains("batch size"));
  CHECK_FALSE(r.trials[2].ok());
  REQUIRE(r.trials[1].ok());
  REQUIRE(r.trials[3].ok());
  // Scores are real validation accuracies, reproducible by re-running the objective.
  CHECK(r.trials[3].score == train_and_score(r.trials[3].params));
  CHECK(r.trials[3].score > 0.6);
  // 3e-3 learns far more than 1e-4 in two epochs on 1,050 images.
  CHECK(r.trials[3].score > r.trials[1].score);
  CHECK(&r.best() == &r.trials[3]);
  CHECK_THAT(progress.str(), Contains("Trial 4/4: learning_rate=0.003 batch_size=32 epochs=2 -> val_accuracy"));

  std::ostringstream table;
  table << r;
  INFO(table.str());
  CHECK_THAT(table.str(), Contains("learning_rate") && Contains("4 *") && Contains("failed") &&
                              Contains("best: trial 4"));
}

TEST_CASE("random_search draws reproducible points inside the ranges") {
  tune::Space space;
  space.log_uniform("learning_rate", 1e-4, 1e-2).integer("epochs", 1, 2).grid("batch_size", {16, 64});
  std::vector<tune::Params> seen;
  const auto record = [&](const tune::Params& p) {
    seen.push_back(p);
    return train_and_score(p);
  };
  const auto a = tune::random_search(space, 4, 123, record, {.out = nullptr});
  const auto b = tune::random_search(space, 4, 123, [](const tune::Params&) { return 0.0; },
                                     {.out = nullptr});
  REQUIRE(a.trials.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& p = a.trials[i].params;
    CHECK(p["learning_rate"] >= 1e-4);
    CHECK(p["learning_rate"] <= 1e-2);
    CHECK((p["epochs"] == 1 || p["epochs"] == 2));
    CHECK((p["batch_size"] == 16 || p["batch_size"] == 64));
    CHECK(p.items() == b.trials[i].params.items());  // same seed, same points
    CHECK(a.trials[i].ok());
  }
  CHECK(a.best().score >= a.trials[0].score);
  const auto c = tune::random_search(space, 4, 124, [](const tune::Params&) { return 0.0; },
                                     {.out = nullptr});
  CHECK(c.trials[0].params.items() != a.trials[0].params.items());
}

TEST_CASE("Search misuse is a clear error") {
  tune::Space space;
  space.uniform("dropout", 0, 0.5);
  CHECK_THROWS_WITH(tune::grid_search(space, [](const tune::Params&) { return 0.0; }),
                    Contains("\"dropout\"") && Contains("random_search"));
  CHECK_THROWS_WITH(space.grid("dropout", {0.1}), Contains("twice"));
  CHECK_THROWS_WITH(tune::Space{}.grid("lr", {}), Contains("empty list"));
  CHECK_THROWS_WITH(tune::Space{}.log_uniform("lr", 0, 1), Contains("lo > 0"));
  tune::Params p;
  p.set("batch_size", 2.5);
  CHECK_THROWS_WITH(p.count("batch_size"), Contains("2.5") && Contains("whole number"));
  CHECK_THROWS_WITH(p["epochs"], Contains("\"epochs\"") && Contains("batch_size"));
  tune::Space one;
  one.grid("x", {1, 2});
  const auto all_fail = tune::grid_search(
      one, [](const tune::Params&) -> double { fail("no"); }, {.out = nullptr});
  CHECK_THROWS_WITH(all_fail.best(), Contains("No trial"));
}
