// The int8 export and its static inference path: StaticQuantizedModel agreeing bit for bit with
// the QuantizedModel it came from on real Fashion-MNIST images, without allocating; the packing
// an exported header's compiler does equal to QuantizedModel's; and the header's text.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/export.hpp>
#include <ctnn/deploy/quantize.hpp>
#include <ctnn/deploy/static_quantized.hpp>

#include "tiny_model.hpp"
#include "../allocation_counter.hpp"

using namespace ctnn;
using Catch::Matchers::Contains;

namespace {

const std::string kDir = CTNN_FASHION_MNIST_DIR;

// A tiny model trained for one epoch and quantized on 1,000 of its training images, built once.
struct Fixture {
  data::Dataset train = data::load_idx(kDir + "/train-images-idx3-ubyte.gz",
                                       kDir + "/train-labels-idx1-ubyte.gz", {.limit = 2000});
  data::Dataset test = data::load_idx(kDir + "/t10k-images-idx3-ubyte.gz",
                                      kDir + "/t10k-labels-idx1-ubyte.gz", {.limit = 300});
  TinyModel model{5};
  QuantizedModel<TinyModel> quantized = make_quantized();

  QuantizedModel<TinyModel> make_quantized() {
    Adam opt(3e-3f);
    fit(model, opt, SparseCategoricalCrossEntropy{}, train, {.epochs = 1, .verbose = 0});
    return quantize(model, std::span<const float>(train.x.data(), 1000 * TinyModel::input_size));
  }
};
Fixture& fixture() {
  static Fixture f;
  return f;
}

using Forward = detail::Int8Forward<TinyModel>;

// Concatenation by appends (GCC 12's -Wrestrict misfires on `"literal" + std::string` at -O3).
template <class... A>
std::string cat(const A&... a) {
  std::string s;
  (s += ... += a);
  return s;
}

// The quantized model's int8 weights laid out as an exported header's `weights` array.
std::vector<std::int8_t> plain_weights(const QuantizedModel<TinyModel>& q) {
  constexpr auto& plan = Forward::plan;
  std::vector<std::int8_t> w(plan.weights);
  detail::static_for<TinyModel::num_layers>([&]<std::size_t I>() {
    if constexpr (Forward::is_compute(plan.kind[I]))
      for (std::size_t k = 0; k < plan.K[I]; ++k)
        for (std::size_t n = 0; n < plan.N[I]; ++n)
          w[plan.weight_offset[I] + k * plan.N[I] + n] = q.template weight<I>(k, n);
  });
  return w;
}

}  // namespace

TEST_CASE("StaticQuantizedModel predicts what QuantizedModel predicts, bit for bit, allocating nothing") {
  auto& f = fixture();
  static deploy::StaticQuantizedModel<TinyModel> net(f.quantized.int8_parameters());
  // The tiny model's tensors by liveness, in 64-byte slots: the quantized 784 input bytes (832)
  // and the stride-2 Conv2D's 13x13x4 bytes (704) are live at once, the peak; then 6x6x4 pooled
  // bytes, 16 bytes, and only the 10 outputs and the softmax's in float.
  STATIC_REQUIRE(Forward::plan.arena == 832 + 704);
  STATIC_REQUIRE(Forward::plan.bytes[1] && Forward::plan.bytes[3] && Forward::plan.bytes[5] &&
                 !Forward::plan.bytes[7] && !Forward::plan.bytes[8]);
  STATIC_REQUIRE(decltype(net)::buffer_bytes < 4096);
  STATIC_REQUIRE(decltype(net)::weight_bytes >= QuantizedModel<TinyModel>::weight_bytes);
  std::vector<float> want(f.test.size() * TinyModel::output_size);
  f.quantized.predict(f.test.x, want);
  std::size_t same = 0, same_class = 0;
  const std::size_t before = g_allocations.load();
  for (std::size_t i = 0; i < f.test.size(); ++i) {
    const float* x = f.test.sample(i);
    const float* got = net.predict(x);
    same += std::memcmp(got, want.data() + i * TinyModel::output_size,
                        TinyModel::output_size * sizeof(float)) == 0;
    same_class += net.predict_class(x) == f.quantized.predict_class({x, TinyModel::input_size});
  }
  // predict_class on QuantizedModel returns an array by value: no heap either.
  CHECK(g_allocations.load() == before);
  CHECK(same == f.test.size());
  CHECK(same_class == f.test.size());
}

TEST_CASE("The packing an exported header asks of the compiler equals QuantizedModel's") {
  auto& f = fixture();
  const auto w = plain_weights(f.quantized);
  constexpr std::size_t kWeights = Forward::plan.weights;
  REQUIRE(w.size() == kWeights);
  std::int8_t arr[kWeights];
  std::copy(w.begin(), w.end(), arr);
  const auto packed = deploy::pack_int8_weights<TinyModel>(arr);
  // Compare the layers' packed bytes (the 64-byte rounding between layers is never read).
  constexpr auto& plan = Forward::plan;
  for (std::size_t i = 0; i < TinyModel::num_layers; ++i) {
    if (!Forward::is_compute(plan.kind[i])) continue;
    const std::size_t size = kernels::int8_packed_size(plan.K[i], plan.N[i]);
    CHECK(std::memcmp(packed.data() + plan.packed_offset[i],
                      f.quantized.int8_parameters().packed + plan.packed_offset[i], size) == 0);
  }
  // A constant-evaluated packing compiles (what the header's `constexpr auto packed` needs).
  static constexpr std::int8_t ones[kWeights] = {1};
  constexpr auto packed_ones = deploy::pack_int8_weights<TinyModel>(ones);
  STATIC_REQUIRE(packed_ones[0] == 1);
  STATIC_REQUIRE(packed_ones[1] == 0);
}

TEST_CASE("export_header writes an int8 model: its weights, scales, biases and make()") {
  auto& f = fixture();
  const std::string path = "test_export_int8_model.hpp";
  deploy::export_header(path, f.quantized, "tiny_int8");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  CHECK_THAT(s, Contains("namespace tiny_int8 {"));
  CHECK_THAT(s, Contains(cat("using Model = ", deploy::cpp_type<TinyModel>(), ";")));
  CHECK_THAT(s, Contains(cat("alignas(64) inline constexpr std::int8_t weights[",
                             std::to_string(Forward::plan.weights), "] = {")));
  CHECK_THAT(s, Contains("inline constexpr auto packed = ctnn::deploy::pack_int8_weights<Model>(weights);"));
  for (const char* a : {"weight_scales[30]", "multipliers[30]", "biases[30]", "input_scales[3]"})
    CHECK_THAT(s, Contains(cat("inline constexpr float ", a)));
  CHECK_THAT(s, Contains("inline constexpr bool input_signed[3] = {"));
  CHECK_THAT(s, Contains("inline ctnn::deploy::StaticQuantizedModel<Model> make()"));
  // The first weights, in the header's order W(k, n) at [k * N + n].
  const auto w = plain_weights(f.quantized);
  std::string first = cat("weights[", std::to_string(w.size()), "] = {\n   ");
  for (std::size_t i = 0; i < 4; ++i) first += cat(" ", std::to_string(int(w[i])), ",");
  CHECK_THAT(s, Contains(first));
  std::remove(path.c_str());
  CHECK_THROWS_WITH(deploy::export_header(path, f.quantized, "int8-model"),
                    Contains("not a C++ identifier"));
}

TEST_CASE("write_constexpr_array writes int8 values as integers and bools as true/false") {
  std::ostringstream os;
  const std::vector<std::int8_t> q = {-127, 0, 5, 127};
  deploy::write_constexpr_array<std::int8_t>(os, "q", q);
  CHECK(os.str() == "alignas(64) inline constexpr std::int8_t q[4] = {\n    -127, 0, 5, 127};\n");
  std::ostringstream ob;
  const bool b[] = {true, false};
  deploy::write_constexpr_array<bool>(ob, "b", std::span<const bool>(b));
  CHECK(ob.str() == "alignas(64) inline constexpr bool b[2] = {\n    true, false};\n");
}
