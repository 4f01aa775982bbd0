// ctnn/train/trainer.hpp: the training context of a model.
//
// A Trainer owns everything training needs beyond the model: the gradient arena (one buffer the
// size of the parameter arena), a workspace with gradient buffers, staging for targets, and the
// step counter that seeds Dropout and the augmentation layers. It tells the optimizer where the
// parameter tensors lie (for clipnorm, optim/clipping.hpp) and applies the layers' kernel
// regularizers (train/regularize.hpp) to the loss it reports and to the gradient. It allocates
// in its constructor and never again: step() is the steady-state training step and makes no heap
// allocation (an optimizer allocates its own state at its first step).
//
// The update is fused into backward when the optimizer can take a step in pieces (begin_step /
// update_range: Adam, AdamW, RMSprop, SGD without gradient clipping): each layer's parameters
// are updated right after that layer's backward, while the gradient it just wrote is warm in
// cache (all of it for a layer of up to a few hundred thousand parameters), instead of one more
// pass over the whole arena after backward. Every parameter gets the same operations as in the separate pass, so the results are
// the same bits (tests/train/test_fused_update.cpp); set_fused_update(false) runs the separate
// pass. The optimizer's step begins (its hyperparameters are checked, its step counted) after the
// loss and before backward, which then updates the layers from the last to the first.
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

// An optimizer that can take a step in pieces (optim/adam.hpp describes begin_step/update_range).
template <class O, class T>
concept FusableOptimizer = requires(O& o, T* w, const T* g, std::size_t k) {
  { o.begin_step(k) } -> std::convertible_to<bool>;
  o.update_range(w, g, k, k);
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
    // Fused: the optimizer's step begins now and each layer is updated inside backward; the
    // regularizers' penalty is taken first, at the weights this step's forward pass used.
    last_fused_ = false;
    if constexpr (FusableOptimizer<Optimizer, T>)
      if (fuse_update_) last_fused_ = opt_.begin_step(Model::arena_size);
    const ParamUpdate update{&Trainer::update_range, this};
    const PassContext bctx{ctx.training, ctx.seed, last_fused_ ? &update : nullptr};
    double penalty = 0;
    if constexpr (detail::has_regularizers<Model>)
      if (last_fused_) penalty = detail::regularization_penalty<Model>(model_.parameters().data());
    using Last = typename Model::template layer<Model::num_layers - 1>;
    if constexpr (FusesSoftmax<L> && layer_kind<Last> == LayerKind::softmax) {
      // Fused: the loss writes d loss / d logits; Softmax's own backward never runs.
      s.loss_sum = loss_.backward_from_logits(out, t, n, Model::output_size, dy);
      if constexpr (Model::num_layers >= 2)
        model_.template backward<Model::num_layers - 2>(ws_, n, grads_.data(), bctx);
      else if (last_fused_)
        update_range(this, 0, Model::arena_size);  // a lone Softmax: nothing back-propagated
    } else {
      s.loss_sum = loss_.backward(out, t, n, Model::output_size, dy);
      model_.backward(ws_, n, grads_.data(), bctx);
    }
    s.correct = detail::correct(L::metric, out, t, n, Model::output_size);
    if constexpr (detail::has_regularizers<Model>) {  // the penalty counts once per sample's mean
      if (!last_fused_)
        penalty = detail::apply_regularizers<Model>(model_.parameters().data(), grads_.data());
      s.loss_sum += double(n) * penalty;
    }
    if (!last_fused_) opt_.step(model_.parameters(), std::span<const T>(grads_.data(), grads_.size()));
    return s;
  }

  // Whether step() updates the parameters inside backward when the optimizer can (the default),
  // or in a separate pass after it. Both give the same bits.
  void set_fused_update(bool on) { fuse_update_ = on; }
  bool fused_update() const { return fuse_update_; }
  // Whether the last step() ran fused (false with clipping or an optimizer without pieces).
  bool last_step_fused() const { return last_fused_; }

  std::span<const T> gradients() const { return {grads_.data(), grads_.size()}; }
  Workspace& workspace() { return ws_; }
  std::uint64_t steps() const { return steps_; }
  // Dropout masks depend on (seed, step): resuming at step k repeats the masks of an unbroken run.
  void set_steps(std::uint64_t k) { steps_ = k; }
  const L& loss() const { return loss_; }

 private:
  // ParamUpdate's function: the regularizers' gradient terms, then the optimizer, on one range.
  static void update_range(void* self, std::size_t offset, std::size_t count) {
    Trainer& tr = *static_cast<Trainer*>(self);
    T* w = tr.model_.parameters().data();
    if constexpr (detail::has_regularizers<Model>)
      detail::add_regularizer_gradients<Model>(static_cast<const T*>(w), tr.grads_.data(), offset, count);
    if constexpr (FusableOptimizer<Optimizer, T>) tr.opt_.update_range(w, tr.grads_.data(), offset, count);
  }

  bool fuse_update_ = true;
  bool last_fused_ = false;
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
