// tiny_model.hpp: the check every consumer test runs, whichever way it got ctnn. Include ctnn
// first (<ctnn/ctnn.hpp>, or the single header); this file names only what a user would write.
#pragma once
#include <cmath>
#include <cstdio>
#include <span>

namespace consumer_check {

using TinyModel = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<3>, ctnn::Softmax>;
static_assert(TinyModel::param_count == 15, "Dense<3> on 4 inputs has 4 x 3 weights and 3 biases.");

// Predicts one input and returns 0 when the output is a probability distribution, 1 otherwise.
inline int run_tiny_model() {
  TinyModel model{42};
  const float x[TinyModel::input_size] = {0.5f, -1.0f, 2.0f, 0.25f};
  const auto p = model.predict(std::span<const float>(x));
  double sum = 0;
  bool in_range = true;
  for (float v : p) {
    sum += v;
    in_range = in_range && v >= 0 && v <= 1;
  }
  std::printf("ctnn (%s): Dense<3> + Softmax on [0.5, -1, 2, 0.25] gives [%.6f, %.6f, %.6f], sum %.6f\n",
              ctnn::simd_target(), double(p[0]), double(p[1]), double(p[2]), sum);
  if (!in_range || !(std::abs(sum - 1.0) < 1e-5)) {
    std::fprintf(stderr, "The softmax outputs are not a probability distribution (sum %.9f).\n", sum);
    return 1;
  }
  return 0;
}

}  // namespace consumer_check
