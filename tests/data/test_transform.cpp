// Tests for ctnn/data/transform.hpp.
#include "ctnn/data/transform.hpp"

#include <catch2/catch.hpp>
#include <limits>

namespace {

ctnn::data::Dataset tiny() {
  ctnn::data::Dataset d;
  d.sample_shape = {2, 2};
  d.x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};  // 3 samples of 4 features
  d.targets = {1, 0, 0, 1, 1, 1};
  d.target_size = 2;
  return d;
}

}  // namespace

TEST_CASE("scale multiplies every feature and nothing else", "[data][transform]") {
  auto d = tiny();
  ctnn::data::scale(d, 0.5f);
  CHECK(d.x == std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f, 5, 5.5f});
  CHECK(d.targets == tiny().targets);
}

TEST_CASE("validate names the sample and index of a non-finite value", "[data][transform]") {
  using Catch::Contains;
  auto d = tiny();
  CHECK_NOTHROW(ctnn::data::validate(d));

  d.x[2 * 4 + 3] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(ctnn::data::validate(d, "training set"),
                      Contains("training set") && Contains("in x at sample 2, feature 3"));

  d = tiny();
  d.targets[3] = -std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(ctnn::data::validate(d),
                      Contains("-inf") && Contains("in targets at sample 1, target index 1"));

  d = tiny();
  d.targets.pop_back();  // inconsistent: check_consistent runs first
  REQUIRE_THROWS_WITH(ctnn::data::validate(d, "test set"),
                      Contains("test set") && Contains("5 target values"));
}

TEST_CASE("A sample shape that does not fit the data is named as the cause", "[data][transform]") {
  using Catch::Contains;
  ctnn::data::Dataset d;
  d.x.assign(240, 0.5f);  // 60 samples of 4 features...
  d.labels.assign(60, 0);
  d.num_classes = 1;
  d.sample_shape = {2};  // ...declared as samples of 2
  REQUIRE_THROWS_WITH(ctnn::data::validate(d),
                      Contains("sample shape {2} (2 values a sample)") &&
                          Contains("240 feature values 120 samples") && Contains("60 labels") &&
                          Contains("samples of 4 values") && Contains("check sample_shape"));
  d.sample_shape = {7};  // 240 is no multiple of 7
  REQUIRE_THROWS_WITH(ctnn::data::validate(d),
                      Contains("sample shape {7} does not divide its data") &&
                          Contains("240 feature values") && Contains("samples of 7 values"));
  d.sample_shape = {2, 3, 2};  // 12 values: 20 samples
  d.labels.clear();
  d.targets.assign(120, 0.0f);  // 60 targets of 2
  d.target_size = 2;
  REQUIRE_THROWS_WITH(ctnn::data::validate(d),
                      Contains("sample shape {2, 3, 2} (12 values a sample)") &&
                          Contains("20 samples") && Contains("are 60 samples") &&
                          Contains("samples of 4 values") && Contains("check sample_shape"));
  d.sample_shape = {4};
  CHECK_NOTHROW(ctnn::data::validate(d));
}
