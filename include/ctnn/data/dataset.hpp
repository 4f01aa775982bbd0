// ctnn/data/dataset.hpp: an in-memory dataset of fixed-size samples.
//
// A Dataset holds `size()` samples. Each sample is `feature_size()` floats stored contiguously in
// `x` (row-major, channels last for images: height, width, channels), and either
//   - a class label in `labels` (sparse classification; `num_classes` is the label range), or
//   - a target vector of `target_size` floats in `targets` (one-hot, binary or regression).
// `sample_shape` records the per-sample dimensions (e.g. {28, 28, 1}); a model checks it against
// its Input shape before training or evaluation. `feature_names` and `class_names` are optional
// (empty, or one name per feature / class) and only label reports.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ctnn/core/error.hpp"

namespace ctnn::data {

struct Dataset {
  std::vector<std::size_t> sample_shape;  // per-sample dimensions, channels last
  std::vector<float> x;                   // size() * feature_size() values
  std::vector<std::int32_t> labels;       // size() labels, or empty when targets are used
  std::vector<float> targets;             // size() * target_size values, or empty
  std::size_t target_size = 0;
  std::size_t num_classes = 0;            // labels lie in [0, num_classes)
  std::vector<std::string> feature_names;  // optional: one name per feature (from a CSV header)
  std::vector<std::string> class_names;    // optional: one name per class, for reports

  std::size_t feature_size() const {
    std::size_t n = 1;
    for (std::size_t d : sample_shape) n *= d;
    return sample_shape.empty() ? 0 : n;
  }
  std::size_t size() const {
    const std::size_t f = feature_size();
    return f == 0 ? 0 : x.size() / f;
  }
  bool has_labels() const { return !labels.empty(); }
  bool has_targets() const { return !targets.empty(); }
  const float* sample(std::size_t i) const { return x.data() + i * feature_size(); }

  // "{28, 28, 1}", for messages.
  std::string shape_text() const {
    std::string s = "{";
    for (std::size_t i = 0; i < sample_shape.size(); ++i)
      s += (i ? ", " : "") + std::to_string(sample_shape[i]);
    return s + "}";
  }

  // Throws ctnn::Error unless the sizes of x, labels and targets agree with each other.
  void check_consistent(const char* what = "dataset") const {
    const std::size_t f = feature_size();
    if (f == 0) fail("The ", what, " has no sample shape (feature size 0).");
    if (x.size() % f != 0)
      fail("The ", what, "'s sample shape ", shape_text(), " does not divide its data: ", x.size(),
           " feature values are not a whole number of samples of ", f, " values.");
    const std::size_t n = x.size() / f;
    // Per-sample counts that disagree with the shape's usually mean a wrong sample_shape, not
    // wrong labels: say so, with the sample size the labels imply, before counting samples.
    if (!labels.empty() && labels.size() != n) {
      if (x.size() % labels.size() == 0)
        fail("The ", what, "'s sample shape ", shape_text(), " (", f,
             " values a sample) makes its ", x.size(), " feature values ", n,
             " samples, but it has ", labels.size(), " labels, which make samples of ",
             x.size() / labels.size(), " values; check sample_shape.");
      fail("The ", what, " has ", n, " samples (", x.size(), " feature values of sample shape ",
           shape_text(), ") but ", labels.size(), " labels.");
    }
    if (!targets.empty() && (target_size == 0 || targets.size() != n * target_size)) {
      const std::size_t m = target_size == 0 ? 0 : targets.size() / target_size;
      if (m != 0 && targets.size() % target_size == 0 && x.size() % m == 0)
        fail("The ", what, "'s sample shape ", shape_text(), " (", f,
             " values a sample) makes its ", x.size(), " feature values ", n, " samples, but its ",
             targets.size(), " target values of target size ", target_size, " are ", m,
             " samples, which make samples of ", x.size() / m, " values; check sample_shape.");
      fail("The ", what, " has ", n, " samples but ", targets.size(),
           " target values (target size ", target_size, ").");
    }
    if (!feature_names.empty() && feature_names.size() != f)
      fail("The ", what, " has ", feature_names.size(), " feature names for ", f, " features.");
    if (!class_names.empty() && class_names.size() != num_classes)
      fail("The ", what, " has ", class_names.size(), " class names for ", num_classes,
           " classes.");
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= num_classes)
        fail("The ", what, " has label ", labels[i], " at sample ", i,
             ", outside the class range [0, ", num_classes, ").");
  }
};

}  // namespace ctnn::data
