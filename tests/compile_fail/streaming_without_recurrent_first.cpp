// Streaming a model that does not start with a recurrent layer.
// expect: StreamingModel runs a model one time step at a time: its first layer must be a
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 3>, ctnn::Conv1D<4, 3>, ctnn::LSTM<4>, ctnn::Dense<2>>;
static_assert(ctnn::deploy::StreamingModel<Model>::output_size == 2);
