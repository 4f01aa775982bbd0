// Input given twice: the second one is not a layer.
// expect: Input may appear only once, first in a Sequential model
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Input<4>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
