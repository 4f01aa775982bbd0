// Every function that reads or writes a path, given a directory, a missing file, a path under a
// regular file (tests run as root, so permissions stop nothing: "file/x" fails for root too) or a
// path in a missing folder: each throws a ctnn::Error whose sentence names the path and the
// problem, and a save that fails leaves the previous file as it was.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/io/model_file.hpp>

#include "../data/temp_files.hpp"

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {
using Tiny = Sequential<Input<4>, Dense<3>, Tanh, Dense<2>, Softmax>;

std::string text_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The bad paths of one test: `dir` a directory, `missing` a file that does not exist, `under_file`
// a path whose parent is a regular file, `in_missing_dir` a file in a folder that does not exist.
struct BadPaths {
  ctnn_test::TempDir tmp;
  std::string dir = tmp.file("a_directory");
  std::string missing = tmp.file("missing.bin");
  std::string plain = tmp.file("plain.txt");
  std::string under_file = plain + "/x";
  std::string in_missing_dir = tmp.file("no_such_folder/x");
  BadPaths() {
    std::filesystem::create_directory(dir);
    std::ofstream(plain) << "just text\n";
  }
};

// The what() of the ctnn::Error `f` throws; anything else (no exception, another type) is
// returned as a text that no check accepts.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a ctnn::Error but: ") + e.what() + ">";
  }
  return "<no exception>";
}

// A save to `path` made to fail at its first write: the temporary file it would write is taken
// by a directory.
struct BlockedSave {
  std::string tmp;
  explicit BlockedSave(const std::string& path) : tmp(path + ".tmp." + std::to_string(::getpid())) {
    std::filesystem::create_directory(tmp);
  }
  ~BlockedSave() { std::filesystem::remove(tmp); }
};
}  // namespace

// Each read entry point on each bad input: a ctnn::Error naming the path and the problem.
#define CTNN_CHECK_READS(call)                                                              \
  do {                                                                                      \
    BadPaths p;                                                                             \
    const auto read = [&](const std::string& path) { call; };                               \
    CHECK_THAT(error_of([&] { read(p.dir); }), Contains(p.dir) && Contains("is a directory")); \
    CHECK_THAT(error_of([&] { read(p.missing); }), \
                         Contains(p.missing) && Contains("No such file or directory"));     \
    CHECK_THAT(error_of([&] { read(p.under_file); }), \
                         Contains(p.under_file) && Contains("Not a directory"));            \
  } while (false)

// Each write entry point: a directory, a path under a file, a missing folder; and a save that
// fails over an existing file leaves it unchanged.
#define CTNN_CHECK_WRITES(call)                                                              \
  do {                                                                                       \
    BadPaths p;                                                                              \
    const auto write = [&](const std::string& path) { call; };                               \
    CHECK_THAT(error_of([&] { write(p.dir); }), Contains(p.dir) && Contains("is a directory")); \
    CHECK(std::filesystem::is_directory(p.dir));                                             \
    CHECK_THAT(error_of([&] { write(p.under_file); }), \
                         Contains(p.under_file) && Contains("Not a directory"));             \
    CHECK_THAT(error_of([&] { write(p.in_missing_dir); }), \
                         Contains(p.in_missing_dir) && Contains("No such file or directory"));\
    CHECK(text_of(p.plain) == "just text\n");                                                 \
    {                                                                                         \
      BlockedSave blocked(p.plain);                                                           \
      CHECK_THAT(error_of([&] { write(p.plain); }), \
                           Contains(p.plain) && Contains("previous file") &&                  \
                               Contains("unchanged"));                                        \
    }                                                                                         \
    CHECK(text_of(p.plain) == "just text\n");                                                 \
  } while (false)

TEST_CASE("load and load_checkpoint refuse a directory, a missing file and a path under a file") {
  Tiny model(1);
  Adam opt;
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  CTNN_CHECK_READS(load(path, model));
  CTNN_CHECK_READS(load_checkpoint(path, model, opt));
  CHECK(std::vector<float>(model.parameters().begin(), model.parameters().end()) == before);
}

TEST_CASE("save and save_checkpoint refuse a bad path and leave the previous file whole") {
  const Tiny model(1);
  Adam opt;
  CTNN_CHECK_WRITES(save(path, model));
  CTNN_CHECK_WRITES(save(path, model, SaveOptions{.weights = WeightStorage::fp16}));
  CTNN_CHECK_WRITES(save_checkpoint(path, model, opt));
}

TEST_CASE("export_header, save_plot_svg and the loggers refuse a bad path") {
  const Tiny model(1);
  CTNN_CHECK_WRITES(deploy::export_header(path, model, "tiny"));
  History h;
  h.epochs.push_back(EpochLog{.epoch = 1, .loss = 0.5});
  CTNN_CHECK_WRITES(save_plot_svg(h, path));
  // The loggers append to their file, so they have no previous content to keep.
  for (const bool append : {false, true}) {
    BadPaths p;
    TrainingState s;
    for (const std::string& path : {p.dir, p.under_file, p.in_missing_dir}) {
      const char* problem = path == p.dir          ? "is a directory"
                            : path == p.under_file ? "Not a directory"
                                                   : "No such file or directory";
      CsvLogger csv(path, append);
      CHECK_THAT(error_of([&] { csv.on_train_begin(s); }), Contains(path) && Contains(problem));
      JsonLinesLogger json(path, append);
      CHECK_THAT(error_of([&] { json.on_train_begin(s); }), Contains(path) && Contains(problem));
    }
  }
}

TEST_CASE("read_csv, read_sklearn_csv and the IDX loaders refuse a bad path") {
  CTNN_CHECK_READS(data::read_csv(path));
  CTNN_CHECK_READS(data::read_sklearn_csv(path));
  CTNN_CHECK_READS(data::load_idx_images(path));
  CTNN_CHECK_READS(data::load_idx_labels(path));
  const std::string labels = std::string(CTNN_FASHION_MNIST_DIR) + "/t10k-labels-idx1-ubyte.gz";
  CTNN_CHECK_READS(data::load_idx(path, labels));
}
