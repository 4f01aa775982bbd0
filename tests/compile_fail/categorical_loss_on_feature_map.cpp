// evaluate() with categorical cross-entropy on an image-shaped output.
// expect: cross-entropy over classes \(sparse or categorical\) needs a flat \(rank-1\) model output with one score per class
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<8, 8, 1>, ctnn::Conv2D<4, 3, 3>, ctnn::Sigmoid>;
double loss_of(Model& m, const ctnn::data::Dataset& d) {
  return ctnn::evaluate(m, d, ctnn::CategoricalCrossEntropy{}).loss;
}
