// dlib peer of bench/cost_bench.cpp: training images/s of the seed CNN or the wider CNN at a
// batch size, measured the same way (Fashion-MNIST in a shuffled order, each batch gathered from
// the dataset inside the timed loop, Adam 1e-3; warm-up steps covering window_images / 4 images
// (at least 5), then W windows of ceil(window_images / batch) steps; images/s per window, median).
// dlib's trainer runs steps on a background thread: each window ends with get_net(), which waits
// for it. dlib cannot express ResNet-8's PyTorch padding here, so it has no resnet8 model.
//
//   g++ -std=c++17 -O3 -march=native dlib_cost.cpp -o /tmp/dlib_cost $(pkg-config --cflags --libs dlib-1) -lz
//   /tmp/dlib_cost seed|wide BATCH [WINDOWS] [WINDOW_IMAGES]
#include <dlib/dnn.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace dlib;
template <long F, typename SUBNET>
using con3 = add_layer<con_<F, 3, 3, 1, 1, 0, 0>, SUBNET>;
using seed_net = loss_multiclass_log<fc<10, relu<fc<128, relu<con3<32, input<matrix<float>>>>>>>>;
using wide_net = loss_multiclass_log<
    fc<10, relu<fc<256, max_pool<2, 2, 2, 2, relu<con3<64, relu<con3<64, input<matrix<float>>>>>>>>>>>;

static std::vector<unsigned char> gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

template <class Net>
int run(const char* name, std::size_t batch, std::size_t windows, std::size_t window_images) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  const auto im = gunzip(dir + "/train-images-idx3-ubyte.gz");
  const auto lb = gunzip(dir + "/train-labels-idx1-ubyte.gz");
  const std::size_t n = 60000;
  std::vector<matrix<float>> x(n);
  std::vector<unsigned long> y(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i].set_size(28, 28);
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) x[i](r, c) = im[16 + i * 784 + r * 28 + c] / 255.0f;
    y[i] = lb[8 + i];
  }
  Net net;
  dnn_trainer<Net, adam> trainer(net, adam(0.0, 0.9, 0.999));
  trainer.set_learning_rate(1e-3);
  trainer.set_min_learning_rate(1e-9);
  trainer.set_mini_batch_size(batch);
  trainer.set_iterations_without_progress_threshold(1000000000);  // lr stays 1e-3
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::size_t pos = 0;
  std::vector<matrix<float>> bx;
  std::vector<unsigned long> by;
  const auto step = [&] {
    if (pos + batch > n) pos = 0;
    bx.clear();
    by.clear();
    for (std::size_t j = pos; j < pos + batch; ++j) {
      bx.push_back(x[order[j]]);
      by.push_back(y[order[j]]);
    }
    pos += batch;
    trainer.train_one_step(bx, by);
  };
  const std::size_t steps = (window_images + batch - 1) / batch;
  const std::size_t warm = std::max<std::size_t>(5, (window_images / 4 + batch - 1) / batch);
  for (std::size_t i = 0; i < warm; ++i) step();
  trainer.get_net();
  std::vector<double> ips;
  for (std::size_t w = 0; w < windows; ++w) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < steps; ++i) step();
    trainer.get_net();  // waits for the background thread's last step
    ips.push_back(double(steps * batch) /
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = ips;
  std::sort(sorted.begin(), sorted.end());
  std::string list;
  for (double v : ips) list += (list.empty() ? "" : ", ") + std::to_string(v);
  const char* bt = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("{\"peer\": \"dlib 19.24\", \"model\": \"%s\", \"batch\": %zu, \"warmup_steps\": %zu, "
              "\"steps_per_window\": %zu, \"windows_images_per_s\": [%s], \"train_images_per_s\": %.1f, "
              "\"openblas_num_threads\": \"%s\"}\n",
              name, batch, warm, steps, list.c_str(), sorted[sorted.size() / 2], bt ? bt : "unset");
  return 0;
}

int main(int argc, char** argv) try {
  const std::string model = argc > 1 ? argv[1] : "seed";
  const std::size_t batch = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 32;
  const std::size_t windows = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 5;
  const std::size_t window_images = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 6400;
  if (batch == 0 || windows == 0 || window_images == 0) throw std::runtime_error("sizes must be >= 1");
  if (model == "seed") return run<seed_net>("seed", batch, windows, window_images);
  if (model == "wide") return run<wide_net>("wide", batch, windows, window_images);
  throw std::runtime_error("unknown model " + model + " (use seed or wide)");
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
