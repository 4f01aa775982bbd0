// int8 quantization of a BatchNormalization that follows a ReLU: there is no Conv2D or Dense
// right before it to fold it into.
// expect: quantize\(\) folds each BatchNormalization into the Dense or Conv2D right before it
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::Conv2D<4, 3, 3>, ctnn::ReLU,
                               ctnn::BatchNormalization<>, ctnn::Flatten, ctnn::Dense<10>>;
auto q(const Model& m, std::span<const float> calibration) { return ctnn::quantize(m, calibration); }
