// seed_accuracy: the seed model trained exactly as examples/fashion_mnist.cpp trains it (Adam 1e-3,
// batch 32, 10 epochs on the 60,000 training images, shuffled with the seed), at a chosen seed
// and with either of two initializations, printing one JSON line with the test accuracy:
//   --init keras   Keras's defaults, Glorot uniform kernels and zero biases (the seed example)
//   --init torch   PyTorch's defaults, U(+-1/sqrt(fan_in)) for kernels and biases (init::TorchUniform)
// bench/accuracy/run.sh runs it over many seeds next to PyTorch (torch_seed_runs.py), to tell the
// spread between seeds from a difference between implementations.
//   seed_accuracy --seed N [--init keras|torch] [--epochs N] [--threads N] [--data DIR]
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <ctnn/ctnn.hpp>

template <class KernelInit, class BiasInit>
using SeedModel = ctnn::Sequential<
    ctnn::Input<28, 28, 1>,
    ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid, KernelInit, BiasInit>, ctnn::ReLU,
    ctnn::Flatten,
    ctnn::Dense<128, KernelInit, BiasInit>, ctnn::ReLU,
    ctnn::Dense<10, KernelInit, BiasInit>, ctnn::Softmax>;
using KerasInit = SeedModel<ctnn::init::GlorotUniform, ctnn::init::Zeros>;
using TorchInit = SeedModel<ctnn::init::TorchUniform, ctnn::init::TorchUniform>;
static_assert(KerasInit::param_count == 2'770'634 && TorchInit::param_count == 2'770'634);

template <class Model>
void run(std::uint64_t seed, std::size_t epochs, const std::string& init, const ctnn::data::Dataset& train,
         const ctnn::data::Dataset& test) {
  Model model{seed};
  ctnn::Adam opt{1e-3f};
  const auto t0 = std::chrono::steady_clock::now();
  const auto h = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
                           {.epochs = epochs, .batch_size = 32, .seed = seed, .verbose = 0});
  const auto r = ctnn::evaluate(model, test);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char line[512];
  std::snprintf(line, sizeof line,
                "{\"impl\": \"ctnn\", \"simd_target\": \"%s\", \"init\": \"%s\", \"seed\": %llu, "
                "\"epochs\": %zu, \"threads\": %d, \"test_accuracy\": %.4f, \"last_epoch_loss\": %.4f, "
                "\"seconds\": %.1f}",
                ctnn::simd_target(), init.c_str(), static_cast<unsigned long long>(seed), epochs,
                ctnn::max_threads(), r.accuracy, h.last().loss, s);
  std::cout << line << std::endl;
}

int main(int argc, char** argv) try {
  std::string dir = "/usr/share/datasets/fashion-mnist", init = "keras";
  std::size_t epochs = 10;
  std::uint64_t seed = 0;
  bool have_seed = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ctnn::Error("Option " + a + " needs a value.");
      return argv[++i];
    };
    if (a == "--seed") seed = std::stoull(next()), have_seed = true;
    else if (a == "--init") init = next();
    else if (a == "--epochs") epochs = std::stoul(next());
    else if (a == "--threads") ctnn::set_num_threads(std::stoi(next()));
    else if (a == "--data") dir = next();
    else throw ctnn::Error("Unknown option " + a + " (use --seed, --init, --epochs, --threads, --data).");
  }
  if (!have_seed) throw ctnn::Error("seed_accuracy needs --seed N.");
  if (init != "keras" && init != "torch")
    throw ctnn::Error("--init must be keras or torch, not '" + init + "'.");
  const auto train = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                          dir + "/train-labels-idx1-ubyte.gz");
  const auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                         dir + "/t10k-labels-idx1-ubyte.gz");
  if (init == "keras") run<KerasInit>(seed, epochs, init, train, test);
  else run<TorchInit>(seed, epochs, init, train, test);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
