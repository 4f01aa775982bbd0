// Anomaly detection with a dense autoencoder: MLPerf Tiny's anomaly-detection shape (Dense 128 x4,
// a bottleneck of 8, Dense 128 x4, each hidden layer with BatchNormalization and ReLU) scaled to
// Fashion-MNIST's 784 pixels. It is trained to reconstruct the images of one class only (the
// "normal" one); on the 10,000 test images the reconstruction error is the anomaly score, and
// the ROC AUC says how well it separates the other nine classes (anomalies) from the normal one.
//
//   autoencoder [--normal-class C] [--epochs N] [--seed N] [--threads N] [--data DIR]
//               [--min-auc A] [--max-int8-drop D] [--quiet]
//
// Trains with Adam 1e-3 (batch 32, mean squared error against the input) for 30 epochs on the
// normal class's 6,000 training images, prints the test ROC AUC, then quantizes to int8
// (calibrated on 1,000 of those images) and prints the int8 model's AUC and sizes. --min-auc and
// --max-int8-drop exit 1 below the bars (the test suite's short run).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "autoencoder_model.hpp"

namespace {
struct Options {
  std::size_t normal = 1, epochs = 30;
  std::uint64_t seed = 1;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  double min_auc = -1, max_int8_drop = -1;
  bool quiet = false;
};

// The mean squared reconstruction error of each sample.
std::vector<double> errors(const std::vector<float>& x, const std::vector<float>& y, std::size_t width) {
  std::vector<double> e(x.size() / width);
  for (std::size_t i = 0; i < e.size(); ++i) {
    double s = 0;
    for (std::size_t k = 0; k < width; ++k) {
      const double d = double(x[i * width + k]) - double(y[i * width + k]);
      s += d * d;
    }
    e[i] = s / double(width);
  }
  return e;
}

int run(const Options& o) {
  using Model = autoencoder::Model;
  const auto all = ctnn::data::load_idx(o.dir + "/train-images-idx3-ubyte.gz",
                                        o.dir + "/train-labels-idx1-ubyte.gz");
  const auto test = ctnn::data::load_idx(o.dir + "/t10k-images-idx3-ubyte.gz",
                                         o.dir + "/t10k-labels-idx1-ubyte.gz");
  if (o.normal >= 10) throw ctnn::Error("--normal-class takes a class from 0 to 9, not " + std::to_string(o.normal) + ".");
  // The normal class's training images, each its own target.
  ctnn::data::Dataset train;
  train.sample_shape = all.sample_shape;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (std::size_t(all.labels[i]) == o.normal)
      train.x.insert(train.x.end(), all.sample(i), all.sample(i) + Model::input_size);
  train.targets = train.x;
  train.target_size = Model::output_size;
  std::cout << "Autoencoder, normal class " << o.normal << ", seed " << o.seed << ": "
            << train.size() << " training images, " << o.epochs << " epochs, "
            << Model::param_count << " parameters + " << Model::state_count << " non-trainable\n";
  Model model{o.seed};
  if (!o.quiet) model.summary(std::cout);
  ctnn::Adam opt{1e-3f};
  ctnn::fit(model, opt, ctnn::MeanSquaredError{}, train,
            {.epochs = o.epochs, .batch_size = 32, .seed = o.seed, .verbose = o.quiet ? 0 : 1});
  // Anomalies (the positive class) are the test images of the other classes.
  std::vector<bool> anomaly(test.size());
  for (std::size_t i = 0; i < test.size(); ++i) anomaly[i] = std::size_t(test.labels[i]) != o.normal;
  std::vector<float> y(test.size() * Model::output_size);
  model.predict(test.x, y);
  const double auc = ctnn::roc_auc(errors(test.x, y, Model::output_size), anomaly);
  const std::size_t calib = std::min<std::size_t>(1000, train.size());
  const auto q = ctnn::quantize(model, std::span<const float>(train.x.data(), calib * Model::input_size));
  q.predict(test.x, y);
  const double int8_auc = ctnn::roc_auc(errors(test.x, y, Model::output_size), anomaly);
  using Q = ctnn::QuantizedModel<Model>;
  std::cout << "test ROC AUC (normal class " << o.normal << " against the other nine): " << auc
            << "\nint8 test ROC AUC: " << int8_auc << " (" << Q::parameter_bytes
            << " bytes of int8 weights, scales and biases vs " << Q::float_parameter_bytes
            << " in float; " << ctnn::deploy::StaticQuantizedModel<Model>::buffer_bytes
            << " bytes of buffers for one sample)\n";
  if (o.min_auc >= 0 && !(auc >= o.min_auc)) {
    std::cerr << "test ROC AUC " << auc << " is below the required " << o.min_auc << "\n";
    return 1;
  }
  if (o.max_int8_drop >= 0 && !(int8_auc >= auc - o.max_int8_drop)) {
    std::cerr << "int8 ROC AUC " << int8_auc << " is more than " << o.max_int8_drop
              << " below the float model's " << auc << "\n";
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
    if (a == "--normal-class") o.normal = std::stoul(next());
    else if (a == "--epochs") o.epochs = std::stoul(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--threads") ctnn::set_num_threads(std::stoi(next()));
    else if (a == "--data") o.dir = next();
    else if (a == "--min-auc") o.min_auc = std::stod(next());
    else if (a == "--max-int8-drop") o.max_int8_drop = std::stod(next());
    else if (a == "--quiet") o.quiet = true;
    else throw ctnn::Error("Unknown option " + a + " (use --normal-class, --epochs, --seed, "
                           "--threads, --data, --min-auc, --max-int8-drop, --quiet).");
  }
  return run(o);
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
