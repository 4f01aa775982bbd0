// The smallest program on the single header (bench/run.sh times its compile: issue 15's "the
// single header compiles a one-layer program in under 3 s").
#include <cstdio>

#include "ctnn.hpp"

int main() {
  ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<2>> model(1);
  const float x[4] = {1, 2, 3, 4};
  const auto y = model.predict(x);
  std::printf("%f %f\n", double(y[0]), double(y[1]));
}
