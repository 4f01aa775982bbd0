// ctnn/layers/embedding.hpp: Embedding<Vocab, Dim, Init>, integer tokens to vectors, as Keras's
// Embedding.
//
// Represents y[t] = E[x[t]] for each position t of a sequence of token ids x (Shape<Steps>, or
// any shape: every input value is one token): output Shape<Steps, Dim> (the input's dimensions
// followed by Dim).
// Requires: each input value is a whole number in [0, Vocab), carried in the float input (exact
// for every id below 2^24, which Vocab may not exceed); anything else (a fraction, a negative
// id, NaN, an id >= Vocab) stops forward with a ctnn::Error naming the sample, the position and
// the value.
// Parameters: the table E [Vocab x Dim], Keras's `embeddings`. Init: Keras's default, uniform on
// [-0.05, 0.05] (init::EmbeddingUniform); any initializer may replace it (fan_in = Vocab,
// fan_out = Dim).
// Backward: dE[v] = sum of dy over every position whose token is v, in sample and position order
// (the same bits at any thread count); the input has no gradient (dx, when asked for, is zero).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include "ctnn/core/error.hpp"
#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {
namespace init {
// Keras's Embedding default: uniform on [-0.05, 0.05].
struct EmbeddingUniform {
  static constexpr std::string_view spec = "ctnn::init::EmbeddingUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t, std::size_t, Rng& rng) {
    detail::uniform(w, count, 0.05, rng);
  }
};
}  // namespace init

template <std::size_t Vocab, std::size_t Dim, class Init = init::EmbeddingUniform>
struct Embedding {
  static_assert(Vocab >= 1 && Dim >= 1, "Embedding<Vocab, Dim> needs a vocabulary and a dimension of at least 1.");
  static_assert(Vocab <= (std::size_t{1} << 24),
                "Embedding's token ids travel in the float input, which holds every whole number "
                "only up to 2^24: a vocabulary above 16,777,216 tokens cannot be carried exactly.");
  static_assert(is_initializer_v<Init>,
                "Embedding's Init must be an initializer such as ctnn::init::EmbeddingUniform (the "
                "list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    template <class S>
    struct append;
    template <std::size_t... D>
    struct append<Shape<D...>> {
      using type = Shape<D..., Dim>;
    };
    using value_type = T;
    using input_shape = In;
    using output_shape = typename append<In>::type;
    static constexpr std::size_t positions = In::size;
    static constexpr std::size_t param_count = Vocab * Dim;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = "Embedding";
    static constexpr LayerKind kind = LayerKind::embedding;
    static std::string config() { return std::to_string(Vocab) + "x" + std::to_string(Dim); }
    static std::string spec() {
      std::string s = "ctnn::Embedding<" + std::to_string(Vocab) + ", " + std::to_string(Dim);
      if constexpr (!std::is_same_v<Init, init::EmbeddingUniform>) s.append(", ").append(Init::spec);
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) { Init::fill(p, Vocab * Dim, Vocab, Dim, rng); }
    // One position at a time (deploy/streaming.hpp): the same table on a one-token input.
    using step = typename Embedding::template bind<Shape<1>, T>;

    // The token id at x[i], checked (i = sample * positions + position).
    static std::size_t token(const T* x, std::size_t i) {
      const T v = x[i];
      if (!(v >= T(0) && v < T(Vocab) && std::floor(v) == v))
        fail("Embedding<", Vocab, ", ", Dim, ">: sample ", i / positions, " position ",
             i % positions, " holds ", v, ", which is not a token id (a whole number in [0, ",
             Vocab, ")).");
      return static_cast<std::size_t>(v);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      for (std::size_t i = 0; i < n * positions; ++i) {
        const T* row = p + token(x, i) * Dim;
        std::copy(row, row + Dim, y + i * Dim);
      }
    }

    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T*, const PassContext&) {
      std::fill(dp, dp + param_count, T(0));
      for (std::size_t i = 0; i < n * positions; ++i) {
        T* row = dp + static_cast<std::size_t>(x[i]) * Dim;  // checked by forward
        const T* g = dy + i * Dim;
        for (std::size_t k = 0; k < Dim; ++k) row[k] += g[k];
      }
      if (dx) std::fill(dx, dx + n * positions, T(0));
    }
  };
};

}  // namespace ctnn
