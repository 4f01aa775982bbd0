// Training is bitwise identical at 1, 2 and 3 threads: every reduction over the batch runs in a
// fixed order that does not depend on how work is split between threads. Each run checks, through
// ctnn::widest_team(), that its parallel regions really ran with the thread count asked for.
#include <catch2/catch.hpp>

#include <cstring>

#include <ctnn/ctnn.hpp>

// Dense, convolution and dropout, trained with Adam.
using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                               ctnn::Flatten, ctnn::Dense<64>, ctnn::ReLU, ctnn::Dropout<0.2>,
                               ctnn::Dense<10>, ctnn::Softmax>;
// Both pooling layers, trained with SGD and momentum.
using PoolModel = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                                   ctnn::MaxPool2D<2>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                                   ctnn::AvgPool2D<2>, ctnn::Flatten, ctnn::Dense<10>, ctnn::Softmax>;

namespace {
template <class M, class Opt>
std::vector<float> train_with(int threads, const ctnn::data::Dataset& d, Opt opt) {
  ctnn::set_num_threads(threads);
  ctnn::reset_widest_team();
  M model(3);
  ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, d,
            {.epochs = 2, .batch_size = 32, .seed = 9, .verbose = 0});
  // The run used exactly `threads` threads: a comparison between two serial runs proves nothing.
  INFO("asked for " << threads << " threads");
  CHECK(ctnn::widest_team() == threads);
  auto p = model.parameters();
  return {p.begin(), p.end()};
}

std::size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

template <class M, class Opt>
void check_thread_counts(const ctnn::data::Dataset& d, Opt opt) {
  const int saved = ctnn::max_threads();
  const auto one = train_with<M>(1, d, opt);
  const auto two = train_with<M>(2, d, opt);
  const auto three = train_with<M>(3, d, opt);  // chunks of unequal size
  ctnn::set_num_threads(saved);
  CHECK(differing(one, two) == 0);
  CHECK(differing(one, three) == 0);
  // And training moved the weights (the comparison is not between two untouched models).
  M fresh(3);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < one.size(); ++i) moved += one[i] != fresh.parameters()[i];
  CHECK(moved > one.size() / 2);
}

ctnn::data::Dataset images(std::size_t n) {
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  return ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                              dir + "/train-labels-idx1-ubyte.gz", {.limit = n});
}
}  // namespace

TEST_CASE("Training at 1, 2 and 3 threads gives the same weights, bit for bit", "[long]") {
  SECTION("Conv2D, Dense and Dropout with Adam") {
    check_thread_counts<Model>(images(3200), ctnn::Adam{});  // 200 steps
  }
  SECTION("MaxPool2D and AvgPool2D with SGD and momentum") {
    check_thread_counts<PoolModel>(images(1600), ctnn::SGD(0.05f, 0.9f));  // 100 steps
  }
}
