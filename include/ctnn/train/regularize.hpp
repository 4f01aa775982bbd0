// ctnn/train/regularize.hpp: kernel regularizers (Keras's kernel_regularizer), and where a
// layer's kernel lies among its parameters.
//
// A user attaches a regularizer by wrapping a layer spec:
//     ctnn::Regularized<ctnn::Conv2D<16, 3, 3>, ctnn::L2<1, 10000>>     // l2 = 1e-4
// The wrapper binds to the wrapped layer itself (same parameters, forward, backward, kind and
// fusions) and adds `using regularizer = R`. Training (Trainer, fit) then adds, as Keras does,
//   L2<N, D>:           l2 * sum(W^2)               to the loss, 2 * l2 * W       to the gradient
//   L1<N, D>:           l1 * sum(|W|)               to the loss, l1 * sign(W)     to the gradient
//   L1L2<N1, D1, N2, D2>: both (l1 = N1/D1, l2 = N2/D2)
// with l = N / D (a ratio: clang 14 has no float template parameters), over the layer's kernel
// only, not its bias. The penalty is computed from the weights the step's forward pass used, so
// the reported training loss is the mean loss of the batch plus the penalty, as Keras reports it;
// evaluate() and validation losses add the penalty at the evaluated weights, as Keras's test
// step does. Sums are in double in arena order.
//
// The kernel of a bound layer L is its first kernel_count<L> parameters: a layer declares
//     static constexpr std::size_t kernel_count = ...;
// or, without one, a Dense has param_count - units (W before b) and a Conv2D param_count -
// filters; any other layer has none (0). Regularized refuses a layer without a kernel.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/optim/clipping.hpp"

namespace ctnn {

namespace detail {

template <class L>
constexpr std::size_t kernel_count_of() {
  if constexpr (requires { { L::kernel_count } -> std::convertible_to<std::size_t>; })
    return L::kernel_count;
  else if constexpr (layer_kind<L> == LayerKind::dense)
    return L::param_count - L::output_shape::size;
  else if constexpr (layer_kind<L> == LayerKind::conv2d)
    return L::param_count - L::output_shape::dims[L::output_shape::rank - 1];
  else
    return 0;
}

template <std::uint64_t N, std::uint64_t D>
inline constexpr double ratio = D > 0 ? double(N) / double(D) : 0.0;

}  // namespace detail

// Parameters at the start of bound layer L that form its kernel (0: none).
template <class L>
inline constexpr std::size_t kernel_count = detail::kernel_count_of<L>();

// l1 * sum(|W|) + l2 * sum(W^2), and its gradient l1 * sign(W) + 2 * l2 * W.
template <std::uint64_t N1, std::uint64_t D1, std::uint64_t N2, std::uint64_t D2>
struct L1L2 {
  // Instantiated by Regularized (a function, so that the class stays usable after the error and
  // no second error follows).
  static void check() {
    static_assert(D1 > 0 && D2 > 0, "A regularizer's factor N / D needs a denominator D >= 1.");
  }
  static constexpr double l1 = detail::ratio<N1, D1>;
  static constexpr double l2 = detail::ratio<N2, D2>;

  template <class T>
  static double penalty(const T* w, std::size_t n) {
    double s1 = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      s1 += std::abs(double(w[i]));
      s2 += double(w[i]) * double(w[i]);
    }
    return (l1 != 0 ? l1 * s1 : 0.0) + (l2 != 0 ? l2 * s2 : 0.0);
  }
  template <class T>
  static void add_gradient(const T* w, T* g, std::size_t n) {
    const T a = T(l1), b = T(2 * l2);
    for (std::size_t i = 0; i < n; ++i) {
      const T sign = w[i] > T(0) ? T(1) : (w[i] < T(0) ? T(-1) : w[i] * T(0));  // NaN stays NaN
      if constexpr (l1 != 0) g[i] += a * sign;
      if constexpr (l2 != 0) g[i] += b * w[i];
    }
  }
  static std::string spec() {
    return "l1 " + std::to_string(N1) + "/" + std::to_string(D1) + ", l2 " + std::to_string(N2) +
           "/" + std::to_string(D2);
  }
};

template <std::uint64_t N, std::uint64_t D>
struct L2 : L1L2<0, 1, N, D> {};
template <std::uint64_t N, std::uint64_t D>
struct L1 : L1L2<N, D, 0, 1> {};

template <class R>
concept Regularizer = requires(const float* w, float* g, std::size_t n) {
  { R::penalty(w, n) } -> std::convertible_to<double>;
  R::add_gradient(w, g, n);
};

namespace detail {
// Instantiates R::check() (its static_asserts), if R has one.
template <class R>
constexpr bool run_regularizer_check() {
  if constexpr (requires { R::check(); }) {
    void (*f)() = &R::check;
    return f != nullptr;
  } else {
    return true;
  }
}
}  // namespace detail

// Spec wrapped with kernel regularizer R (see the top of this file).
template <class Spec, class R>
struct Regularized {
  static_assert(Regularizer<R>,
                "Regularized<Spec, R>: R must be a regularizer such as ctnn::L2<1, 10000>.");
  static_assert(detail::run_regularizer_check<R>());

  template <ShapeType In, class T>
  struct bind : Spec::template bind<In, T> {
    using base = typename Spec::template bind<In, T>;
    using regularizer = R;
    static constexpr std::size_t kernel_count = detail::kernel_count_of<base>();
    static_assert(kernel_count > 0,
                  "Regularized<Spec, R> needs a layer with a kernel (Dense, Conv2D, or a layer "
                  "declaring kernel_count): this one has none to regularize.");
  };
};

namespace detail {

template <class L>
concept HasRegularizer = requires { typename L::regularizer; };

// Every parameter tensor of Model (a kernel and a bias where the layer has a kernel; otherwise
// all of a layer's parameters as one), in arena order: what clipnorm clips one by one.
template <class Model>
std::vector<ParamTensor> param_tensors() {
  std::vector<ParamTensor> t;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    constexpr std::size_t off = Model::template param_offset<I>, c = L::param_count;
    constexpr std::size_t k = kernel_count_of<L>();
    if constexpr (c == 0) {
      return;
    } else if constexpr (k > 0 && k < c) {
      t.push_back({off, k});
      t.push_back({off + k, c - k});
    } else {
      t.push_back({off, c});
    }
  });
  return t;
}

// Adds every regularized layer's gradient term to grads (arena-sized) and returns the sum of
// their penalties at params.
template <class Model, class T>
double apply_regularizers(const T* params, T* grads) {
  double penalty = 0;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>) {
      constexpr std::size_t off = Model::template param_offset<I>;
      penalty += L::regularizer::penalty(params + off, L::kernel_count);
      L::regularizer::add_gradient(params + off, grads + off, L::kernel_count);
    }
  });
  return penalty;
}

// Adds the regularizers' gradient terms to grads[begin, begin + count) only (the part of
// apply_regularizers a fused update applies to one range; elementwise, so the same bits).
template <class Model, class T>
void add_regularizer_gradients(const T* params, T* grads, std::size_t begin, std::size_t count) {
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>) {
      constexpr std::size_t k0 = Model::template param_offset<I>, k1 = k0 + L::kernel_count;
      const std::size_t a = begin > k0 ? begin : k0, b = begin + count < k1 ? begin + count : k1;
      if (a < b) L::regularizer::add_gradient(params + a, grads + a, b - a);
    }
  });
}

// The sum of every regularized layer's penalty at params (what evaluate() adds to the loss).
template <class Model, class T>
double regularization_penalty(const T* params) {
  double penalty = 0;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>)
      penalty += L::regularizer::penalty(params + Model::template param_offset<I>, L::kernel_count);
  });
  return penalty;
}

template <class Model, std::size_t... I>
constexpr bool any_regularized(std::index_sequence<I...>) {
  return (HasRegularizer<typename Model::template layer<I>> || ...);
}

// Whether any layer of Model carries a regularizer.
template <class Model>
inline constexpr bool has_regularizers =
    any_regularized<Model>(std::make_index_sequence<Model::num_layers>{});

}  // namespace detail
}  // namespace ctnn
