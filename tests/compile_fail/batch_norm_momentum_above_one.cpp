// A momentum above 1 would make the moving averages grow away from the data.
// expect: BatchNormalization's momentum must be in \[0, 1\]
#include <ctnn/ctnn.hpp>
using L = ctnn::BatchNormalization<1.5>::bind<ctnn::Shape<4>, float>;
static_assert(L::param_count == 8);
