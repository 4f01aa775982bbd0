// The device program of device_test.cmake, one source for two builds:
//   host (CTNN_FULL_TEST): the exported int8 model over all 10,000 Fashion-MNIST test images (read
//     with ctnn's IDX loader), its accuracy checked against CTNN_MIN_ACCURACY, and the first
//     image's outputs against the training host's;
//   Cortex-M4: the exported int8 model and one test image, nothing else: no file system, heap,
//     exceptions or RTTI. Its flash and RAM are read from the image.
// CTNN_RESNET8 chooses ResNet-8 (resnet8_int8.hpp) instead of the device model.
#include <cmath>
#include <cstdio>

#ifdef CTNN_RESNET8
#include "resnet8_case.hpp"
#include "resnet8_int8.hpp"
namespace exported = resnet8_int8;
namespace one_case = resnet8_case;
static constexpr const char* kName = "ResNet-8";
#else
#include "device_model_case.hpp"
#include "device_model_int8.hpp"
namespace exported = device_model_int8;
namespace one_case = device_model_case;
static constexpr const char* kName = "device model";
#endif

#ifdef CTNN_FULL_TEST
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
#ifdef CTNN_FULL_TEST
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
  return diff <= 1e-5f ? 0 : 1;
#endif
}
