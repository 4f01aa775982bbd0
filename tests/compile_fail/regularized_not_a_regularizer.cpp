// The second argument of Regularized must be a regularizer, not a number type.
// expect: R must be a regularizer such as ctnn::L2<1, 10000>
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::Regularized<ctnn::Dense<4>, float>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
