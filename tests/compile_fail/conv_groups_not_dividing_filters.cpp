// A Conv2D with 6 filters in 4 groups.
// expect: Conv2D's Filters must be a multiple of its Groups
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 4>,
                               ctnn::Conv2D<6, 3, 3, 1, ctnn::Padding::valid,
                                            ctnn::init::GlorotUniform, ctnn::init::Zeros, 1, 4>,
                               ctnn::Flatten, ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
