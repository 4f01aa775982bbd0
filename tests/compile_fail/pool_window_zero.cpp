// A pooling window of 0x0 (its stride defaults to the window, so it is 0 too).
// expect: A pooling window must be at least 1x1
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::MaxPool2D<0>, ctnn::Flatten,
                               ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
