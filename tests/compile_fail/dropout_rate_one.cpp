// A dropout rate of 1 would drop everything.
// expect: Dropout's rate must be in \[0, 1\)
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::Dense<4>, ctnn::Dropout<1.0>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
