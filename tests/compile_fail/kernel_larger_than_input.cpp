// A 5x5 kernel over a 4x4 image with valid padding.
// expect: Conv2D's kernel is larger than its input
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4, 4, 1>, ctnn::Conv2D<8, 5, 5>, ctnn::Flatten,
                               ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
