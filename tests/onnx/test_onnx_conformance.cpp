// ONNX's own operator tests (Debian's libonnx-testdata) through ctnn: every case of every
// operator ctnn-onnx maps is imported (conformance_gen.cpp, at build time) and run here; the
// README's conformance table must be the one this run computes.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conformance_registry.hpp"

namespace {
// The README block between the markers, as this run computes it.
std::string table(const std::vector<ctnn_onnx_test::Result>& results) {
  struct Row { std::size_t cases = 0, run = 0, passed = 0, skipped = 0; };
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  const auto row = [&](const std::string& op) -> Row& {
    if (!rows.count(op)) order.push_back(op);
    return rows[op];
  };
  for (const std::string& op : ctnn_onnx_test::operators) row(op);
  for (const auto& r : results) {
    Row& w = row(r.op);
    ++w.cases, ++w.run, w.passed += r.pass;
  }
  std::size_t skipped = 0;
  for (const auto* s = ctnn_onnx_test_skipped(); s->op; ++s) {
    Row& w = row(s->op);
    ++w.cases, ++w.skipped, ++skipped;
  }
  std::ostringstream os;
  os << "| ONNX operator | test cases | run | passed | skipped |\n|---|---:|---:|---:|---:|\n";
  Row all;
  for (const std::string& op : order) {
    const Row& w = rows[op];
    os << "| " << op << " | " << w.cases << " | " << w.run << " | " << w.passed << " | " << w.skipped << " |\n";
    all.cases += w.cases, all.run += w.run, all.passed += w.passed, all.skipped += w.skipped;
  }
  os << "| **all** | " << all.cases << " | " << all.run << " | " << all.passed << " | " << all.skipped << " |\n";
  os << "\n<details><summary>The " << skipped << " skipped cases and why (ctnn-onnx's error for each)</summary>\n\n";
  for (const auto* s = ctnn_onnx_test_skipped(); s->op; ++s)
    os << "- " << s->op << ": `" << s->path << "`: " << s->reason << "\n";
  os << "\n</details>\n";
  std::size_t mixed = 0;
  for (const auto* s = ctnn_onnx_test_mixed(); s->op; ++s) ++mixed;
  os << "\n<details><summary>" << mixed << " further cases use a mapped operator together with "
        "operators ctnn-onnx does not map (tests of those, such as ONNX's *_expanded functions); "
        "not counted above</summary>\n\n";
  for (const auto* s = ctnn_onnx_test_mixed(); s->op; ++s)
    os << "- " << s->op << ": `" << s->path << "`: also " << s->reason << "\n";
  os << "\n</details>\n";
  return os.str();
}
}  // namespace

TEST_CASE("ONNX conformance: every imported case of ONNX's operator tests matches its expected outputs") {
  std::vector<ctnn_onnx_test::Result> results;
  run_conformance(results);
  REQUIRE(results.size() >= 100);
  std::size_t failed = 0;
  for (const auto& r : results) {
    INFO(r.op << " " << r.path << ": " << r.detail);
    CHECK(r.pass);
    failed += !r.pass;
  }
  CHECK(failed == 0);

  // The README holds this table between its markers (scripts/onnx_conformance.sh rewrites it).
  const std::string expected = table(results);
  {
    std::ofstream f(CTNN_ONNX_TABLE_OUT);
    f << expected;
  }
  std::ifstream readme(CTNN_README);
  std::stringstream ss;
  ss << readme.rdbuf();
  const std::string text = ss.str();
  const std::string begin = "<!-- onnx-conformance:begin -->\n", end = "<!-- onnx-conformance:end -->";
  const auto b = text.find(begin), e = text.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("README.md's ONNX conformance table differs from this run's (written to " CTNN_ONNX_TABLE_OUT
       "; scripts/onnx_conformance.sh copies it into the README)");
  CHECK(text.substr(b + begin.size(), e - b - begin.size()) == expected);
}
