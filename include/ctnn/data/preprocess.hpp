// ctnn/data/preprocess.hpp: fitted preprocessing (imputation of missing values, min-max scaling,
// z-score standardization and one-hot encoding), learnt on the training split and replayed
// unchanged on validation, test and inference inputs, and saved with the model so deployment sees
// the same preprocessing.
//
// Contract
// - A step (SimpleImputer, MinMaxScaler, StandardScaler, OneHotEncoder) learns its statistics in
//   fit(train) from
//   the training set only; transform(...) applies exactly those statistics to any later input.
//   Statistics are float64; each output is the float64 result rounded to float.
// - Preprocessing is an ordered list of steps; fit() fits each step on the output of the steps
//   before it, so a step's feature indices refer to the columns of its own input.
// - Widths: scalers keep the width; OneHotEncoder replaces each chosen feature, where it stands,
//   by k columns (k >= 1), so the width never shrinks along the pipeline. input_size() and
//   output_size() are known after fit. A transformed dataset whose width changed gets
//   sample_shape {output_size()}; otherwise its shape is kept.
// - transform(span in, span out) handles one sample without heap allocation: `in` is copied into
//   `out` and every step rewrites `out` in place (one-hot expands from the back).
// - Every input value must be finite, at fit and at transform, except NaN (a missing value) in a
//   feature that a SimpleImputer fills: a SimpleImputer on its own, or the leading SimpleImputer
//   steps of a Preprocessing. Infinities are never missing values. All errors are ctnn::Error
//   sentences naming the sample, feature and value. When a
//   dataset transform throws, the dataset is unchanged; the span path leaves `out` unspecified.
// - Feature names (Dataset::feature_names) are carried; one-hot columns are named "<name>=<k>".
//   Names seen at fit are kept and saved, and a dataset whose names differ at transform is
//   refused, since columns in another order would be silently mis-scaled.
//
// Binary block (Preprocessing::save / load), self-describing so a model file can embed it; all
// integers little-endian, all parameters IEEE-754 binary64 (so a round trip is bit exact):
//   header (24 bytes): "CTNNPREP" | u32 format version (1) | u64 body size B | u32 CRC-32 of the
//                      body (zlib's crc32, as in gzip)
//   body (B bytes):    u64 input size | u64 output size | u32 step count | u8 has names (0 or 1)
//                      [has names: input size x (u32 byte length, bytes)]
//                      per step: u32 kind tag | u64 step input size | u64 feature count c, then
//                        tag 1 MinMaxScaler:   f64 lo | f64 hi | c x (u64 feature, f64 min,
//                                              f64 max)
//                        tag 2 StandardScaler: c x (u64 feature, f64 mean, f64 std)
//                        tag 3 OneHotEncoder:  u8 unknown (0 error, 1 ignore) | c x (u64 feature,
//                                              u64 categories k)
//                        tag 4 SimpleImputer:  u8 strategy (0 mean, 1 median, 2 most frequent,
//                                              3 constant) | c x (u64 feature, f64 fill value,
//                                              f64 missing count seen at fit)
//   Features are strictly increasing within a step; each step's input size is the previous
//   step's output size and the last step's output size is the header's. load() checks all of it,
//   bounds every count by the bytes that remain, and reads the stream to exactly the block's end.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <istream>
#include <numeric>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "ctnn/core/bytes.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/stats.hpp"

namespace ctnn::data {

class Preprocessing;

// What a OneHotEncoder does at transform with a code it did not learn (>= k, negative or not an
// integer): throw a ctnn::Error, or encode it as all zeros.
enum class Unknown { error, ignore };

namespace detail {

// The single-sample path has no sample index to report.
inline constexpr std::size_t kInputSample = static_cast<std::size_t>(-1);
// A code column with more categories is almost surely a numeric column chosen by mistake, and
// its one-hot columns would swamp the width.
inline constexpr std::uint64_t kMaxCategories = std::uint64_t{1} << 16;
// Limits for load(): far beyond any real pipeline, small enough that a corrupt size fails
// instead of allocating or overflowing sample-count products.
inline constexpr std::uint64_t kMaxFeatures = std::uint64_t{1} << 32;
inline constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{1} << 30;
// Feature names are derived (a one-hot column is "<name>=<code>"), so a small block can ask for
// very many: 200 encoded features of 65536 categories make 13 million names from 4 KB. Their
// memory (text plus one std::string each) is bounded, at save and before load builds them.
inline constexpr std::uint64_t kMaxNameBytes = std::uint64_t{1} << 26;
inline constexpr char kMagic[8] = {'C', 'T', 'N', 'N', 'P', 'R', 'E', 'P'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderBytes = 24;
enum : std::uint32_t { kTagMinMax = 1, kTagStandard = 2, kTagOneHot = 3, kTagImputer = 4 };

inline std::string sample_text(std::size_t s) {
  return s == kInputSample ? std::string("the input sample") : "sample " + std::to_string(s);
}

// "feature 3" or "feature 3 (\"ash\")" when the dataset names its features.
inline std::string feature_text(std::size_t j, const std::vector<std::string>& names) {
  std::string s = "feature " + std::to_string(j);
  if (j < names.size()) s += " (\"" + excerpt(names[j]) + "\")";
  return s;
}

template <class... Parts>
[[noreturn]] void load_fail(const Parts&... parts) {
  fail("Preprocessing::load: ", parts...);
}

// The memory `names` take as counted against kMaxNameBytes.
inline std::uint64_t names_bytes(const std::vector<std::string>& names) {
  std::uint64_t bytes = 0;
  for (const std::string& n : names) bytes += sizeof(std::string) + n.size();
  return bytes;
}

// The total number of decimal digits in the codes 0 .. k-1.
inline std::uint64_t code_digits(std::uint64_t k) {
  std::uint64_t total = 0;
  for (std::uint64_t lo = 0, hi = 10, d = 1; lo < k; lo = hi, hi *= 10, ++d)
    total += d * (std::min(k, hi) - lo);
  return total;
}

// A training set must be consistent, non-empty and finite: statistics of NaN are meaningless.
// `may_miss[j]` (when not empty) marks the features where NaN, a missing value, is accepted.
inline void check_training_set(const Dataset& d, const char* who,
                               const std::vector<bool>& may_miss = {}) {
  d.check_consistent("training set");
  if (d.size() == 0) fail(who, ".fit: the training set has no samples.");
  const std::size_t f = d.feature_size();
  for (std::size_t k = 0; k < d.x.size(); ++k)
    if (!std::isfinite(d.x[k]) && !(std::isnan(d.x[k]) && !may_miss.empty() && may_miss[k % f]))
      fail(who, ".fit: the training set holds ", d.x[k], " at sample ", k / f, ", ",
           feature_text(k % f, d.feature_names),
           "; clean or impute missing values before fitting the preprocessing.");
}

// The chosen feature indices, sorted; empty chooses all `width` features.
inline std::vector<std::size_t> resolve_features(std::vector<std::size_t> chosen, std::size_t width,
                                                 const char* who) {
  if (chosen.empty()) {
    chosen.resize(width);
    std::iota(chosen.begin(), chosen.end(), std::size_t{0});
    return chosen;
  }
  std::sort(chosen.begin(), chosen.end());
  for (std::size_t c = 0; c < chosen.size(); ++c) {
    if (chosen[c] >= width)
      fail(who, ".fit: feature index ", chosen[c], " is out of range for a training set of ", width,
           " features.");
    if (c > 0 && chosen[c] == chosen[c - 1])
      fail(who, ": feature ", chosen[c], " is chosen twice.");
  }
  return chosen;
}

// The byte codec of the block (core/bytes.hpp, shared with the model file).
using Writer = ctnn::detail::ByteWriter;
using Reader = ctnn::detail::ByteReader;
inline constexpr const char* kBlockName = "Preprocessing::load: the block";

// A step's feature index read by load(): in range and after the previous one.
inline std::size_t checked_feature(std::uint64_t j, std::size_t c, std::size_t width,
                                   std::size_t prev, std::size_t step, const char* kind) {
  if (j >= width || (c > 0 && j <= prev))
    load_fail("step ", step, " (", kind, ") lists feature ", j, " at position ", c,
              "; expected a feature index below ", width,
              c > 0 ? " and above the previous one, " : "", c > 0 ? std::to_string(prev) : "", ".");
  return static_cast<std::size_t>(j);
}

// A scaler's fitted parameters: two float64 statistics per chosen feature (sorted).
struct FeatureStats {
  std::vector<std::size_t> cols;
  std::vector<double> a, b;

  void resize(std::size_t n) {
    a.assign(n, 0.0);
    b.assign(n, 0.0);
  }
  void write(Writer& w) const {
    for (std::size_t c = 0; c < cols.size(); ++c) {
      w.u64(cols[c]);
      w.f64(a[c]);
      w.f64(b[c]);
    }
  }
  // Reads `count` entries of (u64 feature, f64 a, f64 b); `ok(a, b)` vets each pair, and a
  // refused pair's message says `expect`.
  template <class Ok>
  void read(Reader& r, std::size_t width, std::uint64_t count, std::size_t step, const char* kind,
            const char* a_name, const char* b_name, Ok ok, const char* expect) {
    const std::size_t n = r.count(count, 24, (std::string(kind) + " features").c_str());
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t j =
          checked_feature(r.u64("a feature index"), c, width, c > 0 ? cols.back() : 0, step, kind);
      const double va = r.f64(a_name), vb = r.f64(b_name);
      if (!ok(va, vb))
        load_fail("step ", step, " (", kind, ") has ", a_name, " ", va, " and ", b_name, " ", vb,
                  " for feature ", j, "; expected ", expect, ".");
      cols.push_back(j);
      a.push_back(va);
      b.push_back(vb);
    }
  }
};

// The dataset and single-sample transforms shared by every step and by Preprocessing. D
// provides kName, apply(float* buf, sample) (rewrites buf in place from input_size() values to
// output_size() values), can_reject(), check_names(d) and names_after(names).
template <class D>
class RowTransform {
 public:
  bool fitted() const { return fitted_; }
  // The number of input and output features; 0 before fit.
  std::size_t input_size() const { return in_; }
  std::size_t output_size() const { return out_; }

  // A new dataset holding the transformed features, with the labels, targets and class names.
  Dataset transform(const Dataset& d) const {
    check_input(d);
    Dataset out;
    out.sample_shape = shape_after(d);
    out.labels = d.labels;
    out.targets = d.targets;
    out.target_size = d.target_size;
    out.num_classes = d.num_classes;
    out.feature_names = self().names_after(d.feature_names);
    out.class_names = d.class_names;
    out.x.resize(d.size() * out_);
    rows(d.x.data(), out.x.data(), d.size());
    return out;
  }

  // Transforms d's features in place (x is reallocated when the width changes).
  void transform_inplace(Dataset& d) const {
    check_input(d);
    std::vector<std::string> names = self().names_after(d.feature_names);
    std::vector<std::size_t> shape = shape_after(d);
    const std::size_t n = d.size();
    if (in_ == out_ && !self().can_reject()) {
      rows(d.x.data(), d.x.data(), n);
    } else {
      // A fresh buffer keeps d unchanged if a code is rejected half way.
      std::vector<float> x(n * out_);
      rows(d.x.data(), x.data(), n);
      d.x.swap(x);
    }
    d.sample_shape = std::move(shape);
    d.feature_names = std::move(names);
  }

  // One sample, no heap allocation: in.size() == input_size(), out.size() == output_size().
  // `out` may start at in.data() (then it is transformed in place).
  void transform(std::span<const float> in, std::span<float> out) const {
    require_fitted();
    if (in.size() != in_ || out.size() != out_)
      fail(D::kName, ": the input sample has ", in.size(), " values and the output span ",
           out.size(), ", but the fitted sizes are ", in_, " in and ", out_, " out.");
    for (std::size_t j = 0; j < in_; ++j)
      if (!std::isfinite(in[j]) && !(std::isnan(in[j]) && self().fills_missing(j)))
        fail(D::kName, ": the input sample holds ", in[j], " at feature ", j,
             "; clean or impute missing values before preprocessing.");
    if (out.data() != in.data()) std::memmove(out.data(), in.data(), in_ * sizeof(float));
    self().apply(out.data(), kInputSample);
  }

  Dataset fit_transform(const Dataset& train) {
    static_cast<D&>(*this).fit(train);
    return transform(train);
  }

 protected:
  void require_fitted() const {
    if (!fitted_)
      fail(D::kName, ": transform was called before fit; fit it on the training set first.");
  }
  // A step accepts any feature names; Preprocessing checks them against the fitted ones.
  void check_names(const Dataset&) const {}
  // Whether NaN (a missing value) is accepted in input feature j: only where an imputer fills it.
  bool fills_missing(std::size_t) const { return false; }

  std::size_t in_ = 0, out_ = 0;
  bool fitted_ = false;

 private:
  const D& self() const { return static_cast<const D&>(*this); }

  void check_input(const Dataset& d) const {
    require_fitted();
    d.check_consistent();
    const std::size_t f = d.feature_size();
    if (f != in_)
      fail(D::kName, " was fitted on ", in_, " features but the dataset has ", f,
           " features per sample.");
    self().check_names(d);
    for (std::size_t k = 0; k < d.x.size(); ++k)
      if (!std::isfinite(d.x[k]) && !(std::isnan(d.x[k]) && self().fills_missing(k % f)))
        fail(D::kName, ": the dataset holds ", d.x[k], " at sample ", k / f, ", ",
             feature_text(k % f, d.feature_names),
             "; clean or impute missing values before preprocessing.");
  }

  std::vector<std::size_t> shape_after(const Dataset& d) const {
    return in_ == out_ ? d.sample_shape : std::vector<std::size_t>{out_};
  }

  // n rows from src (in_ apart) into dst (out_ apart); src == dst only when in_ == out_.
  void rows(const float* src, float* dst, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
      const float* s = src + i * in_;
      float* t = dst + i * out_;
      if (t != s) std::memcpy(t, s, in_ * sizeof(float));
      self().apply(t, i);
    }
  }
};

}  // namespace detail

// Fills the missing values (NaN) of each chosen feature with a statistic of that feature's
// training values, as scikit-learn's SimpleImputer: the mean or the median of its finite values,
// its most frequent value (of a tie, the smallest), or a constant. Fitted on the training split
// only, so validation and test rows lend it nothing; saved with the model, so inference inputs
// with gaps are filled the same way. `features` empty chooses all. Infinities are not missing
// values: they are an error at fit and at transform. A chosen feature with no finite training
// value cannot be filled by a statistic (an error naming it); constant needs none.
class SimpleImputer : public detail::RowTransform<SimpleImputer> {
 public:
  static constexpr const char* kName = "SimpleImputer";
  enum class Strategy : std::uint8_t { mean = 0, median = 1, most_frequent = 2, constant = 3 };

  explicit SimpleImputer(Strategy strategy = Strategy::mean, std::vector<std::size_t> features = {},
                         double fill_value = 0.0)
      : strategy_(strategy), fill_(fill_value), chosen_(std::move(features)) {
    if (static_cast<std::uint8_t>(strategy) > 3)
      fail("SimpleImputer: unknown strategy ", int{static_cast<std::uint8_t>(strategy)},
           "; use mean, median, most_frequent or constant.");
    if (!std::isfinite(fill_value))
      fail("SimpleImputer: the constant fill value must be finite, not ", fill_value, ".");
    std::sort(chosen_.begin(), chosen_.end());
    if (std::adjacent_find(chosen_.begin(), chosen_.end()) != chosen_.end())
      fail("SimpleImputer: feature ", *std::adjacent_find(chosen_.begin(), chosen_.end()),
           " is chosen twice.");
  }
  static SimpleImputer constant(double value, std::vector<std::size_t> features = {}) {
    return SimpleImputer(Strategy::constant, std::move(features), value);
  }

  void fit(const Dataset& train) {
    fitted_ = false;
    d_check(train);
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    std::vector<double> v;
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      v.clear();
      for (std::size_t i = 0; i < n; ++i) {
        const float x = train.x[i * f + j];
        if (!std::isnan(x)) v.push_back(x);
      }
      st_.b[c] = static_cast<double>(n - v.size());
      if (strategy_ == Strategy::constant) {
        st_.a[c] = fill_;
        continue;
      }
      if (v.empty())
        fail("SimpleImputer.fit: ", detail::feature_text(j, train.feature_names), " has no value in ",
             "the ", n, " training samples (all missing), so there is no ", strategy_name(strategy_),
             " to fill it with; use SimpleImputer::constant or drop the feature.");
      st_.a[c] = strategy_ == Strategy::mean     ? stats::mean(v)
                 : strategy_ == Strategy::median ? stats::median(v)
                                                 : stats::most_frequent(v);
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  Strategy strategy() const { return strategy_; }
  // After fit: the imputed feature indices (sorted), the value each is filled with, and how many
  // training values of each were missing.
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& fill_values() const { return st_.a; }
  std::vector<std::size_t> missing_at_fit() const {
    return std::vector<std::size_t>(st_.b.begin(), st_.b.end());
  }

  static const char* strategy_name(Strategy s) {
    switch (s) {
      case Strategy::mean: return "mean";
      case Strategy::median: return "median";
      case Strategy::most_frequent: return "most frequent value";
      case Strategy::constant: return "constant";
    }
    return "?";
  }

 private:
  friend class detail::RowTransform<SimpleImputer>;
  friend class Preprocessing;

  // The training set may hold NaN in the chosen features (all features when none are chosen).
  void d_check(const Dataset& train) const {
    const std::size_t f = train.feature_size();
    std::vector<bool> may_miss(f, chosen_.empty());
    for (std::size_t j : chosen_)
      if (j < f) may_miss[j] = true;
    detail::check_training_set(train, kName, may_miss);
  }
  bool fills_missing(std::size_t j) const {
    return std::binary_search(st_.cols.begin(), st_.cols.end(), j);
  }
  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      if (std::isnan(v)) v = static_cast<float>(st_.a[c]);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagImputer);
    w.u64(in_);
    w.u64(st_.cols.size());
    w.u8(static_cast<std::uint8_t>(strategy_));
    st_.write(w);
  }
  static SimpleImputer read(detail::Reader& r, std::size_t width, std::uint64_t count,
                            std::size_t step) {
    const std::uint8_t strategy = r.u8("SimpleImputer strategy");
    if (strategy > 3)
      detail::load_fail("step ", step, " (SimpleImputer) has strategy ", int{strategy},
                        "; expected 0 (mean), 1 (median), 2 (most frequent) or 3 (constant).");
    SimpleImputer s(static_cast<Strategy>(strategy));
    s.st_.read(
        r, width, count, step, kName, "fill value", "missing count",
        [](double a, double b) { return std::isfinite(a) && b >= 0.0 && b == std::floor(b) && b < 0x1p53; },
        "a finite fill value and a whole missing count >= 0");
    if (s.strategy_ == Strategy::constant && !s.st_.a.empty()) s.fill_ = s.st_.a[0];
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  Strategy strategy_;
  double fill_;
  std::vector<std::size_t> chosen_;  // as given, sorted; empty means all
  detail::FeatureStats st_;          // a: fill value, b: missing values seen at fit
};

// Maps each chosen feature's training range [min, max] linearly onto [lo, hi] (default [0, 1]);
// a feature constant in training maps to lo. Values outside the training range map outside
// [lo, hi] (no clipping). `features` empty chooses all.
class MinMaxScaler : public detail::RowTransform<MinMaxScaler> {
 public:
  static constexpr const char* kName = "MinMaxScaler";

  explicit MinMaxScaler(double lo = 0.0, double hi = 1.0, std::vector<std::size_t> features = {})
      : lo_(lo), hi_(hi), chosen_(std::move(features)) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
      fail("MinMaxScaler: the feature range [", lo, ", ", hi, "] must be finite with lo < hi.");
  }

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      st_.a[c] = st_.b[c] = train.x[j];
      for (std::size_t i = 1; i < n; ++i) {
        const double v = train.x[i * f + j];
        st_.a[c] = std::min(st_.a[c], v);
        st_.b[c] = std::max(st_.b[c], v);
      }
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  double lo() const { return lo_; }
  double hi() const { return hi_; }
  // After fit: the scaled feature indices (sorted) and their training minimum and maximum.
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& data_min() const { return st_.a; }
  const std::vector<double>& data_max() const { return st_.b; }

 private:
  friend class detail::RowTransform<MinMaxScaler>;
  friend class Preprocessing;

  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      const double range = st_.b[c] - st_.a[c];
      if (range == 0.0) {
        v = static_cast<float>(lo_);
        continue;
      }
      // lo*(1-t) + hi*t is exactly lo at t = 0 and exactly hi at t = 1, so the training
      // extremes land on the range ends; lo + t*(hi-lo) can miss hi by an ulp.
      const double t = (static_cast<double>(v) - st_.a[c]) / range;
      v = static_cast<float>(lo_ * (1.0 - t) + hi_ * t);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagMinMax);
    w.u64(in_);
    w.u64(st_.cols.size());
    w.f64(lo_);
    w.f64(hi_);
    st_.write(w);
  }
  static MinMaxScaler read(detail::Reader& r, std::size_t width, std::uint64_t count,
                           std::size_t step) {
    const double lo = r.f64("MinMaxScaler lo"), hi = r.f64("MinMaxScaler hi");
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
      detail::load_fail("step ", step, " (MinMaxScaler) has the range [", lo, ", ", hi,
                        "]; expected finite values with lo < hi.");
    MinMaxScaler s(lo, hi);
    s.st_.read(
        r, width, count, step, kName, "min", "max",
        [](double a, double b) { return std::isfinite(a) && std::isfinite(b) && a <= b; },
        "finite values with min <= max");
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  double lo_, hi_;
  std::vector<std::size_t> chosen_;  // as given; empty means all
  detail::FeatureStats st_;          // a: training min, b: training max
};

// Standardizes each chosen feature to (x - mean) / std with the training mean and population
// standard deviation; a feature constant in training maps to 0. `features` empty chooses all.
class StandardScaler : public detail::RowTransform<StandardScaler> {
 public:
  static constexpr const char* kName = "StandardScaler";

  explicit StandardScaler(std::vector<std::size_t> features = {}) : chosen_(std::move(features)) {}

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      double sum = 0.0, lo = train.x[j], hi = train.x[j];
      for (std::size_t i = 0; i < n; ++i) {
        const double v = train.x[i * f + j];
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      // Constant is decided by min == max: a rounded mean could leave a tiny nonzero variance.
      if (lo == hi) {
        st_.a[c] = lo;
        continue;
      }
      const double mean = sum / static_cast<double>(n);
      double ss = 0.0;  // two passes: the sum of squares about the mean does not cancel
      for (std::size_t i = 0; i < n; ++i) {
        const double dv = train.x[i * f + j] - mean;
        ss += dv * dv;
      }
      st_.a[c] = mean;
      st_.b[c] = std::sqrt(ss / static_cast<double>(n));
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  // After fit: the standardized feature indices (sorted), their training mean and population
  // standard deviation (0 for a constant feature).
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& mean() const { return st_.a; }
  const std::vector<double>& stddev() const { return st_.b; }

 private:
  friend class detail::RowTransform<StandardScaler>;
  friend class Preprocessing;

  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      const double sd = st_.b[c];
      v = sd == 0.0 ? 0.0f : static_cast<float>((static_cast<double>(v) - st_.a[c]) / sd);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagStandard);
    w.u64(in_);
    w.u64(st_.cols.size());
    st_.write(w);
  }
  static StandardScaler read(detail::Reader& r, std::size_t width, std::uint64_t count,
                             std::size_t step) {
    StandardScaler s;
    s.st_.read(
        r, width, count, step, kName, "mean", "std",
        [](double a, double b) { return std::isfinite(a) && std::isfinite(b) && b >= 0.0; },
        "finite values with std >= 0");
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  std::vector<std::size_t> chosen_;  // as given; empty means all
  detail::FeatureStats st_;          // a: training mean, b: population std
};

// Replaces each chosen feature, where it stands, by k indicator columns. A chosen feature holds
// integer category codes 0..k-1 stored as floats (as a categorical CSV column becomes); k is
// learnt by fit as max code + 1, or given per feature in `categories`. Training codes must be
// valid; at transform an unknown code (>= k, negative, not an integer) is an error naming the
// sample, feature and value, or with Unknown::ignore encodes as all zeros.
class OneHotEncoder : public detail::RowTransform<OneHotEncoder> {
 public:
  static constexpr const char* kName = "OneHotEncoder";

  explicit OneHotEncoder(std::vector<std::size_t> features, Unknown unknown = Unknown::error,
                         std::vector<std::size_t> categories = {})
      : unknown_(unknown) {
    if (features.empty()) fail("OneHotEncoder: no features were chosen to encode.");
    if (!categories.empty() && categories.size() != features.size())
      fail("OneHotEncoder: ", categories.size(), " category counts were given for ",
           features.size(), " features; give one per feature or none.");
    std::vector<std::size_t> order(features.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return features[a] < features[b]; });
    for (std::size_t o = 0; o < order.size(); ++o) {
      const std::size_t j = features[order[o]];
      if (o > 0 && j == chosen_.back()) fail("OneHotEncoder: feature ", j, " is chosen twice.");
      chosen_.push_back(j);
      if (categories.empty()) continue;
      const std::size_t k = categories[order[o]];
      if (k < 1 || k > detail::kMaxCategories)
        fail("OneHotEncoder: feature ", j, " was given ", k, " categories; expected 1 to ",
             detail::kMaxCategories, ".");
      given_k_.push_back(k);
    }
  }

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    cols_ = detail::resolve_features(chosen_, f, kName);
    k_.assign(cols_.size(), 0);
    std::size_t width = f;
    for (std::size_t c = 0; c < cols_.size(); ++c) {
      const std::size_t j = cols_[c];
      const double limit =
          static_cast<double>(given_k_.empty() ? detail::kMaxCategories : given_k_[c]);
      double top = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double v = train.x[i * f + j];
        if (!(v >= 0.0 && v == std::floor(v)))
          fail("OneHotEncoder.fit: the training set holds ", v, " at sample ", i, ", ",
               detail::feature_text(j, train.feature_names),
               ", which is not a category code (a non-negative integer).");
        if (v >= limit)
          fail("OneHotEncoder.fit: the training set holds code ", v, " at sample ", i, ", ",
               detail::feature_text(j, train.feature_names), ", but ",
               given_k_.empty() ? "the limit is " : "the encoder was given ", limit,
               " categories (codes 0 to ", limit - 1, ").");
        top = std::max(top, v);
      }
      k_[c] = given_k_.empty() ? static_cast<std::size_t>(top) + 1 : given_k_[c];
      width += k_[c] - 1;
    }
    in_ = f;
    out_ = width;
    fitted_ = true;
  }

  Unknown unknown() const { return unknown_; }
  // After fit: the encoded feature indices (sorted) and their category counts.
  const std::vector<std::size_t>& features() const { return cols_; }
  const std::vector<std::size_t>& categories() const { return k_; }

 private:
  friend class detail::RowTransform<OneHotEncoder>;
  friend class Preprocessing;
  OneHotEncoder() = default;  // for read()

  // Expands from the back: feature j's columns start at or after j, and every feature before j
  // is still unread, so writing right to left never overwrites input not yet read.
  void apply(float* row, std::size_t sample) const {
    std::size_t dst = out_, j = in_, c = cols_.size();
    while (c > 0) {
      --j;
      if (j != cols_[c - 1]) {
        row[--dst] = row[j];
        continue;
      }
      --c;
      const std::size_t k = k_[c];
      const float v = row[j];
      dst -= k;
      std::fill_n(row + dst, k, 0.0f);
      if (v >= 0.0f && static_cast<double>(v) < static_cast<double>(k) && v == std::floor(v))
        row[dst + static_cast<std::size_t>(v)] = 1.0f;
      else if (unknown_ == Unknown::error)
        fail("OneHotEncoder: ", detail::sample_text(sample), ", feature ", j, " holds ", v,
             ", which is not a known category code (0 to ", k - 1,
             "); pass Unknown::ignore to encode unknown codes as all zeros.");
    }
  }
  bool can_reject() const { return unknown_ == Unknown::error; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const {
    if (in.empty()) return {};
    std::vector<std::string> out;
    out.reserve(out_);
    for (std::size_t j = 0, c = 0; j < in.size(); ++j) {
      if (c < cols_.size() && cols_[c] == j) {
        for (std::size_t k = 0; k < k_[c]; ++k) out.push_back(in[j] + "=" + std::to_string(k));
        ++c;
      } else {
        out.push_back(in[j]);
      }
    }
    return out;
  }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagOneHot);
    w.u64(in_);
    w.u64(cols_.size());
    w.u8(unknown_ == Unknown::ignore ? 1 : 0);
    for (std::size_t c = 0; c < cols_.size(); ++c) {
      w.u64(cols_[c]);
      w.u64(k_[c]);
    }
  }
  static OneHotEncoder read(detail::Reader& r, std::size_t width, std::uint64_t count,
                            std::size_t step) {
    OneHotEncoder s;
    const std::uint8_t unknown = r.u8("the OneHotEncoder unknown-code mode");
    if (unknown > 1)
      detail::load_fail("step ", step, " (OneHotEncoder) has unknown-code mode ", int{unknown},
                        "; expected 0 (error) or 1 (ignore).");
    s.unknown_ = unknown == 1 ? Unknown::ignore : Unknown::error;
    const std::size_t n = r.count(count, 16, "OneHotEncoder features");
    if (n == 0) detail::load_fail("step ", step, " (OneHotEncoder) encodes no features.");
    std::uint64_t out = width;
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t j = detail::checked_feature(r.u64("a feature index"), c, width,
                                                    c > 0 ? s.cols_.back() : 0, step, kName);
      const std::uint64_t k = r.u64("a category count");
      if (k < 1 || k > detail::kMaxCategories)
        detail::load_fail("step ", step, " (OneHotEncoder) gives feature ", j, " ", k,
                          " categories; expected 1 to ", detail::kMaxCategories, ".");
      s.cols_.push_back(j);
      s.k_.push_back(static_cast<std::size_t>(k));
      out += k - 1;
    }
    if (out > detail::kMaxFeatures)
      detail::load_fail("step ", step, " (OneHotEncoder) would output ", out,
                        " features, more than the limit of ", detail::kMaxFeatures, ".");
    s.chosen_ = s.cols_;
    s.given_k_ = s.k_;  // a loaded encoder keeps its categories if refitted
    s.in_ = width;
    s.out_ = static_cast<std::size_t>(out);
    s.fitted_ = true;
    return s;
  }

  Unknown unknown_ = Unknown::error;
  std::vector<std::size_t> chosen_;   // sorted
  std::vector<std::size_t> given_k_;  // per chosen feature, or empty to learn k
  std::vector<std::size_t> cols_, k_;
};

// An ordered list of fitted steps: fit on the training set, then the same transformation for
// validation, test and inference, and save/load as one binary block (format at the top).
class Preprocessing : public detail::RowTransform<Preprocessing> {
 public:
  static constexpr const char* kName = "Preprocessing";
  using Step = std::variant<MinMaxScaler, StandardScaler, OneHotEncoder, SimpleImputer>;

  // Appends a step; the pipeline must be (re)fitted afterwards.
  Preprocessing& add(Step step) {
    steps_.push_back(std::move(step));
    fitted_ = false;
    return *this;
  }
  const std::vector<Step>& steps() const { return steps_; }

  // Fits each step on the output of the steps before it; keeps the training feature names.
  void fit(const Dataset& train) {
    fitted_ = false;
    {
      // NaN may stand where the leading imputers fill it; the imputers' own fit checks the rest.
      const std::size_t f = train.feature_size();
      std::vector<bool> may_miss(f, false);
      for (const Step& s : steps_) {
        const auto* imp = std::get_if<SimpleImputer>(&s);
        if (!imp) break;
        for (std::size_t j = 0; j < f; ++j)
          if (imp->chosen_.empty() || std::binary_search(imp->chosen_.begin(), imp->chosen_.end(), j))
            may_miss[j] = true;
      }
      detail::check_training_set(train, kName, may_miss);
    }
    const Dataset* cur = &train;
    Dataset next;
    for (std::size_t s = 0; s < steps_.size(); ++s)
      std::visit(
          [&](auto& step) {
            step.fit(*cur);
            if (s + 1 < steps_.size()) {
              Dataset t = step.transform(*cur);
              next = std::move(t);
              cur = &next;
            }
          },
          steps_[s]);
    in_ = train.feature_size();
    out_ = in_;
    if (!steps_.empty())
      std::visit([&](const auto& st) { out_ = st.output_size(); }, steps_.back());
    input_names_ = train.feature_names;
    output_names_ = chain_names(input_names_);
    fitted_ = true;
  }

  // The feature names seen at fit (empty if the training set had none) and the names of the
  // output columns.
  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }

  void save(std::ostream& os) const {
    require_fitted();
    if (const std::uint64_t n = detail::names_bytes(output_names_); n > detail::kMaxNameBytes)
      fail("Preprocessing::save: the output feature names take ", n, " bytes, more than the "
           "limit of ", detail::kMaxNameBytes, " that load() accepts.");
    detail::Writer body;
    body.u64(in_);
    body.u64(out_);
    body.u32(static_cast<std::uint32_t>(steps_.size()));
    body.u8(input_names_.empty() ? 0 : 1);
    for (const std::string& name : input_names_) body.str(name);
    for (const Step& s : steps_) std::visit([&](const auto& st) { st.write(body); }, s);
    const std::string& b = body.bytes();
    if (b.size() > detail::kMaxBlockBytes)
      fail("Preprocessing::save: the block would be ", b.size(), " bytes, more than the limit of ",
           detail::kMaxBlockBytes, ".");
    detail::Writer head;
    for (char ch : detail::kMagic) head.u8(static_cast<std::uint8_t>(ch));
    head.u32(detail::kFormatVersion);
    head.u64(b.size());
    head.u32(ctnn::detail::crc32_of(b));
    os.write(head.bytes().data(), static_cast<std::streamsize>(head.bytes().size()));
    os.write(b.data(), static_cast<std::streamsize>(b.size()));
    if (!os)
      fail("Preprocessing::save: writing the ", detail::kHeaderBytes + b.size(),
           "-byte block to the stream failed.");
  }

  // Reads one block written by save(), leaving the stream just after it. Loaded steps keep
  // their features (and an encoder its category counts) if the pipeline is refitted.
  static Preprocessing load(std::istream& is) {
    char head[detail::kHeaderBytes] = {};
    is.read(head, static_cast<std::streamsize>(sizeof head));
    const auto got = static_cast<std::size_t>(is.gcount());
    const std::size_t magic_got = std::min(got, sizeof detail::kMagic);
    if (std::memcmp(head, detail::kMagic, magic_got) != 0) {
      std::ostringstream found;
      for (std::size_t i = 0; i < magic_got; ++i)
        found << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0')
              << int{static_cast<unsigned char>(head[i])};
      detail::load_fail("this is not a preprocessing block: it starts with bytes ", found.str(),
                        " where \"CTNNPREP\" was expected.");
    }
    if (got < detail::kHeaderBytes)
      detail::load_fail("the block is truncated: its header needs ", detail::kHeaderBytes,
                        " bytes but only ", got, " were read.");
    detail::Reader h(std::string_view(head + 8, detail::kHeaderBytes - 8), detail::kBlockName, 8);
    const std::uint32_t version = h.u32("the format version");
    if (version != detail::kFormatVersion)
      detail::load_fail("the block has format version ", version, "; this build reads version ",
                        detail::kFormatVersion, ".");
    const std::uint64_t size = h.u64("the body size");
    const std::uint32_t crc = h.u32("the checksum");
    if (size > detail::kMaxBlockBytes)
      detail::load_fail("the header announces a body of ", size, " bytes, more than the limit of ",
                        detail::kMaxBlockBytes, "; the block is corrupt.");
    // Read in chunks so a corrupt size meets the end of the stream before a big allocation.
    std::string body;
    while (body.size() < size) {
      const std::size_t old = body.size();
      const std::size_t chunk =
          std::min<std::size_t>(static_cast<std::size_t>(size) - old, 1u << 16);
      body.resize(old + chunk);
      is.read(body.data() + old, static_cast<std::streamsize>(chunk));
      const auto n = static_cast<std::size_t>(is.gcount());
      if (n < chunk)
        detail::load_fail("the block is truncated: the header announces a body of ", size,
                          " bytes but only ", old + n, " followed.");
    }
    if (const std::uint32_t actual = ctnn::detail::crc32_of(body); actual != crc) {
      std::ostringstream m;
      m << std::hex << "the body's CRC-32 is 0x" << actual << " but the header says 0x" << crc
        << "; the block is corrupt.";
      detail::load_fail(m.str());
    }
    return parse(body);
  }

 private:
  friend class detail::RowTransform<Preprocessing>;

  void apply(float* row, std::size_t sample) const {
    for (const Step& s : steps_) std::visit([&](const auto& st) { st.apply(row, sample); }, s);
  }
  bool fills_missing(std::size_t j) const {
    for (const Step& s : steps_) {
      const auto* imp = std::get_if<SimpleImputer>(&s);
      if (!imp) return false;
      if (imp->fills_missing(j)) return true;
    }
    return false;
  }
  bool can_reject() const {
    for (const Step& s : steps_)
      if (std::visit([](const auto& st) { return st.can_reject(); }, s)) return true;
    return false;
  }
  void check_names(const Dataset& d) const {
    if (input_names_.empty() || d.feature_names.empty()) return;
    for (std::size_t j = 0; j < input_names_.size(); ++j)
      if (d.feature_names[j] != input_names_[j])
        fail("Preprocessing: feature ", j, " of the dataset is named \"",
             excerpt(d.feature_names[j]), "\" but was \"", excerpt(input_names_[j]),
             "\" at fit; the columns must come in the order the preprocessing was fitted on.");
  }
  // Fitted names are carried to datasets that have none.
  std::vector<std::string> names_after(const std::vector<std::string>& in) const {
    return output_names_.empty() ? chain_names(in) : output_names_;
  }
  std::vector<std::string> chain_names(std::vector<std::string> names) const {
    for (const Step& s : steps_)
      names = std::visit([&](const auto& st) { return st.names_after(names); }, s);
    return names;
  }

  // chain_names(input names) for load(), refusing names over kMaxNameBytes before building them.
  static std::vector<std::string> checked_names(const std::vector<Step>& steps,
                                                std::vector<std::string> names) {
    const auto check = [](std::uint64_t bytes) {
      if (bytes > detail::kMaxNameBytes)
        detail::load_fail("the pipeline's feature names would take more than ",
                          detail::kMaxNameBytes, " bytes (one-hot columns are named "
                          "\"<name>=<code>\"); the block is corrupt or its pipeline too wide.");
    };
    std::uint64_t bytes = detail::names_bytes(names);
    check(bytes);
    for (const Step& step : steps) {
      if (names.empty()) break;
      if (const auto* e = std::get_if<OneHotEncoder>(&step)) {
        for (std::size_t c = 0; c < e->cols_.size(); ++c) {  // name j becomes k names "j=<code>"
          const std::uint64_t k = e->k_[c], len = names[e->cols_[c]].size();
          bytes += (k - 1) * sizeof(std::string) + (k - 1) * len + k + detail::code_digits(k);
          check(bytes);  // each term is below 2^48 and bytes below 2^27: no overflow
        }
      }
      names = std::visit([&](const auto& st) { return st.names_after(names); }, step);
    }
    return names;
  }

  static Preprocessing parse(std::string_view body) {
    detail::Reader r(body, detail::kBlockName, detail::kHeaderBytes);
    const std::uint64_t in = r.u64("the input size"), out = r.u64("the output size");
    const auto check_size = [](std::uint64_t v, const char* which) {
      if (v == 0 || v > detail::kMaxFeatures)
        detail::load_fail("the block gives ", which, " size ", v, "; expected 1 to ",
                          detail::kMaxFeatures, " features.");
    };
    check_size(in, "input");
    check_size(out, "output");
    const std::uint32_t n_steps = r.u32("the step count");
    const std::uint8_t has_names = r.u8("the has-names flag");
    if (has_names > 1)
      detail::load_fail("the has-names flag is ", int{has_names}, "; expected 0 or 1.");
    Preprocessing p;
    if (has_names == 1) {
      const std::size_t n = r.count(in, 4, "feature names");
      if (n * sizeof(std::string) > detail::kMaxNameBytes)
        detail::load_fail("the block names ", n, " input features, more than the ",
                          detail::kMaxNameBytes / sizeof(std::string), " names it may hold.");
      p.input_names_.reserve(n);
      for (std::size_t j = 0; j < n; ++j) p.input_names_.push_back(r.str("a feature name"));
    }
    // The smallest step is its tag, input size and count: 20 bytes.
    p.steps_.reserve(r.count(n_steps, 20, "steps"));
    auto width = static_cast<std::size_t>(in);
    for (std::size_t s = 0; s < n_steps; ++s) {
      const std::uint32_t tag = r.u32("a step's kind tag");
      const std::uint64_t step_in = r.u64("a step's input size");
      if (step_in != width)
        detail::load_fail("step ", s, " says its input has ", step_in,
                          " features but the steps before it give ", width, ".");
      const std::uint64_t count = r.u64("a step's feature count");
      switch (tag) {
        case detail::kTagMinMax:
          p.steps_.emplace_back(MinMaxScaler::read(r, width, count, s));
          break;
        case detail::kTagStandard:
          p.steps_.emplace_back(StandardScaler::read(r, width, count, s));
          break;
        case detail::kTagOneHot:
          p.steps_.emplace_back(OneHotEncoder::read(r, width, count, s));
          break;
        case detail::kTagImputer:
          p.steps_.emplace_back(SimpleImputer::read(r, width, count, s));
          break;
        default:
          detail::load_fail("step ", s, " has the unknown kind tag ", tag,
                            "; expected 1 (MinMaxScaler), 2 (StandardScaler), 3 (OneHotEncoder) "
                            "or 4 (SimpleImputer).");
      }
      std::visit([&](const auto& st) { width = st.output_size(); }, p.steps_.back());
    }
    if (width != out)
      detail::load_fail("the steps give ", width, " output features but the header says ", out,
                        ".");
    if (r.remaining() != 0)
      detail::load_fail("the body has ", r.remaining(),
                        " bytes left after the last step; its sizes are inconsistent.");
    p.in_ = static_cast<std::size_t>(in);
    p.out_ = width;
    p.output_names_ = checked_names(p.steps_, p.input_names_);
    p.fitted_ = true;
    return p;
  }

  std::vector<Step> steps_;
  std::vector<std::string> input_names_, output_names_;
};

// Short descriptions: "StandardScaler(30 features)", "MinMaxScaler([-1, 1], 4 of 13 features)",
// "OneHotEncoder(feature 3: 4 categories)"; a pipeline lists its steps, comma separated.
namespace detail {
inline void describe_count(std::ostream& os, std::size_t chosen, std::size_t width) {
  if (chosen != width) os << chosen << " of ";
  os << width << (width == 1 ? " feature" : " features");
}
}  // namespace detail

inline std::ostream& operator<<(std::ostream& os, const MinMaxScaler& s) {
  os << "MinMaxScaler(";
  if (s.fitted()) {
    os << "[" << s.lo() << ", " << s.hi() << "], ";
    detail::describe_count(os, s.features().size(), s.input_size());
  } else {
    os << "not fitted";
  }
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const StandardScaler& s) {
  os << "StandardScaler(";
  if (s.fitted())
    detail::describe_count(os, s.features().size(), s.input_size());
  else
    os << "not fitted";
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const SimpleImputer& s) {
  os << "SimpleImputer(" << SimpleImputer::strategy_name(s.strategy());
  if (s.fitted()) {
    os << ", ";
    detail::describe_count(os, s.features().size(), s.input_size());
    std::size_t missing = 0;
    for (std::size_t m : s.missing_at_fit()) missing += m;
    os << ", " << missing << " missing at fit";
  } else {
    os << ", not fitted";
  }
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const OneHotEncoder& s) {
  os << "OneHotEncoder(";
  if (!s.fitted()) return os << "not fitted)";
  for (std::size_t c = 0; c < s.features().size(); ++c)
    os << (c ? ", " : "") << "feature " << s.features()[c] << ": " << s.categories()[c]
       << (s.categories()[c] == 1 ? " category" : " categories");
  if (s.unknown() == Unknown::ignore) os << "; unknown codes ignored";
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const Preprocessing& p) {
  if (p.steps().empty()) return os << "Preprocessing(no steps)";
  for (std::size_t s = 0; s < p.steps().size(); ++s) {
    if (s) os << ", ";
    std::visit([&](const auto& st) { os << st; }, p.steps()[s]);
  }
  return os;
}

}  // namespace ctnn::data
