// Tests for ctnn/data/csv.hpp and ctnn/data/from_table.hpp: scikit-learn's real CSV files, the
// syntax corners (quotes, CRLF, BOM, whitespace), every error message, and Table <-> Dataset.
#include "ctnn/data/csv.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "ctnn/data/clean.hpp"
#include "ctnn/data/from_table.hpp"
#include "temp_files.hpp"

namespace {

using ctnn::data::BadNumbers;
using ctnn::data::Column;
using ctnn::data::CsvOptions;
using ctnn::data::CsvReport;
using ctnn::data::Dataset;
using ctnn::data::parse_csv;
using ctnn::data::read_csv;
using ctnn::data::read_sklearn_csv;
using ctnn::data::Table;
using ctnn::data::TableSpec;
using ctnn::data::to_dataset;
using ctnn::data::to_table;
using ctnn_test::Bytes;
using ctnn_test::TempDir;
using Catch::Contains;

std::string sklearn(const char* name) { return std::string(CTNN_SKLEARN_DATA_DIR) + "/" + name; }

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

double column_sum(const Column& c) {
  return std::accumulate(c.values.begin(), c.values.end(), 0.0);
}

std::vector<std::size_t> class_counts(const Dataset& d) {
  std::vector<std::size_t> n(d.num_classes);
  for (std::int32_t l : d.labels) ++n.at(static_cast<std::size_t>(l));
  return n;
}

// The message of the ctnn::Error that `f` throws ("" if none), for checks of several parts.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ctnn::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// Facts below were computed independently with Python's csv and gzip modules from the same files.

TEST_CASE("breast_cancer.csv: 569 x 30, two classes in the file's order", "[data][csv]") {
  const Table t = read_sklearn_csv(sklearn("breast_cancer.csv"));
  REQUIRE(t.rows() == 569);
  REQUIRE(t.cols() == 31);
  CHECK(t.source == sklearn("breast_cancer.csv"));
  CHECK(t.columns[0].name == "feature_0");
  CHECK(t.columns[29].name == "feature_29");
  CHECK(t.columns[30].name == "target");
  CHECK(t.columns[30].categorical);
  CHECK(t.columns[30].categories == std::vector<std::string>{"malignant", "benign"});
  CHECK(t.lines.front() == 2);
  CHECK(t.lines.back() == 570);
  CHECK(t.columns[0].values[0] == 17.99);
  CHECK(t.columns[29].values[0] == 0.1189);
  CHECK(t.columns[0].values[568] == 7.76);
  CHECK(column_sum(t.columns[0]) == Approx(8038.429));
  CHECK(t.columns[30].text(0) == "malignant");
  CHECK(t.columns[30].text(568) == "benign");
  CHECK_NOTHROW(t.check_consistent());

  TableSpec spec;
  spec.label = "target";
  CHECK(t.columns[30].ordered);  // the file's class list: no flag needed to keep its order
  const Dataset d = to_dataset(t, spec);
  CHECK(d.size() == 569);
  CHECK(d.sample_shape == std::vector<std::size_t>{30});
  CHECK(d.num_classes == 2);
  CHECK(d.class_names == std::vector<std::string>{"malignant", "benign"});
  CHECK(class_counts(d) == std::vector<std::size_t>{212, 357});
  CHECK(d.labels[0] == 0);
  CHECK(d.labels[568] == 1);
  CHECK(d.x[0] == 17.99f);
  CHECK(d.x[29] == 0.1189f);
  CHECK(d.feature_names.size() == 30);
  CHECK(d.feature_names[3] == "feature_3");
  CHECK_NOTHROW(d.check_consistent());

  // An unordered categorical column's classes are sorted by name: benign 0, malignant 1.
  Table unordered = t;
  unordered.columns[30].ordered = false;
  const Dataset sorted = to_dataset(unordered, spec);
  CHECK(sorted.class_names == std::vector<std::string>{"benign", "malignant"});
  CHECK(class_counts(sorted) == std::vector<std::size_t>{357, 212});
  CHECK(sorted.labels[0] == 1);

  // The same file through the general reader: line 1 skipped, the class a numeric column.
  CsvOptions opts;
  opts.header = false;
  opts.skip_lines = 1;
  const Table raw = read_csv(sklearn("breast_cancer.csv"), opts);
  CHECK(raw.cols() == 31);
  CHECK(raw.columns[30].name == "30");
  CHECK_FALSE(raw.columns[30].categorical);
  TableSpec by_index;
  by_index.label = 30;
  const Dataset numeric = to_dataset(raw, by_index);
  CHECK(numeric.num_classes == 2);
  CHECK(numeric.labels == d.labels);
  CHECK(numeric.x == d.x);
  CHECK(numeric.class_names.empty());
}

TEST_CASE("wine_data.csv: 178 x 13, three classes, feature names given", "[data][csv]") {
  const std::vector<std::string> names = {
      "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
      "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
      "od280/od315_of_diluted_wines", "proline"};
  const Table t = read_sklearn_csv(sklearn("wine_data.csv"), names);
  REQUIRE(t.rows() == 178);
  REQUIRE(t.cols() == 14);
  CHECK(t["proline"].values[0] == 1065);
  CHECK(t["alcohol"].values[177] == 14.13);
  CHECK(column_sum(t["alcohol"]) == Approx(2314.11));
  TableSpec spec;
  spec.label = "target";
  spec.keep_category_order = true;
  const Dataset d = to_dataset(t, spec);
  CHECK(d.num_classes == 3);
  CHECK(d.class_names == std::vector<std::string>{"class_0", "class_1", "class_2"});
  CHECK(class_counts(d) == std::vector<std::size_t>{59, 71, 48});
  CHECK(d.feature_names == names);
  CHECK(d.x[12] == 1065.0f);
  CHECK(d.labels.back() == 2);

  REQUIRE_THROWS_WITH(read_sklearn_csv(sklearn("wine_data.csv"), {"a", "b"}),
                      Contains("2 feature names") && Contains("13 features"));
}

TEST_CASE("iris.csv: features chosen by name and by index", "[data][csv]") {
  const Table t = read_sklearn_csv(sklearn("iris.csv"));
  REQUIRE(t.rows() == 150);
  REQUIRE(t.cols() == 5);
  CHECK(column_sum(t.columns[0]) == Approx(876.5));
  TableSpec spec;
  spec.features = {"feature_3", "feature_2"};
  spec.label = "target";
  spec.keep_category_order = true;
  const Dataset d = to_dataset(t, spec);
  CHECK(d.sample_shape == std::vector<std::size_t>{2});
  CHECK(d.feature_names == std::vector<std::string>{"feature_3", "feature_2"});
  CHECK(d.x[0] == 0.2f);  // first row: 5.1, 3.5, 1.4, 0.2
  CHECK(d.x[1] == 1.4f);
  CHECK(class_counts(d) == std::vector<std::size_t>{50, 50, 50});
  CHECK(d.class_names == std::vector<std::string>{"setosa", "versicolor", "virginica"});

  TableSpec by_index;
  by_index.features = {3, 2};
  by_index.label = 4;
  by_index.keep_category_order = true;
  const Dataset e = to_dataset(t, by_index);
  CHECK(e.x == d.x);
  CHECK(e.labels == d.labels);
}

TEST_CASE("diabetes: gzip, whitespace-separated, no header, with a regression target", "[data][csv]") {
  CsvOptions opts;
  opts.whitespace = true;
  opts.header = false;
  opts.column_names = {"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"};
  const Table x = read_csv(sklearn("diabetes_data_raw.csv.gz"), opts);
  REQUIRE(x.rows() == 442);
  REQUIRE(x.cols() == 10);
  CHECK(x["age"].values[0] == 59);
  CHECK(x["bmi"].values[0] == 32.1);
  CHECK(x["s5"].values[0] == 4.8598);
  CHECK(x["s6"].values[441] == 92);
  CHECK(column_sum(x["bmi"]) == Approx(11658.1));
  CHECK(x.lines.front() == 1);
  CHECK(x.lines.back() == 442);

  CsvOptions plain;
  plain.header = false;
  const Table y = read_csv(sklearn("diabetes_target.csv.gz"), plain);
  REQUIRE(y.rows() == 442);
  REQUIRE(y.cols() == 1);
  CHECK(y.columns[0].name == "0");
  CHECK(y.columns[0].values[0] == 151);
  CHECK(y.columns[0].values[441] == 57);
  CHECK(column_sum(y.columns[0]) == Approx(67243));

  Table both = x;
  both.columns.push_back(y.columns[0]);
  both.columns.back().name = "progression";
  TableSpec spec;
  spec.targets = {"progression"};
  const Dataset d = to_dataset(both, spec);
  CHECK(d.sample_shape == std::vector<std::size_t>{10});
  CHECK(d.target_size == 1);
  CHECK(d.targets[0] == 151.0f);
  CHECK(d.targets[441] == 57.0f);
  CHECK_FALSE(d.has_labels());
  CHECK(d.x[10] == 48.0f);  // second row's age
}

TEST_CASE("Quoted fields hold delimiters, line breaks and quotes", "[data][csv]") {
  const std::string text =
      "name,\"size, cm\",note\n"
      "\"Smith, J\",1.5,\"said \"\"hi\"\"\"\n"
      "plain,2.5,\"two\nlines\"\n"
      "  spaced  , 3.5 ,\"\"\n"
      "\"\",4.5,\"  kept  \"\n";
  CsvReport report;
  CsvOptions opts;
  opts.report = &report;
  const Table t = parse_csv(text, "quotes.csv", opts);
  REQUIRE(t.rows() == 4);
  CHECK(t.columns[1].name == "size, cm");
  CHECK(t["name"].categorical);
  CHECK(t["name"].categories == std::vector<std::string>{"Smith, J", "plain", "spaced"});
  CHECK(t["name"].missing(3));
  CHECK(t["size, cm"].values == std::vector<double>{1.5, 2.5, 3.5, 4.5});
  CHECK(t["note"].categories == std::vector<std::string>{"said \"hi\"", "two\nlines", "  kept  "});
  CHECK(t["note"].missing(2));
  CHECK(t.lines == std::vector<std::size_t>{2, 3, 5, 6});  // the quoted line break is line 4
  CHECK(report.rows == 4);
  CHECK(report.missing_cells == 2);
}

TEST_CASE("CRLF, CR, a byte order mark, blank and skipped lines read like plain LF",
          "[data][csv]") {
  const std::string lf = "a,b,label\n1,2,x\n3,4,y\n";
  const Table want = parse_csv(lf, "lf.csv");
  TempDir tmp;
  const auto same = [&](const Table& t) {
    REQUIRE(t.cols() == 3);
    CHECK(t.columns[0].name == "a");  // not "\xEF\xBB\xBFa"
    CHECK(t.columns[0].values == want.columns[0].values);
    CHECK(t.columns[1].values == want.columns[1].values);
    CHECK(t.columns[2].categories == want.columns[2].categories);
    CHECK(t.columns[2].values == want.columns[2].values);
  };
  const std::string crlf = tmp.file("crlf.csv");
  ctnn_test::write_file(crlf, bytes("\xEF\xBB\xBF" "a,b,label\r\n1,2,x\r\n3,4,y\r\n\r\n"));
  const Table t = read_csv(crlf);
  same(t);
  CHECK(t.lines == std::vector<std::size_t>{2, 3});
  same(parse_csv("a,b,label\r1,2,x\r3,4,y", "cr.csv"));  // old Mac line ends, no final one
  const Table blank = parse_csv("\n  \na,b,label\n\n1,2,x\n   \n3,4,y\n\n\n", "blank.csv");
  same(blank);
  CHECK(blank.lines == std::vector<std::size_t>{5, 7});

  CsvOptions skip;
  skip.skip_lines = 2;
  const Table skipped = parse_csv("# comment, with a comma\n# another\na,b,label\n1,2,x\n3,4,y",
                                  "skip.csv", skip);
  same(skipped);
  CHECK(skipped.lines == std::vector<std::size_t>{4, 5});

  // The same text gzip-compressed is recognised by its magic bytes.
  const std::string gz = tmp.file("data.txt");  // no .gz suffix on purpose
  ctnn_test::write_gz(gz, bytes(lf));
  same(read_csv(gz));
}

TEST_CASE("Other delimiters, whitespace mode and trimming", "[data][csv]") {
  CsvOptions semi;
  semi.delimiter = ';';
  const Table s = parse_csv("x;y\n1,5;2\n", "semi.csv", semi);
  CHECK(s["x"].categorical);  // "1,5" is not a number with '.' decimals
  CHECK(s["y"].values == std::vector<double>{2});

  CsvOptions tab;
  tab.delimiter = '\t';
  const Table t = parse_csv("x\ty\tz\n1\t\t 3 \n", "tab.tsv", tab);
  CHECK(t["y"].missing(0));  // two tabs: an empty field between them
  CHECK(t["z"].values == std::vector<double>{3});

  CsvOptions ws;
  ws.whitespace = true;
  const Table w = parse_csv("  x   y\tz \n a \t -2   +3e2\n\"a b\" 4 5\n", "ws.txt", ws);
  REQUIRE(w.cols() == 3);
  CHECK(w["x"].categories == std::vector<std::string>{"a", "a b"});
  CHECK(w["y"].values == std::vector<double>{-2, 4});
  CHECK(w["z"].values == std::vector<double>{300, 5});
  // One number and one text cell: a tie counts as a numeric column with a bad cell.
  const std::string tie = "x y\n1 2\n\"a b\" 3\n";
  REQUIRE_THROWS_WITH(parse_csv(tie, "tie.txt", ws),
                      Contains("tie.txt, line 3, column 1 (\"x\"): \"a b\" is not a number"));
  ws.bad_numbers = BadNumbers::missing;
  CHECK(parse_csv(tie, "tie.txt", ws)["x"].missing(1));

  // Header off: columns are numbered.
  CsvOptions off;
  off.header = false;
  const Table h = parse_csv("1,2\n3,4\n", "nohead.csv", off);
  CHECK(h.columns[0].name == "0");
  CHECK(h.columns[1].name == "1");
  CHECK(h.lines == std::vector<std::size_t>{1, 2});
  // An empty header name becomes the column's number.
  CHECK(parse_csv(",a\n1,2\n", "pandas.csv").columns[0].name == "0");
}

TEST_CASE("Missing markers and bad numbers", "[data][csv]") {
  const std::string text = "v,w\n1,a\nNA,b\n?,N/A\nnull,\nNaN,c\nnan,a\n 7 ,a\n";
  CsvReport report;
  CsvOptions opts;
  opts.report = &report;
  const Table t = parse_csv(text, "missing.csv", opts);
  const Column& v = t["v"];
  REQUIRE(v.values.size() == 7);
  CHECK(v.values[0] == 1);
  for (std::size_t r = 1; r <= 5; ++r) CHECK(v.missing(r));
  CHECK(v.values[6] == 7);
  CHECK(t["w"].categories == std::vector<std::string>{"a", "b", "c"});
  CHECK(t["w"].missing(2));
  CHECK(t["w"].missing(3));
  CHECK(report.missing_cells == 7);
  CHECK(report.bad_numbers == 0);

  // A custom list: "-" marks missing, "NA" is now text (and so the column is mixed).
  opts.missing = {"-"};
  CHECK(parse_csv("v\n1\n-\n2\n", "dash.csv", opts)["v"].missing(1));
  REQUIRE_THROWS_WITH(parse_csv("v\n1\nNA\n2\n", "na.csv", opts),
                      Contains("na.csv, line 3, column 1 (\"v\")") && Contains("\"NA\""));

  // A typo in a numeric column: an error by default, naming file, line, column and text...
  const std::string dirty = "id,mean radius,mean area\n1,10.5,100\n2,11,abc\n3,12.5,300\n"
                            "4,13,n/a?\n";
  const std::string msg = error_of([&] { (void)parse_csv(dirty, "dirty.csv"); });
  CHECK_THAT(msg, Contains("dirty.csv, line 3, column 3 (\"mean area\")") &&
                      Contains("\"abc\" is not a number") &&
                      Contains("the column's other cells are numeric") &&
                      Contains("BadNumbers::missing"));
  // ...or missing on request, counted in the report.
  CsvOptions lenient;
  lenient.bad_numbers = BadNumbers::missing;
  lenient.report = &report;
  const Table cleaned = parse_csv(dirty, "dirty.csv", lenient);
  CHECK(cleaned["mean area"].values[0] == 100);
  CHECK(cleaned["mean area"].missing(1));
  CHECK(cleaned["mean area"].missing(3));
  CHECK_FALSE(cleaned["mean area"].categorical);
  CHECK(report.bad_numbers == 2);
  REQUIRE(report.notes.size() == 1);
  CHECK_THAT(report.notes[0], Contains("column 3 (\"mean area\")") && Contains("2 text cells") &&
                                  Contains("\"abc\" on line 3"));

  // A text column with a stray number is not "bad numbers": it needs CsvOptions::categorical.
  const std::string colors = "color\nred\nblue\n3\ngreen\n";
  REQUIRE_THROWS_WITH(parse_csv(colors, "colors.csv", lenient),
                      Contains("colors.csv, line 4, column 1 (\"color\")") &&
                          Contains("\"3\" is a number") && Contains("CsvOptions::categorical"));
  CsvOptions cat;
  cat.categorical = {"color"};
  CHECK(parse_csv(colors, "colors.csv", cat)["color"].categories ==
        std::vector<std::string>{"red", "blue", "3", "green"});
}

TEST_CASE("Categorical labels map to classes in sorted order", "[data][csv]") {
  const std::string text = "x,kind\n1,cat\n2,ant\n3,bee\n4,cat\n5,ant\n";
  const Table t = parse_csv(text, "animals.csv");
  CHECK(t["kind"].categories == std::vector<std::string>{"cat", "ant", "bee"});  // as they came
  TableSpec spec;
  spec.label = "kind";
  const Dataset d = to_dataset(t, spec);
  CHECK(d.class_names == std::vector<std::string>{"ant", "bee", "cat"});
  CHECK(d.labels == std::vector<std::int32_t>{2, 0, 1, 2, 0});
  CHECK(d.num_classes == 3);
  CHECK(d.x == std::vector<float>{1, 2, 3, 4, 5});

  spec.keep_category_order = true;
  CHECK(to_dataset(t, spec).labels == std::vector<std::int32_t>{0, 1, 2, 0, 1});

  // class_names choose the order, and may name classes absent from the table.
  spec.keep_category_order = false;
  spec.class_names = {"bee", "cat", "dog", "ant"};
  const Dataset named = to_dataset(t, spec);
  CHECK(named.labels == std::vector<std::int32_t>{1, 3, 0, 1, 3});
  CHECK(named.num_classes == 4);
  spec.class_names = {"bee", "cat"};
  REQUIRE_THROWS_WITH(to_dataset(t, spec), Contains("animals.csv") && Contains("\"ant\"") &&
                                               Contains("not one of TableSpec::class_names"));

  // Integer codes forced categorical sort as numbers, not as text ("2" before "10").
  CsvOptions codes;
  codes.categorical = {1};
  const Table c = parse_csv("x,grade\n1,10\n2,2\n3,1\n4,2\n", "codes.csv", codes);
  CHECK(c["grade"].categorical);
  CHECK(c["grade"].categories == std::vector<std::string>{"10", "2", "1"});
  TableSpec by_code;
  by_code.label = "grade";
  const Dataset g = to_dataset(c, by_code);
  CHECK(g.class_names == std::vector<std::string>{"1", "2", "10"});
  CHECK(g.labels == std::vector<std::int32_t>{2, 1, 0, 1});

  // A categorical feature gives its stored category index; a categorical target its class.
  const Table mixed = parse_csv("color,y,ok\nred,1.5,yes\nblue,2.5,no\nred,3.5,yes\n", "m.csv");
  TableSpec features;
  features.features = {"color", "y"};
  features.targets = {"ok"};
  const Dataset f = to_dataset(mixed, features);
  CHECK(f.x == std::vector<float>{0, 1.5f, 1, 2.5f, 0, 3.5f});
  CHECK(f.targets == std::vector<float>{1, 0, 1});  // sorted: no 0, yes 1
  CHECK(f.target_size == 1);
}

TEST_CASE("Numeric labels: whole numbers from 0, class_names checked", "[data][csv]") {
  TableSpec spec;
  spec.label = "y";
  const Table ok = parse_csv("x,y\n1,0\n2,3\n3,1\n", "ok.csv");
  const Dataset d = to_dataset(ok, spec);
  CHECK(d.num_classes == 4);
  CHECK(d.labels == std::vector<std::int32_t>{0, 3, 1});

  REQUIRE_THROWS_WITH(to_dataset(parse_csv("x,y\n1,0\n2,-1\n", "neg.csv"), spec),
                      Contains("line 3 of neg.csv") && Contains("\"y\"") && Contains("-1") &&
                          Contains("whole number"));
  REQUIRE_THROWS_WITH(to_dataset(parse_csv("x,y\n1,0\n2,1\n3,2.5\n", "frac.csv"), spec),
                      Contains("line 4 of frac.csv") && Contains("2.5"));
  spec.class_names = {"a", "b", "c"};
  REQUIRE_THROWS_WITH(to_dataset(ok, spec), Contains("line 3 of ok.csv") && Contains("holds 3") &&
                                                Contains("names 3 classes (labels 0 to 2)"));
  spec.class_names = {"a", "b", "c", "d", "e"};
  const Dataset named = to_dataset(ok, spec);
  CHECK(named.num_classes == 5);
  CHECK(named.class_names == spec.class_names);
}

TEST_CASE("to_dataset reports missing cells and bad specs", "[data][csv]") {
  const Table t = parse_csv("a,b,label\n1,2,x\n3,,y\n5,6,\n", "holes.csv");
  TableSpec spec;
  spec.label = "label";
  REQUIRE_THROWS_WITH(to_dataset(t, spec),
                      Contains("line 3 of holes.csv") && Contains("column \"b\"") &&
                          Contains("drop_missing") && Contains("impute"));
  spec.features = {"a"};
  REQUIRE_THROWS_WITH(to_dataset(t, spec), Contains("line 4 of holes.csv") &&
                                               Contains("the label column \"label\""));

  TableSpec both;
  both.label = "label";
  both.targets = {"a"};
  REQUIRE_THROWS_WITH(to_dataset(t, both), Contains("both a label") && Contains("1 target"));
  TableSpec twice;
  twice.label = "a";
  twice.features = {"a", "b"};
  REQUIRE_THROWS_WITH(to_dataset(t, twice), Contains("column \"a\"") &&
                                                Contains("both as the label and as a feature"));
  TableSpec unknown;
  unknown.label = "labels";
  REQUIRE_THROWS_WITH(to_dataset(t, unknown),
                      Contains("holes.csv has no column \"labels\"") && Contains("\"label\""));
  TableSpec far;
  far.features = {7};
  REQUIRE_THROWS_WITH(to_dataset(t, far), Contains("has 3 columns; column 7 does not exist"));
  TableSpec names_only;
  names_only.class_names = {"x"};
  REQUIRE_THROWS_WITH(to_dataset(t, names_only), Contains("no label column"));
  Table one = parse_csv("label\nx\n", "one.csv");
  TableSpec only_label;
  only_label.label = "label";
  REQUIRE_THROWS_WITH(to_dataset(one, only_label), Contains("no feature columns"));
}

TEST_CASE("Malformed CSV text: each error names the file, line and column", "[data][csv]") {
  // Wrong number of fields: expected and found.
  REQUIRE_THROWS_WITH(parse_csv("a,b,c\n1,2,3\n4,5\n", "short.csv"),
                      Contains("short.csv, line 3 has 2 fields") &&
                          Contains("the header (line 1) names 3 columns"));
  REQUIRE_THROWS_WITH(parse_csv("a,b\n1,2\nSmith, J,3\n", "long.csv"),
                      Contains("long.csv, line 3 has 3 fields") && Contains("must be quoted"));
  CsvOptions off;
  off.header = false;
  REQUIRE_THROWS_WITH(parse_csv("\n1,2\n3\n", "noheader.csv", off),
                      Contains("noheader.csv, line 3 has 1 fields") &&
                          Contains("the first row (line 2) has 2 fields"));
  // A quoted line break moves the record's line: the error names where the bad record starts.
  REQUIRE_THROWS_WITH(parse_csv("a,b\n\"x\ny\",2\n1\n", "multi.csv"),
                      Contains("multi.csv, line 4 has 1 fields"));

  // An unterminated quote: the line and column where it opened.
  REQUIRE_THROWS_WITH(parse_csv("a,b\n1,2\n3,\"open\n4,5\n6,7\n", "open.csv"),
                      Contains("open.csv, line 3, column 2") && Contains("never closed"));
  // Text after a closing quote.
  REQUIRE_THROWS_WITH(parse_csv("a,b\n1,\"x\"y\n", "after.csv"),
                      Contains("after.csv, line 2, column 2") &&
                          Contains("after the closing quote"));

  // No data.
  REQUIRE_THROWS_WITH(parse_csv("", "empty.csv"), Contains("empty.csv is empty"));
  REQUIRE_THROWS_WITH(parse_csv("\xEF\xBB\xBF\r\n\r\n", "bom.csv"), Contains("bom.csv is empty"));
  REQUIRE_THROWS_WITH(parse_csv("a,b\n", "header.csv"),
                      Contains("header.csv has no data rows") && Contains("header, on line 1"));
  REQUIRE_THROWS_WITH(parse_csv("", "off.csv", off), Contains("off.csv has no data rows"));

  // Header problems and bad options.
  REQUIRE_THROWS_WITH(parse_csv("a,b,a\n1,2,3\n", "dup.csv"),
                      Contains("dup.csv, line 1") && Contains("columns 1 and 3") &&
                          Contains("\"a\""));
  CsvOptions cat;
  cat.categorical = {"c"};
  REQUIRE_THROWS_WITH(parse_csv("a,b\n1,2\n", "cat.csv", cat),
                      Contains("CsvOptions::categorical") && Contains("no column \"c\""));
  CsvOptions names;
  names.column_names = {"x"};
  REQUIRE_THROWS_WITH(parse_csv("a,b\n1,2\n", "names.csv", names),
                      Contains("1 names") && Contains("names.csv, line 1 has 2 fields"));
  CsvOptions quote;
  quote.delimiter = '"';
  REQUIRE_THROWS_WITH(parse_csv("a\n1\n", "q.csv", quote), Contains("CsvOptions::delimiter"));
}

TEST_CASE("Numbers beyond double's range read as the nearest double, as Python reads them",
          "[data][csv]") {
  // float("1e-400") == 0.0, float("-1e-400") == -0.0, float("1e400") == inf in Python; pandas
  // reads the same. A denormal stays exact; missing markers still read as missing.
  const Table t = parse_csv("v\n1e-400\n-1e-400\n0.000001e-320\n4.9e-324\n2e-324\n1e400\n"
                            "-123.4e307\n+1e400\n1e-310\nNaN\n1e99999999999999999999\n",
                            "range.csv");
  const std::vector<double>& v = t["v"].values;
  REQUIRE(v.size() == 11);
  REQUIRE_FALSE(t["v"].categorical);
  CHECK(v[0] == 0.0);
  CHECK_FALSE(std::signbit(v[0]));
  CHECK(v[1] == 0.0);
  CHECK(std::signbit(v[1]));
  CHECK(v[2] == 0.0);
  CHECK(v[3] == std::numeric_limits<double>::denorm_min());  // the smallest denormal, exactly
  CHECK(v[4] == 0.0);  // below half the smallest denormal: rounds to 0
  CHECK(v[5] == std::numeric_limits<double>::infinity());
  CHECK(v[6] == -std::numeric_limits<double>::infinity());
  CHECK(v[7] == std::numeric_limits<double>::infinity());
  CHECK(v[8] == 1e-310);
  CHECK(std::isnan(v[9]));
  CHECK(t["v"].missing(9));
  CHECK(v[10] == std::numeric_limits<double>::infinity());
  // Not numbers stay not numbers.
  CHECK_THROWS_WITH(parse_csv("v\n1\n1e-400x\n", "bad.csv"),
                    Contains("\"1e-400x\" is not a number"));
}

TEST_CASE("A message quotes at most a short excerpt of a huge cell or name", "[data][csv]") {
  const std::string huge(50u << 20, 'x');  // one 50 MB cell
  const std::string numeric = "v\n1\n2\n" + huge + "\n3\n";
  const std::string msg = error_of([&] { (void)parse_csv(numeric, "huge.csv"); });
  REQUIRE(msg.size() < 1024);  // first: a failing check would print the whole message
  CHECK_THAT(msg, Contains("huge.csv, line 4, column 1 (\"v\")") &&
                      Contains("\"" + std::string(60, 'x') +
                               "... (52428800 bytes)\" is not a number"));
  // A huge column name, twice.
  const std::string dup = huge + "," + huge + "\n1,2\n";
  const std::string dup_msg = error_of([&] { (void)parse_csv(dup, "dup.csv"); });
  REQUIRE(dup_msg.size() < 1024);
  CHECK_THAT(dup_msg, Contains("are both named") && Contains("(52428800 bytes)"));
  // A huge category the label spec does not know.
  const Table t = parse_csv("f,label\n1,a\n2," + huge + "\n", "labels.csv");
  TableSpec spec;
  spec.label = "label";
  spec.class_names = {"a", "b"};
  const std::string label_msg = error_of([&] { (void)to_dataset(t, spec); });
  REQUIRE(label_msg.size() < 1024);
  CHECK_THAT(label_msg,
             Contains("not one of TableSpec::class_names") && Contains("(52428800 bytes)"));
  // Cut at a character boundary: 59 ASCII bytes then a 2-byte character keep 59 bytes.
  CHECK(ctnn::excerpt(std::string(59, 'a') + "\xc3\xa9" + std::string(10, 'b')) ==
        std::string(59, 'a') + "... (71 bytes)");
  CHECK(ctnn::excerpt("short") == "short");
}

TEST_CASE("File errors: missing, directory, binary, truncated or corrupt gzip", "[data][csv]") {
  TempDir tmp;
  const std::string missing = tmp.file("no-such.csv");
  REQUIRE_THROWS_WITH(read_csv(missing), Contains("The CSV file '" + missing + "'") &&
                                             Contains("does not exist") &&
                                             Contains("No such file or directory"));
  REQUIRE_THROWS_WITH(read_csv(tmp.file("")), Contains("is a directory, not a file"));
  REQUIRE_THROWS_WITH(read_sklearn_csv(missing), Contains(missing));

  const std::string binary = tmp.file("binary.csv");
  ctnn_test::write_file(binary, Bytes{'a', '\n', 'b', 0, 'c'});
  REQUIRE_THROWS_WITH(read_csv(binary), Contains(binary) && Contains("NUL byte on line 2"));

  const std::string path = tmp.file("cut.csv.gz");
  const Bytes gz = ctnn_test::read_file(sklearn("diabetes_data_raw.csv.gz"));
  CsvOptions ws;
  ws.whitespace = true;
  ws.header = false;
  for (std::size_t cut : {std::size_t{5}, std::size_t{100}, gz.size() / 2, gz.size() - 4}) {
    ctnn_test::write_file(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(cut)));
    REQUIRE_THROWS_WITH(read_csv(path, ws), Contains(path) && Contains("is cut off"));
  }
  Bytes bad = gz;
  bad[bad.size() - 6] ^= 0xFF;  // inside the CRC-32 trailer
  ctnn_test::write_file(path, bad);
  REQUIRE_THROWS_WITH(read_csv(path, ws), Contains(path) && Contains("corrupt") &&
                                              Contains("zlib says"));
}

TEST_CASE("read_sklearn_csv checks the counts and classes of line 1", "[data][csv]") {
  TempDir tmp;
  const std::string path = tmp.file("small.csv");
  const auto write = [&](const std::string& s) { ctnn_test::write_file(path, bytes(s)); };

  write("3,2,no,yes\n1,2,0\n3,4,1\n5,6,1\n");
  const Table ok = read_sklearn_csv(path);
  CHECK(ok.rows() == 3);
  CHECK(ok["target"].categories == std::vector<std::string>{"no", "yes"});
  CHECK(ok["target"].values == std::vector<double>{0, 1, 1});

  write("2,2\n1,2,7.5\n3,4,8.5\n");  // no class names: a numeric target
  CHECK_FALSE(read_sklearn_csv(path)["target"].categorical);

  write("4,2,no,yes\n1,2,0\n3,4,1\n5,6,1\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path), Contains(path) && Contains("3 data rows") &&
                                                  Contains("lines 2 to 4") &&
                                                  Contains("says 4 samples"));
  write("3,3,no,yes\n1,2,0\n3,4,1\n5,6,1\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path),
                      Contains(path + ", line 2 has 3 fields") && Contains("3 features") &&
                          Contains("should have 4"));
  write("3,2,no,yes\n1,2,0\n3,4,2\n5,6,1\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path),
                      Contains(path + ", line 3, column 3 (\"target\")") &&
                          Contains("\"2\" is not a class") && Contains("numbered 0 to 1"));
  write("three,2,no,yes\n1,2,0\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path), Contains(path + ", line 1, column 1") &&
                                                  Contains("\"three\" is not a sample count"));
  write("3\n1,2,0\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path), Contains(path + ", line 1") &&
                                                  Contains("not a scikit-learn header"));
  write("1,2,no,,yes\n1,2,0\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path),
                      Contains(path + ", line 1, column 4") && Contains("class 1 is empty"));
  write("2,1,no,yes\n,0\nred,0\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path), Contains(path + ", line 3, column 1") &&
                                                  Contains("\"red\" is text"));
  write("1,2,no,yes\n");
  REQUIRE_THROWS_WITH(read_sklearn_csv(path), Contains("no data rows"));
}

TEST_CASE("to_table and to_dataset round-trip a Dataset", "[data][csv]") {
  // An IDX-like dataset: 2x2 images, labels with class names.
  Dataset d;
  d.sample_shape = {2, 2, 1};
  d.x = {0.f, .25f, .5f, 1.f, 1.f, .5f, .25f, 0.f, .1f, .2f, .3f, .4f};
  d.labels = {2, 0, 1};
  d.num_classes = 3;
  d.class_names = {"zero", "one", "two"};
  const Table t = to_table(d);
  REQUIRE(t.cols() == 5);
  CHECK(t.columns[0].name == "feature_0");
  CHECK(t.columns[4].name == "label");
  CHECK(t["label"].categorical);
  CHECK(t["label"].text(0) == "two");
  CHECK(t.lines == std::vector<std::size_t>{0, 0, 0});
  CHECK_NOTHROW(t.check_consistent());

  TableSpec spec;
  spec.label = "label";
  spec.keep_category_order = true;
  const Dataset back = to_dataset(t, spec);
  CHECK(back.sample_shape == std::vector<std::size_t>{4});  // flat: the image shape is not kept
  CHECK(back.x == d.x);
  CHECK(back.labels == d.labels);
  CHECK(back.class_names == d.class_names);
  CHECK(back.num_classes == 3);
  CHECK(back.feature_names ==
        std::vector<std::string>{"feature_0", "feature_1", "feature_2", "feature_3"});

  // A CSV dataset with feature names and targets, through a table and back.
  const Table csv = parse_csv("h,w,y0,y1\n1,2,0.5,1\n3,4,1.5,0\n", "reg.csv");
  TableSpec reg;
  reg.targets = {"y0", "y1"};
  const Dataset r = to_dataset(csv, reg);
  CHECK(r.targets == std::vector<float>{0.5f, 1, 1.5f, 0});
  const Table rt = to_table(r);
  CHECK(rt.columns[0].name == "h");
  CHECK(rt.columns[2].name == "target_0");
  TableSpec reg2;
  reg2.targets = {"target_0", "target_1"};
  const Dataset r2 = to_dataset(rt, reg2);
  CHECK(r2.x == r.x);
  CHECK(r2.targets == r.targets);
  CHECK(r2.feature_names == r.feature_names);

  // Numeric labels without class names stay numeric.
  Dataset plain = d;
  plain.class_names.clear();
  CHECK_FALSE(to_table(plain)["label"].categorical);
  // A feature named like the label column cannot be told apart.
  plain.feature_names = {"a", "label", "b", "c"};
  REQUIRE_THROWS_WITH(to_table(plain), Contains("both be named \"label\""));
}

TEST_CASE("A table of 100000 columns reads and cleans in linear time", "[data][csv]") {
  // Found by tests/fuzz/fuzz_csv: column names were checked for duplicates pair by pair (in
  // parse_csv and Table::check_consistent) and cleaning searched its selection once per column,
  // so a 350 KB line of 40000 fields took 11 s to read and 14 s more for drop_missing.
  constexpr std::size_t kCols = 100000;
  std::string text, row;
  for (std::size_t c = 0; c < kCols; ++c) {
    text += (c ? ",c" : "c") + std::to_string(c);
    row += c ? ",1" : "1";
  }
  text += "\n" + row + "\n";
  const auto start = std::chrono::steady_clock::now();
  Table t = parse_csv(text, "wide.csv");
  CHECK(ctnn::data::drop_missing(t).rows_after == 1);
  CHECK(ctnn::data::impute(t, ctnn::data::Impute::mean()).cells_changed == 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(t.cols() == kCols);
  CHECK(seconds < 20.0);  // about 0.2 s optimized; the pairwise checks took minutes
  // The duplicate found last is still named with both columns.
  CHECK_THROWS_WITH(parse_csv(text.substr(0, text.find('\n')) + ",c5\n" + row + ",1\n", "dup.csv"),
                    "dup.csv, line 1: columns 6 and 100001 are both named \"c5\"; column names "
                    "must be unique.");
  t.columns.back().name = "c7";
  CHECK_THROWS_WITH(t.check_consistent(),
                    "The table from wide.csv has two columns named \"c7\" (7 and 99999).");
}
