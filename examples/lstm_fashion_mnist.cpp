// A recurrent model trained in C++: Fashion-MNIST read as sequences, each image's 28 rows as 28
// time steps of 28 pixels, LSTM(128) -> Dense(10) -> softmax, Adam 1e-3, sparse categorical
// cross-entropy, batch 32, 10 epochs; then the test accuracy. The same model and recipe as the
// PyTorch peer ../shared/peers/torch_lstm_rows.py (its nn.LSTM reaches about 0.888).
//
//   lstm_fashion_mnist [--epochs N] [--limit N] [--seed N] [--threads N] [--data DIR]
//                      [--min-accuracy A] [--save FILE] [--no-validate] [--quiet] [--json]
//
// --limit trains on the first N training images; after every epoch the test set's accuracy is
// reported (Keras's validation_data; --no-validate skips it). --min-accuracy exits 1 below the
// bar (the test suite's short run). --json prints one line with the per-epoch seconds and
// accuracies (bench/).
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include <ctnn/ctnn.hpp>

// The images as 28 steps of 28 features: Input<28, 28> reads each 28 x 28 x 1 sample row by row.
using Model = ctnn::Sequential<ctnn::Input<28, 28>,
                               ctnn::LSTM<128>,
                               ctnn::Dense<10>, ctnn::Softmax>;
static_assert(Model::param_count == 4 * 128 * (28 + 128 + 1) + 128 * 10 + 10,
              "Keras's parameter count: 80,384 for the LSTM, 1,290 for the Dense layer");

namespace {
struct Options {
  std::size_t epochs = 10, limit = SIZE_MAX;
  std::uint64_t seed = 1;
  std::string dir = "/usr/share/datasets/fashion-mnist", save_path;
  double min_accuracy = -1;
  bool validate = true, quiet = false, json = false;
};
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
    else if (a == "--save") o.save_path = next();
    else if (a == "--no-validate") o.validate = false;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--json") o.json = true;
    else throw ctnn::Error("Unknown option " + a + " (use --epochs, --limit, --seed, --threads, "
                           "--data, --min-accuracy, --save, --no-validate, --quiet, --json).");
  }
  auto train = ctnn::data::load_idx(o.dir + "/train-images-idx3-ubyte.gz",
                                    o.dir + "/train-labels-idx1-ubyte.gz", {.limit = o.limit});
  auto test = ctnn::data::load_idx(o.dir + "/t10k-images-idx3-ubyte.gz",
                                   o.dir + "/t10k-labels-idx1-ubyte.gz");
  // Each image is 28 steps of 28 pixels (its rows), as the model's input says.
  train.sample_shape = test.sample_shape = {28, 28};
  std::cout << "Fashion-MNIST as sequences: " << train.size() << " training images of 28 steps x "
            << "28 pixels, " << o.epochs << " epochs, " << Model::param_count << " parameters\n";

  Model model{o.seed};
  if (!o.quiet) model.summary(std::cout);
  ctnn::Adam opt{1e-3f};
  const auto history = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
                                 {.epochs = o.epochs, .batch_size = 32,
                                  .validation = o.validate ? &test : nullptr, .seed = o.seed,
                                  .verbose = o.quiet ? 0 : 1});
  const auto result = ctnn::evaluate(model, test);
  std::vector<double> seconds;
  for (const auto& e : history.epochs) seconds.push_back(e.seconds);
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  if (o.validate) {
    std::cout << "test accuracy by epoch:";
    for (const auto& e : history.epochs) std::cout << " " << e.val_accuracy;
    std::cout << "\n";
  }
  std::cout << "seconds per epoch: median " << median << " (" << double(train.size()) / median
            << " training sequences/s)\n";
  std::cout << "test accuracy: " << result.accuracy << "\n";
  if (o.json) {
    std::ostringstream j;
    j << std::setprecision(6) << "{\"impl\": \"ctnn\", \"seed\": " << o.seed
      << ", \"threads\": " << ctnn::max_threads() << ", \"simd\": \"" << ctnn::simd_target()
      << "\", \"train_sequences\": " << train.size()
      << ", \"train_images_per_s\": " << double(train.size()) / median  // an image = a sequence
      << ", \"seconds_per_epoch\": [";
    for (std::size_t e = 0; e < seconds.size(); ++e) j << (e ? ", " : "") << seconds[e];
    j << "], \"test_accuracy_per_epoch\": [";
    for (std::size_t e = 0; e < history.epochs.size(); ++e)
      j << (e ? ", " : "") << (o.validate ? history.epochs[e].val_accuracy : -1.0);
    j << "], \"test_accuracy\": " << result.accuracy << "}";
    std::cout << j.str() << "\n";
  }
  if (!o.save_path.empty()) {
    ctnn::save(o.save_path, model);
    std::cout << "Saved the trained model to " << o.save_path << "\n";
  }
  if (o.min_accuracy >= 0 && !(result.accuracy >= o.min_accuracy)) {
    std::cerr << "test accuracy " << result.accuracy << " is below the required " << o.min_accuracy
              << "\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
