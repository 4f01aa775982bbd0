// The seed program in ctnn: Conv2D(32, 3x3, relu) -> Flatten -> Dense(128, relu) ->
// Dense(10, softmax), Adam, sparse categorical cross-entropy, batch 32, 10 epochs on
// Fashion-MNIST, then the test accuracy; then the per-class report, the confusion matrix and
// the training curves.
//
//   fashion_mnist [--epochs N] [--limit N] [--data DIR] [--threads N] [--seed N]
//                 [--no-validate] [--out DIR] [--save FILE]
// --limit trains on the first N training images (a shorter run); --epochs defaults to 10.
// After every epoch the test set's loss and accuracy are reported (as Keras's validation_data),
// which does not change training; --no-validate skips that. The per-epoch log goes to
// DIR/fashion_mnist_log.csv and the curves to DIR/fashion_mnist_curves.svg (DIR defaults to
// "."); --save writes the trained model to FILE (io/model_file.hpp).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include <ctnn/ctnn.hpp>

using Model = ctnn::Sequential<
    ctnn::Input<28, 28, 1>,
    ctnn::Conv2D<32, 3, 3>, ctnn::ReLU,
    ctnn::Flatten,
    ctnn::Dense<128>, ctnn::ReLU,
    ctnn::Dense<10>, ctnn::Softmax>;
static_assert(Model::param_count == 2'770'634, "the seed model has Keras's parameter count");
static_assert(std::is_same_v<Model::output_shape, ctnn::Shape<10>>);

int main(int argc, char** argv) try {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  std::size_t epochs = 10, limit = SIZE_MAX;
  std::uint64_t seed = 42;
  bool validate = true;
  std::string out = ".", save_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ctnn::Error("Option " + a + " needs a value.");
      return argv[++i];
    };
    if (a == "--epochs") epochs = std::stoul(next());
    else if (a == "--limit") limit = std::stoul(next());
    else if (a == "--data") dir = next();
    else if (a == "--threads") ctnn::set_num_threads(std::stoi(next()));
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--validate") validate = true;
    else if (a == "--no-validate") validate = false;
    else if (a == "--out") out = next();
    else if (a == "--save") save_path = next();
    else throw ctnn::Error("Unknown option " + a + " (use --epochs, --limit, --data, --threads, "
                           "--seed, --no-validate, --out, --save).");
  }

  auto train = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                    dir + "/train-labels-idx1-ubyte.gz", {.limit = limit});
  auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                   dir + "/t10k-labels-idx1-ubyte.gz");
  const std::vector<std::string> classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  train.class_names = test.class_names = classes;
  std::cout << "Fashion-MNIST: " << train.size() << " training and " << test.size()
            << " test images\n";

  Model model{seed};
  model.summary(std::cout);
  ctnn::Adam opt{1e-3f};
  ctnn::CsvLogger log(out + "/fashion_mnist_log.csv");
  ctnn::SvgPlot plot(out + "/fashion_mnist_curves.svg");
  const auto history = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train,
                                 {.epochs = epochs, .batch_size = 32,
                                  .validation = validate ? &test : nullptr, .seed = seed,
                                  .callbacks = {log, plot}});
  const auto result = ctnn::evaluate(model, test);
  double seconds = 0;
  for (const auto& e : history.epochs) seconds += e.seconds;
  std::cout << "seconds per epoch: " << seconds / double(history.epochs.size()) << "\n";
  std::cout << "test loss: " << result.loss << "\n";
  std::cout << "test accuracy: " << result.accuracy << "\n";

  // Per-class precision, recall and F1, and the confusion matrix, on the test set.
  std::cout << "\n" << ctnn::report(model, test, ctnn::SparseCategoricalCrossEntropy{},
                                     {.top_k = 2, .name = "test"});
  std::cout << "Per-epoch log: " << out << "/fashion_mnist_log.csv; curves: " << out
            << "/fashion_mnist_curves.svg\n";
  if (!save_path.empty()) {
    ctnn::save(save_path, model);
    std::cout << "Saved the trained model to " << save_path << "\n";
  }

  const auto probs = model.predict(std::span<const float>(test.sample(0), Model::input_size));
  std::cout << "first test image: predicted class " << model.predict_class(
                   std::span<const float>(test.sample(0), Model::input_size))
            << " (p = " << probs[model.predict_class(std::span<const float>(test.sample(0), Model::input_size))]
            << "), label " << test.labels[0] << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
