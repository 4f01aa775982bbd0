// ctnn/data/integrate.hpp: one Table from several (files, formats, exports).
//
//   concat(parts)                        stacks the rows of tables with the same columns.
//   join(left, right, key, options, &r)  adds right's columns to left's rows by a key column.
//   hstack(parts)                        puts the columns of tables with the same rows side by side.
//
// concat: every part must have the same column names, each column of the same kind (numeric or
// categorical), in any order; the result has the first part's column order, every part's rows in
// turn, their `lines`, and as source the distinct sources joined by " + ". Categorical columns
// get the first part's categories followed by the later parts' new ones (in the order each part
// lists them), and the later parts' cells are re-indexed to match. A schema difference is an
// error naming both tables and the missing, extra or differently typed columns.
//
// join: rows of `left` with the right row whose key cell equals theirs (numbers by value,
// categorical cells by category text; a missing key matches nothing). The result keeps left's
// row order, lines and source, and has left's columns followed by right's non-key columns. The
// key must have the same kind in both tables and be unique in `right` (a repeat is an error
// naming both lines); left may repeat keys. JoinKind::inner drops the left rows without a match,
// JoinKind::left keeps them with missing cells. A right column whose name left already has gets
// JoinOptions::suffix appended, or is an error naming the clash when the suffix is empty.
//
// hstack: for files that hold different columns of the same samples in the same order (e.g.
// features in one file, targets in another) and no key. Every part must have as many rows as the
// first; the result has all parts' columns in order, the first part's lines and the sources
// joined by " + ". A row-count difference or a repeated column name is an error naming both.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/table.hpp"

namespace ctnn::data {

namespace detail {

// "the table from a.csv (part 2)", for messages that name several tables mid-sentence.
inline std::string table_name(const Table& t, const std::string& role) {
  std::string d = t.describe();
  d[0] = 't';  // describe() begins with "The table"
  return d + " (" + role + ")";
}
inline std::string part_name(const Table& t, std::size_t i) {
  return table_name(t, "part " + std::to_string(i + 1));
}

inline std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 40; ++i)  // as Table::index_of lists them
    out += (i ? ", \"" : "\"") + excerpt(names[i]) + "\"";
  if (names.size() > 40) out += ", ...";
  return out;
}

}  // namespace detail

// Stacks the rows of `parts`, in order (see the contract above). Throws when `parts` is empty.
inline Table concat(const std::vector<Table>& parts) {
  if (parts.empty()) fail("concat was given no tables to concatenate.");
  const Table& first = parts.front();
  for (const Table& p : parts) p.check_consistent();
  Table out;
  out.columns.resize(first.cols());
  for (std::size_t c = 0; c < first.cols(); ++c) {
    out.columns[c].name = first.columns[c].name;
    out.columns[c].categorical = first.columns[c].categorical;
    out.columns[c].categories = first.columns[c].categories;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Table& p = parts[i];
    // Where each of the first part's columns is in this part, checking the schemas agree.
    std::vector<std::string> missing, extra;
    for (const Column& col : first.columns)
      if (!p.has(col.name)) missing.push_back(col.name);
    for (const Column& col : p.columns)
      if (!first.has(col.name)) extra.push_back(col.name);
    if (!missing.empty() || !extra.empty())
      fail("Cannot concatenate ", detail::part_name(p, i), " with ", detail::part_name(first, 0),
           ": ", missing.empty() ? "" : "it lacks column(s) " + detail::quoted_list(missing),
           !missing.empty() && !extra.empty() ? " and " : "",
           extra.empty() ? "" : "it has extra column(s) " + detail::quoted_list(extra), ".");
    for (std::size_t c = 0; c < first.cols(); ++c) {
      const Column& from = p[first.columns[c].name];
      Column& to = out.columns[c];
      if (from.categorical != to.categorical)
        fail("Cannot concatenate ", detail::part_name(p, i), " with ", detail::part_name(first, 0),
             ": column \"", excerpt(to.name), "\" is ", to.categorical ? "categorical" : "numeric",
             " in the first but ", from.categorical ? "categorical" : "numeric", " in the other.");
      if (!from.categorical) {
        to.values.insert(to.values.end(), from.values.begin(), from.values.end());
        continue;
      }
      std::vector<double> index(from.categories.size());  // this part's index -> the result's
      for (std::size_t k = 0; k < from.categories.size(); ++k) {
        const auto it = std::find(to.categories.begin(), to.categories.end(), from.categories[k]);
        index[k] = double(it - to.categories.begin());
        if (it == to.categories.end()) to.categories.push_back(from.categories[k]);
      }
      for (double v : from.values)
        to.values.push_back(std::isnan(v) ? v : index[static_cast<std::size_t>(v)]);
    }
    out.lines.insert(out.lines.end(), p.lines.begin(), p.lines.end());
    if (!p.source.empty() && std::none_of(parts.begin(), parts.begin() + std::ptrdiff_t(i),
                                          [&](const Table& q) { return q.source == p.source; }))
      out.source += (out.source.empty() ? "" : " + ") + p.source;
  }
  return out;
}

enum class JoinKind { inner, left };

struct JoinOptions {
  JoinKind kind = JoinKind::inner;
  // Appended to a right column whose name the left table already has; empty: such a clash is an
  // error.
  std::string suffix = {};
};

// What a join did with the rows of each side.
struct JoinReport {
  std::string key;
  JoinKind kind = JoinKind::inner;
  std::size_t left_rows = 0, right_rows = 0;
  std::size_t matched = 0;       // left rows whose key the right table has
  std::size_t unmatched = 0;     // left rows without a match
  std::size_t dropped = 0;       // left rows not in the result (the unmatched, for an inner join)
  std::size_t right_unused = 0;  // right rows no left row matched

  std::string str() const {
    std::ostringstream os;
    os << (kind == JoinKind::inner ? "inner" : "left") << " join on \"" << excerpt(key)
       << "\": " << matched << " of " << left_rows << " left rows matched, " << unmatched
       << " unmatched (" << (dropped ? "dropped" : "kept with missing cells") << "); "
       << right_unused << " of " << right_rows << " right rows unused";
    return os.str();
  }
};

inline std::ostream& operator<<(std::ostream& os, const JoinReport& r) { return os << r.str(); }

// Joins `right` to `left` on `key` (see the contract above). A key given by name is looked up by
// that name in both tables; one given by position names left's column, found by name in right.
inline Table join(const Table& left, const Table& right, const ColumnRef& key,
                  const JoinOptions& options = {}, JoinReport* report = nullptr) {
  left.check_consistent();
  right.check_consistent();
  const std::size_t lk = left.index_of(key);
  const Column& lkey = left.columns[lk];
  const std::size_t rk = right.index_of(lkey.name);
  const Column& rkey = right.columns[rk];
  const std::string lname = detail::table_name(left, "left");
  const std::string rname = detail::table_name(right, "right");
  if (lkey.categorical != rkey.categorical)
    fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name), "\": it is ",
         lkey.categorical ? "categorical" : "numeric", " in the left table but ",
         rkey.categorical ? "categorical" : "numeric",
         " in the right; read it as the same kind in both.");

  // Right rows by key: numeric keys by value (+0 for -0), categorical ones by their text.
  std::unordered_map<double, std::size_t> by_value;
  std::unordered_map<std::string, std::size_t> by_text;
  // The right row with key column `k`'s key at `row` (right.rows() for none); with `add`, a new
  // key is first recorded as being at `row`.
  const auto lookup = [&](const Column& k, std::size_t row, bool add) -> std::size_t {
    if (k.missing(row)) return right.rows();
    if (k.categorical) {
      const auto it = add ? by_text.emplace(k.text(row), row).first : by_text.find(k.text(row));
      return it == by_text.end() ? right.rows() : it->second;
    }
    const double v = k.values[row] == 0 ? 0.0 : k.values[row];
    const auto it = add ? by_value.emplace(v, row).first : by_value.find(v);
    return it == by_value.end() ? right.rows() : it->second;
  };
  for (std::size_t row = 0; row < right.rows(); ++row) {
    const std::size_t first = lookup(rkey, row, true);
    if (first < row)
      fail(right.describe(), " has the key column \"", excerpt(rkey.name), "\" value \"",
           excerpt(rkey.text(row)), "\" twice, at ", right.where(first), " and ", right.where(row),
           "; join needs each key at most once in the right table.");
  }

  // The result's columns: left's, then right's non-key ones, renamed on a clash.
  Table out;
  out.source = left.source;
  std::vector<std::size_t> right_cols;
  for (const Column& col : left.columns) {
    out.columns.push_back(col);
    out.columns.back().values.clear();
  }
  for (std::size_t c = 0; c < right.cols(); ++c) {
    if (c == rk) continue;
    Column col = right.columns[c];
    col.values.clear();
    if (out.has(col.name)) {
      if (options.suffix.empty())
        fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name),
             "\": both have a column \"", excerpt(col.name),
             "\"; set JoinOptions::suffix to rename the right one.");
      if (out.has(col.name + options.suffix))
        fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name),
             "\": renaming the ", "right column \"", excerpt(col.name), "\" to \"",
             excerpt(col.name + options.suffix), "\" clashes with a column of that name too.");
      col.name += options.suffix;
    }
    out.columns.push_back(std::move(col));
    right_cols.push_back(c);
  }

  JoinReport r;
  r.key = lkey.name;
  r.kind = options.kind;
  r.left_rows = left.rows();
  r.right_rows = right.rows();
  std::vector<bool> used(right.rows(), false);
  for (std::size_t row = 0; row < left.rows(); ++row) {
    const std::size_t match = lookup(lkey, row, false);
    const bool found = match < right.rows();
    (found ? r.matched : r.unmatched) += 1;
    if (!found && options.kind == JoinKind::inner) {
      ++r.dropped;
      continue;
    }
    if (found) used[match] = true;
    for (std::size_t c = 0; c < left.cols(); ++c)
      out.columns[c].values.push_back(left.columns[c].values[row]);
    for (std::size_t k = 0; k < right_cols.size(); ++k)
      out.columns[left.cols() + k].values.push_back(found
                                                        ? right.columns[right_cols[k]].values[match]
                                                        : std::numeric_limits<double>::quiet_NaN());
    out.lines.push_back(row < left.lines.size() ? left.lines[row] : 0);
  }
  r.right_unused = std::size_t(std::count(used.begin(), used.end(), false));
  if (report) *report = r;
  return out;
}

inline Table hstack(const std::vector<Table>& parts) {
  if (parts.empty()) fail("hstack needs at least one table.");
  Table out = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const Table& t = parts[i];
    if (t.rows() != out.rows())
      fail("hstack: ", detail::part_name(t, i), " has ", t.rows(), " rows but ",
           detail::part_name(parts.front(), 0), " has ", out.rows(),
           "; side-by-side tables need the same rows in the same order.");
    for (const Column& c : t.columns) {
      if (out.has(c.name))
        fail("hstack: the column \"", excerpt(c.name), "\" of ", detail::part_name(t, i),
             " is already in an earlier part; rename one of them.");
      out.columns.push_back(c);
    }
    if (!t.source.empty() && out.source.find(t.source) == std::string::npos)
      out.source += (out.source.empty() ? "" : " + ") + t.source;
  }
  out.check_consistent();
  return out;
}

}  // namespace ctnn::data
