// Model files with fp16 / bf16 weights: half the bytes, loaded back into a float model with the
// accuracy it had (real Fashion-MNIST), and refused where they cannot apply.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <ctnn/ctnn.hpp>

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {
std::string temp(const std::string& name) {
  return std::string(P_tmpdir) + "/ctnn_test_half_" + std::to_string(::getpid()) + "_" + name;
}
}  // namespace

TEST_CASE("fp16 and bf16 storage halve a model file and keep its accuracy") {
  using Cnn = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<32>,
                         ReLU, Dense<10>, Softmax>;
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto train = data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                    dir + "/train-labels-idx1-ubyte.gz", {.limit = 4000});
  const auto test = data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                   dir + "/t10k-labels-idx1-ubyte.gz", {.limit = 2000});
  Cnn model(2);
  Adam opt;
  fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 2, .verbose = 0});
  const double accuracy = evaluate(model, test).accuracy;
  const std::string f32 = temp("f32.ctnn"), f16 = temp("f16.ctnn"), b16 = temp("bf16.ctnn");
  save(f32, model);
  save(f16, model, {.weights = WeightStorage::fp16});
  save(b16, model, {.weights = WeightStorage::bf16});
  const auto size32 = std::filesystem::file_size(f32), size16 = std::filesystem::file_size(f16);
  CHECK(std::filesystem::file_size(b16) == size16);
  CHECK(size32 - size16 == Cnn::arena_size * 2);  // every value lost two bytes, nothing else changed

  for (const auto& [path, format] : {std::pair{f16, HalfFormat::fp16},
                                     std::pair{b16, HalfFormat::bf16}}) {
    Cnn loaded(9);
    load(path, loaded);
    // The loaded weights are exactly the rounded ones.
    std::vector<std::uint16_t> h(Cnn::arena_size);
    std::vector<float> want(Cnn::arena_size);
    to_half(format, model.parameters(), h);
    from_half(format, h, want);
    CHECK(std::equal(want.begin(), want.end(), loaded.parameters().begin()));
    const double a = evaluate(loaded, test).accuracy;
    INFO((format == HalfFormat::fp16 ? "fp16" : "bf16") << " accuracy " << a << " vs " << accuracy);
    CHECK(std::abs(a - accuracy) <= 0.005);
  }
  // A truncated half file fails like any other.
  std::filesystem::resize_file(f16, size16 - 3);
  Cnn other(1);
  CHECK_THROWS_WITH(load(f16, other), Contains("checksum"));

  SECTION("half storage needs a float model") {
    BasicSequential<double, Input<4>, Dense<2>> d(1);
    CHECK_THROWS_WITH(save(temp("d.ctnn"), d, {.weights = WeightStorage::fp16}),
                      Contains("float models"));
  }
  std::remove(f32.c_str());
  std::remove(f16.c_str());
  std::remove(b16.c_str());
}
