// int8 quantization of a DepthwiseConv2D, which the int8 path does not have.
// expect: quantize\(\) does not handle DepthwiseConv2D or SeparableConv2D yet
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 4>, ctnn::DepthwiseConv2D<3, 3>, ctnn::ReLU,
                               ctnn::Flatten, ctnn::Dense<10>>;
auto q(const Model& m, std::span<const float> calibration) { return ctnn::quantize(m, calibration); }
