// ctnn/layers/gru.hpp: GRU<Units, ReturnSequences, KernelInit, RecurrentInit, BiasInit>, a gated
// recurrent unit layer over sequences, as Keras's GRU (reset_after = True, its default).
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = 0, gates in Keras's order z, r, h:
//   x* = x_t W + b_input,  q* = h_{t-1} R + b_recurrent        (3 Units each)
//   z = sigmoid(xz + qz),  r = sigmoid(xr + qr),  hh = tanh(xh + r * qh)
//   h_t = z * h_{t-1} + (1 - z) * hh
// PyTorch's nn.GRU computes the same with its gates reordered (r, z, n): weight_ih = W^T and
// weight_hh = R^T with the first two blocks of Units swapped, bias_ih = b_input, bias_hh =
// b_recurrent (swapped likewise). Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences
// every h_t (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features>.
// Parameters in Keras's layout and order: kernel W [Features x 3 Units], recurrent_kernel
// R [Units x 3 Units], bias [2 x 3 Units] (the input bias, then the recurrent bias); 3 Units
// (Features + Units + 2) in all, as Keras counts. Init: Keras's defaults, Glorot uniform W
// (fan_in = Features, fan_out = 3 Units), orthogonal R, zero biases.
// How: as LSTM (layers/lstm.hpp), with the recurrent product kept apart from the input side's
// (reset_after multiplies it by r): one GEMM per step and sample block for h_{t-1} R + b_recurrent,
// the input products and the weight gradients as GEMMs over all samples and steps
// (layers/recurrent_base.hpp): the same bits at any thread count.
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
#include "ctnn/layers/simple_rnn.hpp"

namespace ctnn {

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros>
struct GRU {
  static_assert(Units >= 1, "GRU<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "GRU's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "GRU needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t G = 3 * Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = G * (features + Units + 2);
    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    // Scratch per sample: accumulators, both sides' gates per step, h_{t-1} per step, dh and
    // its direct part.
    static constexpr std::size_t scratch_per_sample =
        gemms::acc_per_sample + 2 * steps * G + steps * Units + 2 * Units;
    static constexpr std::string_view name = "GRU";
    static constexpr LayerKind kind = LayerKind::gru;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      return "ctnn::GRU<" + std::to_string(Units) + ", " + (ReturnSequences ? "true" : "false") +
             detail::recurrent_init_spec<KernelInit, RecurrentInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static constexpr std::size_t w_off = 0, r_off = features * G, b_off = r_off + Units * G,
                                 rb_off = b_off + G;
    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * G, features, G, rng);
      RecurrentInit::fill(p + r_off, Units * G, Units, G, rng);
      BiasInit::fill(p + b_off, 2 * G, features, G, rng);
    }

    struct Regions {
      T *acc, *gx, *q, *hp, *dh, *dhd;
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.gx = r.acc + n * gemms::acc_per_sample;
      r.q = r.gx + n * steps * G;
      r.hp = r.q + n * steps * G;
      r.dh = r.hp + n * steps * Units;
      r.dhd = r.dh + n * Units;
      return r;
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const Regions s = regions(scratch, n);
      gemms::input_products(n, G, x, p + w_off, p + b_off, s.gx);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            gemms::zero_first_state(s0, s1, s.hp);
            for (std::size_t t = 0; t < steps; ++t) {
              if (t > 0)
                gemms::step_product(s0, s1, t, G, s.hp, p + r_off, s.q, false, p + rb_off);
              else  // h_{-1} = 0: the recurrent side is its bias
                for (std::size_t b = s0; b < s1; ++b)
                  std::copy(p + rb_off, p + rb_off + G, s.q + b * steps * G);
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::gru_cell_forward(Units, s.gx + row * G, s.q + row * G,
                                          t > 0 ? s.hp + row * Units : nullptr, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      // Through time, per sample block: gx becomes the input side's gradient, q the recurrent
      // side's.
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            std::fill(s.dhd + s0 * Units, s.dhd + s1 * Units, T(0));
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                kernels::gru_cell_backward(Units, s.gx + row * G, s.q + row * G,
                                           t > 0 ? s.hp + row * Units : nullptr,
                                           gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                           t + 1 < steps ? s.dh + b * Units : nullptr,
                                           s.dhd + b * Units);
              }
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.q, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.gx, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.q, dp + r_off);
      kernels::sum_rows(n * steps, G, s.q, dp + rb_off);
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
      static constexpr std::size_t scratch_per_sample = 2 * G;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        for (std::size_t r = 0; r < n; ++r) {
          // x side: x W + b_input; recurrent side: h R + b_recurrent (forward's products).
          T* gx = scratch;
          T* q = scratch + G;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, gx, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, q, G, false, p + rb_off,
                           kernels::Epilogue::none);
          kernels::gru_cell_forward(Units, gx, q, h, y + r * Units, static_cast<T*>(nullptr));
          std::copy(y + r * Units, y + (r + 1) * Units, h);
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
