// ctnn/data/clean.hpp: cleaning a Table in place, each step reporting what it touched.
//
// Every step takes the Table, optionally a selection of columns (empty = all columns), changes
// the table in place and returns a CleanReport that prints as one line, e.g.
//   impute(mean): 16 cells in 14 rows (mean radius: 4, mean texture: 2, ...)
//   drop_duplicates: dropped 10 of 579 rows, 569 left
//
//   drop_missing(t, cols)           drops the rows with a missing (NaN) cell in cols.
//   impute(t, strategy, cols)       fills the missing cells of cols with Impute::mean(),
//                                   median(), most_frequent() or constant(value / "text").
//   drop_duplicates(t, cols)        drops rows equal to an earlier row in cols (missing equals
//                                   missing here), keeping the first.
//   drop_outliers(t, rule, cols)    drops the rows with an outlier in cols; the rule is
//   clip_outliers(t, rule, cols)    ZScore{threshold} or Range{lo, hi}; clipping moves each
//                                   outlier to the nearest bound instead.
//
// Missing cells (NaN; the CSV reader also reads non-numeric text in a numeric column as NaN) are
// never outliers and are left alone by all but drop_missing and impute.
//
// Order of statistics: a step computes every column's statistic (mean, median, mode, z-score
// bounds) from the table as it was passed in, all before changing anything. So the result does
// not depend on the order of the columns (dropping the outlier rows of one column does not shift
// the z-scores of the next), and a step that throws leaves the table unchanged.
//
// Column kinds: mean, median, constant(number) and the outlier rules apply to numeric columns,
// constant("text") to categorical ones and most_frequent to both. A column of the other kind is
// skipped when the selection is empty (all columns) and is an error when named.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/stats.hpp"
#include "ctnn/data/table.hpp"

namespace ctnn::data {

// What a cleaning step did. For the dropping steps rows_touched is the number of rows dropped and
// cells_changed is 0; for impute and clip_outliers rows_touched counts the rows with at least one
// changed cell.
struct CleanReport {
  std::string step;  // "drop_missing", "impute(median)", "clip_outliers(|z| > 3)", ...
  std::size_t rows_before = 0;
  std::size_t rows_after = 0;
  std::size_t rows_touched = 0;
  std::size_t cells_changed = 0;
  // Per column, in table order, only nonzero: missing cells found (drop_missing), cells filled
  // (impute) or outlier cells found (drop_outliers, clip_outliers).
  std::vector<std::pair<std::string, std::size_t>> per_column;
  // Columns with missing cells that impute left alone because the strategy does not apply to
  // their kind (e.g. a categorical column under mean), with their missing-cell counts.
  std::vector<std::pair<std::string, std::size_t>> skipped;

  std::size_t dropped() const { return rows_before - rows_after; }
  // The per-column count for `column`, 0 if it is not listed.
  std::size_t count(const std::string& column) const {
    for (const auto& [name, n] : per_column)
      if (name == column) return n;
    return 0;
  }
  std::string str() const {
    std::ostringstream os;
    os << step << ": ";
    const auto n = [](std::size_t k, const char* what) {
      return std::to_string(k) + " " + what + (k == 1 ? "" : "s");
    };
    if (step.rfind("drop", 0) == 0)
      os << "dropped " << dropped() << " of " << n(rows_before, "row") << ", " << rows_after
         << " left";
    else
      os << n(cells_changed, "cell") << " in " << n(rows_touched, "row");
    const auto list = [&os](const std::vector<std::pair<std::string, std::size_t>>& v) {
      for (std::size_t i = 0; i < v.size(); ++i)
        os << (i ? ", " : "") << v[i].first << ": " << v[i].second;
    };
    if (!per_column.empty()) {
      os << " (";
      list(per_column);
      os << ")";
    }
    if (!skipped.empty()) {
      os << "; missing cells left in skipped columns (";
      list(skipped);
      os << ")";
    }
    return os.str();
  }
};

inline std::ostream& operator<<(std::ostream& os, const CleanReport& r) { return os << r.str(); }

// How impute fills a missing cell.
class Impute {
 public:
  enum class Kind { mean, median, most_frequent, constant };

  // The mean / median of the column's finite values (an infinity is no measurement to average).
  static Impute mean() { return Impute(Kind::mean); }
  static Impute median() {
    return Impute(Kind::median);
  }  // of an even count: the middle two's mean
  // The most frequent value or category; of a tie, the smallest value / first category.
  static Impute most_frequent() { return Impute(Kind::most_frequent); }
  // A fixed number (numeric columns) or category (categorical columns; added if new).
  static Impute constant(double value) {
    if (std::isnan(value)) fail("Impute::constant needs a value to fill in, not NaN.");
    Impute i(Kind::constant);
    i.value_ = value;
    return i;
  }
  static Impute constant(std::string category) {
    Impute i(Kind::constant);
    i.text_ = true;
    i.category_ = std::move(category);
    return i;
  }

  Kind kind() const { return kind_; }
  bool is_text() const { return text_; }
  double value() const { return value_; }
  const std::string& category() const { return category_; }
  bool applies_to(const Column& c) const {
    if (kind_ == Kind::most_frequent) return true;
    if (kind_ == Kind::constant) return text_ == c.categorical;
    return !c.categorical;
  }
  // "mean", "constant 0", "constant \"unknown\"": the step's name in reports and errors.
  std::string name() const {
    switch (kind_) {
      case Kind::mean:
        return "mean";
      case Kind::median:
        return "median";
      case Kind::most_frequent:
        return "most_frequent";
      case Kind::constant:
        break;
    }
    if (text_) return "constant \"" + excerpt(category_) + "\"";
    std::ostringstream os;
    os << "constant " << value_;
    return os.str();
  }

 private:
  explicit Impute(Kind k) : kind_(k) {}
  Kind kind_;
  bool text_ = false;
  double value_ = 0;
  std::string category_;
};

// An outlier is a value whose |x - mean| / std exceeds `threshold`, i.e. one outside
// [mean - threshold * std, mean + threshold * std], with the mean and the population standard
// deviation of the column's finite values; ±infinity is one too, unless the column's finite
// values are all equal (then it has no outliers). Clipping moves it to the nearer bound.
struct ZScore {
  double threshold = 3.0;
};
// An outlier is a value outside [lo, hi] (either bound may be infinite); clipping moves it to
// the nearer bound.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};
using OutlierRule = std::variant<ZScore, Range>;

namespace detail {

// The selected column positions, each once, in the order given; all columns when `cols` is empty.
inline std::vector<std::size_t> select_columns(const Table& t, const std::vector<ColumnRef>& cols) {
  std::vector<std::size_t> out;
  if (cols.empty()) {
    for (std::size_t c = 0; c < t.cols(); ++c) out.push_back(c);
    return out;
  }
  for (const ColumnRef& ref : cols) {
    const std::size_t c = t.index_of(ref);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

// Whether each column is selected (all when `cols` is empty): a lookup, not a search per column.
inline std::vector<bool> selected(const Table& t, const std::vector<ColumnRef>& cols) {
  std::vector<bool> sel(t.cols(), cols.empty());
  if (!cols.empty())
    for (std::size_t c : select_columns(t, cols)) sel[c] = true;
  return sel;
}

inline std::size_t count_missing(const Column& c) {
  std::size_t n = 0;
  for (double v : c.values) n += std::isnan(v) ? 1u : 0u;
  return n;
}

// Keeps the rows not marked in `drop` and fills in the report's row counts.
inline void drop_marked(Table& t, const std::vector<bool>& drop, CleanReport& r) {
  std::vector<std::size_t> keep;
  for (std::size_t row = 0; row < drop.size(); ++row)
    if (!drop[row]) keep.push_back(row);
  r.rows_touched = drop.size() - keep.size();
  if (keep.size() != drop.size()) t.keep_rows(keep);
  r.rows_after = t.rows();
}

inline std::vector<double> finite_values(const Column& c) {
  std::vector<double> v;
  for (double x : c.values)
    if (std::isfinite(x)) v.push_back(x);
  return v;
}

// The fill value for one column; throws (naming the table and column) when there is none.
inline double impute_value(Table& t, std::size_t col, const Impute& how) {
  Column& c = t.columns[col];
  const auto none = [&](const char* what) {
    const std::size_t missing = count_missing(c);
    std::ostringstream why;
    if (missing == c.values.size())
      why << "all " << missing << " of its cells are missing";
    else
      why << missing << " of its " << c.values.size() << " cells are missing and the rest hold no "
          << what;
    fail(t.describe(), ": impute(", how.name(), ") cannot fill column \"", excerpt(c.name),
         "\": ", why.str(), ", so there is no ", how.name(), " to fill them with.");
  };
  switch (how.kind()) {
    case Impute::Kind::mean: {
      const std::vector<double> v = finite_values(c);
      if (v.empty()) none("finite value");
      return stats::mean(v);
    }
    case Impute::Kind::median: {
      std::vector<double> v = finite_values(c);
      if (v.empty()) none("finite value");
      return stats::median(v);
    }
    case Impute::Kind::most_frequent: {
      std::vector<double> v;
      for (double x : c.values)
        if (!std::isnan(x)) v.push_back(x);
      if (v.empty()) none("value");
      return stats::most_frequent(v);  // of a tie the smallest value (first category)
    }
    case Impute::Kind::constant:
      break;
  }
  if (!how.is_text()) return how.value();
  const auto it = std::find(c.categories.begin(), c.categories.end(), how.category());
  return double(it - c.categories.begin());  // == categories.size() for a new category
}

// Cells equal for duplicate detection: missing equals missing, and -0 equals 0.
inline bool same_cell(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

inline std::uint64_t cell_hash(double v) {
  if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
  if (v == 0) v = 0;  // -0 hashes as 0
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// The rule's bounds for one numeric column: values outside [lo, hi] are outliers (NaN never).
struct Bounds {
  double lo, hi;
};

inline Bounds outlier_bounds(const Column& c, const OutlierRule& rule) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (const Range* r = std::get_if<Range>(&rule)) return {r->lo, r->hi};
  const double thr = std::get<ZScore>(rule).threshold;
  const std::vector<double> v = finite_values(c);
  if (v.empty()) return {-kInf, kInf};
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = sum / double(v.size());
  double ss = 0;  // two passes: the one-pass formula cancels badly when std << |mean|
  for (double x : v) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / double(v.size()));
  if (sd == 0) return {-kInf, kInf};
  return {mean - thr * sd, mean + thr * sd};
}

inline std::string rule_name(const OutlierRule& rule) {
  std::ostringstream os;
  if (const Range* r = std::get_if<Range>(&rule))
    os << "range [" << r->lo << ", " << r->hi << "]";
  else
    os << "|z| > " << std::get<ZScore>(rule).threshold;
  return os.str();
}

// Checks the rule and the columns, then returns each selected numeric column with its bounds.
inline std::vector<std::pair<std::size_t, Bounds>> outlier_columns(
    const Table& t, const OutlierRule& rule, const std::vector<ColumnRef>& cols,
    const std::string& step) {
  if (const Range* r = std::get_if<Range>(&rule)) {
    if (!(r->lo <= r->hi))
      fail(step, ": Range{", r->lo, ", ", r->hi, "} is not a range; lo must not exceed hi and ",
           "neither may be NaN.");
  } else {
    const double thr = std::get<ZScore>(rule).threshold;
    if (!(thr > 0) || !std::isfinite(thr))
      fail(step, ": the z-score threshold must be a positive number, not ", thr, ".");
  }
  t.check_consistent();
  std::vector<std::pair<std::size_t, Bounds>> out;
  for (std::size_t c : select_columns(t, cols)) {
    const Column& col = t.columns[c];
    if (col.categorical) {
      if (cols.empty()) continue;
      fail(t.describe(), ": ", step, " cannot judge column \"", excerpt(col.name),
           "\": it is categorical (", col.categories.size(),
           " categories), so no value of it lies outside a range or has a z-score.");
    }
    out.emplace_back(c, outlier_bounds(col, rule));
  }
  return out;
}

inline bool outside(double v, Bounds b) { return v < b.lo || v > b.hi; }  // false for NaN

}  // namespace detail

// Drops every row with a missing cell in `cols` (all columns when empty).
inline CleanReport drop_missing(Table& t, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"drop_missing", t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> drop(t.rows(), false);
  const std::vector<bool> sel = detail::selected(t, cols);
  for (std::size_t c = 0; c < t.cols(); ++c) {
    if (!sel[c]) continue;
    const Column& col = t.columns[c];
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (col.missing(row)) drop[row] = true, ++n;
    if (n) r.per_column.emplace_back(col.name, n);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Fills the missing cells of `cols` (all columns when empty) as `how` says. Errors name the
// column: a column named in `cols` whose kind the strategy does not apply to, or a column with
// missing cells and no value to compute the fill from.
inline CleanReport impute(Table& t, const Impute& how, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"impute(" + how.name() + ")", t.rows(), t.rows(), 0, 0, {}, {}};
  const std::vector<bool> sel = detail::selected(t, cols);
  // First every fill value (and every error), then the changes.
  std::vector<std::pair<std::size_t, double>> fills;
  for (std::size_t c = 0; c < t.cols(); ++c) {
    if (!sel[c]) continue;
    const Column& col = t.columns[c];
    const std::size_t missing = detail::count_missing(col);
    if (!how.applies_to(col)) {
      if (!cols.empty())
        fail(t.describe(), ": impute(", how.name(), ") cannot fill column \"", excerpt(col.name),
             "\", which is ", col.categorical ? "categorical" : "numeric",
             col.categorical ? "; use Impute::most_frequent() or Impute::constant(\"text\") for it."
                             : "; use a numeric Impute::constant or another strategy for it.");
      if (missing) r.skipped.emplace_back(col.name, missing);
      continue;
    }
    if (missing) fills.emplace_back(c, detail::impute_value(t, c, how));
  }
  std::vector<bool> touched(t.rows(), false);
  for (const auto& [c, value] : fills) {
    Column& col = t.columns[c];
    if (col.categorical && value == double(col.categories.size()))
      col.categories.push_back(how.category());
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (col.missing(row)) col.values[row] = value, touched[row] = true, ++n;
    r.per_column.emplace_back(col.name, n);
    r.cells_changed += n;
  }
  r.rows_touched = std::size_t(std::count(touched.begin(), touched.end(), true));
  return r;
}

// Drops every row equal in `cols` (all columns when empty) to an earlier row, keeping the first.
inline CleanReport drop_duplicates(Table& t, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"drop_duplicates", t.rows(), t.rows(), 0, 0, {}, {}};
  const std::vector<std::size_t> sel = detail::select_columns(t, cols);
  const auto equal = [&](std::size_t a, std::size_t b) {
    for (std::size_t c : sel)
      if (!detail::same_cell(t.columns[c].values[a], t.columns[c].values[b])) return false;
    return true;
  };
  // Rows bucketed by a hash of their cells, so the check is linear rather than quadratic.
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> kept;
  std::vector<bool> drop(t.rows(), false);
  for (std::size_t row = 0; row < t.rows(); ++row) {
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    for (std::size_t c : sel)
      h = (h ^ detail::cell_hash(t.columns[c].values[row])) * 0x100000001b3ull + (h >> 29);
    std::vector<std::size_t>& bucket = kept[h];
    drop[row] =
        std::any_of(bucket.begin(), bucket.end(), [&](std::size_t k) { return equal(k, row); });
    if (!drop[row]) bucket.push_back(row);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Drops every row with an outlier under `rule` in `cols` (all numeric columns when empty).
inline CleanReport drop_outliers(Table& t, const OutlierRule& rule,
                                 const std::vector<ColumnRef>& cols = {}) {
  const std::string step = "drop_outliers(" + detail::rule_name(rule) + ")";
  const auto bounds = detail::outlier_columns(t, rule, cols, step);
  CleanReport r{step, t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> drop(t.rows(), false);
  for (const auto& [c, b] : bounds) {
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (detail::outside(t.columns[c].values[row], b)) drop[row] = true, ++n;
    if (n) r.per_column.emplace_back(t.columns[c].name, n);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Moves every outlier under `rule` in `cols` (all numeric columns when empty) to the nearer bound.
inline CleanReport clip_outliers(Table& t, const OutlierRule& rule,
                                 const std::vector<ColumnRef>& cols = {}) {
  const std::string step = "clip_outliers(" + detail::rule_name(rule) + ")";
  const auto bounds = detail::outlier_columns(t, rule, cols, step);
  CleanReport r{step, t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> touched(t.rows(), false);
  for (const auto& [c, b] : bounds) {
    std::size_t n = 0;
    std::vector<double>& values = t.columns[c].values;
    for (std::size_t row = 0; row < values.size(); ++row)
      if (detail::outside(values[row], b))
        values[row] = values[row] < b.lo ? b.lo : b.hi, touched[row] = true, ++n;
    if (n) r.per_column.emplace_back(t.columns[c].name, n);
    r.cells_changed += n;
  }
  r.rows_touched = std::size_t(std::count(touched.begin(), touched.end(), true));
  return r;
}

}  // namespace ctnn::data
