// ctnn/data/idx.hpp: loading IDX files (the MNIST / Fashion-MNIST format), plain or gzip.
//
// An IDX file is a 4-byte big-endian magic 0x0000TTDD (TT the element type, DD the number of
// dimensions), DD big-endian uint32 dimension sizes, then the elements in row-major order. ctnn
// reads unsigned-byte files (TT = 0x08): images with 2 or more dimensions (n, d1, d2, ...) and
// labels with 1 dimension (n). gzip.hpp's Reader reads gzip and plain files alike.
//
// Every problem is a ctnn::Error naming the file and the values: missing file, bad magic,
// unsupported element type, a zero dimension, zero samples, truncation, trailing bytes, corrupt
// gzip data, and an image/label count mismatch. Sizes are checked before anything large is
// allocated, so a lying header cannot cause a huge allocation. Two limits, both by design: a read
// with IdxOptions::limit stops after the limit and does not inspect the rest of the file, and
// non-gzip bytes after the end of a gzip stream are skipped by zlib itself.
//
// The *_from_memory functions read IDX bytes already in memory (plain or gzip, same checks),
// a name standing in for the path in messages.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/gzip.hpp"

namespace ctnn::data {

struct IdxOptions {
  float scale = 1.0f / 255.0f;  // pixel byte -> float factor; the default maps [0, 255] to [0, 1]
  std::size_t limit = SIZE_MAX;  // read at most this many samples
};

namespace idx_detail {

inline constexpr std::uint8_t kUbyte = 0x08;
inline constexpr std::uint32_t kImagesMagic = 0x00000803;  // ubyte, 3 dims: n, rows, cols
inline constexpr std::uint32_t kLabelsMagic = 0x00000801;  // ubyte, 1 dim: n

inline std::string hex(std::uint32_t v, int digits = 8) {
  std::ostringstream os;
  os << "0x" << std::hex << std::uppercase << std::setw(digits) << std::setfill('0') << v;
  return os.str();
}

inline const char* type_name(std::uint8_t t) {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

// The IDX file being read; every message calls it "IDX file".
class Reader : public gzip_detail::Reader {
 public:
  explicit Reader(std::string path) : gzip_detail::Reader(std::move(path), "IDX file") {}
  Reader(std::span<const std::uint8_t> bytes, std::string name)
      : gzip_detail::Reader(bytes, std::move(name), "IDX file") {}
};
using gzip_detail::kChunk;
using gzip_detail::kMaxDeflateRatio;

struct Header {
  std::vector<std::size_t> dims;  // dims[0] is the sample count
  std::uint64_t data_bytes = 0;   // product of all dims (one byte per element)
  std::uint64_t header_bytes = 0;
};

// `header_bytes` is the header size known so far (the magic alone is 4 bytes).
inline std::uint32_t read_be32(Reader& in, std::uint64_t header_bytes) {
  std::array<unsigned char, 4> b{};
  if (in.read(b.data(), 4) != 4)
    fail("The IDX file '", in.path(), "' ends inside its header: it has ", in.consumed(),
         " bytes, the header needs ", header_bytes == 4 ? "at least " : "", header_bytes,
         in.end_reason(), ".");
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
}

// Reads and checks the magic and dimensions. `want_dims` is 1 for labels; 0 means "2 or more".
inline Header read_header(Reader& in, std::uint32_t expected_magic, std::uint8_t want_dims) {
  const std::uint32_t magic = read_be32(in, 4);
  const auto type = static_cast<std::uint8_t>(magic >> 8);
  const auto ndims = static_cast<std::uint8_t>(magic);
  const bool dims_ok = want_dims == 0 ? ndims >= 2 : ndims == want_dims;
  if ((magic >> 16) != 0 || type_name(type) == nullptr || !dims_ok)
    fail("The IDX file '", in.path(), "' has a bad magic number: expected ", hex(expected_magic),
         want_dims == 0 ? " (or 0x000008NN with NN >= 2 dimensions)" : "", ", found ",
         hex(magic), ".");
  if (type != kUbyte)
    fail("The IDX file '", in.path(), "' holds ", type_name(type), " elements (type code ",
         hex(type, 2), "); only unsigned bytes (type code 0x08) are supported.");

  Header h;
  h.header_bytes = 4 + 4 * std::uint64_t{ndims};
  h.data_bytes = 1;
  bool overflow = false;
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint32_t d = read_be32(in, h.header_bytes);
    // Dimension 0 is the sample count; zero samples gets its own message later.
    if (d == 0 && i > 0)
      fail("The IDX file '", in.path(), "' has size 0 for dimension ", i,
           " (counting the sample count as dimension 0); every dimension must be at least 1.");
    h.dims.push_back(d);
    overflow = overflow || (d != 0 && h.data_bytes > std::numeric_limits<std::uint64_t>::max() / d);
    if (!overflow) h.data_bytes *= d;
  }
  if (overflow)
    fail("The IDX file '", in.path(), "' has a header whose dimensions multiply to more than "
         "2^64 elements.");
  if (h.dims[0] == 0)
    fail("The IDX file '", in.path(), "' holds 0 samples (empty dataset).");
  return h;
}

inline void truncated(Reader& in, const Header& h, std::uint64_t found, const char* reason = "") {
  fail("The IDX file '", in.path(), "' is truncated: its header (", h.dims[0],
       " samples) promises ", h.data_bytes, " bytes of data, found ", found, reason, ".");
}

// Plain files: the exact size is known, so check it before allocating anything.
inline void check_plain_size(Reader& in, const Header& h) {
  if (!in.plain()) return;
  const std::uint64_t avail = in.file_size() - h.header_bytes;  // header fully read, so no wrap
  if (avail < h.data_bytes) truncated(in, h, avail);
  if (avail > h.data_bytes)
    fail("The IDX file '", in.path(), "' has ", avail - h.data_bytes,
         " trailing bytes after the ", h.data_bytes, " bytes of data its header describes.");
}

// Streams the first `samples` samples' bytes to `sink(const unsigned char*, size_t)`. When all
// samples are read it also reads to the end, so trailing bytes and a bad gzip checksum are caught.
template <class Sink>
void read_data(Reader& in, const Header& h, std::size_t samples, Sink&& sink) {
  const std::uint64_t per_sample = h.data_bytes / h.dims[0];
  const std::uint64_t want = per_sample * samples;
  std::vector<unsigned char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(want, kChunk)));
  std::uint64_t done = 0;
  while (done < want) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(want - done, buf.size()));
    const std::size_t got = in.read(buf.data(), n);
    sink(buf.data(), got);
    done += got;
    if (got < n) truncated(in, h, done, in.end_reason());
  }
  if (samples < h.dims[0]) return;  // a limited read leaves the rest unread, by design
  std::uint64_t extra = 0;
  for (std::size_t got; (got = in.read(buf.data(), buf.size())) > 0;) extra += got;
  if (extra > 0)
    fail("The IDX file '", in.path(), "' has ", extra, " trailing bytes after the ", h.data_bytes,
         " bytes of data its header describes.");
  // All data arrived but the gzip trailer (CRC-32 and length) is missing, so it was never checked.
  if (in.cut_off())
    fail("The gzip file '", in.path(), "' is cut off after all ", h.data_bytes,
         " bytes of data: its checksum trailer is missing.");
}

// How many bytes to reserve: what the header claims, but never more than the file can produce.
inline std::size_t reserve_bound(Reader& in, std::uint64_t want) {
  const std::uint64_t cap = in.plain() ? in.file_size() : in.file_size() * kMaxDeflateRatio;
  return static_cast<std::size_t>(std::min(want, cap));
}

// min(count, limit), which must not be 0.
inline std::size_t samples_to_read(Reader& in, const Header& h, std::size_t limit) {
  const std::size_t n = std::min(h.dims[0], limit);
  if (n == 0)
    fail("Reading at most ", limit, " of the ", h.dims[0], " samples in the IDX file '", in.path(),
         "' gives an empty dataset.");
  return n;
}

inline std::vector<std::size_t> sample_shape(const Header& h) {
  // (n, rows, cols) is a grayscale image: add the channel axis, channels last like Keras.
  if (h.dims.size() == 3) return {h.dims[1], h.dims[2], 1};
  return {h.dims.begin() + 1, h.dims.end()};
}

// The images as a Dataset without labels.
inline Dataset read_images(Reader& in, const Header& h, const IdxOptions& opts) {
  check_plain_size(in, h);
  const std::size_t n = samples_to_read(in, h, opts.limit);
  std::array<float, 256> lut{};  // one multiply per byte value, not per pixel
  for (std::size_t v = 0; v < lut.size(); ++v) lut[v] = static_cast<float>(v) * opts.scale;
  Dataset d;
  d.sample_shape = sample_shape(h);
  d.x.reserve(reserve_bound(in, h.data_bytes / h.dims[0] * n));
  read_data(in, h, n, [&](const unsigned char* p, std::size_t k) {
    const std::size_t at = d.x.size();
    d.x.resize(at + k);
    for (std::size_t i = 0; i < k; ++i) d.x[at + i] = lut[p[i]];
  });
  return d;
}

inline std::vector<std::int32_t> read_labels(Reader& in, const Header& h, std::size_t limit) {
  check_plain_size(in, h);
  const std::size_t n = samples_to_read(in, h, limit);
  std::vector<std::int32_t> labels;
  labels.reserve(reserve_bound(in, n));
  read_data(in, h, n,
            [&](const unsigned char* p, std::size_t k) { labels.insert(labels.end(), p, p + k); });
  return labels;
}

// Both headers are checked (including that their counts agree) before any data is read.
inline Dataset read_pair(Reader& images, Reader& labels, const IdxOptions& opts) {
  const Header hi = read_header(images, kImagesMagic, 0);
  const Header hl = read_header(labels, kLabelsMagic, 1);
  if (hi.dims[0] != hl.dims[0])
    fail("The image file '", images.path(), "' holds ", hi.dims[0],
         " samples but the label file '", labels.path(), "' holds ", hl.dims[0], " labels.");
  Dataset d = read_images(images, hi, opts);
  d.labels = read_labels(labels, hl, opts.limit);  // same count as the images, checked above
  d.num_classes = static_cast<std::size_t>(*std::max_element(d.labels.begin(), d.labels.end())) + 1;
  return d;
}

}  // namespace idx_detail

// Reads an IDX image file: sample_shape {rows, cols, 1} for 3 dimensions (n, rows, cols), else
// {d1, d2, ...}; pixels are multiplied by opts.scale. The result has no labels.
inline Dataset load_idx_images(const std::string& path, IdxOptions opts = {}) {
  using namespace idx_detail;
  Reader in(path);
  return read_images(in, read_header(in, kImagesMagic, 0), opts);
}

// Reads an IDX label file (1 dimension): at most `limit` labels, each in [0, 255].
inline std::vector<std::int32_t> load_idx_labels(const std::string& path,
                                                 std::size_t limit = SIZE_MAX) {
  using namespace idx_detail;
  Reader in(path);
  return read_labels(in, read_header(in, kLabelsMagic, 1), limit);
}

// Reads an image file and its label file into one labelled Dataset; num_classes = max label + 1.
// Both headers are checked (including that their counts agree) before any data is read.
inline Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                        IdxOptions opts = {}) {
  idx_detail::Reader images(images_path);
  idx_detail::Reader labels(labels_path);
  return idx_detail::read_pair(images, labels, opts);
}

// load_idx_images on bytes in memory (plain or gzip); `name` stands in for the path in messages.
inline Dataset load_idx_images_from_memory(std::span<const std::uint8_t> bytes,
                                           const std::string& name, IdxOptions opts = {}) {
  using namespace idx_detail;
  Reader in(bytes, name);
  return read_images(in, read_header(in, kImagesMagic, 0), opts);
}

// load_idx_labels on bytes in memory (plain or gzip).
inline std::vector<std::int32_t> load_idx_labels_from_memory(std::span<const std::uint8_t> bytes,
                                                             const std::string& name,
                                                             std::size_t limit = SIZE_MAX) {
  using namespace idx_detail;
  Reader in(bytes, name);
  return read_labels(in, read_header(in, kLabelsMagic, 1), limit);
}

// load_idx on an image file and a label file held in memory (each plain or gzip).
inline Dataset load_idx_from_memory(std::span<const std::uint8_t> images,
                                    const std::string& images_name,
                                    std::span<const std::uint8_t> labels,
                                    const std::string& labels_name, IdxOptions opts = {}) {
  idx_detail::Reader in_images(images, images_name);
  idx_detail::Reader in_labels(labels, labels_name);
  return idx_detail::read_pair(in_images, in_labels, opts);
}

}  // namespace ctnn::data
