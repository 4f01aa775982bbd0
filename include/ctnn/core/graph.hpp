// ctnn/core/graph.hpp: Graph<Input<...>, Specs...>, a model whose topology is a DAG, still a type.
//
//   struct Stem;  // any type names a tensor
//   using Net = ctnn::Graph<ctnn::Input<28, 28, 1>,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>, ctnn::ReLU, ctnn::Tag<Stem>,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>, ctnn::ReLU,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>,
//       ctnn::Add<Stem>, ctnn::ReLU, ctnn::Flatten, ctnn::Dense<10>, ctnn::Softmax>;
//
// The specs are read left to right with a CURRENT tensor (the input at first):
//   a layer spec (Dense<10>)      applies to the current tensor; its output becomes current
//   Tag<Name>                     names the current tensor (a later Tag of the same Name moves
//                                 the name)
//   From<Name>                    makes the named tensor current (to start a branch)
//   Add<Names...>                 current + the named tensors (same shape), left to right
//   Concatenate<Names...>         current, then the named tensors, along the last axis
//   Residual<Block<Body...>, Block<Shortcut...>>
//                                 body(x) + shortcut(x) of the current x (Block<> is the
//                                 identity), i.e. Tag, Body..., Tag, From, Shortcut..., Add
// The last spec's tensor is the output (one output), and every layer must reach it. The Graph
// lowers to the node list of core/model.hpp, the planner Sequential runs on too: same arena,
// same fusion (only where a producer has a single consumer), liveness-planned buffers.
// deploy/ takes Graphs as Sequentials: quantize (BatchNormalization folded), export_header (which
// writes the NodeGraph form below), StaticModel and StaticQuantizedModel.
#pragma once
#include <cstddef>
#include <tuple>
#include <type_traits>

#include "ctnn/core/model.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/layers/add.hpp"
#include "ctnn/layers/concatenate.hpp"

namespace ctnn {

template <class Name>
struct Tag {};
template <class Name>
struct From {};
template <class... Specs>
struct Block {};
template <class Body, class Shortcut = Block<>>
struct Residual {
  static_assert(sizeof(Body) == 0,
                "Residual takes two ctnn::Block<...> lists: Residual<Block<body...>, "
                "Block<shortcut...>> (an empty Block<> shortcut is the identity).");
};
template <class... Body, class... Shortcut>
struct Residual<Block<Body...>, Block<Shortcut...>> {};

// Named in the error when From, Add or Concatenate names a tensor no Tag named before. The
// check is a function whose address the lookup takes: its body (the error) is instantiated, while
// the lookup's value stays a constant, so no second error follows (with g++ or clang).
template <class Name>
struct No_tensor_is_tagged {
  static void check() {
    static_assert(detail::always_false_v<Name>,
                  "From, Add and Concatenate name a tensor tagged earlier with ctnn::Tag<Name>; the "
                  "Name in No_tensor_is_tagged<Name> has not been tagged before this point.");
  }
};

namespace detail {

template <class Name, std::size_t Id>
struct Binding {
  using name = Name;
  static constexpr std::size_t id = Id;
};

template <class Name, class Env>
struct LookupTensor;
template <class Name, class... B>
struct LookupTensor<Name, std::tuple<B...>> {
  static constexpr std::size_t found = [] {
    std::size_t r = ~std::size_t{0};
    ((r = std::is_same_v<Name, typename B::name> ? B::id : r), ...);
    return r;
  }();
  struct Tagged {
    static void check() {}
  };
  static constexpr void (*checked)() =
      &std::conditional_t<found != ~std::size_t{0}, Tagged, No_tensor_is_tagged<Name>>::check;
  static constexpr std::size_t value = found;
};

// The tensor tagged Name, or (after the error) the current one, so that no second error follows.
template <class Name, class Env, std::size_t Cur>
inline constexpr std::size_t tensor_of =
    (LookupTensor<Name, Env>::checked, LookupTensor<Name, Env>::value == ~std::size_t{0})
        ? Cur
        : LookupTensor<Name, Env>::value;

// The shape of tensor t (0 = the input) given the nodes so far.
template <std::size_t t, class In, class Nodes>
struct TensorShape {
  using type = typename std::tuple_element_t<t - 1, Nodes>::layer::output_shape;
};
template <class In, class Nodes>
struct TensorShape<0, In, Nodes> {
  using type = In;
};
template <std::size_t t, class In, class Nodes>
using tensor_shape = typename TensorShape<t, In, Nodes>::type;

template <class Residual, std::size_t Depth>
struct ResidualInput {};
template <class Residual, std::size_t Depth>
struct ResidualBody {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Specs>
struct LowerGraph {
  using nodes = Nodes;
  static constexpr std::size_t current = Cur;
};

template <class Nodes, class NewNode>
using append_node = decltype(std::tuple_cat(std::declval<Nodes>(), std::declval<std::tuple<NewNode>>()));

// A layer spec.
template <class T, class In, std::size_t Cur, class Env, class Nodes, class S, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, S, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename BindOne<S, tensor_shape<Cur, In, Nodes>, T>::type, Cur>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class Name, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Tag<Name>, Rest...>
    : LowerGraph<T, In, Cur,
                 decltype(std::tuple_cat(std::declval<Env>(), std::declval<std::tuple<Binding<Name, Cur>>>())),
                 Nodes, Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class Name, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, From<Name>, Rest...>
    : LowerGraph<T, In, tensor_of<Name, Env, Cur>, Env, Nodes, Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Names, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Add<Names...>, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename Add<Names...>::template bind_join<
                                             T, tensor_shape<Cur, In, Nodes>,
                                             tensor_shape<tensor_of<Names, Env, Cur>, In, Nodes>...>,
                                         Cur, tensor_of<Names, Env, Cur>...>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Names, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Concatenate<Names...>, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename Concatenate<Names...>::template bind_join<
                                             T, tensor_shape<Cur, In, Nodes>,
                                             tensor_shape<tensor_of<Names, Env, Cur>, In, Nodes>...>,
                                         Cur, tensor_of<Names, Env, Cur>...>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Body,
          class... Shortcut, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Residual<Block<Body...>, Block<Shortcut...>>, Rest...>
    : LowerGraph<T, In, Cur, Env, Nodes,
                 Tag<ResidualInput<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Body...,
                 Tag<ResidualBody<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 From<ResidualInput<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Shortcut...,
                 Add<ResidualBody<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Rest...> {};

template <class T, class In, class... Specs>
struct GraphBase {
  using lowered = LowerGraph<T, In, 0, std::tuple<>, std::tuple<>, Specs...>;
  using nodes = typename lowered::nodes;
  static_assert(std::tuple_size_v<nodes> >= 1, "A Graph model needs at least one layer after Input.");
  static_assert(std::tuple_size_v<nodes> == 0 || lowered::current == std::tuple_size_v<nodes>,
                "A Graph's output is its last spec's tensor, which must be the last layer's: end "
                "it with a layer, Add or Concatenate (not a From).");
  // The joins' shape checks, here rather than inside the lowering so their errors are short.
  template <class Node>
  static constexpr bool verify_node() {
    if constexpr (requires { Node::layer::verify(); }) return Node::layer::verify();
    else return true;
  }
  template <class... Ns>
  static constexpr bool verify(std::tuple<Ns...>*) {
    return (verify_node<Ns>() && ...);
  }
  static constexpr bool joins_ok = verify(static_cast<nodes*>(nullptr));
  using type = ModelCore<T, In, nodes, ModelStyle::functional>;
};

}  // namespace detail

template <class T, class InputSpec, class... Specs>
class BasicGraph {
  static_assert(sizeof(T) == 0, "A Graph model starts with ctnn::Input<dims...>, then its specs.");
};

template <class T, std::size_t... InDims, class... Specs>
class BasicGraph<T, Input<InDims...>, Specs...>
    : public detail::GraphBase<T, Shape<InDims...>, Specs...>::type {
  static_assert(detail::GraphBase<T, Shape<InDims...>, Specs...>::joins_ok || true);

 public:
  // The lowered model (its node list): the same type for a Graph and its NodeGraph form.
  using Base = typename detail::GraphBase<T, Shape<InDims...>, Specs...>::type;
  using Base::Base;
};

// A float graph: the type users write.
template <class InputSpec, class... Specs>
using Graph = BasicGraph<float, InputSpec, Specs...>;

// The same graphs written node by node, each naming the tensors it reads by number (0 the input,
// k + 1 the output of the k-th At): At<Spec, Inputs...> applies a layer spec to one tensor, or a
// join (Add<>, Concatenate<>) to several, in that order. The form export_header writes (tensor
// names are the user's own types and cannot be spelled in a generated header); a Graph and its
// node form lower to the same node list, so they share layout, topology() and topology_hash, and
// one's saved parameters load into the other.
//   using Net = ctnn::NodeGraph<ctnn::Input<8>, ctnn::At<ctnn::Dense<8>, 0>, ctnn::At<ctnn::ReLU, 1>,
//                               ctnn::At<ctnn::Add<>, 2, 0>, ctnn::At<ctnn::Dense<2>, 3>>;
template <class Spec, std::size_t... Inputs>
struct At {
  static_assert(sizeof...(Inputs) >= 1, "At<Spec, Inputs...> names at least one input tensor.");
};

// Named in the error when an At reads a tensor not computed before it.
template <std::size_t Node, std::size_t Tensor>
struct NodeGraph_reads_a_later_tensor {
  static constexpr bool value = false;
};

namespace detail {

template <class T, class In, class Nodes, class S, std::size_t... Ins>
struct BindAt;
template <class T, class In, class Nodes, class S, std::size_t I0>
struct BindAt<T, In, Nodes, S, I0> {
  using type = typename BindOne<S, tensor_shape<I0, In, Nodes>, T>::type;
};
template <class T, class In, class Nodes, class S, std::size_t I0, std::size_t I1, std::size_t... Is>
struct BindAt<T, In, Nodes, S, I0, I1, Is...> {
  using type = typename S::template bind_join<T, tensor_shape<I0, In, Nodes>,
                                              tensor_shape<I1, In, Nodes>, tensor_shape<Is, In, Nodes>...>;
};

template <class T, class In, class Nodes, class... Ats>
struct LowerNodes {
  using nodes = Nodes;
};
template <class T, class In, class Nodes, class S, std::size_t... Ins, class... Rest>
struct LowerNodes<T, In, Nodes, At<S, Ins...>, Rest...> {
  static constexpr std::size_t k = std::tuple_size_v<Nodes>;
  static constexpr bool ordered = [] {
    bool ok = true;
    ((ok = ok && (Ins <= k || NodeGraph_reads_a_later_tensor<k, Ins>::value)), ...);
    return ok;
  }();
  static_assert(ordered, "Each At<Spec, Inputs...> of a NodeGraph reads the input (0) or the output "
                         "of an earlier At (k + 1 for the k-th); the one named in "
                         "NodeGraph_reads_a_later_tensor<node, tensor> reads a later tensor.");
  using nodes = typename LowerNodes<T, In,
                                    append_node<Nodes, Node<typename BindAt<T, In, Nodes, S, (ordered ? Ins : 0)...>::type, Ins...>>,
                                    Rest...>::nodes;
};

template <class T, class In, class... Ats>
struct NodeGraphBase {
  using nodes = typename LowerNodes<T, In, std::tuple<>, Ats...>::nodes;
  static_assert(std::tuple_size_v<nodes> >= 1, "A NodeGraph needs at least one At after Input.");
  template <class... Ns>
  static constexpr bool verify(std::tuple<Ns...>*) {
    return ([] {
      if constexpr (requires { Ns::layer::verify(); }) return Ns::layer::verify();
      else return true;
    }() && ...);
  }
  static constexpr bool joins_ok = verify(static_cast<nodes*>(nullptr));
  using type = ModelCore<T, In, nodes, ModelStyle::functional>;
};

}  // namespace detail

template <class T, class InputSpec, class... Ats>
class BasicNodeGraph {
  static_assert(sizeof(T) == 0, "A NodeGraph starts with ctnn::Input<dims...>, then its At<...> nodes.");
};
template <class T, std::size_t... InDims, class... Ats>
class BasicNodeGraph<T, Input<InDims...>, Ats...>
    : public detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::type {
  static_assert(detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::joins_ok || true);

 public:
  using Base = typename detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::type;
  using Base::Base;
};
template <class InputSpec, class... Ats>
using NodeGraph = BasicNodeGraph<float, InputSpec, Ats...>;

}  // namespace ctnn
