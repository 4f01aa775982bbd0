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
// deploy/ (quantize, export_header, StaticModel) accepts Sequential models only for now.
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
  using Base = typename detail::GraphBase<T, Shape<InDims...>, Specs...>::type;
  static_assert(detail::GraphBase<T, Shape<InDims...>, Specs...>::joins_ok || true);

 public:
  using Base::Base;
};

// A float graph: the type users write.
template <class InputSpec, class... Specs>
using Graph = BasicGraph<float, InputSpec, Specs...>;

}  // namespace ctnn
