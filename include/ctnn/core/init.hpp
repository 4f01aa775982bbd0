// ctnn/core/init.hpp: weight initializers, Keras's kernel_initializer / bias_initializer.
//
// An initializer is a type with
//   static constexpr std::string_view spec;   // its C++ name, e.g. "ctnn::init::HeNormal"
//   template <class T> static void fill(T* w, std::size_t count, std::size_t fan_in,
//                                       std::size_t fan_out, Rng& rng);
// and is given to a layer as a template argument:
//   ctnn::Dense<128, ctnn::init::HeUniform>                       // kernel He uniform, bias zero
//   ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid, ctnn::init::TorchUniform, ctnn::init::TorchUniform>
// fan_in and fan_out are counted as Keras and PyTorch count them: Dense in and Units; Conv2D
// KH*KW*C and KH*KW*Filters. A bias initializer gets the fans of its layer's kernel.
//
//   initializer    draw                                         Keras / PyTorch name
//   GlorotUniform  U(-l, l), l = sqrt(6 / (fan_in + fan_out))   glorot_uniform (Keras's default)
//   GlorotNormal   truncated normal, s = sqrt(2 / (fan_in + fan_out))   glorot_normal
//   HeUniform      U(-l, l), l = sqrt(6 / fan_in)               he_uniform
//   HeNormal       truncated normal, s = sqrt(2 / fan_in)       he_normal
//   LecunUniform   U(-l, l), l = sqrt(3 / fan_in)               lecun_uniform
//   LecunNormal    truncated normal, s = sqrt(1 / fan_in)       lecun_normal
//   TorchUniform   U(-l, l), l = 1 / sqrt(fan_in)               PyTorch's default for the weights
//                  (kaiming_uniform_ with a = sqrt(5)) and the biases of nn.Linear and nn.Conv2d
//   Zeros, Ones    constants                                    zeros (Keras's bias default), ones
//   Orthogonal     a random matrix of fan_in rows and count / fan_in columns, row-major, whose
//                  rows (or columns, whichever are fewer) are orthonormal: orthogonal (Keras's
//                  default for recurrent kernels). Dense, which stores its kernel transposed,
//                  gives it its own rows (Units), so the orthogonality holds in its layout too.
// The truncated normals follow Keras: a normal with standard deviation s / 0.87962566103423978,
// redrawn outside two of those standard deviations, so that the draws' variance is s^2.
//
// Reproducibility: the uniform draws use Rng's integer arithmetic and one correctly rounded
// fused multiply-add, so they are the same on every platform and in every program, whatever the
// compiler's contraction settings. The normal draws (Box-Muller) use std::log and std::cos, which are not correctly
// rounded, so they may differ in the last bit between C libraries.
#pragma once
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctnn/core/rng.hpp"

namespace ctnn {

template <class I>
concept Initializer = requires(float* w, std::size_t n, Rng& rng) {
  { I::spec } -> std::convertible_to<std::string_view>;
  I::template fill<float>(w, n, n, n, rng);
};
// The same test as a plain bool, for static_asserts whose message alone should explain it.
template <class I>
inline constexpr bool is_initializer_v = Initializer<I>;

namespace init {
namespace detail {
template <class T>
void uniform(T* w, std::size_t count, double limit, Rng& rng) {
  const float l = static_cast<float>(limit);
  for (std::size_t i = 0; i < count; ++i) w[i] = static_cast<T>(rng.uniform(-l, l));
}

// Keras's truncated normal: N(0, (s / 0.8796...)^2), redrawn beyond two of its standard
// deviations; the result has standard deviation s.
template <class T>
void truncated_normal(T* w, std::size_t count, double s, Rng& rng) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double sd = s / 0.87962566103423978;
  for (std::size_t i = 0; i < count; ++i) {
    double z;
    do {
      const double u1 = 1.0 - rng.uniform01();  // (0, 1]: log is finite
      const double u2 = rng.uniform01();
      z = std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
    } while (z < -2.0 || z > 2.0);
    w[i] = static_cast<T>(z * sd);
  }
}

inline double fan(std::size_t f) { return static_cast<double>(f == 0 ? 1 : f); }
}  // namespace detail

struct GlorotUniform {
  static constexpr std::string_view spec = "ctnn::init::GlorotUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t fan_out, Rng& rng) {
    detail::uniform(w, count, std::sqrt(6.0 / detail::fan(fan_in + fan_out)), rng);
  }
};
struct GlorotNormal {
  static constexpr std::string_view spec = "ctnn::init::GlorotNormal";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t fan_out, Rng& rng) {
    detail::truncated_normal(w, count, std::sqrt(2.0 / detail::fan(fan_in + fan_out)), rng);
  }
};
struct HeUniform {
  static constexpr std::string_view spec = "ctnn::init::HeUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    detail::uniform(w, count, std::sqrt(6.0 / detail::fan(fan_in)), rng);
  }
};
struct HeNormal {
  static constexpr std::string_view spec = "ctnn::init::HeNormal";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    detail::truncated_normal(w, count, std::sqrt(2.0 / detail::fan(fan_in)), rng);
  }
};
struct LecunUniform {
  static constexpr std::string_view spec = "ctnn::init::LecunUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    detail::uniform(w, count, std::sqrt(3.0 / detail::fan(fan_in)), rng);
  }
};
struct LecunNormal {
  static constexpr std::string_view spec = "ctnn::init::LecunNormal";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    detail::truncated_normal(w, count, std::sqrt(1.0 / detail::fan(fan_in)), rng);
  }
};
struct TorchUniform {
  static constexpr std::string_view spec = "ctnn::init::TorchUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    detail::uniform(w, count, 1.0 / std::sqrt(detail::fan(fan_in)), rng);
  }
};
struct Zeros {
  static constexpr std::string_view spec = "ctnn::init::Zeros";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t, std::size_t, Rng&) {
    for (std::size_t i = 0; i < count; ++i) w[i] = T(0);
  }
};
// Keras's Orthogonal (gain 1): a standard normal matrix with max(rows, cols) rows and
// min(rows, cols) columns, orthonormalized (QR with a positive diagonal in R, here by modified
// Gram-Schmidt in double), transposed back when rows < cols.
struct Orthogonal {
  static constexpr std::string_view spec = "ctnn::init::Orthogonal";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t fan_in, std::size_t, Rng& rng) {
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    const std::size_t rows = fan_in == 0 ? 1 : fan_in, cols = count / rows;
    const std::size_t m = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
    std::vector<double> q(m * k);  // column j of the tall matrix is q[j * m .. j * m + m)
    for (double& v : q) {
      const double u1 = 1.0 - rng.uniform01(), u2 = rng.uniform01();
      v = std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
    }
    for (std::size_t j = 0; j < k; ++j) {
      double* qj = q.data() + j * m;
      for (std::size_t i = 0; i < j; ++i) {
        const double* qi = q.data() + i * m;
        double dot = 0;
        for (std::size_t r = 0; r < m; ++r) dot += qi[r] * qj[r];
        for (std::size_t r = 0; r < m; ++r) qj[r] -= dot * qi[r];
      }
      double norm = 0;
      for (std::size_t r = 0; r < m; ++r) norm += qj[r] * qj[r];
      norm = std::sqrt(norm);
      for (std::size_t r = 0; r < m; ++r) qj[r] = norm > 0 ? qj[r] / norm : 0.0;
    }
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c)
        w[r * cols + c] = static_cast<T>(rows >= cols ? q[c * m + r] : q[r * m + c]);
    for (std::size_t i = rows * cols; i < count; ++i) w[i] = T(0);
  }
};

struct Ones {
  static constexpr std::string_view spec = "ctnn::init::Ones";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t, std::size_t, Rng&) {
    for (std::size_t i = 0; i < count; ++i) w[i] = T(1);
  }
};
}  // namespace init

namespace detail {
// ", KernelInit, BiasInit" for a layer's spec(), or "" when both are the defaults, so that the
// types written by export_header stay as short as the user's.
template <class KernelInit, class BiasInit>
std::string init_spec() {
  if constexpr (std::is_same_v<KernelInit, init::GlorotUniform> && std::is_same_v<BiasInit, init::Zeros>)
    return "";
  else
    return ", " + std::string(KernelInit::spec) + ", " + std::string(BiasInit::spec);
}
}  // namespace detail

}  // namespace ctnn
