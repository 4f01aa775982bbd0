// int8 quantization of a grouped Conv2D, which the int8 path would compute as an ungrouped one.
// expect: quantize\(\) handles Conv2D with Groups = 1 only
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 4>,
                               ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::valid,
                                            ctnn::init::GlorotUniform, ctnn::init::Zeros, 1, 2>,
                               ctnn::Flatten, ctnn::Dense<10>>;
auto q(const Model& m, std::span<const float> calibration) { return ctnn::quantize(m, calibration); }
