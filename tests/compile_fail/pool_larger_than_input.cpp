// A 4x4 pool over a 3x3 feature map.
// expect: pooling window is larger than its input
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<5, 5, 1>, ctnn::Conv2D<2, 3, 3>, ctnn::MaxPool2D<4>,
                               ctnn::Flatten, ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
