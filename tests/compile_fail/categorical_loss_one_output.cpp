// report() under categorical cross-entropy for a model with a single output.
// expect: cross-entropy over classes \(sparse or categorical\) needs at least 2 outputs, one per class
#include <ctnn/ctnn.hpp>
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<1>>;
ctnn::ModelReport check(Model& m, const ctnn::data::Dataset& d) {
  return ctnn::report(m, d, ctnn::CategoricalCrossEntropy{});
}
