// A BatchNormalization folds only into the layer whose output it normalizes.
// expect: fold_batch_norm needs the BatchNormalization to take the previous layer's output
#include <ctnn/ctnn.hpp>
using D = ctnn::Dense<16>::bind<ctnn::Shape<784>, float>;
using B = ctnn::BatchNormalization<>::bind<ctnn::Shape<8>, float>;
void fold(float* d, const float* p, const float* s) { ctnn::fold_batch_norm<D, B>(d, p, s); }
