// fit() with sparse categorical cross-entropy on a feature map (every map value taken for a class).
// expect: cross-entropy over classes \(sparse or categorical\) needs a flat \(rank-1\) model output with one score per class
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<8, 3, 3>, ctnn::ReLU>;
void train(Model& m, const ctnn::data::Dataset& d) {
  ctnn::Adam opt;
  ctnn::fit(m, opt, ctnn::SparseCategoricalCrossEntropy{}, d);
}
