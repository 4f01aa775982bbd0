// ctnn/deploy/static_model.hpp: inference over constant weights in memory fixed at compile time.
//
// StaticModel<Model> runs one sample at a time through `Model` (a ctnn::Sequential or Graph) using
// weights it does not own (typically the constexpr array of a header written by
// deploy/export.hpp, which the linker places in flash) and one array member for every activation
// and scratch buffer. Nothing is allocated, thrown or looked up at run time, so it builds with
// -fno-exceptions -fno-rtti for a bare-metal target; its size is known to the compiler:
//   weight_bytes   the parameters (arena_size values, read only)
//   buffer_bytes   activations and layer scratch for one sample (sizeof(StaticModel) adds a pointer)
// Declare it static (or global) on a microcontroller so the buffers land in .bss, not the stack.
// Thread safety: by design it owns its buffers (no heap, no thread_local), so predict() is not
// const and one StaticModel serves one thread (or one core) at a time; give each thread its own
// instance (the weights are shared, only the buffers are copied).
// This header includes the core and the layers only: no I/O, no zlib, no OpenMP needed.
#pragma once
#include <algorithm>
#include <cstddef>

#include "ctnn/core/graph.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/layers/add.hpp"
#include "ctnn/layers/batch_norm.hpp"
#include "ctnn/layers/concatenate.hpp"
#include "ctnn/layers/conv1d.hpp"
#include "ctnn/layers/conv2d.hpp"
#include "ctnn/layers/depthwise_conv2d.hpp"
#include "ctnn/layers/random_flip.hpp"
#include "ctnn/layers/random_translation.hpp"
#include "ctnn/layers/separable_conv2d.hpp"
#include "ctnn/layers/dense.hpp"
#include "ctnn/layers/dropout.hpp"
#include "ctnn/layers/flatten.hpp"
#include "ctnn/layers/leaky_relu.hpp"
#include "ctnn/layers/pooling.hpp"
#include "ctnn/layers/relu.hpp"
#include "ctnn/layers/sigmoid.hpp"
#include "ctnn/layers/softmax.hpp"
#include "ctnn/layers/tanh.hpp"
#include "ctnn/layers/global_pooling.hpp"
#include "ctnn/layers/pooling1d.hpp"
#include "ctnn/layers/zero_padding.hpp"
#include "ctnn/layers/reshape.hpp"
#include "ctnn/layers/bounded_relu.hpp"
#include "ctnn/layers/elu.hpp"
#include "ctnn/layers/hard_sigmoid.hpp"
#include "ctnn/layers/hard_swish.hpp"
#include "ctnn/layers/swish.hpp"
#include "ctnn/layers/embedding.hpp"
#include "ctnn/layers/layer_norm.hpp"
#include "ctnn/layers/time_distributed.hpp"
#include "ctnn/layers/gru.hpp"
#include "ctnn/layers/lstm.hpp"
#include "ctnn/layers/simple_rnn.hpp"
#include "ctnn/layers/bidirectional.hpp"

namespace ctnn::deploy {

template <class Model>
class StaticModel {
 public:
  using T = typename Model::value_type;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;
  static constexpr std::size_t weight_bytes = Model::arena_size * sizeof(T);
  static constexpr std::size_t buffer_floats =
      Model::activation_floats_per_sample + Model::inference_scratch_floats_per_sample;
  static constexpr std::size_t buffer_bytes = buffer_floats * sizeof(T);

  // `params` must hold Model::arena_size values in the model's arena order (as an exported
  // header's `parameters` or a trained model's parameters() do) and outlive this object.
  explicit constexpr StaticModel(const T* params) noexcept
    requires(Model::state_size == 0)
      : params_(params) {}
  // A model with non-trainable state (BatchNormalization) also takes it: state_size values, as
  // an exported header's `state` or a trained model's state() hold them. Only read.
  constexpr StaticModel(const T* params, const T* state) noexcept
      : params_(params), state_(state) {}

  // The outputs for one sample of input_size values; they live in this object until the next
  // call (copy them to keep them).
  const T* predict(const T* x) noexcept {
    std::copy(x, x + input_size, buf_);  // slot 0 of the activations is the input
    Buffers b{buf_};
    // Inference only reads the state (StatefulLayer's contract).
    return Model::forward_on(params_, const_cast<T*>(state_), b, 1, PassContext{});
  }
  // The index of the largest output (the predicted class; the first one on ties).
  std::size_t predict_class(const T* x) noexcept {
    const T* y = predict(x);
    return std::size_t(std::max_element(y, y + output_size) - y);
  }

 private:
  struct Buffers {  // what Model::forward_on asks of a workspace, for a batch of one
    T* base;
    T* activation(std::size_t offset) const noexcept { return base + offset; }
    T* scratch(std::size_t offset) const noexcept {
      return base + Model::activation_floats_per_sample + offset;
    }
  };
  const T* params_;
  const T* state_ = nullptr;
  alignas(kAlignBytes) T buf_[buffer_floats];  // the arena's and the kernels' alignment
};

}  // namespace ctnn::deploy
