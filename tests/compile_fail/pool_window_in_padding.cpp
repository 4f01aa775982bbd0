// Three rows of zeros above a 2x2 pool: the first window sees only padding.
// expect: A pooling window lies entirely in the padding
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<6, 6, 1>, ctnn::MaxPool2D<2, 2, 2, ctnn::Padding::pads(3, 0, 0, 0)>,
                               ctnn::Flatten, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
