// ctnn/kernels/recurrent.hpp: the elementwise cell updates of the recurrent layers, one sample's
// row of one time step, vectorized along the units.
//
//   lstm_cell_forward   Keras's LSTM cell (gate order i, f, c, o; sigmoid gates, tanh cell):
//                         i = s(z_i), f = s(z_f), g = tanh(z_c), o = s(z_o)
//                         c = f * c_prev + i * g,  h = o * tanh(c)
//   lstm_cell_backward  the same cell's gradient: from dh (the output's gradient plus the next
//                       step's recurrent gradient) and dc (the next step's cell gradient) to the
//                       gates' pre-activation gradient dz and the previous cell's gradient.
//
//   gru_cell_forward    Keras's GRU cell with reset_after (its default; PyTorch's nn.GRU): gate
//                       order z, r, h;  z = s(xz + qz), r = s(xr + qr), hh = tanh(xh + r * qh),
//                         h = z * h_prev + (1 - z) * hh
//                       where x* = x W + b_input and q* = h_prev R + b_recurrent
//   gru_cell_backward   its gradient, to the input side's and the recurrent side's
//                       pre-activations and the direct part of dh_prev (dh * z)
//   rnn_cell_forward    SimpleRNN: h = tanh(z), z = x W + h_prev R + b
//   rnn_cell_backward   dz = (dy + dh_next) * (1 - h^2)
//
// Each element goes through the same operations in the same order whatever the row, batch or
// thread split, so a recurrent layer built on them trains to the same bits at any thread count.
// The sigmoid is kernels::sigmoid_of (exact at both tails, NaN kept), tanh Highway's Tanh.
#pragma once
#include <cstddef>

#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"
#include "ctnn/kernels/highway.hpp"
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Units [j0, j1) of one LSTM cell, with tag d (a full vector, or one lane for the tail).
template <class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_cell_forward_lanes(D d, std::size_t j, std::size_t U, T* HWY_RESTRICT z,
                                        const T* HWY_RESTRICT c_prev, T* HWY_RESTRICT c,
                                        T* HWY_RESTRICT tc, T* HWY_RESTRICT h,
                                        T* HWY_RESTRICT h2) {
  const auto i = sigmoid_of(d, hn::LoadU(d, z + j));
  const auto f = sigmoid_of(d, hn::LoadU(d, z + U + j));
  const auto g = hn::Tanh(d, hn::LoadU(d, z + 2 * U + j));
  const auto o = sigmoid_of(d, hn::LoadU(d, z + 3 * U + j));
  hn::StoreU(i, d, z + j);
  hn::StoreU(f, d, z + U + j);
  hn::StoreU(g, d, z + 2 * U + j);
  hn::StoreU(o, d, z + 3 * U + j);
  // c = f * c_prev + i * g; at the first step c_prev is zero and the product is left out.
  const auto ig = hn::Mul(i, g);
  const auto cv = c_prev ? hn::MulAdd(f, hn::LoadU(d, c_prev + j), ig) : ig;
  const auto t = hn::Tanh(d, cv);
  const auto hv = hn::Mul(o, t);
  hn::StoreU(cv, d, c + j);
  hn::StoreU(t, d, tc + j);
  hn::StoreU(hv, d, h + j);
  if (h2) hn::StoreU(hv, d, h2 + j);
}

// One row of one step. z[4U]: the gates' pre-activations (x W + h_prev U + b), replaced by their
// activations i, f, g, o (kept for backward). c_prev[U] is the previous cell state, or null at the
// first step (zero). Writes c[U], tc[U] = tanh(c), h[U] and, unless null, a copy of h into h2[U].
template <class T>
void lstm_cell_forward(std::size_t U, T* HWY_RESTRICT z, const T* HWY_RESTRICT c_prev,
                       T* HWY_RESTRICT c, T* HWY_RESTRICT tc, T* HWY_RESTRICT h,
                       T* HWY_RESTRICT h2) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) lstm_cell_forward_lanes(d, j, U, z, c_prev, c, tc, h, h2);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) lstm_cell_forward_lanes(d1, j, U, z, c_prev, c, tc, h, h2);
}

// CH chunks of L units (starting at unit j) of one LSTM step of one row, products and cell fused:
// each gate column of z = (x W + b) + h_prev R is summed in a register exactly as gemm_nn sums it
// (x W from zero with k in order, then the bias, then h_prev R with k in order; a stored and
// reloaded float is the same float), and the cell is lstm_cell_forward_lanes's operations on
// those values. W [F x 4U], R [U x 4U], b [4U]; c [U] is read and replaced, h_new [U] written.
template <std::size_t CH, class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_step_chunks(D d, std::size_t j, std::size_t F, std::size_t U,
                                 const T* HWY_RESTRICT x, const T* HWY_RESTRICT W,
                                 const T* HWY_RESTRICT b, const T* HWY_RESTRICT h,
                                 const T* HWY_RESTRICT R, T* HWY_RESTRICT c,
                                 T* HWY_RESTRICT h_new) {
  using V = hn::Vec<D>;
  const std::size_t L = hn::Lanes(d), G = 4 * U;
  V acc[CH][4];
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q)
    HWY_UNROLL(4)
    for (std::size_t g = 0; g < 4; ++g) acc[q][g] = hn::Zero(d);
  // acc += a M over the K rows of M [K x 4U], row by row (gemm_nn's order).
  const auto product = [&](const T* HWY_RESTRICT a, const T* HWY_RESTRICT M, std::size_t K) {
    for (std::size_t k = 0; k < K; ++k) {
      const V ak = hn::Set(d, a[k]);
      const T* row = M + k * G + j;
      HWY_UNROLL(16)
      for (std::size_t q = 0; q < CH; ++q)
        HWY_UNROLL(4)
        for (std::size_t g = 0; g < 4; ++g)
          acc[q][g] = hn::MulAdd(ak, hn::LoadU(d, row + g * U + q * L), acc[q][g]);
    }
  };
  product(x, W, F);
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q)
    HWY_UNROLL(4)
    for (std::size_t g = 0; g < 4; ++g)
      acc[q][g] = hn::Add(acc[q][g], hn::LoadU(d, b + g * U + j + q * L));
  product(h, R, U);
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q) {
    const std::size_t u = j + q * L;
    const auto i = sigmoid_of(d, acc[q][0]);
    const auto f = sigmoid_of(d, acc[q][1]);
    const auto g = hn::Tanh(d, acc[q][2]);
    const auto o = sigmoid_of(d, acc[q][3]);
    const auto cv = hn::MulAdd(f, hn::LoadU(d, c + u), hn::Mul(i, g));
    hn::StoreU(cv, d, c + u);
    hn::StoreU(hn::Mul(o, hn::Tanh(d, cv)), d, h_new + u);
  }
}

// Whether lstm_step can run U units: whole vectors only (gemm_nn sums a column tail of less than
// one vector in scalar code, which lstm_step does not repeat), and not on Highway's SCALAR target:
// there MulAdd is the expression a * b + c, and where FMA exists (a Cortex-M4's FPv4) the compiler
// may contract the cell's f * c_prev + i * g around either product, differently in the fused
// code than in lstm_cell_forward (seen: other bits on a Cortex-M4).
template <class T>
inline bool lstm_step_fusable(std::size_t U) {
  if constexpr (HWY_TARGET == HWY_SCALAR) {
    return false;
  } else {
    const hn::ScalableTag<T> d;
    return U % hn::Lanes(d) == 0;
  }
}

// One LSTM step of one row, the products fused with the cell (deploy/streaming.hpp's one-step
// LSTM): c [U] (the previous cell state) is replaced by the new one and h_new [U] gets the new h,
// with the bits of gemm_nn's products and lstm_cell_forward (lstm_step_fusable(U) must hold).
// h [U], the previous h, must not alias h_new. Chunks of as many units as the registers hold
// accumulators for (4 gates each), then single vectors.
template <class T>
void lstm_step(std::size_t F, std::size_t U, const T* HWY_RESTRICT x, const T* HWY_RESTRICT W,
               const T* HWY_RESTRICT b, const T* HWY_RESTRICT h, const T* HWY_RESTRICT R,
               T* HWY_RESTRICT c, T* HWY_RESTRICT h_new) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  constexpr std::size_t CH = kVectorRegisters == 16 ? 2 : 4;  // 8 or 16 accumulators
  std::size_t j = 0;
  for (; j + CH * L <= U; j += CH * L) lstm_step_chunks<CH>(d, j, F, U, x, W, b, h, R, c, h_new);
  for (; j + L <= U; j += L) lstm_step_chunks<1>(d, j, F, U, x, W, b, h, R, c, h_new);
}

template <class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_cell_backward_lanes(D d, std::size_t j, std::size_t U, T* HWY_RESTRICT gz,
                                         const T* HWY_RESTRICT c_prev, const T* HWY_RESTRICT tc,
                                         const T* HWY_RESTRICT dy, const T* HWY_RESTRICT dh_next,
                                         T* HWY_RESTRICT dc) {
  const auto one = hn::Set(d, T(1));
  const auto i = hn::LoadU(d, gz + j);
  const auto f = hn::LoadU(d, gz + U + j);
  const auto g = hn::LoadU(d, gz + 2 * U + j);
  const auto o = hn::LoadU(d, gz + 3 * U + j);
  const auto t = hn::LoadU(d, tc + j);
  // dh = dy + dh_next (either may be absent: no output at this step, or the last step).
  auto dh = dy ? hn::LoadU(d, dy + j) : hn::Zero(d);
  if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
  // dc_t = dc_next + dh * o * (1 - tanh(c)^2)
  const auto dct = hn::MulAdd(hn::Mul(dh, o), hn::NegMulAdd(t, t, one), hn::LoadU(d, dc + j));
  const auto d_o = hn::Mul(hn::Mul(dh, t), hn::Mul(o, hn::Sub(one, o)));
  const auto d_i = hn::Mul(hn::Mul(dct, g), hn::Mul(i, hn::Sub(one, i)));
  const auto d_g = hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one));
  const auto d_f = c_prev ? hn::Mul(hn::Mul(dct, hn::LoadU(d, c_prev + j)), hn::Mul(f, hn::Sub(one, f)))
                          : hn::Zero(d);
  hn::StoreU(d_i, d, gz + j);
  hn::StoreU(d_f, d, gz + U + j);
  hn::StoreU(d_g, d, gz + 2 * U + j);
  hn::StoreU(d_o, d, gz + 3 * U + j);
  hn::StoreU(hn::Mul(dct, f), d, dc + j);
}

// One row of one step, backward. gz[4U] holds the activations i, f, g, o from forward and is
// replaced by the gradient of the pre-activations z. c_prev[U] (null at the first step) and
// tc[U] = tanh(c) are forward's. dy[U] is the gradient arriving from this step's output (null
// when the step has none) and dh_next[U] the one arriving through the next step's recurrent
// product (null at the last step). dc[U] holds the next step's cell gradient (zero at the last
// step) and is replaced by this step's contribution to the previous cell's: dc * f.
template <class T>
void lstm_cell_backward(std::size_t U, T* HWY_RESTRICT gz, const T* HWY_RESTRICT c_prev,
                        const T* HWY_RESTRICT tc, const T* HWY_RESTRICT dy,
                        const T* HWY_RESTRICT dh_next, T* HWY_RESTRICT dc) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) lstm_cell_backward_lanes(d, j, U, gz, c_prev, tc, dy, dh_next, dc);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) lstm_cell_backward_lanes(d1, j, U, gz, c_prev, tc, dy, dh_next, dc);
}

// Runs op(d, j) over [0, U): full vectors, then one lane at a time.
template <class T, class Op>
HWY_INLINE void for_lanes(std::size_t U, Op op) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) op(d, j);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) op(d1, j);
}

// One row of one GRU step. gx[3U]: the input side's pre-activations (x W + b_input), replaced by
// the activations z, r, hh (kept for backward). q[3U]: the recurrent side's (h_prev R +
// b_recurrent), kept. h_prev[U] is null at the first step (zero). Writes h[U] and, unless null,
// a copy into h2[U].
template <class T>
void gru_cell_forward(std::size_t U, T* HWY_RESTRICT gx, const T* HWY_RESTRICT q,
                      const T* HWY_RESTRICT h_prev, T* HWY_RESTRICT h, T* HWY_RESTRICT h2) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto z = sigmoid_of(d, hn::Add(hn::LoadU(d, gx + j), hn::LoadU(d, q + j)));
    const auto r = sigmoid_of(d, hn::Add(hn::LoadU(d, gx + U + j), hn::LoadU(d, q + U + j)));
    const auto hh = hn::Tanh(d, hn::MulAdd(r, hn::LoadU(d, q + 2 * U + j), hn::LoadU(d, gx + 2 * U + j)));
    hn::StoreU(z, d, gx + j);
    hn::StoreU(r, d, gx + U + j);
    hn::StoreU(hh, d, gx + 2 * U + j);
    // h = hh + z * (h_prev - hh): (1 - z) * hh + z * h_prev with one rounding less.
    const auto hp = h_prev ? hn::LoadU(d, h_prev + j) : hn::Zero(d);
    const auto hv = hn::MulAdd(z, hn::Sub(hp, hh), hh);
    hn::StoreU(hv, d, h + j);
    if (h2) hn::StoreU(hv, d, h2 + j);
  });
}

// One row of one GRU step, backward. gx[3U] holds z, r, hh and is replaced by the gradient of
// the input side's pre-activations; q[3U] holds the recurrent side's pre-activations and is
// replaced by their gradient. h_prev as in forward. dh = dy + dh_next + dh_direct (each of the
// first two may be null); dh_direct[U] holds the next step's direct part (zero at the last step)
// and is replaced by this step's, dh * z.
template <class T>
void gru_cell_backward(std::size_t U, T* HWY_RESTRICT gx, T* HWY_RESTRICT q,
                       const T* HWY_RESTRICT h_prev, const T* HWY_RESTRICT dy,
                       const T* HWY_RESTRICT dh_next, T* HWY_RESTRICT dh_direct) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto one = hn::Set(d, T(1));
    const auto z = hn::LoadU(d, gx + j);
    const auto r = hn::LoadU(d, gx + U + j);
    const auto hh = hn::LoadU(d, gx + 2 * U + j);
    auto dh = hn::LoadU(d, dh_direct + j);
    if (dy) dh = hn::Add(hn::LoadU(d, dy + j), dh);
    if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
    const auto hp = h_prev ? hn::LoadU(d, h_prev + j) : hn::Zero(d);
    const auto dz = hn::Mul(hn::Mul(dh, hn::Sub(hp, hh)), hn::Mul(z, hn::Sub(one, z)));
    const auto dah = hn::Mul(hn::Mul(dh, hn::Sub(one, z)), hn::NegMulAdd(hh, hh, one));
    const auto dr = hn::Mul(hn::Mul(dah, hn::LoadU(d, q + 2 * U + j)), hn::Mul(r, hn::Sub(one, r)));
    hn::StoreU(dz, d, gx + j);
    hn::StoreU(dr, d, gx + U + j);
    hn::StoreU(dah, d, gx + 2 * U + j);
    hn::StoreU(dz, d, q + j);
    hn::StoreU(dr, d, q + U + j);
    hn::StoreU(hn::Mul(dah, r), d, q + 2 * U + j);
    hn::StoreU(hn::Mul(dh, z), d, dh_direct + j);
  });
}

// One row of one SimpleRNN step: z[U] (x W + h_prev R + b) is replaced by h = tanh(z), which is
// also written to h[U] and, unless null, h2[U].
template <class T>
void rnn_cell_forward(std::size_t U, T* HWY_RESTRICT z, T* HWY_RESTRICT h, T* HWY_RESTRICT h2) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto hv = hn::Tanh(d, hn::LoadU(d, z + j));
    hn::StoreU(hv, d, z + j);
    if (h) hn::StoreU(hv, d, h + j);
    if (h2) hn::StoreU(hv, d, h2 + j);
  });
}

// Backward: z[U] holds h and is replaced by dz = (dy + dh_next) * (1 - h^2) (either may be null).
template <class T>
void rnn_cell_backward(std::size_t U, T* HWY_RESTRICT z, const T* HWY_RESTRICT dy,
                       const T* HWY_RESTRICT dh_next) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto hv = hn::LoadU(d, z + j);
    auto dh = dy ? hn::LoadU(d, dy + j) : hn::Zero(d);
    if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
    hn::StoreU(hn::Mul(dh, hn::NegMulAdd(hv, hv, hn::Set(d, T(1)))), d, z + j);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::gru_cell_backward;
using ctnn::HWY_NAMESPACE::gru_cell_forward;
using ctnn::HWY_NAMESPACE::lstm_cell_backward;
using ctnn::HWY_NAMESPACE::lstm_cell_forward;
using ctnn::HWY_NAMESPACE::lstm_step;
using ctnn::HWY_NAMESPACE::lstm_step_fusable;
using ctnn::HWY_NAMESPACE::rnn_cell_backward;
using ctnn::HWY_NAMESPACE::rnn_cell_forward;
}  // namespace ctnn::kernels
