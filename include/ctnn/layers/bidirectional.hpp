// ctnn/layers/bidirectional.hpp: Bidirectional<Spec, Merge>, a recurrent layer run over a sequence
// forwards and backwards, as Keras's Bidirectional.
//
// Represents, for a recurrent Spec (SimpleRNN, LSTM, GRU) bound to In = Shape<Steps, Features>:
//   f = Spec(x)                      the forward layer on x_0 .. x_{Steps-1}
//   b = Spec'(reverse(x))            a second layer (its own weights) on x_{Steps-1} .. x_0
// and, without return_sequences, y = merge(f, b) (f's last output, and b's: the one that has read
// the whole sequence backwards); with return_sequences, y_t = merge(f_t, b_{Steps-1-t}) (b's
// outputs put back in time order, so y_t has seen x_0 .. x_t forwards and x_{Steps-1} .. x_t
// backwards), as Keras and PyTorch's bidirectional=True.
// Merge (Keras's merge_mode): concat [f, b] along the last axis (the default: output Units doubled),
// sum f + b, ave (f + b) / 2, mul f * b.
// Requires: Spec a recurrent layer with a rank-2 input (static_asserts name the misuse).
// Parameters: the forward layer's, then the backward layer's, each in Spec's layout (Keras's
// order of forward_layer and backward_layer weights); each initialized as Spec initializes.
// How: the input reversed in time once per sample, Spec's own forward and backward (one GEMM for
// all input products, the recurrence per sample block) twice; backward splits dy by the merge,
// reverses the backward layer's share in time, and adds its dx back in time order. Same bits at
// any thread count, as Spec. Not streamable (its backward direction needs the sequence's end):
// StreamingModel rejects it at compile time.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/layer.hpp"

namespace ctnn {

// How Bidirectional combines the two directions' outputs (Keras's merge_mode).
enum class Merge { concat, sum, ave, mul };

namespace detail {
// A whole-sequence layer whose one-step form keeps state: SimpleRNN, LSTM, GRU.
template <class L>
concept RecurrentLayer = requires { typename L::step; } && StatefulLayer<typename L::step>;

constexpr const char* merge_name(Merge m) {
  return m == Merge::concat ? "concat" : m == Merge::sum ? "sum" : m == Merge::ave ? "ave" : "mul";
}
}  // namespace detail

template <class Spec, Merge MergeMode = Merge::concat>
struct Bidirectional {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "Bidirectional needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using inner = typename Spec::template bind<In, T>;
    static constexpr bool wraps_recurrent = detail::RecurrentLayer<inner>;
    static_assert(wraps_recurrent,
                  "Bidirectional wraps a recurrent layer (SimpleRNN, LSTM or GRU).");
    static constexpr std::size_t steps = In::dims[0];
    static constexpr bool sequences = inner::output_shape::rank == 2;  // return_sequences
    static constexpr std::size_t units = inner::output_shape::dims[inner::output_shape::rank - 1];
    static constexpr std::size_t out_units = MergeMode == Merge::concat ? 2 * units : units;
    static constexpr std::size_t rows = sequences ? steps : 1;  // output rows per sample
    using value_type = T;
    using input_shape = In;
    using output_shape = std::conditional_t<sequences, Shape<steps, out_units>, Shape<out_units>>;
    static constexpr std::size_t in_size = In::size, half = inner::output_shape::size;
    static constexpr std::size_t param_count = 2 * inner::param_count;
    // Per sample: the two layers' scratch, the reversed input and its gradient, the two layers'
    // outputs and their gradients; each region starts aligned (the kernels want it), which the
    // eight regions' padding (at most `align` values each, counted once per sample) pays for.
    static constexpr std::size_t align = kAlignBytes / sizeof(T);
    static constexpr std::size_t scratch_per_sample =
        2 * inner::scratch_per_sample + 2 * in_size + 4 * half + 8 * align;
    static constexpr std::string_view name = "Bidirectional";
    static std::string config() {
      return std::string(inner::name) + " " + inner::config() + " merge " +
             detail::merge_name(MergeMode);
    }
    static std::string spec() {
      return "ctnn::Bidirectional<" + inner::spec() + ", ctnn::Merge::" +
             detail::merge_name(MergeMode) + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;
    // Its output at any step depends on the sequence's last step (deploy/streaming.hpp reads this).
    static constexpr bool reads_whole_sequence = true;

    struct Regions {
      T* fwd;  // the forward layer's scratch   [n * inner::scratch_per_sample]
      T* bwd;  // the backward layer's scratch  [n * inner::scratch_per_sample]
      T* xr;   // x reversed in time            [n * in_size]
      T* dxr;  // the backward layer's dx (reversed time)
      T* yf;   // the forward layer's output    [n * half]
      T* yb;   // the backward layer's output (its own, reversed, time order)
      T* dyf;  // their gradients
      T* dyb;
    };
    static std::size_t padded(std::size_t count) { return (count + align - 1) / align * align; }
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.fwd = s;
      r.bwd = r.fwd + padded(n * inner::scratch_per_sample);
      r.xr = r.bwd + padded(n * inner::scratch_per_sample);
      r.dxr = r.xr + padded(n * in_size);
      r.yf = r.dxr + padded(n * in_size);
      r.yb = r.yf + padded(n * half);
      r.dyf = r.yb + padded(n * half);
      r.dyb = r.dyf + padded(n * half);
      return r;
    }

    // Row t of sample b of a [n][Steps][width] array, reversed: row Steps-1-t.
    static void reverse_steps(const T* from, T* to, std::size_t n, std::size_t width) {
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t t = 0; t < steps; ++t)
          std::copy(from + (b * steps + steps - 1 - t) * width,
                    from + (b * steps + steps - t) * width, to + (b * steps + t) * width);
    }
    // Output row r of sample b comes from the backward layer's row rows-1-r.
    static const T* backward_row(const T* yb, std::size_t b, std::size_t r) {
      return yb + (b * rows + rows - 1 - r) * units;
    }

    static void init(T* p, Rng& rng) {
      inner::init(p, rng);
      inner::init(p + inner::param_count, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      const Regions s = regions(scratch, n);
      reverse_steps(x, s.xr, n, In::dims[1]);
      inner::forward(p, x, s.yf, n, s.fwd, ctx);
      inner::forward(p + inner::param_count, s.xr, s.yb, n, s.bwd, ctx);
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t r = 0; r < rows; ++r) {
          const T* f = s.yf + (b * rows + r) * units;
          const T* g = backward_row(s.yb, b, r);
          T* out = y + (b * rows + r) * out_units;
          if constexpr (MergeMode == Merge::concat) {
            std::copy(f, f + units, out);
            std::copy(g, g + units, out + units);
          } else {
            for (std::size_t u = 0; u < units; ++u) {
              if constexpr (MergeMode == Merge::sum) out[u] = f[u] + g[u];
              else if constexpr (MergeMode == Merge::ave) out[u] = (f[u] + g[u]) * T(0.5);
              else out[u] = f[u] * g[u];
            }
          }
        }
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      const Regions s = regions(scratch, n);
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t r = 0; r < rows; ++r) {
          const T* d = dy + (b * rows + r) * out_units;
          T* df = s.dyf + (b * rows + r) * units;
          T* dg = s.dyb + (b * rows + rows - 1 - r) * units;
          if constexpr (MergeMode == Merge::concat) {
            std::copy(d, d + units, df);
            std::copy(d + units, d + 2 * units, dg);
          } else if constexpr (MergeMode == Merge::sum) {
            std::copy(d, d + units, df);
            std::copy(d, d + units, dg);
          } else if constexpr (MergeMode == Merge::ave) {
            for (std::size_t u = 0; u < units; ++u) df[u] = dg[u] = d[u] * T(0.5);
          } else {
            const T* f = s.yf + (b * rows + r) * units;
            const T* g = backward_row(s.yb, b, r);
            for (std::size_t u = 0; u < units; ++u) {
              df[u] = d[u] * g[u];
              dg[u] = d[u] * f[u];
            }
          }
        }
      inner::backward(p, x, s.yf, s.dyf, dx, dp, n, s.fwd, ctx);
      inner::backward(p + inner::param_count, s.xr, s.yb, s.dyb, dx ? s.dxr : nullptr,
                      dp + inner::param_count, n, s.bwd, ctx);
      if (dx) {
        constexpr std::size_t F = In::dims[1];
        for (std::size_t b = 0; b < n; ++b)
          for (std::size_t t = 0; t < steps; ++t) {
            const T* from = s.dxr + (b * steps + steps - 1 - t) * F;
            T* to = dx + (b * steps + t) * F;
            for (std::size_t f = 0; f < F; ++f) to[f] += from[f];
          }
      }
    }
  };
};

}  // namespace ctnn
