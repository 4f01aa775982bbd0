// ctnn/optim/sgd.hpp: stochastic gradient descent with optional (Nesterov) momentum.
//
// Represents Keras's SGD: vel = momentum * vel - lr * g; w += vel, or with Nesterov
// w += momentum * vel - lr * g. Defaults: lr 0.01, momentum 0 (Keras). One fused pass over the
// arena; the velocity buffer exists only when momentum > 0.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ctnn/core/error.hpp"

#include "ctnn/core/buffer.hpp"
#include "ctnn/kernels/update.hpp"
#include "ctnn/optim/clipping.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

template <class T>
class BasicSGD {
 public:
  explicit BasicSGD(T lr = T(0.01), T mom = T(0), bool use_nesterov = false)
      : learning_rate(lr), momentum(mom), nesterov(use_nesterov) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "SGD";
  T learning_rate, momentum;
  bool nesterov;

  // Fails with a sentence unless: learning rate finite >= 0 (0 at the end of a cosine schedule),
  // momentum in [0, 1] (Keras's range). Nesterov with momentum 0 is plain SGD, as in Keras.
  void check_hyperparameters() const {
    detail::check_hyperparameter("SGD", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("SGD", "momentum", double(momentum), 0, false, 1, true);
    clipping.check("SGD");
  }

  void step(std::span<T> params, std::span<const T> grads) {
    check_hyperparameters();
    grads = clipper_.apply(clipping, grads);
    prepare(params.size());
    update_range(params.data(), grads.data(), 0, params.size());
  }

  // A step in pieces, for a trainer that updates each layer as soon as its gradient is final:
  // begin_step(n) once (false, changing nothing, when gradient clipping is set: clipnorm needs
  // every gradient first), then update_range over each layer's parameters exactly once. The
  // same arithmetic per parameter as step(): the same bits. (The arena's alignment padding
  // between layers is not visited: it holds 0 with a 0 gradient, which step() leaves at 0.)
  bool begin_step(std::size_t n) {
    check_hyperparameters();
    if (clipping.active()) return false;
    prepare(n);
    return true;
  }
  void update_range(T* w, const T* g, std::size_t offset, std::size_t count) {
    kernels::sgd_update(count, w + offset, g + offset,
                        momentum != T(0) ? vel_.data() + offset : nullptr, learning_rate, momentum,
                        nesterov);
  }

  std::uint64_t iterations() const { return t_; }

  // Gradient clipping (optim/clipping.hpp), off by default; set_tensors gives the parameter
  // tensors clipnorm clips one by one (the Trainer calls it).
  GradientClipping clipping;
  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  // Checkpoints (io/model_file.hpp): hyperparameters (learning rate, momentum, nesterov as 0/1)
  // and the state: the step count and the velocity (none without momentum or before a step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(momentum), nesterov ? 1.0 : 0.0};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 3) fail("SGD has 3 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), momentum = T(h[1]), nesterov = h[2] != 0;
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (vel_.size() == 0) return {};
    return {{vel_.data(), vel_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers > 1) fail("SGD keeps 0 or 1 state buffers, not ", buffers, ".");
    t_ = iterations;
    vel_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{vel_.data(), n}};
  }

 private:
  // Allocates the velocity (first step with momentum, or a new size) and counts the step.
  void prepare(std::size_t n) {
    if (momentum != T(0) && vel_.size() != n) vel_ = AlignedBuffer<T>(n);
    ++t_;
  }

  detail::Clipper<T> clipper_;
  AlignedBuffer<T> vel_;
  std::uint64_t t_ = 0;
};

using SGD = BasicSGD<float>;

}  // namespace ctnn
