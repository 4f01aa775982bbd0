// A model with an input and no layers.
// expect: needs at least one layer after Input
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<10>>;
static_assert(Model::input_size == 10);
