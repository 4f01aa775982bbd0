// The MobileNet-era activations (layers/bounded_relu.hpp, hard_swish.hpp, hard_sigmoid.hpp,
// swish.hpp, elu.hpp; kernels/activations.hpp): kernels against scalar references (tails, NaN in
// every lane, +-inf, large |x|), derivatives at the kinks as PyTorch's, central-difference
// gradient checks in double, NaN through a model, thread-count independence, int8 (run in
// float, as Sigmoid and Tanh), export, and a model of them learning Fashion-MNIST.
#include "../gradcheck.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/deploy/export.hpp>
#include <ctnn/deploy/quantize.hpp>

#include "activations_exported.hpp"

using namespace ctnn;
using ctnn_test::check_layer_gradients;

namespace {

template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, double>;
template <class Spec, std::size_t... D>
using OnF = typename Spec::template bind<Shape<D...>, float>;

const std::size_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 67};
constexpr double kInf = std::numeric_limits<double>::infinity();

// Scalar references in double, written from the definitions (not from the kernels' pieces).
double relu6_ref(double x) { return x != x ? x : std::min(std::max(x, 0.0), 6.0); }
double bounded_ref(double x, double m, double a, double t) {
  return x >= m ? m : x >= t ? x : a * (x - t);
}
double hard_swish_ref(double x) {
  return std::isinf(x) ? (x > 0 ? x : 0.0) : x * relu6_ref(x + 3) / 6;
}
double hard_sigmoid_ref(double x) { return relu6_ref(x + 3) / 6; }
double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double swish_ref(double x) { return x == -kInf ? 0.0 : x * sigmoid_ref(x); }
double elu_ref(double x, double alpha) { return x > 0 ? x : alpha * std::expm1(x); }
// Derivatives, PyTorch's choice at the kinks; NaN x as PyTorch's backward treats it.
double bounded_d(double x, double m, double a, double t) {
  return x >= m ? 0.0 : x <= t ? a : 1.0;
}
double hard_swish_d(double x) { return x < -3 ? 0.0 : x <= 3 ? x / 3 + 0.5 : 1.0; }
double hard_sigmoid_d(double x) { return x > -3 && x < 3 ? 1.0 / 6 : 0.0; }
double swish_d(double x) {
  if (std::isinf(x)) return x > 0 ? 1.0 : 0.0;
  const double s = sigmoid_ref(x);
  return s * (1 + x * (1 - s));
}
double elu_d(double x, double alpha) { return x <= 0 ? alpha * std::exp(x) : 1.0; }

// Inputs: random over [-8, 8] with, at fixed positions, the kinks, +-inf, large |x| and values
// around the float Exp's limits (+-88, +-104).
template <class T>
std::vector<T> inputs(std::size_t n, Rng& rng) {
  static const double special[] = {0.0, -0.0, 6.0, 3.0, -3.0, 2.5, 0.5, kInf, -kInf, 1e30,
                                   -1e30, 100.0, -100.0, 88.5, -88.5, 104.5, -104.5, 1e-30,
                                   -1e-30, 1000.0, -1000.0, 5.999, 6.001, -2.999, -3.001, 3.001};
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = rng.uniform01() < 0.4 ? T(special[i % std::size(special)])
                                 : T(-8 + 16 * rng.uniform01());
  return x;
}

// |got - want| <= tol * (1 + |want|), infinities equal, NaN where and only where wanted.
template <class T>
void require_matches(const std::vector<T>& got, const std::vector<double>& want, double tol,
                     const std::vector<T>& x, const char* what) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << "(" << x[i] << ") = " << got[i] << ", reference " << want[i] << " (at " << i
              << " of " << got.size() << ")");
    if (std::isnan(want[i])) {
      REQUIRE(std::isnan(got[i]));
    } else if (std::isinf(want[i]) || std::abs(want[i]) > double(std::numeric_limits<T>::max())) {
      REQUIRE(double(got[i]) == (want[i] > 0 ? kInf : -kInf));
    } else {
      REQUIRE(std::abs(double(got[i]) - want[i]) <= tol * (1 + std::abs(want[i])));
    }
  }
}

// Every op of kernels/activations.hpp at n elements of type T, inputs from `x`.
template <class T>
void check_kernels(const std::vector<T>& x, const std::vector<T>& dy, double tol) {
  const std::size_t n = x.size();
  std::vector<T> y(n), dx(n);
  std::vector<double> want(n), dwant(n);
  const auto fwd = [&](auto ref, const char* what) {
    for (std::size_t i = 0; i < n; ++i) want[i] = ref(double(x[i]));
    require_matches(y, want, tol, x, what);
  };
  const auto bwd = [&](auto dref, const char* what) {
    for (std::size_t i = 0; i < n; ++i) dwant[i] = double(dy[i]) * dref(double(x[i]));
    require_matches(dx, dwant, tol, x, what);
  };
  kernels::bounded_relu_forward(n, x.data(), y.data(), T(6), T(0), T(0));
  fwd(relu6_ref, "relu6");
  kernels::bounded_relu_backward(n, x.data(), dy.data(), dx.data(), T(6), T(0), T(0));
  bwd([](double v) { return v != v ? 1.0 : bounded_d(v, 6, 0, 0); }, "relu6'");
  // Keras's ReLU(max_value=2.5, negative_slope=0.2, threshold=0.5); NaN - 0.5 is NaN.
  const T m = T(2.5), a = T(0.2), t = T(0.5);
  kernels::bounded_relu_forward(n, x.data(), y.data(), m, a, t);
  fwd([&](double v) { return v != v ? v : bounded_ref(v, m, a, t); }, "bounded_relu");
  kernels::bounded_relu_backward(n, x.data(), dy.data(), dx.data(), m, a, t);
  bwd([&](double v) { return v != v ? 1.0 : bounded_d(v, m, a, t); }, "bounded_relu'");

  kernels::hard_swish_forward(n, x.data(), y.data());
  fwd(hard_swish_ref, "hard_swish");
  kernels::hard_swish_backward(n, x.data(), dy.data(), dx.data());
  bwd([](double v) { return v != v ? 1.0 : hard_swish_d(v); }, "hard_swish'");

  kernels::hard_sigmoid_forward(n, x.data(), y.data());
  fwd(hard_sigmoid_ref, "hard_sigmoid");
  kernels::hard_sigmoid_backward(n, x.data(), dy.data(), dx.data());
  bwd([](double v) { return v != v ? 0.0 : hard_sigmoid_d(v); }, "hard_sigmoid'");

  // Sigmoid (kernels/elementwise.hpp) shares Swish's sigmoid: 0 far left, NaN kept.
  kernels::sigmoid_forward(n, x.data(), y.data());
  fwd(sigmoid_ref, "sigmoid");

  kernels::swish_forward(n, x.data(), y.data());
  fwd(swish_ref, "swish");
  kernels::swish_backward(n, x.data(), dy.data(), dx.data());
  bwd(swish_d, "swish'");  // NaN in gives NaN back

  for (const T alpha : {T(1), T(0.3)}) {
    kernels::elu_forward(n, x.data(), y.data(), alpha);
    fwd([&](double v) { return elu_ref(v, double(alpha)); }, "elu");
    kernels::elu_backward(n, x.data(), y.data(), dy.data(), dx.data(), alpha);
    bwd([&](double v) { return v != v ? 1.0 : elu_d(v, double(alpha)); }, "elu'");
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Activation kernels match scalar references, with tails, infinities, large |x|",
                   "", float, double) {
  using T = TestType;
  // A few ulp: Highway's Exp is within 1 ulp, Expm1 within 4, and a product or quotient adds one.
  const double tol = std::is_same_v<T, float> ? 8 * 6e-8 : 8 * 1.2e-16;
  for (std::size_t n : kSizes) {
    INFO("n = " << n);
    Rng rng(n);
    const auto x = inputs<T>(n, rng);
    std::vector<T> dy(n);
    for (auto& g : dy) g = T(-1 + 2 * rng.uniform01());
    check_kernels(x, dy, tol);
  }
}

TEMPLATE_TEST_CASE("A NaN in any lane of the vector or the tail gives NaN and touches no other lane",
                   "", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 8 * 6e-8 : 8 * 1.2e-16;
  for (std::size_t n : {std::size_t(1), std::size_t(9), std::size_t(17), std::size_t(33)})
    for (std::size_t at = 0; at < n; ++at) {
      INFO("n = " << n << ", NaN at " << at);
      Rng rng(n * 100 + at);
      auto x = inputs<T>(n, rng);
      x[at] = std::numeric_limits<T>::quiet_NaN();
      std::vector<T> dy(n);
      for (auto& g : dy) g = T(-1 + 2 * rng.uniform01());
      check_kernels(x, dy, tol);  // the references give NaN out for NaN in
    }
}

TEST_CASE("Derivatives at the kinks are PyTorch's") {
  using R6 = On<ReLU6, 4>;
  using HS = On<HardSwish, 4>;
  using HSig = On<HardSigmoid, 4>;
  using E = On<ELU<0.5>, 4>;
  const std::vector<double> dy(4, 1.0);
  std::vector<double> y(4), dx(4);
  const auto grad = [&]<class L>(L, std::vector<double> x) {
    L::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
    L::backward(nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, 1, nullptr,
                PassContext{});
    return dx;
  };
  // ReLU6 (hardtanh_backward): 0 at 0 and at 6.
  CHECK(grad(R6{}, {0.0, 6.0, 3.0, -1.0}) == std::vector<double>{0, 0, 1, 0});
  // HardSwish: the middle piece's x / 3 + 1/2 at both ends.
  CHECK(grad(HS{}, {-3.0, 3.0, -3.5, 3.5}) == std::vector<double>{-0.5, 1.5, 0, 1});
  // HardSigmoid: 0 at both ends.
  CHECK(grad(HSig{}, {-3.0, 3.0, 0.0, 4.0}) == std::vector<double>{0, 0, 1.0 / 6, 0});
  // ELU: alpha at 0 (the left piece), 1 just right of it.
  CHECK(grad(E{}, {0.0, 1e-300, -0.0, 2.0}) == std::vector<double>{0.5, 1, 0.5, 1});
  // Keras's threshold: BoundedReLU<4, 0.25, 1> jumps at 1 (0 from the left, 1 at it).
  using B = On<BoundedReLU<4.0, 0.25, 1.0>, 4>;
  std::vector<double> x{1.0, 4.0, 0.0, 2.0};
  B::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  CHECK(y == std::vector<double>{1.0, 4.0, -0.25, 2.0});
  CHECK(grad(B{}, x) == std::vector<double>{0.25, 0, 0.25, 1});
}

namespace {
// Layer L on inputs scaled by Scale (check_layer_gradients draws x from [-1, 1]): the kinks at
// +-3 and 6 and the tails of the smooth ones get checked too. dx is scaled back (chain rule).
template <class L, int Scale>
struct Scaled : L {
  using T = typename L::value_type;
  static constexpr std::size_t scratch_per_sample = L::scratch_per_sample + L::input_shape::size;
  static void forward(const T* p, const T* x, T* y, std::size_t n, T* s, const PassContext& c) {
    T* xs = s + n * L::scratch_per_sample;
    for (std::size_t i = 0; i < n * L::input_shape::size; ++i) xs[i] = x[i] * Scale;
    L::forward(p, xs, y, n, s, c);
  }
  static void backward(const T* p, const T*, const T* y, const T* dy, T* dx, T* dp, std::size_t n,
                       T* s, const PassContext& c) {
    const T* xs = s + n * L::scratch_per_sample;  // as forward left it
    L::backward(p, xs, y, dy, dx, dp, n, s, c);
    if (dx)
      for (std::size_t i = 0; i < n * L::input_shape::size; ++i) dx[i] *= Scale;
  }
};
}  // namespace

TEST_CASE("Central-difference gradients, in double, away from the kinks") {
  // With inputs uniform over [-Scale, Scale], no input of these seeds lies within the step h =
  // 1e-6 of a kink (a straddled kink would fail the check, not pass it).
  check_layer_gradients<Scaled<On<ReLU6, 7, 5>, 8>>();
  check_layer_gradients<Scaled<On<BoundedReLU<2.5, 0.2, 0.5>, 33>, 4>>(2);
  check_layer_gradients<Scaled<On<HardSwish, 37>, 5>>();
  check_layer_gradients<Scaled<On<HardSigmoid, 37>, 5>>();
  check_layer_gradients<Scaled<On<Swish, 3, 11>, 1>>();
  check_layer_gradients<Scaled<On<Swish, 41>, 12>>();
  check_layer_gradients<Scaled<On<SiLU, 5>, 40>>();  // far tails: derivative near 0 and 1
  check_layer_gradients<Scaled<On<ELU<>, 29>, 3>>();
  check_layer_gradients<Scaled<On<ELU<0.3>, 29>, 6>>();
  check_layer_gradients<Scaled<On<ELU<2.0>, 5>, 1>>(4);
}

namespace {
// Model M (a Dense or Conv2D, then ReLU6) against its first layer run alone followed by the
// standalone ReLU6 kernel: the fused store must give the same bits, NaN rows included.
template <class M>
void check_fused_relu6(std::uint64_t seed) {
  using First = typename M::template layer<0>;
  using T = typename M::value_type;
  const std::size_t n = 5;
  M model(seed);
  for (auto& p : model.parameters()) p *= T(8);  // outputs on both sides of 0 and 6
  Rng rng(seed);
  std::vector<T> x(n * M::input_size);
  for (auto& v : x) v = T(-1 + 2 * rng.uniform01());
  x[2 * M::input_size + 1] = std::numeric_limits<T>::quiet_NaN();  // sample 2
  typename M::Workspace ws;
  ws.reserve(n, false);
  std::copy(x.begin(), x.end(), ws.input());
  const T* fused = model.forward(ws, n, PassContext{});
  std::vector<T> z(n * M::output_size), want(n * M::output_size);
  AlignedBuffer<T> scratch(n * First::scratch_per_sample + 1);
  First::forward(model.parameters().data(), x.data(), z.data(), n, scratch.data(), PassContext{});
  kernels::bounded_relu_forward(z.size(), z.data(), want.data(), T(6), T(0), T(0));
  std::size_t clipped = 0, zeroed = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("output " << i << ": fused " << fused[i] << ", separate " << want[i]);
    REQUIRE(std::memcmp(&fused[i], &want[i], sizeof(T)) == 0);
    clipped += want[i] == T(6);
    zeroed += want[i] == T(0);
  }
  CHECK(clipped > 0);
  CHECK(zeroed > 0);
  // The NaN reached sample 2's outputs (all of a Dense's, a Conv2D's in the windows over it):
  // the bitwise comparison above then covered the epilogue on NaN.
  CHECK(std::count_if(fused + 2 * M::output_size, fused + 3 * M::output_size,
                      [](T v) { return std::isnan(v); }) > 0);
}
}  // namespace

TEST_CASE("ReLU6 after Dense or Conv2D is fused into the GEMM store, bit for bit the same") {
  // Fused: no activation buffer of its own, as ReLU; other BoundedReLUs are a pass of their own.
  STATIC_REQUIRE(Sequential<Input<7>, Dense<19>, ReLU6>::activation_floats_per_sample ==
                 Sequential<Input<7>, Dense<19>, ReLU>::activation_floats_per_sample);
  STATIC_REQUIRE(Sequential<Input<7>, Dense<19>, BoundedReLU<5.0>>::activation_floats_per_sample >
                 Sequential<Input<7>, Dense<19>, ReLU>::activation_floats_per_sample);
  STATIC_REQUIRE(fused_epilogue<OnF<ReLU6, 3>> == Epilogue::relu6);
  STATIC_REQUIRE(fused_epilogue<OnF<ReLU, 3>> == Epilogue::relu);
  STATIC_REQUIRE(fused_epilogue<OnF<BoundedReLU<6.0, 0.1>, 3>> == Epilogue::none);
  STATIC_REQUIRE(fused_epilogue<OnF<HardSwish, 3>> == Epilogue::none);
  check_fused_relu6<Sequential<Input<7>, Dense<19>, ReLU6>>(1);
  check_fused_relu6<BasicSequential<double, Input<7>, Dense<19>, ReLU6>>(2);
  check_fused_relu6<Sequential<Input<6, 5, 2>, Conv2D<9, 3, 3, 1, Padding::same>, ReLU6>>(3);
  check_fused_relu6<BasicSequential<double, Input<6, 5, 2>, Conv2D<9, 3, 3>, ReLU6>>(4);
}

TEST_CASE("Model gradients through a fused ReLU6, central differences in double") {
  // Dense + ReLU6 and Conv2D + ReLU6 (both fused) in one model: ReLU6's backward then reads the
  // clamped output in place of its input. Weights scaled so outputs cross 0 and 6.
  using M = BasicSequential<double, Input<5, 4, 2>, Conv2D<3, 2, 2>, ReLU6, Flatten, Dense<7>,
                            ReLU6, Dense<2>>;
  const std::size_t n = 3;
  Rng rng(21);
  M model(6);
  for (auto& p : model.parameters()) p = 4 * p + 0.5 * (rng.uniform01() - 0.5);
  const auto x = ctnn_test::random_vector(n * M::input_size, rng, -2, 2);
  const auto r = ctnn_test::random_vector(n * M::output_size, rng);
  typename M::Workspace ws;
  ws.reserve(n, true);
  const auto f = [&] {
    std::copy(x.begin(), x.end(), ws.input());
    const double* y = model.forward(ws, n, PassContext{true, 0});
    double s = 0;
    for (std::size_t i = 0; i < n * M::output_size; ++i) s += r[i] * y[i];
    return s;
  };
  // Both ReLU6s see outputs on both flat pieces (else the check proves less): the models cut
  // after each share the arena's first segments.
  const auto flat_pieces = [&]<class Cut>(Cut cut) {
    std::copy_n(model.parameters().data(), Cut::arena_size, cut.parameters().data());
    std::vector<double> y(n * Cut::output_size);
    cut.predict(x, y);
    CHECK(std::count(y.begin(), y.end(), 6.0) > 0);
    CHECK(std::count(y.begin(), y.end(), 0.0) > 0);
  };
  flat_pieces(BasicSequential<double, Input<5, 4, 2>, Conv2D<3, 2, 2>, ReLU6>{});
  flat_pieces(BasicSequential<double, Input<5, 4, 2>, Conv2D<3, 2, 2>, ReLU6, Flatten, Dense<7>,
                              ReLU6>{});
  f();
  std::copy(r.begin(), r.end(), ws.gradient(0));
  std::vector<double> grads(M::arena_size, std::numeric_limits<double>::quiet_NaN());
  model.backward(ws, n, grads.data(), PassContext{true, 0});
  auto params = model.parameters();
  const double h = 1e-6;
  std::size_t checked = 0;
  ctnn::detail::static_for<M::num_layers>([&]<std::size_t I>() {
    for (std::size_t k = 0; k < M::template layer<I>::param_count; ++k) {
      const std::size_t i = M::template param_offset<I> + k;
      const double keep = params[i];
      params[i] = keep + h;
      const double fp = f();
      params[i] = keep - h;
      const double fm = f();
      params[i] = keep;
      ctnn_test::require_close(grads[i], (fp - fm) / (2 * h), "dparam", i);
      ++checked;
    }
  });
  CHECK(checked == M::param_count);
}

TEST_CASE("Layer kinds, names, settings and the type each spells in an export") {
  STATIC_REQUIRE(std::is_same_v<SiLU, Swish>);
  STATIC_REQUIRE(std::is_same_v<ReLU6, BoundedReLU<6.0>>);
  STATIC_REQUIRE(layer_kind<OnF<ReLU6, 3>> == LayerKind::bounded_relu);
  STATIC_REQUIRE(layer_kind<OnF<HardSwish, 3>> == LayerKind::hard_swish);
  STATIC_REQUIRE(layer_kind<OnF<HardSigmoid, 3>> == LayerKind::hard_sigmoid);
  STATIC_REQUIRE(layer_kind<OnF<Swish, 3>> == LayerKind::swish);
  STATIC_REQUIRE(layer_kind<OnF<ELU<>, 3>> == LayerKind::elu);
  // None of them is taken for a ReLU to fuse into a GEMM.
  STATIC_REQUIRE(layer_kind<OnF<ReLU6, 3>> != LayerKind::relu);
  STATIC_REQUIRE(Layer<OnF<ELU<0.5>, 2, 2>> && Layer<On<BoundedReLU<1.0, 0.1>, 4>>);
  CHECK(std::string(OnF<ReLU6, 3>::name) == "ReLU6");
  CHECK(std::string(OnF<BoundedReLU<6.0, 0.1>, 3>::name) == "BoundedReLU");
  using M = Sequential<Input<6>, Dense<4>, ReLU6, Dense<4>, BoundedReLU<2.5, 0.2, 0.5>, Dense<4>,
                       HardSwish, Dense<4>, HardSigmoid, Dense<4>, SiLU, Dense<4>, ELU<>, Dense<3>,
                       ELU<0.25>, Dense<2>, Softmax>;
  CHECK(deploy::cpp_type<M>() ==
        "ctnn::Sequential<ctnn::Input<6>, ctnn::Dense<4>, ctnn::ReLU6, ctnn::Dense<4>, "
        "ctnn::BoundedReLU<2.500000, 0.200000, 0.500000>, ctnn::Dense<4>, ctnn::HardSwish, "
        "ctnn::Dense<4>, ctnn::HardSigmoid, ctnn::Dense<4>, ctnn::Swish, ctnn::Dense<4>, "
        "ctnn::ELU<1.000000>, ctnn::Dense<3>, ctnn::ELU<0.250000>, ctnn::Dense<2>, ctnn::Softmax>");
  CHECK(topology<M>() ==
        "Input(None, 6) > Dense(None, 4) > ReLU6[max_value 6.000000 negative_slope 0.000000 "
        "threshold 0.000000](None, 4) > Dense(None, 4) > BoundedReLU[max_value 2.500000 "
        "negative_slope 0.200000 threshold 0.500000](None, 4) > Dense(None, 4) > HardSwish(None, "
        "4) > Dense(None, 4) > HardSigmoid(None, 4) > Dense(None, 4) > Swish(None, 4) > "
        "Dense(None, 4) > ELU[alpha 1.000000](None, 4) > Dense(None, 3) > ELU[alpha "
        "0.250000](None, 3) > Dense(None, 2) > Softmax(None, 2)");
  // Different settings, different topologies: a model file of one does not load into the other.
  CHECK(topology<Sequential<Input<3>, ELU<>>>() != topology<Sequential<Input<3>, ELU<0.5>>>());
}

TEST_CASE("An exported model of these layers compiles and predicts what the model predicts") {
  // activations_exported.cpp includes only what an exported header includes
  // (ctnn/deploy/static_model.hpp) and declares the model with the text export_header writes.
  using Model = ExportedActivationModel;
  Model model(5);
  const std::string path = "activations_exported_test.hpp";
  deploy::export_header(path, model, "act_model");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains(std::string("using Model = ") +
                                         kExportedActivationModelText + ";"));
  Rng rng(11);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> x(Model::input_size);
    for (auto& v : x) v = float(-4 + 8 * rng.uniform01());
    const auto want = model.predict(x);
    std::vector<float> got(Model::output_size);
    exported_activation_predict(model.parameters().data(), x.data(), got.data());
    for (std::size_t k = 0; k < Model::output_size; ++k) REQUIRE(got[k] == want[k]);
  }
  std::remove(path.c_str());
}

TEST_CASE("A NaN input gives NaN outputs through every one of these layers in a model") {
  constexpr float nan = std::numeric_limits<float>::quiet_NaN();
  const auto all_nan = [](const auto& y) {
    for (float v : y) REQUIRE(std::isnan(v));
  };
  all_nan(Sequential<Input<3>, ReLU6, Dense<2>>(1).predict(std::array<float, 3>{nan, 1, 2}));
  all_nan(Sequential<Input<3>, HardSwish, Dense<2>>(1).predict(std::array<float, 3>{nan, 1, 2}));
  all_nan(Sequential<Input<3>, HardSigmoid, Dense<2>>(1).predict(std::array<float, 3>{nan, 1, 2}));
  all_nan(Sequential<Input<3>, Swish, Dense<2>>(1).predict(std::array<float, 3>{nan, 1, 2}));
  all_nan(Sequential<Input<3>, ELU<>, Dense<2>>(1).predict(std::array<float, 3>{nan, 1, 2}));
  all_nan(Sequential<Input<3>, BoundedReLU<1.0, 0.0, 0.5>, Dense<2>>(1).predict(
      std::array<float, 3>{nan, 1, 2}));
  // Infinite inputs give the limits, so a model stays finite on them where the math is.
  using Finite = Sequential<Input<4>, Swish, HardSwish, ELU<>, ReLU6, Dense<2>>;
  const auto y = Finite(2).predict(std::array<float, 4>{-INFINITY, -INFINITY, -1e30f, 0.5f});
  for (float v : y) CHECK(std::isfinite(v));
}

namespace {
const std::string kDir = CTNN_FASHION_MNIST_DIR;
data::Dataset fashion(const char* images, const char* labels, std::size_t n) {
  return data::load_idx(kDir + "/" + images, kDir + "/" + labels, {.limit = n});
}
// A small MobileNet-flavoured CNN using every new activation.
using ActCnn = Sequential<Input<28, 28, 1>, Conv2D<8, 3, 3, 2>, HardSwish, Conv2D<16, 3, 3, 2>,
                          ReLU6, Flatten, Dense<32>, Swish, Dense<16>, ELU<>, Dense<10>, Softmax>;
}  // namespace

TEST_CASE("Training with these layers is bitwise identical at 1, 2 and 3 threads") {
  const auto d = fashion("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 256);
  const int saved = max_threads();
  std::vector<std::vector<float>> params;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    ActCnn model(3);
    Adam opt(1e-3f);
    fit(model, opt, SparseCategoricalCrossEntropy{}, d,
        {.epochs = 1, .batch_size = 32, .seed = 4, .verbose = 0});
    params.emplace_back(model.parameters().begin(), model.parameters().end());
  }
  set_num_threads(saved);
  for (std::size_t t = 1; t < 3; ++t) {
    INFO("1 thread against " << t + 1);
    REQUIRE(params[t].size() == params[0].size());
    CHECK(std::memcmp(params[t].data(), params[0].data(), params[0].size() * sizeof(float)) == 0);
  }
  const ActCnn untrained(3);
  CHECK(params[0] != std::vector<float>(untrained.parameters().begin(),
                                        untrained.parameters().end()));  // training moved them
}

TEST_CASE("int8: the new activations run in float between quantized layers, as Sigmoid and Tanh") {
  const auto data = fashion("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 300);
  ActCnn model(3);
  auto q = quantize(model, data);
  // HardSwish, Swish and ELU let negatives through: signed int8 inputs after them; ReLU6 not.
  CHECK(q.input_is_signed<2>());        // after HardSwish
  CHECK_FALSE(q.input_is_signed<5>());  // after ReLU6 and Flatten
  CHECK(q.input_is_signed<7>());        // after Swish
  CHECK(q.input_is_signed<9>());        // after ELU
  std::vector<float> yf(data.size() * 10), yq(data.size() * 10);
  model.predict(data.x, yf);
  q.predict(data.x, yq);
  double worst = 0;
  std::size_t agree = 0;
  for (std::size_t i = 0; i < yf.size(); ++i) worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
  for (std::size_t s = 0; s < data.size(); ++s) {
    const auto* a = yf.data() + s * 10;
    const auto* b = yq.data() + s * 10;
    agree += std::max_element(a, a + 10) - a == std::max_element(b, b + 10) - b;
  }
  INFO("largest probability difference " << worst << ", same class on " << agree << " of 300");
  CHECK(worst < 0.02);
  CHECK(agree >= 285);
}

TEST_CASE("A CNN of HardSwish, ReLU6, Swish and ELU learns Fashion-MNIST from 2,000 images",
          "[long]") {
  const auto train = fashion("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 2000);
  const auto test = fashion("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 1000);
  ActCnn model(1);
  Adam opt(3e-3f);
  // 4 epochs of 63 batches: 252 steps.
  fit(model, opt, SparseCategoricalCrossEntropy{}, train,
      {.epochs = 4, .batch_size = 32, .seed = 2, .verbose = 0});
  const auto e = evaluate(model, test);
  std::cout << "ActCnn after 252 steps on 2,000 images: test accuracy " << e.accuracy
            << ", loss " << e.loss << "\n";
  CHECK(e.accuracy > 0.70);  // chance is 0.10
}
