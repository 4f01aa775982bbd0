// ctnn/layers/dense.hpp: Dense<Units, KernelInit, BiasInit>, a fully connected layer.
//
// Represents y = x W^T + b for a flat input x of In::size values.
// Requires: a rank-1 input (put Flatten after images), Units >= 1.
// Output shape: Shape<Units>. Parameters: W [Units x In::size] (row j holds the weights of output
// j, so the forward product runs along contiguous memory), then b [Units]; Units * (In::size + 1)
// in all, as Keras counts. Init: KernelInit fills W (fan_in = In::size, fan_out = Units), BiasInit
// fills b; the defaults are Keras's, Glorot uniform W and zero b (core/init.hpp lists the others).
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/gemm.hpp"

namespace ctnn {

template <std::size_t Units, class KernelInit = init::GlorotUniform,
          class BiasInit = init::Zeros>
struct Dense {
  static_assert(Units >= 1, "Dense<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Dense's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 1,
                  "Dense needs a flat (rank-1) input, but the shape before it has more "
                  "dimensions: put ctnn::Flatten before Dense (the shapes are in bind<...> above).");
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<Units>;
    static constexpr std::size_t in = In::size;
    static constexpr std::size_t param_count = Units * in + Units;
    // The forward GEMM's vector accumulators (kernels::gemm_nt_scratch).
    static constexpr std::size_t scratch_per_sample = Units * (HWY_MAX_BYTES / sizeof(T));
    static constexpr std::string_view name = "Dense";
    static constexpr LayerKind kind = LayerKind::dense;
    static std::string spec() {
      return "ctnn::Dense<" + std::to_string(Units) + detail::init_spec<KernelInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      if constexpr (std::is_same_v<KernelInit, init::Orthogonal>)
        KernelInit::fill(p, Units * in, Units, in, rng);  // W's rows are Units (core/init.hpp)
      else
        KernelInit::fill(p, Units * in, in, Units, rng);
      BiasInit::fill(p + Units * in, Units, in, Units, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch, const PassContext&,
                        kernels::Epilogue act = kernels::Epilogue::none) {
      kernels::gemm_nt(n, Units, in, x, in, p, in, y, Units, p + Units * in, act, scratch);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T*, const PassContext&) {
      // dW[Units x in] = dy^T x (dy read transposed), summed over the batch in sample order.
      kernels::gemm_nn(Units, in, n, dy, 1, Units, x, in, dp, in, false, static_cast<const T*>(nullptr),
                       kernels::Epilogue::none);
      kernels::sum_rows(n, Units, dy, dp + Units * in);
      // dx[n x in] = dy W.
      if (dx)
        kernels::gemm_nn(n, in, Units, dy, Units, 1, p, in, dx, in, false,
                         static_cast<const T*>(nullptr), kernels::Epilogue::none);
    }
  };
};

}  // namespace ctnn
