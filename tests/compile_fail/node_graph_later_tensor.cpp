// A NodeGraph node that reads a tensor computed after it (tensor 3 is the third node's output).
// expect: reads the input \(0\) or the output of an earlier At
#include <ctnn/ctnn.hpp>
using Net = ctnn::NodeGraph<ctnn::Input<8>, ctnn::At<ctnn::Dense<8>, 0>, ctnn::At<ctnn::Add<>, 1, 3>,
                            ctnn::At<ctnn::Dense<8>, 2>>;
Net net(1);
