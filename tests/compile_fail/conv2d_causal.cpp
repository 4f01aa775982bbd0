// Causal padding on a 2-D convolution.
// expect: Padding::causal is for Conv1D
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::Conv2D<4, 3, 3, 1, ctnn::Padding::causal>,
                               ctnn::Flatten, ctnn::Dense<10>>;
static_assert(Model::param_count > 0);
