// Tests for ctnn/data/integrate.hpp: concat and join on small tables and on real data split
// apart (breast cancer in three parts; wine's features in two tables joined on an id).
#include "ctnn/data/integrate.hpp"
#include "ctnn/data/csv.hpp"
#include "ctnn/data/from_table.hpp"
#include "ctnn/data/idx.hpp"
#include "ctnn/data/split.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Catch::Contains;
using ctnn::data::Column;
using ctnn::data::JoinKind;
using ctnn::data::JoinOptions;
using ctnn::data::JoinReport;
using ctnn::data::Table;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A sklearn-format CSV (first line "n,d,class names...", then d features and the class index)
// as a Table: numeric columns f0..f<d-1> and a categorical "class", lines as in the file.
Table sklearn_table(const std::string& file) {
  std::ifstream in(std::string(CTNN_SKLEARN_DATA_DIR) + "/" + file);
  REQUIRE(in);
  Table t;
  t.source = file;
  std::string line;
  std::getline(in, line);
  std::vector<std::string> head;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) head.push_back(cell);
  const std::size_t d = std::stoul(head[1]);
  for (std::size_t c = 0; c < d; ++c) {
    std::string name = "f";  // not "f" + to_string(c): GCC 12 warns falsely (-Wrestrict) on that
    name += std::to_string(c);
    t.columns.push_back(Column{name, {}, false, {}});
  }
  t.columns.push_back(Column{"class", {}, true, {head.begin() + 2, head.end()}});
  for (std::size_t n = 2; std::getline(in, line); ++n) {
    std::stringstream ss(line);
    std::size_t c = 0;
    for (std::string cell; std::getline(ss, cell, ',');)
      t.columns.at(c++).values.push_back(std::stod(cell));
    REQUIRE(c == d + 1);
    t.lines.push_back(n);
  }
  t.check_consistent();
  return t;
}

// The rows [begin, end) of t with the columns named in `names`, in that order.
Table part(const Table& t, std::size_t begin, std::size_t end,
           const std::vector<std::string>& names, const std::string& source) {
  Table p;
  p.source = source;
  for (const std::string& name : names) {
    Column c = t[name];
    c.values.assign(c.values.begin() + std::ptrdiff_t(begin),
                    c.values.begin() + std::ptrdiff_t(end));
    p.columns.push_back(std::move(c));
  }
  p.lines.assign(t.lines.begin() + std::ptrdiff_t(begin), t.lines.begin() + std::ptrdiff_t(end));
  return p;
}

Table small(const std::string& source,
            const std::vector<std::pair<std::string, std::vector<double>>>& cols) {
  Table t;
  t.source = source;
  for (const auto& [name, values] : cols) t.columns.push_back(Column{name, values, false, {}});
  for (std::size_t r = 0; r < t.rows(); ++r) t.lines.push_back(r + 2);
  return t;
}

bool same(const std::vector<double>& a, const std::vector<double>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); });
}

std::vector<std::string> names(const Table& t) {
  std::vector<std::string> out;
  for (const Column& c : t.columns) out.push_back(c.name);
  return out;
}

// Every cell of every column, as text (categories by name), row by row.
std::vector<std::string> texts(const Table& t) {
  std::vector<std::string> out;
  for (std::size_t r = 0; r < t.rows(); ++r)
    for (const Column& c : t.columns) out.push_back(c.text(r));
  return out;
}

}  // namespace

TEST_CASE("concat puts breast cancer's three parts back together", "[data][integrate]") {
  const Table all = sklearn_table("breast_cancer.csv");
  REQUIRE(all.rows() == 569);
  std::vector<std::string> order = names(all), reversed = order;
  std::reverse(reversed.begin(), reversed.end());
  Table a = part(all, 0, 200, order, "a.csv");
  Table b = part(all, 200, 400, reversed, "b.csv");  // another column order
  Table c = part(all, 400, 569, order, "c.csv");
  // c lists the classes the other way round: "benign" is its category 0.
  Column& cls = c["class"];
  cls.categories = {"benign", "malignant"};
  for (double& v : cls.values) v = 1 - v;
  const Table t = ctnn::data::concat({a, b, c});
  CHECK(t.source == "a.csv + b.csv + c.csv");
  CHECK(names(t) == order);
  CHECK(t.lines == all.lines);
  CHECK(t["class"].categories == std::vector<std::string>{"malignant", "benign"});
  for (std::size_t col = 0; col < all.cols(); ++col)
    CHECK(same(t.columns[col].values, all.columns[col].values));
  CHECK(texts(t) == texts(all));
  t.check_consistent();
}

TEST_CASE("concat merges categories and re-indexes the later parts", "[data][integrate]") {
  Table a = small("a.csv", {{"x", {1, 2}}});
  a.columns.push_back(Column{"kind", {0, 1}, true, {"cat", "dog"}});
  Table b = small("", {{"x", {3, 4, 5}}});
  b.columns.insert(b.columns.begin(), Column{"kind", {0, kNaN, 1}, true, {"eel", "cat"}});
  const Table t = ctnn::data::concat({a, b});
  CHECK(t["kind"].categories == std::vector<std::string>{"cat", "dog", "eel"});
  CHECK(same(t["kind"].values, {0, 1, 2, kNaN, 0}));
  CHECK(same(t["x"].values, {1, 2, 3, 4, 5}));
  CHECK(t.lines == std::vector<std::size_t>{2, 3, 2, 3, 4});
  CHECK(t.source == "a.csv");
  CHECK(ctnn::data::concat({a, b, a}).source == "a.csv");  // each source once
}

TEST_CASE("concat's errors name both tables and the columns that differ", "[data][integrate]") {
  const Table a = small("a.csv", {{"x", {1}}, {"y", {2}}, {"z", {3}}});
  REQUIRE_THROWS_WITH(
      ctnn::data::concat({a, small("b.csv", {{"x", {1}}, {"w", {2}}, {"v", {3}}})}),
      Contains("the table from b.csv (part 2)") && Contains("the table from a.csv (part 1)") &&
          Contains("lacks column(s) \"y\", \"z\"") && Contains("extra column(s) \"w\", \"v\""));
  REQUIRE_THROWS_WITH(
      ctnn::data::concat({a, a, small("", {{"x", {1}}, {"y", {2}}})}),
      Contains("the table (part 3)") && Contains("lacks column(s) \"z\"") && !Contains("extra"));
  Table b = small("b.csv", {{"x", {1}}, {"z", {3}}});
  b.columns.push_back(Column{"y", {0}, true, {"high"}});
  REQUIRE_THROWS_WITH(ctnn::data::concat({a, b}),
                      Contains("b.csv (part 2)") && Contains("a.csv (part 1)") &&
                          Contains("column \"y\" is numeric in the first but "
                                   "categorical in the other"));
  REQUIRE_THROWS_WITH(ctnn::data::concat({}), Contains("no tables"));
  Table broken = a;
  broken.lines.push_back(9);
  REQUIRE_THROWS_WITH(ctnn::data::concat({a, broken}), Contains("2 line numbers"));
}

TEST_CASE("join puts wine's features back together from two tables keyed by an id",
          "[data][integrate]") {
  const Table wine = sklearn_table("wine_data.csv");
  REQUIRE(wine.rows() == 178);
  // Each row gets an id; the left table has it with f0-f6 and the class, the right one f7-f12
  // with the id, shuffled and without 8 rows.
  Table with_id = wine;
  Column id{"id", {}, false, {}};
  for (std::size_t r = 0; r < wine.rows(); ++r) id.values.push_back(double(1000 + r));
  with_id.columns.insert(with_id.columns.begin(), id);
  const Table left =
      part(with_id, 0, 178, {"id", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "class"}, "left.csv");
  Table right = part(with_id, 0, 178, {"f7", "f8", "id", "f9", "f10", "f11", "f12"}, "right.csv");
  std::vector<std::size_t> order(178);
  for (std::size_t r = 0; r < order.size(); ++r) order[r] = r;
  std::mt19937 rng(7);
  for (std::size_t i = order.size() - 1; i > 0; --i)
    std::swap(order[i], order[std::uniform_int_distribution<std::size_t>(0, i)(rng)]);
  right.keep_rows(order);
  for (std::size_t r = 0; r < right.rows(); ++r) right.lines[r] = r + 2;

  JoinReport rep;
  Table t = ctnn::data::join(left, right, "id", {}, &rep);
  CHECK(names(t) == std::vector<std::string>{"id", "f0", "f1", "f2", "f3", "f4", "f5", "f6",
                                             "class", "f7", "f8", "f9", "f10", "f11", "f12"});
  CHECK(t.source == "left.csv");
  CHECK(t.lines == wine.lines);
  for (const Column& c : wine.columns) CHECK(same(t[c.name].values, c.values));
  CHECK(rep.matched == 178);
  CHECK(rep.dropped == 0);
  CHECK(rep.right_unused == 0);

  // Without 8 right rows: an inner join drops their left rows, a left join keeps them.
  std::vector<std::size_t> keep;
  for (std::size_t r = 8; r < right.rows(); ++r) keep.push_back(r);
  Table fewer = right;
  fewer.keep_rows(keep);
  std::vector<double> gone(order.begin(), order.begin() + 8);  // wine rows without a match
  const auto is_gone = [&](std::size_t r) {
    return std::find(gone.begin(), gone.end(), double(r)) != gone.end();
  };
  Table inner = ctnn::data::join(left, fewer, "id", {}, &rep);
  CHECK(inner.rows() == 170);
  CHECK(rep.str() ==
        "inner join on \"id\": 170 of 178 left rows matched, 8 unmatched (dropped); 0 of 170 right "
        "rows unused");
  for (std::size_t r = 0, k = 0; r < wine.rows(); ++r) {
    if (is_gone(r)) continue;
    CHECK(inner["f12"].values[k] == wine["f12"].values[r]);
    CHECK(inner.lines[k++] == wine.lines[r]);
  }
  Table outer = ctnn::data::join(left, fewer, 0, {JoinKind::left, ""}, &rep);
  CHECK(outer.rows() == 178);
  CHECK(rep.unmatched == 8);
  CHECK(rep.dropped == 0);
  for (std::size_t r = 0; r < wine.rows(); ++r) {
    CHECK(outer["f0"].values[r] == wine["f0"].values[r]);
    CHECK(outer["f9"].missing(r) == is_gone(r));
    if (!is_gone(r)) CHECK(outer["f9"].values[r] == wine["f9"].values[r]);
  }
  // A right table with more rows than match: the surplus is reported unused.
  Table fewer_left = part(left, 0, 100, names(left), "left.csv");
  ctnn::data::join(fewer_left, right, "id", {}, &rep);
  CHECK(rep.right_unused == 78);
}

TEST_CASE("join matches categorical keys by text and missing keys never", "[data][integrate]") {
  Table left = small("l.csv", {{"x", {1, 2, 3, 4}}});
  left.columns.push_back(Column{"key", {0, 1, kNaN, 2}, true, {"a", "b", "c"}});
  Table right = small("r.csv", {{"y", {10, 20, 30}}});
  right.columns.push_back(Column{"key", {0, 1, kNaN}, true, {"c", "a"}});
  right.columns.push_back(Column{"tag", {1, 0, 0}, true, {"u", "v"}});
  JoinReport rep;
  const Table t = ctnn::data::join(left, right, "key", {JoinKind::left, ""}, &rep);
  CHECK(names(t) == std::vector<std::string>{"x", "key", "y", "tag"});
  CHECK(texts(t) == std::vector<std::string>{"1", "a", "20", "u", "2", "b", "", "", "3", "", "", "",
                                             "4", "c", "10", "v"});
  CHECK(rep.matched == 2);
  CHECK(rep.unmatched == 2);
  CHECK(rep.right_unused == 1);
  CHECK(
      rep.str() ==
      "left join on \"key\": 2 of 4 left rows matched, 2 unmatched (kept with missing cells); 1 of "
      "3 right rows unused");
  // Numeric keys by value, -0 equal to 0.
  const Table l = small("", {{"k", {0, 1, 2}}});
  const Table r = small("", {{"k", {-0.0, 2}}, {"v", {5, 6}}});
  CHECK(same(ctnn::data::join(l, r, "k")["v"].values, {5, 6}));
}

TEST_CASE("join's errors name the key, the clashing columns and the duplicate lines",
          "[data][integrate]") {
  const Table left = small("l.csv", {{"id", {1, 2}}, {"v", {3, 4}}});
  const Table dup = small("r.csv", {{"id", {7, 2, 5, 2}}, {"w", {0, 0, 0, 0}}});
  REQUIRE_THROWS_WITH(ctnn::data::join(left, dup, "id"),
                      Contains("The table from r.csv") &&
                          Contains("key column \"id\" value \"2\" twice") &&
                          Contains("line 3 of r.csv and line 5 of r.csv"));
  const Table clash = small("r.csv", {{"v", {8, 9}}, {"id", {2, 1}}});
  REQUIRE_THROWS_WITH(ctnn::data::join(left, clash, "id"),
                      Contains("the table from r.csv (right)") &&
                          Contains("the table from l.csv (left)") && Contains("on column \"id\"") &&
                          Contains("both have a column \"v\"") && Contains("JoinOptions::suffix"));
  const Table t = ctnn::data::join(left, clash, "id", {JoinKind::inner, "_r"});
  CHECK(names(t) == std::vector<std::string>{"id", "v", "v_r"});
  CHECK(same(t["v_r"].values, {9, 8}));
  const Table both = small("l.csv", {{"id", {1, 2}}, {"v", {3, 4}}, {"v_r", {0, 0}}});
  REQUIRE_THROWS_WITH(ctnn::data::join(both, clash, "id", {JoinKind::inner, "_r"}),
                      Contains("renaming the right column \"v\" to \"v_r\" clashes"));
  Table text_key = small("r.csv", {{"w", {1}}});
  text_key.columns.push_back(Column{"id", {0}, true, {"1"}});
  REQUIRE_THROWS_WITH(ctnn::data::join(left, text_key, "id"),
                      Contains("on column \"id\"") &&
                          Contains("numeric in the left table but categorical in the right"));
  REQUIRE_THROWS_WITH(ctnn::data::join(left, small("r.csv", {{"key", {1}}}), "id"),
                      Contains("The table from r.csv has no column \"id\""));
  REQUIRE_THROWS_WITH(ctnn::data::join(left, dup, 5), Contains("column 5 does not exist"));
}

TEST_CASE("hstack joins diabetes' features and target files, which share rows but no key",
          "[data][integrate]") {
  const std::string dir = CTNN_SKLEARN_DATA_DIR;
  using namespace ctnn::data;
  CsvOptions o;
  o.whitespace = true;
  o.header = false;
  o.column_names = {"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"};
  const Table x = read_csv(dir + "/diabetes_data_raw.csv.gz", o);
  o.column_names = {"progression"};
  const Table y = read_csv(dir + "/diabetes_target.csv.gz", o);
  const Table both = hstack({x, y});
  REQUIRE(both.rows() == 442);
  REQUIRE(both.cols() == 11);
  CHECK(both.columns[10].name == "progression");
  CHECK(both.columns[0].values[0] == 59);    // first line of the data file: 59 2 32.1 ...
  CHECK(both.columns[10].values[0] == 151);  // first line of the target file: 1.51e+02
  CHECK(both.columns[10].values[441] == y.columns[0].values[441]);
  CHECK_THAT(both.source, Catch::Matchers::Contains("diabetes_data_raw.csv.gz + ") &&
                              Catch::Matchers::Contains("diabetes_target.csv.gz"));

  Table short_y = y;
  short_y.keep_rows({0, 1, 2});
  CHECK_THROWS_WITH(hstack({x, short_y}), Catch::Matchers::Contains("3 rows") &&
                                              Catch::Matchers::Contains("442"));
  CHECK_THROWS_WITH(hstack({x, x}), Catch::Matchers::Contains("\"age\"") &&
                                        Catch::Matchers::Contains("already"));
}

TEST_CASE("Tables from different formats integrate: Fashion-MNIST from IDX and from CSV",
          "[data][integrate]") {
  using namespace ctnn::data;
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const Dataset images = load_idx(dir + "/t10k-images-idx3-ubyte.gz",
                                  dir + "/t10k-labels-idx1-ubyte.gz", {.limit = 40});
  // The first 25 images stay an IDX-born table; the other 15 travel through a CSV file.
  std::vector<std::size_t> first(25), rest(15);
  std::iota(first.begin(), first.end(), std::size_t{0});
  std::iota(rest.begin(), rest.end(), std::size_t{25});
  const Table from_idx = to_table(subset(images, first));
  const Table exported = to_table(subset(images, rest));
  std::ostringstream csv;
  for (std::size_t c = 0; c < exported.cols(); ++c) csv << (c ? "," : "") << exported.columns[c].name;
  csv << "\n";
  for (std::size_t r = 0; r < exported.rows(); ++r) {
    for (std::size_t c = 0; c < exported.cols(); ++c)
      csv << (c ? "," : "") << std::setprecision(9) << exported.columns[c].values[r];
    csv << "\n";
  }
  const Table from_csv = parse_csv(csv.str(), "exported.csv");
  const Table both = concat({from_idx, from_csv});
  REQUIRE(both.rows() == 40);
  const Dataset back = to_dataset(both, {.label = "label"});
  CHECK(back.x == images.x);
  CHECK(back.labels == images.labels);
  CHECK(back.feature_size() == 784);
}
