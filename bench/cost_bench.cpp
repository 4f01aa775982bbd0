// cost_bench: training images/s of a model at a batch size, measured the way bench/peers/
// torch_cost.py and bench/peers/dlib_cost.cpp measure PyTorch and dlib (bench/run.sh runs the
// three side by side): Fashion-MNIST in a shuffled order, the batches staged from the dataset
// inside the timed loop, Adam 1e-3, sparse categorical cross-entropy; warm-up steps covering
// `window_images / 4` images (at least 5 steps), then W windows (default 5) of
// ceil(window_images / batch) steps each; images/s per window, median reported.
//
//   cost_bench --model seed|wide|resnet8 [--batch B] [--threads N] [--windows W]
//              [--window-images I] [--data DIR]
//
// Models (28x28x1 input, 10 classes):
//   seed     Conv2D(32, 3x3) ReLU -> Flatten -> Dense(128) ReLU -> Dense(10) softmax
//   wide     Conv2D(64, 3x3) ReLU -> Conv2D(64, 3x3) ReLU -> MaxPool(2) -> Flatten ->
//            Dense(256) ReLU -> Dense(10) softmax
//   resnet8  examples/resnet8_model.hpp's resnet8::Torch (PyTorch's padding, BatchNorm)
// Prints one JSON line: model, batch, threads, FLOPs per training image (the model's
// multiply-adds x 2, forward + both gradients), the windows and their median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "../examples/resnet8_model.hpp"

namespace {
using Clock = std::chrono::steady_clock;

using Seed = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU, ctnn::Flatten,
                              ctnn::Dense<128>, ctnn::ReLU, ctnn::Dense<10>, ctnn::Softmax>;
using Wide = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<64, 3, 3>, ctnn::ReLU,
                              ctnn::Conv2D<64, 3, 3>, ctnn::ReLU, ctnn::MaxPool2D<2>, ctnn::Flatten,
                              ctnn::Dense<256>, ctnn::ReLU, ctnn::Dense<10>, ctnn::Softmax>;

struct Options {
  std::string model = "seed", dir = "/usr/share/datasets/fashion-mnist";
  std::size_t batch = 32, windows = 5, window_images = 6400;
  int threads = 0;
};

// Multiply-adds of one training image: a layer's forward product, its weight gradient (the same
// count) and its input gradient (the same count, except for the first layer, which has none).
// Convolutions count out_h * out_w * filters * (kh * kw * in_c / groups); Dense in * units.
struct Macs {
  double forward = 0, first = 0;
};
constexpr double training_flops(Macs m) { return 2.0 * (3.0 * m.forward - m.first); }

template <class Model>
int run(const Options& o, double flops_per_image) {
  const auto train = ctnn::data::load_idx(o.dir + "/train-images-idx3-ubyte.gz",
                                          o.dir + "/train-labels-idx1-ubyte.gz");
  Model model{42};
  ctnn::Adam opt{1e-3f};
  ctnn::Trainer<Model, ctnn::Adam, ctnn::SparseCategoricalCrossEntropy> trainer(model, opt, {}, o.batch);
  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::size_t pos = 0;
  double loss = 0, seen = 0;
  const auto one_step = [&] {
    if (pos + o.batch > order.size()) pos = 0;
    trainer.load_batch(train, std::span<const std::size_t>(order.data() + pos, o.batch));
    pos += o.batch;
    const ctnn::StepStats s = trainer.step(o.batch);
    loss += s.loss_sum;
    seen += double(s.samples);
  };
  const std::size_t steps = (o.window_images + o.batch - 1) / o.batch;
  const std::size_t warm = std::max<std::size_t>(5, (o.window_images / 4 + o.batch - 1) / o.batch);
  for (std::size_t i = 0; i < warm; ++i) one_step();
  std::vector<double> ips;
  for (std::size_t w = 0; w < o.windows; ++w) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) one_step();
    ips.push_back(double(steps * o.batch) / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::vector<double> sorted = ips;
  std::sort(sorted.begin(), sorted.end());
  const double med = sorted[sorted.size() / 2];
  std::string list;
  for (double v : ips) list += (list.empty() ? "" : ", ") + std::to_string(v);
  std::printf("ctnn %s batch %zu, %d threads (%s): %.0f training images/s (median of %zu windows of "
              "%zu steps), mean loss %.4f\n", o.model.c_str(), o.batch, ctnn::max_threads(),
              ctnn::simd_target(), med, o.windows, steps, loss / seen);
  std::printf("{\"bench\": \"ctnn cost_bench\", \"model\": \"%s\", \"batch\": %zu, \"threads\": %d, "
              "\"simd_target\": \"%s\", \"train_flops_per_image\": %.0f, \"warmup_steps\": %zu, "
              "\"steps_per_window\": %zu, \"windows_images_per_s\": [%s], \"train_images_per_s\": %.1f}\n",
              o.model.c_str(), o.batch, ctnn::max_threads(), ctnn::simd_target(), flops_per_image,
              warm, steps, list.c_str(), med);
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
    if (a == "--model") o.model = next();
    else if (a == "--batch") o.batch = std::stoul(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--windows") o.windows = std::stoul(next());
    else if (a == "--window-images") o.window_images = std::stoul(next());
    else if (a == "--data") o.dir = next();
    else throw ctnn::Error("Unknown option " + a + " (use --model, --batch, --threads, --windows, --window-images, --data).");
  }
  if (o.batch == 0 || o.windows == 0 || o.window_images == 0)
    throw ctnn::Error("--batch, --windows and --window-images must be at least 1.");
  if (o.threads > 0) ctnn::set_num_threads(o.threads);
  // 28x28x1 input; valid 3x3 convolutions.
  if (o.model == "seed")
    return run<Seed>(o, training_flops({26.0 * 26 * 32 * 9 + 21632.0 * 128 + 128.0 * 10, 26.0 * 26 * 32 * 9}));
  if (o.model == "wide")
    return run<Wide>(o, training_flops({26.0 * 26 * 64 * 9 + 24.0 * 24 * 64 * 576 + 9216.0 * 256 + 256.0 * 10,
                                        26.0 * 26 * 64 * 9}));
  if (o.model == "resnet8") {
    // Stem 16 (28x28, k 9); stack 1: two 16->16 at 28x28 (k 144); stack 2: 16->32 stride 2 and
    // 32->32 at 14x14 (k 144, 288), 1x1 shortcut 16->32; stack 3: 32->64 and 64->64 at 7x7
    // (k 288, 576), 1x1 shortcut 32->64; Dense 64->10.
    const double stem = 784.0 * 16 * 9;
    const double macs = stem + 2 * 784.0 * 16 * 144 + 196.0 * 32 * 144 + 196.0 * 32 * 288 +
                        196.0 * 32 * 16 + 49.0 * 64 * 288 + 49.0 * 64 * 576 + 49.0 * 64 * 32 + 640;
    return run<resnet8::Torch>(o, training_flops({macs, stem}));
  }
  throw ctnn::Error("Unknown --model " + o.model + " (use seed, wide or resnet8).");
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
