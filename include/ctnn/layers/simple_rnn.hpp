// ctnn/layers/simple_rnn.hpp: SimpleRNN<Units, ReturnSequences, KernelInit, RecurrentInit,
// BiasInit>, a fully connected recurrent layer over sequences, as Keras's SimpleRNN.
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = 0:  h_t = tanh(x_t W + h_{t-1} R + b)
// (Keras's default activation; PyTorch's nn.RNN with weight_ih = W^T, weight_hh = R^T, bias_ih = b,
// bias_hh = 0). Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences every h_t
// (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features>.
// Parameters in Keras's layout and order: kernel W [Features x Units], recurrent_kernel
// R [Units x Units], bias b [Units]; Units (Features + Units + 1) in all. Init: Keras's defaults,
// Glorot uniform W (fan_in = Features, fan_out = Units), orthogonal R, zero b.
// How: as LSTM (layers/lstm.hpp): the input products of all steps as one GEMM, the recurrence per
// sample block with one GEMM per step, backpropagation through time, then the weight gradients
// as GEMMs over all samples and steps (layers/recurrent_base.hpp): the same bits at any thread
// count.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/recurrent.hpp"
#include "ctnn/layers/recurrent_base.hpp"

namespace ctnn {
namespace detail {
// ", KernelInit, RecurrentInit, BiasInit" for a recurrent layer's spec(), or "" for the defaults.
template <class KernelInit, class RecurrentInit, class BiasInit>
std::string recurrent_init_spec() {
  if constexpr (std::is_same_v<KernelInit, init::GlorotUniform> &&
                std::is_same_v<RecurrentInit, init::Orthogonal> &&
                std::is_same_v<BiasInit, init::Zeros>)
    return "";
  else
    return ", " + std::string(KernelInit::spec) + ", " + std::string(RecurrentInit::spec) + ", " +
           std::string(BiasInit::spec);
}
}  // namespace detail

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros>
struct SimpleRNN {
  static_assert(Units >= 1, "SimpleRNN<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "SimpleRNN's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "SimpleRNN needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t G = Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = Units * (features + Units + 1);
    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    // Scratch per sample: accumulators, z (then h, then dz) and h_{t-1} per step, dh.
    static constexpr std::size_t scratch_per_sample =
        gemms::acc_per_sample + 2 * steps * Units + Units;
    static constexpr std::string_view name = "SimpleRNN";
    static constexpr LayerKind kind = LayerKind::simple_rnn;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      return "ctnn::SimpleRNN<" + std::to_string(Units) + ", " +
             (ReturnSequences ? "true" : "false") +
             detail::recurrent_init_spec<KernelInit, RecurrentInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static constexpr std::size_t w_off = 0, r_off = features * Units, b_off = r_off + Units * Units;
    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * Units, features, Units, rng);
      RecurrentInit::fill(p + r_off, Units * Units, Units, Units, rng);
      BiasInit::fill(p + b_off, Units, features, Units, rng);
    }

    struct Regions {
      T *acc, *z, *hp, *dh;
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.z = r.acc + n * gemms::acc_per_sample;
      r.hp = r.z + n * steps * Units;
      r.dh = r.hp + n * steps * Units;
      return r;
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const Regions s = regions(scratch, n);
      gemms::input_products(n, G, x, p + w_off, p + b_off, s.z);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            gemms::zero_first_state(s0, s1, s.hp);
            for (std::size_t t = 0; t < steps; ++t) {
              if (t > 0) gemms::step_product(s0, s1, t, G, s.hp, p + r_off, s.z, true, nullptr);
              for (std::size_t b = s0; b < s1; ++b) {
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::rnn_cell_forward(Units, s.z + (b * steps + t) * G, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b)
                kernels::rnn_cell_backward(Units, s.z + (b * steps + t) * G,
                                           gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                           t + 1 < steps ? s.dh + b * Units : nullptr);
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.z, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.z, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.z, dp + r_off);
    }

    // One step of this layer (deploy/streaming.hpp's StreamingModel): input Shape<features>,
    // output Shape<Units>, the same parameters; h lives in the state arena between calls and
    // advances by one step per row (n rows are n consecutive steps). The products and the cell
    // are the whole-sequence pass's, in the same order, so a streamed sequence gives its bits.
    // Inference only: it has no backward (train the whole-sequence layer).
    struct step {
      using value_type = T;
      using input_shape = Shape<features>;
      using output_shape = Shape<Units>;
      static constexpr std::size_t param_count = bind::param_count;
      static constexpr std::size_t state_count = Units;
      static constexpr std::size_t scratch_per_sample = G;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        for (std::size_t r = 0; r < n; ++r) {
          T* z = scratch;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, z, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, z, G, true,
                           static_cast<const T*>(nullptr), kernels::Epilogue::none);
          kernels::rnn_cell_forward(Units, z, y + r * Units, h);
        }
      }
      template <class Never = void>
      static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                           const PassContext&) {
        static_assert(sizeof(Never) == 0, "A recurrent layer's one-step form cannot be trained: "
                                          "train the whole-sequence model.");
      }
    };
  };
};

}  // namespace ctnn
