// ctnn/layers/recurrent_base.hpp: the matrix products the recurrent layers (SimpleRNN, LSTM, GRU)
// share, for a sequence input Shape<Steps, Features> and Units outputs per step.
//
// Layout every recurrent layer uses, per sample b and step t (row b * Steps + t):
//   z [rows x Gates]    the gates' input-side pre-activations x_t W + b, then (per layer) their
//                       activations, then in backward their gradients
//   hp [rows x Units]   h_{t-1}, zero at t = 0 (the recurrent product's input, kept for dR)
// The per-step products read and write the rows of one step of a block of samples (stride
// Steps rows); the products over all rows (input side, weight gradients, dx) run once per batch
// and sum over samples and steps in that order, whatever the thread split.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>

#include "ctnn/core/parallel.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"

namespace ctnn::detail {

template <class T, std::size_t Steps, std::size_t Features, std::size_t Units>
struct RecurrentGemms {
  static constexpr std::size_t kLanes = HWY_MAX_BYTES / sizeof(T);
  // gemm_nt accumulators per sample: for dh = dq R^T (a block's rows x Units) and for
  // dx = dz W^T (min(rows, 32) x Features over all rows; see kernels::gemm_nt_scratch).
  static constexpr std::size_t acc_per_sample =
      kLanes * std::max(Units, (Steps < kernels::kGemmNtRows ? Steps : kernels::kGemmNtRows) * Features);
  static constexpr const T* none = nullptr;

  // z [n*Steps x G] = x W + b, W [Features x G].
  static void input_products(std::size_t n, std::size_t G, const T* x, const T* W, const T* b,
                             T* z) {
    kernels::gemm_nn(n * Steps, G, Features, x, Features, 1, W, G, z, G, false, b,
                     kernels::Epilogue::none);
  }
  // For samples [s0, s1) at step t: out_t (+)= hp_t R (+ bias), R [Units x G]; out has rows of
  // G with stride Steps rows.
  static void step_product(std::size_t s0, std::size_t s1, std::size_t t, std::size_t G,
                           const T* hp, const T* R, T* out, bool accumulate, const T* bias) {
    kernels::gemm_nn(s1 - s0, G, Units, hp + (s0 * Steps + t) * Units, Steps * Units, 1, R, G,
                     out + (s0 * Steps + t) * G, Steps * G, accumulate, bias,
                     kernels::Epilogue::none);
  }
  // For samples [s0, s1) at step t: dh [n x Units] rows s0.. = dq_t R^T.
  static void step_gradient(std::size_t s0, std::size_t s1, std::size_t t, std::size_t G,
                            const T* dq, const T* R, T* dh, T* acc) {
    kernels::gemm_nt(s1 - s0, Units, G, dq + (s0 * Steps + t) * G, Steps * G, R, G,
                     dh + s0 * Units, Units, none, kernels::Epilogue::none,
                     acc + s0 * acc_per_sample);
  }
  // dW = x^T dz, db = column sums of dz, and unless dx is null dx = dz W^T.
  static void input_gradients(std::size_t n, std::size_t G, const T* x, const T* dz, const T* W,
                              T* dW, T* db, T* dx, T* acc) {
    const std::size_t rows = n * Steps;
    kernels::gemm_nn(Features, G, rows, x, 1, Features, dz, G, dW, G, false, none,
                     kernels::Epilogue::none);
    kernels::sum_rows(rows, G, dz, db);
    if (dx)
      kernels::gemm_nt(rows, Features, G, dz, G, W, G, dx, Features, none,
                       kernels::Epilogue::none, acc);
  }
  // dR = hp^T dq (the t = 0 rows of hp are zero and add nothing).
  static void recurrent_gradient(std::size_t n, std::size_t G, const T* hp, const T* dq, T* dR) {
    kernels::gemm_nn(Units, G, n * Steps, hp, 1, Units, dq, G, dR, G, false, none,
                     kernels::Epilogue::none);
  }
  // hp's t = 0 rows of samples [s0, s1) are zero.
  static void zero_first_state(std::size_t s0, std::size_t s1, T* hp) {
    for (std::size_t b = s0; b < s1; ++b)
      std::fill(hp + b * Steps * Units, hp + b * Steps * Units + Units, T(0));
  }
  // Where step t's h goes: hp's next row, and the output y when the step has one (every step with
  // return_sequences, the last step without). Returns {h, copy}: the cell writes h and, unless
  // null, a copy.
  template <bool ReturnSequences>
  static std::pair<T*, T*> outputs(std::size_t b, std::size_t t, T* hp, T* y) {
    const std::size_t row = b * Steps + t;
    const bool last = t + 1 == Steps;
    T* out = ReturnSequences ? y + row * Units : (last ? y + b * Units : nullptr);
    if (last) return {out, nullptr};
    return {hp + (row + 1) * Units, out};
  }
  // The gradient arriving at step t's output, or null when the step has no output.
  template <bool ReturnSequences>
  static const T* output_gradient(std::size_t b, std::size_t t, const T* dy) {
    if constexpr (ReturnSequences) return dy + (b * Steps + t) * Units;
    else return t + 1 == Steps ? dy + b * Units : nullptr;
  }
  static constexpr bool worth_threads(std::size_t n, std::size_t G) {
    return n * Steps * G * Units >= kParallelWork;
  }
};

}  // namespace ctnn::detail
