// Tests for ctnn/data/split.hpp: subset, head and train_test_split, synthetic and on Fashion-MNIST.
#include "ctnn/data/split.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "ctnn/data/idx.hpp"

namespace {

using ctnn::data::Dataset;
using ctnn::data::train_test_split;
using Catch::Contains;

// n samples of shape {2}; sample i is {i, -i}, so its id survives any reordering. Labels are
// i % 3; with `targets`, a 1-value target i + 0.5 is used instead.
Dataset numbered(std::size_t n, bool targets = false) {
  Dataset d;
  d.sample_shape = {2};
  for (std::size_t i = 0; i < n; ++i) {
    d.x.push_back(static_cast<float>(i));
    d.x.push_back(-static_cast<float>(i));
    if (targets) {
      d.targets.push_back(static_cast<float>(i) + 0.5f);
    } else {
      d.labels.push_back(static_cast<std::int32_t>(i % 3));
    }
  }
  d.target_size = targets ? 1 : 0;
  d.num_classes = targets ? 0 : 3;
  return d;
}

// Sample ids in order, checking each sample's label or target still belongs to it.
std::vector<std::size_t> ids(const Dataset& d) {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < d.size(); ++k) {
    const float id = d.x[2 * k];
    REQUIRE(d.x[2 * k + 1] == -id);
    const auto i = static_cast<std::size_t>(id);
    if (d.has_labels()) REQUIRE(d.labels[k] == static_cast<std::int32_t>(i % 3));
    if (d.has_targets()) REQUIRE(d.targets[k] == id + 0.5f);
    out.push_back(i);
  }
  return out;
}

}  // namespace

TEST_CASE("subset and head copy the chosen samples with their labels or targets",
          "[data][split]") {
  for (bool targets : {false, true}) {
    const Dataset d = numbered(10, targets);
    const std::vector<std::size_t> pick{7, 2, 2, 9};
    const Dataset s = ctnn::data::subset(d, pick);
    CHECK(ids(s) == pick);
    CHECK(s.sample_shape == d.sample_shape);
    CHECK(s.num_classes == d.num_classes);
    CHECK(s.target_size == d.target_size);
    CHECK(ids(ctnn::data::head(d, 3)) == std::vector<std::size_t>{0, 1, 2});
    CHECK(ctnn::data::head(d, 100).size() == 10);
    const std::vector<std::size_t> bad{1, 10};
    REQUIRE_THROWS_WITH(ctnn::data::subset(d, bad),
                        Contains("index 10 at position 1") && Contains("of 10 samples"));
  }
}

TEST_CASE("train_test_split is a seeded partition of the samples", "[data][split]") {
  for (bool targets : {false, true}) {
    const Dataset d = numbered(10, targets);
    const auto [train, test] = train_test_split(d, 0.3, 1);
    CHECK(train.size() == 7);
    CHECK(test.size() == 3);
    CHECK(train.sample_shape == d.sample_shape);
    CHECK(test.num_classes == d.num_classes);
    // Disjoint and complete: every original sample exactly once across both parts.
    std::vector<std::size_t> all = ids(train);
    const std::vector<std::size_t> t = ids(test);
    all.insert(all.end(), t.begin(), t.end());
    std::sort(all.begin(), all.end());
    std::vector<std::size_t> expected(10);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    CHECK(all == expected);
    // Shuffled, deterministic for the seed, different for another.
    CHECK(ids(train) != std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6});
    CHECK(ids(train_test_split(d, 0.3, 1).first) == ids(train));
    CHECK(ids(train_test_split(d, 0.3, 2).first) != ids(train));
  }
  const Dataset d = numbered(1001);
  CHECK(train_test_split(d, 0.25, 0).first.size() == 751);  // round(750.75)
  CHECK(train_test_split(d, 0.001, 0).second.size() == 1);
}

TEST_CASE("train_test_split rejects bad fractions and empty parts", "[data][split]") {
  const Dataset d = numbered(3);
  for (double f : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()})
    REQUIRE_THROWS_WITH(train_test_split(d, f, 0), Contains("must lie in (0, 1)"));
  REQUIRE_THROWS_WITH(train_test_split(d, 0.1, 0),
                      Contains("3 samples") && Contains("3 train and 0 test"));
  REQUIRE_THROWS_WITH(train_test_split(d, 0.9, 0), Contains("0 train and 3 test"));
  REQUIRE_THROWS_WITH(train_test_split(numbered(1), 0.5, 0), Contains("1 samples"));
  Dataset broken = numbered(4);
  broken.labels.pop_back();
  REQUIRE_THROWS_AS(train_test_split(broken, 0.5, 0), ctnn::Error);
}

TEST_CASE("Splitting Fashion-MNIST train keeps every sample and the class balance",
          "[data][split]") {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const Dataset d = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                         dir + "/train-labels-idx1-ubyte.gz");
  const auto [train, test] = train_test_split(d, 0.2, 42);
  REQUIRE(train.size() == 48000);
  REQUIRE(test.size() == 12000);
  CHECK(train.sample_shape == d.sample_shape);
  CHECK(test.num_classes == 10);
  std::array<int, 10> in_train{}, in_test{};
  for (std::int32_t l : train.labels) ++in_train.at(static_cast<std::size_t>(l));
  for (std::int32_t l : test.labels) ++in_test.at(static_cast<std::size_t>(l));
  for (std::size_t c = 0; c < 10; ++c) {
    CHECK(in_train[c] + in_test[c] == 6000);
    // Expected 1200 per class; the hypergeometric standard deviation is about 29.
    CHECK(std::abs(in_test[c] - 1200) < 150);
  }
  // Same pixels overall (order-independent): sums of whole bytes are exact in double.
  const auto total = [](const Dataset& s) {
    double sum = 0;
    for (float v : s.x) sum += std::round(v * 255.0f);
    return sum;
  };
  CHECK(total(train) + total(test) == total(d));
}
