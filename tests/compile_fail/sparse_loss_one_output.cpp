// A Trainer for sparse categorical cross-entropy over a single output (one "class").
// expect: cross-entropy over classes \(sparse or categorical\) needs at least 2 outputs, one per class
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<1>, ctnn::Sigmoid>;
void step(Model& m) {
  ctnn::SGD opt;
  ctnn::Trainer<Model, ctnn::SGD, ctnn::SparseCategoricalCrossEntropy> t(m, opt, {}, 8);
}
