// Whole-model gradient checks in double, central differences: every layer chained by Sequential
// (with its buffer aliasing for Flatten and its fused Conv2D/Dense + ReLU), the loss, and the
// gradient the Trainer's step computes (fused softmax + cross-entropy where it applies).
#include "../gradcheck.hpp"

using namespace ctnn;

namespace {

// The analytic gradient comes from the Trainer's own step (its fused softmax + cross-entropy
// path when the model ends in Softmax under such a loss); with `unfused`, from the loss's plain
// backward followed by every layer's backward, Softmax's Jacobian included.
template <class Model, class L>
void check_model(const L& loss, bool labels, std::size_t n = 3, bool unfused = false) {
  using T = double;
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  Rng rng(11);
  Model model(5);
  for (auto& p : model.parameters()) p += 0.1 * (rng.uniform01() - 0.5);
  const auto x = ctnn_test::random_vector(n * Model::input_size, rng);
  std::vector<std::int32_t> lab(n);
  std::vector<T> tv(n * Model::output_size);
  for (std::size_t i = 0; i < n; ++i) {
    lab[i] = std::int32_t(rng.below(Model::output_size));
    double s = 0;
    for (std::size_t j = 0; j < Model::output_size; ++j) s += tv[i * Model::output_size + j] = 0.1 + rng.uniform01();
    for (std::size_t j = 0; j < Model::output_size; ++j) tv[i * Model::output_size + j] /= s;
  }
  const Targets<T> t{labels ? lab.data() : nullptr, labels ? nullptr : tv.data()};
  typename Model::Workspace ws;
  ws.reserve(n, true);
  // The Trainer's first step (seed 0, step 0) runs in training mode with Dropout seed 0.
  const PassContext ctx{true, 0};
  const auto mean_loss = [&] {
    std::copy(x.begin(), x.end(), ws.input());
    const T* y = model.forward(ws, n, ctx);
    return loss.value(y, t, n, Model::output_size) / double(n);
  };

  std::vector<T> grads(Model::arena_size, nan);
  if (unfused) {
    std::copy(x.begin(), x.end(), ws.input());
    const T* y = model.forward(ws, n, ctx);
    loss.backward(y, t, n, Model::output_size, ws.gradient(0));
    model.backward(ws, n, grads.data(), ctx);
  } else {
    // The step also moves the parameters: put them back before the differences.
    const std::vector<T> before(model.parameters().begin(), model.parameters().end());
    BasicSGD<T> opt;
    Trainer<Model, BasicSGD<T>, L> trainer(model, opt, loss, n, 0);
    trainer.load_batch(x.data(), n, labels ? lab.data() : nullptr, labels ? nullptr : tv.data());
    trainer.step(n);
    const auto g = trainer.gradients();
    std::copy(g.begin(), g.end(), grads.begin());
    std::copy(before.begin(), before.end(), model.parameters().begin());
  }

  auto params = model.parameters();
  // Every parameter of small models; a strided sample of large ones keeps the test fast.
  const std::size_t stride = Model::arena_size > 3000 ? 7 : 1;
  std::size_t checked = 0;
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    const std::size_t off = Model::template param_offset<I>;
    for (std::size_t k = 0; k < Model::template layer<I>::param_count; k += stride) {
      const std::size_t i = off + k;
      const double keep = params[i], h = 1e-6;
      params[i] = keep + h;
      const double fp = mean_loss();
      params[i] = keep - h;
      const double fm = mean_loss();
      params[i] = keep;
      ctnn_test::require_close(grads[i], (fp - fm) / (2 * h), "model dparam", i);
      ++checked;
    }
  });
  REQUIRE(checked > 0);
}

}  // namespace

TEST_CASE("Model gradients: conv, pooling, dense, fused softmax + sparse cross-entropy") {
  using M = BasicSequential<double, Input<8, 7, 2>, Conv2D<3, 3, 3>, ReLU, MaxPool2D<2>, Flatten,
                            Dense<6>, ReLU, Dense<4>, Softmax>;
  check_model<M>(SparseCategoricalCrossEntropy{}, true);
}

TEST_CASE("Model gradients: same-padded conv, avg pooling, tanh, fused categorical cross-entropy") {
  using M = BasicSequential<double, Input<6, 6, 1>, Conv2D<2, 3, 3, 1, Padding::same>, Tanh,
                            AvgPool2D<2>, Flatten, Dense<5>, LeakyReLU<0.2>, Dense<3>, Softmax>;
  check_model<M>(CategoricalCrossEntropy{}, false);
}

TEST_CASE("Model gradients: sigmoid output with binary cross-entropy, dropout in training") {
  using M = BasicSequential<double, Input<9>, Dense<7>, ReLU, Dropout<0.2>, Dense<3>, Sigmoid>;
  check_model<M>(BinaryCrossEntropy{}, false);
}

TEST_CASE("Model gradients: regression with mean squared error") {
  using M = BasicSequential<double, Input<5>, Dense<8>, Tanh, Dense<2>>;
  check_model<M>(MeanSquaredError{}, false);
}

TEST_CASE("Model gradients: Dense + Softmax + sparse cross-entropy, fused and unfused") {
  using M = BasicSequential<double, Input<4>, Dense<3>, Softmax>;
  SECTION("fused: the Trainer hands p - onehot(label) to the Dense") {
    check_model<M>(SparseCategoricalCrossEntropy{}, true, 5);
  }
  SECTION("unfused: the loss's gradient through Softmax's Jacobian") {
    check_model<M>(SparseCategoricalCrossEntropy{}, true, 5, true);
  }
}

TEST_CASE("Model gradients: softmax under mean squared error (no fusion applies)") {
  using M = BasicSequential<double, Input<4>, Dense<3>, Softmax>;
  check_model<M>(MeanSquaredError{}, false);
}
