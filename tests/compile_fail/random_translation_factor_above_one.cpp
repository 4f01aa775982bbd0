// A translation by 1.5 heights would move the image out of itself.
// expect: RandomTranslation's height and width factors must be fractions in \[0, 1\]
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::RandomTranslation<1.5, 0.1>, ctnn::Flatten,
                               ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
