// A convolution over a flat vector.
// expect: Conv2D needs an image input of rank 3
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<784>, ctnn::Conv2D<8, 3, 3>, ctnn::Flatten, ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
