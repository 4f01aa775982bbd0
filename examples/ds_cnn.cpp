// DS-CNN, MLPerf Tiny's keyword-spotting architecture, on Fashion-MNIST 28x28x1: a 64-filter
// convolution stem (3x3 stride 2 here, for images, where the keyword model's 10x4 kernel suits
// spectrograms), four depthwise-separable blocks (DepthwiseConv2D 3x3 + BatchNormalization + ReLU,
// then a 1x1 Conv2D of 64 filters + BatchNormalization + ReLU), MLPerf's dropout (0.2 after the
// stem, 0.4 before pooling), global average pooling and Dense(10). The separable blocks are
// written as DepthwiseConv2D then Conv2D<64, 1, 1>, as Keras's reference model does, so every
// convolution quantizes to int8 with its BatchNormalization folded in.
//
//   ds_cnn [--epochs N] [--limit N] [--seed N] [--threads N] [--data DIR] [--min-accuracy A]
//          [--max-int8-drop D] [--quiet] [--json]
//
// Trains with Adam 1e-3 (batch 32) for 10 epochs by default, prints the test accuracy, then
// quantizes to int8 (calibrated on 1,000 training images) and prints the int8 accuracy and the
// sizes; --min-accuracy and --max-int8-drop exit 1 below the bars (the test suite's short run).
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "ds_cnn_model.hpp"

namespace {
struct Options {
  std::size_t epochs = 10, limit = SIZE_MAX;
  std::uint64_t seed = 1;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  double min_accuracy = -1, max_int8_drop = -1;
  bool quiet = false, json = false;
};

int run(const Options& o) {
  using Model = ds_cnn::Model;
  const auto train = ctnn::data::load_idx(o.dir + "/train-images-idx3-ubyte.gz",
                                          o.dir + "/train-labels-idx1-ubyte.gz", {.limit = o.limit});
  const auto test = ctnn::data::load_idx(o.dir + "/t10k-images-idx3-ubyte.gz",
                                         o.dir + "/t10k-labels-idx1-ubyte.gz");
  std::cout << "DS-CNN, seed " << o.seed << ": " << train.size() << " training images, "
            << o.epochs << " epochs, " << Model::param_count << " parameters + "
            << Model::state_count << " non-trainable\n";
  Model model{o.seed};
  if (!o.quiet) model.summary(std::cout);
  ctnn::Adam opt{1e-3f};
  const auto history = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
                                 {.epochs = o.epochs, .batch_size = 32, .seed = o.seed,
                                  .verbose = o.quiet ? 0 : 1});
  double best_seconds = 1e300;
  for (const auto& e : history.epochs) best_seconds = std::min(best_seconds, e.seconds);
  const auto result = ctnn::evaluate(model, test);
  const std::size_t calib = std::min<std::size_t>(1000, train.size());
  const auto q = ctnn::quantize(
      model, std::span<const float>(train.x.data() + (train.size() - calib) * Model::input_size,
                                    calib * Model::input_size));
  const double int8_accuracy = q.accuracy(test);
  using Q = ctnn::QuantizedModel<Model>;
  std::cout << "seconds per epoch: best " << best_seconds << " ("
            << double(train.size()) / best_seconds << " training images/s)\n"
            << "test accuracy: " << result.accuracy << "\nint8 test accuracy: " << int8_accuracy
            << " (" << Q::parameter_bytes << " bytes of int8 weights, scales and biases vs "
            << Q::float_parameter_bytes << " in float; "
            << ctnn::deploy::StaticQuantizedModel<Model>::buffer_bytes
            << " bytes of buffers for one sample)\n";
  if (o.json) {
    std::ostringstream j;
    j << std::setprecision(6) << "{\"impl\": \"ctnn\", \"model\": \"ds_cnn\", \"seed\": " << o.seed
      << ", \"params\": " << Model::param_count << ", \"threads\": " << ctnn::max_threads()
      << ", \"train_images\": " << train.size() << ", \"epochs\": " << o.epochs
      << ", \"train_images_per_s\": " << double(train.size()) / best_seconds
      << ", \"test_accuracy\": " << result.accuracy << ", \"int8_test_accuracy\": " << int8_accuracy
      << "}";
    std::cout << j.str() << "\n";
  }
  if (o.min_accuracy >= 0 && !(result.accuracy >= o.min_accuracy)) {
    std::cerr << "test accuracy " << result.accuracy << " is below the required " << o.min_accuracy << "\n";
    return 1;
  }
  if (o.max_int8_drop >= 0 && !(int8_accuracy >= result.accuracy - o.max_int8_drop)) {
    std::cerr << "int8 test accuracy " << int8_accuracy << " is more than " << o.max_int8_drop
              << " below the float model's " << result.accuracy << "\n";
    return 1;
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) try {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ctnn::Error("Option " + a + " needs a value.");
      return argv[++i];
    };
    if (a == "--epochs") o.epochs = std::stoul(next());
    else if (a == "--limit") o.limit = std::stoul(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--threads") ctnn::set_num_threads(std::stoi(next()));
    else if (a == "--data") o.dir = next();
    else if (a == "--min-accuracy") o.min_accuracy = std::stod(next());
    else if (a == "--max-int8-drop") o.max_int8_drop = std::stod(next());
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--json") o.json = true;
    else throw ctnn::Error("Unknown option " + a + " (use --epochs, --limit, --seed, --threads, "
                           "--data, --min-accuracy, --max-int8-drop, --quiet, --json).");
  }
  return run(o);
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
