// A Conv2D in 2 groups over an image of 3 channels.
// expect: Conv2D's input channels must be a multiple of its Groups
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 3>,
                               ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::valid,
                                            ctnn::init::GlorotUniform, ctnn::init::Zeros, 1, 2>,
                               ctnn::Flatten, ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
