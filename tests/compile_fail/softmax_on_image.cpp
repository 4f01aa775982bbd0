// Softmax over an image-shaped tensor.
// expect: Softmax needs a flat \(rank-1\) input
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<6, 6, 1>, ctnn::Conv2D<2, 3, 3>, ctnn::Softmax>;
static_assert(Model::param_count > 0);
