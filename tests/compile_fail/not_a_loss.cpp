// fit() with something that is not a loss.
// expect: fit\(\)'s third argument must be a loss such as
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<2>, ctnn::Softmax>;
struct NotALoss {};
void train(Model& m, const ctnn::data::Dataset& d) {
  ctnn::Adam opt;
  ctnn::fit(m, opt, NotALoss{}, d);
}
