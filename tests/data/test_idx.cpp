// Tests for ctnn/data/idx.hpp on the real Fashion-MNIST files and on crafted bad inputs.
#include "ctnn/data/idx.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "temp_files.hpp"

namespace {

using ctnn::data::Dataset;
using ctnn::data::IdxOptions;
using ctnn::data::load_idx;
using ctnn::data::load_idx_images;
using ctnn::data::load_idx_labels;
using ctnn_test::Bytes;
using ctnn_test::idx_file;
using ctnn_test::TempDir;
using Catch::Contains;

std::string fashion(const char* name) { return std::string(CTNN_FASHION_MNIST_DIR) + "/" + name; }
const std::string kTrainImages = fashion("train-images-idx3-ubyte.gz");
const std::string kTrainLabels = fashion("train-labels-idx1-ubyte.gz");
const std::string kTestImages = fashion("t10k-images-idx3-ubyte.gz");
const std::string kTestLabels = fashion("t10k-labels-idx1-ubyte.gz");

// Loaded once: the train set takes most of a second to decompress.
const Dataset& train_set() {
  static const Dataset d = load_idx(kTrainImages, kTrainLabels);
  return d;
}
const Dataset& test_set() {
  static const Dataset d = load_idx(kTestImages, kTestLabels);
  return d;
}

std::array<std::size_t, 10> histogram(const std::vector<std::int32_t>& labels) {
  std::array<std::size_t, 10> h{};
  for (std::int32_t l : labels) ++h.at(static_cast<std::size_t>(l));
  return h;
}

double byte_sum(const Dataset& d, std::size_t first, std::size_t count) {
  return std::accumulate(d.x.begin() + static_cast<std::ptrdiff_t>(first),
                         d.x.begin() + static_cast<std::ptrdiff_t>(first + count), 0.0) *
         255.0;
}

// Loads `path` as images, as labels, or paired with a matching label file, whichever fits.
void load_any(const std::string& path) {
  try {
    (void)load_idx_images(path);
  } catch (const ctnn::Error&) {
  }
  try {
    (void)load_idx_labels(path);
  } catch (const ctnn::Error&) {
  }
}

}  // namespace

TEST_CASE("Fashion-MNIST train and t10k load with the published counts and shape", "[data][idx]") {
  const Dataset& train = train_set();
  const Dataset& test = test_set();
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  for (const Dataset* d : {&train, &test}) {
    CHECK(d->sample_shape == std::vector<std::size_t>{28, 28, 1});
    CHECK(d->feature_size() == 784);
    CHECK(d->num_classes == 10);
    CHECK(d->labels.size() == d->size());
    CHECK_FALSE(d->has_targets());
    const auto [lo, hi] = std::minmax_element(d->x.begin(), d->x.end());
    CHECK(*lo == 0.0f);
    CHECK(*hi == 1.0f);  // 255 * (1/255.f) rounds to exactly 1
  }
  // Each class is exactly a tenth of both sets.
  for (std::size_t c : histogram(train.labels)) CHECK(c == 6000);
  for (std::size_t c : histogram(test.labels)) CHECK(c == 1000);
  // Facts computed independently with Python's gzip module from the same files.
  CHECK(train.labels[0] == 9);  // ankle boot
  CHECK(std::vector<std::int32_t>(train.labels.begin(), train.labels.begin() + 10) ==
        std::vector<std::int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  CHECK(std::vector<std::int32_t>(test.labels.begin(), test.labels.begin() + 10) ==
        std::vector<std::int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
  CHECK(byte_sum(train, 0, 784) == Approx(76247).margin(0.01));
  CHECK(byte_sum(test, 0, 784) == Approx(33456).margin(0.01));
  CHECK(byte_sum(train, 0, train.x.size()) == Approx(3431114169.0).epsilon(1e-6));
  CHECK(byte_sum(test, 0, test.x.size()) == Approx(573469082.0).epsilon(1e-6));
  CHECK_NOTHROW(train.check_consistent());
}

TEST_CASE("Plain (decompressed) IDX files load identically to the gzip ones", "[data][idx]") {
  TempDir tmp;
  const std::string images = tmp.file("t10k-images-idx3-ubyte");
  const std::string labels = tmp.file("t10k-labels-idx1-ubyte");
  ctnn_test::write_file(images, ctnn_test::gunzip_file(kTestImages));
  ctnn_test::write_file(labels, ctnn_test::gunzip_file(kTestLabels));

  const Dataset plain = load_idx(images, labels);
  CHECK(plain.sample_shape == test_set().sample_shape);
  CHECK(plain.num_classes == test_set().num_classes);
  CHECK(plain.labels == test_set().labels);
  CHECK(plain.x == test_set().x);
  // Mixed: plain images with gzip labels.
  CHECK(load_idx(images, kTestLabels).x == test_set().x);
  // The separate loaders agree with load_idx.
  CHECK(load_idx_images(images).x == test_set().x);
  CHECK(load_idx_labels(kTestLabels) == test_set().labels);
  CHECK_FALSE(load_idx_images(images).has_labels());
}

TEST_CASE("IdxOptions: limit reads a prefix, scale multiplies the bytes", "[data][idx]") {
  const Dataset& full = test_set();
  TempDir tmp;
  const std::string plain_images = tmp.file("images");
  ctnn_test::write_file(plain_images, ctnn_test::gunzip_file(kTestImages));
  for (const std::string& images : {kTestImages, plain_images}) {
    for (std::size_t limit : {std::size_t{1}, std::size_t{100}, std::size_t{9999}}) {
      const Dataset d = load_idx(images, kTestLabels, {.limit = limit});
      REQUIRE(d.size() == limit);
      CHECK(std::equal(d.x.begin(), d.x.end(), full.x.begin()));
      CHECK(std::equal(d.labels.begin(), d.labels.end(), full.labels.begin()));
      CHECK(d.num_classes == static_cast<std::size_t>(
                                 *std::max_element(d.labels.begin(), d.labels.end()) + 1));
    }
    CHECK(load_idx(images, kTestLabels, {.limit = 10001}).size() == 10000);
    CHECK(load_idx_labels(kTestLabels, 7).size() == 7);
    REQUIRE_THROWS_WITH(load_idx(images, kTestLabels, {.limit = 0}),
                        Contains(images) && Contains("at most 0 of the 10000") &&
                            Contains("empty dataset"));
  }
  const Dataset raw = load_idx(kTestImages, kTestLabels, {.scale = 1.0f, .limit = 50});
  for (std::size_t i = 0; i < raw.x.size(); ++i) {
    REQUIRE(raw.x[i] == static_cast<float>(static_cast<int>(raw.x[i])));  // whole bytes
    REQUIRE(raw.x[i] * (1.0f / 255.0f) == full.x[i]);
  }
}

TEST_CASE("Images with 2 or 4 dimensions get shape {d1} or {d1, d2, d3}", "[data][idx]") {
  TempDir tmp;
  const std::string two = tmp.file("two"), four = tmp.file("four"), labels = tmp.file("labels");
  ctnn_test::write_file(two, idx_file(0x0802, {3, 5}, Bytes(15, 51)));
  ctnn_test::write_gz(four, idx_file(0x0804, {2, 2, 3, 3}, Bytes(36, 255)));
  ctnn_test::write_file(labels, idx_file(0x0801, {3}, {0, 4, 2}));

  const Dataset d2 = load_idx(two, labels, {.scale = 0.5f});
  CHECK(d2.sample_shape == std::vector<std::size_t>{5});
  CHECK(d2.size() == 3);
  CHECK(d2.x == std::vector<float>(15, 25.5f));
  CHECK(d2.labels == std::vector<std::int32_t>{0, 4, 2});
  CHECK(d2.num_classes == 5);

  const Dataset d4 = load_idx_images(four);
  CHECK(d4.sample_shape == std::vector<std::size_t>{2, 3, 3});
  CHECK(d4.size() == 2);
  CHECK(d4.x == std::vector<float>(36, 1.0f));
}

TEST_CASE("Truncated IDX files are reported with the file name and byte counts", "[data][idx]") {
  TempDir tmp;
  const Bytes images = ctnn_test::gunzip_file(kTestImages);  // 16-byte header + 7840000 bytes
  const std::string path = tmp.file("cut-images");

  SECTION("plain, cut inside the header") {
    for (std::size_t cut : {0, 3}) {
      ctnn_test::write_file(path, Bytes(images.begin(), images.begin() + cut));
      REQUIRE_THROWS_WITH(load_idx_images(path),
                          Contains(path) && Contains("ends inside its header") &&
                              Contains("it has " + std::to_string(cut) + " bytes") &&
                              Contains("needs at least 4"));
    }
    for (std::size_t cut : {4, 10, 15}) {
      ctnn_test::write_file(path, Bytes(images.begin(), images.begin() + cut));
      REQUIRE_THROWS_WITH(load_idx_images(path),
                          Contains(path) && Contains("it has " + std::to_string(cut) + " bytes") &&
                              Contains("the header needs 16"));
    }
  }
  SECTION("plain, cut inside the data") {
    for (std::size_t cut : {16, 17, 1000, 7840015}) {
      ctnn_test::write_file(path, Bytes(images.begin(), images.begin() + cut));
      REQUIRE_THROWS_WITH(load_idx_images(path),
                          Contains(path) && Contains("truncated") &&
                              Contains("promises 7840000 bytes of data, found " +
                                       std::to_string(cut - 16)));
    }
    // Labels too, and through load_idx, which names the label file.
    const Bytes labels = ctnn_test::gunzip_file(kTestLabels);
    const std::string lpath = tmp.file("cut-labels");
    ctnn_test::write_file(lpath, Bytes(labels.begin(), labels.begin() + 8 + 5000));
    REQUIRE_THROWS_WITH(load_idx(kTestImages, lpath),
                        Contains(lpath) && Contains("promises 10000 bytes of data, found 5000"));
  }
  SECTION("gzip, cut at several offsets") {
    const Bytes gz = ctnn_test::read_file(kTestImages);
    // 1 byte is too short to be a gzip header, so zlib reads it as a plain 1-byte file.
    ctnn_test::write_file(path, Bytes(gz.begin(), gz.begin() + 1));
    REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("it has 1 bytes"));
    for (std::size_t cut : {2, 5, 10}) {  // inside the 10-byte gzip header
      ctnn_test::write_file(path, Bytes(gz.begin(), gz.begin() + cut));
      REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("it has 0 bytes") &&
                                                     Contains("gzip stream is cut off"));
    }
    for (std::size_t cut : {std::size_t{1000}, gz.size() / 2, gz.size() - 100}) {
      ctnn_test::write_file(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(cut)));
      REQUIRE_THROWS_WITH(load_idx_images(path),
                          Contains(path) && Contains("promises 7840000 bytes of data, found") &&
                              Contains("gzip stream is cut off"));
    }
    // Cut inside the 8-byte trailer: every data byte arrives, but the CRC is never checked.
    ctnn_test::write_file(path, Bytes(gz.begin(), gz.end() - 4));
    REQUIRE_THROWS_WITH(load_idx_images(path),
                        Contains(path) && Contains("cut off after all 7840000 bytes"));
  }
}

TEST_CASE("Corrupt gzip data is reported with zlib's message", "[data][idx]") {
  TempDir tmp;
  const std::string path = tmp.file("corrupt-labels.gz");
  const Bytes gz = ctnn_test::read_file(kTestLabels);

  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;  // first byte of the CRC-32 in the trailer
  ctnn_test::write_file(path, bad_crc);
  REQUIRE_THROWS_WITH(load_idx_labels(path), Contains(path) && Contains("corrupt") &&
                                                 Contains("zlib says \"incorrect data check\""));

  for (std::size_t at : {std::size_t{20}, std::size_t{500}, gz.size() / 2}) {
    Bytes bad = gz;
    for (std::size_t i = at; i < at + 16; ++i) bad[i] = static_cast<unsigned char>(bad[i] ^ 0x5A);
    ctnn_test::write_file(path, bad);
    REQUIRE_THROWS_WITH(load_idx_labels(path), Contains(path) && Contains("zlib says"));
  }
}

TEST_CASE("Wrong magic numbers and element types are reported in hex", "[data][idx]") {
  TempDir tmp;
  const std::string path = tmp.file("bad-magic");

  // Labels given as images, and images given as labels.
  REQUIRE_THROWS_WITH(load_idx(kTestLabels, kTestLabels),
                      Contains(kTestLabels) && Contains("bad magic number") &&
                          Contains("expected 0x00000803") && Contains("found 0x00000801"));
  REQUIRE_THROWS_WITH(load_idx(kTestImages, kTestImages),
                      Contains(kTestImages) && Contains("expected 0x00000801") &&
                          Contains("found 0x00000803"));

  ctnn_test::write_file(path, idx_file(0x12345678, {1, 1, 1}, {0}));
  REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("found 0x12345678"));
  ctnn_test::write_file(path, idx_file(0x0703, {1, 1, 1}, {0}));  // 0x07 is no IDX type
  REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("found 0x00000703"));

  ctnn_test::write_file(path, idx_file(0x0D03, {1, 1, 1}, {0, 0, 0, 0}));
  REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("float32 elements") &&
                                                 Contains("type code 0x0D") &&
                                                 Contains("only unsigned bytes"));
  ctnn_test::write_file(path, idx_file(0x0C01, {1}, {0, 0, 0, 0}));
  REQUIRE_THROWS_WITH(load_idx_labels(path), Contains(path) && Contains("int32 elements"));
}

TEST_CASE("Image and label counts must agree", "[data][idx]") {
  REQUIRE_THROWS_WITH(load_idx(kTrainImages, kTestLabels),
                      Contains(kTrainImages) && Contains(kTestLabels) &&
                          Contains("holds 60000 samples") && Contains("holds 10000 labels"));
}

TEST_CASE("Trailing bytes after the data are an error", "[data][idx]") {
  TempDir tmp;
  Bytes labels = ctnn_test::gunzip_file(kTestLabels);
  labels.insert(labels.end(), {1, 2, 3});
  const std::string plain = tmp.file("labels-plus-3"), gz = tmp.file("labels-plus-5.gz");
  ctnn_test::write_file(plain, labels);
  REQUIRE_THROWS_WITH(load_idx(kTestImages, plain),
                      Contains(plain) && Contains("3 trailing bytes after the 10000 bytes"));
  labels.insert(labels.end(), {4, 5});
  ctnn_test::write_gz(gz, labels);
  REQUIRE_THROWS_WITH(load_idx_labels(gz),
                      Contains(gz) && Contains("5 trailing bytes after the 10000 bytes"));
  // A limited read stops early by design: the tail is not inspected.
  CHECK(load_idx_labels(gz, 10).size() == 10);
}

TEST_CASE("Missing files, directories, empty datasets and zero dimensions", "[data][idx]") {
  TempDir tmp;
  const std::string missing = tmp.file("no-such-file.gz");
  REQUIRE_THROWS_WITH(load_idx(missing, kTestLabels),
                      Contains(missing) && Contains("does not exist"));
  REQUIRE_THROWS_WITH(load_idx(kTestImages, missing), Contains(missing));
  REQUIRE_THROWS_WITH(load_idx_images(tmp.file("")), Contains("is a directory, not a file"));

  const std::string path = tmp.file("crafted");
  ctnn_test::write_file(path, idx_file(0x0803, {0, 28, 28}));
  REQUIRE_THROWS_WITH(load_idx_images(path),
                      Contains(path) && Contains("holds 0 samples (empty dataset)"));
  ctnn_test::write_gz(path, idx_file(0x0801, {0}));
  REQUIRE_THROWS_WITH(load_idx_labels(path), Contains(path) && Contains("empty dataset"));
  ctnn_test::write_file(path, idx_file(0x0803, {5, 28, 0}));
  REQUIRE_THROWS_WITH(load_idx_images(path),
                      Contains(path) && Contains("size 0 for dimension 2"));
}

TEST_CASE("Headers claiming huge sizes fail cleanly before allocating", "[data][idx]") {
  TempDir tmp;
  const std::string path = tmp.file("huge");
  // 4294967295 * 65535 * 65535 bytes (about 1.8e19) from a 16-byte file.
  const Bytes huge = idx_file(0x0803, {0xFFFFFFFFu, 0xFFFFu, 0xFFFFu});
  ctnn_test::write_file(path, huge);
  REQUIRE_THROWS_WITH(load_idx_images(path),
                      Contains(path) && Contains("promises 18446181123756261375 bytes of data, "
                                                 "found 0"));
  ctnn_test::write_gz(path, huge);  // gzip: the size is unknown until the stream ends
  REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("found 0"));
  ctnn_test::write_file(path, idx_file(0x0805, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 9, 9}));
  REQUIRE_THROWS_WITH(load_idx_images(path), Contains(path) && Contains("more than 2^64"));
}

TEST_CASE("Mutated and cut IDX files either load or throw ctnn::Error", "[data][idx]") {
  TempDir tmp;
  const std::string path = tmp.file("fuzz");
  Bytes payload(3 * 4 * 4);
  std::iota(payload.begin(), payload.end(), std::uint8_t{0});
  const Bytes images = idx_file(0x0803, {3, 4, 4}, payload);
  ctnn_test::write_gz(path, images);
  const Bytes gz = ctnn_test::read_file(path);
  std::uint64_t state = 12345;  // a tiny LCG, enough to pick bytes to mutate
  const auto next = [&state] { return (state = state * 6364136223846793005ull + 1) >> 33; };
  const auto mutate = [&next](Bytes b) {
    for (int k = 0; k < 3; ++k) b[next() % b.size()] = static_cast<unsigned char>(next());
    return b;
  };
  // Every cut of the plain and the gzip file, then random byte changes in the IDX content
  // (written plain and gzip) and in the compressed bytes.
  for (std::size_t cut = 0; cut < images.size(); ++cut) {
    ctnn_test::write_file(path, Bytes(images.begin(), images.begin() + cut));
    CHECK_NOTHROW(load_any(path));
  }
  for (std::size_t cut = 0; cut < gz.size(); ++cut) {
    ctnn_test::write_file(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(cut)));
    CHECK_NOTHROW(load_any(path));
  }
  for (int round = 0; round < 300; ++round) {
    ctnn_test::write_file(path, mutate(images));
    CHECK_NOTHROW(load_any(path));
    ctnn_test::write_gz(path, mutate(images));
    CHECK_NOTHROW(load_any(path));
    ctnn_test::write_file(path, mutate(gz));
    CHECK_NOTHROW(load_any(path));
  }
}

namespace {

// What a load gave: the data, or the error message.
struct Outcome {
  bool ok = false;
  std::string error;
  std::vector<float> x;
  std::vector<std::size_t> shape;
  std::vector<std::int32_t> labels;
  bool operator==(const Outcome&) const = default;
};

template <class Load>
Outcome outcome_of(Load load) {
  Outcome o;
  try {
    const Dataset d = load();
    o.ok = true;
    o.x = d.x;
    o.shape = d.sample_shape;
    o.labels = d.labels;
  } catch (const ctnn::Error& e) {
    o.error = e.what();
  }
  return o;
}

// Loads `bytes` as images from a file and from memory (named as the file); both must agree,
// messages included. Labels likewise, when `labels` is true.
// `exact`: the same message too. Not for corrupt compressed data: gzread decompresses ahead of
// the reads and may meet the damage (zlib's message) before the IDX reader sees a bad header.
void check_same(const Outcome& file, const Outcome& memory, bool exact) {
  if (!exact) {
    CHECK(memory.ok == file.ok);
    if (memory.ok) CHECK(memory == file);
    return;
  }
  CHECK(memory.error == file.error);  // shown when they differ
  CHECK(memory == file);
}

void check_same(const std::string& path, const Bytes& bytes, bool exact = true) {
  using namespace ctnn::data;
  ctnn_test::write_file(path, bytes);
  check_same(outcome_of([&] { return load_idx_images(path); }),
             outcome_of([&] { return load_idx_images_from_memory(bytes, path); }), exact);
  // A limited read of corrupt data may succeed from memory: only gzread reads past the limit.
  if (exact)
    check_same(outcome_of([&] { return load_idx_images(path, {.limit = 1}); }),
               outcome_of([&] { return load_idx_images_from_memory(bytes, path, {.limit = 1}); }),
               exact);
  const auto labels_of = [](auto load) {
    return [load] {
      Dataset d;
      d.sample_shape = {1};
      d.labels = load();
      return d;
    };
  };
  check_same(outcome_of(labels_of([&] { return load_idx_labels(path); })),
             outcome_of(labels_of([&] { return load_idx_labels_from_memory(bytes, path); })), exact);
}

Bytes gz_bytes(const TempDir& tmp, const Bytes& b) {
  const std::string p = tmp.file("gz");
  ctnn_test::write_gz(p, b);
  return ctnn_test::read_file(p);
}

Bytes join(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

TEST_CASE("IDX bytes in memory load as the same file does (plain and gzip)", "[data][idx]") {
  TempDir tmp;
  const std::string path = tmp.file("same");
  Bytes payload(3 * 4 * 4);
  std::iota(payload.begin(), payload.end(), std::uint8_t{0});
  const Bytes images = idx_file(0x0803, {3, 4, 4}, payload);
  const Bytes labels = idx_file(0x0801, {3}, {4, 0, 9});
  const Bytes gz = gz_bytes(tmp, images);

  SECTION("whole files, a pair, and gzip members one after another") {
    for (const Bytes& b : {images, labels, gz, gz_bytes(tmp, labels)}) check_same(path, b);
    // Two members make one stream; non-gzip bytes after a member are ignored, as zlib does.
    const Bytes half1(images.begin(), images.begin() + 20), half2(images.begin() + 20, images.end());
    check_same(path, join(gz_bytes(tmp, half1), gz_bytes(tmp, half2)));
    check_same(path, join(gz, {'x', 'y', 'z'}));
    check_same(path, join(gz, {0x1F}));
    check_same(path, join(gz, {0x1F, 0x8B}));  // a second member cut inside its header
    const std::string labels_path = tmp.file("labels");
    ctnn_test::write_file(path, gz);
    ctnn_test::write_file(labels_path, labels);
    const Dataset from_files = load_idx(path, labels_path);
    const Dataset from_memory = ctnn::data::load_idx_from_memory(gz, "images", labels, "labels");
    CHECK(from_memory.x == from_files.x);
    CHECK(from_memory.labels == from_files.labels);
    CHECK(from_memory.num_classes == 10);
    CHECK_THROWS_WITH(
        ctnn::data::load_idx_from_memory(gz, "images", idx_file(0x0801, {2}, {1, 2}), "labels"),
        "The image file 'images' holds 3 samples but the label file 'labels' holds 2 labels.");
  }
  SECTION("every cut of the plain and the gzip bytes") {
    for (std::size_t cut = 0; cut <= images.size(); ++cut)
      check_same(path, Bytes(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(cut)));
    for (std::size_t cut = 0; cut <= gz.size(); ++cut)
      check_same(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(cut)));
  }
  SECTION("corrupt compressed bytes fail either way") {
    for (std::size_t at = 10; at < gz.size(); ++at) {
      Bytes bad = gz;
      bad[at] ^= 0x55;
      check_same(path, bad, false);
    }
    Bytes bad = gz;
    bad[gz.size() - 5] ^= 1;  // the CRC-32 of the data
    CHECK_THROWS_WITH(ctnn::data::load_idx_images_from_memory(bad, "x.gz"),
                      "The gzip file 'x.gz' is corrupt: zlib says \"incorrect data check\".");
  }
}
