// ctnn/deploy/streaming.hpp: a recurrent model run one time step per call, with its hidden state
// in fixed member buffers.
//
// StreamingModel<Model> takes a model trained on whole sequences (Input<Steps, Features>, then
// SimpleRNN / LSTM / GRU layers, then any layers that act on one step's output; or
// Input<Steps> of token ids and an Embedding before the recurrent layers) and runs it on one
// step x_t of Features values (or one token) at a time:
//   step(x_t)   the model's output after this step: what the whole model outputs for the sequence
//               x_0 .. x_t (for a model whose last recurrent layer returns sequences, row t of
//               its output); the recurrent layers' h (and LSTM's c) advance
//   reset()     a new sequence: the recurrent states back to zero
// After Steps calls, step() returns what Model::predict returns for the whole sequence (the same
// operations in the same order: tests/deploy/test_streaming.cpp checks the bits), and nothing
// stops a stream from running longer than Steps: the recurrence does not depend on Steps.
//
// How: the planner (core/model.hpp) runs a second model type whose recurrent layers are replaced
// by their one-step forms (each recurrent layer's `step`: input Shape<Features>, output
// Shape<Units>, same parameters, its h and c in the state arena). The parameter arena is the
// model's own, so the weights of an exported header (deploy/export.hpp) or a trained model's
// parameters() serve both. As StaticModel: no heap, no exceptions, no OpenMP needed; one instance
// per stream (and per thread): weights shared, buffers and state per instance.
// Requires: the model's input feeds only recurrent layers (or an Embedding); a recurrent layer that returns
// sequences feeds only recurrent layers or is the model's output (a compile-time error names
// the layer otherwise); no Bidirectional layer (it needs the sequence's end). Inference only: the one-step layers have no backward.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <tuple>
#include <utility>

#include "ctnn/core/model.hpp"
#include "ctnn/deploy/static_model.hpp"
#include "ctnn/layers/gru.hpp"
#include "ctnn/layers/lstm.hpp"
#include "ctnn/layers/simple_rnn.hpp"

namespace ctnn::deploy {
namespace detail {

// A bound layer with a one-step form: the recurrent layers (whose steps keep state) and layers
// that act on each position alone (Embedding).
template <class L>
concept HasStep = requires { typename L::step; };
template <class L>
concept IsRecurrent = HasStep<L> && StatefulLayer<typename L::step>;

template <class L>
struct StepOf {
  using type = L;
};
template <HasStep L>
struct StepOf<L> {
  using type = typename L::step;
};

template <class N>
struct StepNode;
template <class L, std::size_t... In>
struct StepNode<ctnn::Node<L, In...>> {
  using type = ctnn::Node<typename StepOf<L>::type, In...>;
};

template <class L>
concept ReadsWholeSequence = requires { requires L::reads_whole_sequence; };

template <class Model, class Seq>
struct StepModelOf;
template <class Model, std::size_t... I>
struct StepModelOf<Model, std::index_sequence<I...>> {
  static_assert(!(ReadsWholeSequence<typename Model::template layer<I>> || ...),
                "StreamingModel cannot stream a Bidirectional layer: its backward direction reads "
                "the sequence from its last step, which a stream has not seen yet.");
  using first = typename Model::template layer<0>;
  static_assert(HasStep<first> || ReadsWholeSequence<first>,  // (the assertion above says why)
                "StreamingModel runs a model one time step at a time: its first layer must be a "
                "recurrent layer (SimpleRNN, LSTM or GRU) reading the Input<Steps, Features>, or an "
                "Embedding before one.");
  using type = ctnn::detail::ModelCore<
      typename Model::value_type, typename StepOf<first>::type::input_shape,
      std::tuple<typename StepNode<typename Model::template node<I>>::type...>, Model::style>;
};

}  // namespace detail

template <class Model>
class StreamingModel {
 public:
  using T = typename Model::value_type;
  // The one-step model: same parameters, recurrent layers replaced by their steps.
  using StepModel = typename detail::StepModelOf<Model, std::make_index_sequence<Model::num_layers>>::type;
  static constexpr std::size_t step_input_size = StepModel::input_size;  // Features
  static constexpr std::size_t output_size = StepModel::output_size;
  static constexpr std::size_t weight_bytes = Model::arena_size * sizeof(T);
  static constexpr std::size_t buffer_floats = StepModel::activation_floats_per_sample +
                                               StepModel::inference_scratch_floats_per_sample;
  // Activations and scratch for one step, plus the recurrent (and any other) state.
  static constexpr std::size_t buffer_bytes = (buffer_floats + StepModel::state_size) * sizeof(T);

 private:
  static constexpr std::size_t N = Model::num_layers;
  template <std::size_t I>
  using step_layer = typename StepModel::template layer<I>;

  // Every node reads tensors of the size its one-step layer takes: tensor 0 is one step's
  // Features, tensor k+1 node k's one-step output.
  static constexpr std::size_t bad_node = [] {
    std::array<std::size_t, N + 1> size{};
    size[0] = StepModel::input_size;
    std::size_t bad = N;
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = step_layer<I>;
      size[I + 1] = L::output_shape::size;
      if constexpr (!JoinLayer<L>) {
        if (size[Model::template inputs_of<I>[0]] != L::input_shape::size && bad == N) bad = I;
      }
    });
    return bad;
  }();
  static_assert(bad_node == N,
                "StreamingModel: a layer reads one time step's output of a recurrent layer that "
                "returns sequences, but takes the whole sequence (only another recurrent layer, or "
                "nothing, may follow a return_sequences layer).");
  static_assert(StepModel::arena_size == Model::arena_size,
                "StreamingModel: the one-step model's parameter arena differs from the model's.");

 public:
  // `params`: Model::arena_size values in the model's arena order (an exported header's
  // `parameters`, a trained model's parameters()); they must outlive this object.
  explicit StreamingModel(const T* params) noexcept
    requires(Model::state_size == 0)
      : params_(params) {
    reset();
  }
  // A model with non-trainable state (BatchNormalization) also takes it (Model::state_size
  // values, only read, copied in).
  StreamingModel(const T* params, const T* state) noexcept : params_(params) {
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = typename Model::template layer<I>;
      if constexpr (StatefulLayer<L> && !detail::IsRecurrent<L>)
        std::copy(state + Model::template state_offset<I>,
                  state + Model::template state_offset<I> + L::state_count,
                  state_.data() + StepModel::template state_offset<I>);
    });
    reset();
  }

  // Starts a new sequence: every recurrent layer's state is zero again.
  void reset() noexcept {
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = step_layer<I>;
      if constexpr (detail::IsRecurrent<typename Model::template layer<I>>)
        L::init_state(state_.data() + StepModel::template state_offset<I>);
    });
  }

  // Advances every recurrent layer by one step of step_input_size values and returns the model's
  // output_size outputs for it; they live in this object until the next call.
  const T* step(const T* x) noexcept {
    std::copy(x, x + step_input_size, buf_);  // slot 0 of the activations is the input
    Buffers b{buf_};
    return StepModel::forward_on(params_, state_.data(), b, 1, PassContext{});
  }

 private:
  struct Buffers {
    T* base;
    T* activation(std::size_t offset) const noexcept { return base + offset; }
    T* scratch(std::size_t offset) const noexcept {
      return base + StepModel::activation_floats_per_sample + offset;
    }
  };
  const T* params_;
  std::array<T, StepModel::state_size + 1> state_{};  // (+1: never a zero-length array)
  alignas(kAlignBytes) T buf_[buffer_floats];
};

}  // namespace ctnn::deploy
