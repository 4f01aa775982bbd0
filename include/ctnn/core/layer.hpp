// ctnn/core/layer.hpp: what a layer is.
//
// A layer *spec* is the type a user writes in a model (Dense<128>, ReLU). Given the shape that
// flows into it and the scalar type, the spec binds to a layer *implementation*:
//     typename Spec::template bind<InputShape, T>
// The implementation is stateless: its parameters live at a compile-time offset in the model's
// parameter arena and its activations and scratch in a workspace the model owns. That is what lets
// one buffer hold every weight (one-pass optimizers, one-block save files) and what makes a
// training step allocation-free.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ctnn/core/epilogue.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/core/shape.hpp"

namespace ctnn {

// The optimizer's update of a range of the parameter arena, for a training step that updates
// each layer as soon as its gradient is complete (train/trainer.hpp): apply(offset, count) runs
// the optimizer (and the regularizers' gradient terms) on parameters [offset, offset + count).
struct ParamUpdate {
  void (*fn)(void* self, std::size_t offset, std::size_t count) = nullptr;
  void* self = nullptr;
  void apply(std::size_t offset, std::size_t count) const { fn(self, offset, count); }
};

// Per-pass facts a layer may need: training (Dropout is active) or inference, and a seed that
// changes every training step (Dropout draws its mask from it, so a run is reproducible).
// `update` is read by the model's backward only (layers see null): when set, each layer's
// parameters are updated right after that layer's backward, which is the last to read them.
struct PassContext {
  bool training = false;
  std::uint64_t seed = 0;
  const ParamUpdate* update = nullptr;
};

// The contract of a bound layer implementation L with scalar type T = L::value_type:
//   input_shape, output_shape   Shape<...> types of one sample
//   param_count                 number of trainable parameters (Keras's count)
//   scratch_per_sample          scalars of private workspace per sample, kept from forward to
//                               backward (im2col patches, dropout masks, ...)
//   name                        the class name Keras would print ("Conv2D")
//   init(params, rng)           Keras-default initialization, seeded
//   forward(params, x, y, n, scratch, ctx)
//                               y[n x out] from x[n x in]; writes every element of y
//   backward(params, x, y, dy, dx, dparams, n, scratch, ctx)
//                               writes every element of dparams (the gradient of the batch's
//                               loss, summed over the batch) and, unless dx is null, of dx.
template <class L>
concept Layer = requires {
  typename L::value_type;
  requires ShapeType<typename L::input_shape>;
  requires ShapeType<typename L::output_shape>;
  { L::param_count } -> std::convertible_to<std::size_t>;
  { L::scratch_per_sample } -> std::convertible_to<std::size_t>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(typename L::value_type* p, const typename L::value_type* c, std::size_t n, Rng& rng,
              const PassContext& ctx) {
  L::init(p, rng);
  L::forward(c, c, p, n, p, ctx);
  L::backward(c, c, c, c, p, p, n, p, ctx);
};

// What a layer computes, for the passes that treat some layers specially: Sequential fuses a
// `relu` into a preceding Dense/Conv2D, training fuses a final `softmax` with a cross-entropy, the
// int8 path quantizes `dense` and `conv2d` and runs `relu`, `flatten`, `dropout` and `max_pool2d`
// on bytes, the monitor treats a `softmax` output as classes. A layer declares its kind as
//     static constexpr LayerKind kind = LayerKind::relu;
// and a layer that declares none is `other`: never fused, never assumed to be anything. `name` is
// for display only, so a user layer named "ReLU" is not taken for one. (A layer derived from a
// built-in one inherits its kind: declare `other` if it computes something else.)
enum class LayerKind {
  other, dense, conv2d, max_pool2d, avg_pool2d, flatten, dropout,
  relu, leaky_relu, sigmoid, tanh, softmax,
  batch_norm,
  global_avg_pool2d,
  global_max_pool2d,
  global_avg_pool1d,
  global_max_pool1d,
  max_pool1d,
  avg_pool1d,
  zero_padding2d,
  reshape,
  depthwise_conv2d,
  separable_conv2d,
  conv1d,
  bounded_relu,
  hard_swish,
  hard_sigmoid,
  swish,
  elu,
  lstm,
  gru,
  simple_rnn,
  embedding,
  layer_norm,
};

namespace detail {
template <class L>
constexpr LayerKind kind_of() {
  if constexpr (requires { { L::kind } -> std::convertible_to<LayerKind>; }) return L::kind;
  else return LayerKind::other;
}
}  // namespace detail

// The declared kind of bound layer L (LayerKind::other when it declares none).
template <class L>
inline constexpr LayerKind layer_kind = detail::kind_of<L>();

// A layer whose forward can apply a ReLU to its output in the same pass (a fused GEMM epilogue).
// Sequential uses it when a ReLU follows: the ReLU's forward is then free.
template <class L>
concept FusesRelu = Layer<L> && L::fuses_relu;

namespace detail {
template <class L>
constexpr Epilogue epilogue_of() {
  if constexpr (requires { { L::epilogue } -> std::convertible_to<Epilogue>; }) return L::epilogue;
  else if constexpr (layer_kind<L> == LayerKind::relu) return Epilogue::relu;
  else return Epilogue::none;
}
}  // namespace detail

// The GEMM epilogue (core/epilogue.hpp) that computes activation layer L, or none: relu for a
// ReLU; what L declares as `static constexpr Epilogue epilogue` otherwise (ReLU6: relu6).
// Sequential fuses a layer whose epilogue is not none into a FusesRelu layer before it.
template <class L>
inline constexpr Epilogue fused_epilogue = detail::epilogue_of<L>();

// A layer whose output is its input reinterpreted (Flatten): Sequential passes the same buffer on
// instead of copying, forward and backward.
template <class L>
concept ViewLayer = Layer<L> && L::is_view;

}  // namespace ctnn
