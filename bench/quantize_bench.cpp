// quantize_bench: the seed model (Conv2D(32, 3x3, relu) -> Flatten -> Dense(128, relu) ->
// Dense(10, softmax)) in fp32, stored as fp16 / bf16 (loaded back to fp32), and quantized to int8,
// on real Fashion-MNIST: parameter bytes, accuracy on all 10,000 test images, batch-1 latency and
// batch-256 throughput.
//
//   quantize_bench [--model FILE] [--data DIR] [--threads N] [--calibration N] [--percentile P]
//
// --model loads a trained seed model (ctnn model file); without it, /tmp/fm/seed.ctnn is used if
// it exists, else the model is trained for 1 epoch on the 60,000 training images (Adam, batch 32).
// Calibration uses the first N training images (default 1,000). Timings are medians:
//   batch 1    predict(one image): 1,000 calls, each on a different test image, after 50 warm-ups
//   batch 256  predict(256 images): 20 calls, as images/s
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/half.hpp>
#include <ctnn/deploy/quantize.hpp>

using Model = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU,
                               ctnn::Flatten, ctnn::Dense<128>, ctnn::ReLU, ctnn::Dense<10>,
                               ctnn::Softmax>;
static_assert(Model::param_count == 2'770'634, "the seed model has Keras's parameter count");

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  std::string name;
  std::size_t bytes;
  double accuracy, b1_us, b256_ips;
};

// Accuracy on `test`, batch-1 median latency and batch-256 throughput of any model with predict.
template <class M>
Row measure(const std::string& name, std::size_t bytes, M& model, const ctnn::data::Dataset& test) {
  const std::size_t n = test.size();
  std::vector<float> out(n * 10);
  model.predict(test.x, out);
  std::size_t right = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = out.data() + i * 10;
    right += std::size_t(std::max_element(p, p + 10) - p) == std::size_t(test.labels[i]);
  }
  std::vector<double> lat;
  for (std::size_t i = 0; i < 1050; ++i) {
    const auto t0 = Clock::now();
    const auto y = model.predict(std::span<const float>(test.sample(i % n), 784));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (y[0] < -1.0f) std::printf("impossible\n");  // keeps the call
    if (i >= 50) lat.push_back(s);
  }
  std::vector<double> thr;
  std::vector<float> out256(256 * 10);
  const std::span<const float> batch(test.x.data(), 256 * 784);
  model.predict(batch, out256);
  for (int r = 0; r < 20; ++r) {
    const auto t0 = Clock::now();
    model.predict(batch, out256);
    thr.push_back(256.0 / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return {name, bytes, double(right) / double(n), median(lat) * 1e6, median(thr)};
}

}  // namespace

int main(int argc, char** argv) try {
  std::string model_path, data_dir = "/usr/share/datasets/fashion-mnist";
  std::size_t calibration = 1000;
  double percentile = 100.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) ctnn::fail("quantize_bench: ", a, " needs a value.");
      return argv[++i];
    };
    if (a == "--model") model_path = value();
    else if (a == "--data") data_dir = value();
    else if (a == "--threads") ctnn::set_num_threads(std::stoi(value()));
    else if (a == "--calibration") calibration = std::stoul(value());
    else if (a == "--percentile") percentile = std::stod(value());
    else ctnn::fail("quantize_bench: unknown option ", a, ".");
  }
  if (model_path.empty() && std::filesystem::exists("/tmp/fm/seed.ctnn")) model_path = "/tmp/fm/seed.ctnn";

  const auto train = ctnn::data::load_idx(data_dir + "/train-images-idx3-ubyte.gz",
                                          data_dir + "/train-labels-idx1-ubyte.gz");
  const auto test = ctnn::data::load_idx(data_dir + "/t10k-images-idx3-ubyte.gz",
                                         data_dir + "/t10k-labels-idx1-ubyte.gz");
  Model model(42);
  if (!model_path.empty()) {
    ctnn::load(model_path, model);
    std::printf("model: %s (%ju bytes on disk)\n", model_path.c_str(),
                std::uintmax_t(std::filesystem::file_size(model_path)));
  } else {
    std::printf("model: trained here, 1 epoch on %zu images\n", train.size());
    ctnn::Adam opt(1e-3f);
    ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, train, {.epochs = 1, .verbose = 0});
  }
  std::printf("Highway target %s, %d threads; test images %zu; calibration: first %zu training "
              "images, percentile %g\n",
              ctnn::simd_target(), ctnn::max_threads(), test.size(), calibration, percentile);

  model.reserve_inference(256);
  std::vector<Row> rows;
  rows.push_back(measure("fp32", Model::param_count * 4, model, test));

  for (auto format : {ctnn::HalfFormat::fp16, ctnn::HalfFormat::bf16}) {
    Model copy(0);
    ctnn::set_half_parameters(copy, ctnn::half_parameters(model, format), format);
    copy.reserve_inference(256);
    rows.push_back(measure(format == ctnn::HalfFormat::fp16 ? "fp16 stored (fp32 compute)"
                                                            : "bf16 stored (fp32 compute)",
                           ctnn::half_parameter_bytes<Model>, copy, test));
  }

  const std::span<const float> calib(train.x.data(), std::min(calibration, train.size()) * 784);
  const auto t0 = Clock::now();
  auto q = ctnn::quantize(model, calib, {.percentile = percentile});
  const double quantize_s = std::chrono::duration<double>(Clock::now() - t0).count();
  q.reserve(256);
  using Q = ctnn::QuantizedModel<Model>;
  rows.push_back(measure("int8", Q::parameter_bytes, q, test));
  std::printf("int8: %zu weight bytes + %zu scale bytes + %zu bias bytes; quantized in %.2f s\n\n",
              Q::weight_bytes, Q::scale_bytes, Q::bias_bytes, quantize_s);

  std::printf("| %-26s | %12s | %8s | %14s | %18s |\n", "weights", "bytes", "accuracy",
              "batch 1 (us)", "batch 256 (img/s)");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(), std::string(14, '-').c_str(),
              std::string(10, '-').c_str(), std::string(16, '-').c_str(),
              std::string(20, '-').c_str());
  for (const auto& r : rows)
    std::printf("| %-26s | %12zu | %8.4f | %14.1f | %18.0f |\n", r.name.c_str(), r.bytes,
                r.accuracy, r.b1_us, r.b256_ips);
  const double drop = (rows.front().accuracy - rows.back().accuracy) * 100.0;
  std::printf("\nint8 accuracy change: %+.2f points (the bar: at most 1 point lost)\n", -drop);
  // The last line: one JSON object (bench/run.sh reads it).
  std::string j = "{\"bench\": \"ctnn quantize_bench\", \"threads\": " + std::to_string(ctnn::max_threads()) +
                  ", \"int8_weight_bytes\": " + std::to_string(Q::weight_bytes) + ", \"rows\": {";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s\"%s\": {\"bytes\": %zu, \"accuracy\": %.4f, \"b1_us\": %.2f, "
                  "\"b256_images_per_s\": %.1f}", i ? ", " : "", rows[i].name.substr(0, 4).c_str(),
                  rows[i].bytes, rows[i].accuracy, rows[i].b1_us, rows[i].b256_ips);
    j += buf;
  }
  std::printf("%s}}\n", j.c_str());
  return drop <= 1.0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "quantize_bench: %s\n", e.what());
  return 2;
}
