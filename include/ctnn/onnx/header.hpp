// ctnn/onnx/header.hpp: an imported ONNX model (onnx/import.hpp) written as a C++ header, the
// output of the ctnn-onnx tool (tools/ctnn_onnx.cpp).
//
// write_header(path, model, name, tests) writes (atomically) namespace `name` holding what
// ctnn::deploy::export_header writes for a trained model, so one header serves fine-tuning,
// StaticModel and int8 quantization alike:
//   using Model = ctnn::Sequential<...>;   (a ctnn::NodeGraph<...> for a graph with joins)
//   static_assert(...)                     the arena sizes the importer computed, checked
//                                          against the type's own plan
//   parameters[], state[]                  exact hex floats, in Model::parameters() layout
//   make()                                 a ctnn::deploy::StaticModel over them
// and the ONNX side of its input and output:
//   onnx_input_shape[], onnx_output_shape[]  per sample (the batch axis left out)
//   input_order, output_order                std::span<const std::uint32_t> for
//                                            ctnn::onnx::to_ctnn / to_onnx (onnx/layout.hpp);
//                                            empty where the orders agree
// and, when test cases are given (the ONNX test's input_0.pb / output_0.pb, or outputs the
// original framework computed), golden data in ONNX's order:
//   test_samples, test_inputs[], test_outputs[]
// The header needs ctnn's headers only (no ONNX library), so a firmware build can use it.
#pragma once
#include <cstdint>
#include <fstream>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ctnn/deploy/export.hpp"
#include "ctnn/onnx/import.hpp"

namespace ctnn::onnx {

// Golden data: `samples` inputs and their outputs, each in ONNX's order, back to back.
struct TestData {
  std::size_t samples = 0;
  std::vector<float> inputs, outputs;
};

// An ONNX test case directory (test_data_set_0: input_0.pb, input_1.pb, ..., output_0.pb).
// input_k.pb belongs to the k-th graph input that is not an initializer; input_0 is the data and
// every later one is bound as a constant into `options` (ONNX's node tests pass weights that way).
inline void bind_test_inputs(const ::onnx::ModelProto& model, const std::string& dir, ImportOptions& options) {
  std::vector<std::string> inputs;
  std::set<std::string> init;
  for (const auto& t : model.graph().initializer()) init.insert(t.name());
  for (const auto& i : model.graph().input())
    if (!init.count(i.name())) inputs.push_back(i.name());
  const auto exists = [](const std::string& p) { return std::ifstream(p).good(); };
  if (!exists(dir + "/input_0.pb")) fail("ctnn-onnx: no input_0.pb in ", dir, ".");
  for (std::size_t k = 1; k < inputs.size(); ++k) {
    const std::string p = dir + "/input_" + std::to_string(k) + ".pb";
    if (!exists(p)) fail("ctnn-onnx: ", dir, " has no ", "input_", k, ".pb for graph input '", inputs[k], "'.");
    options.bound[inputs[k]] = read_tensor_file(p);
  }
  if (exists(dir + "/output_1.pb")) fail("ctnn-onnx: ", dir, " has a second output; a ctnn model has one.");
}

namespace detail {
// The values of `c` with its axis `b` moved first (the batch of a time-major tensor).
inline std::vector<float> batch_first(const Constant& c, std::size_t b) {
  if (b == 0) return {c.values.begin(), c.values.end()};
  if (b >= c.dims.size()) fail("ctnn-onnx: a test tensor has no batch axis ", b, ".");
  std::size_t outer = 1, inner = 1;
  for (std::size_t a = 0; a < b; ++a) outer *= std::size_t(c.dims[a]);
  for (std::size_t a = b + 1; a < c.dims.size(); ++a) inner *= std::size_t(c.dims[a]);
  const std::size_t n = std::size_t(c.dims[b]);
  std::vector<float> v(c.size());
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t s = 0; s < n; ++s)
      for (std::size_t i = 0; i < inner; ++i)
        v[(s * outer + o) * inner + i] = float(c.values[(o * n + s) * inner + i]);
  return v;
}
}  // namespace detail

// Appends the case's input_0 and output_0 to `data`, samples first (the model's batch axes).
inline void append_test_data(const std::string& dir, const ImportedModel& m, TestData& data) {
  const Constant x = read_tensor_file(dir + "/input_0.pb");
  const Constant y = read_tensor_file(dir + "/output_0.pb");
  if (x.dims.size() <= m.input_batch_axis) fail("ctnn-onnx: ", dir, ": input_0 has no batch axis.");
  data.samples += std::size_t(x.dims[m.input_batch_axis]);
  const std::vector<float> xi = detail::batch_first(x, m.input_batch_axis);
  const std::vector<float> yo = detail::batch_first(y, m.output_batch_axis);
  data.inputs.insert(data.inputs.end(), xi.begin(), xi.end());
  data.outputs.insert(data.outputs.end(), yo.begin(), yo.end());
}

namespace detail {
inline void write_order(std::ostream& os, const std::string& name, const std::vector<std::uint32_t>& order) {
  if (order.empty()) {
    os << "inline constexpr std::span<const std::uint32_t> " << name << "{};  // the same order\n";
    return;
  }
  os << "inline constexpr std::uint32_t " << name << "_data[" << order.size() << "] = {";
  for (std::size_t i = 0; i < order.size(); ++i)
    os << (i % 16 == 0 ? "\n    " : " ") << order[i] << (i + 1 < order.size() ? "," : "");
  os << "};\ninline constexpr std::span<const std::uint32_t> " << name << "{" << name << "_data};\n";
}
inline void write_shape(std::ostream& os, const std::string& name, const std::vector<std::size_t>& dims) {
  os << "inline constexpr std::size_t " << name << "[" << dims.size() << "] = {";
  for (std::size_t i = 0; i < dims.size(); ++i) os << (i ? ", " : "") << dims[i];
  os << "};\n";
}
}  // namespace detail

inline void write_header(const std::string& path, const ImportedModel& m, const std::string& name,
                         const std::string& source, const TestData* tests = nullptr) {
  deploy::require_cpp_identifier(name);
  const std::vector<float> params = m.arena(), state = m.state_arena();
  std::size_t in_size = 1, out_size = 1;
  for (std::size_t d : m.onnx_input_dims) in_size *= d;
  for (std::size_t d : m.onnx_output_dims) out_size *= d;
  if (tests && (tests->inputs.size() != tests->samples * in_size ||
                tests->outputs.size() != tests->samples * out_size))
    fail("ctnn-onnx: the test data holds ", tests->inputs.size(), " input and ", tests->outputs.size(),
         " output values for ", tests->samples, " samples of ", in_size, " and ", out_size, ".");
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn-onnx from " << source << " (" << (m.producer.empty() ? "unknown producer" : m.producer)
       << ", opset " << m.opset << "). Do not edit.\n"
       << "// " << m.layers.size() << " layers, " << m.param_count() << " parameters"
       << (m.state_count() ? ", " + std::to_string(m.state_count()) + " state values" : std::string())
       << ". ONNX input '" << m.input_name << "', output '" << m.output_name << "'.\n"
       << "// Layers (ctnn <- ONNX node):\n";
    for (std::size_t k = 0; k < m.layers.size(); ++k)
      os << "//   " << k << " " << m.layers[k].spec << " <- " << m.layers[k].onnx_op
         << (m.layers[k].onnx_node.empty() ? "" : " '" + m.layers[k].onnx_node + "'") << "\n";
    os << "#pragma once\n#include <cstddef>\n#include <cstdint>\n#include <span>\n\n"
       << "#include <ctnn/deploy/static_model.hpp>\n#include <ctnn/onnx/layout.hpp>\n\n"
       << "namespace " << name << " {\n\n"
       << "using Model = " << m.model_type() << ";\n"
       << "static_assert(Model::param_count == " << m.param_count() << " && Model::arena_size == "
       << params.size() << " && Model::state_count == " << m.state_count() << " && Model::state_size == "
       << state.size() << ", \"ctnn-onnx computed another parameter layout than this ctnn's\");\n\n";
    if (params.empty())
      os << "inline constexpr const float* parameters = nullptr;  // the model has no parameters\n";
    else
      deploy::write_constexpr_array<float>(os, "parameters", params);
    if (!state.empty()) deploy::write_constexpr_array<float>(os, "state", state);
    os << "\n";
    detail::write_shape(os, "onnx_input_shape", m.onnx_input_dims);
    detail::write_shape(os, "onnx_output_shape", m.onnx_output_dims);
    detail::write_order(os, "input_order", m.input_order);
    detail::write_order(os, "output_order", m.output_order);
    os << "\n// An inference object over these weights (its buffers live inside it: make it static).\n"
       << "inline ctnn::deploy::StaticModel<Model> make() { return ctnn::deploy::StaticModel<Model>(parameters"
       << (state.empty() ? "" : ", state") << "); }\n";
    if (tests) {
      os << "\n// Golden data in ONNX's order: inputs and the outputs the original framework computed.\n"
         << "inline constexpr std::size_t test_samples = " << tests->samples << ";\n";
      deploy::write_constexpr_array<float>(os, "test_inputs", tests->inputs);
      deploy::write_constexpr_array<float>(os, "test_outputs", tests->outputs);
    }
    os << "\n}  // namespace " << name << "\n";
  });
}

// Writes a program that checks the header `header` (namespace `name`, written with test data):
// every golden input through its StaticModel, every output within 1e-5 |expected| + 1e-6.
inline void write_test_program(const std::string& path, const std::string& header, const std::string& name) {
  deploy::require_cpp_identifier(name);
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn-onnx: checks " << header << " against the golden outputs it holds. Do not edit.\n"
       << "#include <cmath>\n#include <cstdio>\n#include <span>\n#include <vector>\n\n#include \"" << header << "\"\n\n"
       << "int main() {\n"
       << "  using M = " << name << "::Model;\n"
       << "  static auto net = " << name << "::make();\n"
       << "  std::vector<float> x(M::input_size), y(M::output_size);\n"
       << "  std::size_t bad = 0;\n  double worst = 0;\n"
       << "  for (std::size_t s = 0; s < " << name << "::test_samples; ++s) {\n"
       << "    ctnn::onnx::to_ctnn<float>(" << name << "::input_order, " << name << "::test_inputs + s * M::input_size, x);\n"
       << "    const float* p = net.predict(x.data());\n"
       << "    ctnn::onnx::to_onnx<float>(" << name << "::output_order, std::span<const float>(p, M::output_size), y.data());\n"
       << "    for (std::size_t i = 0; i < M::output_size; ++i) {\n"
       << "      const double want = " << name << "::test_outputs[s * M::output_size + i], err = std::abs(y[i] - want);\n"
       << "      worst = std::fmax(worst, err / (std::abs(want) + 1e-6));\n"
       << "      bad += !(err <= 1e-5 * std::abs(want) + 1e-6);\n"
       << "    }\n  }\n"
       << "  std::printf(\"" << name << ": %zu samples, %zu outputs off the golden ones (largest relative difference %g)\\n\",\n"
       << "              " << name << "::test_samples, bad, worst);\n"
       << "  return bad == 0 ? 0 : 1;\n}\n";
  });
}

}  // namespace ctnn::onnx
