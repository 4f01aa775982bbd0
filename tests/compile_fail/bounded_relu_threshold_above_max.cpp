// A threshold at or above the max value would make every output the max value.
// expect: BoundedReLU's threshold must be below its max value
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::Dense<4>, ctnn::BoundedReLU<1.0, 0.0, 2.0>,
                               ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
