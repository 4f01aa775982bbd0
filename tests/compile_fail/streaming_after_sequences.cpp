// Streaming a model whose LSTM returns sequences into a Flatten + Dense: one step's output is not
// the whole sequence the Flatten takes.
// expect: StreamingModel: a layer reads one time step's output of a recurrent layer
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 3>, ctnn::LSTM<4, true>, ctnn::Flatten, ctnn::Dense<2>>;
static_assert(ctnn::deploy::StreamingModel<Model>::output_size == 2);
