// ResNet-8 as a type (examples/resnet8.cpp trains it; tests/deploy builds it for a Cortex-M4):
// MLPerf Tiny's image-classification architecture on 28x28x1 input. See examples/resnet8.cpp.
#pragma once
#include <type_traits>

// Only the headers the model needs (the umbrella ctnn/ctnn.hpp would parse everything ctnn has).
#include <ctnn/core/graph.hpp>
#include <ctnn/core/model.hpp>
#include <ctnn/layers/add.hpp>
#include <ctnn/layers/batch_norm.hpp>
#include <ctnn/layers/conv2d.hpp>
#include <ctnn/layers/dense.hpp>
#include <ctnn/layers/global_pooling.hpp>
#include <ctnn/layers/random_flip.hpp>
#include <ctnn/layers/random_translation.hpp>
#include <ctnn/layers/relu.hpp>
#include <ctnn/layers/softmax.hpp>
#include <ctnn/train/regularize.hpp>

namespace resnet8 {
using ctnn::Block;
using ctnn::Padding;
using ctnn::Residual;
using BN = ctnn::BatchNormalization<0.99, 0.001>;

// A 3x3 convolution (PyTorch's padding=1) and a 1x1 stride-2 projection, he_normal; the own
// recipe wraps every kernel in MLPerf Tiny's L2 regularizer (1e-4).
template <bool Reg, class Spec>
using R = std::conditional_t<Reg, ctnn::Regularized<Spec, ctnn::L2<1, 10000>>, Spec>;
template <bool Reg, std::size_t F, std::size_t S>
using Conv3 = R<Reg, ctnn::Conv2D<F, 3, 3, S, Padding::pads(1, 1, 1, 1), ctnn::init::HeNormal>>;
template <bool Reg, std::size_t F>
using Proj = R<Reg, ctnn::Conv2D<F, 1, 1, 2, Padding::valid, ctnn::init::HeNormal>>;

template <bool Reg, std::size_t F, std::size_t S, class Shortcut>
using Stack = Residual<Block<Conv3<Reg, F, S>, BN, ctnn::ReLU, Conv3<Reg, F, 1>, BN>, Shortcut>;

template <bool Own, class... Augment>
using Net = ctnn::Graph<
    ctnn::Input<28, 28, 1>, Augment...,
    Conv3<Own, 16, 1>, BN, ctnn::ReLU,
    Stack<Own, 16, 1, Block<>>, ctnn::ReLU,
    Stack<Own, 32, 2, Block<Proj<Own, 32>>>, ctnn::ReLU,
    Stack<Own, 64, 2, Block<Proj<Own, 64>>>, ctnn::ReLU,
    ctnn::GlobalAveragePooling2D,
    R<Own, ctnn::Dense<10, ctnn::init::HeNormal>>, ctnn::Softmax>;

using Torch = Net<false>;
using Own = Net<true, ctnn::RandomTranslation<0.08, 0.08, ctnn::TranslationFill::constant>,
                ctnn::RandomFlip<ctnn::FlipMode::horizontal>>;
}  // namespace resnet8
