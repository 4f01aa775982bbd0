// ctnn/layers/param_free.hpp: the common part of layers without parameters whose output has the
// input's shape (activations, Dropout). A bound layer derives from it and adds name, forward and
// backward.
#pragma once
#include <cstddef>

#include "ctnn/core/layer.hpp"

namespace ctnn::detail {

template <ShapeType In, class T, std::size_t ScratchPerSample = 0>
struct ParamFree {
  using value_type = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t param_count = 0;
  static constexpr std::size_t scratch_per_sample = ScratchPerSample;
  static constexpr bool fuses_relu = false;
  static constexpr bool is_view = false;
  static void init(T*, Rng&) {}
};

}  // namespace ctnn::detail
