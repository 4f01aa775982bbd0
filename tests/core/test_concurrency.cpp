// Concurrent inference on one shared model: 8 std::threads (4 under ThreadSanitizer), each
// running batches of 1, 2, 7, 32, 255, 256, 257 and 600 real Fashion-MNIST test images (in a
// different order on every thread, so thread-local buffers grow while other threads run) and
// single-sample calls, through one Sequential, one QuantizedModel and one Monitored. Every output must equal, bit for bit, what the
// same call gave when run alone beforehand; every Monitored counter must equal a serial monitor's.
// (Before inference buffers became per caller, the shared workspace made this crash in
// Workspace::reserve or return other threads' outputs.)
//
// ThreadSanitizer: labelled `tsan` in CTest. libgomp is not instrumented, so its team barriers
// look like races to TSan; under -fsanitize=thread every thread here therefore sets ctnn's thread
// count to 1 (set_num_threads is per calling thread) and the kernels run without OpenMP regions.
// The OpenMP path from several std::threads is covered by the ordinary build of this test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/monitor.hpp>
#include <ctnn/deploy/quantize.hpp>

using namespace ctnn;

#if defined(__SANITIZE_THREAD__)
#define CTNN_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTNN_TEST_TSAN 1
#endif
#endif

namespace {

// Small, so the ThreadSanitizer build runs in minutes: about 35,000 multiply-adds a sample.
using Cnn = Sequential<Input<28, 28, 1>, Conv2D<4, 3, 3>, ReLU, MaxPool2D<2>, Flatten, Dense<16>,
                       ReLU, Dense<10>, Softmax>;
// A second type of the same input and output sizes: its thread-local buffers must not be Cnn's.
using Mlp = Sequential<Input<28, 28, 1>, Flatten, Dense<48>, ReLU, Dense<10>, Softmax>;
constexpr std::size_t kD = Cnn::input_size, kOut = Cnn::output_size;

// Under ThreadSanitizer (every access instrumented, 5-15x slower) 4 threads, still all at once.
#ifdef CTNN_TEST_TSAN
constexpr unsigned kThreads = 4;
#else
constexpr unsigned kThreads = 8;
#endif
constexpr std::size_t kBatches[] = {1, 2, 7, 32, 255, 256, 257, 600};
constexpr std::size_t kSingles = 40;  // single-sample calls per thread, between the batches
constexpr std::size_t kImages = 1000;

// Called first on every thread that predicts (see the top of the file).
void thread_setup() {
#ifdef CTNN_TEST_TSAN
  set_num_threads(1);
#endif
}

const data::Dataset& images() {
  static const data::Dataset d = [] {
    const std::string dir = CTNN_FASHION_MNIST_DIR;
    return data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz",
                          {.limit = kImages});
  }();
  return d;
}

// One call: `size` samples from `offset` (size 0: a single-sample predict of sample `offset`).
struct Job {
  std::size_t offset, size;
};

// Thread t's calls: every batch size, rotated by t so the threads grow their buffers at different
// moments, each batch followed by single-sample calls.
std::vector<Job> jobs_of(unsigned t) {
  std::vector<Job> jobs;
  constexpr std::size_t n = std::size(kBatches);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t b = kBatches[(k + t) % n];
    jobs.push_back({(t * 97 + k * 31) % (kImages - b + 1), b});
    for (std::size_t s = 0; s < kSingles / n; ++s) jobs.push_back({(t * 131 + k * 17 + s) % kImages, 0});
  }
  return jobs;
}

std::span<const float> input_of(const Job& j) {
  return {images().sample(j.offset), std::max<std::size_t>(j.size, 1) * kD};
}

// Runs every thread's jobs through `call(thread, job, out)` on kThreads threads at once and checks
// each output against `expected[t][job]` bit for bit; returns the number of mismatching calls.
template <class Call>
std::size_t run_concurrently(const std::vector<std::vector<std::vector<float>>>& expected,
                             Call call) {
  std::vector<std::size_t> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      thread_setup();
      const auto jobs = jobs_of(t);
      std::vector<float> out;
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        out.assign(std::max<std::size_t>(jobs[i].size, 1) * kOut, -1.0f);
        call(t, jobs[i], out);
        if (std::memcmp(out.data(), expected[t][i].data(), out.size() * sizeof(float)) != 0)
          ++wrong[t];
      }
    });
  for (auto& th : threads) th.join();
  std::size_t total = 0;
  for (std::size_t w : wrong) total += w;
  return total;
}

// The outputs of every thread's jobs, computed one call at a time on this thread.
template <class Call>
std::vector<std::vector<std::vector<float>>> serially(Call call) {
  std::vector<std::vector<std::vector<float>>> expected(kThreads);
  for (unsigned t = 0; t < kThreads; ++t)
    for (const Job& j : jobs_of(t)) {
      std::vector<float> out(std::max<std::size_t>(j.size, 1) * kOut, -1.0f);
      call(t, j, out);
      expected[t].push_back(std::move(out));
    }
  return expected;
}

// A job through a model's convenience overloads (the calling thread's context).
template <class M>
void predict_job(const M& m, const Job& j, std::vector<float>& out) {
  if (j.size == 0) {
    const auto y = m.predict(input_of(j));
    std::copy(y.begin(), y.end(), out.begin());
    // predict_class agrees with the outputs it was computed from.
    if (m.predict_class(input_of(j)) != std::size_t(std::max_element(y.begin(), y.end()) - y.begin()))
      out[0] = NAN;
  } else {
    m.predict(input_of(j), std::span<float>(out));
  }
}

}  // namespace

TEST_CASE("Sequential::predict from many threads on one model gives the serial results bit for bit") {
  thread_setup();
  const Cnn model(7);
  const auto call = [&](unsigned, const Job& j, std::vector<float>& out) { predict_job(model, j, out); };
  const auto expected = serially(call);
  CHECK(run_concurrently(expected, call) == 0);
  // The threads really computed something: the expected outputs are probabilities, not the fill.
  CHECK(expected[0][0][0] >= 0.0f);
  CHECK(std::abs(std::accumulate(expected[3][0].begin(), expected[3][0].begin() + kOut, 0.0f) - 1.0f) < 1e-5f);
}

TEST_CASE("Explicit inference contexts: one per thread, shareable across models of a type") {
  thread_setup();
  const Cnn a(7), b(8);
  const auto call = [&](unsigned t, const Job& j, std::vector<float>& out) {
    const Cnn& m = t % 2 ? a : b;
    if (j.size == 0) {
      const auto y = m.predict(input_of(j));
      std::copy(y.begin(), y.end(), out.begin());
    } else {
      m.predict(input_of(j), std::span<float>(out));
    }
  };
  const auto expected = serially(call);
  // Each thread owns one context and runs both models with it (it borrows nothing from a model).
  std::vector<std::size_t> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      thread_setup();
      auto ctx = Cnn::make_context();
      InferenceContext<Cnn> sized(300);  // the alias, sized up front
      const auto jobs = jobs_of(t);
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        const Job& j = jobs[i];
        const Cnn& m = t % 2 ? a : b;
        const Cnn& other = t % 2 ? b : a;
        auto& c = i % 3 == 0 ? sized : ctx;
        std::vector<float> out(std::max<std::size_t>(j.size, 1) * kOut, -1.0f);
        if (j.size == 0) {
          const auto y = m.predict(c, input_of(j));
          std::copy(y.begin(), y.end(), out.begin());
          if (m.predict_class(c, input_of(j)) !=
              std::size_t(std::max_element(y.begin(), y.end()) - y.begin()))
            ++wrong[t];
        } else {
          m.predict(c, input_of(j), std::span<float>(out));
        }
        if (std::memcmp(out.data(), expected[t][i].data(), out.size() * sizeof(float)) != 0)
          ++wrong[t];
        // The other model through the same context in between must not disturb the next call.
        (void)other.predict(c, std::span<const float>(images().sample(i % kImages), kD));
      }
      // A context holds at most one chunk: `sized` asked for more; `ctx` grew as its batches did.
      if (sized.capacity() != Cnn::kInferenceChunk || ctx.capacity() == 0 ||
          ctx.capacity() > Cnn::kInferenceChunk)
        ++wrong[t];
    });
  for (auto& th : threads) th.join();
  for (unsigned t = 0; t < kThreads; ++t) CHECK(wrong[t] == 0);
}

TEST_CASE("Two model types predicting on the same threads keep separate thread-local buffers") {
  thread_setup();
  const Cnn cnn(3);
  const Mlp mlp(4);
  const auto call = [&](unsigned t, const Job& j, std::vector<float>& out) {
    // Alternate the types job by job (by the job's offset, so serial and concurrent agree).
    if ((j.offset + t) % 2) predict_job(cnn, j, out);
    else predict_job(mlp, j, out);
  };
  const auto expected = serially(call);
  CHECK(run_concurrently(expected, call) == 0);
  CHECK(static_cast<const void*>(&Cnn::thread_context()) !=
        static_cast<const void*>(&Mlp::thread_context()));
}

TEST_CASE("QuantizedModel::predict from many threads on one model gives the serial results bit for bit") {
  thread_setup();
  const Cnn model(7);
  const auto calibration = std::span<const float>(images().x).first(256 * kD);
  const QuantizedModel<Cnn> q = quantize(model, calibration);
  const auto call = [&](unsigned, const Job& j, std::vector<float>& out) { predict_job(q, j, out); };
  const auto expected = serially(call);
  CHECK(run_concurrently(expected, call) == 0);
  // And with explicit contexts, one per thread.
  std::vector<std::size_t> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      thread_setup();
      auto ctx = q.make_context(7);
      const auto jobs = jobs_of(t);
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        std::vector<float> out(std::max<std::size_t>(jobs[i].size, 1) * kOut, -1.0f);
        if (jobs[i].size == 0) {
          const auto y = q.predict(ctx, input_of(jobs[i]));
          std::copy(y.begin(), y.end(), out.begin());
        } else {
          q.predict(ctx, input_of(jobs[i]), std::span<float>(out));
        }
        if (std::memcmp(out.data(), expected[t][i].data(), out.size() * sizeof(float)) != 0)
          ++wrong[t];
      }
    });
  for (auto& th : threads) th.join();
  for (unsigned t = 0; t < kThreads; ++t) CHECK(wrong[t] == 0);
}

TEST_CASE("One Monitored shared by many threads counts exactly what a serial monitor counts") {
  thread_setup();
  Cnn model(7);
  // The profile from 300 images; a tight margin so the test images give out-of-range counts.
  data::Dataset ref = images();
  ref.x.resize(300 * kD);
  ref.labels.resize(300);
  const ReferenceProfile profile = ReferenceProfile::fit(model, ref);
  const MonitorOptions options{.range_margin = 0.0, .range_max_features = 3};
  // Every job of thread t with a NaN planted in sample 0 of every fifth job's input.
  std::vector<std::vector<std::vector<float>>> inputs(kThreads);
  for (unsigned t = 0; t < kThreads; ++t) {
    const auto jobs = jobs_of(t);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto x = input_of(jobs[i]);
      inputs[t].emplace_back(x.begin(), x.end());
      if (i % 5 == 4) inputs[t].back()[100] = NAN;
    }
  }
  // Serial reference: the same calls on one thread into its own monitor.
  Monitored<Cnn> serial(model, profile, options), shared(model, profile, options);
  std::vector<std::vector<std::vector<float>>> expected(kThreads);
  const auto run_job = [&](Monitored<Cnn>& m, unsigned t, std::size_t i, std::vector<float>& out) {
    const Job j = jobs_of(t)[i];
    const std::span<const float> x(inputs[t][i]);
    out.assign(std::max<std::size_t>(j.size, 1) * kOut, -1.0f);
    if (j.size == 0) {
      const auto p = m.predict(x);
      std::copy(p.outputs.begin(), p.outputs.end(), out.begin());
    } else {
      m.predict(x, std::span<float>(out));
    }
  };
  for (unsigned t = 0; t < kThreads; ++t)
    for (std::size_t i = 0; i < jobs_of(t).size(); ++i) {
      std::vector<float> out;
      run_job(serial, t, i, out);
      expected[t].push_back(std::move(out));
    }
  std::vector<std::size_t> wrong(kThreads, 0);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      thread_setup();
      std::vector<float> out;
      for (std::size_t i = 0; i < jobs_of(t).size(); ++i) {
        run_job(shared, t, i, out);
        // NaN outputs (refused samples) compare equal as bits too: both are quiet_NaN.
        if (std::memcmp(out.data(), expected[t][i].data(), out.size() * sizeof(float)) != 0)
          ++wrong[t];
        if (i % 7 == 0) (void)shared.stats();  // reading while the others write
      }
    });
  for (auto& th : threads) th.join();
  for (unsigned t = 0; t < kThreads; ++t) CHECK(wrong[t] == 0);

  const MonitorStats s = serial.stats(), c = shared.stats();
  CHECK(c.calls == s.calls);
  CHECK(c.batch_calls == s.batch_calls);
  CHECK(c.samples == s.samples);
  CHECK(c.predicted == s.predicted);
  CHECK(c.nonfinite_inputs == s.nonfinite_inputs);
  CHECK(c.nonfinite_outputs == s.nonfinite_outputs);
  CHECK(c.out_of_range_samples == s.out_of_range_samples);
  CHECK(c.out_of_range_values == s.out_of_range_values);
  CHECK(c.feature_out_of_range == s.feature_out_of_range);
  CHECK(c.counted == s.counted);
  CHECK(c.observed == s.observed);
  CHECK(c.psi == s.psi);
  CHECK(c.latency.count == s.latency.count);
  CHECK(c.batch_latency.count == s.batch_latency.count);
  CHECK(c.worst_excess == s.worst_excess);
  // The record's three fields belong together: its value lies that far outside its feature.
  REQUIRE(c.worst_excess_feature.has_value());
  const std::size_t f = *c.worst_excess_feature;
  const double v = c.worst_excess_value;
  CHECK((v < profile.feature_min[f] ? profile.feature_min[f] - v : v - profile.feature_max[f]) ==
        c.worst_excess);
  // The numbers are not trivially equal: the run saw refusals, out-of-range pixels and drift data.
  CHECK(s.nonfinite_inputs > 0);
  CHECK(s.out_of_range_values > 0);
  CHECK(s.counted > 1000);
}
