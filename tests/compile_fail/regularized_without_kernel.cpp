// A ReLU has no kernel for a regularizer to act on.
// expect: Regularized<Spec, R> needs a layer with a kernel
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::Dense<4>,
                               ctnn::Regularized<ctnn::ReLU, ctnn::L2<1, 100>>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
