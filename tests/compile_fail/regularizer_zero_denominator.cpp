// l2 = 1 / 0 is no factor.
// expect: A regularizer's factor N / D needs a denominator D >= 1.
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::Regularized<ctnn::Dense<4>, ctnn::L2<1, 0>>,
                               ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
