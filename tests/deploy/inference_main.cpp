// The deployed program of the deployment tests, built for the host, for aarch64 (run under
// qemu-aarch64) and for a Cortex-M4: the exported model over its test cases, checked against the
// outputs the training host computed. Uses no file system, heap, exceptions or RTTI.
#include <cmath>
#include <cstdio>

#ifdef CTNN_ONE_CASE  // the Cortex-M image: the model and one image
#include "fashion_case_one.hpp"
#else
#include "fashion_cases.hpp"
#endif
#include "fashion_model.hpp"

// Buffers in .bss, weights in .rodata (flash on a microcontroller).
static ctnn::deploy::StaticModel<fashion_model::Model> net(fashion_model::parameters);

// Outputs within 1e-5 of the host's; classes equal unless the host's top two are closer than
// 1e-5 (other ISAs round differently: FMA contraction, vector widths).
int main() {
  using M = fashion_model::Model;
  unsigned same_class = 0, close = 0;
  float worst = 0;
  for (unsigned i = 0; i < fashion_cases::count; ++i) {
    const float* y = net.predict(fashion_cases::inputs + i * M::input_size);
    const float* want = fashion_cases::expected + i * M::output_size;
    unsigned best = 0, want_best = 0;
    float diff = 0;
    for (unsigned k = 0; k < M::output_size; ++k) {
      diff = std::fmax(diff, std::fabs(y[k] - want[k]));
      if (y[k] > y[best]) best = k;
      if (want[k] > want[want_best]) want_best = k;
    }
    float runner_up = -1;
    for (unsigned k = 0; k < M::output_size; ++k)
      if (k != want_best) runner_up = std::fmax(runner_up, want[k]);
    worst = std::fmax(worst, diff);
    close += diff <= 1e-5f;
    same_class += best == want_best || want[want_best] - runner_up < 1e-5f;
  }
  std::printf("ctnn deployed model: %u of %u classes and %u of %u output vectors match the host "
              "(largest difference %g); weights %u bytes, buffers %u bytes\n",
              same_class, fashion_cases::count, close, fashion_cases::count, double(worst),
              unsigned(decltype(net)::weight_bytes), unsigned(decltype(net)::buffer_bytes));
  return same_class == fashion_cases::count && close == fashion_cases::count ? 0 : 1;
}
