// ctnn/data/staging.hpp: how a Dataset's samples reach a model.
//
// check_dataset_fits<Model, L> throws unless a dataset can feed Model under loss L (its sizes,
// labels or target vectors as L reads them); stage_batch<Model, L> copies chosen samples into the
// model's workspace and the target staging. Training (train/), evaluate() and the reports
// (eval/) all feed a model this way; it sits here, below them, so none includes another for it.
// Model and L are only read through their members (input_shape, Workspace, uses_labels, name).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "ctnn/core/error.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/transform.hpp"

namespace ctnn {
namespace detail {

// Throws unless `d` can feed a model with input_size inputs and output_size outputs under loss L.
template <class Model, class L>
void check_dataset_fits(const data::Dataset& d, const char* what) {
  if (d.size() == 0) fail("The ", what, " is empty: it has no samples.");
  data::validate(d, what);  // sizes agree, labels in the dataset's range, no NaN/Inf
  if (d.feature_size() != Model::input_size) {
    std::string shape = "(";
    for (std::size_t i = 0; i < d.sample_shape.size(); ++i)
      shape += (i ? ", " : "") + std::to_string(d.sample_shape[i]);
    fail("The ", what, "'s samples have shape ", shape, ") = ", d.feature_size(),
         " values, but the model's input ", Model::input_shape::str(), " takes ", Model::input_size,
         ".");
  }
  if constexpr (L::uses_labels) {
    if (!d.has_labels())
      fail("The loss ", L::name, " needs class labels, but the ", what, " has none.");
    for (std::size_t i = 0; i < d.labels.size(); ++i)
      if (d.labels[i] < 0 || std::size_t(d.labels[i]) >= Model::output_size)
        fail("The ", what, " has label ", d.labels[i], " at sample ", i,
             ", but the model has ", Model::output_size, " outputs: labels must lie in [0, ",
             Model::output_size, ").");
  } else {
    if (!d.has_targets())
      fail("The loss ", L::name, " needs target vectors, but the ", what,
           " has none (one-hot encode the labels into targets).");
    if (d.target_size != Model::output_size)
      fail("The ", what, "'s targets have ", d.target_size, " values per sample, but the model has ",
           Model::output_size, " outputs.");
  }
}

// Copies samples idx[0..n) of d into the workspace's input slot and the target staging.
template <class Model, class L>
void stage_batch(const data::Dataset& d, const std::size_t* idx, std::size_t n,
                 typename Model::Workspace& ws, std::int32_t* labels,
                 typename Model::value_type* targets) {
  using T = typename Model::value_type;
  T* x = ws.input();
  for (std::size_t i = 0; i < n; ++i) {
    const float* src = d.sample(idx[i]);
    for (std::size_t j = 0; j < Model::input_size; ++j) x[i * Model::input_size + j] = T(src[j]);
    if constexpr (L::uses_labels) {
      labels[i] = d.labels[idx[i]];
    } else {
      const float* t = d.targets.data() + idx[i] * d.target_size;
      for (std::size_t j = 0; j < Model::output_size; ++j) targets[i * Model::output_size + j] = T(t[j]);
    }
  }
}

}  // namespace detail

}  // namespace ctnn
