// ctnn/optim/rmsprop.hpp: RMSprop (Hinton), with Keras's defaults and formulation.
//
// Represents, per parameter (Keras's keras/optimizers/rmsprop.py, after clipping):
//   v = rho v + (1 - rho) g^2
//   centered: a = rho a + (1 - rho) g;  den = v - a^2 + eps     otherwise den = v + eps
//   inc = lr g / sqrt(den)                                       (eps inside the root, as Keras)
//   momentum > 0: mo = momentum mo + inc;  w -= mo               otherwise w -= inc
// Defaults: lr 1e-3, rho 0.9, momentum 0, eps 1e-7, centered false (Keras). The state is three
// arena-sized buffers (v, mo, a) allocated at the first step, whatever the options, so a
// checkpoint restores before its hyperparameters are known; mo and a stay 0 while unused.
#pragma once
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
class BasicRMSprop {
 public:
  explicit BasicRMSprop(T lr = T(1e-3), T r = T(0.9), T mom = T(0), T eps = T(1e-7),
                        bool is_centered = false)
      : learning_rate(lr), rho(r), momentum(mom), epsilon(eps), centered(is_centered) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "RMSprop";
  T learning_rate, rho, momentum, epsilon;
  bool centered;
  GradientClipping clipping;  // off by default (optim/clipping.hpp)

  // Fails with a sentence unless: learning rate finite >= 0, rho in [0, 1), momentum in [0, 1],
  // epsilon finite > 0 (0 divides 0 by 0 where a gradient has always been 0), clipping valid.
  void check_hyperparameters() const {
    detail::check_hyperparameter("RMSprop", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("RMSprop", "rho", double(rho), 0, false, 1);
    detail::check_hyperparameter("RMSprop", "momentum", double(momentum), 0, false, 1, true);
    detail::check_hyperparameter("RMSprop", "epsilon", double(epsilon), 0, true);
    clipping.check("RMSprop");
  }

  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

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
    kernels::rmsprop_update(count, w + offset, g + offset, v_.data() + offset,
                            momentum > T(0) ? mo_.data() + offset : nullptr,
                            centered ? a_.data() + offset : nullptr, learning_rate, rho, momentum,
                            epsilon);
  }

  std::uint64_t iterations() const { return t_; }

  // Checkpoints (io/model_file.hpp): hyperparameters (lr, rho, momentum, epsilon, centered as
  // 0/1) and the state: the step count and the buffers v, mo, a (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(rho), double(momentum), double(epsilon),
            centered ? 1.0 : 0.0};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 5) fail("RMSprop has 5 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), rho = T(h[1]), momentum = T(h[2]), epsilon = T(h[3]),
    centered = h[4] != 0;
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (v_.size() == 0) return {};
    return {{v_.data(), v_.size()}, {mo_.data(), mo_.size()}, {a_.data(), a_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 3) fail("RMSprop keeps 0 or 3 state buffers, not ", buffers, ".");
    t_ = iterations;
    v_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    mo_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    a_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{v_.data(), n}, {mo_.data(), n}, {a_.data(), n}};
  }

 private:
  // Allocates the state (first step, or a new size) and counts the step.
  void prepare(std::size_t n) {
    if (v_.size() != n) {
      v_ = AlignedBuffer<T>(n);
      mo_ = AlignedBuffer<T>(n);
      a_ = AlignedBuffer<T>(n);
    }
    ++t_;
  }

  AlignedBuffer<T> v_, mo_, a_;
  std::uint64_t t_ = 0;
  detail::Clipper<T> clipper_;
};

using RMSprop = BasicRMSprop<float>;

}  // namespace ctnn
