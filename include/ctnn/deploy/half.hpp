// ctnn/deploy/half.hpp: 16-bit storage of a float model's weights, IEEE fp16 or bfloat16.
//
// half_parameters(model, format) and set_half_parameters(model, halves, format) move a model's
// whole parameter arena to 16 bits and back (half the bytes to ship; the model still computes in
// fp32). The conversions, and how they round, are in kernels/half.hpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/kernels/half.hpp"

namespace ctnn {

// Bytes of a float model's parameters stored in 16 bits (Keras's parameter count, no padding).
template <class Model>
inline constexpr std::size_t half_parameter_bytes = Model::param_count * sizeof(std::uint16_t);

// The model's whole parameter arena (in arena order, alignment padding included) in `format`.
template <class Model>
std::vector<std::uint16_t> half_parameters(const Model& model, HalfFormat format) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "16-bit weight storage converts from a float model (Sequential), not a double one.");
  std::vector<std::uint16_t> h(model.parameters().size());
  to_half(format, model.parameters(), h);
  return h;
}

// Loads parameters stored by half_parameters() (same model type) back into the model, as fp32.
template <class Model>
void set_half_parameters(Model& model, std::span<const std::uint16_t> h, HalfFormat format) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "16-bit weight storage converts into a float model (Sequential), not a double one.");
  if (h.size() != model.parameters().size())
    fail("set_half_parameters() was given ", h.size(), " 16-bit values but the model's parameter "
         "arena holds ", model.parameters().size(), ".");
  from_half(format, h, model.parameters());
}

}  // namespace ctnn
