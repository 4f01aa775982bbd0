// A type that is not an initializer given as Dense's kernel initializer.
// expect: KernelInit and BiasInit must be initializers
#include <ctnn/ctnn.hpp>
struct NotAnInitializer {};
using Model = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<3, NotAnInitializer>, ctnn::Softmax>;
static_assert(Model::param_count > 0);
