// Loss gradients against central differences in double, the fused softmax gradients against the
// chain rule through softmax, and loss values against hand-computed ones.
#include "../gradcheck.hpp"

using namespace ctnn;

namespace {

struct Batch {
  std::size_t n, w;
  std::vector<double> y;
  std::vector<std::int32_t> labels;
  std::vector<double> targets;
};

Batch make_batch(std::size_t n, std::size_t w, bool probabilities_rows, std::uint64_t seed) {
  Rng rng(seed);
  Batch b{n, w, {}, {}, {}};
  b.y = ctnn_test::random_vector(n * w, rng, 0.05, 0.95);
  if (probabilities_rows)
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < w; ++j) s += b.y[i * w + j];
      for (std::size_t j = 0; j < w; ++j) b.y[i * w + j] /= s;
    }
  b.labels.resize(n);
  b.targets.resize(n * w);
  for (std::size_t i = 0; i < n; ++i) {
    b.labels[i] = std::int32_t(rng.below(w));
    for (std::size_t j = 0; j < w; ++j) b.targets[i * w + j] = j == std::size_t(b.labels[i]) ? 1.0 : 0.0;
  }
  return b;
}

template <class L>
void check_loss_gradient(const L& loss, Batch b) {
  const Targets<double> t{b.labels.data(), b.targets.data()};
  std::vector<double> dy(b.y.size(), std::numeric_limits<double>::quiet_NaN());
  const double sum = loss.backward(b.y.data(), t, b.n, b.w, dy.data());
  REQUIRE(sum == Approx(loss.value(b.y.data(), t, b.n, b.w)));
  for (std::size_t i = 0; i < b.y.size(); ++i) {
    const double keep = b.y[i], h = 1e-7;
    b.y[i] = keep + h;
    const double fp = loss.value(b.y.data(), t, b.n, b.w) / double(b.n);
    b.y[i] = keep - h;
    const double fm = loss.value(b.y.data(), t, b.n, b.w) / double(b.n);
    b.y[i] = keep;
    ctnn_test::require_close(dy[i], (fp - fm) / (2 * h), "dloss/dy", i, 1e-5);
  }
}

// The fused gradient with respect to logits z equals the numeric derivative of loss(softmax(z)).
template <class L>
void check_fused(const L& loss, std::size_t n, std::size_t w) {
  Rng rng(3);
  Batch b = make_batch(n, w, true, 4);
  std::vector<double> z = ctnn_test::random_vector(n * w, rng, -2, 2), p(n * w);
  const Targets<double> t{b.labels.data(), b.targets.data()};
  const auto f = [&] {
    kernels::softmax_forward(n, w, z.data(), p.data());
    return loss.value(p.data(), t, n, w) / double(n);
  };
  kernels::softmax_forward(n, w, z.data(), p.data());
  std::vector<double> dz(n * w, std::numeric_limits<double>::quiet_NaN());
  loss.backward_from_logits(p.data(), t, n, w, dz.data());
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double keep = z[i], h = 1e-6;
    z[i] = keep + h;
    const double fp = f();
    z[i] = keep - h;
    const double fm = f();
    z[i] = keep;
    ctnn_test::require_close(dz[i], (fp - fm) / (2 * h), "dloss/dlogits", i, 1e-6);
  }
}

}  // namespace

TEST_CASE("Loss gradients match central differences") {
  check_loss_gradient(MeanSquaredError{}, make_batch(5, 3, false, 1));
  check_loss_gradient(BinaryCrossEntropy{}, make_batch(4, 2, false, 2));
  check_loss_gradient(CategoricalCrossEntropy{}, make_batch(3, 10, true, 3));
  check_loss_gradient(SparseCategoricalCrossEntropy{}, make_batch(6, 7, true, 5));
}

TEST_CASE("Fused softmax + cross-entropy gradients match the chain rule") {
  check_fused(SparseCategoricalCrossEntropy{}, 5, 10);
  check_fused(SparseCategoricalCrossEntropy{}, 2, 17);
  check_fused(CategoricalCrossEntropy{}, 4, 3);
}

TEST_CASE("Loss values are Keras's") {
  const double p[] = {0.7, 0.2, 0.1, 0.1, 0.1, 0.8};
  const std::int32_t labels[] = {0, 2};
  const double onehot[] = {1, 0, 0, 0, 0, 1};
  const double sparse = SparseCategoricalCrossEntropy{}.value(p, Targets<double>{labels, nullptr}, 2, 3);
  CHECK(sparse == Approx(-std::log(0.7) - std::log(0.8)));
  CHECK(CategoricalCrossEntropy{}.value(p, Targets<double>{nullptr, onehot}, 2, 3) == Approx(sparse));
  // A probability of exactly 0 is clipped to 1e-7, not log(0).
  const double zero[] = {0.0, 1.0};
  const std::int32_t first[] = {0};
  CHECK(SparseCategoricalCrossEntropy{}.value(zero, Targets<double>{first, nullptr}, 1, 2) ==
        Approx(-std::log(1e-7)));
  const double y[] = {1, 2, 3, 4}, t[] = {1, 1, 1, 1};
  CHECK(MeanSquaredError{}.value(y, Targets<double>{nullptr, t}, 2, 2) == Approx((0 + 1 + 4 + 9) / 2.0));
  const double bp[] = {0.9, 0.2}, bt[] = {1, 0};
  CHECK(BinaryCrossEntropy{}.value(bp, Targets<double>{nullptr, bt}, 1, 2) ==
        Approx(-(std::log(0.9) + std::log(0.8)) / 2));
}

TEST_CASE("Accuracy follows the loss's metric") {
  const double y[] = {0.1, 0.7, 0.2, 0.5, 0.3, 0.2};
  const std::int32_t labels[] = {1, 2};
  CHECK(detail::correct(Metric::sparse_categorical, y, Targets<double>{labels, nullptr}, 2, 3) == 1.0);
  const double oh[] = {0, 1, 0, 1, 0, 0};
  CHECK(detail::correct(Metric::categorical, y, Targets<double>{nullptr, oh}, 2, 3) == 2.0);
  const double b[] = {0.6, 0.4}, bt[] = {1, 1};
  CHECK(detail::correct(Metric::binary, b, Targets<double>{nullptr, bt}, 1, 2) == 0.5);
}
