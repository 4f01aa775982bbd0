// Training is bitwise identical at 1 and 2 threads: every reduction over the batch runs in a
// fixed order that does not depend on how work is split between threads.
#include <catch2/catch.hpp>

#include <cstring>

#include <ctnn/ctnn.hpp>

using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                               ctnn::Flatten, ctnn::Dense<64>, ctnn::ReLU, ctnn::Dropout<0.2>,
                               ctnn::Dense<10>, ctnn::Softmax>;

namespace {
std::vector<float> train_with(int threads, const ctnn::data::Dataset& d) {
  ctnn::set_num_threads(threads);
  Model model(3);
  ctnn::Adam opt;
  ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, d,
            {.epochs = 2, .batch_size = 32, .seed = 9, .verbose = 0});
  auto p = model.parameters();
  return {p.begin(), p.end()};
}
}  // namespace

TEST_CASE("Training at 1 and 2 threads gives the same weights, bit for bit", "[long]") {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto data = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                         dir + "/train-labels-idx1-ubyte.gz", {.limit = 3200});
  const int saved = ctnn::max_threads();
  const auto one = train_with(1, data);  // 200 steps
  const auto two = train_with(2, data);
  ctnn::set_num_threads(saved);
  REQUIRE(one.size() == two.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < one.size(); ++i) differing += std::memcmp(&one[i], &two[i], sizeof(float)) != 0;
  CHECK(differing == 0);
  // And training moved the weights (the comparison is not between two untouched models).
  Model fresh(3);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < one.size(); ++i) moved += one[i] != fresh.parameters()[i];
  CHECK(moved > one.size() / 2);
}
