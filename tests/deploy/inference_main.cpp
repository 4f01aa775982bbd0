// The deployed program of the deployment tests, built for the host, for aarch64 (run under
// qemu-aarch64) and for a Cortex-M4: the exported model over its test cases, checked against the
// outputs the training host computed. Uses no file system, heap, exceptions or RTTI.
#include <cmath>
#include <cstdio>

// CTNN_INT8 chooses the int8 model (and the host's int8 outputs), CTNN_ONE_CASE one image.
#if defined(CTNN_INT8) && defined(CTNN_ONE_CASE)  // the Cortex-M image: the model and one image
#include "fashion_case_one_int8.hpp"
#elif defined(CTNN_INT8)
#include "fashion_cases_int8.hpp"
#elif defined(CTNN_ONE_CASE)
#include "fashion_case_one.hpp"
#else
#include "fashion_cases.hpp"
#endif

#ifdef CTNN_INT8
#include "fashion_model_int8.hpp"
namespace exported = fashion_model_int8;
// Buffers in .bss, weights in .rodata (flash on a microcontroller). make() returns a prvalue:
// the object is built in place.
static auto net = exported::make();
static constexpr const char* kKind = "int8";
#else
#include "fashion_model.hpp"
namespace exported = fashion_model;
static ctnn::deploy::StaticModel<exported::Model> net(exported::parameters);
static constexpr const char* kKind = "float";
#endif

// Outputs within 1e-5 of the host's; classes equal unless the host's top two are closer than
// 1e-5 (other ISAs round differently: FMA contraction, vector widths). The int8 model's integer
// sums are exact on every target and only its float steps (scale and bias, softmax) round
// differently, so the same bound serves it (seen: 0 on the host, about 2e-7 on aarch64 and SCALAR).
int main() {
  using M = exported::Model;
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
  std::printf("ctnn deployed %s model: %u of %u classes and %u of %u output vectors match the host "
              "(largest difference %g); weights %u bytes, buffers %u bytes\n",
              kKind, same_class, fashion_cases::count, close, fashion_cases::count, double(worst),
              unsigned(decltype(net)::weight_bytes), unsigned(decltype(net)::buffer_bytes));
  return same_class == fashion_cases::count && close == fashion_cases::count ? 0 : 1;
}
