// The dense autoencoder as a type (examples/autoencoder.cpp trains it; tests/deploy builds it for
// a Cortex-M4). See examples/autoencoder.cpp.
#pragma once
#include <ctnn/ctnn.hpp>

namespace autoencoder {
using BN = ctnn::BatchNormalization<0.99, 0.001>;
using Model = ctnn::Sequential<
    ctnn::Input<28, 28, 1>, ctnn::Flatten,
    ctnn::Dense<128>, BN, ctnn::ReLU, ctnn::Dense<128>, BN, ctnn::ReLU,
    ctnn::Dense<128>, BN, ctnn::ReLU, ctnn::Dense<128>, BN, ctnn::ReLU,
    ctnn::Dense<8>, BN, ctnn::ReLU,
    ctnn::Dense<128>, BN, ctnn::ReLU, ctnn::Dense<128>, BN, ctnn::ReLU,
    ctnn::Dense<128>, BN, ctnn::ReLU, ctnn::Dense<128>, BN, ctnn::ReLU,
    ctnn::Dense<784>>;
}  // namespace autoencoder

// Dense layers, then gamma and beta of the BatchNormalizations (eight of 128 features, one of 8).
static_assert(autoencoder::Model::param_count ==
              (784 * 128 + 128) + 3 * (128 * 128 + 128) + (128 * 8 + 8) + (8 * 128 + 128) +
                  3 * (128 * 128 + 128) + (128 * 784 + 784) + 8 * 2 * 128 + 2 * 8);
