// ctnn/core/sequential.hpp: Sequential<Input<...>, Layers...>, a model whose topology is a type.
//
// From the list of layer specs the compiler derives, as constants: every layer's input and output
// shape, its parameter count and offset in one parameter arena, the activation and scratch sizes
// per sample, and which steps fuse (Dense/Conv2D + ReLU) or vanish (Flatten). A Sequential is the
// chain case of the planner in core/model.hpp (node k reads the output of node k-1), which owns
// all of that. The model object owns only the parameter (and state) arena; training state
// (gradients, optimizer moments, a training workspace) lives in a Trainer, and inference buffers
// belong to the caller (an InferenceContext) or to the calling thread.
// Thread safety: predict() and predict_class() are const and may run on one model from any number
// of threads at once; nothing may change the parameters (fit, a Trainer step, initialize, load)
// while they run.
#pragma once
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ctnn/core/model.hpp"

namespace ctnn {

namespace detail {

template <class T, class In, class... Specs>
struct BindAll {
  using type = std::tuple<>;
};

template <class>
inline constexpr bool always_false_v = false;

// What a spec that is not one binds to once its static_assert has spoken: a shape-preserving
// layer that does nothing, so that no second error follows the sentence.
template <class In, class T>
struct NotALayer {
  using value_type = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "(not a layer)";
  static void init(T*, Rng&) {}
  static void forward(const T*, const T*, T*, std::size_t, T*, const PassContext&) {}
  static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                       const PassContext&) {}
};

// A layer spec (layers/*.hpp) is a class with a member template bind<InputShape, T>. It is named
// directly, not tested with a concept first: a spec whose own static_assert fails (a stride of 0)
// would then fail the test as well, and clang would print a second error after its sentence.
template <class S, class In, class T>
struct BindOne {
  using type = typename S::template bind<In, T>;
};
template <std::size_t... Dims, class In, class T>
struct BindOne<Input<Dims...>, In, T> {
  static_assert(always_false_v<In>,
                "Input may appear only once, first in a Sequential model; the layers follow it.");
  using type = NotALayer<In, T>;
};
template <class S, class In, class T>
  requires(!std::is_class_v<S>)
struct BindOne<S, In, T> {
  static_assert(always_false_v<S>,
                "Every element of a Sequential model after Input must be a layer spec such as "
                "ctnn::Dense<10>: a type with a member template bind<InputShape, T>.");
  using type = NotALayer<In, T>;
};

template <class T, class In, class S, class... Rest>
struct BindAll<T, In, S, Rest...> {
  using head = typename BindOne<S, In, T>::type;
  using type = decltype(std::tuple_cat(
      std::declval<std::tuple<head>>(),
      std::declval<typename BindAll<T, typename head::output_shape, Rest...>::type>()));
};

// The chain's node list: node k reads tensor k (the input for k = 0).
template <class Layers, class Seq>
struct ChainNodes;
template <class... Ls, std::size_t... K>
struct ChainNodes<std::tuple<Ls...>, std::index_sequence<K...>> {
  using type = std::tuple<Node<Ls, K>...>;
};

}  // namespace detail

template <class T, class InputSpec, class... Specs>
class BasicSequential {
  static_assert(sizeof(T) == 0,
                "A Sequential model starts with ctnn::Input<dims...>, then its layers.");
};

template <class T, std::size_t... InDims>
class BasicSequential<T, Input<InDims...>> {
  static_assert(sizeof(T) == 0, "A Sequential model needs at least one layer after Input.");
};

namespace detail {
template <class T, class In, class... Specs>
struct SequentialBase {
  using layers = typename BindAll<T, In, Specs...>::type;
  using type = ModelCore<T, In, typename ChainNodes<layers, std::index_sequence_for<Specs...>>::type,
                         ModelStyle::sequential>;
};
}  // namespace detail

template <class T, std::size_t... InDims, class First, class... Rest>
class BasicSequential<T, Input<InDims...>, First, Rest...>
    : public detail::SequentialBase<T, Shape<InDims...>, First, Rest...>::type {
  using Base = typename detail::SequentialBase<T, Shape<InDims...>, First, Rest...>::type;

 public:
  using Base::Base;
};

// The caller-owned inference buffers of a model type (BasicSequential or QuantizedModel):
//   ctnn::InferenceContext<Model> ctx(256);  model.predict(ctx, x, out);
template <class Model>
using InferenceContext = typename Model::InferenceContext;

// A float model: the type users write.
template <class InputSpec, class... Specs>
using Sequential = BasicSequential<float, InputSpec, Specs...>;

}  // namespace ctnn
