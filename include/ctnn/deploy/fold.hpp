// ctnn/deploy/fold.hpp: a trained model with its BatchNormalizations folded into the layers
// before them, for float inference and export.
//
//   auto folded = ctnn::fold_batch_norms(model);    // a FoldedModel<Model>
//   folded.predict(x);                              // the same function, fewer layers
//   ctnn::deploy::export_header("m.hpp", folded, "m");
//
// Represents the inference-mode function of `model` with every BatchNormalization that directly
// follows a Dense, Conv2D or DepthwiseConv2D (and is the only reader of its output) merged into
// that layer's weights and bias (layers/fold_batch_norm.hpp: W' = W s, b' = (b - mean) s + beta,
// s = gamma / sqrt(var + eps), computed in double). FoldedModel<Model> is the model type without
// those nodes: a Sequential stays a chain, a Graph keeps its wiring (each remaining node reads the
// same tensors, renumbered). Any other BatchNormalization stays, with its state. Outputs agree
// with the unfolded model's up to float rounding (tested: within 1e-5 of the output range).
// The folded model is for inference: training it would train a different function (no batch
// statistics).
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <tuple>
#include <utility>

#include "ctnn/core/model.hpp"
#include "ctnn/layers/fold_batch_norm.hpp"

namespace ctnn {
namespace detail {

template <class Model>
struct FoldPlan {
  static constexpr std::size_t N = Model::num_layers;
  struct Plan {
    std::array<bool, N> drop{};                 // a BatchNormalization folded into node - 1
    std::array<std::size_t, N + 1> tensor{};    // each tensor's number in the folded model
    std::array<std::size_t, N> index{};         // a kept node's index in the folded model
    std::array<std::size_t, N> kept_node{};     // the folded model's node J is node kept_node[J]
    std::size_t kept = 0;
  };
  static constexpr Plan make() {
    Plan p;
    std::array<std::size_t, N + 1> consumers{};
    static_for<N>([&]<std::size_t I>() {
      for (std::size_t t : Model::template inputs_of<I>) ++consumers[t];
    });
    static_for<N>([&]<std::size_t I>() {
      using L = typename Model::template layer<I>;
      if constexpr (I > 0 && layer_kind<L> == LayerKind::batch_norm) {
        using Prev = typename Model::template layer<I - 1>;
        constexpr LayerKind k = layer_kind<Prev>;
        p.drop[I] = Model::template inputs_of<I>[0] == I && consumers[I] == 1 && !p.drop[I - 1] &&
                    (k == LayerKind::dense || k == LayerKind::conv2d ||
                     k == LayerKind::depthwise_conv2d);
      }
    });
    for (std::size_t i = 0; i < N; ++i) {
      if (p.drop[i]) {
        p.tensor[i + 1] = p.tensor[i];  // its input is tensor i, the folded layer's output
      } else {
        p.index[i] = p.kept;
        p.kept_node[p.kept++] = i;
        p.tensor[i + 1] = p.kept;
      }
    }
    return p;
  }
  static constexpr Plan plan = make();

  template <std::size_t J, std::size_t... K>
  static auto node_of(std::index_sequence<K...>)
      -> Node<typename Model::template layer<plan.kept_node[J]>,
              plan.tensor[Model::template inputs_of<plan.kept_node[J]>[K]]...>;
  template <std::size_t... J>
  static auto nodes_of(std::index_sequence<J...>)
      -> std::tuple<decltype(node_of<J>(
          std::make_index_sequence<Model::template node<plan.kept_node[J]>::arity>{}))...>;
  using type = ModelCore<typename Model::value_type, typename Model::input_shape,
                         decltype(nodes_of(std::make_index_sequence<plan.kept>{})), Model::style>;
};

}  // namespace detail

// The type of fold_batch_norms(model): Model without its foldable BatchNormalizations.
template <class Model>
using FoldedModel = typename detail::FoldPlan<Model>::type;

// `model` with each BatchNormalization right after a Dense, Conv2D or DepthwiseConv2D folded into
// that layer (see the top of this file).
template <class Model>
FoldedModel<Model> fold_batch_norms(const Model& model) {
  using F = FoldedModel<Model>;
  using P = detail::FoldPlan<Model>;
  F out(0);
  const auto* params = model.parameters().data();
  const auto* state = model.state().data();
  auto* to = out.parameters().data();
  auto* to_state = out.state().data();
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    if constexpr (!P::plan.drop[I]) {
      using L = typename Model::template layer<I>;
      constexpr std::size_t J = P::plan.index[I];
      std::copy_n(params + Model::template param_offset<I>, L::param_count,
                  to + F::template param_offset<J>);
      if constexpr (StatefulLayer<L>)
        std::copy_n(state + Model::template state_offset<I>, L::state_count,
                    to_state + F::template state_offset<J>);
      if constexpr (I + 1 < Model::num_layers && P::plan.drop[I + 1])
        fold_batch_norm<L, typename Model::template layer<I + 1>>(
            to + F::template param_offset<J>, params + Model::template param_offset<I + 1>,
            state + Model::template state_offset<I + 1>);
    }
  });
  return out;
}

}  // namespace ctnn
