// The recurrent layers: gradients through time in double, the cell kernels against scalar
// references, Keras's layout against PyTorch's nn.LSTM, the orthogonal initializer, and training
// through a model at 1 and 2 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "../gradcheck.hpp"

namespace {

template <class Spec, std::size_t... Dims>
using BoundD = typename Spec::template bind<ctnn::Shape<Dims...>, double>;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The LSTM of lstm.hpp's contract, written out per element (double).
std::vector<double> lstm_reference(const std::vector<double>& p, const std::vector<double>& x,
                                   std::size_t n, std::size_t T, std::size_t F, std::size_t U) {
  const std::size_t G = 4 * U;
  const double* W = p.data();
  const double* R = W + F * G;
  const double* b = R + U * G;
  std::vector<double> out(n * T * U);
  for (std::size_t s = 0; s < n; ++s) {
    std::vector<double> h(U, 0.0), c(U, 0.0);
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<double> z(G);
      for (std::size_t g = 0; g < G; ++g) {
        double v = b[g];
        for (std::size_t f = 0; f < F; ++f) v += x[(s * T + t) * F + f] * W[f * G + g];
        for (std::size_t u = 0; u < U; ++u) v += h[u] * R[u * G + g];
        z[g] = v;
      }
      for (std::size_t u = 0; u < U; ++u) {
        const double i = sigmoid(z[u]), fg = sigmoid(z[U + u]), g = std::tanh(z[2 * U + u]),
                     o = sigmoid(z[3 * U + u]);
        c[u] = fg * c[u] + i * g;
        h[u] = o * std::tanh(c[u]);
        out[(s * T + t) * U + u] = h[u];
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("LSTM gradients through time (double), last output and whole sequence", "[layers][recurrent]") {
  ctnn_test::check_layer_gradients<BoundD<ctnn::LSTM<3>, 4, 2>>(3);
  ctnn_test::check_layer_gradients<BoundD<ctnn::LSTM<5, true>, 3, 4>>(2);
  // Units filling whole vectors and a tail (8 double lanes on AVX-512), and one step.
  ctnn_test::check_layer_gradients<BoundD<ctnn::LSTM<9, true>, 2, 3>>(2);
  ctnn_test::check_layer_gradients<BoundD<ctnn::LSTM<4>, 1, 5>>(3);
  // More samples than a thread's block of rows takes in one GEMM tile.
  ctnn_test::check_layer_gradients<BoundD<ctnn::LSTM<2, true>, 3, 1>>(13);
}

TEST_CASE("GRU and SimpleRNN gradients through time (double)", "[layers][recurrent]") {
  ctnn_test::check_layer_gradients<BoundD<ctnn::GRU<3>, 4, 2>>(3);
  ctnn_test::check_layer_gradients<BoundD<ctnn::GRU<9, true>, 3, 4>>(2);
  ctnn_test::check_layer_gradients<BoundD<ctnn::GRU<4>, 1, 5>>(3);
  ctnn_test::check_layer_gradients<BoundD<ctnn::GRU<2, true>, 3, 1>>(13);
  ctnn_test::check_layer_gradients<BoundD<ctnn::SimpleRNN<3>, 4, 2>>(3);
  ctnn_test::check_layer_gradients<BoundD<ctnn::SimpleRNN<9, true>, 3, 4>>(2);
  ctnn_test::check_layer_gradients<BoundD<ctnn::SimpleRNN<4>, 1, 5>>(3);
  ctnn_test::check_layer_gradients<BoundD<ctnn::SimpleRNN<2, true>, 3, 1>>(13);
}

TEST_CASE("LSTM forward equals the per-element definition (float and double)", "[layers][recurrent]") {
  constexpr std::size_t T = 6, F = 5, U = 19, n = 4;
  using L = BoundD<ctnn::LSTM<U, true>, T, F>;
  using Lf = ctnn::LSTM<U, true>::bind<ctnn::Shape<T, F>, float>;
  using Llast = BoundD<ctnn::LSTM<U>, T, F>;
  ctnn::Rng rng(5);
  std::vector<double> p(L::param_count);
  L::init(p.data(), rng);
  const std::vector<double> x = ctnn_test::random_vector(n * T * F, rng, -2, 2);
  const auto ref = lstm_reference(p, x, n, T, F, U);

  std::vector<double> y(n * T * U), ylast(n * U);
  ctnn::AlignedBuffer<double> s(n * L::scratch_per_sample);
  L::forward(p.data(), x.data(), y.data(), n, s.data(), {});
  Llast::forward(p.data(), x.data(), ylast.data(), n, s.data(), {});
  std::vector<float> pf(p.begin(), p.end()), xf(x.begin(), x.end()), yf(n * T * U);
  ctnn::AlignedBuffer<float> sf(n * Lf::scratch_per_sample);
  Lf::forward(pf.data(), xf.data(), yf.data(), n, sf.data(), {});
  for (std::size_t i = 0; i < y.size(); ++i) {
    INFO("element " << i);
    REQUIRE(y[i] == Approx(ref[i]).margin(1e-12));
    REQUIRE(yf[i] == Approx(ref[i]).margin(2e-6));
  }
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t u = 0; u < U; ++u)
      REQUIRE(ylast[b * U + u] == y[(b * T + T - 1) * U + u]);
}

namespace {
// tests/layers/data/<name>_torch_reference.txt, written by scripts/recurrent_reference.py: the
// parameters in Keras's layout, an input, and PyTorch's output sequence for them.
template <class Spec>
void check_torch_reference(const char* name) {
  using L = BoundD<Spec, 5, 3>;
  std::ifstream in(std::string(CTNN_TEST_DATA_DIR) + "/" + name + "_torch_reference.txt");
  REQUIRE(in);
  std::size_t T = 0, F = 0, U = 0, n = 0;
  in >> T >> F >> U >> n;
  REQUIRE((T == 5 && F == 3 && U == 7 && n == 2));
  std::vector<double> p(L::param_count), x(n * T * F), h(n * T * U);
  for (double& v : p) in >> v;
  for (double& v : x) in >> v;
  for (double& v : h) in >> v;
  REQUIRE(in);
  std::vector<double> y(n * T * U);
  ctnn::AlignedBuffer<double> s(n * L::scratch_per_sample);
  L::forward(p.data(), x.data(), y.data(), n, s.data(), {});
  for (std::size_t i = 0; i < y.size(); ++i) {
    INFO(name << " element " << i);
    REQUIRE(y[i] == Approx(h[i]).margin(1e-12));
  }
}
}  // namespace

TEST_CASE("LSTM, GRU and SimpleRNN in Keras's layout compute PyTorch's nn.LSTM, nn.GRU and nn.RNN",
          "[layers][recurrent]") {
  check_torch_reference<ctnn::LSTM<7, true>>("lstm");
  check_torch_reference<ctnn::GRU<7, true>>("gru");
  check_torch_reference<ctnn::SimpleRNN<7, true>>("rnn");
}

TEST_CASE("LSTM initialization: Keras's parameter count, unit forget bias, orthogonal recurrent kernel",
          "[layers][recurrent]") {
  using L = ctnn::LSTM<16>::bind<ctnn::Shape<28, 28>, float>;
  static_assert(L::param_count == 4 * 16 * (28 + 16 + 1));
  static_assert(std::is_same_v<L::output_shape, ctnn::Shape<16>>);
  static_assert(std::is_same_v<ctnn::LSTM<16, true>::bind<ctnn::Shape<28, 28>, float>::output_shape,
                               ctnn::Shape<28, 16>>);
  ctnn::Rng rng(3);
  std::vector<float> p(L::param_count);
  L::init(p.data(), rng);
  const float* R = p.data() + 28 * 64;
  const float* b = R + 16 * 64;
  for (std::size_t g = 0; g < 64; ++g) CHECK(b[g] == (g >= 16 && g < 32 ? 1.0f : 0.0f));
  // R [16 x 64]: its 16 rows are orthonormal.
  for (std::size_t i = 0; i < 16; ++i)
    for (std::size_t j = 0; j < 16; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < 64; ++k) dot += double(R[i * 64 + k]) * R[j * 64 + k];
      CHECK(dot == Approx(i == j ? 1.0 : 0.0).margin(1e-5));
    }
  // A tall matrix (Dense's transposed kernel, 40 x 8 stored as Units x In = 8 x 40): the rows of
  // its layout are orthonormal too.
  using D = ctnn::Dense<8, ctnn::init::Orthogonal>::bind<ctnn::Shape<40>, double>;
  std::vector<double> w(D::param_count);
  D::init(w.data(), rng);
  for (std::size_t i = 0; i < 8; ++i)
    for (std::size_t j = 0; j < 8; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < 40; ++k) dot += w[i * 40 + k] * w[j * 40 + k];
      CHECK(dot == Approx(i == j ? 1.0 : 0.0).margin(1e-12));
    }
}

TEST_CASE("LSTM cell kernels match a scalar reference, in place and with a vector tail",
          "[kernels][recurrent]") {
  for (std::size_t U : {1, 16, 37}) {
    ctnn::Rng rng(U);
    std::vector<float> z(4 * U), cp(U), c(U), tc(U), h(U), h2(U), dy(U), dhn(U), dc(U);
    for (auto* v : {&z, &cp, &dy, &dhn, &dc})
      for (float& e : *v) e = float(rng.uniform(-3, 3));
    z[0] = 40.0f;   // saturated gates
    z[U] = -40.0f;
    const std::vector<float> z0 = z, dc0 = dc;
    ctnn::kernels::lstm_cell_forward(U, z.data(), cp.data(), c.data(), tc.data(), h.data(), h2.data());
    for (std::size_t j = 0; j < U; ++j) {
      INFO("U " << U << " unit " << j);
      const double i = sigmoid(z0[j]), f = sigmoid(z0[U + j]), g = std::tanh(z0[2 * U + j]),
                   o = sigmoid(z0[3 * U + j]);
      const double cc = f * cp[j] + i * g;
      CHECK(z[j] == Approx(i).margin(1e-6));
      CHECK(z[U + j] == Approx(f).margin(1e-6));
      CHECK(z[2 * U + j] == Approx(g).margin(1e-6));
      CHECK(z[3 * U + j] == Approx(o).margin(1e-6));
      CHECK(c[j] == Approx(cc).margin(1e-5));
      CHECK(tc[j] == Approx(std::tanh(cc)).margin(1e-6));
      CHECK(h[j] == Approx(o * std::tanh(cc)).margin(1e-6));
      CHECK(std::memcmp(&h[j], &h2[j], sizeof(float)) == 0);
    }
    const std::vector<float> act = z;
    ctnn::kernels::lstm_cell_backward(U, z.data(), cp.data(), tc.data(), dy.data(), dhn.data(),
                                      dc.data());
    for (std::size_t j = 0; j < U; ++j) {
      INFO("U " << U << " unit " << j);
      const double i = act[j], f = act[U + j], g = act[2 * U + j], o = act[3 * U + j], t = tc[j];
      const double dh = double(dy[j]) + dhn[j];
      const double dct = dc0[j] + dh * o * (1 - t * t);
      CHECK(z[j] == Approx(dct * g * i * (1 - i)).margin(1e-5));
      CHECK(z[U + j] == Approx(dct * cp[j] * f * (1 - f)).margin(1e-5));
      CHECK(z[2 * U + j] == Approx(dct * i * (1 - g * g)).margin(1e-5));
      CHECK(z[3 * U + j] == Approx(dh * t * o * (1 - o)).margin(1e-5));
      CHECK(dc[j] == Approx(dct * f).margin(1e-5));
    }
    // The first step (no previous cell) and the last (no next-step gradient, no output gradient).
    z = z0;
    ctnn::kernels::lstm_cell_forward(U, z.data(), static_cast<const float*>(nullptr), c.data(),
                                     tc.data(), h.data(), static_cast<float*>(nullptr));
    for (std::size_t j = 0; j < U; ++j)
      CHECK(c[j] == Approx(sigmoid(z0[j]) * std::tanh(z0[2 * U + j])).margin(1e-6));
    std::fill(dc.begin(), dc.end(), 0.0f);
    ctnn::kernels::lstm_cell_backward(U, z.data(), static_cast<const float*>(nullptr), tc.data(),
                                      static_cast<const float*>(nullptr),
                                      static_cast<const float*>(nullptr), dc.data());
    for (std::size_t j = 0; j < 4 * U; ++j) CHECK(z[j] == 0.0f);
  }
}

TEST_CASE("GRU and SimpleRNN cell kernels match a scalar reference", "[kernels][recurrent]") {
  for (std::size_t U : {1, 16, 37}) {
    ctnn::Rng rng(U + 100);
    std::vector<float> gx(3 * U), q(3 * U), hp(U), h(U), h2(U), dy(U), dhn(U), dhd(U);
    for (auto* v : {&gx, &q, &hp, &dy, &dhn, &dhd})
      for (float& e : *v) e = float(rng.uniform(-3, 3));
    const std::vector<float> gx0 = gx, q0 = q, dhd0 = dhd;
    ctnn::kernels::gru_cell_forward(U, gx.data(), q.data(), hp.data(), h.data(), h2.data());
    for (std::size_t j = 0; j < U; ++j) {
      INFO("U " << U << " unit " << j);
      const double z = sigmoid(double(gx0[j]) + q0[j]), r = sigmoid(double(gx0[U + j]) + q0[U + j]);
      const double hh = std::tanh(gx0[2 * U + j] + r * q0[2 * U + j]);
      CHECK(gx[j] == Approx(z).margin(1e-6));
      CHECK(gx[U + j] == Approx(r).margin(1e-6));
      CHECK(gx[2 * U + j] == Approx(hh).margin(1e-6));
      CHECK(h[j] == Approx(z * hp[j] + (1 - z) * hh).margin(1e-5));
      CHECK(std::memcmp(&h[j], &h2[j], sizeof(float)) == 0);
    }
    const std::vector<float> act = gx;
    ctnn::kernels::gru_cell_backward(U, gx.data(), q.data(), hp.data(), dy.data(), dhn.data(),
                                     dhd.data());
    for (std::size_t j = 0; j < U; ++j) {
      INFO("U " << U << " unit " << j);
      const double z = act[j], r = act[U + j], hh = act[2 * U + j];
      const double dh = double(dy[j]) + dhn[j] + dhd0[j];
      const double dz = dh * (hp[j] - hh) * z * (1 - z);
      const double dah = dh * (1 - z) * (1 - hh * hh);
      const double dr = dah * q0[2 * U + j] * r * (1 - r);
      CHECK(gx[j] == Approx(dz).margin(1e-5));
      CHECK(gx[U + j] == Approx(dr).margin(1e-5));
      CHECK(gx[2 * U + j] == Approx(dah).margin(1e-5));
      CHECK(q[j] == Approx(dz).margin(1e-5));
      CHECK(q[U + j] == Approx(dr).margin(1e-5));
      CHECK(q[2 * U + j] == Approx(dah * r).margin(1e-5));
      CHECK(dhd[j] == Approx(dh * z).margin(1e-5));
    }
    // SimpleRNN: h = tanh(z), then dz = (dy + dh_next) (1 - h^2).
    std::vector<float> z(U);
    for (float& e : z) e = float(rng.uniform(-3, 3));
    const std::vector<float> z0 = z;
    ctnn::kernels::rnn_cell_forward(U, z.data(), h.data(), h2.data());
    for (std::size_t j = 0; j < U; ++j) {
      CHECK(z[j] == Approx(std::tanh(z0[j])).margin(1e-6));
      CHECK(std::memcmp(&h[j], &z[j], sizeof(float)) == 0);
      CHECK(std::memcmp(&h2[j], &z[j], sizeof(float)) == 0);
    }
    ctnn::kernels::rnn_cell_backward(U, z.data(), dy.data(), static_cast<const float*>(nullptr));
    for (std::size_t j = 0; j < U; ++j) {
      const double t = std::tanh(z0[j]);
      CHECK(z[j] == Approx(dy[j] * (1 - t * t)).margin(1e-5));
    }
  }
}

namespace {
using SeqModel = ctnn::Sequential<ctnn::Input<7, 6>, ctnn::GRU<12, true>, ctnn::SimpleRNN<9, true>,
                                  ctnn::LSTM<10>, ctnn::Dense<4>, ctnn::Softmax>;
static_assert(SeqModel::param_count ==
              3 * 12 * (6 + 12 + 2) + 9 * (12 + 9 + 1) + 4 * 10 * (9 + 10 + 1) + 4 * 11);

ctnn::data::Dataset sequences(std::size_t n) {
  // Class k: a sine of frequency k + 1 with noise, 7 steps of 6 channels (phase-shifted copies).
  ctnn::data::Dataset d;
  d.sample_shape = {7, 6};
  d.num_classes = 4;
  ctnn::Rng rng(11);
  for (std::size_t s = 0; s < n; ++s) {
    const std::size_t k = s % 4;
    for (std::size_t t = 0; t < 7; ++t)
      for (std::size_t c = 0; c < 6; ++c)
        d.x.push_back(float(std::sin(0.9 * double(k + 1) * double(t) + 0.5 * double(c)) +
                            0.3 * (rng.uniform01() - 0.5)));
    d.labels.push_back(std::int32_t(k));
  }
  return d;
}

std::vector<float> train_seq(int threads, const ctnn::data::Dataset& d) {
  ctnn::set_num_threads(threads);
  ctnn::reset_widest_team();
  SeqModel model(4);
  ctnn::Adam opt{1e-2f};
  ctnn::fit(model, opt, ctnn::SparseCategoricalCrossEntropy{}, d,
            {.epochs = 3, .batch_size = 32, .seed = 2, .verbose = 0});
  INFO("asked for " << threads << " threads");
  CHECK(ctnn::widest_team() == threads);
  auto p = model.parameters();
  return {p.begin(), p.end()};
}
}  // namespace

TEST_CASE("Stacked GRU, SimpleRNN and LSTM learn a sequence task, bitwise equal at 1, 2 and 3 threads",
          "[layers][recurrent]") {
  const auto d = sequences(640);
  const int saved = ctnn::max_threads();
  const auto one = train_seq(1, d);
  const auto two = train_seq(2, d);
  const auto three = train_seq(3, d);
  ctnn::set_num_threads(saved);
  std::size_t diff2 = 0, diff3 = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    diff2 += std::memcmp(&one[i], &two[i], sizeof(float)) != 0;
    diff3 += std::memcmp(&one[i], &three[i], sizeof(float)) != 0;
  }
  CHECK(diff2 == 0);
  CHECK(diff3 == 0);
  SeqModel model(4);
  std::copy(one.begin(), one.end(), model.parameters().begin());
  const auto r = ctnn::evaluate(model, d);
  INFO("training accuracy " << r.accuracy);
  CHECK(r.accuracy > 0.9);
}
