// Layer kinds are declared traits, not names: a user layer that calls itself "ReLU" or "Softmax"
// but declares no kind is never fused, and computes what it says.
#include <catch2/catch.hpp>

#include <cmath>
#include <string_view>
#include <vector>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {

// What a user's parameter-free, shape-keeping layer declares (no kind among it).
template <ShapeType In, class T>
struct UserElementwise {
  using value_type = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t param_count = 0;
  static constexpr std::size_t scratch_per_sample = 0;
  static void init(T*, Rng&) {}
};

// Named "ReLU", computes y = 2x (negative values kept): fusing it into the Dense before it would
// clamp the negatives and lose the doubling.
struct DoublerNamedReLU {
  template <ShapeType In, class T>
  struct bind : UserElementwise<In, T> {
    static constexpr std::string_view name = "ReLU";
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      for (std::size_t i = 0; i < n * In::size; ++i) y[i] = 2 * x[i];
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n, T*,
                         const PassContext&) {
      if (dx)
        for (std::size_t i = 0; i < n * In::size; ++i) dx[i] = 2 * dy[i];
    }
  };
};

// Named "Softmax" and computing a softmax, but declaring no kind: training must run the loss's
// own gradient and this layer's backward, not the fused softmax + cross-entropy shortcut.
struct UserSoftmax {
  template <ShapeType In, class T>
  struct bind : UserElementwise<In, T> {
    static constexpr std::string_view name = "Softmax";
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::softmax_forward(n, In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::softmax_backward(n, In::size, y, dy, dx);
    }
  };
};

}  // namespace

TEST_CASE("A user layer named ReLU is not fused into the Dense before it") {
  using Named = Sequential<Input<3>, Dense<4>, DoublerNamedReLU>;
  using Plain = Sequential<Input<3>, Dense<4>>;
  static_assert(layer_kind<Named::layer<1>> == LayerKind::other);
  // A fused ReLU takes no activation slot: the user layer has its own (16 floats, one line).
  static_assert(Named::training_activation_floats_per_sample ==
                Sequential<Input<3>, Dense<4>, ReLU>::training_activation_floats_per_sample + 16);
  Named named(3);
  Plain plain(3);
  std::copy(named.parameters().begin(), named.parameters().end(), plain.parameters().begin());
  const std::vector<float> x = {0.9f, -1.3f, 0.4f, -0.7f, 1.1f, -0.2f};
  std::vector<float> got(8), dense(8);
  named.predict(std::span<const float>(x), std::span<float>(got));
  plain.predict(std::span<const float>(x), std::span<float>(dense));
  std::size_t negatives = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("output " << i);
    CHECK(got[i] == 2 * dense[i]);
    negatives += dense[i] < 0;
  }
  REQUIRE(negatives > 0);  // a fused ReLU would have zeroed these
}

TEST_CASE("A user layer named Softmax is not fused with the cross-entropy") {
  // Logits (10, -10): p = (1, 2e-9), label 1. The fused gradient (p - onehot) is about (1, -1);
  // the loss's own gradient is 0 because p is below the clip at 1e-7 (Keras's clip derivative).
  using Builtin = Sequential<Input<2>, Dense<2>, Softmax>;
  using User = Sequential<Input<2>, Dense<2>, UserSoftmax>;
  static_assert(layer_kind<Builtin::layer<1>> == LayerKind::softmax);
  static_assert(layer_kind<User::layer<1>> == LayerKind::other);
  const auto grads = [](auto& model) {
    auto w = model.template layer_parameters<0>();
    std::fill(w.begin(), w.end(), 0.0f);
    w[0] = 10.0f;   // logit 0 = 10 x0
    w[2] = -10.0f;  // logit 1 = -10 x0
    SGD opt;
    using M = std::remove_reference_t<decltype(model)>;
    Trainer<M, SGD, SparseCategoricalCrossEntropy> t(model, opt, {}, 1);
    const float x[2] = {1.0f, 0.0f};
    const std::int32_t label = 1;
    t.load_batch(x, 1, &label, nullptr);
    const StepStats s = t.step(1);
    CHECK(s.loss_sum == Approx(-std::log(1e-7)));  // the clipped probability
    const auto g = t.gradients();
    return std::vector<float>(g.begin(), g.begin() + 6);
  };
  Builtin builtin(1);
  User user(1);
  const std::vector<float> fused = grads(builtin), plain = grads(user);
  CHECK(fused[0] == Approx(1.0f));   // dW[0][0] = (p0 - 0) x0
  CHECK(fused[2] == Approx(-1.0f));  // dW[1][0] = (p1 - 1) x0
  for (std::size_t i = 0; i < plain.size(); ++i) {
    INFO("gradient " << i);
    CHECK(plain[i] == 0.0f);
  }
  // Untrained and seeded alike, both compute the same probabilities: only training differs.
  Builtin builtin2(2);
  User user2(2);
  const std::vector<float> x = {0.3f, -0.8f};
  CHECK(builtin2.predict(std::span<const float>(x))[1] ==
        Approx(user2.predict(std::span<const float>(x))[1]));
}
