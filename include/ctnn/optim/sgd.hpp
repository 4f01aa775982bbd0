// ctnn/optim/sgd.hpp: stochastic gradient descent with optional (Nesterov) momentum.
//
// Represents Keras's SGD: vel = momentum * vel - lr * g; w += vel, or with Nesterov
// w += momentum * vel - lr * g. Defaults: lr 0.01, momentum 0 (Keras). One fused pass over the
// arena; the velocity buffer exists only when momentum > 0.
#pragma once
#include <span>

#include "ctnn/core/buffer.hpp"
#include "ctnn/kernels/update.hpp"

namespace ctnn {

template <class T>
class BasicSGD {
 public:
  explicit BasicSGD(T learning_rate = T(0.01), T momentum = T(0), bool nesterov = false)
      : learning_rate(learning_rate), momentum(momentum), nesterov(nesterov) {}

  static constexpr std::string_view name = "SGD";
  T learning_rate, momentum;
  bool nesterov;

  void step(std::span<T> params, std::span<const T> grads) {
    if (momentum != T(0) && vel_.size() != params.size()) vel_ = AlignedBuffer<T>(params.size());
    kernels::sgd_update(params.size(), params.data(), grads.data(),
                        momentum != T(0) ? vel_.data() : nullptr, learning_rate, momentum, nesterov);
  }

 private:
  AlignedBuffer<T> vel_;
};

using SGD = BasicSGD<float>;

}  // namespace ctnn
