// A Reshape to 3x5 of a 4x4 image: 16 values cannot become 15.
// expect: Reshape must keep the number of values
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4, 4, 1>, ctnn::Reshape<3, 5>, ctnn::Flatten, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
