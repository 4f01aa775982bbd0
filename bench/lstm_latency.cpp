// lstm_latency: ctnn's recurrent inference at the two sizes of the RTNeural peer
// (../shared/peers/rtneural_lstm.cpp), timed the same way, one thread, random weights (speed only):
//   (a) LSTM(28 -> 128) + Dense(10) over a 28-step sequence: the median of 2,000 sequences after 100
//       warm-ups, each timed from reset() through the 28th step, streamed one step per call
//       (StreamingModel, as RTNeural's ModelT::forward runs) and as one whole-sequence predict()
//       of the same model (StaticModel, batch 1);
//   (b) LSTM(16 -> 16) one step per call: 2,000,000 steps, the mean per step.
// Prints one JSON line. bench/lstm/run.sh runs it beside the peer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/streaming.hpp>

namespace {
using Clock = std::chrono::steady_clock;
using Seq = ctnn::Sequential<ctnn::Input<28, 28>, ctnn::LSTM<128>, ctnn::Dense<10>>;
using Small = ctnn::Sequential<ctnn::Input<1, 16>, ctnn::LSTM<16, true>>;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main() {
  ctnn::set_num_threads(1);  // RTNeural runs on one thread
  ctnn::Rng rng(1);
  std::vector<float> img(28 * 28);
  for (float& v : img) v = float(rng.uniform01());

  Seq seq(1);
  static ctnn::deploy::StreamingModel<Seq> stream(seq.parameters().data());
  static ctnn::deploy::StaticModel<Seq> whole(seq.parameters().data());
  std::vector<double> t_stream, t_whole;
  float sink = 0;
  for (int rep = 0; rep < 2100; ++rep) {
    auto t0 = Clock::now();
    stream.reset();
    const float* y = nullptr;
    for (int s = 0; s < 28; ++s) y = stream.step(img.data() + 28 * s);
    sink += y[0];
    auto t1 = Clock::now();
    sink += whole.predict(img.data())[0];
    auto t2 = Clock::now();
    if (rep >= 100) {
      t_stream.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      t_whole.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    }
  }

  Small small(2);
  static ctnn::deploy::StreamingModel<Small> step16(small.parameters().data());
  alignas(64) float x[16];
  std::fill_n(x, 16, 0.5f);
  const int steps = 2000000;
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    x[i & 15] = float(i & 7) * 0.1f;
    sink += step16.step(x)[i & 15];
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / steps;
  std::printf("{\"impl\": \"ctnn\", \"simd\": \"%s\", \"lstm128_seq28_stream_median_us\": %.2f, "
              "\"lstm128_seq28_whole_median_us\": %.2f, \"lstm16_step_ns\": %.1f, \"sink\": %g}\n",
              ctnn::simd_target(), median(t_stream), median(t_whole), ns, double(sink));
}
