// ctnn/core/model.hpp: the planner every model runs on, a compile-time DAG of layers.
//
// A model is a list of nodes, each a bound layer and the tensors it reads: tensor 0 is the input
// batch, tensor k+1 the output of node k (so a node reads only earlier tensors and the list is
// already in topological order). Sequential is the chain (node k reads tensor k); Graph
// (core/graph.hpp) lowers its front-end syntax to the same list. From the list the compiler
// derives, as constants:
//   - every tensor's shape, its consumers and its last reader;
//   - each node's parameter offset in ONE arena (segments rounded up to 64 bytes), its offset in
//     a second arena of non-trainable state (stateful layers, below), its scratch offsets;
//   - fusion: a ReLU after a FusesRelu layer (Dense, Conv2D, BatchNormalization) runs inside it,
//     and a ViewLayer (Flatten) shares its input's buffer, both only where the producer has a
//     single consumer. A producer that declares absorbs_activation_backward (BatchNormalization)
//     also takes the ReLU's backward into its own (it masks dy by its stored output), so the
//     ReLU's gradient passes on as a view's does;
//   - activation slots. Inference reuses a slot as soon as the last reader of its tensor has run
//     (first fit, in node order). Training keeps every activation live for the backward pass: a
//     layer's backward may read its x and y, and the planner does not ask which (the conservative
//     rule; it is also what a chain always did). The peaks are activation_floats_per_sample
//     (inference) and training_activation_floats_per_sample;
//   - gradient slots for backward<Top>, by liveness: a tensor's gradient is live from the backward
//     of its last consumer to that of its producer. Where a tensor fans out, its consumers' dx are
//     summed into its gradient in a fixed order (node index descending, then input slot): the
//     first writes it, each later one writes a temporary that is then added. The sum is therefore
//     the same at any thread count.
// Thread safety as for Sequential: predict() is const and may run from many threads at once.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <cctype>
#include <locale>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/epilogue.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/simd_target.hpp"

namespace ctnn {

// The first element of a Sequential or a Graph: the shape of one input sample (channels last for
// images).
template <std::size_t... Dims>
struct Input {
  static_assert(sizeof...(Dims) >= 1 && (std::size_t{1} * ... * Dims) > 0,
                "Input needs at least one dimension and no dimension may be 0.");
  using shape = Shape<Dims...>;
};

// The contract of a STATEFUL bound layer (BatchNormalization's moving mean and variance): as
// ctnn::Layer, plus
//   state_count                 scalars it keeps in the model's state arena (not trainable:
//                               optimizers never see them; saved and loaded with the model)
//   init_state(state)           Keras's initial values
// and its forward takes the state after the parameters:
//   forward(params, state, x, y, n, scratch, ctx)
// In training (ctx.training) it may update the state; in inference it must only read it (the
// planner passes the model's arena from a const predict(), possibly from many threads at once).
// backward keeps the usual signature (no state). A stateful layer that declares fuses_relu = true
// takes the fused activation as a template argument of both passes,
//   forward<Epilogue>(params, state, x, y, n, scratch, ctx), backward<Epilogue>(...),
// and with absorbs_activation_backward = true its backward applies the activation's mask to dy
// itself (from y, its stored output), as BatchNormalization does.
template <class L>
concept StatefulLayer = requires {
  typename L::value_type;
  requires ShapeType<typename L::input_shape>;
  requires ShapeType<typename L::output_shape>;
  { L::param_count } -> std::convertible_to<std::size_t>;
  { L::state_count } -> std::convertible_to<std::size_t>;
  { L::scratch_per_sample } -> std::convertible_to<std::size_t>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(typename L::value_type* p, const typename L::value_type* c, std::size_t n, Rng& rng,
              const PassContext& ctx) {
  L::init(p, rng);
  L::init_state(p);
  L::forward(c, p, c, p, n, p, ctx);
  L::backward(c, c, c, c, p, p, n, p, ctx);
};

// The contract of a JOIN (Add, Concatenate): a parameter-free layer with several inputs.
//   is_join = true, arity       number of inputs (>= 2)
//   input_shape<J>              the shape of input J; output_shape, name, param_count = 0,
//                               scratch_per_sample = 0, init(params, rng) as a layer
//   forward(xs, y, n)           y from the inputs xs[0 .. arity)
//   backward(dy, j, dx, n)      writes every element of dx, the gradient of input j
// A join may fuse a following ReLU/ReLU6 (fuses_relu and absorbs_activation_backward, as Add):
//   forward(xs, y, n, act)      applies Epilogue act as it stores y
//   backward(dy, j, dx, n, y, act)  dx = dy masked by the activation's output y
template <class L>
concept JoinLayer = requires {
  typename L::value_type;
  requires L::is_join;
  { L::arity } -> std::convertible_to<std::size_t>;
  requires ShapeType<typename L::output_shape>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(const typename L::value_type* const* xs, typename L::value_type* p,
              const typename L::value_type* c, std::size_t n) {
  L::forward(xs, p, n);
  L::backward(c, n, p, n);
};

// Any element a model's node may hold.
template <class L>
concept ModelLayer = Layer<L> || StatefulLayer<L> || JoinLayer<L>;

// A node of a model: bound layer L reading tensors In... (0 = the input, k+1 = node k's output).
template <class L, std::size_t... In>
struct Node {
  using layer = L;
  static constexpr std::size_t arity = sizeof...(In);
  static constexpr std::array<std::size_t, sizeof...(In)> inputs{In...};
};

namespace detail {

// Calls f.template operator()<I>() for I = 0 .. N-1, in order.
template <std::size_t N, class F>
constexpr void static_for(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (f.template operator()<I>(), ...); }(
      std::make_index_sequence<N>{});
}

// "2770634" -> "2,770,634".
inline std::string group_thousands(std::size_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

template <class L>
constexpr std::size_t state_count_of() {
  if constexpr (StatefulLayer<L>) return L::state_count;
  else return 0;
}

// Named in a static_assert's instantiation so the error shows which node is unused.
template <std::size_t Layer, class LayerType>
struct Graph_layer_output_is_never_used {
  static constexpr bool value = false;
};

// Adds src into dst, n values (the fan-out accumulation; elementwise, so thread-count free), in
// chunks over the threads for a large n. The arrays never overlap (restrict: it vectorizes).
template <class T>
inline void add_into(T* dst, const T* src, std::size_t n) {
  constexpr std::size_t kChunk = std::size_t{1} << 14;
  parallel_for_range((n + kChunk - 1) / kChunk, [&](std::size_t c0, std::size_t c1) {
    T* __restrict d = dst + c0 * kChunk;
    const T* __restrict s = src + c0 * kChunk;
    const std::size_t m = (c1 * kChunk < n ? c1 * kChunk : n) - c0 * kChunk;
    for (std::size_t i = 0; i < m; ++i) d[i] += s[i];
  }, n >= kParallelWork);
}

}  // namespace detail

// Whether a model is a Sequential chain or a Graph (summary style, what deploy/ accepts).
enum class ModelStyle { sequential, functional };

namespace detail {

template <class T, class InShape, class NodeList, ModelStyle Style>
class ModelCore;

template <class T, class InShape, class... Nodes, ModelStyle Style>
class ModelCore<T, InShape, std::tuple<Nodes...>, Style> {
 public:
  static_assert(std::is_floating_point_v<T>, "A model's scalar type must be float or double.");

  using value_type = T;
  using layers = std::tuple<typename Nodes::layer...>;
  static constexpr std::size_t num_layers = sizeof...(Nodes);
  template <std::size_t I>
  using layer = std::tuple_element_t<I, layers>;
  template <std::size_t I>
  using node = std::tuple_element_t<I, std::tuple<Nodes...>>;
  static constexpr ModelStyle style = Style;
  // True for a Sequential: node k reads tensor k, and deploy/ (quantize, export, StaticModel)
  // accepts the model.
  static constexpr bool is_chain = Style == ModelStyle::sequential;

  using input_shape = InShape;
  using output_shape = typename layer<num_layers - 1>::output_shape;
  static constexpr std::size_t input_size = input_shape::size;
  static constexpr std::size_t output_size = output_shape::size;

 private:
  static constexpr std::size_t N = num_layers, NT = N + 1, E = (Nodes::arity + ... + 0);
  static constexpr std::size_t kNone = ~std::size_t{0};

  static_assert((ModelLayer<typename Nodes::layer> && ...),
                "Every layer of a model must satisfy the ctnn::Layer contract (core/layer.hpp), "
                "the stateful one or the join one (core/model.hpp).");

  // Floats per arena segment are rounded up so each segment starts on a 64-byte line.
  static constexpr std::size_t kAlign = kAlignBytes / sizeof(T);
  static constexpr std::size_t round_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

  template <std::size_t I>
  static constexpr bool is_join = JoinLayer<layer<I>>;

  // The topology and what follows from it alone.
  struct Facts {
    std::array<std::size_t, NT> size{};         // floats per sample of each tensor
    std::array<std::size_t, N + 1> in_begin{};  // node i reads in[in_begin[i] .. in_begin[i+1])
    std::array<std::size_t, E> in{};
    std::array<std::size_t, E> edge_node{};
    std::array<std::size_t, NT> consumers{}, last_reader{};
    std::array<bool, N> fused{}, fuses_next{}, view{}, gview{};
    std::array<std::size_t, NT> root{}, groot{};  // the tensor whose buffer (gradient) it shares
    std::array<std::size_t, N> param_offset{}, param_count{}, state_offset{}, state_count{};
    std::array<std::size_t, N> scratch_offset{}, scratch_count{};
    std::array<bool, N> relu{}, can_fuse{}, can_view{}, absorbs{};
    std::array<Epilogue, N> epilogue{}, next_epilogue{};  // a fusable activation's; the fused one
    std::size_t arena = 0, state = 0, scratch = 0, inference_scratch = 0;
  };
  static constexpr Facts make_facts() {
    Facts f;
    f.size[0] = input_size;
    std::size_t e = 0;
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      f.size[I + 1] = L::output_shape::size;
      f.in_begin[I] = e;
      for (std::size_t t : node<I>::inputs) {
        f.in[e] = t;
        f.edge_node[e] = I;
        ++e;
      }
      f.epilogue[I] = fused_epilogue<L>;
      f.relu[I] = f.epilogue[I] != Epilogue::none;
      if constexpr (Layer<L>) {
        f.can_fuse[I] = FusesRelu<L>;
        f.can_view[I] = ViewLayer<L>;
      } else if constexpr (requires { { L::fuses_relu } -> std::convertible_to<bool>; }) {
        f.can_fuse[I] = L::fuses_relu;  // a stateful layer (BatchNormalization) or a join (Add)
      }
      if constexpr (requires { { L::absorbs_activation_backward } -> std::convertible_to<bool>; })
        f.absorbs[I] = f.can_fuse[I] && L::absorbs_activation_backward;
      f.param_offset[I] = f.arena;
      f.param_count[I] = L::param_count;
      f.arena += round_up(L::param_count);
      f.state_offset[I] = f.state;
      f.state_count[I] = state_count_of<L>();
      f.state += round_up(state_count_of<L>());
      f.scratch_offset[I] = f.scratch;
      f.scratch_count[I] = L::scratch_per_sample;
      f.scratch += round_up(L::scratch_per_sample);
      f.inference_scratch = std::max(f.inference_scratch, round_up(L::scratch_per_sample));
    });
    f.in_begin[N] = e;
    for (std::size_t t = 0; t < NT; ++t) f.last_reader[t] = t == N ? N : kNone;
    for (std::size_t k = 0; k < E; ++k) {
      ++f.consumers[f.in[k]];
      const std::size_t i = f.edge_node[k];
      if (f.last_reader[f.in[k]] == kNone || f.last_reader[f.in[k]] < i) f.last_reader[f.in[k]] = i;
    }
    for (std::size_t t = 0; t < NT; ++t) f.root[t] = f.groot[t] = t;
    for (std::size_t i = 0; i < N; ++i) {
      if (f.in_begin[i + 1] - f.in_begin[i] != 1) continue;
      const std::size_t t = f.in[f.in_begin[i]];
      const bool single = f.consumers[t] == 1;
      if (f.relu[i] && t > 0 && single && f.can_fuse[t - 1] && !f.fused[t - 1]) {
        f.fused[i] = true;
        f.fuses_next[t - 1] = true;
        f.next_epilogue[t - 1] = f.epilogue[i];
        f.root[i + 1] = f.root[t];
        if (f.absorbs[t - 1]) {  // its backward masks dy itself: the ReLU's gradient passes on
          f.gview[i] = true;
          f.groot[i + 1] = f.groot[t];
        }
      } else if (f.can_view[i] && single) {
        f.view[i] = true;
        f.root[i + 1] = f.root[t];
        if (t > 0) {  // the gradient passes through unchanged (not into the caller's dinput)
          f.gview[i] = true;
          f.groot[i + 1] = f.groot[t];
        }
      }
    }
    return f;
  }
  static constexpr Facts facts = make_facts();

  // A Graph whose node computes something no path takes to the output is a mistake.
  template <std::size_t I>
  static constexpr bool used() {
    return I + 1 == N || facts.consumers[I + 1] > 0;
  }
  static constexpr bool all_used = [] {
    bool ok = true;
    static_for<N>([&]<std::size_t I>() {
      if constexpr (!used<I>()) {
        static_assert(Graph_layer_output_is_never_used<I, layer<I>>::value,
                      "Every layer of a model must reach its output: the layer named in "
                      "Graph_layer_output_is_never_used<index, layer> is computed but never read "
                      "(Tag it and use it, or remove it).");
        ok = false;
      }
    });
    return ok;
  }();

  // First-fit slot allocation over the blocks live at once.
  struct Slots {
    std::array<std::size_t, NT + 2> off{}, len{};
    std::array<bool, NT + 2> live{};
    std::size_t peak = 0;
    constexpr std::size_t place(std::size_t id, std::size_t n) {
      std::size_t best = kNone;
      const auto fits = [&](std::size_t o) {
        for (std::size_t k = 0; k < NT + 2; ++k)
          if (live[k] && o < off[k] + len[k] && off[k] < o + n) return false;
        return true;
      };
      if (fits(0)) best = 0;
      for (std::size_t k = 0; k < NT + 2; ++k)
        if (live[k] && fits(off[k] + len[k]) && off[k] + len[k] < best) best = off[k] + len[k];
      off[id] = best;
      len[id] = n;
      live[id] = true;
      peak = std::max(peak, best + n);
      return best;
    }
  };

  struct ActPlan {
    std::array<std::size_t, NT> offset{};
    std::size_t floats = 0;
  };
  // Training: every buffer its own slot, in node order (the input first).
  static constexpr ActPlan make_training_plan() {
    ActPlan p;
    for (std::size_t t = 0; t < NT; ++t) {
      if (facts.root[t] == t) {
        p.offset[t] = p.floats;
        p.floats += round_up(facts.size[t]);
      } else {
        p.offset[t] = p.offset[facts.root[t]];
      }
    }
    return p;
  }
  // Inference: a buffer is free once the last reader of every tensor in it has run.
  static constexpr ActPlan make_inference_plan() {
    std::array<std::size_t, NT> end{};
    for (std::size_t t = 0; t < NT; ++t) end[t] = 0;
    for (std::size_t t = 0; t < NT; ++t) {
      const std::size_t r = facts.root[t];
      if (facts.last_reader[t] != kNone) end[r] = std::max(end[r], facts.last_reader[t]);
    }
    ActPlan p;
    Slots s;
    s.place(0, round_up(facts.size[0]));
    for (std::size_t i = 0; i < N; ++i) {
      if (facts.root[i + 1] == i + 1) s.place(i + 1, round_up(facts.size[i + 1]));
      for (std::size_t t = 0; t <= i; ++t)
        if (facts.root[t] == t && s.live[t] && end[t] == i) s.live[t] = false;
    }
    for (std::size_t t = 0; t < NT; ++t) p.offset[t] = s.off[facts.root[t]];
    p.floats = s.peak;
    return p;
  }
  static constexpr ActPlan train_plan = make_training_plan();
  static constexpr ActPlan infer_plan = make_inference_plan();

  struct GradPlan {
    std::array<std::size_t, NT> offset{};  // of each gradient root
    std::array<bool, N> active{};          // the node's output reaches Top
    std::array<bool, E> first{};           // this edge writes its input's gradient (not adds)
    std::size_t temp = 0, floats = 0;
  };
  static constexpr GradPlan make_grad_plan(std::size_t top) {
    GradPlan g;
    for (std::size_t j = 0; j <= top; ++j) {
      const std::size_t i = top - j;
      if (i == top) { g.active[i] = true; continue; }
      for (std::size_t k = 0; k < E; ++k)
        if (facts.in[k] == i + 1 && facts.edge_node[k] <= top && g.active[facts.edge_node[k]])
          g.active[i] = true;
    }
    Slots s;
    std::array<bool, NT> seen{};
    s.place(facts.groot[top + 1], round_up(facts.size[top + 1]));
    seen[facts.groot[top + 1]] = true;
    std::size_t temp = 0;
    for (std::size_t j = 0; j <= top; ++j) {
      const std::size_t i = top - j;
      if (!g.active[i] || facts.gview[i]) continue;
      for (std::size_t k = facts.in_begin[i]; k < facts.in_begin[i + 1]; ++k) {
        const std::size_t r = facts.groot[facts.in[k]];
        g.first[k] = !seen[r];
        if (!seen[r]) {
          seen[r] = true;
          if (r != 0) s.place(r, round_up(facts.size[r]));
        } else {
          temp = std::max(temp, round_up(facts.size[r]));
        }
      }
      s.live[i + 1] = false;  // node i consumed its output's gradient
    }
    for (std::size_t t = 0; t < NT; ++t) g.offset[t] = s.off[facts.groot[t]];
    g.temp = s.peak;
    g.floats = s.peak + temp;
    return g;
  }
  template <std::size_t Top>
  static constexpr GradPlan grad_plan = make_grad_plan(Top);

 public:
  // A constant naming the topology: FNV-1a (64-bit) over the input shape and, per node, its layer
  // name and kind, output shape, parameter and state counts, the tensors it reads, a window
  // layer's kernel, stride, dilation and padding, and a BatchNormalization's epsilon. An exported
  // header static_asserts it against its model type. A Graph and its NodeGraph form share it; a
  // Sequential differs from a Graph of the same layers. Settings that change neither the
  // parameters nor the shapes (an activation's slope, a dropout rate) are not part of it: the
  // topology() text a model file and a header also carry has every setting.
  static constexpr std::uint64_t topology_hash = [] {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto mix = [&](std::uint64_t v) {
      for (int b = 0; b < 8; ++b) {
        h ^= (v >> (8 * b)) & 0xff;
        h *= 0x100000001b3ull;
      }
    };
    const auto mix_shape = [&]<class S>() {
      mix(S::rank);
      for (std::size_t d : S::dims) mix(d);
    };
    mix(Style == ModelStyle::sequential ? 1 : 2);
    mix_shape.template operator()<InShape>();
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      mix(0x6e6f6465);  // "node"
      for (char c : std::string_view(L::name)) mix(std::uint64_t(static_cast<unsigned char>(c)));
      mix(std::uint64_t(layer_kind<L>));
      mix_shape.template operator()<typename L::output_shape>();
      mix(L::param_count);
      mix(state_count_of<L>());
      mix(node<I>::arity);
      for (std::size_t t : node<I>::inputs) mix(t);
      if constexpr (requires { L::geom::pad_top; L::geom::pad_left; L::geom::dilation; }) {
        mix(L::geom::oh), mix(L::geom::ow), mix(L::geom::pad_top), mix(L::geom::pad_left);
        mix(L::geom::dilation);
      }
      if constexpr (requires { { L::epsilon } -> std::convertible_to<double>; })
        mix(std::uint64_t(double(L::epsilon) * 1e9 + 0.5));
    });
    return h;
  }();

  // Trainable parameters, counted as Keras counts them.
  static constexpr std::size_t param_count = [] {
    std::size_t n = 0;
    for (std::size_t c : facts.param_count) n += c;
    return n;
  }();
  // Non-trainable state scalars (Keras's "Non-trainable params").
  static constexpr std::size_t state_count = [] {
    std::size_t n = 0;
    for (std::size_t c : facts.state_count) n += c;
    return n;
  }();
  // Scalars in the parameter arena (param_count plus alignment padding between layers) and in
  // the state arena.
  static constexpr std::size_t arena_size = facts.arena;
  static constexpr std::size_t state_size = facts.state;
  // Scalars of workspace per sample in a batch. activation_floats_per_sample is the inference
  // peak (slots reused by liveness); training keeps more (training_activation_floats_per_sample)
  // and adds gradient slots.
  static constexpr std::size_t activation_floats_per_sample = infer_plan.floats;
  static constexpr std::size_t training_activation_floats_per_sample = train_plan.floats;
  static constexpr std::size_t scratch_floats_per_sample = facts.scratch;
  static constexpr std::size_t inference_scratch_floats_per_sample = facts.inference_scratch;
  static constexpr std::size_t gradient_floats_per_sample = [] {
    if constexpr (N >= 2) return std::max(grad_plan<N - 1>.floats, grad_plan<N - 2>.floats);
    else return grad_plan<N - 1>.floats;
  }();
  template <std::size_t I>
  static constexpr std::size_t param_offset = facts.param_offset[I];
  template <std::size_t I>
  static constexpr std::size_t state_offset = facts.state_offset[I];
  // The tensors node I reads (0 = the input, k+1 = the output of layer k).
  template <std::size_t I>
  static constexpr auto inputs_of = node<I>::inputs;
  // Per-sample activation offsets of tensor t (for tests and tools).
  static constexpr std::size_t training_activation_offset(std::size_t t) { return train_plan.offset[t]; }
  static constexpr std::size_t inference_activation_offset(std::size_t t) { return infer_plan.offset[t]; }
  template <std::size_t I>
  static constexpr bool fused_into_previous = facts.fused[I];
  template <std::size_t I>
  static constexpr bool is_view = facts.view[I];

  // Activations, scratch and (when training) gradient buffers for batches of up to capacity()
  // samples. reserve() allocates only when the capacity grows or training is first asked for.
  class Workspace {
   public:
    void reserve(std::size_t batch, bool training) {
      if (batch <= cap_ && (training <= training_)) return;
      cap_ = std::max(batch, cap_);
      training_ = training_ || training;
      const std::size_t per = act() + scratch_floats_per_sample +
                              (training_ ? gradient_floats_per_sample : 0);
      buf_ = AlignedBuffer<T>();
      buf_.resize(per * cap_);
    }
    std::size_t capacity() const { return cap_; }
    bool training() const { return training_; }
    T* activation(std::size_t offset) { return buf_.data() + offset * cap_; }
    T* scratch(std::size_t offset) { return buf_.data() + (act() + offset) * cap_; }
    // The gradient slot at per-sample offset `which` (0: where the loss writes d loss / d output).
    T* gradient(std::size_t which) {
      return buf_.data() + (act() + scratch_floats_per_sample + which) * cap_;
    }
    T* input() { return activation(0); }
    // The batch size of the last training-mode forward() on this workspace, or 0 when the last
    // forward ran in inference mode (whose activations backward() cannot use) or none ran.
    std::size_t trained_batch() const { return trained_batch_; }

   private:
    friend class ModelCore;
    std::size_t trained_batch_ = 0;
    std::size_t act() const {
      return training_ ? std::max(training_activation_floats_per_sample,
                                  activation_floats_per_sample)
                       : activation_floats_per_sample;
    }
    AlignedBuffer<T> buf_;
    std::size_t cap_ = 0;
    bool training_ = false;
  };

  // Initializes every layer as Keras would (Glorot uniform weights, zero biases) from `seed`,
  // and every state to its layer's initial values.
  explicit ModelCore(std::uint64_t seed = 0) : params_(arena_size), state_(state_size) {
    initialize(seed);
  }

  void initialize(std::uint64_t seed) {
    Rng master(seed);
    std::fill(params_.begin(), params_.end(), T(0));
    std::fill(state_.begin(), state_.end(), T(0));
    static_for<N>([&]<std::size_t I>() {
      Rng rng(master.next_u64());
      layer<I>::init(params_.data() + facts.param_offset[I], rng);
      if constexpr (StatefulLayer<layer<I>>)
        layer<I>::init_state(state_.data() + facts.state_offset[I]);
    });
  }

  std::span<T> parameters() { return {params_.data(), params_.size()}; }
  std::span<const T> parameters() const { return {params_.data(), params_.size()}; }
  template <std::size_t I>
  std::span<T> layer_parameters() {
    return {params_.data() + facts.param_offset[I], layer<I>::param_count};
  }
  // The non-trainable state arena (state_size values; empty for a model without stateful layers).
  std::span<T> state() { return {state_.data(), state_.size()}; }
  std::span<const T> state() const { return {state_.data(), state_.size()}; }
  template <std::size_t I>
  std::span<T> layer_state() {
    return {state_.data() + facts.state_offset[I], state_count_of<layer<I>>()};
  }

  // Runs the batch already in ws.input() (n <= ws.capacity()) through every layer; returns the
  // output [n x output_size], which lives in ws. A training pass needs a training workspace.
  T* forward(Workspace& ws, std::size_t n, const PassContext& ctx) const {
    if (ctx.training && !ws.training())
      fail("forward() in training mode needs a workspace reserved for training (reserve(n, true)).");
    ws.trained_batch_ = 0;
    T* out = forward_on(params_.data(), const_cast<T*>(state_.data()), ws, n, ctx);
    if (ctx.training) ws.trained_batch_ = n;
    return out;
  }

  // The same pass over any parameters `p` (arena_size values) and any buffers `b` offering
  // activation(offset) and scratch(offset) as Workspace does (deploy/static_model.hpp runs it
  // over constexpr weights and fixed arrays, with no heap). The state arena is `state`; the
  // four-argument form is for models without stateful layers.
  template <class Buffers>
  static T* forward_on(const T* p, Buffers& ws, std::size_t n, const PassContext& ctx) {
    static_assert(state_size == 0 || sizeof(Buffers) == 0,
                  "This model has stateful layers: call forward_on(params, state, buffers, n, ctx).");
    return forward_on(p, static_cast<T*>(nullptr), ws, n, ctx);
  }
  template <class Buffers>
  static T* forward_on(const T* p, T* state, Buffers& ws, std::size_t n, const PassContext& ctx) {
    if (ctx.training) return run_forward<true>(p, state, ws, n, ctx);
    return run_forward<false>(p, state, ws, n, ctx);
  }
  // An inference pass as forward_on's that first shows `observe` every input of every node:
  // observe.template operator()<I, K>(x, n) with x the n samples of input K that node I is about
  // to read (K = 0 for a single-input node; with a fused ReLU already applied, views resolved). Calibration (deploy/quantize.hpp) reads the
  // inputs of the layers it quantizes this way, whatever the topology.
  template <class Buffers, class Observe>
  static T* forward_observed(const T* p, T* state, Buffers& ws, std::size_t n, Observe&& observe) {
    return run_forward<false>(p, state, ws, n, PassContext{}, &observe);
  }

  // Back-propagates dy = ws.gradient(0) [n x output of layer Top] through every layer whose output
  // reaches Top, writing every parameter gradient of layers 0 .. Top into `grads` (an arena-sized
  // span; zeros for a layer that does not reach Top). Layers after Top are not touched: a fused
  // loss starts at the layer before Softmax. When `dinput` is given, it receives d loss / d input
  // [n x input_size]. Runs after a training-mode forward() on the same workspace.
  template <std::size_t Top = N - 1>
  void backward(Workspace& ws, std::size_t n, T* grads, const PassContext& ctx,
                T* dinput = nullptr) const {
    static constexpr GradPlan g = grad_plan<Top>;
    static_assert(g.floats <= gradient_floats_per_sample,
                  "backward<Top> is planned for the last two layers only (the loss's seed).");
    // Training keeps every activation where backward reads it; inference reuses slots. A
    // backward after an inference forward (or a forward of another batch size) would read
    // overwritten activations.
    if (ws.trained_batch_ != n) {
      if (ws.trained_batch_ == 0)
        fail("backward() of ", n, " samples needs a training-mode forward() (PassContext{.training "
             "= true}) on the same workspace first; the last forward() on it ran in inference mode "
             "or none ran, so the activations it would read are not kept.");
      fail("backward() of ", n, " samples follows a training-mode forward() of ",
           ws.trained_batch_, " samples on this workspace; run both on the same batch.");
    }
    const T* p = params_.data();
    T* temp = ws.gradient(g.temp);
    // With ctx.update, every layer's parameters are updated as soon as their gradient is final,
    // right after its backward: no layer reads another's parameters in backward.
    if (ctx.update != nullptr)
      for (std::size_t i = Top + 1; i < N; ++i)  // not back-propagated (after a fused loss)
        if (facts.param_count[i] > 0) ctx.update->apply(facts.param_offset[i], facts.param_count[i]);
    static_for<Top + 1>([&]<std::size_t J>() {
      constexpr std::size_t I = Top - J;
      using L = layer<I>;
      const auto update_after = [&] {
        if constexpr (L::param_count > 0)
          if (ctx.update != nullptr) ctx.update->apply(facts.param_offset[I], L::param_count);
      };
      if constexpr (!g.active[I]) {
        std::fill(grads + facts.param_offset[I], grads + facts.param_offset[I] + L::param_count, T(0));
        update_after();
      } else if constexpr (facts.gview[I]) {
        return;  // the gradient passes through unchanged (shared buffer)
      } else {
        const T* dy = ws.gradient(g.offset[I + 1]);
        static_for<node<I>::arity>([&]<std::size_t K>() {
          constexpr std::size_t e = facts.in_begin[I] + K;
          constexpr std::size_t t = facts.in[e];
          constexpr std::size_t sz = facts.size[t];
          T* target = t == 0 ? dinput : ws.gradient(g.offset[t]);
          T* dx = target == nullptr ? nullptr : (g.first[e] ? target : temp);
          if constexpr (is_join<I> && facts.absorbs[I] && facts.fuses_next[I]) {
            if (dx) L::backward(dy, K, dx, n, ws.activation(train_plan.offset[I + 1]),
                                facts.next_epilogue[I]);
          } else if constexpr (is_join<I>) {
            if (dx) L::backward(dy, K, dx, n);
          } else if constexpr (facts.absorbs[I] && facts.fuses_next[I]) {
            L::template backward<facts.next_epilogue[I]>(
                p + facts.param_offset[I], ws.activation(train_plan.offset[t]),
                ws.activation(train_plan.offset[I + 1]), dy, dx, grads + facts.param_offset[I], n,
                ws.scratch(facts.scratch_offset[I]), layer_context<I>(ctx));
          } else {
            L::backward(p + facts.param_offset[I], ws.activation(train_plan.offset[t]),
                        ws.activation(train_plan.offset[I + 1]), dy, dx,
                        grads + facts.param_offset[I], n,
                        ws.scratch(facts.scratch_offset[I]), layer_context<I>(ctx));
          }
          if (dx != nullptr && dx != target) add_into(target, dx, n * sz);
        });
        update_after();
      }
    });
  }

  // Largest batch predict() processes at once; larger inputs go through in chunks.
  static constexpr std::size_t kInferenceChunk = 256;

  // The buffers of one inference at a time: a caller's own, for predict(ctx, ...). It borrows
  // nothing from a model (its size depends on the model type only), so one context serves every
  // model of this type, and a thread that keeps its own context never shares a buffer. It grows
  // to the largest chunk (at most kInferenceChunk samples) it has run and allocates only then.
  // Not for two threads at once: one context, one thread at a time.
  class InferenceContext {
   public:
    InferenceContext() = default;
    // Sized for batches of up to n samples: predict with it then allocates nothing.
    explicit InferenceContext(std::size_t n) { reserve(n); }
    void reserve(std::size_t n) { ws_.reserve(std::min(n, kInferenceChunk), false); }
    // Samples it holds without growing.
    std::size_t capacity() const { return ws_.capacity(); }

   private:
    friend class ModelCore;
    Workspace ws_;
  };

  // A context sized for batches of up to n samples.
  static InferenceContext make_context(std::size_t n = 0) { return InferenceContext(n); }

  // Inference on one sample: the output (probabilities after a final Softmax). Without a context
  // it runs in the calling thread's own context (thread_context()).
  std::array<T, output_size> predict(std::span<const T> x) const {
    return predict(thread_context(), x);
  }
  std::array<T, output_size> predict(InferenceContext& ctx, std::span<const T> x) const {
    if (x.size() != input_size)
      fail("predict() was given ", x.size(), " input values but the model's input ",
           input_shape::str(), " has ", input_size, ".");
    std::array<T, output_size> out;
    predict_into(ctx.ws_, x.data(), 1, out.data());
    return out;
  }

  // Inference on a batch: x holds n * input_size values, out receives n * output_size.
  void predict(std::span<const T> x, std::span<T> out) const { predict(thread_context(), x, out); }
  void predict(InferenceContext& ctx, std::span<const T> x, std::span<T> out) const {
    if (x.size() % input_size != 0)
      fail("predict() was given ", x.size(), " input values, not a multiple of the input size ",
           input_size, " of ", input_shape::str(), ".");
    const std::size_t n = x.size() / input_size;
    if (out.size() != n * output_size)
      fail("predict() got an output span of ", out.size(), " values for ", n, " samples; it needs ",
           n * output_size, ".");
    predict_into(ctx.ws_, x.data(), n, out.data());
  }

  // Index of the largest output of one sample (the predicted class).
  std::size_t predict_class(std::span<const T> x) const {
    return predict_class(thread_context(), x);
  }
  // A NaN output has no class: it is refused (as QuantizedModel refuses a non-finite input).
  std::size_t predict_class(InferenceContext& ctx, std::span<const T> x) const {
    const auto out = predict(ctx, x);
    for (std::size_t k = 0; k < output_size; ++k)
      if (out[k] != out[k])
        fail("predict_class(): output ", k, " of the model is NaN, so the sample has no class ",
             "(a NaN input or parameter propagates to the outputs).");
    return std::size_t(std::max_element(out.begin(), out.end()) - out.begin());
  }

  // The calling thread's context for this model type, used by predict() without a context. One
  // per thread and per model type (a function-local thread_local of this class template), freed
  // when the thread ends: N threads serving this type hold N of them.
  static InferenceContext& thread_context() {
    static thread_local InferenceContext ctx;
    return ctx;
  }

  // Sizes the calling thread's context for batches of up to n samples: predict() without a
  // context then allocates nothing on THIS thread for such batches. Each serving thread calls it
  // once (or lets its first batch do it).
  void reserve_inference(std::size_t n) const { thread_context().reserve(n); }

  // Keras's snake case of a class name (its to_snake_case): "BatchNormalization" ->
  // "batch_normalization", "GlobalAveragePooling2D" -> "global_average_pooling2d", "ReLU" -> "re_lu".
  static std::string snake_case(std::string_view n) {
    const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    // Underscores go before n[j] where (.)([A-Z][a-z]+) matches with the capital at j (matches
    // taken left to right, each ending after its lower-case run), then where a lower-case letter
    // meets a capital.
    std::vector<bool> mark(n.size() + 1, false);
    for (std::size_t i = 0; i + 2 < n.size();) {
      if (upper(n[i + 1]) && lower(n[i + 2])) {
        mark[i + 1] = true;
        i += 3;
        while (i < n.size() && lower(n[i])) ++i;
      } else {
        ++i;
      }
    }
    for (std::size_t j = 1; j < n.size(); ++j)
      if (lower(n[j - 1]) && upper(n[j])) mark[j] = true;
    std::string out;
    out.reserve(2 * n.size());
    for (std::size_t j = 0; j < n.size(); ++j) {
      if (mark[j]) out.push_back('_');
      out.push_back(char(std::tolower(static_cast<unsigned char>(n[j]))));
    }
    return out;
  }

  // The name summary() gives layer I ("conv2d_0", "batch_normalization_1"): Keras's snake-case
  // name of its class and its index.
  template <std::size_t I>
  static std::string layer_label() {
    return snake_case(layer<I>::name) + "_" + std::to_string(I);
  }

  // Keras-style summary table; a Graph's has Keras's functional "Connected to" column. Param #
  // counts a layer's parameters and its non-trainable state (BatchNormalization: 4C, as Keras).
  void summary(std::ostream& os) const {
    const bool graph = Style == ModelStyle::functional;
    struct Row {
      std::string layer, shape, params, from;
    };
    std::vector<Row> rows;
    if (graph) rows.push_back({" input_layer (InputLayer)", input_shape::str(), "0", "-"});
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      Row r;
      r.layer.append(" ").append(layer_label<I>()).append(" (").append(L::name).append(")");
      r.shape = L::output_shape::str();
      r.params = group_thousands(L::param_count + state_count_of<L>());
      for (std::size_t t : node<I>::inputs) {
        if (!r.from.empty()) r.from += ", ";
        r.from += t == 0 ? std::string("input_layer") : tensor_label(t);
      }
      rows.push_back(std::move(r));
    });
    // Columns as wide as Keras's (30, 28, 12) or as their longest entry and two spaces.
    std::size_t w0 = 30, w1 = 28, w2 = 12, w3 = 12;
    for (const Row& r : rows) {
      w0 = std::max(w0, r.layer.size() + 2);
      w1 = std::max(w1, r.shape.size() + 2);
      w2 = std::max(w2, r.params.size() + 2);
      w3 = std::max(w3, r.from.size());
    }
    const std::size_t width = graph ? std::max<std::size_t>(96, w0 + w1 + w2 + w3)
                                    : std::max<std::size_t>(72, w0 + w1 + w2);
    const auto line = [&](char c) { os << std::string(width, c) << '\n'; };
    os << "Model: \"" << (graph ? "functional" : "sequential") << "\" (ctnn, Highway target "
       << simd_target() << ", " << max_threads() << " threads)\n";
    line('_');
    os << std::left << std::setw(int(w0)) << " Layer (type)" << std::setw(int(w1)) << "Output Shape";
    if (graph) os << std::setw(int(w2)) << "Param #" << "Connected to\n";
    else os << "Param #\n";
    line('=');
    for (const Row& r : rows) {
      os << std::setw(int(w0)) << r.layer << std::setw(int(w1)) << r.shape;
      if (graph) os << std::setw(int(w2)) << r.params << r.from << '\n';
      else os << r.params << '\n';
    }
    line('=');
    const auto mb = [](std::size_t n) {
      std::ostringstream s;
      s << std::fixed << std::setprecision(2) << double(n * sizeof(T)) / (1024.0 * 1024.0);
      return s.str();
    };
    os << "Total params: " << group_thousands(param_count + state_count) << " ("
       << mb(param_count + state_count) << " MB)\n"
       << "Trainable params: " << group_thousands(param_count) << "\n"
       << "Non-trainable params: " << group_thousands(state_count) << "\n";
    line('_');
  }

 private:
  static std::string tensor_label(std::size_t t) {
    std::string s;
    static_for<N>([&]<std::size_t I>() {
      if (I + 1 == t) s = layer_label<I>();
    });
    return s;
  }

  // The context layer I sees: the step's, with a seed of its own, so that two random layers
  // (two Dropouts, two RandomFlips) draw independently within one step.
  template <std::size_t I>
  static PassContext layer_context(const PassContext& ctx) {
    return {ctx.training, ctx.seed ^ ((I + 1) * 0xA0761D6478BD642Full)};
  }

  // No observer (the operator is never called: `if constexpr` skips it; clang still looks it up).
  struct NoObserver {
    template <std::size_t I, std::size_t K>
    void operator()(const T*, std::size_t) const {}
  };
  template <bool Training, class Buffers, class Observe = NoObserver>
  static T* run_forward(const T* p, T* state, Buffers& ws, std::size_t n, const PassContext& ctx,
                        Observe* observe = nullptr) {
    static constexpr const ActPlan& a = Training ? train_plan : infer_plan;
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      if constexpr (!std::is_same_v<Observe, NoObserver>)
        static_for<node<I>::arity>([&]<std::size_t K>() {
          observe->template operator()<I, K>(
              static_cast<const T*>(ws.activation(a.offset[node<I>::inputs[K]])), n);
        });
      if constexpr (facts.view[I] || facts.fused[I]) {
        return;  // Flatten passes its buffer on; a fused ReLU already ran in the layer before.
      } else {
        T* y = ws.activation(a.offset[I + 1]);
        if constexpr (is_join<I>) {
          std::array<const T*, node<I>::arity> xs;
          for (std::size_t k = 0; k < node<I>::arity; ++k)
            xs[k] = ws.activation(a.offset[node<I>::inputs[k]]);
          if constexpr (facts.fuses_next[I]) L::forward(xs.data(), y, n, facts.next_epilogue[I]);
          else L::forward(xs.data(), y, n);
        } else {
          const T* x = ws.activation(a.offset[node<I>::inputs[0]]);
          T* s = ws.scratch(Training ? facts.scratch_offset[I] : 0);
          const PassContext lc = layer_context<I>(ctx);
          if constexpr (StatefulLayer<L> && facts.fuses_next[I])
            L::template forward<facts.next_epilogue[I]>(p + facts.param_offset[I],
                                                        state + facts.state_offset[I], x, y, n, s,
                                                        lc);
          else if constexpr (StatefulLayer<L>)
            L::forward(p + facts.param_offset[I], state + facts.state_offset[I], x, y, n, s, lc);
          else if constexpr (facts.fuses_next[I])
            L::forward(p + facts.param_offset[I], x, y, n, s, lc, facts.next_epilogue[I]);
          else
            L::forward(p + facts.param_offset[I], x, y, n, s, lc);
        }
      }
    });
    return ws.activation(a.offset[N]);
  }

  // Reads only params_ and state_ and writes only ws and out, so calls with different
  // workspaces may overlap.
  void predict_into(Workspace& ws, const T* x, std::size_t n, T* out) const {
    const PassContext ctx{};
    for (std::size_t b = 0; b < n; b += kInferenceChunk) {
      const std::size_t m = std::min(kInferenceChunk, n - b);
      ws.reserve(m, false);
      std::copy(x + b * input_size, x + (b + m) * input_size, ws.input());
      const T* y = forward(ws, m, ctx);
      std::copy(y, y + m * output_size, out + b * output_size);
    }
  }

  static_assert(all_used);
  AlignedBuffer<T> params_;
  AlignedBuffer<T> state_;
};

}  // namespace detail
}  // namespace ctnn
