// ctnn/train/trainer.hpp: the training context of a model.
//
// A Trainer owns everything training needs beyond the model: the gradient arena (one buffer the
// size of the parameter arena), a workspace with gradient buffers, staging for targets, and the
// step counter that seeds Dropout and the augmentation layers. It tells the optimizer where the
// parameter tensors lie (for clipnorm, optim/clipping.hpp) and applies the layers' kernel
// regularizers (train/regularize.hpp) to the loss it reports and to the gradient. It allocates
// in its constructor and never again: step() is the steady-state training step and makes no heap
// allocation (an optimizer allocates its own state at its first step).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/data/staging.hpp"
#include "ctnn/loss/loss.hpp"
#include "ctnn/train/regularize.hpp"

namespace ctnn {

// Sums over one batch: the loss (sum of per-sample losses) and the accuracy numerator.
struct StepStats {
  double loss_sum = 0;
  double correct = 0;
  std::size_t samples = 0;
};

template <class Model, class Optimizer, Loss L>
class Trainer {
  static_assert(LossReadsOutput<L, typename Model::output_shape>::value);

 public:
  using T = typename Model::value_type;
  using Workspace = typename Model::Workspace;

  Trainer(Model& model, Optimizer& opt, L loss, std::size_t batch_capacity, std::uint64_t seed = 0)
      : model_(model), opt_(opt), loss_(loss), seed_(seed) {
    if (batch_capacity == 0) fail("The batch size must be at least 1.");
    ws_.reserve(batch_capacity, true);
    grads_.resize(Model::arena_size);
    labels_.resize(batch_capacity);
    targets_.resize(batch_capacity * Model::output_size);
    if constexpr (requires { opt.set_tensors(std::vector<ParamTensor>{}); })
      opt.set_tensors(detail::param_tensors<Model>());
    if constexpr (requires { loss.check_hyperparameters(); }) loss.check_hyperparameters();
  }

  std::size_t batch_capacity() const { return ws_.capacity(); }

  // Stages samples idx[0..n) of d as the next batch (d must have passed check_dataset_fits).
  void load_batch(const data::Dataset& d, std::span<const std::size_t> idx) {
    if (idx.size() > ws_.capacity())
      fail("A batch of ", idx.size(), " samples exceeds the trainer's capacity of ",
           ws_.capacity(), ".");
    detail::stage_batch<Model, L>(d, idx.data(), idx.size(), ws_, labels_.data(), targets_.data());
  }

  // Stages n samples given directly: x [n x input_size] and labels or target vectors.
  void load_batch(const T* x, std::size_t n, const std::int32_t* labels, const T* targets) {
    if (n > ws_.capacity())
      fail("A batch of ", n, " samples exceeds the trainer's capacity of ", ws_.capacity(), ".");
    std::copy(x, x + n * Model::input_size, ws_.input());
    if (labels) std::copy(labels, labels + n, labels_.data());
    if (targets) std::copy(targets, targets + n * Model::output_size, targets_.data());
  }

  // One optimizer step on the n staged samples: forward, loss, backward, update.
  StepStats step(std::size_t n) {
    const PassContext ctx{true, seed_ * 0x2545F4914F6CDD1Dull + steps_++};
    const T* out = model_.forward(ws_, n, ctx);
    const Targets<T> t{labels_.data(), targets_.data()};
    T* dy = ws_.gradient(0);
    StepStats s;
    s.samples = n;
    using Last = typename Model::template layer<Model::num_layers - 1>;
    if constexpr (FusesSoftmax<L> && layer_kind<Last> == LayerKind::softmax) {
      // Fused: the loss writes d loss / d logits; Softmax's own backward never runs.
      s.loss_sum = loss_.backward_from_logits(out, t, n, Model::output_size, dy);
      if constexpr (Model::num_layers >= 2)
        model_.template backward<Model::num_layers - 2>(ws_, n, grads_.data(), ctx);
    } else {
      s.loss_sum = loss_.backward(out, t, n, Model::output_size, dy);
      model_.backward(ws_, n, grads_.data(), ctx);
    }
    s.correct = detail::correct(L::metric, out, t, n, Model::output_size);
    if constexpr (detail::has_regularizers<Model>)  // the penalty counts once per sample's mean
      s.loss_sum += double(n) * detail::apply_regularizers<Model>(model_.parameters().data(), grads_.data());
    opt_.step(model_.parameters(), std::span<const T>(grads_.data(), grads_.size()));
    return s;
  }

  std::span<const T> gradients() const { return {grads_.data(), grads_.size()}; }
  Workspace& workspace() { return ws_; }
  std::uint64_t steps() const { return steps_; }
  // Dropout masks depend on (seed, step): resuming at step k repeats the masks of an unbroken run.
  void set_steps(std::uint64_t k) { steps_ = k; }
  const L& loss() const { return loss_; }

 private:
  Model& model_;
  Optimizer& opt_;
  L loss_;
  std::uint64_t seed_;
  std::uint64_t steps_ = 0;
  Workspace ws_;
  AlignedBuffer<T> grads_;
  AlignedBuffer<std::int32_t> labels_;
  AlignedBuffer<T> targets_;
};

}  // namespace ctnn
