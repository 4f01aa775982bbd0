// Concatenate of feature maps of different sizes: the sentence, with the shapes in the helper's
// name.
// expect: (Concatenate_inputs_differ_before_the_last_axis<ctnn::Shape<4, 4, 3>, ctnn::Shape<8, 8, 3> ?>.*Concatenate joins tensors along the last axis, so they must agree on every other axis|Concatenate joins tensors along the last axis, so they must agree on every other axis.*Concatenate_inputs_differ_before_the_last_axis<ctnn::Shape<4, 4, 3>, ctnn::Shape<8, 8, 3> ?>)
#include <ctnn/ctnn.hpp>
struct Full;
using Model = ctnn::Graph<ctnn::Input<8, 8, 3>, ctnn::Tag<Full>, ctnn::MaxPool2D<2>,
                          ctnn::Concatenate<Full>, ctnn::Flatten, ctnn::Dense<2>>;
static_assert(Model::param_count > 0);
