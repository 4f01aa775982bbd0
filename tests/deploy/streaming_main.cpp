// The streaming program of streaming_test.cmake, built for the host, Highway's SCALAR target,
// aarch64 (run under qemu-aarch64) and a Cortex-M4 (run under qemu-system-arm): the exported
// recurrent model streams each test sequence one row per step() and must give
//   - at every step, the output the training host's StreamingModel gave (within 1e-5: other
//     targets round differently: FMA contraction, vector widths), and
//   - after the last step, exactly the bits this target's whole-sequence StaticModel gives.
// No file system, heap, exceptions or RTTI.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <ctnn/deploy/streaming.hpp>

#include "rnn_cases.hpp"
#include "rnn_model.hpp"

#ifdef CTNN_CORTEX_M4
extern "C" void ctnn_m4_write(const char* text);  // cortex_m4/startup.cpp (semihosting)
static void say(const char* text) { ctnn_m4_write(text); }
#else
static void say(const char* text) { std::fputs(text, stdout); }
#endif

using M = rnn_model::Model;
// Both objects hold their buffers and state (.bss); the weights are the header's constants.
static ctnn::deploy::StreamingModel<M> stream(rnn_model::parameters);
static ctnn::deploy::StaticModel<M> whole(rnn_model::parameters);

int main() {
  constexpr unsigned steps = M::input_shape::dims[0], features = M::input_shape::dims[1];
  constexpr unsigned classes = M::output_size;
  static_assert(decltype(stream)::step_input_size == features && decltype(stream)::output_size == classes);
  unsigned close = 0, same_bits = 0;
  float worst = 0;
  for (unsigned s = 0; s < rnn_cases::count; ++s) {
    const float* x = rnn_cases::inputs + s * steps * features;
    stream.reset();
    const float* y = nullptr;
    for (unsigned t = 0; t < steps; ++t) {
      y = stream.step(x + t * features);
      const float* want = rnn_cases::streamed + (s * steps + t) * classes;
      float diff = 0;
      for (unsigned k = 0; k < classes; ++k) diff = std::fmax(diff, std::fabs(y[k] - want[k]));
      worst = std::fmax(worst, diff);
      close += diff <= 1e-5f;
    }
    const float* w = whole.predict(x);
    same_bits += std::memcmp(y, w, classes * sizeof(float)) == 0;
  }
  char line[400];
  std::snprintf(line, sizeof line,
                "ctnn streamed recurrent model: %u of %u steps within 1e-5 of the host's stream "
                "(largest difference %.3g); %u of %u sequences end on the whole-sequence model's "
                "bits; buffers and state %u bytes\n",
                close, rnn_cases::count * steps, double(worst), same_bits, rnn_cases::count,
                unsigned(decltype(stream)::buffer_bytes));
  say(line);
  return close == rnn_cases::count * steps && same_bits == rnn_cases::count ? 0 : 1;
}
