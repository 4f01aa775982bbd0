// Writes the fuzz targets' seed corpora: small valid inputs, each prefixed with the option bytes
// its target reads. Usage: make_seeds <dir>; writes <dir>/{idx,csv,model_file,preprocess}/.
// Generated at build time so the repository holds no binary seeds.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/core/sequential.hpp"
#include "ctnn/data/gzip.hpp"
#include "ctnn/data/preprocess.hpp"
#include "ctnn/io/model_file.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/softmax.hpp"
#include "ctnn/layers/tanh.hpp"
#include "ctnn/optim/adam.hpp"
#include "fuzz_common.hpp"

namespace fs = std::filesystem;
using ctnn_fuzz::Bytes;
using Tiny = ctnn::Sequential<ctnn::Input<4>, ctnn::Dense<3>, ctnn::Tanh, ctnn::Dense<2>,
                              ctnn::Softmax>;

namespace {

void write(const fs::path& dir, const std::string& name, const Bytes& b) {
  fs::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("make_seeds: cannot write " + (dir / name).string());
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, std::size_t payload) {
  Bytes out;
  const auto put = [&out](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put(magic);
  for (std::uint32_t d : dims) put(d);
  for (std::size_t i = 0; i < payload; ++i) out.push_back(static_cast<std::uint8_t>(i * 37 % 256));
  return out;
}

// fuzz_idx input: flags, 2-byte split, images, labels.
Bytes idx_input(std::uint8_t flags, const Bytes& images, const Bytes& labels) {
  const auto n = static_cast<std::uint16_t>(images.size());
  return cat({{flags, static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8)}, images,
              labels});
}

// The first `lines` lines of a (plain or gzip) text file.
std::string head(const std::string& path, int lines) {
  ctnn::data::gzip_detail::Reader in(path, "CSV file");
  const std::string all = in.read_all();
  std::size_t end = 0;
  for (int i = 0; i < lines && end < all.size(); ++i) {
    const std::size_t nl = all.find('\n', end);
    end = nl == std::string::npos ? all.size() : nl + 1;
  }
  return all.substr(0, end);
}

ctnn::data::Preprocessing pipeline(int kind, bool names) {
  using namespace ctnn::data;
  Dataset d;
  d.sample_shape = {4};
  d.x = {0, 1, 2.5f, 1, 1, 0, -3, 2, 2, 1, 7, 0};
  if (kind >= 4) d.x[2] = d.x[8] = NAN;  // gaps for the imputers
  if (names) d.feature_names = {"a", "b", "c", "d"};
  Preprocessing p;
  if (kind == 0) p.add(StandardScaler{});
  if (kind == 1) p.add(MinMaxScaler(-1, 1, {0, 2}));
  if (kind == 4) p.add(SimpleImputer(SimpleImputer::Strategy::median)).add(StandardScaler{});
  if (kind == 5) p.add(SimpleImputer::constant(-1, {0, 2})).add(SimpleImputer(SimpleImputer::Strategy::most_frequent));
  if (kind == 2 || kind == 3) p.add(OneHotEncoder({1, 3}, kind == 3 ? Unknown::ignore : Unknown::error));
  if (kind == 2 || kind == 3) p.add(StandardScaler({0}));
  p.fit(d);
  return p;
}

Bytes saved(const ctnn::data::Preprocessing& p) {
  std::ostringstream os(std::ios::binary);
  p.save(os);
  return bytes_of(os.str());
}

Bytes file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds <output dir>\n";
    return 2;
  }
  const fs::path out = argv[1];
  const std::string sk = CTNN_SKLEARN_DATA_DIR;

  // IDX: two 4x4 images and their labels, plain and gzip (raw gzip bytes and gzipped by the
  // harness), images alone, labels alone, and 4-dimensional images.
  const Bytes images = idx(0x0803, {2, 4, 4}, 32), labels = idx(0x0801, {2}, 2);
  const fs::path idx_dir = out / "idx";
  write(idx_dir, "pair", idx_input(2, images, labels));
  write(idx_dir, "pair_gzip_raw", idx_input(2, ctnn_fuzz::gzip(images), ctnn_fuzz::gzip(labels)));
  write(idx_dir, "pair_gzip_harness", idx_input(2 | 4 | 8, images, labels));
  write(idx_dir, "images", idx_input(0, images, {}));
  write(idx_dir, "labels", idx_input(1, {}, labels));
  write(idx_dir, "images_4d_limit1", idx_input(0x10, idx(0x0804, {2, 2, 3, 2}, 24), {}));
  write(idx_dir, "images_two_members",
        idx_input(0, cat({ctnn_fuzz::gzip(Bytes(images.begin(), images.begin() + 20)),
                          ctnn_fuzz::gzip(Bytes(images.begin() + 20, images.end()))}), {}));

  // CSV: the first lines of scikit-learn's files, and small hand-written tables.
  const fs::path csv_dir = out / "csv";
  const auto csv = [&](const std::string& name, std::initializer_list<std::uint8_t> opts,
                       const std::string& text) { write(csv_dir, name, cat({Bytes(opts), bytes_of(text)})); };
  csv("iris", {0x08, 0, 0x11, 0x0F}, head(sk + "/iris.csv", 6));
  csv("wine", {0x08, 0, 0x35, 0x2B}, head(sk + "/wine_data.csv", 5));
  csv("breast_cancer_dirty", {0x06, 0, 0x02, 0x87}, head(sk + "/breast_cancer_dirty.csv", 5));
  csv("diabetes_whitespace", {0x01, 0, 0x25, 0x13}, head(sk + "/diabetes_data_raw.csv.gz", 5));
  csv("diabetes_target", {0x00, 0, 0x02, 0x4F}, head(sk + "/diabetes_target.csv.gz", 4));
  csv("quoted", {0x02, 0, 0x05, 0x37},
      "\xEF\xBB\xBFname,\"note, with comma\",value\r\n"
      "a,\"line\nbreak\",1.5\r\nb,\"say \"\"hi\"\"\",NA\r\n\r\nc,,+2\r\n");
  csv("categorical", {0x22, 1, 0x09, 0x2E}, "k;colour;n\n1;red;3\n2;blue;?\n1;red;-4e2\n");
  csv("tabs", {0x02, 2, 0x01, 0x0B}, "x\ty\n1\t2\n3\tnan\n1\t2\n");

  // Preprocessing blocks: each step kind, with and without feature names (flag 1: fix CRC).
  const fs::path prep_dir = out / "preprocess";
  for (int kind = 0; kind < 6; ++kind)
    for (bool names : {false, true})
      write(prep_dir, "prep" + std::to_string(kind) + (names ? "_names" : ""),
            cat({{1}, saved(pipeline(kind, names))}));

  // Model files: parameters only, with a preprocessing, and a checkpoint with Adam's state
  // (flags 3: fix both CRCs).
  const fs::path model_dir = out / "model_file";
  fs::create_directories(model_dir);
  const fs::path tmp = model_dir / "tmp.ctnn";
  Tiny model(3);
  ctnn::Adam adam;
  for (std::span<float> state : adam.restore_state(5, 2, model.parameters().size()))
    for (std::size_t i = 0; i < state.size(); ++i) state[i] = 0.01f * static_cast<float>(i);
  const ctnn::data::Preprocessing prep = pipeline(2, true);
  ctnn::save(tmp.string(), model);
  write(model_dir, "params", cat({{3}, file_bytes(tmp)}));
  ctnn::save(tmp.string(), model, &prep);
  write(model_dir, "params_prep", cat({{3}, file_bytes(tmp)}));
  ctnn::save_checkpoint(tmp.string(), model, adam, &prep);
  write(model_dir, "checkpoint_prep", cat({{3}, file_bytes(tmp)}));
  ctnn::save_checkpoint(tmp.string(), model, adam);
  write(model_dir, "checkpoint", cat({{3}, file_bytes(tmp)}));
  fs::remove(tmp);
  return 0;
}
