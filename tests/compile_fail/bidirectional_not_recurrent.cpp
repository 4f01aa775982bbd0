// Bidirectional around a layer that is not recurrent.
// expect: Bidirectional wraps a recurrent layer
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 3>, ctnn::Bidirectional<ctnn::LayerNormalization<>>>;
static_assert(Model::output_size == 48);
