// ctnn/train/evaluate.hpp: evaluate(model, data), the loss and accuracy of a model on a dataset.
#pragma once
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

#include "ctnn/loss/sparse_categorical_crossentropy.hpp"
#include "ctnn/train/trainer.hpp"

namespace ctnn {

struct Evaluation {
  double loss = 0;
  double accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN for regression losses
  std::size_t samples = 0;
};

namespace detail {

// Evaluates in batches of ws.capacity() samples, in inference mode (Dropout off).
template <class Model, class L>
Evaluation evaluate_in(Model& model, typename Model::Workspace& ws, const data::Dataset& d,
                       const L& loss) {
  using T = typename Model::value_type;
  const std::size_t cap = ws.capacity();
  std::vector<std::int32_t> labels(cap);
  std::vector<T> targets(cap * Model::output_size);
  std::vector<std::size_t> idx(cap);
  double loss_sum = 0, right = 0;
  for (std::size_t b = 0; b < d.size(); b += cap) {
    const std::size_t n = std::min(cap, d.size() - b);
    std::iota(idx.begin(), idx.begin() + std::ptrdiff_t(n), b);
    stage_batch<Model, L>(d, idx.data(), n, ws, labels.data(), targets.data());
    const T* out = model.forward(ws, n, PassContext{});
    const Targets<T> t{labels.data(), targets.data()};
    loss_sum += loss.value(out, t, n, Model::output_size);
    right += correct(L::metric, out, t, n, Model::output_size);
  }
  Evaluation e;
  e.samples = d.size();
  e.loss = loss_sum / double(d.size());
  // Keras's evaluate() and val_loss include the regularization penalty, as its training loss does.
  if constexpr (has_regularizers<Model>)
    e.loss += regularization_penalty<Model>(model.parameters().data());
  if (L::metric != Metric::none) e.accuracy = right / double(d.size());
  return e;
}

}  // namespace detail

// Loss (mean over samples) and accuracy of `model` on `d`, in inference mode. The loss defaults
// to sparse categorical cross-entropy, which needs labels; pass another for target vectors.
template <class Model, class L = SparseCategoricalCrossEntropy>
Evaluation evaluate(Model& model, const data::Dataset& d, L loss = {}, std::size_t batch_size = 256) {
  if constexpr (Loss<L>) {
    static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
    detail::check_dataset_fits<Model, L>(d, "evaluation dataset");
    typename Model::Workspace ws;
    ws.reserve(std::min(batch_size == 0 ? 1 : batch_size, d.size()), false);
    return detail::evaluate_in(model, ws, d, loss);
  } else {
    constexpr bool is_a_loss = Loss<L>;  // a plain bool keeps the diagnostic to one sentence
    static_assert(is_a_loss, "evaluate()'s third argument must be a loss such as "
                           "ctnn::MeanSquaredError{} (see the Loss concept in loss/loss.hpp).");
    return {};
  }
}

}  // namespace ctnn
