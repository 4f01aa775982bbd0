// Streaming a model with a Bidirectional layer, whose backward direction needs the sequence's end.
// expect: StreamingModel cannot stream a Bidirectional layer
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 3>, ctnn::Bidirectional<ctnn::LSTM<4>>, ctnn::Dense<2>>;
static_assert(ctnn::deploy::StreamingModel<Model>::output_size == 2);
