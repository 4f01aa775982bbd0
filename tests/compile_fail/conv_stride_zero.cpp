// A convolution with stride 0.
// expect: Conv2D needs at least one filter, a kernel of at least 1x1 and a stride >= 1
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::Conv2D<8, 3, 3, 0>, ctnn::Flatten,
                               ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
