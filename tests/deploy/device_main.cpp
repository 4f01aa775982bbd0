// The device program of device_test.cmake, one source for two builds:
//   host (CTNN_FULL_TEST): the exported int8 model over all 10,000 Fashion-MNIST test images (read
//     with ctnn's IDX loader), its accuracy checked against CTNN_MIN_ACCURACY, and the first
//     image's outputs against the training host's;
//   Cortex-M4: the exported int8 model and one test image, nothing else: no file system, heap,
//     exceptions or RTTI. Its flash and RAM are read from the image.
#include <cmath>
#include <cstdio>

// The model: -DCTNN_MODEL=<name> includes <name>_int8.hpp and <name>_case.hpp (device_tool's
// files); CTNN_CLASSES=0 for a model whose outputs are not class scores (the autoencoder).
#define CTNN_STR2(x) #x
#define CTNN_STR(x) CTNN_STR2(x)
#define CTNN_CAT2(a, b) a##b
#define CTNN_CAT(a, b) CTNN_CAT2(a, b)
#include CTNN_STR(CTNN_CAT(CTNN_MODEL, _int8.hpp))
#include CTNN_STR(CTNN_CAT(CTNN_MODEL, _case.hpp))
namespace exported = CTNN_CAT(CTNN_MODEL, _int8);
namespace one_case = CTNN_CAT(CTNN_MODEL, _case);
static constexpr const char* kName = CTNN_STR(CTNN_MODEL);

#if defined(CTNN_FULL_TEST) && CTNN_CLASSES
#include <ctnn/data/idx.hpp>
#endif

// The model's buffers in .bss, its constants in flash. RAM is this object: the planned buffers
// (StaticQuantizedModel::buffer_bytes, each buffer 64-byte aligned) and the parameter pointers
// (padded to 64 bytes by the alignment of the buffers after them).
static auto net = exported::make();
using Net = decltype(net);
static_assert(sizeof(Net) == Net::buffer_bytes + 64,
              "The deployed model's RAM is its planned buffers plus the parameter pointers.");

int main() {
  using M = exported::Model;
  const float* y = net.predict(one_case::input);
  float diff = 0;
  for (unsigned k = 0; k < M::output_size; ++k)
    diff = std::fmax(diff, std::fabs(y[k] - one_case::expected[k]));
#if defined(CTNN_FULL_TEST) && CTNN_CLASSES
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                         dir + "/t10k-labels-idx1-ubyte.gz");
  std::size_t right = 0;
  for (std::size_t i = 0; i < test.size(); ++i)
    right += net.predict_class(test.sample(i)) == std::size_t(test.labels[i]);
  const double accuracy = double(right) / double(test.size());
  std::printf("exported int8 %s: test accuracy %.4f on %zu images; first image's outputs within "
              "%g of the training host's; %zu bytes of buffers (activation arena %zu), %zu of "
              "parameters\n",
              kName, accuracy, test.size(), double(diff), Net::buffer_bytes,
              ctnn::detail::Int8Forward<M, 16>::plan.arena, Net::weight_bytes);
  // The same classes as the training host's QuantizedModel, up to a few images whose top two
  // outputs are within rounding on another SIMD target.
  const bool same = std::fabs(accuracy - one_case::host_accuracy) <= 0.001;
  if (!same) std::printf("the host's QuantizedModel had %.4f\n", one_case::host_accuracy);
  return diff <= 1e-5f && same && accuracy >= CTNN_MIN_ACCURACY ? 0 : 1;
#else
#ifdef CTNN_FULL_TEST
  std::printf("exported int8 %s: the first image's outputs within %g of the training host's; %zu "
              "bytes of buffers (activation arena %zu), %zu of parameters\n",
              kName, double(diff), Net::buffer_bytes,
              ctnn::detail::Int8Forward<M, 16>::plan.arena, Net::weight_bytes);
#endif
  return diff <= 1e-5f ? 0 : 1;
#endif
}
