// ctnn/layers/lstm.hpp: LSTM<Units, ReturnSequences, KernelInit, RecurrentInit, BiasInit,
// UnitForgetBias>, a long short-term memory layer over sequences, as Keras's LSTM.
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = c_{-1} = 0:
//   z_t = x_t W + h_{t-1} R + b                       (4 * Units gate pre-activations)
//   i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_c), o = sigmoid(z_o)
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
// with Keras's defaults (activation tanh, recurrent_activation sigmoid, use_bias, no dropout).
// Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences every h_t (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features> (Input<Steps, Features>, or a Reshape to it).
// Parameters in Keras's layout and order: kernel W [Features x 4 Units], recurrent_kernel
// R [Units x 4 Units], bias b [4 Units], the gates in the order i, f, c, o along each row;
// 4 Units (Features + Units + 1) in all, as Keras counts. Init: KernelInit fills W (fan_in =
// Features, fan_out = 4 Units), RecurrentInit fills R (fan_in = Units), BiasInit fills b and, with
// UnitForgetBias, the forget gate's bias is 1 (Keras's unit_forget_bias). The defaults are
// Keras's: Glorot uniform, orthogonal, zeros, unit forget bias. The same weights give PyTorch's
// nn.LSTM with weight_ih = W^T, weight_hh = R^T, bias_ih = b, bias_hh = 0 (its gate order i, f,
// g, o is Keras's).
//
// How: the input products of all steps are one GEMM (x [batch*Steps x Features] times W, bias
// added in it). The recurrence then runs per sample block, one block per thread: each step adds
// h_{t-1} R (a GEMM of the block's rows) and applies the cell (kernels/recurrent.hpp). Backward
// (through time) runs the steps in reverse per block, carrying dh and dc, with the recurrent
// gradient dh_{t-1} = dz_t R^T as a GEMM; then dW = x^T dz, dR = h_prev^T dz, db = sum dz and
// dx = dz W^T are each one GEMM over all samples and steps, summed in sample-and-step order. No
// sum depends on the block split, so training gives the same bits at any thread count.
// Scratch (kept from forward to backward, per sample): the gates (4 Steps Units), c, tanh(c) and
// h_{t-1} (3 Steps Units each), dh and dc (2 Units), and the GEMM accumulators.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/recurrent.hpp"
#include "ctnn/layers/recurrent_base.hpp"

namespace ctnn {

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros,
          bool UnitForgetBias = true>
struct LSTM {
  static_assert(Units >= 1, "LSTM<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "LSTM's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "LSTM needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t U = Units, G = 4 * Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = G * (features + Units + 1);

    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    static constexpr std::size_t acc_per_sample = gemms::acc_per_sample;
    static constexpr std::size_t scratch_per_sample =
        acc_per_sample + steps * G + 3 * steps * Units + 2 * Units;
    static constexpr std::string_view name = "LSTM";
    static constexpr LayerKind kind = LayerKind::lstm;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      std::string s = "ctnn::LSTM<" + std::to_string(Units) + ", " +
                      (ReturnSequences ? "true" : "false");
      constexpr bool defaults = std::is_same_v<KernelInit, init::GlorotUniform> &&
                                std::is_same_v<RecurrentInit, init::Orthogonal> &&
                                std::is_same_v<BiasInit, init::Zeros> && UnitForgetBias;
      if (!defaults) {
        s.append(", ").append(KernelInit::spec).append(", ").append(RecurrentInit::spec);
        s.append(", ").append(BiasInit::spec).append(UnitForgetBias ? ", true" : ", false");
      }
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    // Offsets of the parameter blocks and of the scratch regions for a batch of n.
    static constexpr std::size_t w_off = 0, r_off = features * G, b_off = r_off + Units * G;
    struct Regions {
      T* acc;  // n * acc_per_sample
      T* z;    // [n][steps][4U] gates (pre-activation, activation, then dz)
      T* c;    // [n][steps][U] cell states
      T* tc;   // [n][steps][U] tanh(c)
      T* hp;   // [n][steps][U] h_{t-1} (zero at t = 0)
      T* dh;   // [n][U] dh arriving from the next step
      T* dc;   // [n][U] dc arriving from the next step
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.z = r.acc + n * acc_per_sample;
      r.c = r.z + n * steps * G;
      r.tc = r.c + n * steps * Units;
      r.hp = r.tc + n * steps * Units;
      r.dh = r.hp + n * steps * Units;
      r.dc = r.dh + n * Units;
      return r;
    }

    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * G, features, G, rng);
      RecurrentInit::fill(p + r_off, Units * G, Units, G, rng);
      BiasInit::fill(p + b_off, G, features, G, rng);
      if constexpr (UnitForgetBias)
        for (std::size_t j = 0; j < Units; ++j) p[b_off + Units + j] = T(1);
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
                const std::size_t row = b * steps + t;
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::lstm_cell_forward(Units, s.z + row * G,
                                           t > 0 ? s.c + (row - 1) * Units : nullptr,
                                           s.c + row * Units, s.tc + row * Units, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      // Through time, per sample block: s.z becomes dz.
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            std::fill(s.dc + s0 * Units, s.dc + s1 * Units, T(0));
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                kernels::lstm_cell_backward(Units, s.z + row * G,
                                            t > 0 ? s.c + (row - 1) * Units : nullptr,
                                            s.tc + row * Units,
                                            gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                            t + 1 < steps ? s.dh + b * Units : nullptr,
                                            s.dc + b * Units);
              }
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.z, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.z, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.z, dp + r_off);
    }

    // One step of this layer (deploy/streaming.hpp's StreamingModel): input Shape<features>,
    // output Shape<Units>, the same parameters; h and c live in the state arena between calls and
    // advances by one step per row (n rows are n consecutive steps). The products and the cell
    // are the whole-sequence pass's, in the same order, so a streamed sequence gives its bits.
    // Inference only: it has no backward (train the whole-sequence layer).
    struct step {
      using value_type = T;
      using input_shape = Shape<features>;
      using output_shape = Shape<Units>;
      static constexpr std::size_t param_count = bind::param_count;
      static constexpr std::size_t state_count = 2 * Units;
      static constexpr std::size_t scratch_per_sample = G + 2 * Units;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        if (kernels::lstm_step_fusable<T>(Units)) {  // one pass: products and cell in registers
          T* c = state + Units;
          for (std::size_t r = 0; r < n; ++r) {
            kernels::lstm_step(features, Units, x + r * features, p + w_off, p + b_off, h,
                               p + r_off, c, y + r * Units);
            std::copy(y + r * Units, y + (r + 1) * Units, h);
          }
          return;
        }
        for (std::size_t r = 0; r < n; ++r) {
          // z = x W + b, then z += h R (forward's two products); the cell reads c and writes
          // the new c to scratch, which then replaces it.
          T* z = scratch;
          T* c = state + Units;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, z, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, z, G, true,
                           static_cast<const T*>(nullptr), kernels::Epilogue::none);
          kernels::lstm_cell_forward(Units, z, c, z + G, z + G + Units, y + r * Units, h);
          std::copy(z + G, z + G + Units, c);
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
