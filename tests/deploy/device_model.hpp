// The smallest useful device model: a Fashion-MNIST CNN whose int8 Cortex-M4 image (code, int8
// weights and one test image) fits in 64 KB of flash, RAM fixed at compile time. Two 3x3
// convolutions (8 and 16 filters) with max pooling, one Dense: 5,258 parameters.
// tests/deploy/device_tool.cpp trains and exports it; device_test.cmake builds it.
#pragma once
#include <ctnn/deploy/static_quantized.hpp>

using DeviceModel = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU,
                                     ctnn::MaxPool2D<2>, ctnn::Conv2D<16, 3, 3>, ctnn::ReLU,
                                     ctnn::MaxPool2D<2>, ctnn::Flatten, ctnn::Dense<10>,
                                     ctnn::Softmax>;
static_assert(DeviceModel::param_count == 8 * 9 + 8 + 8 * 9 * 16 + 16 + 400 * 10 + 10);
