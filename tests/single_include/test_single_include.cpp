// test_single_include.cpp: ctnn used through single_include/ctnn.hpp alone. Built without
// include/ on the include path; runs the consumer check, then trains a small net on XOR.
#include <ctnn.hpp>

#include <cstdio>
#include <exception>

#include "../cmake_import/tiny_model.hpp"

#if __has_include(<ctnn/ctnn.hpp>)
#error "This test must see the single header only, but <ctnn/ctnn.hpp> is on the include path."
#endif

namespace {

using XorModel = ctnn::Sequential<ctnn::Input<2>, ctnn::Dense<8>, ctnn::Tanh, ctnn::Dense<2>, ctnn::Softmax>;
static_assert(XorModel::param_count == 2 * 8 + 8 + 8 * 2 + 2, "Dense<8> then Dense<2> on 2 inputs.");

// XOR is not linearly separable, so reaching accuracy 1 needs the hidden layer, the backward
// pass and the optimizer to all work.
int train_xor() {
  ctnn::data::Dataset xor_data;
  xor_data.sample_shape = {2};
  xor_data.x = {0, 0, 0, 1, 1, 0, 1, 1};
  xor_data.labels = {0, 1, 1, 0};
  xor_data.num_classes = 2;

  XorModel model{7};
  ctnn::Adam opt{0.05f};
  const auto history = ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, xor_data,
                                 {.epochs = 200, .batch_size = 4, .seed = 7, .verbose = 0});
  const auto result = ctnn::evaluate(model, xor_data);
  std::printf("XOR after %zu epochs of Adam: loss %.4f, accuracy %.2f\n", history.epochs.size(),
              result.loss, result.accuracy);
  if (result.accuracy != 1.0) {
    std::fprintf(stderr, "The XOR net reached accuracy %.2f, not 1.\n", result.accuracy);
    return 1;
  }
  return 0;
}

}  // namespace

int main() try {
  return consumer_check::run_tiny_model() | train_xor();
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
