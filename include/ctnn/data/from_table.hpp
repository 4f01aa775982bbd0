// ctnn/data/from_table.hpp: turning a Table into a Dataset (to_dataset) and back (to_table).
//
// to_dataset(table, spec) takes the columns `spec` names:
//   - features: the columns that become each sample's floats, in order (empty = every column that
//     is not the label or a target). A categorical feature gives its stored category index; one-
//     hot encoding is preprocess.hpp's job. sample_shape = {number of features}.
//   - label (optional): sparse class labels. A categorical label's class is the position of its
//     category in sorted order (numeric order when every category name is a number, else byte-wise
//     lexicographic), so class numbering does not depend on which row came first; with
//     `keep_category_order`, or for a column marked Column::ordered (read_sklearn_csv's target),
//     it is the stored category index instead, and with `class_names` it is the position of
//     the name there. num_classes counts every category, used or not. A numeric label must be a
//     whole number >= 0; num_classes = max + 1, or class_names.size() (checked) when given.
//   - targets (instead of a label): each row's target vector, one column per element. A
//     categorical target column maps to class numbers as a label does (e.g. "no" 0, "yes" 1).
// Missing cells (NaN) in any selected column are an error naming the line and column: clean the
// table first (clean.hpp: drop_missing, impute), or, for features only, set
// `missing_features_as_nan` and fill them with a preprocess.hpp SimpleImputer fitted on the
// training split (so the test rows lend the training rows nothing). Every error is a ctnn::Error
// sentence.
//
// to_table(dataset) is the reverse, so a Dataset from another format (IDX, say) can meet CSV
// tables: features named by feature_names or "feature_0", ...; a "label" column (categorical with
// the class names, if any, else numeric); targets as "target_0", .... The sample shape is not
// kept: to_dataset gives it back flat, {feature_size()}. lines are 0 (not from a file).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/csv.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/table.hpp"

namespace ctnn::data {

struct TableSpec {
  std::vector<ColumnRef> features = {};   // empty: every column but the label and targets
  std::optional<ColumnRef> label = {};    // sparse class labels, or
  std::vector<ColumnRef> targets = {};    // a target vector (regression, binary, multi-output)
  std::vector<std::string> class_names = {};  // optional: the classes, in class-index order
  bool keep_category_order = false;       // categorical label/targets: class = stored index
  bool missing_features_as_nan = false;   // a missing feature cell becomes NaN instead of an error
};

namespace from_table_detail {

// For each stored category of `col`, its class number; `names` gets the class names in order.
inline std::vector<std::int32_t> class_of_category(const Table& t, const Column& col,
                                                   const TableSpec& spec,
                                                   std::vector<std::string>& names) {
  const std::vector<std::string>& cats = col.categories;
  std::vector<std::int32_t> cls(cats.size());
  if (!spec.class_names.empty()) {
    for (std::size_t k = 0; k < cats.size(); ++k) {
      const auto it = std::find(spec.class_names.begin(), spec.class_names.end(), cats[k]);
      if (it == spec.class_names.end()) {
        std::string list;
        for (const std::string& n : spec.class_names)
          list += (list.empty() ? "\"" : ", \"") + excerpt(n) + "\"";
        fail(t.describe(), ": column \"", excerpt(col.name), "\" has the category \"",
             excerpt(cats[k]), "\", which is not one of TableSpec::class_names (", list, ").");
      }
      cls[k] = static_cast<std::int32_t>(it - spec.class_names.begin());
    }
    names = spec.class_names;
    return cls;
  }
  std::vector<std::size_t> order(cats.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (!spec.keep_category_order && !col.ordered) {
    std::vector<double> num(cats.size());
    bool numeric = true;
    for (std::size_t k = 0; k < cats.size() && numeric; ++k)
      numeric = csv_detail::parse_number(cats[k], num[k]) && !std::isnan(num[k]);
    // Integer codes read as categories sort as numbers: "2" before "10".
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return numeric ? num[a] < num[b] : cats[a] < cats[b];
    });
  }
  names.clear();
  for (std::size_t i = 0; i < order.size(); ++i) {
    cls[order[i]] = static_cast<std::int32_t>(i);
    names.push_back(cats[order[i]]);
  }
  return cls;
}

[[noreturn]] inline void missing_cell(const Table& t, std::size_t row, const Column& col,
                                      const char* role) {
  fail(t.describe(), " has a missing value at ", t.where(row), " in ", role, " column \"",
       excerpt(col.name),
       "\". Drop such rows with drop_missing or fill them with impute "
       "(ctnn/data/clean.hpp) before making a Dataset",
       std::string_view(role) == "feature"
           ? ", or keep them as NaN (TableSpec::missing_features_as_nan) for a SimpleImputer "
             "fitted on the training split (ctnn/data/preprocess.hpp)."
           : ".");
}

}  // namespace from_table_detail

inline Dataset to_dataset(const Table& t, const TableSpec& spec) {
  using namespace from_table_detail;
  t.check_consistent();
  if (spec.label && !spec.targets.empty())
    fail("TableSpec names both a label (", spec.label->describe(), ") and ", spec.targets.size(),
         " target columns; a Dataset has either class labels or target vectors.");
  if (!spec.class_names.empty() && !spec.label)
    fail("TableSpec::class_names is set (", spec.class_names.size(), " names), but no label "
         "column is; class names describe the label's classes.");
  if (t.rows() == 0) fail(t.describe(), " has no rows, so it makes an empty dataset.");

  // Every column may play one role only: a feature that is also the label would leak it.
  std::vector<const char*> role(t.cols(), nullptr);
  const auto claim = [&](const ColumnRef& ref, const char* what) {
    const std::size_t c = t.index_of(ref);
    if (role[c] != nullptr)
      fail("TableSpec uses column \"", excerpt(t.columns[c].name), "\" of ", t.describe(),
           " both as ", role[c], " and as ", what, ".");
    role[c] = what;
    return c;
  };
  std::optional<std::size_t> label;
  if (spec.label) label = claim(*spec.label, "the label");
  std::vector<std::size_t> targets;
  for (const ColumnRef& ref : spec.targets) targets.push_back(claim(ref, "a target"));
  std::vector<std::size_t> features;
  if (spec.features.empty()) {
    for (std::size_t c = 0; c < t.cols(); ++c)
      if (role[c] == nullptr) features.push_back(c);
  } else {
    for (const ColumnRef& ref : spec.features) features.push_back(claim(ref, "a feature"));
  }
  if (features.empty())
    fail(t.describe(), " has no feature columns once the label and targets are set aside.");

  const std::size_t n = t.rows();
  Dataset d;
  d.sample_shape = {features.size()};
  for (std::size_t c : features) d.feature_names.push_back(t.columns[c].name);
  d.x.resize(n * features.size());
  for (std::size_t j = 0; j < features.size(); ++j) {
    const Column& col = t.columns[features[j]];
    for (std::size_t r = 0; r < n; ++r) {
      if (col.missing(r)) {
        if (!spec.missing_features_as_nan) missing_cell(t, r, col, "feature");
        d.x[r * features.size() + j] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      d.x[r * features.size() + j] = static_cast<float>(col.values[r]);
    }
  }

  if (label) {
    const Column& col = t.columns[*label];
    d.labels.resize(n);
    if (col.categorical) {
      const std::vector<std::int32_t> cls = class_of_category(t, col, spec, d.class_names);
      for (std::size_t r = 0; r < n; ++r) {
        if (col.missing(r)) missing_cell(t, r, col, "the label");
        d.labels[r] = cls[static_cast<std::size_t>(col.values[r])];
      }
      d.num_classes = d.class_names.size();
    } else {
      double top = -1;
      for (std::size_t r = 0; r < n; ++r) {
        const double v = col.values[r];
        if (std::isnan(v)) missing_cell(t, r, col, "the label");
        if (v < 0 || v != std::floor(v) || v > double(std::numeric_limits<std::int32_t>::max()))
          fail(t.describe(), ": the label column \"", excerpt(col.name), "\" holds ", col.text(r),
               " at ", t.where(r),
               "; a numeric label must be a whole number from 0 (a class index).");
        if (!spec.class_names.empty() && v >= double(spec.class_names.size()))
          fail(t.describe(), ": the label column \"", excerpt(col.name), "\" holds ", col.text(r),
               " at ", t.where(r), ", but TableSpec::class_names names ", spec.class_names.size(),
               " classes (labels 0 to ", spec.class_names.size() - 1, ").");
        d.labels[r] = static_cast<std::int32_t>(v);
        top = std::max(top, v);
      }
      d.class_names = spec.class_names;
      d.num_classes = spec.class_names.empty() ? static_cast<std::size_t>(top) + 1
                                               : spec.class_names.size();
    }
  }

  if (!targets.empty()) {
    d.target_size = targets.size();
    d.targets.resize(n * targets.size());
    for (std::size_t j = 0; j < targets.size(); ++j) {
      const Column& col = t.columns[targets[j]];
      std::vector<std::int32_t> cls;
      std::vector<std::string> unused;
      if (col.categorical) {
        TableSpec order;  // class_names describe the label only
        order.keep_category_order = spec.keep_category_order;
        cls = class_of_category(t, col, order, unused);
      }
      for (std::size_t r = 0; r < n; ++r) {
        if (col.missing(r)) missing_cell(t, r, col, "target");
        const double v = col.values[r];
        d.targets[r * targets.size() + j] =
            col.categorical ? static_cast<float>(cls[static_cast<std::size_t>(v)])
                            : static_cast<float>(v);
      }
    }
  }
  d.check_consistent(("dataset made from " + t.describe()).c_str());
  return d;
}

inline Table to_table(const Dataset& d) {
  d.check_consistent();
  const std::size_t n = d.size();
  const std::size_t f = d.feature_size();
  Table t;
  for (std::size_t j = 0; j < f; ++j) {
    Column col;
    col.name = d.feature_names.empty() ? "feature_" + std::to_string(j) : d.feature_names[j];
    col.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) col.values[i] = d.x[i * f + j];
    t.columns.push_back(std::move(col));
  }
  if (d.has_labels()) {
    Column col;
    col.name = "label";
    col.values.assign(d.labels.begin(), d.labels.end());
    col.categorical = !d.class_names.empty();
    col.categories = d.class_names;
    t.columns.push_back(std::move(col));
  }
  for (std::size_t k = 0; k < d.target_size && d.has_targets(); ++k) {
    Column col;
    col.name = "target_" + std::to_string(k);
    col.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) col.values[i] = d.targets[i * d.target_size + k];
    t.columns.push_back(std::move(col));
  }
  t.lines.assign(n, 0);
  for (std::size_t c = 0; c < t.cols(); ++c)
    for (std::size_t e = 0; e < c; ++e)
      if (t.columns[c].name == t.columns[e].name)
        fail("to_table: the dataset's columns ", e, " and ", c, " would both be named \"",
             excerpt(t.columns[c].name), "\"; rename the feature (Dataset::feature_names).");
  return t;
}

}  // namespace ctnn::data
