// Preprocessing::transform(span, span) makes no heap allocation (the README's promise for serving
// one sample at a time): operator new is replaced by a counting one, and the count must not move
// while a fitted pipeline with every kind of step transforms every sample of the real wine data.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "../allocation_counter.hpp"  // g_allocations: every operator new counted

using namespace ctnn;

TEST_CASE("Preprocessing::transform(span, span) allocates nothing") {
  data::Table wine = data::read_sklearn_csv(std::string(CTNN_SKLEARN_DATA_DIR) + "/wine_data.csv");
  data::Dataset d = data::to_dataset(wine, {.label = "target"});
  const std::size_t f = d.feature_size();
  REQUIRE(f == 13);
  // Feature 0 (alcohol) binned into category codes 0-3 for the one-hot step; gaps (NaN) in
  // feature 5 of every seventh sample for the imputer.
  for (std::size_t i = 0; i < d.size(); ++i) {
    float& a = d.x[i * f];
    a = a < 12.f ? 0.f : a < 13.f ? 1.f : a < 14.f ? 2.f : 3.f;
    if (i % 7 == 0) d.x[i * f + 5] = NAN;
  }
  data::Preprocessing prep;
  std::vector<std::size_t> numeric(f - 1);
  for (std::size_t j = 1; j < f; ++j) numeric[j - 1] = j;
  prep.add(data::SimpleImputer(data::SimpleImputer::Strategy::median, {5}))
      .add(data::StandardScaler(numeric))
      .add(data::MinMaxScaler(-1, 1, numeric))
      .add(data::OneHotEncoder({0}));
  prep.fit(d);
  REQUIRE(prep.output_size() == f - 1 + 4);
  const data::Dataset want = prep.transform(d);  // the dataset path, for the values

  std::vector<float> out(prep.output_size());
  const std::size_t before = g_allocations.load();
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    prep.transform(std::span<const float>(d.sample(i), f), std::span<float>(out));
    mismatches += std::memcmp(out.data(), want.sample(i), out.size() * sizeof(float)) != 0;
  }
  CHECK(g_allocations.load() == before);
  CHECK(mismatches == 0);  // and it computed the same values as the dataset path
}
