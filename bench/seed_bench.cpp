// seed_bench: speed of the seed model (Conv2D(32, 3x3, relu) -> Flatten -> Dense(128, relu) ->
// Dense(10, softmax), Adam, batch 32) on real Fashion-MNIST, and of the kernels behind it at the
// seed shapes, next to OpenBLAS's sgemm at the same M, N, K and transposes (when the bench was
// built with OpenBLAS; it is a yardstick only, ctnn never links it).
//
//   seed_bench [--threads N] [--data DIR] [--windows W] [--steps S] [--fit-epochs E] [--quick]
//
// --threads defaults to OMP_NUM_THREADS (or all cores). Every figure is a median over repeats:
//   train      W windows (default 5) of S Trainer steps (default 300) of 32 images each, after
//              50 warm-up steps; images/s per window, median reported. Batch staging (load_batch)
//              is timed too: it is part of a training step as fit() runs it. Adam runs fused into
//              backward (the default); W more windows, interleaved with those (fused, separate,
//              fused, ...), run it as a separate pass after backward, on the same trainer.
//   fit        E (default 3) whole fit() epochs over the 60,000 training images (shuffling,
//              staging, the per-epoch progress line, the end-of-epoch parameter scan; no
//              validation), each followed by one epoch's worth of Trainer steps (1,875 x 32, the
//              step loop above) on the same model: images/s of each, medians and their ratio.
//   infer b1   model.predict(one image): median of 1000 calls (after reserve_inference(256) and
//              50 warm-up calls), each on a different test image.
//   infer b256 model.predict(256 images): median of 20 calls, as images/s.
//   kernels    median of repeated calls (at least 10, about 0.3 s each), GFLOP/s = 2 M N K / t.
//              conv forward/backward time the bound layer Model::layer<0> on a batch of 32 (as
//              the model calls it: forward with the fused ReLU, backward without an input
//              gradient since layer 0 has none), so im2col and the bias/weight-gradient sums are
//              included; its OpenBLAS yardstick is the bare im2col GEMM on all 32 samples.
//              adam: one opt.step() over the whole parameter arena; GB/s counts 7 arena-sized
//              streams (reads w, g, m, v; writes w, m, v).
// The human-readable lines come first; the last line is one JSON object with every figure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <ctnn/ctnn.hpp>

#ifdef CTNN_BENCH_OPENBLAS
#include <cblas.h>
#endif

using Model = ctnn::Sequential<
    ctnn::Input<28, 28, 1>,
    ctnn::Conv2D<32, 3, 3>, ctnn::ReLU,
    ctnn::Flatten,
    ctnn::Dense<128>, ctnn::ReLU,
    ctnn::Dense<10>, ctnn::Softmax>;
static_assert(Model::param_count == 2'770'634, "the seed model has Keras's parameter count");

namespace {

using Clock = std::chrono::steady_clock;
using ctnn::kernels::Epilogue;

constexpr std::size_t kBatch = 32;       // the seed model's batch size
constexpr std::size_t kFlat = 26 * 26 * 32;  // 21632: Conv2D's output, Dense<128>'s K

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

// Median seconds of one call of f: 3 warm-up calls, then at least 10 timed calls and as many as
// fit in about `budget` seconds (at most 1000).
template <class F>
double median_seconds(F&& f, double budget = 0.3) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 10 || (t.size() < 1000 && seconds_since(start) < budget)) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// One kernel figure: its shape, ctnn's GFLOP/s and (when built with it) OpenBLAS's.
struct KernelFigure {
  std::string name, what;
  std::size_t m = 0, n = 0, k = 0;
  double ctnn_gflops = 0, openblas_gflops = -1;
};

#ifdef CTNN_BENCH_OPENBLAS
// OpenBLAS after ctnn's kernels, never interleaved: both libraries' idle threads spin for a while
// after a call and would steal the other's cores.
double openblas_gflops(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, std::size_t m, std::size_t n,
                       std::size_t k, const float* a, std::size_t lda, const float* b,
                       std::size_t ldb, float* c, std::size_t ldc) {
  const double s = median_seconds([&] {
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), 0.0f,
                c, int(ldc));
  });
  return 2.0 * double(m) * double(n) * double(k) / s * 1e-9;
}
#endif

}  // namespace

int main(int argc, char** argv) try {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int threads = 0;
  std::size_t windows = 5, steps = 300, fit_epochs = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ctnn::Error("Option " + a + " needs a value.");
      return argv[++i];
    };
    if (a == "--threads") threads = std::stoi(next());
    else if (a == "--data") dir = next();
    else if (a == "--windows") windows = std::stoul(next());
    else if (a == "--steps") steps = std::stoul(next());
    else if (a == "--fit-epochs") fit_epochs = std::stoul(next());
    else if (a == "--quick") windows = 3, steps = 50, fit_epochs = 1;
    else throw ctnn::Error("Unknown option " + a + " (use --threads, --data, --windows, --steps, --fit-epochs, --quick).");
  }
  if (threads > 0) ctnn::set_num_threads(threads);
  threads = ctnn::max_threads();

  const auto train = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz",
                                          dir + "/train-labels-idx1-ubyte.gz");
  const auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                         dir + "/t10k-labels-idx1-ubyte.gz");
  std::printf("ctnn seed_bench: Highway target %s, %d threads, %zu training / %zu test images\n",
              ctnn::simd_target(), threads, train.size(), test.size());

  // ---- (a) training throughput: the Trainer step, as fit() runs it ----
  Model model{42};
  ctnn::Adam opt{1e-3f};
  ctnn::Trainer<Model, ctnn::Adam, ctnn::SparseCategoricalCrossEntropy> trainer(model, opt, {}, kBatch);
  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::size_t pos = 0;
  double loss_sum = 0, correct = 0, seen = 0;
  const auto one_step = [&] {
    if (pos + kBatch > order.size()) pos = 0;
    trainer.load_batch(train, std::span<const std::size_t>(order.data() + pos, kBatch));
    pos += kBatch;
    const ctnn::StepStats s = trainer.step(kBatch);
    loss_sum += s.loss_sum;
    correct += s.correct;
    seen += double(s.samples);
  };
  for (int i = 0; i < 50; ++i) one_step();
  std::vector<double> train_ips, separate_ips;
  for (std::size_t w = 0; w < 2 * windows; ++w) {
    const bool fused = w % 2 == 0;
    trainer.set_fused_update(fused);
    loss_sum = correct = seen = 0;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) one_step();
    (fused ? train_ips : separate_ips).push_back(double(steps * kBatch) / seconds_since(t0));
  }
  trainer.set_fused_update(true);
  const double train_med = median(train_ips), separate_med = median(separate_ips);
  const double last_loss = loss_sum / seen, last_acc = correct / seen;
  std::string windows_str;
  for (double v : train_ips) windows_str += (windows_str.empty() ? "" : " ") + fmt("%.0f", v);
  std::printf("train: %.0f images/s (median of %zu windows of %zu steps: %s); last window loss %.4f "
              "accuracy %.4f\n", train_med, windows, steps, windows_str.c_str(), last_loss, last_acc);
  std::string separate_str;
  for (double v : separate_ips) separate_str += (separate_str.empty() ? "" : " ") + fmt("%.0f", v);
  std::printf("train, Adam as a separate pass: %.0f images/s (interleaved windows: %s); fused / "
              "separate %.3f\n", separate_med, separate_str.c_str(), train_med / separate_med);

  // ---- (a2) whole fit() epochs beside epoch-sized step loops ----
  std::vector<double> fit_ips, loop_ips;
  for (std::size_t e = 0; e < fit_epochs; ++e) {
    ctnn::FitOptions fo;
    fo.epochs = 1;
    fo.batch_size = kBatch;
    fo.seed = 100 + e;
    auto t0 = Clock::now();
    ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train, fo);
    fit_ips.push_back(double(train.size()) / seconds_since(t0));
    const std::size_t epoch_steps = train.size() / kBatch;
    t0 = Clock::now();
    for (std::size_t i = 0; i < epoch_steps; ++i) one_step();
    loop_ips.push_back(double(epoch_steps * kBatch) / seconds_since(t0));
  }
  const double fit_med = fit_epochs ? median(fit_ips) : 0, loop_med = fit_epochs ? median(loop_ips) : 0;
  std::string fit_str, loop_str;
  for (double v : fit_ips) fit_str += (fit_str.empty() ? "" : " ") + fmt("%.0f", v);
  for (double v : loop_ips) loop_str += (loop_str.empty() ? "" : " ") + fmt("%.0f", v);
  if (fit_epochs)
    std::printf("fit: %.0f images/s (median of %zu whole epochs: %s; %.2f s per epoch); epoch-sized "
                "step loops between them %.0f (%s); fit / loop %.3f\n", fit_med, fit_epochs,
                fit_str.c_str(), double(train.size()) / fit_med, loop_med, loop_str.c_str(),
                fit_med / loop_med);

  // ---- (b) batch-1 latency and (c) batch-256 throughput: model.predict ----
  model.reserve_inference(256);
  const auto one = [&](std::size_t i) {
    return std::span<const float>(test.sample(i % test.size()), Model::input_size);
  };
  volatile float sink = 0;
  for (std::size_t i = 0; i < 50; ++i) sink = sink + model.predict(one(i))[0];
  std::vector<double> lat;
  for (std::size_t i = 0; i < 1000; ++i) {
    const auto t0 = Clock::now();
    const auto p = model.predict(one(i));
    lat.push_back(seconds_since(t0));
    sink = sink + p[0];
  }
  const double b1_us = median(lat) * 1e6;
  std::vector<double> lat_sorted = lat;
  std::sort(lat_sorted.begin(), lat_sorted.end());
  const double b1_p90_us = lat_sorted[lat_sorted.size() * 9 / 10] * 1e6;
  std::printf("infer batch 1: median %.1f us, p90 %.1f us (1000 calls)\n", b1_us, b1_p90_us);

  std::vector<float> out256(256 * Model::output_size);
  const std::span<const float> in256(test.sample(0), 256 * Model::input_size);
  model.predict(in256, out256);
  std::vector<double> b256;
  for (int r = 0; r < 20; ++r) {
    const auto t0 = Clock::now();
    model.predict(in256, out256);
    b256.push_back(seconds_since(t0));
  }
  const double b256_ips = 256.0 / median(b256);
  std::printf("infer batch 256: %.0f images/s (median of 20)\n", b256_ips);

  // ---- (d) kernels at the seed shapes ----
  std::vector<KernelFigure> kf;
  const auto gflops = [](std::size_t m, std::size_t n, std::size_t k, double s) {
    return 2.0 * double(m) * double(n) * double(k) / s * 1e-9;
  };
  // Dense<128>: X [32 x 21632], W [128 x 21632], b [128], dY [32 x 128].
  const auto X = random_floats(kBatch * kFlat, 1), W = random_floats(128 * kFlat, 2);
  const auto b = random_floats(128, 3), dY = random_floats(kBatch * 128, 4);
  std::vector<float> Y(kBatch * 128), dX(kBatch * kFlat), dW(128 * kFlat);
  // Dense<10>: H [32 x 128], W2 [10 x 128], b2 [10], dY2 [32 x 10].
  const auto H = random_floats(kBatch * 128, 5), W2 = random_floats(10 * 128, 6);
  const auto b2 = random_floats(10, 7), dY2 = random_floats(kBatch * 10, 8);
  std::vector<float> Y2(kBatch * 10), dH(kBatch * 128), dW2(10 * 128);
  ctnn::AlignedBuffer<float> acc(ctnn::kernels::gemm_nt_scratch<float>(kBatch, 128));
  const auto add = [&](const char* name, const char* what, std::size_t m, std::size_t n,
                       std::size_t k, auto&& f) {
    kf.push_back({name, what, m, n, k, gflops(m, n, k, median_seconds(f)), -1});
  };
  add("dense1_fwd", "gemm_nt(32,128,21632) + bias + relu", kBatch, 128, kFlat, [&] {
    ctnn::kernels::gemm_nt(kBatch, 128, kFlat, X.data(), kFlat, W.data(), kFlat, Y.data(), 128,
                           b.data(), Epilogue::relu, acc.data());
  });
  add("dense1_bwd_dx", "gemm_nn(32,21632,128) dY W", kBatch, kFlat, 128, [&] {
    ctnn::kernels::gemm_nn(kBatch, kFlat, 128, dY.data(), 128, 1, W.data(), kFlat, dX.data(), kFlat,
                           false, static_cast<const float*>(nullptr), Epilogue::none);
  });
  add("dense1_bwd_dw", "gemm_nn(128,21632,32) dY^T X", 128, kFlat, kBatch, [&] {
    ctnn::kernels::gemm_nn(128, kFlat, kBatch, dY.data(), 1, 128, X.data(), kFlat, dW.data(), kFlat,
                           false, static_cast<const float*>(nullptr), Epilogue::none);
  });
  add("dense1_fwd_b1", "gemm_nt(1,128,21632) + bias + relu (batch-1 inference)", 1, 128, kFlat, [&] {
    ctnn::kernels::gemm_nt(std::size_t{1}, 128, kFlat, X.data(), kFlat, W.data(), kFlat, Y.data(),
                           128, b.data(), Epilogue::relu, acc.data());
  });
  add("dense2_fwd", "gemm_nt(32,10,128) + bias", kBatch, 10, 128, [&] {
    ctnn::kernels::gemm_nt(kBatch, 10, 128, H.data(), 128, W2.data(), 128, Y2.data(), 10, b2.data(),
                           Epilogue::none, acc.data());
  });
  add("dense2_bwd_dx", "gemm_nn(32,128,10) dY W", kBatch, 128, 10, [&] {
    ctnn::kernels::gemm_nn(kBatch, 128, 10, dY2.data(), 10, 1, W2.data(), 128, dH.data(), 128, false,
                           static_cast<const float*>(nullptr), Epilogue::none);
  });
  add("dense2_bwd_dw", "gemm_nn(10,128,32) dY^T H", 10, 128, kBatch, [&] {
    ctnn::kernels::gemm_nn(10, 128, kBatch, dY2.data(), 1, 10, H.data(), 128, dW2.data(), 128, false,
                           static_cast<const float*>(nullptr), Epilogue::none);
  });

  // Conv2D<32, 3, 3> as bound in the model, on a batch of 32 training images. Its GEMM per
  // sample is [676 x 9] x [9 x 32], so a batch is M = 32 * 676 = 21632, N = 32, K = 9.
  using Conv = Model::layer<0>;
  constexpr std::size_t kPos = Conv::positions, kPatch = Conv::patch;
  ctnn::AlignedBuffer<float> cx(kBatch * Conv::input_shape::size),
      cy(kBatch * Conv::output_shape::size), cdy(kBatch * Conv::output_shape::size),
      cscratch(kBatch * Conv::scratch_per_sample), cdp(Conv::param_count);
  std::copy(train.sample(0), train.sample(0) + kBatch * Conv::input_shape::size, cx.data());
  {
    const auto g = random_floats(cdy.size(), 9);
    std::copy(g.begin(), g.end(), cdy.data());
  }
  const float* cp = model.parameters().data() + Model::param_offset<0>;
  const ctnn::PassContext train_ctx{true, 0};
  add("conv_fwd", "Conv2D layer forward, batch 32 (im2col + GEMM + bias + relu)", kBatch * kPos,
      32, kPatch, [&] {
        Conv::forward(cp, cx.data(), cy.data(), kBatch, cscratch.data(), train_ctx, Epilogue::relu);
      });
  add("conv_bwd", "Conv2D layer backward, batch 32 (dW, db; no dx at layer 0)", kBatch * kPos, 32,
      kPatch, [&] {
        Conv::backward(cp, cx.data(), cy.data(), cdy.data(), nullptr, cdp.data(), kBatch,
                       cscratch.data(), train_ctx);
      });

  // Adam over the whole arena: 7 streams of arena_size floats.
  std::vector<float> adam_w(model.parameters().begin(), model.parameters().end());
  const auto adam_g = random_floats(Model::arena_size, 10);
  ctnn::Adam adam{1e-3f};
  const double adam_s = median_seconds([&] {
    adam.step(std::span<float>(adam_w), std::span<const float>(adam_g));
  });
  const double adam_gbps = 7.0 * double(Model::arena_size) * sizeof(float) / adam_s * 1e-9;

  // ---- OpenBLAS yardstick, after all of ctnn's timings ----
  std::string openblas_core = "none";
#ifdef CTNN_BENCH_OPENBLAS
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let OpenMP's spinning threads sleep
  openblas_set_num_threads(threads);
  openblas_core = openblas_get_corename();
  // The im2col patches of the 32 samples as one [21632 x 9] matrix (the conv GEMM's A).
  const auto P = random_floats(kBatch * kPos * kPatch, 11), Wc = random_floats(kPatch * 32, 12);
  const auto dYc = random_floats(kBatch * kPos * 32, 13);
  std::vector<float> Yc(kBatch * kPos * 32), dWc(kPatch * 32);
  for (auto& f : kf) {
    const auto N = CblasNoTrans, T = CblasTrans;
    if (f.name == "dense1_fwd")
      f.openblas_gflops = openblas_gflops(N, T, kBatch, 128, kFlat, X.data(), kFlat, W.data(), kFlat, Y.data(), 128);
    else if (f.name == "dense1_bwd_dx")
      f.openblas_gflops = openblas_gflops(N, N, kBatch, kFlat, 128, dY.data(), 128, W.data(), kFlat, dX.data(), kFlat);
    else if (f.name == "dense1_bwd_dw")
      f.openblas_gflops = openblas_gflops(T, N, 128, kFlat, kBatch, dY.data(), 128, X.data(), kFlat, dW.data(), kFlat);
    else if (f.name == "dense1_fwd_b1")
      f.openblas_gflops = openblas_gflops(N, T, 1, 128, kFlat, X.data(), kFlat, W.data(), kFlat, Y.data(), 128);
    else if (f.name == "dense2_fwd")
      f.openblas_gflops = openblas_gflops(N, T, kBatch, 10, 128, H.data(), 128, W2.data(), 128, Y2.data(), 10);
    else if (f.name == "dense2_bwd_dx")
      f.openblas_gflops = openblas_gflops(N, N, kBatch, 128, 10, dY2.data(), 10, W2.data(), 128, dH.data(), 128);
    else if (f.name == "dense2_bwd_dw")
      f.openblas_gflops = openblas_gflops(T, N, 10, 128, kBatch, dY2.data(), 10, H.data(), 128, dW2.data(), 128);
    else if (f.name == "conv_fwd")  // Y [21632 x 32] = P [21632 x 9] Wc [9 x 32]
      f.openblas_gflops = openblas_gflops(N, N, kBatch * kPos, 32, kPatch, P.data(), kPatch, Wc.data(), 32, Yc.data(), 32);
    else if (f.name == "conv_bwd")  // dWc [9 x 32] = P^T [9 x 21632] dYc [21632 x 32]
      f.openblas_gflops = openblas_gflops(T, N, kPatch, 32, kBatch * kPos, P.data(), kPatch, dYc.data(), 32, dWc.data(), 32);
  }
#endif

  std::printf("kernels (GFLOP/s, median; OpenBLAS %s, %d threads):\n", openblas_core.c_str(), threads);
  for (const auto& f : kf) {
    std::printf("  %-14s M=%-6zu N=%-6zu K=%-6zu ctnn %7.1f", f.name.c_str(), f.m, f.n, f.k,
                f.ctnn_gflops);
    if (f.openblas_gflops >= 0)
      std::printf("  openblas %7.1f  ratio %.2f", f.openblas_gflops, f.ctnn_gflops / f.openblas_gflops);
    std::printf("  [%s]\n", f.what.c_str());
  }
  std::printf("  adam           %zu floats: %.1f us, %.1f GB/s (7 streams)\n", Model::arena_size,
              adam_s * 1e6, adam_gbps);

  // ---- the JSON line ----
  std::string j = "{\"bench\": \"ctnn seed_bench\", \"simd_target\": \"" +
                  std::string(ctnn::simd_target()) + "\", \"threads\": " + std::to_string(threads) +
                  ", \"openblas_core\": \"" + openblas_core + "\"" +
                  ", \"train_images_per_s\": " + fmt("%.1f", train_med) +
                  ", \"train_windows_images_per_s\": [";
  for (std::size_t i = 0; i < train_ips.size(); ++i) j += (i ? ", " : "") + fmt("%.1f", train_ips[i]);
  j += "], \"train_separate_update_images_per_s\": " + fmt("%.1f", separate_med) +
       ", \"train_separate_update_windows_images_per_s\": [";
  for (std::size_t i = 0; i < separate_ips.size(); ++i) j += (i ? ", " : "") + fmt("%.1f", separate_ips[i]);
  j += "], \"fit_epoch_images_per_s\": [";
  for (std::size_t i = 0; i < fit_ips.size(); ++i) j += (i ? ", " : "") + fmt("%.1f", fit_ips[i]);
  j += "], \"epoch_loop_images_per_s\": [";
  for (std::size_t i = 0; i < loop_ips.size(); ++i) j += (i ? ", " : "") + fmt("%.1f", loop_ips[i]);
  j += "], \"fit_images_per_s\": " + fmt("%.1f", fit_med) + ", \"epoch_loop_images_per_s_median\": " +
       fmt("%.1f", loop_med) + ", \"train_steps_per_window\": " + std::to_string(steps) +
       ", \"train_last_window_loss\": " + fmt("%.4f", last_loss) +
       ", \"train_last_window_accuracy\": " + fmt("%.4f", last_acc) +
       ", \"infer_b1_median_us\": " + fmt("%.1f", b1_us) +
       ", \"infer_b1_p90_us\": " + fmt("%.1f", b1_p90_us) +
       ", \"infer_b256_images_per_s\": " + fmt("%.1f", b256_ips) + ", \"kernels\": {";
  for (std::size_t i = 0; i < kf.size(); ++i) {
    const auto& f = kf[i];
    j += (i ? ", \"" : "\"") + f.name + "\": {\"m\": " + std::to_string(f.m) +
         ", \"n\": " + std::to_string(f.n) + ", \"k\": " + std::to_string(f.k) +
         ", \"ctnn_gflops\": " + fmt("%.2f", f.ctnn_gflops) +
         ", \"openblas_gflops\": " + (f.openblas_gflops >= 0 ? fmt("%.2f", f.openblas_gflops) : "null") + "}";
  }
  j += "}, \"adam_us\": " + fmt("%.1f", adam_s * 1e6) + ", \"adam_gbps\": " + fmt("%.2f", adam_gbps) +
       ", \"arena_floats\": " + std::to_string(Model::arena_size) + "}";
  std::printf("%s\n", j.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
