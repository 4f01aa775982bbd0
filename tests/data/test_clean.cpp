// Tests for ctnn/data/clean.hpp: hand-computable small tables, then the documented dirt of
// sklearn/breast_cancer_dirty.csv (see sklearn/make_dirty.py) against breast_cancer.csv.
#include "ctnn/data/clean.hpp"
#include "ctnn/data/from_table.hpp"
#include "ctnn/data/preprocess.hpp"
#include "ctnn/data/split.hpp"
#include "ctnn/data/transform.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Catch::Contains;
using ctnn::data::Column;
using ctnn::data::Impute;
using ctnn::data::Range;
using ctnn::data::Table;
using ctnn::data::ZScore;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A table made in memory from numeric columns; lines are 1..n so rows can be told apart.
Table numeric(const std::vector<std::pair<std::string, std::vector<double>>>& cols) {
  Table t;
  for (const auto& [name, values] : cols) t.columns.push_back(Column{name, values, false, {}});
  for (std::size_t r = 0; r < t.rows(); ++r) t.lines.push_back(r + 1);
  return t;
}

void add_categorical(Table& t, const std::string& name, std::vector<std::string> categories,
                     std::vector<double> values) {
  t.columns.push_back(Column{name, std::move(values), true, std::move(categories)});
}

// Bitwise-minded equality of two columns' values, NaN equal to NaN.
bool same(const std::vector<double>& a, const std::vector<double>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); });
}

std::vector<std::vector<std::string>> csv_cells(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();  // a trailing empty cell
    rows.push_back(cells);
  }
  return rows;
}

// A number, or NaN for text that is not one in full ("", "NA", "n/a?", "12..5"), as the CSV
// reader reads a non-numeric cell of a numeric column.
double number(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return s.empty() || *end != '\0' ? kNaN : v;
}

const std::string kDir = CTNN_SKLEARN_DATA_DIR;

// breast_cancer_dirty.csv: a header, 30 numeric columns and the categorical "diagnosis".
Table dirty() {
  const auto rows = csv_cells(kDir + "/breast_cancer_dirty.csv");
  Table t;
  t.source = "breast_cancer_dirty.csv";
  for (const std::string& name : rows[0]) t.columns.push_back(Column{name, {}, false, {}});
  Column& diagnosis = t.columns.back();
  diagnosis.categorical = true;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    REQUIRE(rows[r].size() == 31);
    for (std::size_t c = 0; c < 30; ++c) t.columns[c].values.push_back(number(rows[r][c]));
    const std::string& label = rows[r][30];
    auto it = std::find(diagnosis.categories.begin(), diagnosis.categories.end(), label);
    if (!label.empty() && it == diagnosis.categories.end())
      it = diagnosis.categories.insert(it, label);
    diagnosis.values.push_back(label.empty() ? kNaN : double(it - diagnosis.categories.begin()));
    t.lines.push_back(r + 1);
  }
  t.check_consistent();
  return t;
}

// breast_cancer.csv, the clean original: 569 rows of 30 features and the class (0 malignant).
std::vector<std::vector<double>> original() {
  auto rows = csv_cells(kDir + "/breast_cancer.csv");
  rows.erase(rows.begin());
  std::vector<std::vector<double>> out;
  for (const auto& r : rows) {
    out.emplace_back();
    for (const std::string& s : r) out.back().push_back(std::stod(s));
  }
  return out;
}

// The row of `t` that came from file line `line`.
std::size_t row_of(const Table& t, std::size_t line) {
  const auto it = std::find(t.lines.begin(), t.lines.end(), line);
  REQUIRE(it != t.lines.end());
  return std::size_t(it - t.lines.begin());
}

// The documented dirt: unreadable cells per column (make_dirty.py), their rows' lines, the
// duplicate copies' lines and the two outliers' lines.
const std::vector<std::pair<std::string, std::size_t>> kMissing = {
    {"mean radius", 4},      {"mean texture", 2},    {"mean perimeter", 1}, {"mean area", 3},
    {"mean smoothness", 1},  {"texture error", 1},   {"worst radius", 1},   {"worst area", 1},
    {"worst smoothness", 1}, {"worst concavity", 1}, {"diagnosis", 1}};
const std::vector<std::size_t> kMissingLines = {5,   44,  68,  81,  125, 155, 206, 263,
                                                307, 318, 341, 396, 464, 511, 541};
const std::vector<std::size_t> kCopyLines = {13, 64, 96, 186, 258, 298, 409, 480, 531, 580};

}  // namespace

TEST_CASE("A CleanReport prints as one line with its per-column counts", "[data][clean]") {
  Table t = numeric({{"mean radius", {1, kNaN, kNaN, 4, kNaN}},
                     {"mean area", {kNaN, kNaN, 3, kNaN, kNaN}},
                     {"done", {1, 2, 3, 4, 5}}});
  const auto r = ctnn::data::impute(t, Impute::mean());
  std::ostringstream os;
  os << r;
  CHECK(os.str() == "impute(mean): 7 cells in 5 rows (mean radius: 3, mean area: 4)");
  CHECK(r.rows_before == 5);
  CHECK(r.rows_after == 5);
  CHECK(r.count("mean area") == 4);
  CHECK(r.count("done") == 0);
  Table u = numeric({{"a", {1, kNaN, 1, 2}}});
  const auto d = ctnn::data::drop_duplicates(u);
  CHECK(d.str() == "drop_duplicates: dropped 1 of 4 rows, 3 left");
  CHECK(ctnn::data::drop_missing(u).str() == "drop_missing: dropped 1 of 3 rows, 2 left (a: 1)");
  CHECK(ctnn::data::clip_outliers(u, Range{0, 1.5}).str() ==
        "clip_outliers(range [0, 1.5]): 1 cell in 1 row (a: 1)");
  CHECK(ctnn::data::drop_outliers(u, ZScore{2}).str() ==
        "drop_outliers(|z| > 2): dropped 0 of 2 rows, 2 left");
}

TEST_CASE("drop_missing drops the rows with a missing cell in the chosen columns",
          "[data][clean]") {
  Table t = numeric({{"a", {1, kNaN, 3, 4}}, {"b", {kNaN, 2, 3, 4}}, {"c", {1, 2, kNaN, 4}}});
  Table all = t;
  const auto r = ctnn::data::drop_missing(all);
  CHECK(all.lines == std::vector<std::size_t>{4});
  CHECK(r.dropped() == 3);
  CHECK(r.rows_touched == 3);
  CHECK(r.cells_changed == 0);
  const auto r2 = ctnn::data::drop_missing(t, {"a", 1, "a"});  // by name and position, once each
  CHECK(t.lines == std::vector<std::size_t>{3, 4});
  CHECK(t["c"].missing(0));
  CHECK(r2.per_column == std::vector<std::pair<std::string, std::size_t>>{{"a", 1}, {"b", 1}});
  REQUIRE_THROWS_WITH(ctnn::data::drop_missing(t, {"z"}), Contains("no column \"z\""));
}

TEST_CASE("impute fills with the mean, median, mode or a constant", "[data][clean]") {
  SECTION("mean and median over the finite values") {
    Table t = numeric({{"odd", {1, kNaN, 2, 6, kNaN}}, {"even", {1, 2, 10, kNaN, 4}}});
    Table m = t;
    const auto r = ctnn::data::impute(m, Impute::mean());
    CHECK(same(m["odd"].values, {1, 3, 2, 6, 3}));
    CHECK(same(m["even"].values, {1, 2, 10, 4.25, 4}));
    CHECK(r.cells_changed == 3);
    CHECK(r.rows_touched == 3);
    const auto r2 = ctnn::data::impute(t, Impute::median(), {"even"});
    CHECK(same(t["even"].values, {1, 2, 10, 3, 4}));  // (2 + 4) / 2
    CHECK(t["odd"].missing(1));
    CHECK(r2.str() == "impute(median): 1 cell in 1 row (even: 1)");
    Table inf = numeric({{"x", {kInf, 1, kNaN, 3}}});
    ctnn::data::impute(inf, Impute::mean());
    CHECK(inf["x"].values[2] == 2);  // the infinity is left out of the mean
  }
  SECTION("most_frequent takes the smallest value or first category of a tie") {
    Table t = numeric({{"n", {5, 2, kNaN, 5, 2, 7}}});
    add_categorical(t, "kind", {"cat", "dog", "eel"}, {2, kNaN, 1, 2, 1, kNaN});
    const auto r = ctnn::data::impute(t, Impute::most_frequent());
    CHECK(t["n"].values[2] == 2);
    CHECK(t["kind"].text(1) == "dog");
    CHECK(t["kind"].text(5) == "dog");
    CHECK(r.cells_changed == 3);
    CHECK(r.rows_touched == 3);
  }
  SECTION("constant: a number for numeric columns, a category for categorical ones") {
    Table t = numeric({{"n", {kNaN, 2}}});
    add_categorical(t, "kind", {"cat"}, {kNaN, 0});
    Table u = t;
    const auto r = ctnn::data::impute(t, Impute::constant(-1));
    CHECK(same(t["n"].values, {-1, 2}));
    CHECK(t["kind"].missing(0));  // not a number's column: skipped and reported
    CHECK(r.skipped == std::vector<std::pair<std::string, std::size_t>>{{"kind", 1}});
    CHECK(r.str() ==
          "impute(constant -1): 1 cell in 1 row (n: 1); missing cells left in skipped columns "
          "(kind: 1)");
    ctnn::data::impute(t, Impute::constant("unknown"));
    CHECK(t["kind"].categories == std::vector<std::string>{"cat", "unknown"});
    CHECK(t["kind"].text(0) == "unknown");
    ctnn::data::impute(u, Impute::constant("cat"));
    CHECK(u["kind"].categories.size() == 1);
    CHECK(u["kind"].text(0) == "cat");
    CHECK(u["n"].missing(0));
  }
}

TEST_CASE("impute's errors name the table, the column and why, and change nothing",
          "[data][clean]") {
  Table t = numeric({{"a", {kNaN, 2}}, {"empty", {kNaN, kNaN}}});
  t.source = "x.csv";
  add_categorical(t, "kind", {"cat"}, {kNaN, 0});
  const Table before = t;
  REQUIRE_THROWS_WITH(ctnn::data::impute(t, Impute::mean()),
                      Contains("The table from x.csv") && Contains("impute(mean)") &&
                          Contains("column \"empty\"") &&
                          Contains("all 2 of its cells are missing"));
  REQUIRE_THROWS_WITH(ctnn::data::impute(t, Impute::most_frequent(), {"a", "empty"}),
                      Contains("column \"empty\"") && Contains("no most_frequent"));
  REQUIRE_THROWS_WITH(ctnn::data::impute(t, Impute::median(), {"a", "kind"}),
                      Contains("x.csv") && Contains("impute(median)") &&
                          Contains("column \"kind\"") && Contains("categorical"));
  REQUIRE_THROWS_WITH(
      ctnn::data::impute(t, Impute::constant("?"), {"a"}),
      Contains("impute(constant \"?\")") && Contains("column \"a\"") && Contains("numeric"));
  REQUIRE_THROWS_WITH(Impute::constant(kNaN), Contains("not NaN"));
  CHECK(same(t["a"].values, before["a"].values));
  CHECK(same(t["kind"].values, before["kind"].values));
  t.columns[2].values[1] = 3;  // an index past the one category
  REQUIRE_THROWS_WITH(ctnn::data::impute(t, Impute::constant(0.0), {"a"}),
                      Contains("category index 3"));
}

TEST_CASE("drop_duplicates keeps the first of equal rows, missing equal to missing",
          "[data][clean]") {
  Table t = numeric({{"a", {1, 1, kNaN, kNaN, 1, 1, 0.0, -0.0}}, {"b", {2, 2, 3, 3, 5, 2, 2, 2}}});
  Table by_a = t;
  const auto r = ctnn::data::drop_duplicates(t);
  CHECK(t.lines == std::vector<std::size_t>{1, 3, 5, 7});
  CHECK(r.dropped() == 4);
  ctnn::data::drop_duplicates(by_a, {"a"});
  CHECK(by_a.lines == std::vector<std::size_t>{1, 3, 7});
}

TEST_CASE("Outlier statistics come from the table as passed in, for every column at once",
          "[data][clean]") {
  SECTION("z-score by hand: mean 2, population std 4") {
    Table t = numeric({{"x", {0, 0, 10, 0, 0}}, {"flat", {7, 7, 7, 7, 7}}});
    Table c = t;
    const auto r = ctnn::data::drop_outliers(t, ZScore{1.5});  // z(10) = 2, z(0) = 0.5
    CHECK(t.lines == std::vector<std::size_t>{1, 2, 4, 5});
    CHECK(r.per_column == std::vector<std::pair<std::string, std::size_t>>{{"x", 1}});
    Table d = c;
    CHECK(ctnn::data::drop_outliers(d, ZScore{2}).dropped() == 0);  // z = 2 is not above 2
    const auto rc = ctnn::data::clip_outliers(c, ZScore{1.5});
    CHECK(same(c["x"].values, {0, 0, 8, 0, 0}));  // 2 + 1.5 * 4
    CHECK(rc.cells_changed == 1);
  }
  SECTION("dropping one column's outliers does not shift the next column's z-scores") {
    // a's row 0 has z 2.24; b's rows 0 and 1 have z 1.41 over all six rows, but row 1 alone
    // would have z 2 once row 0 were gone.
    const Table t = numeric({{"a", {12, 0, 0, 0, 0, 0}}, {"b", {5, 5, 0, 0, 0, 0}}});
    const std::vector<std::vector<ctnn::data::ColumnRef>> orders = {{"a", "b"}, {"b", "a"}, {}};
    for (const auto& cols : orders) {
      Table u = t;
      CHECK(ctnn::data::drop_outliers(u, ZScore{1.9}, cols).dropped() == 1);
      CHECK(u.lines == std::vector<std::size_t>{2, 3, 4, 5, 6});
    }
    Table seq = t;
    ctnn::data::drop_outliers(seq, ZScore{1.9}, {"a"});
    CHECK(ctnn::data::drop_outliers(seq, ZScore{1.9}, {"b"}).dropped() == 1);
  }
  SECTION("range rule; missing cells are never outliers; infinities are") {
    Table t = numeric({{"x", {-1, 0.5, 2, kNaN, 1}}, {"y", {0, 0, 0, kInf, 0}}});
    Table z = t;
    const auto r = ctnn::data::clip_outliers(t, Range{0, 1});
    CHECK(same(t["x"].values, {0, 0.5, 1, kNaN, 1}));
    CHECK(same(t["y"].values, {0, 0, 0, 1, 0}));
    CHECK(r.cells_changed == 3);
    CHECK(r.rows_touched == 3);
    z.columns[1].values = {1, 2, 3, kInf, 4};
    CHECK(ctnn::data::drop_outliers(z, ZScore{3}, {"y"}).dropped() == 1);
    CHECK(ctnn::data::drop_outliers(z, Range{0, kInf}, {"x"}).dropped() == 1);  // one-sided
  }
  SECTION("categorical columns are skipped unless named, bad rules are errors") {
    Table t = numeric({{"x", {0, 0, 10, 0, 0}}});
    t.source = "y.csv";
    add_categorical(t, "kind", {"a", "b"}, {0, 1, 1, 1, 1});
    CHECK(ctnn::data::clip_outliers(t, Range{0, 1}).per_column.size() == 1);
    REQUIRE_THROWS_WITH(ctnn::data::drop_outliers(t, ZScore{3}, {"kind"}),
                        Contains("The table from y.csv") && Contains("drop_outliers(|z| > 3)") &&
                            Contains("column \"kind\"") && Contains("categorical"));
    REQUIRE_THROWS_WITH(ctnn::data::clip_outliers(t, Range{2, 1}),
                        Contains("Range{2, 1}") && Contains("lo must not exceed hi"));
    REQUIRE_THROWS_WITH(ctnn::data::drop_outliers(t, ZScore{-1}),
                        Contains("threshold must be a positive number, not -1"));
    REQUIRE_THROWS_WITH(ctnn::data::drop_outliers(t, Range{kNaN, 1}), Contains("Range{nan, 1}"));
    CHECK(t.rows() == 5);
  }
}

TEST_CASE("The dirty breast-cancer file holds exactly its documented dirt", "[data][clean]") {
  Table t = dirty();
  REQUIRE(t.rows() == 579);
  Table dup = t;
  const auto r = ctnn::data::drop_missing(t);
  CHECK(r.per_column == kMissing);
  CHECK(r.dropped() == 15);
  CHECK(t.rows() == 564);
  for (std::size_t line : kMissingLines)
    CHECK(std::find(t.lines.begin(), t.lines.end(), line) == t.lines.end());

  const auto d = ctnn::data::drop_duplicates(dup);
  CHECK(d.dropped() == 10);
  for (std::size_t line : kCopyLines)
    CHECK(std::find(dup.lines.begin(), dup.lines.end(), line) == dup.lines.end());
  // What is left is breast_cancer.csv row for row, except the documented cells.
  const auto orig = original();
  REQUIRE(dup.rows() == orig.size());
  std::size_t missing = 0, differ = 0;
  for (std::size_t row = 0; row < dup.rows(); ++row) {
    for (std::size_t c = 0; c < 30; ++c) {
      const double v = dup.columns[c].values[row];
      missing += std::isnan(v) ? 1 : 0;
      differ += !std::isnan(v) && v != orig[row][c] ? 1 : 0;
    }
    if (!dup["diagnosis"].missing(row))
      CHECK(dup["diagnosis"].text(row) == (orig[row][30] == 0 ? "malignant" : "benign"));
  }
  CHECK(missing == 16);
  CHECK(differ == 2);
  CHECK(dup["mean area"].values[row_of(dup, 105)] == 250000);
  CHECK(dup["mean radius"].values[row_of(dup, 429)] == -11.57);
  CHECK(dup["diagnosis"].missing(row_of(dup, 541)));
}

TEST_CASE("Imputing the dirty breast-cancer file fills its 17 missing cells", "[data][clean]") {
  Table t = dirty();
  const Table before = t;
  const auto r = ctnn::data::impute(t, Impute::median());
  CHECK(r.cells_changed == 16);
  CHECK(r.rows_touched == 14);
  CHECK(r.skipped == std::vector<std::pair<std::string, std::size_t>>{{"diagnosis", 1}});
  std::vector<std::pair<std::string, std::size_t>> numeric_missing = kMissing;
  numeric_missing.pop_back();
  CHECK(r.per_column == numeric_missing);
  // The median of mean radius by hand: 575 readable values (579 less 4), so the 288th.
  std::vector<double> v;
  for (double x : before["mean radius"].values)
    if (!std::isnan(x)) v.push_back(x);
  REQUIRE(v.size() == 575);
  std::sort(v.begin(), v.end());
  for (std::size_t line : {5, 206, 341, 464})
    CHECK(t["mean radius"].values[row_of(t, line)] == v[287]);
  CHECK(t["mean radius"].values[row_of(t, 6)] == before["mean radius"].values[row_of(t, 6)]);

  Table m = before;
  ctnn::data::impute(m, Impute::mean(), {"mean area"});
  double sum = 0;
  for (double x : before["mean area"].values) sum += std::isnan(x) ? 0 : x;
  for (std::size_t line : {44, 155, 318})
    CHECK(m["mean area"].values[row_of(m, line)] == Approx(sum / 576).epsilon(1e-12));

  const auto rd = ctnn::data::impute(t, Impute::most_frequent(), {"diagnosis"});
  CHECK(rd.cells_changed == 1);
  CHECK(t["diagnosis"].text(row_of(t, 541)) == "benign");  // 357 + copies of 569 are benign
  CHECK(ctnn::data::drop_missing(t).dropped() == 0);
  REQUIRE_THROWS_WITH(ctnn::data::impute(m, Impute::mean(), {"diagnosis"}),
                      Contains("breast_cancer_dirty.csv") && Contains("column \"diagnosis\"") &&
                          Contains("categorical"));
}

TEST_CASE("The dirty breast-cancer file's two gross outliers, by range and by z-score",
          "[data][clean]") {
  Table t = dirty();
  Table z = t, clip = t;
  const auto r = ctnn::data::drop_outliers(t, Range{0, 10000}, {"mean radius", "mean area"});
  CHECK(r.dropped() == 2);
  CHECK(r.per_column ==
        std::vector<std::pair<std::string, std::size_t>>{{"mean radius", 1}, {"mean area", 1}});
  CHECK(std::find(t.lines.begin(), t.lines.end(), 105) == t.lines.end());
  CHECK(std::find(t.lines.begin(), t.lines.end(), 429) == t.lines.end());

  // z-scores over every numeric column against a plain reference; real data has more than two.
  std::vector<bool> flagged(z.rows(), false);
  std::vector<double> hi(30);
  for (std::size_t c = 0; c < 30; ++c) {
    const std::vector<double>& v = z.columns[c].values;
    double sum = 0, n = 0, ss = 0;
    for (double x : v) sum += std::isnan(x) ? 0 : x, n += std::isnan(x) ? 0 : 1;
    const double mean = sum / n;
    for (double x : v) ss += std::isnan(x) ? 0 : (x - mean) * (x - mean);
    const double sd = std::sqrt(ss / n);
    for (std::size_t row = 0; row < v.size(); ++row)
      if (std::abs(v[row] - mean) / sd > 3) flagged[row] = true;
    hi[c] = mean + 3 * sd;
  }
  const auto expected = std::size_t(std::count(flagged.begin(), flagged.end(), true));
  const auto rz = ctnn::data::drop_outliers(z, ZScore{3});
  CHECK(rz.dropped() == expected);
  CHECK(expected > 2);
  CHECK(z.rows() == 579 - expected);
  CHECK(std::find(z.lines.begin(), z.lines.end(), 105) == z.lines.end());
  CHECK(std::find(z.lines.begin(), z.lines.end(), 429) == z.lines.end());

  const auto rc = ctnn::data::clip_outliers(clip, ZScore{3}, {"mean area"});
  CHECK(clip["mean area"].values[row_of(clip, 105)] == Approx(hi[3]).epsilon(1e-12));
  CHECK(rc.count("mean area") == rc.cells_changed);
  CHECK(rc.rows_touched == rc.cells_changed);
  CHECK(rc.rows_after == 579);
}

TEST_CASE("Cleaning the dirty breast-cancer file restores breast_cancer.csv's clean rows",
          "[data][clean]") {
  Table t = dirty();
  CHECK(ctnn::data::drop_duplicates(t).rows_after == 569);
  CHECK(ctnn::data::drop_missing(t).rows_after == 554);
  CHECK(ctnn::data::drop_outliers(t, Range{0, 10000}).rows_after == 552);
  const auto orig = original();
  // Sample s of breast_cancer.csv is on line s + 2 plus the copies inserted before it.
  for (std::size_t row = 0; row < t.rows(); ++row) {
    const std::size_t line = t.lines[row];
    const auto copies_before = std::size_t(std::count_if(
        kCopyLines.begin(), kCopyLines.end(), [line](std::size_t l) { return l < line; }));
    const std::vector<double>& o = orig.at(line - 2 - copies_before);
    for (std::size_t c = 0; c < 30; ++c) REQUIRE(t.columns[c].values[row] == o[c]);
  }
}

TEST_CASE("The dirty file's gaps kept as NaN and filled by an imputer fitted on the training split only",
          "[data][clean][preprocess]") {
  using ctnn::data::SimpleImputer;
  Table t = dirty();
  ctnn::data::drop_duplicates(t);
  ctnn::data::drop_missing(t, {"diagnosis"});
  ctnn::data::TableSpec spec;
  spec.label = "diagnosis";
  REQUIRE_THROWS_WITH(ctnn::data::to_dataset(t, spec),
                      Contains("missing value") && Contains("missing_features_as_nan"));
  spec.missing_features_as_nan = true;
  const ctnn::data::Dataset all = ctnn::data::to_dataset(t, spec);
  std::size_t gaps = 0;
  for (const Column& c : t.columns)
    if (c.name != "diagnosis")
      for (double v : c.values) gaps += std::isnan(v);
  CHECK(gaps >= 10);
  CHECK(std::size_t(std::count_if(all.x.begin(), all.x.end(), [](float v) { return std::isnan(v); })) == gaps);

  const auto [train, test] = ctnn::data::train_test_split(all, 0.2, 42);
  ctnn::data::Preprocessing p;
  p.add(SimpleImputer(SimpleImputer::Strategy::median)).add(ctnn::data::StandardScaler{});
  p.fit(train);
  const auto& imp = std::get<SimpleImputer>(p.steps()[0]);
  const std::size_t f = all.feature_size();
  REQUIRE(imp.features().size() == f);
  for (std::size_t j = 0; j < f; ++j) {  // each fill value is the training rows' median
    std::vector<double> v;
    for (std::size_t i = 0; i < train.size(); ++i)
      if (!std::isnan(train.sample(i)[j])) v.push_back(train.sample(i)[j]);
    std::sort(v.begin(), v.end());
    const double median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    INFO("feature " << all.feature_names[j]);
    CHECK(imp.fill_values()[j] == median);
  }
  const ctnn::data::Dataset out = p.transform(test);
  for (float v : out.x) REQUIRE(std::isfinite(v));
  ctnn::data::validate(out);
}
