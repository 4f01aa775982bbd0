// RandomFlip flips images: a flat vector has no width to flip along.
// expect: RandomFlip needs an image input of rank 3
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>, ctnn::RandomFlip<>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
