// ctnn/data/table.hpp: a table of named columns, the form raw tabular data takes before it
// becomes a Dataset.
//
// A Table is what the CSV reader produces and what cleaning (clean.hpp) and integration
// (integrate.hpp) work on. Every column holds one double per row; a missing cell is NaN. A
// categorical column (text such as "benign", or a column the user declared categorical) stores
// the index of the cell's category in `categories`, also as a double (NaN when missing).
// `lines` keeps, for every row, the line of the source file it came from (1-based; 0 for rows
// made in memory), so errors and reports can point at the file.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ctnn/core/error.hpp"

namespace ctnn::data {

// Names a column by its header name or by its 0-based position.
class ColumnRef {
 public:
  ColumnRef(std::size_t index) : ref_(index) {}  // NOLINT: implicit on purpose
  ColumnRef(int index) : ref_(index < 0 ? static_cast<std::size_t>(-1) : std::size_t(index)) {}
  ColumnRef(std::string name) : ref_(std::move(name)) {}  // NOLINT
  ColumnRef(const char* name) : ref_(std::string(name)) {}  // NOLINT

  bool is_index() const { return std::holds_alternative<std::size_t>(ref_); }
  std::size_t index() const { return std::get<std::size_t>(ref_); }
  const std::string& name() const { return std::get<std::string>(ref_); }
  // "column 3" or "column \"radius\"", for messages.
  std::string describe() const {
    return is_index() ? "column " + std::to_string(index()) : "column \"" + excerpt(name()) + "\"";
  }

 private:
  std::variant<std::size_t, std::string> ref_;
};

struct Column {
  std::string name;
  std::vector<double> values;            // one per row; NaN marks a missing cell
  bool categorical = false;              // values are indices into `categories`
  std::vector<std::string> categories;   // the category names, for a categorical column
  bool ordered = false;                  // the categories' order means something (a file's class
                                         // list): to_dataset numbers classes in it, not sorted

  bool missing(std::size_t row) const { return std::isnan(values[row]); }
  // The cell as text: the category name, the number, or "" when missing.
  std::string text(std::size_t row) const {
    const double v = values[row];
    if (std::isnan(v)) return "";
    if (categorical) return categories.at(static_cast<std::size_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
  }
};

struct Table {
  std::string source;                  // where the rows came from (a file path), for messages
  std::vector<Column> columns;
  std::vector<std::size_t> lines;      // source line of each row (1-based), 0 when not from a file

  std::size_t rows() const { return columns.empty() ? lines.size() : columns.front().values.size(); }
  std::size_t cols() const { return columns.size(); }

  // The position of a column; throws ctnn::Error naming the table and its columns if absent.
  std::size_t index_of(const ColumnRef& ref) const {
    if (ref.is_index()) {
      if (ref.index() >= columns.size())
        fail(describe(), " has ", columns.size(), " columns; ", ref.describe(),
             " does not exist (columns are numbered from 0).");
      return ref.index();
    }
    for (std::size_t c = 0; c < columns.size(); ++c)
      if (columns[c].name == ref.name()) return c;
    std::string names;
    for (std::size_t c = 0; c < columns.size() && c < 40; ++c)
      names += (c ? ", \"" : "\"") + excerpt(columns[c].name) + "\"";
    if (columns.size() > 40) names += ", ...";
    fail(describe(), " has no ", ref.describe(), "; its columns are ", names, ".");
  }
  bool has(const std::string& name) const {
    for (const Column& c : columns)
      if (c.name == name) return true;
    return false;
  }
  Column& operator[](const ColumnRef& ref) { return columns[index_of(ref)]; }
  const Column& operator[](const ColumnRef& ref) const { return columns[index_of(ref)]; }

  // The line a row came from, for messages: "line 17 of wine.csv" or "row 3".
  std::string where(std::size_t row) const {
    if (row < lines.size() && lines[row] != 0 && !source.empty())
      return "line " + std::to_string(lines[row]) + " of " + source;
    return "row " + std::to_string(row);
  }
  std::string describe() const { return source.empty() ? "The table" : "The table from " + source; }

  // Keeps the rows at `keep` (in that order) in every column and in `lines`.
  void keep_rows(const std::vector<std::size_t>& keep) {
    for (Column& c : columns) {
      std::vector<double> v;
      v.reserve(keep.size());
      for (std::size_t r : keep) v.push_back(c.values[r]);
      c.values = std::move(v);
    }
    std::vector<std::size_t> l;
    l.reserve(keep.size());
    for (std::size_t r : keep) l.push_back(r < lines.size() ? lines[r] : 0);
    lines = std::move(l);
  }

  // Throws ctnn::Error unless every column has rows() values, `lines` has one entry a row, column
  // names are unique and categorical cells index their categories.
  void check_consistent() const {
    const std::size_t n = rows();
    if (lines.size() != n)
      fail(describe(), " has ", n, " rows but ", lines.size(), " line numbers.");
    std::unordered_map<std::string_view, std::size_t> seen;  // linear in the column count
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const Column& col = columns[c];
      if (col.values.size() != n)
        fail(describe(), ": column \"", excerpt(col.name), "\" has ", col.values.size(),
             " values, not ", n, ".");
      if (const auto [d, added] = seen.try_emplace(col.name, c); !added)
        fail(describe(), " has two columns named \"", excerpt(col.name), "\" (", d->second, " and ",
             c, ").");
      if (col.categorical)
        for (std::size_t r = 0; r < n; ++r) {
          const double v = col.values[r];
          if (!std::isnan(v) && (v < 0 || v >= double(col.categories.size()) || v != std::floor(v)))
            fail(describe(), ": column \"", excerpt(col.name), "\" at ", where(r),
                 " holds category index ", v, " but has ", col.categories.size(), " categories.");
        }
    }
  }
};

}  // namespace ctnn::data
