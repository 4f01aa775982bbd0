// A Graph's steady-state training step and inference make no heap allocation (operator new is
// replaced by a counting one): fan-out accumulation and joins run in the planned workspace.
#include <catch2/catch.hpp>

#include <ctnn/ctnn.hpp>

#include "../allocation_counter.hpp"  // g_allocations: every operator new counted

namespace {
struct Stem;
using Net = ctnn::Graph<ctnn::Input<12, 12, 1>, ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::same>,
                        ctnn::ReLU, ctnn::Tag<Stem>, ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::same>,
                        ctnn::ReLU, ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::same>,
                        ctnn::Add<Stem>, ctnn::Concatenate<Stem>, ctnn::MaxPool2D<2>,
                        ctnn::Flatten, ctnn::Dense<10>, ctnn::Softmax>;
}  // namespace

TEST_CASE("A graph's steady-state training step and inference allocate nothing") {
  Net model(1);
  ctnn::Adam opt;
  ctnn::Trainer<Net, ctnn::Adam, ctnn::SparseCategoricalCrossEntropy> trainer(model, opt, {}, 16);
  ctnn::Rng rng(2);
  std::vector<float> x(16 * Net::input_size);
  for (auto& v : x) v = float(rng.uniform01());
  std::vector<std::int32_t> labels(16);
  for (auto& l : labels) l = std::int32_t(rng.below(10));
  trainer.load_batch(x.data(), 16, labels.data(), nullptr);
  trainer.step(16);
  model.reserve_inference(16);
  std::vector<float> out(16 * Net::output_size);
  model.predict(std::span<const float>(x), std::span<float>(out));

  const std::size_t before = g_allocations.load();
  for (int i = 0; i < 10; ++i) {
    trainer.load_batch(x.data(), 16, labels.data(), nullptr);
    const auto s = trainer.step(i % 2 ? 16 : 7);
    REQUIRE(std::isfinite(s.loss_sum));
    model.predict(std::span<const float>(x), std::span<float>(out));
  }
  CHECK(g_allocations.load() == before);
}
