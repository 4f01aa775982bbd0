// ctnn/data/csv.hpp: reading delimited text (CSV, TSV, whitespace-separated) into a Table.
//
// read_csv(path, opts) reads a plain or gzip file (gzip is recognised by its magic bytes 1f 8b);
// parse_csv(text, name, opts) parses text already in memory, `name` standing in for the path in
// messages. The text is:
//   - an optional UTF-8 byte order mark, then `skip_lines` physical lines that are ignored;
//   - a header row naming the columns when `header` is true (else they are named "0", "1", ...;
//     `column_names` overrides either);
//   - data rows, one record a line, fields separated by `delimiter`, or by runs of spaces and tabs
//     when `whitespace` is true. Lines end in LF, CRLF or CR; blank lines are skipped.
//   - Fields follow RFC 4180: a field starting with a double quote runs to the matching quote and
//     may hold delimiters, line breaks and "" (one quote). Unquoted fields lose surrounding spaces.
// Cells: an empty cell or one of `missing` is missing (NaN). A column whose other cells all parse
// as numbers (std::from_chars, optional leading '+') is numeric; a number beyond double's range
// reads as the nearest double, as Python's float() and pandas read it: 1e-400 as 0 (-1e-400 as
// -0), 1e400 as inf, like the text "inf" does (Dataset checks refuse infinite features). A
// column with no number is categorical, its categories in order of first appearance;
// `categorical` forces columns to be categorical (integer codes, say), the category names being
// the cells' text.
// A column mixing numbers and text is an error that names the cell, unless the numbers are the
// majority and `bad_numbers` is BadNumbers::missing: then the text cells are read as missing and
// counted in the CsvReport that `report` points to (if any).
//
// Every error is a ctnn::Error naming the file, the line and, for a cell, the column, numbered
// from 1 as in an editor ("wine.csv, line 17, column 4 (\"ash\")"): a row with the wrong number of
// fields, an unterminated quote (the line where it opened), text after a closing quote, a mixed
// column, duplicate column names, no data rows, and a missing, unreadable or cut-off file. Table
// ColumnRef indices (in `categorical`) count from 0, like everywhere else in ctnn.
//
// The result's `lines` holds the line each row starts on (1-based), `source` the path.
//
// read_sklearn_csv(path) reads scikit-learn's bundled format: line 1 is
// `n_samples,n_features,class names...`, then rows of features and an integer class. Both counts
// are checked. Columns are "feature_0", ... (or the names given) and a categorical "target" whose
// categories are the class names in the file's order, marked Column::ordered so to_dataset keeps
// class i as class i.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/gzip.hpp"
#include "ctnn/data/table.hpp"

namespace ctnn::data {

// What to do with a text cell in a column whose other cells are numbers.
enum class BadNumbers {
  error,    // throw, naming the cell (the default: a typo should not silently become NaN)
  missing,  // read it as missing (NaN) and count it in the CsvReport
};

// Facts about a read that the Table cannot hold.
struct CsvReport {
  std::size_t rows = 0;
  std::size_t missing_cells = 0;    // empty cells and missing markers
  std::size_t bad_numbers = 0;      // text cells in numeric columns read as missing
  std::vector<std::string> notes;   // one sentence per column that had such cells
};

struct CsvOptions {
  char delimiter = ',';             // ignored when `whitespace` is true
  bool whitespace = false;          // runs of spaces and tabs separate fields
  bool header = true;               // the first (non-skipped) row names the columns
  std::size_t skip_lines = 0;       // physical lines to ignore before the header or data
  std::vector<std::string> column_names = {};  // if not empty: the names of all columns, in order
  std::vector<std::string> missing = {"NA", "N/A", "NaN", "nan", "?", "null"};
  std::vector<ColumnRef> categorical = {};  // columns to read as categories even if numeric
  BadNumbers bad_numbers = BadNumbers::error;
  CsvReport* report = nullptr;      // if set, filled in by the read
};

namespace csv_detail {

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// The nearest double to the decimal number `s`, which std::from_chars found well formed but out of
// range: +-0 when its magnitude is below double's smallest, +-inf when above its largest. The
// decimal exponent of its first significant digit tells which (std::strtod would too, but reads
// the decimal point of the current locale).
inline double out_of_range_value(std::string_view s) {
  const bool negative = s.front() == '-';
  if (negative) s.remove_prefix(1);
  long long lead = 0;  // the power of ten of the first nonzero digit, before the exponent
  bool seen_point = false, seen_digit = false;
  std::size_t i = 0;
  for (; i < s.size() && s[i] != 'e' && s[i] != 'E'; ++i) {
    if (s[i] == '.') {
      seen_point = true;
    } else if (!seen_digit && s[i] == '0') {
      if (seen_point) --lead;
    } else if (!seen_digit) {
      seen_digit = true;
      if (seen_point) --lead;
    } else if (!seen_point) {
      ++lead;
    }
  }
  long long exponent = 0;  // saturated: only its sign against `lead` matters
  if (i < s.size()) {
    std::string_view e = s.substr(i + 1);
    const bool minus = !e.empty() && e.front() == '-';
    if (!e.empty() && (e.front() == '-' || e.front() == '+')) e.remove_prefix(1);
    for (char c : e) exponent = std::min<long long>(exponent * 10 + (c - '0'), 1LL << 40);
    if (minus) exponent = -exponent;
  }
  const double magnitude = lead + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -magnitude : magnitude;
}

// The whole of `s` (spaces around it allowed) as a double; false if it is not exactly a number.
inline bool parse_number(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') {  // from_chars rejects '+', spreadsheets write it
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) return false;
  }
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (end != s.data() + s.size()) return false;
  if (ec == std::errc::result_out_of_range) {  // a well-formed number past double's range
    out = out_of_range_value(s);
    return true;
  }
  return ec == std::errc();
}

// "wine.csv, line 17" and "wine.csv, line 17, column 4 (\"ash\")" (column counted from 1).
inline std::string at(const std::string& source, std::size_t line) {
  return source + ", line " + std::to_string(line);
}
inline std::string at(const std::string& source, std::size_t line, std::size_t col,
                      const std::string& name = "") {
  return at(source, line) + ", column " + std::to_string(col + 1) +
         (name.empty() ? "" : " (\"" + excerpt(name) + "\")");
}

struct Field {
  std::string text;       // unquoted fields trimmed; quoted ones exactly as written, unescaped
  std::size_t line = 0;   // where the field starts
  bool quoted = false;
};

// Splits text into records of fields, tracking physical line numbers.
class Parser {
 public:
  Parser(std::string_view text, const std::string& source, const CsvOptions& opts)
      : s_(text), source_(source), opts_(opts) {
    if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark, as Excel writes
  }

  void skip_lines(std::size_t n) {
    for (std::size_t i = 0; i < n && pos_ < s_.size(); ++i) {
      while (!at_eol()) ++pos_;
      end_line();
    }
  }

  // Reads the next non-blank record into `fields`; false at the end of the text.
  bool next(std::vector<Field>& fields) {
    for (;;) {
      while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) return false;
      if (!at_eol()) break;
      end_line();
    }
    record_line_ = line_;
    fields.clear();
    for (;;) {
      Field f;
      while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
      f.line = line_;
      if (pos_ < s_.size() && s_[pos_] == '"')
        read_quoted(f, fields.size());
      else
        read_plain(f);
      fields.push_back(std::move(f));
      if (opts_.whitespace)
        while (pos_ < s_.size() && is_blank(s_[pos_])) ++pos_;
      if (at_eol()) {
        if (pos_ < s_.size()) end_line();
        return true;
      }
      if (!opts_.whitespace) ++pos_;  // the delimiter
    }
  }

  std::size_t record_line() const { return record_line_; }

 private:
  bool separator(char c) const { return opts_.whitespace ? is_blank(c) : c == opts_.delimiter; }
  // Blanks around a field are dropped, unless the blank is itself the delimiter.
  bool trimmable(char c) const { return is_blank(c) && (opts_.whitespace || c != opts_.delimiter); }
  bool at_eol() const { return pos_ >= s_.size() || s_[pos_] == '\n' || s_[pos_] == '\r'; }
  void end_line() {  // consumes LF, CRLF or CR
    if (pos_ < s_.size() && s_[pos_] == '\r') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '\n') ++pos_;
    ++line_;
  }

  void read_plain(Field& f) {
    const std::size_t start = pos_;
    while (!at_eol() && !separator(s_[pos_])) ++pos_;
    std::size_t end = pos_;
    while (end > start && trimmable(s_[end - 1])) --end;
    f.text.assign(s_.substr(start, end - start));
  }

  void read_quoted(Field& f, std::size_t col) {
    f.quoted = true;
    ++pos_;
    for (;;) {
      if (pos_ >= s_.size())
        fail(at(source_, f.line, col), ": the quoted field that opens on this line is never "
             "closed (the text ends inside it). A quote inside a quoted field is written as \"\".");
      const char c = s_[pos_];
      if (c == '"') {
        if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '"') {
          f.text += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\r' || c == '\n') {  // a line break inside quotes is part of the field
        f.text += '\n';
        end_line();
        continue;
      }
      f.text += c;
      ++pos_;
    }
    const std::size_t after = pos_;
    while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
    if (opts_.whitespace && pos_ > after) return;
    if (!at_eol() && !separator(s_[pos_]))
      fail(at(source_, line_, col), ": unexpected text after the closing quote of a quoted field "
           "(which opened on line ", f.line,
           "). A quote inside a quoted field is written as \"\".");
  }

  std::string_view s_;
  const std::string& source_;
  const CsvOptions& opts_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::size_t record_line_ = 0;
};

// One column while the rows are read: numbers as they come, text cells kept until the column's
// type is known at the end.
struct Accum {
  struct Text {
    std::size_t row, line;
    std::string text;
  };
  std::vector<double> num;  // one per row; NaN for a missing or text cell
  std::vector<Text> text;   // the non-missing cells that are not numbers (all, if forced)
  std::size_t numbers = 0;
  std::size_t first_number_line = 0;
  std::string first_number;
  bool forced = false;      // listed in CsvOptions::categorical
};

inline void check_options(const CsvOptions& o) {
  if (!o.whitespace && (o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r'))
    fail("CsvOptions::delimiter cannot be a double quote or a line break (it is character code ",
         int(o.delimiter), ").");
}

// Sets up the table's columns from their names and marks the forced categorical ones.
inline void start_columns(Table& t, std::vector<Accum>& acc, std::vector<std::string> names,
                          const CsvOptions& o, std::size_t first_line) {
  if (!o.column_names.empty()) {
    if (o.column_names.size() != names.size())
      fail("CsvOptions::column_names gives ", o.column_names.size(), " names, but ",
           at(t.source, first_line), " has ", names.size(), " fields.");
    names = o.column_names;
  }
  // A map, not a pairwise check: a hostile header of a million fields must not take hours.
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t c = 0; c < names.size(); ++c)
    if (const auto [d, added] = seen.try_emplace(names[c], c); !added)
      fail(at(t.source, first_line), ": columns ", d->second + 1, " and ", c + 1,
           " are both named \"", excerpt(names[c]), "\"; column names must be unique.");
  t.columns.resize(names.size());
  for (std::size_t c = 0; c < names.size(); ++c) t.columns[c].name = std::move(names[c]);
  acc.assign(t.columns.size(), Accum{});
  for (const ColumnRef& ref : o.categorical) {
    std::size_t c = 0;
    try {
      c = t.index_of(ref);
    } catch (const Error& e) {
      fail("CsvOptions::categorical: ", e.what());
    }
    acc[c].forced = true;
  }
}

inline bool is_missing(std::string_view cell, const CsvOptions& o) {
  cell = trim(cell);
  if (cell.empty()) return true;
  for (const std::string& m : o.missing)
    if (cell == m) return true;
  return false;
}

// Decides the column's type and fills `col`; throws for a mixed column unless allowed.
inline void finish_column(Column& col, std::size_t c, Accum& a, const std::string& source,
                          const CsvOptions& o, CsvReport& report) {
  const std::size_t rows = a.num.size();
  if (a.forced || (a.numbers == 0 && !a.text.empty())) {
    col.categorical = true;
    col.values.assign(rows, std::numeric_limits<double>::quiet_NaN());
    std::unordered_map<std::string, std::size_t> index;
    for (Accum::Text& cell : a.text) {
      auto [it, added] = index.try_emplace(cell.text, col.categories.size());
      if (added) col.categories.push_back(cell.text);
      col.values[cell.row] = double(it->second);
    }
    return;
  }
  if (!a.text.empty()) {
    const Accum::Text& bad = a.text.front();
    if (a.numbers < a.text.size())
      fail(at(source, a.first_number_line, c, col.name), ": \"", excerpt(a.first_number),
           "\" is a number, but the column's other ", a.text.size(),
           " non-missing cells are text (the first, \"", excerpt(bad.text), "\", on line ",
           bad.line, "). List the column in CsvOptions::categorical to read every cell as a "
           "category name.");
    if (o.bad_numbers == BadNumbers::error)
      fail(at(source, bad.line, c, col.name), ": \"", excerpt(bad.text),
           "\" is not a number; the column's other cells are numeric (", a.numbers, " numbers, ",
           a.text.size(), " text cells). Set "
           "CsvOptions::bad_numbers = BadNumbers::missing to read such cells as missing, or list "
           "the column in CsvOptions::categorical to read it as text.");
    report.bad_numbers += a.text.size();
    report.notes.push_back(source + ", column " + std::to_string(c + 1) + " (\"" +
                           excerpt(col.name) + "\"): " + std::to_string(a.text.size()) +
                           " text cells read as missing, the first \"" + excerpt(bad.text) +
                           "\" on line " + std::to_string(bad.line) + ".");
  }
  col.values = std::move(a.num);
}

inline std::string read_text(const std::string& path) {
  gzip_detail::Reader in(path, "CSV file");
  std::string text = in.read_all();
  if (const auto nul = text.find('\0'); nul != std::string::npos) {
    const std::size_t line = 1 + std::size_t(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n'));
    fail("The CSV file '", path, "' holds a NUL byte on line ", line,
         ": it looks like a binary file, not text.");
  }
  return text;
}

}  // namespace csv_detail

// Parses delimited text held in memory; `source_name` names it in messages and in Table::source.
inline Table parse_csv(std::string_view text, const std::string& source_name,
                       CsvOptions opts = {}) {
  using namespace csv_detail;
  check_options(opts);
  CsvReport report;
  Table t;
  t.source = source_name;
  Parser p(text, t.source, opts);
  p.skip_lines(opts.skip_lines);

  std::vector<Field> fields;
  std::vector<Accum> acc;
  std::size_t first_line = 0;  // the header's line, or the first data row's
  bool started = false;
  if (opts.header) {
    if (!p.next(fields))
      fail("The CSV text from ", source_name, " is empty", opts.skip_lines ? " after the " : "",
           opts.skip_lines ? std::to_string(opts.skip_lines) + " skipped lines" : "",
           ": it has no header and no data rows.");
    first_line = p.record_line();
    std::vector<std::string> names;
    for (std::size_t c = 0; c < fields.size(); ++c)
      names.push_back(fields[c].text.empty() ? std::to_string(c) : std::move(fields[c].text));
    start_columns(t, acc, std::move(names), opts, first_line);
    started = true;
  }
  while (p.next(fields)) {
    if (!started) {
      first_line = p.record_line();
      std::vector<std::string> names;
      for (std::size_t c = 0; c < fields.size(); ++c) names.push_back(std::to_string(c));
      start_columns(t, acc, std::move(names), opts, first_line);
      started = true;
    }
    if (fields.size() != t.cols())
      fail(at(source_name, p.record_line()), " has ", fields.size(), " fields, but ",
           opts.header ? "the header (line " : "the first row (line ", first_line,
           opts.header ? ") names " : ") has ", t.cols(), opts.header ? " columns." : " fields.",
           fields.size() > t.cols() ? " A field that contains the delimiter must be quoted." : "");
    const std::size_t row = t.lines.size();
    t.lines.push_back(p.record_line());
    for (std::size_t c = 0; c < fields.size(); ++c) {
      Accum& a = acc[c];
      Field& f = fields[c];
      double v = 0;
      if (is_missing(f.text, opts)) {
        a.num.push_back(std::numeric_limits<double>::quiet_NaN());
        ++report.missing_cells;
      } else if (!a.forced && parse_number(f.text, v)) {
        a.num.push_back(v);
        if (a.numbers++ == 0) {
          a.first_number_line = f.line;
          a.first_number = f.text;
        }
      } else {
        a.num.push_back(std::numeric_limits<double>::quiet_NaN());
        a.text.push_back({row, f.line, std::move(f.text)});
      }
    }
  }
  if (t.lines.empty())
    fail("The CSV text from ", source_name, " has no data rows",
         opts.header ? " (only a header, on line " + std::to_string(first_line) + ")" : "", ".");
  for (std::size_t c = 0; c < t.cols(); ++c)
    finish_column(t.columns[c], c, acc[c], source_name, opts, report);
  report.rows = t.rows();
  if (opts.report != nullptr) *opts.report = std::move(report);
  return t;
}

// Reads a CSV file, plain or gzip; see the contract at the top of this header.
inline Table read_csv(const std::string& path, CsvOptions opts = {}) {
  const std::string text = csv_detail::read_text(path);
  return parse_csv(text, path, std::move(opts));
}

// Reads scikit-learn's CSV format (line 1: n_samples,n_features,class names...). Columns are
// `feature_names` (n_features of them) or "feature_0", ...; then "target", categorical with the
// class names in the file's order when line 1 names classes, else numeric.
inline Table read_sklearn_csv(const std::string& path,
                              const std::vector<std::string>& feature_names = {}) {
  using csv_detail::at;
  const std::string text = csv_detail::read_text(path);
  std::string_view first(text);
  if (first.starts_with("\xEF\xBB\xBF")) first.remove_prefix(3);
  first = first.substr(0, first.find_first_of("\r\n"));
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t comma = first.find(',', start);
    parts.emplace_back(csv_detail::trim(first.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const auto count = [&](std::size_t i, const char* what) {
    std::size_t n = 0;
    const std::string& s = parts[i];
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
      fail(at(path, 1, i), ": \"", excerpt(s), "\" is not a ", what,
           "; a scikit-learn CSV file starts with the line n_samples,n_features,class names...");
    return n;
  };
  if (parts.size() < 2)
    fail(at(path, 1), ": \"", excerpt(first), "\" is not a scikit-learn header; it should be "
         "n_samples,n_features,class names...");
  const std::size_t n_samples = count(0, "sample count");
  const std::size_t n_features = count(1, "feature count");
  const std::vector<std::string> classes(parts.begin() + 2, parts.end());
  for (std::size_t k = 0; k < classes.size(); ++k)
    if (classes[k].empty()) fail(at(path, 1, k + 2), ": the name of class ", k, " is empty.");
  if (!feature_names.empty() && feature_names.size() != n_features)
    fail("read_sklearn_csv was given ", feature_names.size(), " feature names, but ", at(path, 1),
         " says the file has ", n_features, " features.");

  CsvOptions opts;
  opts.header = false;
  opts.skip_lines = 1;
  Table t = parse_csv(text, path, opts);
  if (t.cols() != n_features + 1)
    fail(at(path, t.lines.front()), " has ", t.cols(), " fields, but line 1 says there are ",
         n_features, " features, so each row should have ", n_features + 1,
         " (the features, then the class).");
  if (t.rows() != n_samples)
    fail(path, " has ", t.rows(), " data rows (lines ", t.lines.front(), " to ", t.lines.back(),
         "), but its line 1 says ", n_samples, " samples.");
  for (std::size_t c = 0; c < t.cols(); ++c) {
    Column& col = t.columns[c];
    if (col.categorical) {  // its first category is the first text cell
      const std::size_t r = std::size_t(std::find(col.values.begin(), col.values.end(), 0.0) -
                                        col.values.begin());
      fail(at(path, t.lines[r], c), ": \"", excerpt(col.categories.front()), "\" is text, and the "
           "column holds no number; a scikit-learn CSV file holds only numbers.");
    }
    col.name = c == n_features ? "target"
               : feature_names.empty() ? "feature_" + std::to_string(c)
                                       : feature_names[c];
  }
  Column& target = t.columns.back();
  if (!classes.empty()) {
    for (std::size_t r = 0; r < t.rows(); ++r) {
      const double v = target.values[r];
      if (std::isnan(v) || v < 0 || v >= double(classes.size()) || v != std::floor(v))
        fail(at(path, t.lines[r], n_features, "target"), ": \"", excerpt(target.text(r)),
             "\" is not a class; line 1 names ", classes.size(), " classes, numbered 0 to ",
             classes.size() - 1, ".");
    }
    target.categorical = true;
    target.ordered = true;  // the file's class list: class i stays class i
    target.categories = classes;
  }
  t.check_consistent();  // duplicate names among `feature_names`
  return t;
}

}  // namespace ctnn::data
