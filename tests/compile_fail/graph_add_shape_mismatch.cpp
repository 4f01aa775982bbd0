// Add of tensors of different shapes (a stride-2 body against an identity shortcut): the
// sentence, with the two shapes in the helper's name.
// expect: (Add_input_shapes_differ<ctnn::Shape<8, 8, 8>, ctnn::Shape<4, 4, 8> ?>.*Add sums tensors of one shape, but two of its inputs differ|Add sums tensors of one shape, but two of its inputs differ.*Add_input_shapes_differ<ctnn::Shape<8, 8, 8>, ctnn::Shape<4, 4, 8> ?>)
#include <ctnn/ctnn.hpp>
using Model = ctnn::Graph<ctnn::Input<8, 8, 8>,
                          ctnn::Residual<ctnn::Block<ctnn::Conv2D<8, 3, 3, 2, ctnn::Padding::same>>,
                                         ctnn::Block<>>,
                          ctnn::Flatten, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
