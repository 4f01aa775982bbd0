// libFuzzer target for the IDX reader (data/idx.hpp), plain and gzip, through its in-memory
// entry points. Input: a flags byte, a 2-byte little-endian split point, then the image file's
// bytes followed by the label file's.
//   flags bits 0-1  0 images alone, 1 labels alone, 2 or 3 both (load_idx_from_memory)
//   bit 2, bit 3    gzip the image / label part here first (so mutations of the IDX content
//                   also go through inflate; raw gzip bytes in the input are read as they are)
//   bits 4-5        IdxOptions::limit: all, 1, 2 or 0
// A ctnn::Error is an expected outcome; a loaded dataset must be consistent.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>

#include "ctnn/data/idx.hpp"
#include "fuzz_common.hpp"

namespace {

using ctnn_fuzz::bug;
using ctnn_fuzz::Bytes;

void check_images(const ctnn::data::Dataset& d, std::size_t limit) {
  d.check_consistent("IDX images");
  const std::size_t per = std::accumulate(d.sample_shape.begin(), d.sample_shape.end(),
                                          std::size_t{1}, std::multiplies<>());
  if (per == 0 || d.x.size() % per != 0) bug("image bytes are not a whole number of samples");
  if (d.size() == 0 || d.size() > limit) bug("image count is 0 or above the limit");
  for (float v : d.x)
    if (!(v >= 0.0f && v <= 1.0f)) bug("a pixel is outside [0, 1] with the default scale");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::uint8_t flags = data[0];
  const std::span<const std::uint8_t> rest(data + 3, size - 3);
  const std::size_t split = (std::size_t{data[1]} | std::size_t{data[2]} << 8) % (rest.size() + 1);
  Bytes images(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(split));
  Bytes labels(rest.begin() + static_cast<std::ptrdiff_t>(split), rest.end());
  if (flags & 4) images = ctnn_fuzz::gzip(images);
  if (flags & 8) labels = ctnn_fuzz::gzip(labels);
  static constexpr std::size_t kLimits[] = {SIZE_MAX, 1, 2, 0};
  ctnn::data::IdxOptions opts;
  opts.limit = kLimits[(flags >> 4) & 3];

  using namespace ctnn::data;
  try {
    switch (flags & 3) {
      case 0:
        check_images(load_idx_images_from_memory(images, "images", opts), opts.limit);
        break;
      case 1: {
        const std::vector<std::int32_t> l = load_idx_labels_from_memory(labels, "labels", opts.limit);
        if (l.empty() || l.size() > opts.limit) bug("label count is 0 or above the limit");
        for (std::int32_t v : l)
          if (v < 0 || v > 255) bug("a label is outside [0, 255]");
        break;
      }
      default: {
        const Dataset d = load_idx_from_memory(images, "images", labels, "labels", opts);
        check_images(d, opts.limit);
        if (d.labels.size() != d.size()) bug("image and label counts differ");
        if (d.num_classes == 0 || d.num_classes > 256) bug("num_classes outside [1, 256]");
        break;
      }
    }
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
  }
  return 0;
}
