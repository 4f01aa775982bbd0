// A Dense layer straight after a convolution (no Flatten).
// expect: Dense needs a flat \(rank-1\) input.*Flatten
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU,
                               ctnn::Dense<128>, ctnn::Dense<10>, ctnn::Softmax>;
static_assert(Model::param_count > 0);
