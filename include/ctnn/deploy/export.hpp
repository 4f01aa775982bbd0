// ctnn/deploy/export.hpp: a trained model as a C++ header of constexpr weights, for firmware.
//
// export_header(path, model, name) writes (atomically) a header that needs nothing but ctnn's
// headers to compile: namespace `name` holding
//   using Model = ctnn::Sequential<...>;              the topology, as C++ source (a Graph in
//                                                     its node form, ctnn::NodeGraph<...>)
//   inline constexpr char topology[] = "...";         ctnn::topology<Model>(), for checks
//   static_assert(Model::topology_hash == ...);       the topology as a constant
//   alignas(64) inline constexpr float parameters[];  the arena, values as exact hex literals
//   state[]                                           the non-trainable state, if any
//   inline ctnn::deploy::StaticModel<Model> make()    an inference object over those weights
// so a firmware build does `static auto net = name::make(); net.predict(x);` with no file system,
// heap, exceptions or RTTI, and with weights in flash. Every value round-trips exactly (hex
// floats); a non-finite parameter is an error naming its index. write_constexpr_array() writes
// any array the same way (test inputs, expected outputs).
// export_header(path, quantized, name) does the same for a QuantizedModel (deploy/quantize.hpp):
// int8 weights, float scales and biases, and make() returning a StaticQuantizedModel.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/deploy/quantize.hpp"
#include "ctnn/deploy/static_model.hpp"
#include "ctnn/deploy/static_quantized.hpp"
#include "ctnn/io/atomic_file.hpp"
#include "ctnn/io/model_file.hpp"

namespace ctnn::deploy {

namespace detail {
// "ctnn::Name<>", built in a function of its own: one named result, returned without a copy
// (GCC 12 misfires -Wrestrict on "literal" + string, and -Warray-bounds on the move of a local
// string out of a function with several returns).
inline std::string join_spec(std::string_view name) {
  std::string s = "ctnn::";
  s += name;
  s += "<>";
  return s;
}
}  // namespace detail

// One layer as C++ source: "ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid>". A layer's
// regularizer (training only) is not written.
template <class L>
std::string layer_spec() {
  if constexpr (JoinLayer<L>) {
    return detail::join_spec(L::name);
  } else if constexpr (requires { L::spec(); }) {
    return L::spec();
  } else {
    // A built-in layer without settings is spelled by its name; a user layer's name may be
    // anything (even "ReLU"), so it must say how it is spelled.
    constexpr bool spelled = layer_kind<L> != LayerKind::other;
    static_assert(spelled, "export_header writes a user-defined layer as C++ source through its "
                           "static spec() function (e.g. returning \"my::Layer<4>\"); add one.");
    std::string s = "ctnn::";
    s += L::name;
    return s;
  }
}

// "ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid>, ...>"
// A Graph is written in its node form, ctnn::NodeGraph<ctnn::Input<...>, ctnn::At<spec, inputs...>,
// ...> (core/graph.hpp): the same node list, so the same layout and topology_hash.
template <class Model>
std::string cpp_type() {
  using T = typename Model::value_type;
  constexpr bool is_float = std::is_same_v<T, float>;
  std::string s = Model::is_chain ? (is_float ? "ctnn::Sequential<" : "ctnn::BasicSequential<double, ")
                                  : (is_float ? "ctnn::NodeGraph<" : "ctnn::BasicNodeGraph<double, ");
  s += "ctnn::Input<";
  for (std::size_t i = 0; i < Model::input_shape::rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(Model::input_shape::dims[i]);
  }
  s += ">";
  ctnn::detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    s += ", ";
    if constexpr (!Model::is_chain) s += "ctnn::At<";
    s += layer_spec<typename Model::template layer<I>>();
    if constexpr (!Model::is_chain) {
      for (std::size_t t : Model::template inputs_of<I>) {
        s += ", ";
        s += std::to_string(t);
      }
      s += ">";
    }
  });
  return s + ">";
}

// Writes `alignas(64) inline constexpr <type> <name>[N] = {...};`: floats as exact hex literals,
// int8 values as integers, bools as true/false.
template <class T>
void write_constexpr_array(std::ostream& os, const std::string& name, std::span<const T> values) {
  constexpr bool floating = std::is_same_v<T, float> || std::is_same_v<T, double>;
  static_assert(floating || std::is_same_v<T, std::int8_t> || std::is_same_v<T, bool>,
                "write_constexpr_array writes float, double, std::int8_t or bool arrays.");
  const char* type = std::is_same_v<T, float>    ? "float "
                     : std::is_same_v<T, double> ? "double "
                     : std::is_same_v<T, bool>   ? "bool "
                                                 : "std::int8_t ";
  os << "alignas(" << kAlignBytes << ") inline constexpr " << type << name << "[" << values.size()
     << "] = {";
  // Six hex floats or sixteen small integers a line.
  const std::size_t per_line = floating ? 6 : 16;
  char buf[48];
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (floating) {
      if (!std::isfinite(values[i]))
        fail("export: ", name, "[", i, "] is ", values[i], "; only finite values can be exported.");
      std::snprintf(buf, sizeof buf, "%a%s", double(values[i]), std::is_same_v<T, float> ? "f" : "");
    } else if constexpr (std::is_same_v<T, bool>) {
      std::snprintf(buf, sizeof buf, "%s", values[i] ? "true" : "false");
    } else {
      std::snprintf(buf, sizeof buf, "%d", int(values[i]));
    }
    os << (i % per_line == 0 ? "\n    " : " ") << buf << (i + 1 < values.size() ? "," : "");
  }
  os << "};\n";
}

// The `using Model = ...;` and `topology[]` lines both kinds of header open with.
template <class Model>
std::string model_declaration() {
  // Appends, not `"literal" + std::string`: GCC 12's -Wrestrict misfires on the latter at -O3.
  std::string s = "using Model = ";
  s += cpp_type<Model>();
  s += ";\ninline constexpr char topology[] = \"";
  s += topology<Model>();
  s += "\";\nstatic_assert(Model::topology_hash == ";
  s += std::to_string(Model::topology_hash);
  s += "ull, \"this header was written for another ctnn model topology\");\n";
  return s;
}

// Fails unless `name` can name a namespace.
inline void require_cpp_identifier(const std::string& name) {
  const bool identifier = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                          name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                 "0123456789_") == std::string::npos;
  if (!identifier) fail("export_header: \"", name, "\" is not a C++ identifier (it names a namespace).");
}

// Writes the header described at the top of this file; `name` must be a C++ identifier.
template <class Model>
void export_header(const std::string& path, const Model& model, const std::string& name) {
  require_cpp_identifier(name);
  using T = typename Model::value_type;
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn::deploy::export_header: a trained model as constants. Do not edit.\n"
       << "// " << Model::param_count << " parameters, " << StaticModel<Model>::weight_bytes
       << " bytes of weights (with alignment padding) and " << StaticModel<Model>::buffer_bytes
       << " bytes of buffers for one sample.\n"
       << "#pragma once\n#include <ctnn/deploy/static_model.hpp>\n\nnamespace " << name << " {\n\n"
       << model_declaration<Model>()
       << "static_assert(Model::arena_size == " << Model::arena_size
       << ", \"this header was written for another ctnn model layout\");\n\n";
    write_constexpr_array<T>(os, "parameters", model.parameters());
    os << "\n// An inference object over these weights (its buffers live inside it: make it static).\n";
    if constexpr (Model::state_size > 0) {
      os << "// The non-trainable state (BatchNormalization's moving statistics).\n";
      write_constexpr_array<T>(os, "state", model.state());
      os << "inline ctnn::deploy::StaticModel<Model> make() { return ctnn::deploy::StaticModel<Model>(parameters, state); }\n\n";
    } else {
      os << "inline ctnn::deploy::StaticModel<Model> make() { return ctnn::deploy::StaticModel<Model>(parameters); }\n\n";
    }
    os << "}  // namespace " << name << "\n";
  });
}

// The int8 model (deploy/quantize.hpp) as a header: namespace `name` holding
//   using Model = ctnn::Sequential<...>;          the float model's topology, as C++ source
//   inline constexpr char topology[] = "...";
//   weights[]        std::int8_t, each quantized layer's W(k, n) at [k * N + n], layers in order
//   packed           the same packed for the compiling target (constexpr: columns are padded to
//                    that target's SIMD width, so one header serves every target)
//   weight_scales[]  per output channel (for reference; the run uses multipliers)
//   multipliers[], biases[]            per output channel, exact hex floats
//   input_scales[], input_signed[]     per scale slot (each quantized layer input, then the
//                                      8-bit tensors only Adds and global pools read)
//   inline ctnn::deploy::StaticQuantizedModel<Model> make()
// StaticQuantizedModel over these arrays computes exactly what `model` computes.
template <class Model>
void export_header(const std::string& path, const QuantizedModel<Model>& model,
                   const std::string& name) {
  require_cpp_identifier(name);
  using Forward = ctnn::detail::Int8Forward<Model>;
  constexpr auto& plan = Forward::plan;
  using Static = StaticQuantizedModel<Model>;
  std::vector<std::int8_t> weights(plan.weights);
  std::vector<float> weight_scales(plan.channels);
  ctnn::detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    if constexpr (Forward::is_compute(plan.kind[I])) {
      for (std::size_t k = 0; k < plan.K[I]; ++k)
        for (std::size_t n = 0; n < plan.N[I]; ++n)
          weights[plan.weight_offset[I] + k * plan.N[I] + n] = model.template weight<I>(k, n);
      const auto s = model.template weight_scales<I>();
      std::copy(s.begin(), s.end(), weight_scales.begin() + std::ptrdiff_t(plan.channel_offset[I]));
    }
  });
  const Int8Parameters p = model.int8_parameters();
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn::deploy::export_header: a trained model quantized to int8, as "
          "constants. Do not edit.\n"
       << "// " << plan.weights << " int8 weights, " << plan.channels << " output channels, "
       << plan.computes << " quantized layers; on this host " << Static::weight_bytes
       << " bytes of parameters (packed) and " << Static::buffer_bytes
       << " bytes of buffers for one sample.\n"
       << "#pragma once\n#include <cstdint>\n#include <ctnn/deploy/static_quantized.hpp>\n\n"
       << "namespace " << name << " {\n\n"
       << model_declaration<Model>()
       << "static_assert(ctnn::detail::Int8Forward<Model>::plan.weights == " << plan.weights
       << " && ctnn::detail::Int8Forward<Model>::plan.channels == " << plan.channels
       << " && ctnn::detail::Int8Forward<Model>::plan.scales == " << plan.scales
       << ", \"this header was written for another ctnn int8 layout: export it again\");\n\n";
    write_constexpr_array<std::int8_t>(os, "weights", weights);
    os << "alignas(" << kAlignBytes
       << ") inline constexpr auto packed = ctnn::deploy::pack_int8_weights<Model>(weights);\n";
    write_constexpr_array<float>(os, "weight_scales", weight_scales);
    write_constexpr_array<float>(os, "multipliers", {p.multipliers, plan.channels});
    write_constexpr_array<float>(os, "biases", {p.biases, plan.channels});
    write_constexpr_array<float>(os, "input_scales", {p.input_scales, plan.scales});
    write_constexpr_array<bool>(os, "input_signed", {p.input_signed, plan.scales});
    os << "\n// An int8 inference object over these constants (its buffers live inside it: make it "
          "static).\n"
       << "inline ctnn::deploy::StaticQuantizedModel<Model> make() {\n"
       << "  return ctnn::deploy::StaticQuantizedModel<Model>(\n"
       << "      {packed.data(), multipliers, biases, input_scales, input_signed});\n}\n\n"
       << "}  // namespace " << name << "\n";
  });
}

}  // namespace ctnn::deploy
