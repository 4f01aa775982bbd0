// The small image model of the deployment tests: 2,530 parameters, small enough for a
// Cortex-M4 (10 KB of weights), a real Fashion-MNIST classifier all the same.
#pragma once
#include <ctnn/deploy/static_model.hpp>

using TinyModel = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<4, 3, 3, 2>, ctnn::ReLU,
                                   ctnn::MaxPool2D<2>, ctnn::Flatten, ctnn::Dense<16>, ctnn::ReLU,
                                   ctnn::Dense<10>, ctnn::Softmax>;
static_assert(TinyModel::param_count == 4 * 9 + 4 + 144 * 16 + 16 + 16 * 10 + 10);
