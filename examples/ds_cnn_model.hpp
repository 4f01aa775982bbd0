// DS-CNN as a type (examples/ds_cnn.cpp trains it; tests/deploy builds it for a Cortex-M4). See
// examples/ds_cnn.cpp.
#pragma once
#include <ctnn/ctnn.hpp>

namespace ds_cnn {
using BN = ctnn::BatchNormalization<0.99, 0.001>;
using ctnn::Padding;
template <class... Specs>
using Net = ctnn::Sequential<ctnn::Input<28, 28, 1>, Specs...>;
using Model = Net<ctnn::Conv2D<64, 3, 3, 2, Padding::same>, BN, ctnn::ReLU, ctnn::Dropout<0.2>,
                  ctnn::DepthwiseConv2D<3, 3, 1, Padding::same>, BN, ctnn::ReLU, ctnn::Conv2D<64, 1, 1>, BN, ctnn::ReLU,
                  ctnn::DepthwiseConv2D<3, 3, 1, Padding::same>, BN, ctnn::ReLU, ctnn::Conv2D<64, 1, 1>, BN, ctnn::ReLU,
                  ctnn::DepthwiseConv2D<3, 3, 1, Padding::same>, BN, ctnn::ReLU, ctnn::Conv2D<64, 1, 1>, BN, ctnn::ReLU,
                  ctnn::DepthwiseConv2D<3, 3, 1, Padding::same>, BN, ctnn::ReLU, ctnn::Conv2D<64, 1, 1>, BN, ctnn::ReLU,
                  ctnn::Dropout<0.4>, ctnn::GlobalAveragePooling2D, ctnn::Dense<10>, ctnn::Softmax>;
}  // namespace ds_cnn

// Stem 3*3*64 + 64, four blocks of 3*3*64 + 64 (depthwise) and 64*64 + 64 (pointwise), Dense
// 64*10 + 10; BatchNormalization 2 * 64 trainable (gamma, beta) after each of the 9 convolutions.
static_assert(ds_cnn::Model::param_count ==
              640 + 4 * (640 + 4160) + 650 + 9 * 128);
static_assert(ds_cnn::Model::state_count == 9 * 128);
