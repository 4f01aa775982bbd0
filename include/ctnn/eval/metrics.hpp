// ctnn/eval/metrics.hpp: evaluation metrics and the tables that print them.
//
// From raw arrays (no model needed):
//   - confusion_matrix(truth, predicted, num_classes): counts[t][p], rows = true class.
//   - classification_report(cm): per-class precision, recall, F1 and support, accuracy, and the
//     macro and support-weighted averages; the numbers of scikit-learn's
//     classification_report(y_true, y_pred, zero_division=0):
//       * a ratio whose denominator is 0 is 0 (precision of a class never predicted, recall of a
//         class absent from the truth, F1 when both are 0);
//       * F1 = 2 tp / (2 tp + fp + fn), which equals 2PR / (P + R) whenever that is defined;
//       * the macro average runs over the classes that occur in the truth or the predictions
//         (scikit-learn's default label set); a class in neither is listed with zeros but left
//         out of the macro average, and the table says so. The weighted average weighs by support.
//   - top_k_accuracy(scores, truth, num_classes, k): the fraction of samples whose true class is
//     among the k highest scores. Ties are broken toward the lower class index, as argmax (and
//     so evaluate()'s accuracy) breaks them: the true class t ranks after every class with a
//     higher score and every lower-indexed class with an equal one. Top-1 is then exactly the
//     accuracy and top-num_classes is exactly 1.
//   - regression_report(predictions, targets, n, outputs): MAE, MSE, RMSE and R² per output and
//     their uniform average over outputs (scikit-learn's multioutput="uniform_average"; the
//     overall RMSE is the mean of the per-output RMSEs, as sklearn's root_mean_squared_error).
//     R² of a constant target column is 1 if predicted exactly, else 0 (sklearn's force_finite).
// From a model and a Dataset:
//   - report(model, data[, loss][, ReportOptions]): inference in batches through one Workspace;
//     labelled data (or one-hot targets under a categorical loss) gives the confusion matrix,
//     the classification report and top-k accuracy (k is capped at the model's output count);
//     other target data gives the regression report (under BinaryCrossEntropy too: its MSE is
//     then the Brier score). The loss is computed only when given.
//   - report_sets(model, {{"train", a}, {"test", b}}[, loss][, options]): one report per named
//     set, printed as a compact comparison table.
// Every bad input (size mismatch, label out of range, k out of range, no samples, a non-finite
// prediction, a dataset that does not fit the model) is a ctnn::Error with the values.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iomanip>
#include <limits>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/core/layer.hpp"  // PassContext
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/staging.hpp"
#include "ctnn/loss/loss.hpp"
#include "ctnn/loss/mse.hpp"
#include "ctnn/loss/sparse_categorical_crossentropy.hpp"

namespace ctnn {

// counts[t * num_classes + p]: samples of true class t predicted as p. class_names is optional
// (empty, or one per class) and only labels the printed table.
struct ConfusionMatrix {
  std::size_t num_classes = 0;
  std::vector<std::size_t> counts;
  std::vector<std::string> class_names;

  std::size_t at(std::size_t truth, std::size_t predicted) const {
    return counts[truth * num_classes + predicted];
  }
  std::size_t support(std::size_t c) const {  // samples whose true class is c (row sum)
    std::size_t s = 0;
    for (std::size_t p = 0; p < num_classes; ++p) s += at(c, p);
    return s;
  }
  std::size_t predicted(std::size_t c) const {  // samples predicted as c (column sum)
    std::size_t s = 0;
    for (std::size_t t = 0; t < num_classes; ++t) s += at(t, c);
    return s;
  }
  std::size_t correct() const {
    std::size_t s = 0;
    for (std::size_t c = 0; c < num_classes; ++c) s += at(c, c);
    return s;
  }
  std::size_t total() const {
    std::size_t s = 0;
    for (std::size_t v : counts) s += v;
    return s;
  }
};

struct ClassMetrics {
  std::string name;  // class name, or its index when the classes are unnamed
  double precision = 0, recall = 0, f1 = 0;
  std::size_t support = 0;    // true samples of the class (for averages: all samples)
  std::size_t predicted = 0;  // samples predicted as the class
};

struct ClassificationReport {
  std::vector<ClassMetrics> classes;
  double accuracy = 0;
  ClassMetrics macro_avg, weighted_avg;
  std::size_t samples = 0;
  std::size_t averaged_classes = 0;  // classes in the macro average (see the top of the file)
};

struct RegressionMetrics {
  double mae = 0, mse = 0, rmse = 0, r2 = 0;
};

struct RegressionReport {
  std::size_t samples = 0;
  RegressionMetrics overall;                // uniform average over outputs
  std::vector<RegressionMetrics> outputs;   // one per output
  std::vector<std::string> output_names;    // optional: one per output, for the table
};

namespace detail {

inline void check_label_range(std::int32_t label, std::size_t i, std::size_t num_classes,
                        const char* what) {
  if (label < 0 || std::size_t(label) >= num_classes)
    fail("The ", what, " label ", label, " at sample ", i, " is outside the class range [0, ",
         num_classes, ").");
}

// `noun` and `where` complete "The <noun> for sample i<where> is not finite".
template <class T>
void check_finite_scores(const T* row, std::size_t width, std::size_t sample, const char* noun,
                         const std::string& where = "") {
  for (std::size_t j = 0; j < width; ++j)
    if (!std::isfinite(row[j]))
      fail("The ", noun, " for sample ", sample, where, " is not finite (", row[j], " at output ",
           j, "): the model may have diverged.");
}

// Whether class t is among the k best of row[0..width): ties go to the lower index (file top).
template <class T>
bool in_top_k(const T* row, std::size_t width, std::size_t t, std::size_t k) {
  std::size_t ahead = 0;
  for (std::size_t j = 0; j < width; ++j)
    ahead += row[j] > row[t] || (j < t && row[j] == row[t]);
  return ahead < k;
}

template <class T>
double top_k_accuracy_of(std::span<const T> scores, std::span<const std::int32_t> truth,
                      std::size_t num_classes, std::size_t k) {
  if (num_classes == 0) fail("top_k_accuracy() needs at least one class, but num_classes is 0.");
  if (truth.empty()) fail("top_k_accuracy() was given no samples (the truth is empty).");
  if (k == 0 || k > num_classes)
    fail("top_k_accuracy() needs 1 <= k <= num_classes, but k is ", k, " with ", num_classes,
         " classes.");
  if (scores.size() != truth.size() * num_classes)
    fail("top_k_accuracy() was given ", scores.size(), " scores for ", truth.size(),
         " samples of ", num_classes, " classes; it needs ", truth.size() * num_classes, ".");
  std::size_t hits = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    check_label_range(truth[i], i, num_classes, "true");
    const T* row = scores.data() + i * num_classes;
    check_finite_scores(row, num_classes, i, "score");
    hits += in_top_k(row, num_classes, std::size_t(truth[i]), k);
  }
  return double(hits) / double(truth.size());
}

template <class P, class Q>
RegressionReport regression_report_of(const P* pred, std::size_t pred_size, const Q* target,
                                   std::size_t target_size, std::size_t n, std::size_t outputs) {
  if (n == 0 || outputs == 0)
    fail("regression_report() needs at least one sample and one output, but was given ", n,
         " samples of ", outputs, " outputs.");
  if (pred_size != n * outputs || target_size != n * outputs)
    fail("regression_report() was given ", pred_size, " predictions and ", target_size,
         " targets for ", n, " samples of ", outputs, " outputs; each needs ", n * outputs, ".");
  for (std::size_t k = 0; k < n * outputs; ++k) {
    if (!std::isfinite(pred[k]))
      fail("The prediction for sample ", k / outputs, ", output ", k % outputs,
           " is not finite (", pred[k], "): the model may have diverged.");
    if (!std::isfinite(target[k]))
      fail("The target of sample ", k / outputs, ", output ", k % outputs, " is not finite (",
           target[k], ").");
  }
  RegressionReport r;
  r.samples = n;
  r.outputs.resize(outputs);
  for (std::size_t j = 0; j < outputs; ++j) {
    double mean = 0, abs_sum = 0, sq_sum = 0, tot = 0;
    for (std::size_t i = 0; i < n; ++i) mean += double(target[i * outputs + j]);
    mean /= double(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double t = double(target[i * outputs + j]);
      const double e = double(pred[i * outputs + j]) - t;
      abs_sum += std::abs(e);
      sq_sum += e * e;
      tot += (t - mean) * (t - mean);
    }
    RegressionMetrics& m = r.outputs[j];
    m.mae = abs_sum / double(n);
    m.mse = sq_sum / double(n);
    m.rmse = std::sqrt(m.mse);
    m.r2 = tot > 0 ? 1 - sq_sum / tot : (sq_sum == 0 ? 1.0 : 0.0);
    r.overall.mae += m.mae / double(outputs);
    r.overall.mse += m.mse / double(outputs);
    r.overall.rmse += m.rmse / double(outputs);
    r.overall.r2 += m.r2 / double(outputs);
  }
  return r;
}

// "3 Dress", or "3" when unnamed (or named "3"); long names are cut so that a 10-class
// confusion matrix stays within 100 columns.
inline std::string indexed_label(std::size_t c, const std::string& name) {
  constexpr std::size_t kMaxName = 18;
  std::string s = std::to_string(c);
  if (name.empty() || name == s) return s;
  return s + ' ' + (name.size() <= kMaxName ? name : name.substr(0, kMaxName - 1) + "~");
}
inline std::string class_label(std::size_t c, const std::vector<std::string>& names) {
  return indexed_label(c, c < names.size() ? names[c] : std::string());
}

inline std::string format_metric(double v, int digits = 4) {
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  if (std::abs(v) >= 1e7)  // keeps columns from growing without bound
    s << std::scientific << std::setprecision(digits - 1) << v;
  else
    s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

inline std::size_t count_digits(std::size_t v) { return std::to_string(v).size(); }

}  // namespace detail

// Counts of (true class, predicted class) pairs; see the top of the file.
inline ConfusionMatrix confusion_matrix(std::span<const std::int32_t> truth,
                                        std::span<const std::int32_t> predicted,
                                        std::size_t num_classes) {
  if (num_classes == 0) fail("confusion_matrix() needs at least one class, but num_classes is 0.");
  if (truth.size() != predicted.size())
    fail("confusion_matrix() was given ", truth.size(), " true labels but ", predicted.size(),
         " predicted labels; they must pair up.");
  if (truth.empty()) fail("confusion_matrix() was given no samples.");
  ConfusionMatrix cm;
  cm.num_classes = num_classes;
  cm.counts.assign(num_classes * num_classes, 0);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    detail::check_label_range(truth[i], i, num_classes, "true");
    detail::check_label_range(predicted[i], i, num_classes, "predicted");
    ++cm.counts[std::size_t(truth[i]) * num_classes + std::size_t(predicted[i])];
  }
  return cm;
}

// Per-class precision, recall, F1 and support with accuracy and averages (see the top of the
// file). Class names: `class_names` if given (one per class), else the matrix's own, else indices.
inline ClassificationReport classification_report(const ConfusionMatrix& cm,
                                                  std::span<const std::string> class_names = {}) {
  const std::size_t k = cm.num_classes;
  if (k == 0 || cm.counts.size() != k * k)
    fail("classification_report() needs a confusion matrix of num_classes^2 counts, but it has ",
         cm.counts.size(), " counts for ", k, " classes.");
  if (!class_names.empty() && class_names.size() != k)
    fail("classification_report() was given ", class_names.size(), " class names for ", k,
         " classes.");
  const std::size_t total = cm.total();
  if (total == 0) fail("classification_report() was given a confusion matrix with no samples.");
  const std::vector<std::string> names =
      class_names.empty() ? cm.class_names
                          : std::vector<std::string>(class_names.begin(), class_names.end());
  const auto ratio = [](double num, double den) { return den > 0 ? num / den : 0.0; };
  ClassificationReport r;
  r.samples = total;
  r.accuracy = double(cm.correct()) / double(total);
  r.macro_avg.name = "macro avg";
  r.weighted_avg.name = "weighted avg";
  for (std::size_t c = 0; c < k; ++c) {
    ClassMetrics m;
    m.name = c < names.size() && !names[c].empty() ? names[c] : std::to_string(c);
    m.support = cm.support(c);
    m.predicted = cm.predicted(c);
    const double tp = double(cm.at(c, c));
    const double fp = double(m.predicted) - tp, fn = double(m.support) - tp;
    m.precision = ratio(tp, tp + fp);
    m.recall = ratio(tp, tp + fn);
    m.f1 = ratio(2 * tp, 2 * tp + fp + fn);
    if (m.support > 0 || m.predicted > 0) {
      ++r.averaged_classes;
      r.macro_avg.precision += m.precision;
      r.macro_avg.recall += m.recall;
      r.macro_avg.f1 += m.f1;
    }
    const double w = double(m.support) / double(total);
    r.weighted_avg.precision += w * m.precision;
    r.weighted_avg.recall += w * m.recall;
    r.weighted_avg.f1 += w * m.f1;
    r.classes.push_back(std::move(m));
  }
  // averaged_classes >= 1: every sample has a true class.
  r.macro_avg.precision /= double(r.averaged_classes);
  r.macro_avg.recall /= double(r.averaged_classes);
  r.macro_avg.f1 /= double(r.averaged_classes);
  r.macro_avg.support = r.weighted_avg.support = total;
  r.macro_avg.predicted = r.weighted_avg.predicted = total;
  return r;
}

// Fraction of samples whose true class is among the k highest of its num_classes scores
// (scores: one row per sample). Ties go to the lower class index (see the top of the file).
inline double top_k_accuracy(std::span<const float> scores, std::span<const std::int32_t> truth,
                             std::size_t num_classes, std::size_t k) {
  return detail::top_k_accuracy_of(scores, truth, num_classes, k);
}
inline double top_k_accuracy(std::span<const double> scores, std::span<const std::int32_t> truth,
                             std::size_t num_classes, std::size_t k) {
  return detail::top_k_accuracy_of(scores, truth, num_classes, k);
}

// The area under the ROC curve of `scores` (higher: more likely positive) for the samples
// marked positive: the probability that a random positive scores above a random negative, ties
// counting one half (the Mann-Whitney statistic, average ranks for tied scores; scikit-learn's
// roc_auc_score gives the same value). Needs as many flags as scores, at least one positive and
// one negative, and finite scores.
inline double roc_auc(std::span<const double> scores, const std::vector<bool>& positive) {
  if (scores.size() != positive.size())
    fail("roc_auc() was given ", scores.size(), " scores and ", positive.size(),
         " positive/negative flags; it needs one flag per score.");
  std::size_t pos = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]))
      fail("roc_auc(): score ", i, " is ", scores[i], "; the scores must be finite.");
    pos += positive[i];
  }
  const std::size_t neg = scores.size() - pos;
  if (pos == 0 || neg == 0)
    fail("roc_auc() needs positive and negative samples; it was given ", pos, " positive and ",
         neg, " negative.");
  std::vector<std::size_t> order(scores.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' ranks (1-based), tied scores sharing their average rank.
  double rank_sum = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double average = (double(i + 1) + double(j)) / 2.0;
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]]) rank_sum += average;
    i = j;
  }
  const double p = double(pos), n = double(neg);
  return (rank_sum - p * (p + 1) / 2) / (p * n);
}

// MAE, MSE, RMSE, R² of n samples of `outputs` values each (row-major); see the top of the file.
inline RegressionReport regression_report(std::span<const float> predictions,
                                          std::span<const float> targets, std::size_t n,
                                          std::size_t outputs) {
  return detail::regression_report_of(predictions.data(), predictions.size(), targets.data(),
                                   targets.size(), n, outputs);
}
inline RegressionReport regression_report(std::span<const double> predictions,
                                          std::span<const double> targets, std::size_t n,
                                          std::size_t outputs) {
  return detail::regression_report_of(predictions.data(), predictions.size(), targets.data(),
                                   targets.size(), n, outputs);
}

// Rows = true class, columns = predicted class (numbered; the row labels name them), with row
// totals (support) and column totals (predictions).
inline std::ostream& operator<<(std::ostream& os, const ConfusionMatrix& cm) {
  const std::size_t k = cm.num_classes;
  std::ostringstream s;
  std::size_t label_w = 11;  // "true \\ pred"
  for (std::size_t c = 0; c < k; ++c)
    label_w = std::max(label_w, detail::class_label(c, cm.class_names).size());
  std::size_t biggest = 0;
  for (std::size_t c = 0; c < k; ++c) biggest = std::max(biggest, cm.predicted(c));
  // A cell is as wide as the largest column total or index (at least 3), plus a gap of two.
  const std::size_t cell =
      std::max({detail::count_digits(biggest), detail::count_digits(k - 1), std::size_t{3}}) + 2;
  const std::size_t total_w = std::max<std::size_t>(detail::count_digits(cm.total()), 5) + 2;
  s << "Confusion matrix (rows: true class, columns: predicted class)\n";
  s << std::left << std::setw(int(label_w)) << "true \\ pred" << std::right;
  for (std::size_t c = 0; c < k; ++c) s << std::setw(int(cell)) << c;
  s << std::setw(int(total_w)) << "total" << '\n';
  for (std::size_t t = 0; t < k; ++t) {
    s << std::left << std::setw(int(label_w)) << detail::class_label(t, cm.class_names)
      << std::right;
    for (std::size_t p = 0; p < k; ++p) s << std::setw(int(cell)) << cm.at(t, p);
    s << std::setw(int(total_w)) << cm.support(t) << '\n';
  }
  s << std::left << std::setw(int(label_w)) << "total" << std::right;
  for (std::size_t p = 0; p < k; ++p) s << std::setw(int(cell)) << cm.predicted(p);
  s << std::setw(int(total_w)) << cm.total() << '\n';
  return os << s.str();
}

// scikit-learn's classification_report layout, with four decimals.
inline std::ostream& operator<<(std::ostream& os, const ClassificationReport& r) {
  std::vector<std::string> labels;
  std::size_t label_w = 12;  // "weighted avg"
  for (std::size_t c = 0; c < r.classes.size(); ++c) {
    labels.push_back(detail::indexed_label(c, r.classes[c].name));
    label_w = std::max(label_w, labels.back().size());
  }
  const std::size_t support_w = std::max<std::size_t>(detail::count_digits(r.samples), 7) + 2;
  std::ostringstream s;
  const auto row = [&](const std::string& label, const std::string& p, const std::string& rc,
                       const std::string& f, std::size_t support, const char* note = "") {
    s << std::right << std::setw(int(label_w)) << label << std::setw(11) << p << std::setw(11)
      << rc << std::setw(11) << f << std::setw(int(support_w)) << support << note << '\n';
  };
  s << std::setw(int(label_w)) << "" << std::setw(11) << "precision" << std::setw(11) << "recall"
    << std::setw(11) << "f1-score" << std::setw(int(support_w)) << "support" << "\n\n";
  std::vector<std::size_t> absent;
  for (std::size_t c = 0; c < r.classes.size(); ++c) {
    const ClassMetrics& m = r.classes[c];
    const bool in_avg = m.support > 0 || m.predicted > 0;
    if (!in_avg) absent.push_back(c);
    row(labels[c], detail::format_metric(m.precision), detail::format_metric(m.recall), detail::format_metric(m.f1),
        m.support, in_avg ? "" : "  (absent)");
  }
  s << '\n';
  row("accuracy", "", "", detail::format_metric(r.accuracy), r.samples);
  row(r.macro_avg.name, detail::format_metric(r.macro_avg.precision), detail::format_metric(r.macro_avg.recall),
      detail::format_metric(r.macro_avg.f1), r.macro_avg.support);
  row(r.weighted_avg.name, detail::format_metric(r.weighted_avg.precision),
      detail::format_metric(r.weighted_avg.recall), detail::format_metric(r.weighted_avg.f1),
      r.weighted_avg.support);
  if (!absent.empty()) {
    s << "(absent: class" << (absent.size() > 1 ? "es" : "");
    for (std::size_t i = 0; i < absent.size(); ++i) s << (i ? ", " : " ") << absent[i];
    s << (absent.size() > 1 ? " occur" : " occurs")
      << " in neither the truth nor the predictions;\n the macro average is over the other "
      << r.averaged_classes << " classes.)\n";
  }
  return os << s.str();
}

// One row per output, then the uniform average when there are several.
inline std::ostream& operator<<(std::ostream& os, const RegressionReport& r) {
  const std::size_t n_out = r.outputs.size();
  std::vector<std::string> labels;
  std::size_t label_w = 7;  // "average"
  for (std::size_t j = 0; j < n_out; ++j) {
    labels.push_back(detail::class_label(j, r.output_names));
    label_w = std::max(label_w, labels.back().size());
  }
  std::ostringstream s;
  const auto row = [&](const std::string& label, const RegressionMetrics& m) {
    s << std::left << std::setw(int(label_w)) << label << std::right << std::setw(14)
      << detail::format_metric(m.mae) << std::setw(14) << detail::format_metric(m.mse) << std::setw(14)
      << detail::format_metric(m.rmse) << std::setw(10) << detail::format_metric(m.r2) << '\n';
  };
  s << "Regression report (" << r.samples << " samples, " << n_out << " output"
    << (n_out == 1 ? "" : "s") << ")\n";
  s << std::left << std::setw(int(label_w)) << "output" << std::right << std::setw(14) << "MAE"
    << std::setw(14) << "MSE" << std::setw(14) << "RMSE" << std::setw(10) << "R2" << '\n';
  for (std::size_t j = 0; j < n_out; ++j) row(labels[j], r.outputs[j]);
  if (n_out > 1) row("average", r.overall);
  return os << s.str();
}

// ---------------------------------------------------------------------------------------------
// Reports of a model on datasets.

struct ReportOptions {
  std::size_t top_k = 5;          // capped at the model's output count
  std::size_t batch_size = 256;   // samples per forward pass (one workspace of this many)
  std::string name = "evaluation";  // names the set in tables and error messages
};

// What report() found on one dataset. For classification: confusion, classes and top-k; for
// regression: regression. loss is NaN unless a loss was given.
struct ModelReport {
  std::string name;
  std::size_t samples = 0;
  std::string loss_name;
  double loss = std::numeric_limits<double>::quiet_NaN();
  bool classification = false;
  ConfusionMatrix confusion;
  ClassificationReport classes;
  std::size_t top_k = 0;
  double top_k_accuracy = std::numeric_limits<double>::quiet_NaN();
  RegressionReport regression;

  double accuracy() const {
    return classification ? classes.accuracy : std::numeric_limits<double>::quiet_NaN();
  }
};

inline std::ostream& operator<<(std::ostream& os, const ModelReport& r) {
  std::ostringstream s;
  s << "Set '" << r.name << "': " << r.samples << " samples\n";
  if (!std::isnan(r.loss))
    s << "loss " << detail::format_metric(r.loss) << " (" << r.loss_name << ")"
      << (r.classification ? ", " : "\n");
  if (r.classification) {
    s << "accuracy " << detail::format_metric(r.classes.accuracy) << ", top-" << r.top_k
      << " accuracy " << detail::format_metric(r.top_k_accuracy) << "\n\n"
      << r.classes << '\n' << r.confusion;
  } else {
    s << '\n' << r.regression;
  }
  return os << s.str();
}

// Reports of one model on several named sets; prints as one comparison table.
struct SetReports {
  std::vector<ModelReport> sets;

  const ModelReport& operator[](std::string_view name) const {
    for (const ModelReport& r : sets)
      if (r.name == name) return r;
    fail("There is no set named '", name, "' among the ", sets.size(), " reported.");
  }
};

inline std::ostream& operator<<(std::ostream& os, const SetReports& all) {
  bool any_class = false, any_reg = false;
  std::size_t k = 0, name_w = 3, samples_w = 7;
  for (const ModelReport& r : all.sets) {
    (r.classification ? any_class : any_reg) = true;
    if (r.classification) k = r.top_k;
    name_w = std::max(name_w, r.name.size());
    samples_w = std::max(samples_w, detail::count_digits(r.samples));
  }
  std::vector<std::string> head{"loss"};
  if (any_class) head.insert(head.end(), {"accuracy", "macro F1", "top-" + std::to_string(k)});
  if (any_reg) head.insert(head.end(), {"MAE", "RMSE", "R2"});
  constexpr int kCol = 11;  // fits "-1234.5678" and the headers with a gap
  std::ostringstream s;
  s << std::left << std::setw(int(name_w)) << "Set" << std::right << std::setw(int(samples_w) + 2)
    << "samples";
  for (const std::string& h : head) s << std::setw(kCol) << h;
  s << '\n' << std::string(name_w + samples_w + 2 + head.size() * kCol, '-') << '\n';
  for (const ModelReport& r : all.sets) {
    s << std::left << std::setw(int(name_w)) << r.name << std::right
      << std::setw(int(samples_w) + 2) << r.samples << std::setw(kCol) << detail::format_metric(r.loss);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (any_class) {
      const bool c = r.classification;
      s << std::setw(kCol) << detail::format_metric(c ? r.classes.accuracy : nan) << std::setw(kCol)
        << detail::format_metric(c ? r.classes.macro_avg.f1 : nan) << std::setw(kCol)
        << detail::format_metric(c ? r.top_k_accuracy : nan);
    }
    if (any_reg) {
      const bool g = !r.classification;
      s << std::setw(kCol) << detail::format_metric(g ? r.regression.overall.mae : nan) << std::setw(kCol)
        << detail::format_metric(g ? r.regression.overall.rmse : nan) << std::setw(kCol)
        << detail::format_metric(g ? r.regression.overall.r2 : nan);
    }
    s << '\n';
  }
  return os << s.str();
}

namespace detail {

// "test" -> "test set" for messages, unless the name already ends in "set".
inline std::string set_phrase(const std::string& name) {
  const std::string n = name.empty() ? "evaluation" : name;
  return n.size() >= 3 && n.compare(n.size() - 3, 3, "set") == 0 ? n : n + " set";
}

// L decides what the data must hold (labels or targets) and how batches are staged; `loss` is
// null when no loss value is wanted.
template <class Model, class L>
ModelReport report_in(Model& model, const data::Dataset& d, const L* loss,
                      const ReportOptions& o) {
  using T = typename Model::value_type;
  constexpr std::size_t kOut = Model::output_size;
  const std::string what = set_phrase(o.name);
  if (o.top_k == 0) fail("The top-k accuracy needs k >= 1, but top_k is 0.");
  if (o.batch_size == 0) fail("The batch size of a report must be at least 1, but it is 0.");
  check_dataset_fits<Model, L>(d, what.c_str());

  const std::size_t n = d.size();
  constexpr bool kClassify = L::uses_labels || L::metric == Metric::categorical;
  ModelReport r;
  r.name = o.name;
  r.samples = n;
  r.classification = kClassify;
  typename Model::Workspace ws;
  ws.reserve(std::min(o.batch_size, n), false);
  const std::size_t cap = ws.capacity();
  std::vector<std::int32_t> labels(cap);
  std::vector<T> targets(cap * kOut);
  std::vector<std::size_t> idx(cap);
  std::vector<std::int32_t> truth, predicted;
  std::vector<T> outputs;
  if constexpr (kClassify) {
    truth.resize(n);
    predicted.resize(n);
    r.top_k = std::min(o.top_k, kOut);
  } else {
    outputs.resize(n * kOut);
  }
  double loss_sum = 0;
  std::size_t hits = 0;
  for (std::size_t b = 0; b < n; b += cap) {
    const std::size_t m = std::min(cap, n - b);
    for (std::size_t i = 0; i < m; ++i) idx[i] = b + i;
    stage_batch<Model, L>(d, idx.data(), m, ws, labels.data(), targets.data());
    const T* out = model.forward(ws, m, PassContext{});
    if (loss) loss_sum += loss->value(out, Targets<T>{labels.data(), targets.data()}, m, kOut);
    for (std::size_t i = 0; i < m; ++i) {
      const T* row = out + i * kOut;
      check_finite_scores(row, kOut, b + i, "model's output", " of the " + what);
      if constexpr (kClassify) {
        const std::size_t t = L::uses_labels ? std::size_t(labels[i])
                                             : argmax(targets.data() + i * kOut, kOut);
        truth[b + i] = std::int32_t(t);
        predicted[b + i] = std::int32_t(argmax(row, kOut));
        hits += in_top_k(row, kOut, t, r.top_k);
      } else {
        std::copy(row, row + kOut, outputs.data() + (b + i) * kOut);
      }
    }
  }
  if (loss) {
    r.loss_name = std::string(L::name);
    r.loss = loss_sum / double(n);
  }
  if constexpr (kClassify) {
    r.confusion = confusion_matrix(truth, predicted, kOut);
    if (d.class_names.size() == kOut) r.confusion.class_names = d.class_names;
    r.classes = classification_report(r.confusion);
    r.top_k_accuracy = double(hits) / double(n);
  } else {
    r.regression = regression_report_of(outputs.data(), outputs.size(), d.targets.data(),
                                     d.targets.size(), n, kOut);
  }
  return r;
}

}  // namespace detail

// Confusion matrix, classification report and top-k accuracy (labelled data) or regression
// report (target data) of `model` on `d`, in inference mode. No loss is computed.
template <class Model>
ModelReport report(Model& model, const data::Dataset& d, const ReportOptions& o = {}) {
  if (d.size() > 0 && !d.has_labels() && !d.has_targets())
    fail("The ", detail::set_phrase(o.name), " has neither labels nor targets: a report needs ",
         "one or the other to compare the model's outputs with.");
  if (d.has_labels())
    return detail::report_in<Model, SparseCategoricalCrossEntropy>(model, d, nullptr, o);
  return detail::report_in<Model, MeanSquaredError>(model, d, nullptr, o);
}

// The same, with the mean of `loss` over the set; the loss decides whether the data must hold
// labels or targets (one-hot targets under CategoricalCrossEntropy give a classification report).
template <class Model, Loss L>
ModelReport report(Model& model, const data::Dataset& d, const L& loss,
                   const ReportOptions& o = {}) {
  static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
  return detail::report_in<Model, L>(model, d, &loss, o);
}

// A dataset and the name it has in a comparison table.
struct NamedDataset {
  std::string name;
  const data::Dataset& data;
};

// report() on every set, e.g. report_sets(model, {{"train", a}, {"validation", b}, {"test", c}}).
// options.name is ignored (each set brings its own).
namespace detail {
template <class ReportOne>
SetReports report_each(std::initializer_list<NamedDataset> sets, ReportOptions o, ReportOne one) {
  SetReports all;
  for (const NamedDataset& s : sets) {
    o.name = s.name;
    all.sets.push_back(one(s.data, o));
  }
  return all;
}
}  // namespace detail

template <class Model>
SetReports report_sets(Model& model, std::initializer_list<NamedDataset> sets,
                       const ReportOptions& o = {}) {
  return detail::report_each(sets, o, [&](const data::Dataset& d, const ReportOptions& oo) {
    return report(model, d, oo);
  });
}
template <class Model, Loss L>
SetReports report_sets(Model& model, std::initializer_list<NamedDataset> sets, const L& loss,
                       const ReportOptions& o = {}) {
  return detail::report_each(sets, o, [&](const data::Dataset& d, const ReportOptions& oo) {
    return report(model, d, loss, oo);
  });
}

}  // namespace ctnn
