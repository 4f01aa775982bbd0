// The check each generated ONNX conformance case runs (tests/onnx/conformance_gen.cpp): the
// case's samples through the imported model, in ONNX's order in and out (ctnn/onnx/layout.hpp),
// against the outputs ONNX's test holds: |ctnn - expected| <= 1e-5 |expected| + 1e-6.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ctnn/deploy/static_model.hpp>
#include <ctnn/onnx/layout.hpp>

namespace ctnn_onnx_test {

struct Result {
  std::string op, path;
  bool pass = false;
  double max_error = 0;  // the largest |ctnn - expected| / (|expected| + 0.1)
  std::string detail;    // the first failing value
};
struct Skip {
  const char* op;
  const char* path;
  const char* reason;
};

template <class Model, class Net>
Result check(const char* op, const char* path, const float*, Net& net, std::size_t samples,
             const float* inputs, const float* outputs, std::span<const std::uint32_t> in_order,
             std::span<const std::uint32_t> out_order) {
  constexpr std::size_t in = Model::input_size, out = Model::output_size;
  Result r{op, path, true, 0.0, {}};
  std::vector<float> x(in), y(out);
  for (std::size_t s = 0; s < samples; ++s) {
    ctnn::onnx::to_ctnn<float>(in_order, inputs + s * in, x);
    const float* p = net.predict(x.data());
    ctnn::onnx::to_onnx<float>(out_order, std::span<const float>(p, out), y.data());
    for (std::size_t i = 0; i < out; ++i) {
      const double want = outputs[s * out + i], got = y[i];
      const double err = std::abs(got - want);
      r.max_error = std::max(r.max_error, err / (std::abs(want) + 0.1));
      if (!(err <= 1e-5 * std::abs(want) + 1e-6) && r.pass) {
        r.pass = false;
        r.detail = "sample " + std::to_string(s) + " output " + std::to_string(i) + ": ctnn " +
                   std::to_string(got) + ", expected " + std::to_string(want);
      }
    }
  }
  return r;
}

}  // namespace ctnn_onnx_test
