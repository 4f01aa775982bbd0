// ctnn/optim/adamw.hpp: AdamW (Loshchilov & Hutter), Adam with decoupled weight decay, as Keras's.
//
// Represents, at step t, in Keras's order (clipping first, see optim/clipping.hpp):
//   w -= lr * weight_decay * w                       (decay, on every parameter, bias included)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
// Defaults: lr 1e-3, weight_decay 0.004, b1 0.9, b2 0.999, eps 1e-7 (Keras's AdamW); the
// constructor takes them in Keras's order. With weight_decay 0 it is Adam. The moments are two
// arena-sized buffers allocated at the first step; each step is one fused pass over w, g, m, v.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/kernels/update.hpp"
#include "ctnn/optim/clipping.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

template <class T>
class BasicAdamW {
 public:
  explicit BasicAdamW(T lr = T(1e-3), T wd = T(0.004), T b1 = T(0.9), T b2 = T(0.999),
                      T eps = T(1e-7))
      : learning_rate(lr), weight_decay(wd), beta_1(b1), beta_2(b2), epsilon(eps) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "AdamW";
  T learning_rate, weight_decay, beta_1, beta_2, epsilon;
  GradientClipping clipping;  // off by default (optim/clipping.hpp)

  // Fails with a sentence unless: learning rate finite >= 0, weight_decay finite >= 0, beta_1 and
  // beta_2 in [0, 1), epsilon finite > 0, and the clipping options valid.
  void check_hyperparameters() const {
    detail::check_hyperparameter("AdamW", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("AdamW", "weight_decay", double(weight_decay), 0);
    detail::check_hyperparameter("AdamW", "beta_1", double(beta_1), 0, false, 1);
    detail::check_hyperparameter("AdamW", "beta_2", double(beta_2), 0, false, 1);
    detail::check_hyperparameter("AdamW", "epsilon", double(epsilon), 0, true);
    clipping.check("AdamW");
  }

  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

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
    kernels::adamw_update(count, w + offset, g + offset, m_.data() + offset, v_.data() + offset,
                          step_size_, beta_1, beta_2, epsilon, T(learning_rate * weight_decay));
  }

  std::uint64_t iterations() const { return t_; }

  // Checkpoints (io/model_file.hpp): the hyperparameters in constructor order, and the state:
  // the step count and the buffers m, v (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(weight_decay), double(beta_1), double(beta_2),
            double(epsilon)};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 5) fail("AdamW has 5 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), weight_decay = T(h[1]), beta_1 = T(h[2]), beta_2 = T(h[3]),
    epsilon = T(h[4]);
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (m_.size() == 0) return {};
    return {{m_.data(), m_.size()}, {v_.data(), v_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 2) fail("AdamW keeps 0 or 2 state buffers, not ", buffers, ".");
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

  AlignedBuffer<T> m_, v_;
  std::uint64_t t_ = 0;
  T step_size_ = T(0);
  detail::Clipper<T> clipper_;
};

using AdamW = BasicAdamW<float>;

}  // namespace ctnn
