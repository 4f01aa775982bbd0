// ctnn-onnx: an ONNX model as a ctnn model header (the C++ model type and its weights).
//
//   ctnn-onnx MODEL.onnx --name NAME -o OUT.hpp [--test-data DIR]... [--bind INPUT=FILE.pb]...
//             [--test-program TEST.cpp]
//   ctnn-onnx MODEL.onnx --print
//
// Writes OUT.hpp as described in ctnn/onnx/header.hpp: namespace NAME with `using Model = ...`,
// parameters[] (and state[]), make() for a StaticModel, the input and output orders, and with
// --test-data the test cases' inputs and expected outputs (an ONNX test_data_set_N directory:
// input_0.pb is the data; later inputs are the graph's other inputs, bound as constants).
// --bind gives a graph input (other than the data) a constant value from a TensorProto file.
// --test-program (with --test-data) also writes TEST.cpp, a program that runs the header's
// StaticModel over the golden inputs and exits 0 only if every output is within
// 1e-5 |expected| + 1e-6 of the golden one (compile it with ctnn's include path and -march).
// --print lists the layers the model maps to, and writes nothing.
// Any node it cannot map exactly is an error naming the node, its operator and the attribute;
// the exit status is then 1 and no file is written.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "ctnn/onnx/header.hpp"

namespace {
int usage() {
  std::cerr << "usage: ctnn-onnx MODEL.onnx --name NAME -o OUT.hpp [--test-data DIR]... "
               "[--bind INPUT=FILE.pb]...\n"
               "       ctnn-onnx MODEL.onnx --print\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string model_path, name, out, test_program;
  std::vector<std::string> test_dirs, binds;
  bool print = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "ctnn-onnx: " << a << " needs a value\n";
        std::exit(usage());
      }
      return argv[++i];
    };
    if (a == "--name") name = next();
    else if (a == "-o") out = next();
    else if (a == "--test-data") test_dirs.push_back(next());
    else if (a == "--bind") binds.push_back(next());
    else if (a == "--print") print = true;
    else if (a == "--test-program") test_program = next();
    else if (a == "-h" || a == "--help") return usage(), 0;
    else if (!a.empty() && a[0] == '-') return std::cerr << "ctnn-onnx: unknown option " << a << "\n", usage();
    else if (model_path.empty()) model_path = a;
    else return std::cerr << "ctnn-onnx: a second model file " << a << "\n", usage();
  }
  if (model_path.empty() || (!print && (name.empty() || out.empty()))) return usage();
  if (!test_program.empty() && test_dirs.empty()) {
    std::cerr << "ctnn-onnx: --test-program needs --test-data (the golden inputs and outputs)\n";
    return 2;
  }
  try {
    const ::onnx::ModelProto model = ctnn::onnx::read_model_file(model_path);
    ctnn::onnx::ImportOptions options;
    for (const std::string& b : binds) {
      const auto eq = b.find('=');
      if (eq == std::string::npos || eq == 0)
        ctnn::fail("ctnn-onnx: --bind ", b, " is not INPUT=FILE.pb.");
      options.bound[b.substr(0, eq)] = ctnn::onnx::read_tensor_file(b.substr(eq + 1));
    }
    ctnn::onnx::TestData tests;
    for (const std::string& d : test_dirs) ctnn::onnx::bind_test_inputs(model, d, options);
    const ctnn::onnx::ImportedModel m = ctnn::onnx::import_model(model, options);
    for (const std::string& d : test_dirs) ctnn::onnx::append_test_data(d, m, tests);
    if (print) {
      std::cout << m.model_type() << "\n";
      for (std::size_t k = 0; k < m.layers.size(); ++k)
        std::cout << "  " << k << " " << m.layers[k].spec << " <- " << m.layers[k].onnx_op << " '"
                  << m.layers[k].onnx_node << "'\n";
      std::cout << m.param_count() << " parameters\n";
      return 0;
    }
    std::string source = model_path;
    if (const auto slash = source.find_last_of('/'); slash != std::string::npos) source = source.substr(slash + 1);
    ctnn::onnx::write_header(out, m, name, source, test_dirs.empty() ? nullptr : &tests);
    if (!test_program.empty()) {
      std::string header = out;
      if (const auto slash = header.find_last_of('/'); slash != std::string::npos) header = header.substr(slash + 1);
      ctnn::onnx::write_test_program(test_program, header, name);
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
