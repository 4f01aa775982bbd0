// From names a tensor no Tag has named.
// expect: the Name in No_tensor_is_tagged<Name> has not been tagged before this point
#include <ctnn/ctnn.hpp>
struct Never;
using Model = ctnn::Graph<ctnn::Input<4>, ctnn::Dense<4>, ctnn::From<Never>, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
