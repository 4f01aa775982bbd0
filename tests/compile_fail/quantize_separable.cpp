// int8 quantization of a SeparableConv2D, which the int8 path does not have (its depthwise and
// pointwise steps would need a scale for the tensor between them).
// expect: quantize\(\) does not handle SeparableConv2D yet
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 4>, ctnn::SeparableConv2D<6, 3, 3>, ctnn::ReLU,
                               ctnn::Flatten, ctnn::Dense<10>>;
auto q(const Model& m, std::span<const float> calibration) { return ctnn::quantize(m, calibration); }
