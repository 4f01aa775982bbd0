// A type that is not a layer spec in the layer list.
// expect: must be a layer spec such as ctnn::Dense<10>
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<3>, int, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
