// Pooling with explicit pads, same_lower, dilation and count_include_pad; global pooling (and its
// kernels); 1-D pooling; ZeroPadding2D; Reshape. Gradient checks in double (tests/gradcheck.hpp),
// forward passes against the scalar references below, NaN propagation, thread-count independence,
// the layers inside Sequential and in the int8 path.
#include "../gradcheck.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

using namespace ctnn;
using ctnn_test::check_layer_gradients;

namespace {

template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, double>;
template <class Spec, std::size_t... D>
using OnF = typename Spec::template bind<Shape<D...>, float>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The settings of one pooling case, all written by hand (pads and output sizes included), so
// the reference shares nothing with the layer's geometry code.
struct PoolCase {
  std::size_t H, W, C, PH, PW, S, D, pad_top, pad_left, OH, OW;
  bool max, count_include_pad;
};

// Pooling of one H x W x C sample, tap by tap: window (oy, ox) tap (ky, kx) reads row
// oy*S + ky*D - pad_top, column ox*S + kx*D - pad_left; taps outside the image are skipped by the
// max and by the mean's sum, and counted in its divisor only with count_include_pad. Any NaN
// among a window's inputs makes the result NaN.
std::vector<double> reference_pool(const PoolCase& k, const double* x) {
  std::vector<double> y(k.OH * k.OW * k.C);
  for (std::size_t oy = 0; oy < k.OH; ++oy)
    for (std::size_t ox = 0; ox < k.OW; ++ox)
      for (std::size_t c = 0; c < k.C; ++c) {
        double acc = k.max ? -std::numeric_limits<double>::infinity() : 0.0;
        bool nan = false;
        std::size_t count = 0;
        for (std::size_t ky = 0; ky < k.PH; ++ky)
          for (std::size_t kx = 0; kx < k.PW; ++kx) {
            const long iy = long(oy * k.S + ky * k.D) - long(k.pad_top);
            const long ix = long(ox * k.S + kx * k.D) - long(k.pad_left);
            if (iy < 0 || ix < 0 || iy >= long(k.H) || ix >= long(k.W)) continue;
            const double v = x[(std::size_t(iy) * k.W + std::size_t(ix)) * k.C + c];
            nan = nan || std::isnan(v);
            acc = k.max ? std::max(acc, v) : acc + v;
            ++count;
          }
        REQUIRE(count > 0);
        const double div = k.count_include_pad ? double(k.PH * k.PW) : double(count);
        y[(oy * k.OW + ox) * k.C + c] = nan ? kNaN : k.max ? acc : acc / div;
      }
  return y;
}

void require_same(double got, double want, std::size_t i) {
  INFO("output " << i << ": got " << got << ", want " << want);
  if (std::isnan(want)) {
    REQUIRE(std::isnan(got));
  } else {
    REQUIRE(std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want)));
  }
}

// Runs bound layer L (double) on n random samples, with a NaN at `nan_at` when given, and
// compares every output with reference_pool. A 1-D layer is the case with H = 1.
template <class L>
void check_against_reference(const PoolCase& k, std::size_t nan_at = std::size_t(-1),
                             std::size_t n = 2) {
  REQUIRE(L::output_shape::size == k.OH * k.OW * k.C);
  REQUIRE(L::input_shape::size == k.H * k.W * k.C);
  Rng rng(42);
  auto x = ctnn_test::random_vector(n * L::input_shape::size, rng, -2, 2);
  if (nan_at < x.size()) x[nan_at] = kNaN;
  std::vector<double> y(n * L::output_shape::size, kNaN);
  L::forward(nullptr, x.data(), y.data(), n, nullptr, PassContext{});
  for (std::size_t s = 0; s < n; ++s) {
    const auto want = reference_pool(k, x.data() + s * L::input_shape::size);
    for (std::size_t i = 0; i < want.size(); ++i)
      require_same(y[s * L::output_shape::size + i], want[i], s * L::output_shape::size + i);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Compile-time facts: output shapes of the new settings and layers, and their kinds.

static_assert(std::is_same_v<On<MaxPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>::output_shape,
                             Shape<3, 4, 3>>,
              "Explicit pads: (6 + 1 - 3) / 2 + 1 = 3 rows, (7 + 3 - 3) / 2 + 1 = 4 columns.");
static_assert(std::is_same_v<On<MaxPool2D<2, 3, 1, Padding::valid, 2>, 6, 7, 2>::output_shape,
                             Shape<4, 3, 2>>,
              "Dilation 2 widens a 2x3 pool to 3x5: 4 x 3 valid positions on 6 x 7.");
static_assert(On<AvgPool2D<3, 3, 2, Padding::same_lower>, 7, 6, 2>::geom::pad_left == 1 &&
                  On<AvgPool2D<3, 3, 2, Padding::same>, 7, 6, 2>::geom::pad_left == 0,
              "same_lower puts the odd padded column before the input, same after it.");
static_assert(std::is_same_v<On<GlobalAveragePooling2D, 5, 7, 9>::output_shape, Shape<9>> &&
                  std::is_same_v<On<GlobalMaxPooling2D, 5, 7, 9>::output_shape, Shape<9>> &&
                  std::is_same_v<On<GlobalAveragePooling1D, 11, 4>::output_shape, Shape<4>> &&
                  std::is_same_v<On<GlobalMaxPooling1D, 11, 4>::output_shape, Shape<4>>,
              "Global pooling keeps one value per channel.");
static_assert(std::is_same_v<On<MaxPool1D<2>, 9, 3>::output_shape, Shape<4, 3>> &&
                  std::is_same_v<On<MaxPool1D<3, 2, Padding::same>, 7, 3>::output_shape, Shape<4, 3>> &&
                  std::is_same_v<On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2)>, 8, 2>::output_shape,
                                 Shape<5, 2>>,
              "1-D pooling: floor((9 - 2) / 2) + 1 = 4, ceil(7 / 2) = 4, (8 + 3 - 3) / 2 + 1 = 5.");
static_assert(std::is_same_v<On<ZeroPadding2D<1, 2, 3, 4>, 5, 6, 2>::output_shape, Shape<8, 13, 2>> &&
                  std::is_same_v<On<ZeroPadding2D<1>, 5, 6, 2>::output_shape, Shape<7, 8, 2>> &&
                  std::is_same_v<On<ZeroPadding2D<1, 1, 2>, 5, 6, 2>::output_shape, Shape<7, 10, 2>>,
              "ZeroPadding2D adds Top + Bottom rows and Left + Right columns (Keras's defaults).");
static_assert(std::is_same_v<On<Reshape<2, 6>, 3, 4>::output_shape, Shape<2, 6>> &&
                  ViewLayer<On<Reshape<2, 6>, 3, 4>> && !ViewLayer<On<ZeroPadding2D<1>, 3, 4, 1>>,
              "Reshape is a view with its own output shape; ZeroPadding2D is not a view.");
static_assert(layer_kind<On<GlobalAveragePooling2D, 2, 2, 1>> == LayerKind::global_avg_pool2d &&
                  layer_kind<On<GlobalMaxPooling2D, 2, 2, 1>> == LayerKind::global_max_pool2d &&
                  layer_kind<On<GlobalAveragePooling1D, 2, 1>> == LayerKind::global_avg_pool1d &&
                  layer_kind<On<GlobalMaxPooling1D, 2, 1>> == LayerKind::global_max_pool1d &&
                  layer_kind<On<MaxPool1D<2>, 2, 1>> == LayerKind::max_pool1d &&
                  layer_kind<On<AveragePooling1D<2>, 2, 1>> == LayerKind::avg_pool1d &&
                  layer_kind<On<ZeroPadding2D<1>, 2, 2, 1>> == LayerKind::zero_padding2d &&
                  layer_kind<On<Reshape<4>, 2, 2, 1>> == LayerKind::reshape,
              "Each new layer declares its own kind.");
static_assert(Layer<On<MaxPool1D<2>, 4, 3>> && Layer<On<GlobalMaxPooling2D, 4, 4, 3>> &&
                  Layer<On<ZeroPadding2D<1>, 4, 4, 3>> && Layer<On<Reshape<48>, 4, 4, 3>>,
              "The new layers satisfy the Layer contract.");
static_assert(detail::qkind<OnF<MaxPool1D<2>, 4, 3>>() == detail::QKind::maxpool &&
                  detail::qkind<OnF<Reshape<12>, 4, 3>>() == detail::QKind::flatten &&
                  detail::qkind<OnF<GlobalAveragePooling2D, 4, 4, 3>>() == detail::QKind::gap &&
                  detail::qkind<OnF<GlobalAveragePooling1D, 4, 3>>() == detail::QKind::gap &&
                  detail::qkind<OnF<GlobalMaxPooling2D, 4, 4, 3>>() == detail::QKind::other,
              "int8: MaxPool1D runs on bytes, Reshape is a view, global average pooling sums bytes.");

// ---------------------------------------------------------------------------------------------
// Forward against the scalar reference.

TEST_CASE("AvgPool2D 3x3 stride 2 pads 1 on 1..25 (ONNX count_include_pad 0 and 1, by hand)") {
  // Window sums of the 5x5 image 1..25 and their in-image tap counts, computed by hand: corner
  // windows hold 2x2 inputs, edge windows 2x3 or 3x2, the centre 3x3.
  const double sums[9] = {16, 33, 28, 69, 117, 87, 76, 123, 88};
  const double taps[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  std::vector<double> x(25);
  for (std::size_t i = 0; i < 25; ++i) x[i] = double(i + 1);
  std::vector<double> y(9, kNaN);
  using Exclude = On<AvgPool2D<3, 3, 2, Padding::pads(1, 1, 1, 1)>, 5, 5, 1>;
  using Include = On<AvgPool2D<3, 3, 2, Padding::pads(1, 1, 1, 1), 1, true>, 5, 5, 1>;
  static_assert(std::is_same_v<Exclude::output_shape, Shape<3, 3, 1>>);
  Exclude::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  for (std::size_t i = 0; i < 9; ++i) CHECK(y[i] == sums[i] / taps[i]);  // 4, 5.5, 7, 11.5, 13, ...
  Include::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  for (std::size_t i = 0; i < 9; ++i) CHECK(y[i] == sums[i] / 9.0);
  // MaxPool2D with the same pads ignores the padding: the window's largest real input.
  const double maxes[9] = {7, 9, 10, 17, 19, 20, 22, 24, 25};
  On<MaxPool2D<3, 3, 2, Padding::pads(1, 1, 1, 1)>, 5, 5, 1>::forward(nullptr, x.data(), y.data(), 1,
                                                                      nullptr, PassContext{});
  for (std::size_t i = 0; i < 9; ++i) CHECK(y[i] == maxes[i]);
}

TEST_CASE("MaxPool2D and AvgPool2D with explicit pads, same_lower and dilation match the reference") {
  // {H, W, C, PH, PW, S, D, pad_top, pad_left, OH, OW, max, count_include_pad}
  check_against_reference<On<MaxPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>>(
      {6, 7, 3, 3, 3, 2, 1, 1, 2, 3, 4, true, false});
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>>(
      {6, 7, 3, 3, 3, 2, 1, 1, 2, 3, 4, false, false});
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1), 1, true>, 6, 7, 3>>(
      {6, 7, 3, 3, 3, 2, 1, 1, 2, 3, 4, false, true});
  // same_lower on 7 x 6, 3x3 stride 2: 4 x 3 outputs, total pads 2 rows (1 before) and 1 column
  // (before, where same puts it after).
  check_against_reference<On<MaxPool2D<3, 3, 2, Padding::same_lower>, 7, 6, 2>>(
      {7, 6, 2, 3, 3, 2, 1, 1, 1, 4, 3, true, false});
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::same_lower>, 7, 6, 2>>(
      {7, 6, 2, 3, 3, 2, 1, 1, 1, 4, 3, false, false});
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::same_lower, 1, true>, 7, 6, 2>>(
      {7, 6, 2, 3, 3, 2, 1, 1, 1, 4, 3, false, true});
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::same, 1, true>, 7, 6, 2>>(
      {7, 6, 2, 3, 3, 2, 1, 1, 0, 4, 3, false, true});
  // Dilation 2.
  check_against_reference<On<MaxPool2D<2, 3, 1, Padding::valid, 2>, 6, 7, 2>>(
      {6, 7, 2, 2, 3, 1, 2, 0, 0, 4, 3, true, false});
  check_against_reference<On<AvgPool2D<3, 3, 1, Padding::same, 2>, 5, 6, 2>>(
      {5, 6, 2, 3, 3, 1, 2, 2, 2, 5, 6, false, false});
  check_against_reference<On<AvgPool2D<3, 3, 1, Padding::same, 2, true>, 5, 6, 2>>(
      {5, 6, 2, 3, 3, 1, 2, 2, 2, 5, 6, false, true});
  check_against_reference<On<AvgPool2D<2, 2, 2, Padding::pads(1, 1, 0, 1), 2, true>, 5, 5, 1>>(
      {5, 5, 1, 2, 2, 2, 2, 1, 0, 3, 2, false, true});
  check_against_reference<On<MaxPool2D<3, 2, 2, Padding::same_lower, 2>, 7, 8, 3>>(
      // rows: ext 5, 4 outputs, total pad 3*2 + 5 - 7 = 4 -> 2; columns: ext 3, 4 outputs,
      // total 3*2 + 3 - 8 = 1 -> 1 before (same_lower).
      {7, 8, 3, 3, 2, 2, 2, 2, 1, 4, 4, true, false});
  // Old settings are unchanged: valid and same without dilation.
  check_against_reference<On<AvgPool2D<3, 3, 2, Padding::same>, 7, 7, 2>>(
      {7, 7, 2, 3, 3, 2, 1, 1, 1, 4, 4, false, false});
  check_against_reference<On<MaxPool2D<2>, 6, 6, 3>>({6, 6, 3, 2, 2, 2, 1, 0, 0, 3, 3, true, false});
}

TEST_CASE("MaxPool1D and AveragePooling1D match the reference on a 1 x Steps image") {
  check_against_reference<On<MaxPool1D<2>, 9, 3>>({1, 9, 3, 1, 2, 2, 1, 0, 0, 1, 4, true, false});
  check_against_reference<On<MaxPool1D<3, 2, Padding::same>, 7, 3>>(
      {1, 7, 3, 1, 3, 2, 1, 0, 1, 1, 4, true, false});
  check_against_reference<On<MaxPool1D<3, 2, Padding::same_lower>, 8, 3>>(
      // 4 outputs, total pad 3*2 + 3 - 8 = 1, before it with same_lower.
      {1, 8, 3, 1, 3, 2, 1, 0, 1, 1, 4, true, false});
  check_against_reference<On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2)>, 8, 2>>(
      {1, 8, 2, 1, 3, 2, 1, 0, 1, 1, 5, false, false});
  check_against_reference<On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2), true>, 8, 2>>(
      {1, 8, 2, 1, 3, 2, 1, 0, 1, 1, 5, false, true});
  check_against_reference<On<AveragePooling1D<4, 1>, 6, 5>>({1, 6, 5, 1, 4, 1, 1, 0, 0, 1, 3, false, false});
}

TEST_CASE("Global pooling matches a scalar mean and max per channel") {
  Rng rng(5);
  const auto check = [&]<class L>(std::size_t positions, std::size_t C) {
    const std::size_t n = 3;
    const auto x = ctnn_test::random_vector(n * positions * C, rng, -3, 3);
    std::vector<double> y(n * C, kNaN);
    L::forward(nullptr, x.data(), y.data(), n, nullptr, PassContext{});
    for (std::size_t s = 0; s < n; ++s)
      for (std::size_t c = 0; c < C; ++c) {
        double sum = 0, mx = -std::numeric_limits<double>::infinity();
        for (std::size_t p = 0; p < positions; ++p) {
          sum += x[(s * positions + p) * C + c];
          mx = std::max(mx, x[(s * positions + p) * C + c]);
        }
        const double want = layer_kind<L> == LayerKind::global_max_pool2d ||
                                    layer_kind<L> == LayerKind::global_max_pool1d
                                ? mx
                                : sum / double(positions);
        CHECK(y[s * C + c] == want);  // position order, as the scalar loop: the same bits
      }
  };
  check.operator()<On<GlobalAveragePooling2D, 5, 7, 9>>(35, 9);
  check.operator()<On<GlobalMaxPooling2D, 5, 7, 9>>(35, 9);
  check.operator()<On<GlobalAveragePooling2D, 3, 3, 1>>(9, 1);
  check.operator()<On<GlobalMaxPooling2D, 1, 1, 17>>(1, 17);
  check.operator()<On<GlobalAveragePooling1D, 11, 33>>(11, 33);
  check.operator()<On<GlobalMaxPooling1D, 11, 33>>(11, 33);
}

TEMPLATE_TEST_CASE("kernels::mean_rows and max_rows equal the scalar loops bit for bit, tails included",
                   "", float, double) {
  using T = TestType;
  Rng rng(9);
  for (std::size_t rows : {1, 2, 5, 13})
    for (std::size_t cols : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65}) {
      std::vector<T> x(rows * cols);
      for (auto& v : x) v = T(4 * rng.uniform01() - 2);
      std::vector<T> mean(cols + 1, T(7)), mx(cols + 1, T(7));
      kernels::mean_rows(rows, cols, x.data(), mean.data());
      kernels::max_rows(rows, cols, x.data(), mx.data());
      for (std::size_t j = 0; j < cols; ++j) {
        T sum = 0, m = x[j];
        for (std::size_t r = 0; r < rows; ++r) {
          sum += x[r * cols + j];
          m = std::max(m, x[r * cols + j]);
        }
        INFO("rows " << rows << ", cols " << cols << ", column " << j);
        REQUIRE(mean[j] == sum / T(rows));
        REQUIRE(mx[j] == m);
      }
      REQUIRE(mean[cols] == T(7));  // nothing written past the end
      REQUIRE(mx[cols] == T(7));
    }
}

// ---------------------------------------------------------------------------------------------
// NaN.

TEST_CASE("A NaN in a column makes max_rows and mean_rows NaN wherever it sits") {
  for (std::size_t rows : {1, 2, 6})
    for (std::size_t cols : {3, 8, 17})
      for (std::size_t at = 0; at < rows; ++at) {
        std::vector<float> x(rows * cols);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) - 3.0f;
        const std::size_t col = cols - 1 - at % cols;
        x[at * cols + col] = std::numeric_limits<float>::quiet_NaN();
        if (at + 1 < rows) x[(at + 1) * cols + col] = 100.0f;  // a larger value after the NaN
        std::vector<float> mean(cols), mx(cols);
        kernels::mean_rows(rows, cols, x.data(), mean.data());
        kernels::max_rows(rows, cols, x.data(), mx.data());
        for (std::size_t j = 0; j < cols; ++j) {
          INFO("rows " << rows << ", cols " << cols << ", NaN at row " << at << ", column " << j);
          CHECK(std::isnan(mean[j]) == (j == col));
          CHECK(std::isnan(mx[j]) == (j == col));
        }
      }
}

TEST_CASE("Pooling with pads and dilation: a NaN input makes exactly the windows that read it NaN") {
  // The reference marks NaN every window whose real taps include the NaN; padded taps never read.
  for (std::size_t at : {0u, 5u, 17u, 40u, 62u}) {
    check_against_reference<On<MaxPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>>(
        {6, 7, 3, 3, 3, 2, 1, 1, 2, 3, 4, true, false}, at, 1);
    check_against_reference<On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1), 1, true>, 6, 7, 3>>(
        {6, 7, 3, 3, 3, 2, 1, 1, 2, 3, 4, false, true}, at, 1);
    check_against_reference<On<MaxPool2D<3, 2, 2, Padding::same_lower, 2>, 7, 8, 3>>(
        {7, 8, 3, 3, 2, 2, 2, 2, 1, 4, 4, true, false}, at, 1);
    check_against_reference<On<MaxPool1D<3, 2, Padding::same>, 7, 3>>(
        {1, 7, 3, 1, 3, 2, 1, 0, 1, 1, 4, true, false}, at % 21, 1);
  }
}

TEST_CASE("Global pooling: a NaN makes its channel NaN, and the max's gradient goes to the NaN") {
  using Max = On<GlobalMaxPooling2D, 2, 2, 3>;
  using Mean = On<GlobalAveragePooling2D, 2, 2, 3>;
  // Channel 1 holds 1, NaN, 5, 2: its max is NaN (the 5 after it does not replace it).
  const std::vector<double> x = {0, 1, 2, 3, kNaN, 4, 1, 5, 0, 2, 2, 9};
  std::vector<double> y(3, 0.0), dx(12, kNaN);
  Max::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  CHECK(y[0] == 3);
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == 9);
  const std::vector<double> dy = {10, 20, 30};
  Max::backward(nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, 1, nullptr, PassContext{});
  const std::vector<double> want = {0, 0, 0, 10, 20, 0, 0, 0, 0, 0, 0, 30};
  for (std::size_t i = 0; i < 12; ++i) CHECK(dx[i] == want[i]);
  Mean::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  CHECK(y[0] == 1.5);
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == 3.75);
}

// ---------------------------------------------------------------------------------------------
// Gradients.

TEST_CASE("MaxPool2D gradients with explicit pads, same_lower and dilation") {
  check_layer_gradients<On<MaxPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>>();
  check_layer_gradients<On<MaxPool2D<3, 3, 2, Padding::same_lower>, 7, 6, 2>>();
  check_layer_gradients<On<MaxPool2D<2, 3, 1, Padding::valid, 2>, 6, 7, 2>>();
  check_layer_gradients<On<MaxPool2D<3, 2, 2, Padding::same_lower, 2>, 7, 8, 3>>(2);
  check_layer_gradients<On<MaxPool2D<2, 2, 1, Padding::pads(0, 1, 1, 0), 2>, 5, 5, 2>>(2);
}

TEST_CASE("AvgPool2D gradients with explicit pads, same_lower, dilation and count_include_pad") {
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1)>, 6, 7, 3>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1), 1, true>, 6, 7, 3>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::same_lower>, 7, 6, 2>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::same_lower, 1, true>, 7, 6, 2>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 2, Padding::same, 1, true>, 7, 7, 2>>();
  check_layer_gradients<On<AvgPool2D<3, 3, 1, Padding::same, 2>, 5, 6, 2>>(2);
  check_layer_gradients<On<AvgPool2D<3, 3, 1, Padding::same, 2, true>, 5, 6, 2>>(2);
  check_layer_gradients<On<AvgPool2D<2, 2, 2, Padding::pads(1, 1, 0, 1), 2, true>, 5, 5, 1>>();
  check_layer_gradients<On<AvgPool2D<2, 2, 2, Padding::pads(1, 1, 0, 1), 2>, 5, 5, 1>>();
}

TEST_CASE("Global pooling gradients") {
  check_layer_gradients<On<GlobalAveragePooling2D, 4, 5, 3>>();
  check_layer_gradients<On<GlobalMaxPooling2D, 4, 5, 3>>();
  check_layer_gradients<On<GlobalAveragePooling2D, 3, 3, 17>>(2);  // a vector and a tail
  check_layer_gradients<On<GlobalMaxPooling2D, 3, 3, 17>>(2);
  check_layer_gradients<On<GlobalAveragePooling1D, 7, 5>>();
  check_layer_gradients<On<GlobalMaxPooling1D, 7, 5>>();
}

TEST_CASE("1-D pooling gradients") {
  check_layer_gradients<On<MaxPool1D<2>, 9, 3>>();
  check_layer_gradients<On<MaxPool1D<3, 2, Padding::same>, 7, 3>>();
  check_layer_gradients<On<MaxPool1D<3, 1, Padding::same_lower>, 6, 2>>();
  check_layer_gradients<On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2)>, 8, 2>>();
  check_layer_gradients<On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2), true>, 8, 2>>();
  check_layer_gradients<On<AveragePooling1D<2, 1, Padding::same_lower, true>, 5, 4>>();
}

TEST_CASE("ZeroPadding2D and Reshape gradients") {
  check_layer_gradients<On<ZeroPadding2D<1, 2, 3, 0>, 4, 3, 2>>();
  check_layer_gradients<On<ZeroPadding2D<1>, 2, 2, 5>>();
  check_layer_gradients<On<Reshape<6, 4>, 2, 3, 4>>();
  check_layer_gradients<On<Reshape<2, 2, 3>, 12>>();
}

TEST_CASE("ZeroPadding2D puts the image at (Top, Left) and zeros around it") {
  using L = On<ZeroPadding2D<1, 0, 2, 1>, 2, 2, 1>;  // 2x2 -> 3x5
  const std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> y(15, kNaN);
  L::forward(nullptr, x.data(), y.data(), 1, nullptr, PassContext{});
  const std::vector<double> want = {0, 0, 0, 0, 0,  //
                                    0, 0, 1, 2, 0,  //
                                    0, 0, 3, 4, 0};
  for (std::size_t i = 0; i < 15; ++i) CHECK(y[i] == want[i]);
}

// ---------------------------------------------------------------------------------------------
// Inside models.

namespace {

// Parameter gradients of `Model` (double) under mean squared error against central differences:
// every layer after the first is crossed by the backward pass, views included.
template <class Model>
void check_model_gradients(std::size_t n = 3) {
  Rng rng(3);
  Model model(4);
  const auto x = ctnn_test::random_vector(n * Model::input_size, rng);
  const auto t = ctnn_test::random_vector(n * Model::output_size, rng);
  const MeanSquaredError loss;
  const Targets<double> targets{nullptr, t.data()};
  typename Model::Workspace ws;
  ws.reserve(n, true);
  const PassContext ctx{true, 0};
  const auto f = [&] {
    std::copy(x.begin(), x.end(), ws.input());
    const double* y = model.forward(ws, n, ctx);
    return loss.value(y, targets, n, Model::output_size) / double(n);
  };
  std::vector<double> grads(Model::arena_size, kNaN);
  std::copy(x.begin(), x.end(), ws.input());
  const double* y = model.forward(ws, n, ctx);
  loss.backward(y, targets, n, Model::output_size, ws.gradient(0));
  model.backward(ws, n, grads.data(), ctx);
  auto params = model.parameters();
  std::size_t checked = 0;
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    const std::size_t off = Model::template param_offset<I>;
    for (std::size_t i = off; i < off + Model::template layer<I>::param_count; ++i) {
      const double keep = params[i], h = 1e-6;
      params[i] = keep + h;
      const double fp = f();
      params[i] = keep - h;
      const double fm = f();
      params[i] = keep;
      ctnn_test::require_close(grads[i], (fp - fm) / (2 * h), "dparam", i);
      ++checked;
    }
  });
  CHECK(checked == Model::param_count);
}

}  // namespace

TEST_CASE("Models with the new layers: parameter gradients through every one of them") {
  // Conv2D first, so each later layer's input gradient is used.
  check_model_gradients<BasicSequential<
      double, Input<6, 5, 2>, Conv2D<3, 2, 2>, ZeroPadding2D<1, 0, 2, 1>,
      MaxPool2D<2, 2, 1, Padding::pads(1, 0, 0, 1), 2>, Reshape<30, 3>,
      AveragePooling1D<3, 2, Padding::same, true>, GlobalAveragePooling1D, Dense<4>>>();
  check_model_gradients<BasicSequential<
      double, Input<7, 6, 1>, Conv2D<3, 3, 3, 1, Padding::same>,
      AvgPool2D<3, 3, 2, Padding::same_lower, 1, true>, Reshape<4, 9>, MaxPool1D<2, 1>,
      GlobalMaxPooling1D, Dense<3>>>();
  check_model_gradients<BasicSequential<double, Input<6, 6, 2>, Conv2D<4, 3, 3>, ReLU,
                                        GlobalAveragePooling2D, Dense<5>, Tanh, Dense<2>>>();
  check_model_gradients<BasicSequential<double, Input<5, 5, 2>, Conv2D<4, 2, 2>,
                                        GlobalMaxPooling2D, Dense<2>>>();
}

TEST_CASE("A model with the new layers gives the same bits at 1, 2 and 3 threads") {
  using Model = Sequential<Input<10, 10, 3>, ZeroPadding2D<1>, Conv2D<8, 3, 3>, ReLU,
                           MaxPool2D<3, 3, 2, Padding::pads(1, 0, 1, 0), 2>,
                           AvgPool2D<2, 2, 1, Padding::same, 1, true>, GlobalAveragePooling2D,
                           Dense<4>, Softmax>;
  Model model(2);
  Rng rng(8);
  const std::size_t n = 300;
  std::vector<float> x(n * Model::input_size);
  for (auto& v : x) v = float(rng.uniform01());
  std::vector<std::vector<float>> outs;
  const int before = max_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    outs.emplace_back(n * Model::output_size);
    model.predict(x, outs.back());
  }
  set_num_threads(before);
  REQUIRE(outs[0].size() == n * Model::output_size);
  CHECK(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * sizeof(float)) == 0);
  CHECK(std::memcmp(outs[0].data(), outs[2].data(), outs[0].size() * sizeof(float)) == 0);
}

TEST_CASE("config() and spec() keep the old text and spell the new settings") {
  CHECK(On<AvgPool2D<2>, 4, 4, 1>::config() == "2x2 stride 2 valid");
  CHECK(On<AvgPool2D<2>, 4, 4, 1>::spec() == "ctnn::AvgPool2D<2, 2, 2, ctnn::Padding::valid>");
  CHECK(On<MaxPool2D<3, 3, 1, Padding::same>, 4, 4, 1>::spec() ==
        "ctnn::MaxPool2D<3, 3, 1, ctnn::Padding::same>");
  using New = On<AvgPool2D<3, 3, 2, Padding::pads(1, 0, 2, 1), 2, true>, 9, 9, 1>;
  CHECK(New::config() == "3x3 stride 2 pads 1,0,2,1 dilation 2 count_include_pad");
  CHECK(New::spec() == "ctnn::AvgPool2D<3, 3, 2, ctnn::Padding::pads(1, 0, 2, 1), 2, true>");
  CHECK(On<AvgPool2D<3, 3, 2, Padding::same, 1, true>, 9, 9, 1>::spec() ==
        "ctnn::AvgPool2D<3, 3, 2, ctnn::Padding::same, 1, true>");
  CHECK(On<MaxPool2D<2, 2, 2, Padding::same_lower, 3>, 9, 9, 1>::spec() ==
        "ctnn::MaxPool2D<2, 2, 2, ctnn::Padding::same_lower, 3>");
  CHECK(On<MaxPool1D<3, 2, Padding::same>, 7, 3>::config() == "3 stride 2 same");
  CHECK(On<AveragePooling1D<3, 2, Padding::pads(0, 0, 1, 2), true>, 8, 2>::spec() ==
        "ctnn::AveragePooling1D<3, 2, ctnn::Padding::pads(0, 0, 1, 2), true>");
  CHECK(On<ZeroPadding2D<1, 2, 3, 4>, 2, 2, 1>::spec() == "ctnn::ZeroPadding2D<1, 2, 3, 4>");
  using M = Sequential<Input<6, 6, 2>, ZeroPadding2D<1>, Conv2D<3, 3, 3>, Reshape<36, 3>,
                       MaxPool1D<2>, GlobalAveragePooling1D, Reshape<3, 1, 1>,
                       GlobalMaxPooling2D, Dense<2>>;
  CHECK(deploy::cpp_type<M>() ==
        "ctnn::Sequential<ctnn::Input<6, 6, 2>, ctnn::ZeroPadding2D<1, 1, 1, 1>, "
        "ctnn::Conv2D<3, 3, 3, 1, ctnn::Padding::valid>, ctnn::Reshape<36, 3>, "
        "ctnn::MaxPool1D<2, 2, ctnn::Padding::valid>, ctnn::GlobalAveragePooling1D, "
        "ctnn::Reshape<3, 1, 1>, ctnn::GlobalMaxPooling2D, ctnn::Dense<2>>");
  CHECK(topology<M>().find("MaxPool1D[2 stride 2 valid](None, 18, 3)") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// int8.

namespace {

template <class Model>
void check_quantized_close(std::uint64_t seed) {
  Model model(seed);
  Rng rng(seed + 1);
  const std::size_t n = 200;
  std::vector<float> data(n * Model::input_size);
  for (auto& v : data) v = float(rng.uniform01());
  auto q = quantize(model, data);
  std::vector<float> yf(n * Model::output_size), yq(n * Model::output_size);
  model.predict(data, yf);
  q.predict(data, yq);
  REQUIRE(yf.size() == yq.size());
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < yf.size(); ++i) {
    worst = std::max(worst, double(std::abs(yf[i] - yq[i])));
    largest = std::max(largest, double(std::abs(yf[i])));
  }
  INFO("largest difference " << worst << " of outputs up to " << largest);
  CHECK(largest > 0);
  CHECK(worst < 0.03 * largest);
}

}  // namespace

TEST_CASE("int8: max pooling with pads and dilation, MaxPool1D, Reshape and "
          "GlobalAveragePooling2D run on bytes") {
  using A = Sequential<Input<14, 14, 1>, Conv2D<6, 3, 3>, ReLU,
                       MaxPool2D<2, 2, 2, Padding::pads(1, 0, 0, 1), 2>, Conv2D<4, 3, 3>, ReLU,
                       Reshape<16, 4>, MaxPool1D<3, 2, Padding::same_lower>, Flatten, Dense<5>>;
  static_assert(std::is_same_v<A::layer<2>::output_shape, Shape<6, 6, 6>>);
  using F = detail::Int8Forward<A>;
  static_assert(F::plan.kind[2] == detail::QKind::maxpool && F::plan.in_bytes[2] &&
                    F::plan.kind[5] == detail::QKind::flatten && F::plan.in_bytes[5] &&
                    F::plan.kind[6] == detail::QKind::maxpool && F::plan.in_bytes[6],
                "The max pools and the Reshape lie between quantized layers on bytes.");
  check_quantized_close<A>(3);

  using B = Sequential<Input<12, 12, 2>, Conv2D<8, 3, 3>, ReLU, GlobalAveragePooling2D, Dense<6>,
                       ReLU, Dense<3>>;
  static_assert(detail::Int8Forward<B>::plan.in_bytes[2] && detail::Int8Forward<B>::plan.bytes[2] &&
                    detail::Int8Forward<B>::plan.unsigned_bytes[2] &&
                    !detail::Int8Forward<B>::plan.bytes[3] &&
                    detail::Int8Forward<B>::plan.kind[2] == detail::QKind::gap,
                "GlobalAveragePooling2D sums the Conv+ReLU's bytes and writes its means in float.");
  check_quantized_close<B>(4);
}
