// conformance_gen: turns ONNX's own operator tests (Debian's libonnx-testdata) into ctnn models.
//
//   conformance_gen TESTDATA_DIR OUT_DIR [OPERATOR...]   (the build's list of mapped operators)
//
// For each case under TESTDATA_DIR/{node,pytorch-converted}/test_* whose model uses an operator
// ctnn-onnx maps (ctnn::onnx::mapped_operators()), it imports model.onnx with test_data_set_0's
// inputs bound (as tools/ctnn_onnx.cpp --test-data does) and writes
//   OUT_DIR/cases/<suite>_<case>.hpp     the ctnn-onnx header with the case's golden data,
//   OUT_DIR/conformance_<Op>.cpp         per operator, a function running its cases,
//   OUT_DIR/conformance_registry.hpp     those functions and every skipped case with the
//                                        reason ctnn-onnx gave.
// A case is filed under the first mapped operator its graph uses. The test
// (test_onnx_conformance.cpp) runs them and checks the README's table.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ctnn/onnx/header.hpp"

namespace fs = std::filesystem;

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c == '\n' ? ' ' : c;
  }
  return o;
}
// The reason without "ONNX node 0 'name' (Op): ".
std::string reason(std::string what, const std::string& root) {
  for (std::size_t p; (p = what.find(root)) != std::string::npos;) what.erase(p, root.size() + 1);
  if (what.rfind("ONNX node ", 0) == 0) {
    const auto p = what.find("): ");
    if (p != std::string::npos) what = what.substr(p + 3);
  } else if (what.rfind("ONNX: ", 0) == 0) {
    what = what.substr(6);
  }
  return what;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: conformance_gen TESTDATA_DIR OUT_DIR [OPERATOR...]\n";
    return 2;
  }
  const fs::path root = argv[1], out = argv[2];
  fs::create_directories(out / "cases");
  const auto& ops = ctnn::onnx::mapped_operators();
  // The build lists the operators (one source file each): it must list these.
  if (argc > 3 && std::vector<std::string>(argv + 3, argv + argc) != ops) {
    std::cerr << "conformance_gen: tests/onnx/CMakeLists.txt's operator list differs from "
                 "ctnn::onnx::mapped_operators(); make them the same.\n";
    return 1;
  }
  struct Case { std::string ns, path; };
  std::map<std::string, std::vector<Case>> run;                       // op -> cases
  std::vector<std::array<std::string, 3>> skipped;                      // op, case, reason
  std::vector<std::array<std::string, 3>> mixed;                        // op, case, other operators
  for (const char* suite : {"node", "pytorch-converted"}) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root / suite))
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const fs::path& d : dirs) {
      const std::string name = d.filename().string();
      const std::string label = std::string(suite) + "/" + name;
      ::onnx::ModelProto m;
      try {
        m = ctnn::onnx::read_model_file((d / "model.onnx").string());
      } catch (const std::exception&) {
        continue;  // not readable by ONNX 1.12 itself: not a case of a mapped operator
      }
      // A case of a mapped operator: every node's operator is mapped (a case that also uses
      // another operator, such as the *_expanded function tests, tests that one).
      std::string op;
      bool all_mapped = true;
      for (const auto& n : m.graph().node()) {
        const bool mapped = std::find(ops.begin(), ops.end(), n.op_type()) != ops.end();
        if (op.empty() && mapped) op = n.op_type();
        all_mapped = all_mapped && (mapped || n.op_type() == "Constant");
      }
      if (op.empty()) continue;
      if (!all_mapped) {
        std::string others;
        for (const auto& n : m.graph().node())
          if (std::find(ops.begin(), ops.end(), n.op_type()) == ops.end() && n.op_type() != "Constant" &&
              others.find(n.op_type()) == std::string::npos)
            others += (others.empty() ? "" : ", ") + n.op_type();
        mixed.push_back({op, label, others});
        continue;
      }
      std::string why;
      try {
        ctnn::onnx::ImportOptions options;
        ctnn::onnx::TestData tests;
        ctnn::onnx::bind_test_inputs(m, (d / "test_data_set_0").string(), options);
        const auto imported = ctnn::onnx::import_model(m, options);
        ctnn::onnx::append_test_data((d / "test_data_set_0").string(), imported, tests);
        std::string ns = std::string(suite[0] == 'n' ? "node_" : "torch_") + name;
        std::replace(ns.begin(), ns.end(), '-', '_');
        const std::string header = "cases/" + ns + ".hpp";
        ctnn::onnx::write_header((out / header).string(), imported, ns, label, &tests);
        run[op].push_back({ns, label});
      } catch (const std::exception& e) {
        why = reason(e.what(), root.string());
      }
      if (!why.empty()) skipped.push_back({op, label, why});
    }
  }
  for (const std::string& op : ops) {
    std::ofstream f(out / ("conformance_" + op + ".cpp"));
    f << "// Generated by conformance_gen. Do not edit.\n#include \"conformance_check.hpp\"\n";
    for (const Case& c : run[op]) f << "#include \"cases/" << c.ns << ".hpp\"\n";
    f << "\nvoid conformance_" << op << "([[maybe_unused]] std::vector<ctnn_onnx_test::Result>& results) {\n";
    // Each model object static (its buffers, up to megabytes, off the stack).
    for (const Case& c : run[op])
      f << "  {\n    static auto net = " << c.ns << "::make();\n"
        << "    results.push_back(ctnn_onnx_test::check<" << c.ns << "::Model>(\"" << op << "\", \"" << c.path
        << "\", " << c.ns << "::parameters, net, " << c.ns << "::test_samples, " << c.ns
        << "::test_inputs, " << c.ns << "::test_outputs, " << c.ns << "::input_order, " << c.ns
        << "::output_order));\n  }\n";
    f << "}\n";
  }
  std::ofstream r(out / "conformance_registry.hpp");
  r << "// Generated by conformance_gen. Do not edit.\n#pragma once\n#include \"conformance_check.hpp\"\n\n";
  for (const std::string& op : ops) r << "void conformance_" << op << "(std::vector<ctnn_onnx_test::Result>&);\n";
  r << "\ninline void run_conformance(std::vector<ctnn_onnx_test::Result>& results) {\n";
  for (const std::string& op : ops) r << "  conformance_" << op << "(results);\n";
  r << "}\n\nnamespace ctnn_onnx_test {\ninline const std::vector<std::string> operators = {";
  for (const std::string& op : ops) r << "\"" << op << "\", ";
  r << "};\n}  // namespace ctnn_onnx_test\n\ninline const ctnn_onnx_test::Skip* ctnn_onnx_test_skipped() {\n  static const ctnn_onnx_test::Skip cases[] = {\n";
  for (const auto& s : skipped)
    r << "    {\"" << s[0] << "\", \"" << s[1] << "\", \"" << escape(s[2]) << "\"},\n";
  r << "    {nullptr, nullptr, nullptr}};\n  return cases;\n}\n";
  r << "inline const ctnn_onnx_test::Skip* ctnn_onnx_test_mixed() {\n  static const ctnn_onnx_test::Skip cases[] = {\n";
  for (const auto& s : mixed) r << "    {\"" << s[0] << "\", \"" << s[1] << "\", \"" << escape(s[2]) << "\"},\n";
  r << "    {nullptr, nullptr, nullptr}};\n  return cases;\n}\n";
  std::size_t n = 0;
  for (const auto& [op, cs] : run) n += cs.size();
  std::cout << "conformance_gen: " << n << " cases imported, " << skipped.size() << " skipped\n";
  return 0;
}
