// Tests for ctnn/data/preprocess.hpp on scikit-learn's real wine and breast cancer data: statistics
// from the training split only, exact min-max ranges, one-hot layout and unknown codes, the
// single-sample path against the dataset path, and the saved block (round trip, every truncation,
// corrupted bytes).
#include "ctnn/data/preprocess.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "ctnn/data/split.hpp"

namespace {

using Catch::Contains;
using ctnn::data::Dataset;
using ctnn::data::MinMaxScaler;
using ctnn::data::OneHotEncoder;
using ctnn::data::Preprocessing;
using ctnn::data::StandardScaler;
using ctnn::data::Unknown;

const std::vector<std::string> kWineNames = {
    "alcohol",         "malic_acid",      "ash",        "alcalinity_of_ash",
    "magnesium",       "total_phenols",   "flavanoids", "nonflavanoid_phenols",
    "proanthocyanins", "color_intensity", "hue",        "od280/od315_of_diluted_wines",
    "proline"};

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) out.push_back(cell);
  return out;
}

// One of scikit-learn's CSVs: a first line "n_samples,n_features,class names...", then rows of
// features followed by the integer class.
Dataset load_sklearn(const std::string& file) {
  const std::string path = std::string(CTNN_SKLEARN_DATA_DIR) + "/" + file;
  std::ifstream in(path);
  REQUIRE(in.good());
  std::string line;
  REQUIRE(std::getline(in, line));
  const std::vector<std::string> head = split_commas(line);
  REQUIRE(head.size() >= 3);
  const std::size_t n = std::stoul(head[0]), f = std::stoul(head[1]);
  Dataset d;
  d.sample_shape = {f};
  d.class_names.assign(head.begin() + 2, head.end());
  d.num_classes = d.class_names.size();
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> cells = split_commas(line);
    REQUIRE(cells.size() == f + 1);
    for (std::size_t j = 0; j < f; ++j) d.x.push_back(static_cast<float>(std::stod(cells[j])));
    d.labels.push_back(std::stoi(cells[f]));
  }
  REQUIRE(d.size() == n);
  d.check_consistent();
  return d;
}

Dataset wine() {
  Dataset d = load_sklearn("wine_data.csv");
  d.feature_names = kWineNames;
  return d;
}

// Wine with alcohol (feature 0) binned into codes 0..3 (< 12, < 13, < 14, >= 14) and the class
// appended as a 14th feature, "cultivar": two real categorical columns with numeric ones between.
Dataset wine_codes() {
  const Dataset w = wine();
  Dataset d = w;
  d.feature_names[0] = "alcohol_bin";
  const std::size_t f = 14;
  d.sample_shape = {f};
  d.feature_names.push_back("cultivar");
  d.x.clear();
  for (std::size_t i = 0; i < w.size(); ++i) {
    d.x.insert(d.x.end(), w.sample(i), w.sample(i) + 13);
    float& a = d.x[i * f];
    a = a < 12.f ? 0.f : a < 13.f ? 1.f : a < 14.f ? 2.f : 3.f;
    d.x.push_back(static_cast<float>(w.labels[i]));
  }
  d.check_consistent();
  return d;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Per-feature mean and population std of the rows of d, in double.
std::pair<std::vector<double>, std::vector<double>> column_stats(const Dataset& d) {
  const std::size_t f = d.feature_size(), n = d.size();
  std::vector<double> mean(f, 0.0), sd(f, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < f; ++j) mean[j] += d.x[i * f + j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < f; ++j) sd[j] += std::pow(d.x[i * f + j] - mean[j], 2);
  for (double& s : sd) s = std::sqrt(s / static_cast<double>(n));
  return {mean, sd};
}

template <class T>
std::string text(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string saved(const Preprocessing& p) {
  std::ostringstream os;
  p.save(os);
  return os.str();
}

Preprocessing loaded(const std::string& block) {
  std::istringstream is(block);
  return Preprocessing::load(is);
}

void put_le(std::string& b, std::size_t offset, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Recomputes the header's body size and CRC-32 (zlib's, independently of the library), so a
// deliberately inconsistent body reaches the structural checks.
void reseal(std::string& b) {
  const std::string body = b.substr(24);
  put_le(b, 12, body.size(), 8);
  put_le(b, 20,
         ::crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())),
         4);
}

}  // namespace

TEST_CASE("StandardScaler learns mean and std from the training split only", "[data][preprocess]") {
  const Dataset d = load_sklearn("breast_cancer.csv");
  const auto [train, test] = ctnn::data::train_test_split(d, 0.25, 42);
  StandardScaler s;
  s.fit(train);
  REQUIRE(s.features().size() == 30);
  const auto [mean, sd] = column_stats(train);
  const auto [all_mean, all_sd] = column_stats(d);
  std::size_t differs_from_all = 0;
  for (std::size_t j = 0; j < 30; ++j) {
    CHECK(s.mean()[j] == Approx(mean[j]).epsilon(1e-12));
    CHECK(s.stddev()[j] == Approx(sd[j]).epsilon(1e-12));
    differs_from_all += s.mean()[j] != all_mean[j];
  }
  CHECK(differs_from_all == 30);

  const Dataset tr = s.transform(train), te = s.transform(test);
  CHECK(tr.labels == train.labels);
  CHECK(te.class_names == test.class_names);
  const auto [tr_mean, tr_sd] = column_stats(tr);
  const auto [te_mean, te_sd] = column_stats(te);
  double te_max = 0.0;
  for (std::size_t j = 0; j < 30; ++j) {
    CHECK(std::abs(tr_mean[j]) < 1e-6);
    CHECK(tr_sd[j] == Approx(1.0).epsilon(1e-6));
    CHECK(te_mean[j] != 0.0);  // the test split is scaled with the train statistics
    te_max = std::max(te_max, std::abs(te_mean[j]));
  }
  CHECK(te_max > 0.01);
  // Every test value is (x - train mean) / train std, rounded once to float.
  for (std::size_t k = 0; k < test.x.size(); ++k)
    REQUIRE(te.x[k] == static_cast<float>((test.x[k] - s.mean()[k % 30]) / s.stddev()[k % 30]));
}

TEST_CASE("MinMaxScaler maps the training range exactly onto [lo, hi]", "[data][preprocess]") {
  const Dataset d = wine();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 7);
  for (const auto& [lo, hi] : {std::pair{0.0, 1.0}, std::pair{-1.0, 1.0}, std::pair{-3.0, 0.5}}) {
    MinMaxScaler s(lo, hi);
    const Dataset tr = s.fit_transform(train), te = s.transform(test);
    CHECK(tr.feature_names == kWineNames);
    for (std::size_t j = 0; j < 13; ++j) {
      float tmin = train.x[j], tmax = train.x[j], omin = tr.x[j], omax = tr.x[j];
      for (std::size_t i = 0; i < train.size(); ++i) {
        tmin = std::min(tmin, train.x[i * 13 + j]);
        tmax = std::max(tmax, train.x[i * 13 + j]);
        omin = std::min(omin, tr.x[i * 13 + j]);
        omax = std::max(omax, tr.x[i * 13 + j]);
      }
      CHECK(s.data_min()[j] == tmin);
      CHECK(s.data_max()[j] == tmax);
      CHECK(omin == static_cast<float>(lo));
      CHECK(omax == static_cast<float>(hi));
      // The test split is mapped with the train range (not clipped, not refitted).
      for (std::size_t i = 0; i < test.size(); ++i) {
        const double t =
            (test.x[i * 13 + j] - s.data_min()[j]) / (s.data_max()[j] - s.data_min()[j]);
        REQUIRE(te.x[i * 13 + j] == static_cast<float>(lo * (1 - t) + hi * t));
      }
    }
  }
  SECTION("chosen features only; the others pass through bit for bit") {
    MinMaxScaler s(0.0, 1.0, {12, 0});
    const Dataset tr = s.fit_transform(train);
    CHECK(s.features() == std::vector<std::size_t>{0, 12});
    for (std::size_t k = 0; k < tr.x.size(); ++k)
      if (k % 13 != 0 && k % 13 != 12) REQUIRE(tr.x[k] == train.x[k]);
    CHECK(text(s) == "MinMaxScaler([0, 1], 2 of 13 features)");
    REQUIRE_THROWS_WITH(MinMaxScaler(0.0, 1.0, {13}).fit(train),
                        Contains("feature index 13") && Contains("of 13 features"));
    REQUIRE_THROWS_WITH(MinMaxScaler(0.0, 1.0, {4, 4}).fit(train),
                        Contains("feature 4 is chosen twice"));
    REQUIRE_THROWS_WITH(MinMaxScaler(1.0, 1.0), Contains("[1, 1]") && Contains("lo < hi"));
  }
}

TEST_CASE("A feature constant in training maps to lo (min-max) and 0 (z-score)",
          "[data][preprocess]") {
  Dataset train = wine();
  for (std::size_t i = 0; i < train.size(); ++i) train.x[i * 13 + 2] = 2.3f;
  Dataset probe = ctnn::data::head(train, 3);
  probe.x[13 + 2] = 5.0f;  // even a different value at transform
  MinMaxScaler mm(-2.0, 2.0);
  mm.fit(train);
  StandardScaler ss;
  ss.fit(train);
  CHECK(ss.mean()[2] == static_cast<double>(2.3f));
  CHECK(ss.stddev()[2] == 0.0);
  const Dataset a = mm.transform(probe), b = ss.transform(probe);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(a.x[i * 13 + 2] == -2.0f);
    CHECK(b.x[i * 13 + 2] == 0.0f);
  }
}

TEST_CASE("OneHotEncoder expands category codes in place and names the columns",
          "[data][preprocess]") {
  const Dataset d = wine_codes();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 3);
  Preprocessing p;
  p.add(StandardScaler({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})).add(OneHotEncoder({13, 0}));
  p.fit(train);
  REQUIRE(p.input_size() == 14);
  REQUIRE(p.output_size() == 14 - 2 + 4 + 3);
  const auto& enc = std::get<OneHotEncoder>(p.steps()[1]);
  CHECK(enc.features() == std::vector<std::size_t>{0, 13});
  CHECK(enc.categories() == std::vector<std::size_t>{4, 3});
  CHECK(text(p) ==
        "StandardScaler(12 of 14 features), "
        "OneHotEncoder(feature 0: 4 categories, feature 13: 3 categories)");
  const std::vector<std::string>& names = p.output_names();
  REQUIRE(names.size() == 19);
  CHECK(names[0] == "alcohol_bin=0");
  CHECK(names[3] == "alcohol_bin=3");
  CHECK(names[4] == "malic_acid");
  CHECK(names[15] == "proline");
  CHECK(names[16] == "cultivar=0");
  CHECK(names[18] == "cultivar=2");

  const auto& sc = std::get<StandardScaler>(p.steps()[0]);
  const Dataset out = p.transform(test);
  CHECK(out.sample_shape == std::vector<std::size_t>{19});
  CHECK(out.feature_names == names);
  CHECK(out.labels == test.labels);
  // Reference layout, built column by column.
  for (std::size_t i = 0; i < test.size(); ++i) {
    const float* x = test.sample(i);
    std::vector<float> want(4, 0.0f);
    want[static_cast<std::size_t>(x[0])] = 1.0f;
    for (std::size_t j = 1; j <= 12; ++j)
      want.push_back(static_cast<float>((x[j] - sc.mean()[j - 1]) / sc.stddev()[j - 1]));
    for (std::size_t k = 0; k < 3; ++k) want.push_back(x[13] == static_cast<float>(k) ? 1.f : 0.f);
    const std::vector<float> got(out.x.begin() + i * 19, out.x.begin() + (i + 1) * 19);
    REQUIRE(same_bits(got, want));
  }

  SECTION("an unknown code is an error naming sample, feature and value") {
    for (const float bad : {4.0f, -1.0f, 1.5f}) {
      Dataset t = test;
      t.x[5 * 14] = bad;
      const std::vector<float> before = t.x;
      const std::string v = text(bad);
      REQUIRE_THROWS_WITH(p.transform(t), Contains("sample 5, feature 0 holds " + v) &&
                                              Contains("0 to 3") && Contains("Unknown::ignore"));
      REQUIRE_THROWS_AS(p.transform_inplace(t), ctnn::Error);
      CHECK(same_bits(t.x, before));  // untouched when refused
      std::vector<float> o(19);
      REQUIRE_THROWS_WITH(p.transform(std::span<const float>(t.sample(5), 14), o),
                          Contains("the input sample, feature 0 holds " + v));
    }
  }
  SECTION("Unknown::ignore encodes an unknown code as all zeros") {
    Preprocessing q;
    q.add(OneHotEncoder({0}, Unknown::ignore));
    q.fit(train);
    CHECK(text(q) == "OneHotEncoder(feature 0: 4 categories; unknown codes ignored)");
    Dataset t = ctnn::data::head(test, 4);
    t.x[0] = 9.0f;
    t.x[14] = -2.0f;
    t.x[28] = 0.5f;
    const Dataset o = q.transform(t);
    for (std::size_t i = 0; i < 4; ++i) {
      const float* r = o.sample(i);
      const float ones = r[0] + r[1] + r[2] + r[3];
      CHECK(ones == (i < 3 ? 0.0f : 1.0f));
      CHECK(std::equal(r + 4, r + 17, t.sample(i) + 1));
    }
  }
  SECTION("given category counts, and training codes outside them") {
    Preprocessing q;
    q.add(OneHotEncoder({0}, Unknown::error, {6}));
    q.fit(train);
    CHECK(q.output_size() == 14 + 5);
    const Dataset o = q.transform(test);
    for (std::size_t i = 0; i < o.size(); ++i) CHECK(o.sample(i)[4] + o.sample(i)[5] == 0.0f);
    REQUIRE_THROWS_WITH(OneHotEncoder({0}, Unknown::error, {3}).fit(train),
                        Contains("holds code 3 at sample") &&
                            Contains("feature 0 (\"alcohol_bin\")") && Contains("given 3"));
    Dataset bad = train;
    bad.x[7 * 14] = 1.5f;
    REQUIRE_THROWS_WITH(OneHotEncoder({0}).fit(bad),
                        Contains("holds 1.5 at sample 7, feature 0 (\"alcohol_bin\")") &&
                            Contains("not a category code"));
    REQUIRE_THROWS_WITH(OneHotEncoder(std::vector<std::size_t>{}), Contains("no features"));
    REQUIRE_THROWS_WITH(OneHotEncoder({1, 2}, Unknown::error, {3}),
                        Contains("1 category counts were given for 2 features"));
    REQUIRE_THROWS_WITH(OneHotEncoder({0}, Unknown::error, {0}), Contains("given 0 categories"));
    REQUIRE_THROWS_WITH(OneHotEncoder({3, 3}), Contains("feature 3 is chosen twice"));
  }
}

TEST_CASE("The single-sample path equals the dataset path bit for bit", "[data][preprocess]") {
  const Dataset d = wine_codes();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.25, 11);
  Preprocessing p;
  p.add(MinMaxScaler(-1.0, 1.0, {1, 4, 12}))
      .add(StandardScaler({2, 3, 5, 6, 7, 8, 9, 10, 11}))
      .add(OneHotEncoder({0, 13}));
  const Dataset fitted_out = p.fit_transform(train);
  const Dataset out = p.transform(test);
  CHECK(same_bits(fitted_out.x, p.transform(train).x));
  Dataset inplace = test;
  p.transform_inplace(inplace);
  CHECK(same_bits(inplace.x, out.x));
  CHECK(inplace.sample_shape == out.sample_shape);
  CHECK(inplace.feature_names == out.feature_names);
  const std::size_t o = p.output_size();
  for (std::size_t i = 0; i < test.size(); ++i) {
    // Pre-filled with NaN so that an unwritten output cannot hide.
    std::vector<float> y(o, std::numeric_limits<float>::quiet_NaN());
    p.transform(std::span<const float>(test.sample(i), 14), y);
    const std::vector<float> want(out.x.begin() + i * o, out.x.begin() + (i + 1) * o);
    REQUIRE(same_bits(y, want));
    // In place: the input occupies the front of the output buffer.
    std::vector<float> buf(o, std::numeric_limits<float>::quiet_NaN());
    std::copy_n(test.sample(i), 14, buf.begin());
    p.transform(std::span<const float>(buf.data(), 14), buf);
    REQUIRE(same_bits(buf, want));
  }
}

TEST_CASE("save and load round-trip exactly, inside a larger stream", "[data][preprocess]") {
  for (const bool named : {true, false}) {
    Dataset d = wine_codes();
    if (!named) d.feature_names.clear();
    const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 5);
    Preprocessing p;
    p.add(StandardScaler({1, 2, 3, 4, 5, 6}))
        .add(MinMaxScaler(-1.0, 1.0, {7, 8, 9, 10, 11, 12}))
        .add(OneHotEncoder({0, 13}, Unknown::ignore));
    p.fit(train);
    std::stringstream ss;
    ss << "model header";
    p.save(ss);
    ss << "weights";
    std::string prefix(12, '\0');
    ss.read(prefix.data(), 12);
    const Preprocessing q = Preprocessing::load(ss);
    std::string rest;
    ss >> rest;
    CHECK(rest == "weights");  // the stream stops right after the block
    CHECK(q.input_size() == p.input_size());
    CHECK(q.output_size() == p.output_size());
    CHECK(q.input_names() == p.input_names());
    CHECK(q.output_names() == p.output_names());
    CHECK(text(q) == text(p));
    CHECK(saved(q) == saved(p));
    const Dataset a = p.transform(test), b = q.transform(test);
    CHECK(same_bits(a.x, b.x));
    CHECK(a.feature_names == b.feature_names);
    std::vector<float> y(q.output_size());
    q.transform(std::span<const float>(test.sample(0), 14), y);
    CHECK(std::memcmp(y.data(), a.x.data(), y.size() * sizeof(float)) == 0);
  }
  SECTION("an empty pipeline is the identity and also round-trips") {
    const Dataset d = load_sklearn("breast_cancer.csv");
    Preprocessing p;
    p.fit(d);
    CHECK(text(p) == "Preprocessing(no steps)");
    const Preprocessing q = loaded(saved(p));
    CHECK(q.output_size() == 30);
    CHECK(same_bits(q.transform(d).x, d.x));
  }
}

TEST_CASE("load refuses every truncation and corrupted bytes with a ctnn::Error",
          "[data][preprocess]") {
  Dataset d = wine_codes();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 9);
  Preprocessing p;
  p.add(MinMaxScaler(0.0, 1.0, {1, 2}))
      .add(StandardScaler({3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}))
      .add(OneHotEncoder({0}));
  p.fit(train);
  const std::string block = saved(p);
  for (std::size_t len = 0; len < block.size(); ++len) {
    INFO("prefix of " << len << " bytes");
    REQUIRE_THROWS_AS(loaded(block.substr(0, len)), ctnn::Error);
  }
  REQUIRE_THROWS_WITH(loaded(block.substr(0, 30)),
                      Contains("truncated") && Contains("announces a body of"));
  REQUIRE_THROWS_WITH(loaded(block.substr(0, 10)), Contains("header needs 24 bytes but only 10"));
  for (std::size_t pos = 0; pos < block.size(); ++pos)
    for (const unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string b = block;
      b[pos] = static_cast<char>(b[pos] ^ mask);
      INFO("byte " << pos << " xor " << int{mask});
      REQUIRE_THROWS_AS(loaded(b), ctnn::Error);
    }
  CHECK(same_bits(loaded(block).transform(test).x, p.transform(test).x));
}

TEST_CASE("load names what it found in a consistently checksummed but wrong block",
          "[data][preprocess]") {
  // No names, one StandardScaler: the body is input size (offset 24), output size (32), step count
  // (40), has-names (44), then the step: tag (45), input size (49), count (57), first feature (65),
  // its mean (73) and std (81).
  const Dataset d = load_sklearn("breast_cancer.csv");
  Preprocessing p;
  p.add(StandardScaler());
  p.fit(d);
  const std::string block = saved(p);
  REQUIRE(block.size() == 24 + 21 + 20 + 30 * 24);
  const auto edited = [&](std::size_t offset, std::uint64_t v, int bytes) {
    std::string b = block;
    put_le(b, offset, v, bytes);
    reseal(b);
    return b;
  };
  REQUIRE_NOTHROW(loaded(edited(0, 'C', 1)));  // resealing alone changes nothing
  REQUIRE_THROWS_WITH(loaded("PK\x03\x04 not a block at all"),
                      Contains("not a preprocessing block") && Contains("50 4b 03 04"));
  std::string v2 = block;
  put_le(v2, 8, 2, 4);
  REQUIRE_THROWS_WITH(loaded(v2), Contains("format version 2") && Contains("reads version 1"));
  std::string big = block;
  put_le(big, 12, std::uint64_t{1} << 40, 8);
  REQUIRE_THROWS_WITH(loaded(big), Contains("body of 1099511627776 bytes") && Contains("limit"));
  std::string crc = block;
  crc[81] = static_cast<char>(crc[81] ^ 4);
  REQUIRE_THROWS_WITH(loaded(crc), Contains("CRC-32") && Contains("corrupt"));
  REQUIRE_THROWS_WITH(loaded(edited(45, 9, 4)), Contains("step 0 has the unknown kind tag 9"));
  REQUIRE_THROWS_WITH(loaded(edited(57, ~std::uint64_t{0}, 8)),
                      Contains("declares 18446744073709551615 StandardScaler features") &&
                          Contains("720 bytes remain"));
  REQUIRE_THROWS_WITH(loaded(edited(40, 0xFFFFFFFF, 4)), Contains("declares 4294967295 steps"));
  REQUIRE_THROWS_WITH(loaded(edited(32, 31, 8)),
                      Contains("steps give 30 output features but the header says 31"));
  REQUIRE_THROWS_WITH(loaded(edited(24, 0, 8)), Contains("input size 0"));
  REQUIRE_THROWS_WITH(loaded(edited(49, 29, 8)),
                      Contains("step 0 says its input has 29 features") && Contains("give 30"));
  std::string named = block;  // names announced for 2^32 features: bounded by the 740 bytes left
  put_le(named, 24, std::uint64_t{1} << 32, 8);
  put_le(named, 44, 1, 1);
  reseal(named);
  REQUIRE_THROWS_WITH(loaded(named), Contains("declares 4294967296 feature names"));
  REQUIRE_THROWS_AS(loaded(edited(44, 1, 1)), ctnn::Error);  // names that eat the steps
  REQUIRE_THROWS_WITH(loaded(edited(44, 2, 1)), Contains("has-names flag is 2"));
  REQUIRE_THROWS_WITH(loaded(edited(65, 30, 8)), Contains("lists feature 30 at position 0"));
  REQUIRE_THROWS_WITH(loaded(edited(65 + 24, 0, 8)),
                      Contains("lists feature 0 at position 1") && Contains("above the previous"));
  REQUIRE_THROWS_WITH(
      loaded(edited(81, std::bit_cast<std::uint64_t>(std::numeric_limits<double>::quiet_NaN()), 8)),
      Contains("std nan for feature 0"));
  std::string tail = block + "x";
  reseal(tail);
  REQUIRE_THROWS_WITH(loaded(tail), Contains("1 bytes left after the last step"));
}

TEST_CASE("Misuse is an error naming the sizes, samples, features and values",
          "[data][preprocess]") {
  const Dataset w = wine();
  const Dataset bc = load_sklearn("breast_cancer.csv");
  Preprocessing p;
  p.add(StandardScaler());
  CHECK(text(p) == "StandardScaler(not fitted)");
  std::vector<float> buf(13);
  REQUIRE_THROWS_WITH(p.transform(w), Contains("before fit"));
  REQUIRE_THROWS_WITH(p.transform(std::span<const float>(buf), buf), Contains("before fit"));
  REQUIRE_THROWS_WITH(p.save(std::cout), Contains("before fit"));
  p.fit(w);
  CHECK(text(p) == "StandardScaler(13 features)");
  REQUIRE_THROWS_WITH(p.transform(bc), Contains("fitted on 13 features but the dataset has 30"));
  std::vector<float> small(12);
  REQUIRE_THROWS_WITH(p.transform(std::span<const float>(small), buf),
                      Contains("has 12 values") && Contains("13 in and 13 out"));

  Dataset nan = w;
  nan.x[7 * 13 + 2] = std::numeric_limits<float>::quiet_NaN();
  Preprocessing q;
  q.add(MinMaxScaler());
  REQUIRE_THROWS_WITH(q.fit(nan),
                      Contains("holds nan at sample 7, feature 2 (\"ash\")") && Contains("impute"));
  REQUIRE_THROWS_WITH(p.transform(nan), Contains("holds nan at sample 7, feature 2 (\"ash\")"));
  std::vector<float> row(w.sample(0), w.sample(0) + 13);
  row[4] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(p.transform(std::span<const float>(row), buf),
                      Contains("holds inf at feature 4"));

  Dataset swapped = w;
  std::swap(swapped.feature_names[1], swapped.feature_names[2]);
  REQUIRE_THROWS_WITH(p.transform(swapped),
                      Contains("feature 1 of the dataset is named \"ash\" but was \"malic_acid\""));
  Dataset unnamed = w;
  unnamed.feature_names.clear();
  CHECK(p.transform(unnamed).feature_names == kWineNames);  // fitted names are carried

  Dataset empty = w;
  empty.x.clear();
  empty.labels.clear();
  REQUIRE_THROWS_WITH(q.fit(empty), Contains("no samples"));
}

TEST_CASE("A small block cannot make load build millions of feature names", "[data][preprocess]") {
  // Found by tests/fuzz/fuzz_preprocess: 200 named features, each one-hot encoded with 65536
  // categories, is a 4 KB block whose output names (13 million strings) took about 400 MB and
  // most of a second to build; a 1.3 MB block could ask for 2^32 of them.
  const auto block = [](std::uint64_t n, std::uint64_t k) {
    std::string b(24, '\0');
    const auto put = [&b](std::uint64_t v, int bytes) {
      b.resize(b.size() + static_cast<std::size_t>(bytes));
      put_le(b, b.size() - static_cast<std::size_t>(bytes), v, bytes);
    };
    put(n, 8);
    put(n + n * (k - 1), 8);
    put(1, 4);  // one step
    put(1, 1);  // with names
    for (std::uint64_t j = 0; j < n; ++j) put(0, 4);  // each name empty
    put(3, 4);  // OneHotEncoder
    put(n, 8);
    put(n, 8);
    put(1, 1);  // unknown codes ignored
    for (std::uint64_t j = 0; j < n; ++j) {
      put(j, 8);
      put(k, 8);
    }
    std::memcpy(b.data(), "CTNNPREP", 8);
    put_le(b, 8, 1, 4);
    reseal(b);
    return b;
  };
  REQUIRE_THROWS_WITH(loaded(block(200, 65536)),
                      Contains("feature names would take more than 67108864 bytes"));
  // Just under the limit: 16 features of 65536 categories, about 36 MB of names, still load.
  const Preprocessing p = loaded(block(16, 65536));
  CHECK(p.output_size() == 16 * 65536);
  CHECK(p.output_names()[65537] == "=1");  // feature 1 (named "") code 1
  CHECK(saved(p) == block(16, 65536));
}

// ---- SimpleImputer ----

namespace {
using ctnn::data::SimpleImputer;
using Strategy = ctnn::data::SimpleImputer::Strategy;

// Wine with every 5th value of features 0, 4 and 12 knocked out (NaN), offset by feature, so the
// training and test splits both have gaps.
Dataset wine_with_gaps() {
  Dataset d = wine();
  const std::size_t f = d.feature_size();
  for (std::size_t i = 0; i < d.size(); ++i)
    for (const std::size_t j : {std::size_t{0}, std::size_t{4}, std::size_t{12}})
      if ((i + j) % 5 == 0) d.x[i * f + j] = std::numeric_limits<float>::quiet_NaN();
  return d;
}

// The present (non-NaN) values of feature j, sorted, in double.
std::vector<double> present(const Dataset& d, std::size_t j) {
  std::vector<double> v;
  for (std::size_t i = 0; i < d.size(); ++i)
    if (!std::isnan(d.sample(i)[j])) v.push_back(d.sample(i)[j]);
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST_CASE("SimpleImputer fills gaps with statistics of the training split only", "[data][preprocess]") {
  const Dataset d = wine_with_gaps();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 3);
  const std::size_t f = d.feature_size();
  for (const Strategy s : {Strategy::mean, Strategy::median, Strategy::most_frequent}) {
    SimpleImputer imp(s, {0, 4, 12});
    imp.fit(train);
    INFO("strategy " << SimpleImputer::strategy_name(s));
    REQUIRE(imp.features() == std::vector<std::size_t>{0, 4, 12});
    for (std::size_t c = 0; c < 3; ++c) {
      const std::size_t j = imp.features()[c];
      const std::vector<double> v = present(train, j);
      double want = 0;
      if (s == Strategy::mean) {
        for (double x : v) want += x;
        want /= double(v.size());
      } else if (s == Strategy::median) {
        want = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
      } else {
        std::size_t best_n = 0;  // independent count: for each value, how often it occurs
        for (double x : v) {
          const auto n = std::size_t(std::count(v.begin(), v.end(), x));
          if (n > best_n) best_n = n, want = x;
        }
      }
      CHECK(imp.fill_values()[c] == Approx(want).epsilon(1e-12));
      CHECK(imp.missing_at_fit()[c] == train.size() - v.size());
      CHECK(imp.missing_at_fit()[c] > 0);
    }
    const Dataset out = imp.transform(test);
    std::size_t filled = 0;
    for (std::size_t i = 0; i < test.size(); ++i)
      for (std::size_t j = 0; j < f; ++j) {
        const float in = test.sample(i)[j], o = out.sample(i)[j];
        if (std::isnan(in)) {
          const std::size_t c = j == 0 ? 0 : j == 4 ? 1 : 2;
          REQUIRE(o == static_cast<float>(imp.fill_values()[c]));
          ++filled;
        } else {
          REQUIRE(std::memcmp(&in, &o, sizeof in) == 0);  // present values untouched
        }
      }
    CHECK(filled > 5);
  }
  SECTION("constant fills even a feature missing everywhere") {
    Dataset all_gone = train;
    for (std::size_t i = 0; i < all_gone.size(); ++i) all_gone.x[i * f + 2] = NAN;
    SimpleImputer mean(Strategy::mean, {0, 2, 4, 12});
    CHECK_THROWS_WITH(mean.fit(all_gone), Contains("feature 2 (\"ash\")") &&
                                              Contains("all missing") && Contains("constant"));
    SimpleImputer zero = SimpleImputer::constant(-1.5, {0, 2, 4, 12});
    zero.fit(all_gone);
    const Dataset out = zero.transform(all_gone);
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out.sample(i)[2] == -1.5f);
  }
}

TEST_CASE("An imputer leading a pipeline: gaps in, finite standardized features out, saved and loaded",
          "[data][preprocess]") {
  const Dataset d = wine_with_gaps();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 8);
  Preprocessing p;
  p.add(SimpleImputer(Strategy::median)).add(StandardScaler{});
  const Dataset tr = p.fit_transform(train);
  const Dataset te = p.transform(test);
  for (float v : tr.x) REQUIRE(std::isfinite(v));
  for (float v : te.x) REQUIRE(std::isfinite(v));
  CHECK(text(p) == "SimpleImputer(median, 13 features, " +
                       std::to_string(std::count_if(train.x.begin(), train.x.end(),
                                                    [](float v) { return std::isnan(v); })) +
                       " missing at fit), StandardScaler(13 features)");
  // The standardization was fitted on the imputed training set.
  const auto [mean, sd] = column_stats(tr);
  for (std::size_t j = 0; j < 13; ++j) CHECK(std::abs(mean[j]) < 1e-5);
  // Single samples with gaps give the dataset path's bits; a loaded copy gives the same.
  const Preprocessing q = loaded(saved(p));
  CHECK(text(q) == text(p));
  CHECK(saved(q) == saved(p));
  for (std::size_t i = 0; i < test.size(); ++i) {
    std::vector<float> y(13, 7.0f);
    q.transform(std::span<const float>(test.sample(i), 13), y);
    REQUIRE(std::memcmp(y.data(), te.sample(i), 13 * sizeof(float)) == 0);
  }
  const std::string block = saved(p);
  for (std::size_t len = 0; len < block.size(); ++len) REQUIRE_THROWS_AS(loaded(block.substr(0, len)), ctnn::Error);
  for (std::size_t pos = 0; pos < block.size(); ++pos) {
    std::string b = block;
    b[pos] = static_cast<char>(b[pos] ^ 0x5A);
    INFO("byte " << pos);
    REQUIRE_THROWS_AS(loaded(b), ctnn::Error);
  }
}

TEST_CASE("Where no imputer fills a feature, NaN and infinities stay errors naming sample and feature",
          "[data][preprocess]") {
  const Dataset d = wine_with_gaps();
  const auto [train, test] = ctnn::data::train_test_split(d, 0.3, 4);
  SimpleImputer only0(Strategy::mean, {0});
  CHECK_THROWS_WITH(only0.fit(train), Contains("SimpleImputer.fit") && Contains("nan") &&
                                          (Contains("\"magnesium\"") || Contains("\"proline\"")));
  SimpleImputer all(Strategy::mean);
  all.fit(train);
  Dataset inf = test;
  inf.x[3 * 13 + 4] = INFINITY;
  CHECK_THROWS_WITH(all.transform(inf), Contains("inf") && Contains("sample 3") &&
                                            Contains("\"magnesium\""));
  std::vector<float> row(test.sample(0), test.sample(0) + 13), out(13);
  row[1] = -INFINITY;
  CHECK_THROWS_WITH(all.transform(row, out), Contains("-inf") && Contains("feature 1"));
  // A scaler before the imputer sees the gaps: the pipeline refuses them at fit.
  Preprocessing late;
  late.add(StandardScaler{}).add(SimpleImputer{});
  CHECK_THROWS_WITH(late.fit(train), Contains("Preprocessing.fit") && Contains("nan"));
  // A corrupt strategy byte in a saved block.
  Preprocessing p;
  p.add(SimpleImputer(Strategy::most_frequent, {0, 4, 12}));
  p.fit(train);
  std::string b = saved(p);
  // body: u64 in | u64 out | u32 steps | u8 has names | names... | u32 tag | u64 in | u64 count | u8
  const std::size_t names = 13 * 4 + [&] {
    std::size_t n = 0;
    for (const auto& s : kWineNames) n += s.size();
    return n;
  }();
  const std::size_t strategy_at = 24 + 8 + 8 + 4 + 1 + names + 4 + 8 + 8;
  REQUIRE(static_cast<unsigned char>(b[strategy_at]) == 2);
  b[strategy_at] = 9;
  reseal(b);
  CHECK_THROWS_WITH(loaded(b), Contains("step 0 (SimpleImputer) has strategy 9"));
}
