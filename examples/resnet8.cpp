// ResNet-8, MLPerf Tiny's image-classification architecture, on Fashion-MNIST 28x28x1: a 16-filter
// stem, three residual stacks of 16/32/64 filters (two 3x3 convolutions with BatchNormalization
// each; stride-2 downsampling with a 1x1 projection shortcut in stacks 2 and 3), global average
// pooling and Dense(10). Kernels are he_normal, BatchNormalization has Keras's momentum 0.99 and
// epsilon 1e-3, padding is PyTorch's padding=1 (one pixel on every side, also at stride 2).
//
//   resnet8 (or resnet8_torch) [--epochs N] [--limit N] [--seed N] [--threads N] [--data DIR]
//       [--min-accuracy A] [--max-int8-drop D] [--save FILE] [--quiet] [--no-validate] [--json]
//
// One source, two programs, one recipe each (a program compiles one model type, so each builds
// in about half the time of one holding both):
//   resnet8        the own recipe: MLPerf Tiny's L2 1e-4 kernel regularizer, random translation
//                  by up to 2 pixels (0.08) and horizontal flips in training, Adam 2e-3 with
//                  cosine decay to 0 over the run; 20 epochs by default.
//   resnet8_torch  (built with CTNN_RESNET8_TORCH_RECIPE) ../shared/peers/torch_resnet8.py's:
//                  Adam 1e-3 (epsilon 1e-7), batch 32, no augmentation, no regularizer; 15
//                  epochs by default.
// Prints the test accuracy after every epoch, the epoch time, and with --min-accuracy exits 1
// when the final test accuracy is below A (the test suite runs a short version this way). After
// training the model is quantized to int8 (deploy/quantize.hpp: BatchNormalization folded,
// calibrated on 1,000 training images) and its test accuracy printed; --max-int8-drop exits 1 when
// it is more than D below the float accuracy. --json
// ends with one JSON line of the figures, as ../shared/peers/torch_resnet8.py does (bench/resnet8).
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <ctnn/data/idx.hpp>
#include <ctnn/deploy/quantize.hpp>
#include <ctnn/io/model_file.hpp>
#include <ctnn/loss/sparse_categorical_crossentropy.hpp>
#include <ctnn/optim/adam.hpp>
#include <ctnn/train/callbacks.hpp>
#include <ctnn/train/evaluate.hpp>
#include <ctnn/train/fit.hpp>

#include "resnet8_model.hpp"

// PyTorch's model has 77,898 parameters (its convolutions carry biases, as here); BatchNorm's
// moving statistics are 2 x 240 more, non-trainable.
static_assert(resnet8::Torch::param_count == 77'898, "ResNet-8 has PyTorch's parameter count");
static_assert(resnet8::Own::param_count == 77'898);
static_assert(std::is_same_v<resnet8::Torch::output_shape, ctnn::Shape<10>>);

namespace {
#ifdef CTNN_RESNET8_TORCH_RECIPE
constexpr bool kOwn = false;
using Model = resnet8::Torch;
#else
constexpr bool kOwn = true;
using Model = resnet8::Own;
#endif

struct Options {
  std::size_t epochs = 0, limit = SIZE_MAX;
  std::uint64_t seed = 1;
  std::string dir = "/usr/share/datasets/fashion-mnist", save_path;
  double min_accuracy = -1, max_int8_drop = -1;
  bool quiet = false, validate = true, json = false;
};

int run(const Options& o) {
  auto train = ctnn::data::load_idx(o.dir + "/train-images-idx3-ubyte.gz",
                                    o.dir + "/train-labels-idx1-ubyte.gz", {.limit = o.limit});
  auto test = ctnn::data::load_idx(o.dir + "/t10k-images-idx3-ubyte.gz",
                                   o.dir + "/t10k-labels-idx1-ubyte.gz");
  const std::size_t epochs = o.epochs ? o.epochs : (kOwn ? 20 : 15);
  std::cout << "ResNet-8, recipe " << (kOwn ? "own" : "torch") << ", seed " << o.seed << ": "
            << train.size() << " training images, " << epochs << " epochs, "
            << Model::param_count << " parameters + " << Model::state_count
            << " non-trainable\n";
  Model model{o.seed};
  if (!o.quiet) model.summary(std::cout);
  ctnn::Adam opt{kOwn ? 2e-3f : 1e-3f, 0.9f, 0.999f, 1e-7f};
  ctnn::LearningRateScheduler cosine(ctnn::CosineDecay{.decay_epochs = epochs});
  std::vector<std::reference_wrapper<ctnn::Callback>> callbacks;
  if (kOwn) callbacks.push_back(cosine);
  const auto history = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
                                 {.epochs = epochs, .batch_size = 32, .validation = o.validate ? &test : nullptr,
                                  .seed = o.seed, .verbose = o.quiet ? 0 : 1,
                                  .callbacks = callbacks});
  double best_seconds = 1e300, total_seconds = 0;
  for (const auto& e : history.epochs) {
    best_seconds = std::min(best_seconds, e.seconds);
    total_seconds += e.seconds;
  }
  const auto result = ctnn::evaluate(model, test);
  if (o.validate) {
    std::cout << "test accuracy by epoch:";
    for (const auto& e : history.epochs) std::cout << " " << e.val_accuracy;
    std::cout << "\n";
  }
  std::cout << "seconds per epoch: best " << best_seconds << ", mean "
            << total_seconds / double(history.epochs.size()) << " ("
            << double(train.size()) / best_seconds << " training images/s at best)\n";
  std::cout << "test accuracy: " << result.accuracy << "\n";
  // Post-training int8: BatchNormalization folded into the convolutions, activation scales
  // calibrated on 1,000 training images; the residual adds rescale 8-bit tensors and global
  // average pooling sums bytes, so every activation up to the pooled means is 8-bit. The own
  // recipe's augmentation layers are the identity in inference: they run in float before the
  // stem convolution quantizes its input.
  const std::size_t calib = std::min<std::size_t>(1000, train.size());
  const auto q = ctnn::quantize(
      model, std::span<const float>(train.x.data() + (train.size() - calib) * Model::input_size,
                                    calib * Model::input_size));
  const double int8_accuracy = q.accuracy(test);
  using Q = ctnn::QuantizedModel<Model>;
  std::cout << "int8 test accuracy: " << int8_accuracy << " (" << Q::parameter_bytes
            << " bytes of int8 weights, scales and biases vs " << Q::float_parameter_bytes
            << " in float; " << ctnn::deploy::StaticQuantizedModel<Model>::buffer_bytes
            << " bytes of buffers for one sample)\n";
  if (o.json) {
    std::ostringstream j;
    j << std::setprecision(6) << "{\"impl\": \"ctnn\", \"recipe\": \"" << (kOwn ? "own" : "torch")
      << "\", \"seed\": " << o.seed << ", \"params\": " << Model::param_count
      << ", \"threads\": " << ctnn::max_threads() << ", \"simd\": \"" << ctnn::simd_target()
      << "\", \"train_images\": " << train.size()
      << ", \"train_images_per_s\": " << double(train.size()) / best_seconds
      << ", \"seconds_per_epoch\": [";
    for (std::size_t e = 0; e < history.epochs.size(); ++e)
      j << (e ? ", " : "") << history.epochs[e].seconds;
    j << "], \"test_accuracy_per_epoch\": [";
    for (std::size_t e = 0; e < history.epochs.size(); ++e)
      j << (e ? ", " : "") << (o.validate ? history.epochs[e].val_accuracy : -1.0);
    j << "], \"test_accuracy\": " << result.accuracy
      << ", \"int8_test_accuracy\": " << int8_accuracy << "}";
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
    else if (a == "--save") o.save_path = next();
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--no-validate") o.validate = false;
    else if (a == "--json") o.json = true;
    else throw ctnn::Error("Unknown option " + a + " (use --epochs, --limit, --seed, "
                           "--threads, --data, --min-accuracy, --max-int8-drop, --save, --quiet, --no-validate, --json).");
  }
  return run(o);
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
