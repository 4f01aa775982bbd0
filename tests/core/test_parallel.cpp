// core/parallel.hpp: a ctnn call made from inside the user's own OpenMP parallel region runs
// serially (no nested team, so no oversubscription) and gives the same result as a call from
// outside. Nested parallelism is switched on for the test, so a helper that did not check would
// open a nested team and widest_team() would see it.
#include <catch2/catch.hpp>

#include <omp.h>

#include <cstring>
#include <vector>

#include <ctnn/ctnn.hpp>

using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                               ctnn::MaxPool2D<2>, ctnn::Flatten, ctnn::Dense<32>, ctnn::ReLU,
                               ctnn::Dense<10>, ctnn::Softmax>;

TEST_CASE("ctnn called from inside a parallel region runs serially, with the same results") {
  const int saved_threads = ctnn::max_threads();
  const int saved_levels = omp_get_max_active_levels();
  ctnn::set_num_threads(2);
  omp_set_max_active_levels(2);

  // 64 images of random pixels: a batch big enough for every kernel to want 2 threads.
  constexpr std::size_t kBatch = 64;
  ctnn::Rng rng(5);
  std::vector<float> x(kBatch * Model::input_size);
  for (auto& v : x) v = float(rng.uniform01());
  Model model(7);
  std::vector<float> outside(kBatch * Model::output_size);
  ctnn::reset_widest_team();
  model.predict(std::span<const float>(x), std::span<float>(outside));
  REQUIRE(ctnn::widest_team() == 2);  // outside a region, the batch does run on 2 threads

  SECTION("the parallel helper") {
    ctnn::reset_widest_team();
    std::vector<int> team_seen(2, 0), level_seen(2, 0);
#pragma omp parallel num_threads(2)
    {
      const int me = omp_get_thread_num();
      ctnn::parallel_for_range(std::size_t{1} << 20, [&](std::size_t, std::size_t) {
        team_seen[std::size_t(me)] = omp_get_num_threads();
        level_seen[std::size_t(me)] = omp_get_level();
      });
    }
    CHECK(team_seen == std::vector<int>{2, 2});   // the caller's team, not a new one
    CHECK(level_seen == std::vector<int>{1, 1});  // no nested level was opened
    CHECK(ctnn::widest_team() == 1);
  }
  SECTION("a model's predict: each of the caller's threads predicts the whole batch") {
    std::vector<std::vector<float>> inside(2, std::vector<float>(outside.size()));
    Model copy = model;  // one model per thread: predict's buffers are the model's own
    ctnn::reset_widest_team();
#pragma omp parallel num_threads(2)
    {
      const std::size_t me = std::size_t(omp_get_thread_num());
      (me == 0 ? model : copy).predict(std::span<const float>(x), std::span<float>(inside[me]));
    }
    CHECK(ctnn::widest_team() == 1);
    for (const auto& y : inside) CHECK(std::memcmp(y.data(), outside.data(), y.size() * sizeof(float)) == 0);
  }
  omp_set_max_active_levels(saved_levels);
  ctnn::set_num_threads(saved_threads);
}
