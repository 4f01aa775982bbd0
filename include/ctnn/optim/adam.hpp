// ctnn/optim/adam.hpp: Adam (Kingma & Ba), with Keras's defaults and formulation.
//
// Represents, at step t: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
// Defaults: lr 1e-3, b1 0.9, b2 0.999, eps 1e-7 (Keras); check_hyperparameters() gives the
// ranges. The moments are two arena-sized buffers allocated at the first step; every step after
// that is one fused pass over w, g, m and v.
#pragma once
#include <cmath>
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
class BasicAdam {
 public:
  explicit BasicAdam(T lr = T(1e-3), T b1 = T(0.9), T b2 = T(0.999), T eps = T(1e-7))
      : learning_rate(lr), beta_1(b1), beta_2(b2), epsilon(eps) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "Adam";
  T learning_rate, beta_1, beta_2, epsilon;

  // Fails with a sentence unless: learning rate finite >= 0 (0 at the end of a cosine schedule),
  // beta_1 and beta_2 in [0, 1) (1 divides the bias correction by 0), epsilon finite > 0 (0
  // divides 0 by 0 where a gradient has always been 0).
  void check_hyperparameters() const {
    detail::check_hyperparameter("Adam", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("Adam", "beta_1", double(beta_1), 0, false, 1);
    detail::check_hyperparameter("Adam", "beta_2", double(beta_2), 0, false, 1);
    detail::check_hyperparameter("Adam", "epsilon", double(epsilon), 0, true);
    clipping.check("Adam");
  }

  // Applies one update to params from grads (both arena-sized).
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
    kernels::adam_update(count, w + offset, g + offset, m_.data() + offset, v_.data() + offset,
                         step_size_, beta_1, beta_2, epsilon);
  }

  std::uint64_t iterations() const { return t_; }

  // Gradient clipping (optim/clipping.hpp), off by default; set_tensors gives the parameter
  // tensors clipnorm clips one by one (the Trainer calls it).
  GradientClipping clipping;
  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  // Checkpoints (io/model_file.hpp): the hyperparameters in constructor order, and the state:
  // the step count and the buffers m, v (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(beta_1), double(beta_2), double(epsilon)};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 4) fail("Adam has 4 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), beta_1 = T(h[1]), beta_2 = T(h[2]), epsilon = T(h[3]);
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (m_.size() == 0) return {};
    return {{m_.data(), m_.size()}, {v_.data(), v_.size()}};
  }
  // Sets the step count and makes `buffers` (0, or 2 of n values) for the caller to fill.
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 2) fail("Adam keeps 0 or 2 state buffers, not ", buffers, ".");
    t_ = iterations;
    m_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    v_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{m_.data(), n}, {v_.data(), n}};
  }
  std::span<const T> first_moment() const { return {m_.data(), m_.size()}; }
  std::span<const T> second_moment() const { return {v_.data(), v_.size()}; }

 private:
  // Allocates the moments (first step, or a new size), counts the step and folds the bias
  // corrections into the step size.
  void prepare(std::size_t n) {
    if (m_.size() != n) {
      m_ = AlignedBuffer<T>(n);
      v_ = AlignedBuffer<T>(n);
      t_ = 0;
    }
    ++t_;
    const double b1t = std::pow(double(beta_1), double(t_)), b2t = std::pow(double(beta_2), double(t_));
    step_size_ = T(double(learning_rate) * std::sqrt(1.0 - b2t) / (1.0 - b1t));
  }

  detail::Clipper<T> clipper_;
  AlignedBuffer<T> m_, v_;
  std::uint64_t t_ = 0;
  T step_size_ = T(0);
};

using Adam = BasicAdam<float>;

}  // namespace ctnn
