// The steady-state training step and inference make no heap allocation: operator new is
// replaced by a counting one, and the count must not move across many steps and predictions
// once the first ones have sized every buffer (and OpenMP has started its threads).
#include <catch2/catch.hpp>

#include <thread>

#include <ctnn/ctnn.hpp>

#include "../allocation_counter.hpp"  // g_allocations: every operator new counted


using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                               ctnn::MaxPool2D<2>, ctnn::Flatten, ctnn::Dense<32>, ctnn::ReLU,
                               ctnn::Dropout<0.25>, ctnn::Dense<10>, ctnn::Softmax>;

TEST_CASE("A steady-state training step and inference allocate nothing") {
  Model model(1);
  ctnn::Adam opt;
  ctnn::Trainer<Model, ctnn::Adam, ctnn::SparseCategoricalCrossEntropy> trainer(model, opt, {}, 32);
  ctnn::Rng rng(2);
  std::vector<float> x(32 * Model::input_size);
  for (auto& v : x) v = float(rng.uniform01());
  std::vector<std::int32_t> labels(32);
  for (auto& l : labels) l = std::int32_t(rng.below(10));

  trainer.load_batch(x.data(), 32, labels.data(), nullptr);
  trainer.step(32);  // the first step allocates Adam's moments
  model.reserve_inference(32);
  std::vector<float> out(32 * Model::output_size);
  model.predict(std::span<const float>(x), std::span<float>(out));

  const std::size_t before = g_allocations.load();
  for (int i = 0; i < 20; ++i) {
    trainer.load_batch(x.data(), 32, labels.data(), nullptr);
    const auto s = trainer.step(i % 2 ? 32 : 17);  // a smaller last batch too
    REQUIRE(std::isfinite(s.loss_sum));
    model.predict(std::span<const float>(x), std::span<float>(out));
    const auto one = model.predict(std::span<const float>(x.data(), Model::input_size));
    REQUIRE(one[0] >= 0.0f);
  }
  CHECK(g_allocations.load() == before);
}

TEST_CASE("reserve_inference and an inference context make predict allocation-free on any thread") {
  const Model model(1);
  ctnn::Rng rng(3);
  std::vector<float> x(32 * Model::input_size);
  for (auto& v : x) v = float(rng.uniform01());
  std::size_t thread_reserved = 1, context = 1;
  // A fresh thread: its own thread-local context, sized by reserve_inference on that thread.
  std::thread([&] {
    std::vector<float> out(32 * Model::output_size);
    model.reserve_inference(32);
    Model::InferenceContext ctx(32);
    // The first calls start this thread's OpenMP team (libgomp allocates its pool then).
    model.predict(std::span<const float>(x), std::span<float>(out));
    model.predict(ctx, std::span<const float>(x), std::span<float>(out));
    std::size_t before = g_allocations.load();
    for (std::size_t n : {32, 1, 17, 32, 5}) {
      model.predict(std::span<const float>(x.data(), n * Model::input_size),
                    std::span<float>(out.data(), n * Model::output_size));
      (void)model.predict_class(std::span<const float>(x.data(), Model::input_size));
    }
    thread_reserved = g_allocations.load() - before;
    before = g_allocations.load();
    for (std::size_t n : {32, 1, 17, 32, 5})
      model.predict(ctx, std::span<const float>(x.data(), n * Model::input_size),
                    std::span<float>(out.data(), n * Model::output_size));
    context = g_allocations.load() - before;
  }).join();
  CHECK(thread_reserved == 0);
  CHECK(context == 0);
}
