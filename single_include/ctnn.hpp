// ctnn: the whole library in one header.
//
// GENERATED FILE -- DO NOT EDIT. It was generated from include/ctnn/ctnn.hpp by
//     python3 scripts/amalgamate.py
// Edit the headers under include/ctnn/ and run that command again; CI runs
// `python3 scripts/amalgamate.py --check` and fails when this file is out of date.
//
// Needs C++20, Highway's headers (with HWY_COMPILE_ONLY_STATIC=1 defined), OpenMP and zlib;
// the CMake target ctnn::ctnn sets all of these up.
#pragma once
// ---- begin ctnn/ctnn.hpp ----
// ctnn/ctnn.hpp: everything ctnn offers, in one include.

// ---- begin ctnn/core/buffer.hpp ----
// ctnn/core/buffer.hpp: a 64-byte aligned, zero-initialized array that only grows.
//
// 64 bytes is a cache line and a full AVX-512 vector, so every arena and activation buffer
// starts on a vector boundary. resize() to a size at or below the capacity does not allocate,
// which is what keeps steady-state training and inference free of heap traffic.
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace ctnn {

inline constexpr std::size_t kAlignBytes = 64;

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer& o) : AlignedBuffer(o.size_) {
    if (size_) std::memcpy(data_, o.data_, size_ * sizeof(T));
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept { swap(o); }
  AlignedBuffer& operator=(AlignedBuffer o) noexcept {
    swap(o);
    return *this;
  }
  ~AlignedBuffer() { release(); }

  void swap(AlignedBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
  }

  // Sets the size to n; new elements (beyond the old size) are zero. Allocates only when n
  // exceeds the capacity.
  void resize(std::size_t n) {
    if (n > capacity_) {
      T* fresh = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kAlignBytes}));
      std::memset(static_cast<void*>(fresh), 0, n * sizeof(T));
      if (size_) std::memcpy(static_cast<void*>(fresh), data_, size_ * sizeof(T));
      release();
      data_ = fresh;
      capacity_ = n;
    } else if (n > size_ && data_ != nullptr) {  // (data_ is set whenever capacity_ > 0)
      std::memset(static_cast<void*>(data_ + size_), 0, (n - size_) * sizeof(T));
    }
    size_ = n;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t{kAlignBytes});
    data_ = nullptr;
    size_ = capacity_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace ctnn
// ---- end ctnn/core/buffer.hpp ----
// ---- begin ctnn/core/error.hpp ----
// ctnn/core/error.hpp: the one exception type ctnn throws.
//
// Every runtime error ctnn reports is a ctnn::Error whose what() is a sentence naming what was
// wrong and the values involved (file, offset, expected vs found). Build the message with
// ctnn::fail(...), which streams its arguments.
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ctnn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// User text (a cell, a column or feature name) as a message quotes it: whole when it has at most
// 60 bytes, else its first 60 bytes (never splitting a UTF-8 character), "..." and its length, so
// that one 50 MB cell cannot make a 50 MB message.
inline std::string excerpt(std::string_view text) {
  constexpr std::size_t kMaxBytes = 60;  // a message stays one readable line
  if (text.size() <= kMaxBytes) return std::string(text);
  std::size_t n = kMaxBytes;
  // Back off while text[n] is a UTF-8 continuation byte (10xxxxxx).
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0u) == 0x80u) --n;
  return std::string(text.substr(0, n)) + "... (" + std::to_string(text.size()) + " bytes)";
}

// Throws ctnn::Error with the streamed concatenation of `parts`. In a build without exceptions
// (-fno-exceptions, e.g. firmware running deploy/static_model.hpp, whose inference path never
// fails) an error is fatal: std::abort(), without building the message.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
#else
  ((void)parts, ...);
  std::abort();
#endif
}

}  // namespace ctnn
// ---- end ctnn/core/error.hpp ----
// ---- begin ctnn/core/init.hpp ----
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
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// ---- begin ctnn/core/rng.hpp ----
// ctnn/core/rng.hpp: the one random number generator ctnn uses (shuffling, splits, weight init).
//
// ctnn::Rng is splitmix64 (Steele, Lea, Flood 2014): 64 bits of state, one add and a 3-step mix per
// output, and it passes BigCrush. Every operation here uses only integer arithmetic and exact
// power-of-two scaling, so a seed gives the same sequence, shuffles and splits on every platform
// and compiler (std::mt19937 is portable but std::uniform_int_distribution and std::shuffle are
// not). Not for cryptography.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>


namespace ctnn {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : state_(seed) {}

  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);  // golden-ratio increment
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform double in [0, 1): the top 53 bits, the most a double holds exactly.
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform float in [lo, hi) for lo < hi; returns lo when lo == hi.
  float uniform(float lo, float hi) {
    const float u = static_cast<float>(next_u64() >> 40) * 0x1.0p-24f;  // 24 bits: float's mantissa
    // One rounding, always: written as lo + (hi - lo) * u, the compiler may or may not contract it
    // into a fused multiply-add (GCC does under -std=gnu++20's -ffp-contract=fast, depending on
    // how it inlined the call), and the same seed gave weights a bit apart in two programs.
    const float r = std::fma(hi - lo, u, lo);
    // It can round up to hi; clamp to keep the interval half-open.
    return lo < hi ? std::min(r, std::nextafter(hi, lo)) : lo;
  }

  // Uniform integer in [0, n), without modulo bias: draws below 2^64 mod n are rejected so the
  // accepted range is a whole number of copies of [0, n). Throws ctnn::Error when n == 0.
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) fail("Rng::below(n) needs n >= 1, got 0.");
    const std::uint64_t reject_under = (0 - n) % n;  // == 2^64 mod n
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= reject_under) return r % n;
    }
  }

 private:
  std::uint64_t state_;
};

// Fisher-Yates shuffle: every permutation equally likely, the same one for the same Rng state.
template <class T>
void shuffle(std::span<T> items, Rng& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.below(i));
    using std::swap;
    swap(items[i - 1], items[j]);
  }
}

template <class T>
void shuffle(std::vector<T>& items, Rng& rng) {
  shuffle(std::span<T>(items), rng);
}

}  // namespace ctnn
// ---- end ctnn/core/rng.hpp ----

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
// ---- end ctnn/core/init.hpp ----
// ---- begin ctnn/core/layer.hpp ----
// ctnn/core/layer.hpp: what a layer is.
//
// A layer *spec* is the type a user writes in a model (Dense<128>, ReLU). Given the shape that
// flows into it and the scalar type, the spec binds to a layer *implementation*:
//     typename Spec::template bind<InputShape, T>
// The implementation is stateless: its parameters live at a compile-time offset in the model's
// parameter arena and its activations and scratch in a workspace the model owns. That is what lets
// one buffer hold every weight (one-pass optimizers, one-block save files) and what makes a
// training step allocation-free.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

// ---- begin ctnn/core/epilogue.hpp ----
// ctnn/core/epilogue.hpp: the activation a layer's forward may apply in its own store.
//
// Sequential decides at compile time that a ReLU (or ReLU6) after Dense or Conv2D is fused into
// their GEMM (core/layer.hpp, FusesRelu, fused_epilogue) and passes Epilogue::relu (relu6) to their
// forward; the GEMM kernels
// (kernels/gemm.hpp) apply it as they write each output. It lives in core/ so the planner names it
// without including kernels/: kernels build on core, never the other way.

namespace ctnn {

// Activation applied in a GEMM epilogue.
enum class Epilogue { none, relu, relu6 };

}  // namespace ctnn
// ---- end ctnn/core/epilogue.hpp ----
// ---- begin ctnn/core/shape.hpp ----
// ctnn/core/shape.hpp: compile-time tensor shapes.
//
// Shape<D...> is the shape of one sample (no batch dimension), channels last for images:
// Shape<28, 28, 1> is a 28x28 grey image, Shape<10> a vector of 10. Layers map one Shape type to
// another at compile time; the batch size is the only run-time dimension.
#include <array>
#include <cstddef>
#include <ostream>
#include <string>

namespace ctnn {

template <std::size_t... Dims>
struct Shape {
  static constexpr std::size_t rank = sizeof...(Dims);
  static constexpr std::size_t size = (std::size_t{1} * ... * Dims);
  static constexpr std::array<std::size_t, rank> dims{Dims...};

  // "(None, 26, 26, 32)", the way Keras prints a batched shape.
  static std::string str() {
    std::string s = "(None";
    for (std::size_t d : dims) s += ", " + std::to_string(d);
    return s + ")";
  }
};

template <class S>
inline constexpr bool is_shape_v = false;
template <std::size_t... D>
inline constexpr bool is_shape_v<Shape<D...>> = true;

// The concept a layer's input and output shapes satisfy.
template <class S>
concept ShapeType = is_shape_v<S>;

}  // namespace ctnn
// ---- end ctnn/core/shape.hpp ----

namespace ctnn {

// The optimizer's update of a range of the parameter arena, for a training step that updates
// each layer as soon as its gradient is complete (train/trainer.hpp): apply(offset, count) runs
// the optimizer (and the regularizers' gradient terms) on parameters [offset, offset + count).
struct ParamUpdate {
  void (*fn)(void* self, std::size_t offset, std::size_t count) = nullptr;
  void* self = nullptr;
  void apply(std::size_t offset, std::size_t count) const { fn(self, offset, count); }
};

// Per-pass facts a layer may need: training (Dropout is active) or inference, and a seed that
// changes every training step (Dropout draws its mask from it, so a run is reproducible).
// `update` is read by the model's backward only (layers see null): when set, each layer's
// parameters are updated right after that layer's backward, which is the last to read them.
struct PassContext {
  bool training = false;
  std::uint64_t seed = 0;
  const ParamUpdate* update = nullptr;
};

// The contract of a bound layer implementation L with scalar type T = L::value_type:
//   input_shape, output_shape   Shape<...> types of one sample
//   param_count                 number of trainable parameters (Keras's count)
//   scratch_per_sample          scalars of private workspace per sample, kept from forward to
//                               backward (im2col patches, dropout masks, ...)
//   name                        the class name Keras would print ("Conv2D")
//   init(params, rng)           Keras-default initialization, seeded
//   forward(params, x, y, n, scratch, ctx)
//                               y[n x out] from x[n x in]; writes every element of y
//   backward(params, x, y, dy, dx, dparams, n, scratch, ctx)
//                               writes every element of dparams (the gradient of the batch's
//                               loss, summed over the batch) and, unless dx is null, of dx.
template <class L>
concept Layer = requires {
  typename L::value_type;
  requires ShapeType<typename L::input_shape>;
  requires ShapeType<typename L::output_shape>;
  { L::param_count } -> std::convertible_to<std::size_t>;
  { L::scratch_per_sample } -> std::convertible_to<std::size_t>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(typename L::value_type* p, const typename L::value_type* c, std::size_t n, Rng& rng,
              const PassContext& ctx) {
  L::init(p, rng);
  L::forward(c, c, p, n, p, ctx);
  L::backward(c, c, c, c, p, p, n, p, ctx);
};

// What a layer computes, for the passes that treat some layers specially: Sequential fuses a
// `relu` into a preceding Dense/Conv2D, training fuses a final `softmax` with a cross-entropy, the
// int8 path quantizes `dense` and `conv2d` and runs `relu`, `flatten`, `dropout` and `max_pool2d`
// on bytes, the monitor treats a `softmax` output as classes. A layer declares its kind as
//     static constexpr LayerKind kind = LayerKind::relu;
// and a layer that declares none is `other`: never fused, never assumed to be anything. `name` is
// for display only, so a user layer named "ReLU" is not taken for one. (A layer derived from a
// built-in one inherits its kind: declare `other` if it computes something else.)
enum class LayerKind {
  other, dense, conv2d, max_pool2d, avg_pool2d, flatten, dropout,
  relu, leaky_relu, sigmoid, tanh, softmax,
  batch_norm,
  global_avg_pool2d,
  global_max_pool2d,
  global_avg_pool1d,
  global_max_pool1d,
  max_pool1d,
  avg_pool1d,
  zero_padding2d,
  reshape,
  depthwise_conv2d,
  separable_conv2d,
  conv1d,
  bounded_relu,
  hard_swish,
  hard_sigmoid,
  swish,
  elu,
  lstm,
  gru,
  simple_rnn,
  embedding,
  layer_norm,
};

namespace detail {
template <class L>
constexpr LayerKind kind_of() {
  if constexpr (requires { { L::kind } -> std::convertible_to<LayerKind>; }) return L::kind;
  else return LayerKind::other;
}
}  // namespace detail

// The declared kind of bound layer L (LayerKind::other when it declares none).
template <class L>
inline constexpr LayerKind layer_kind = detail::kind_of<L>();

// A layer whose forward can apply a ReLU to its output in the same pass (a fused GEMM epilogue).
// Sequential uses it when a ReLU follows: the ReLU's forward is then free.
template <class L>
concept FusesRelu = Layer<L> && L::fuses_relu;

namespace detail {
template <class L>
constexpr Epilogue epilogue_of() {
  if constexpr (requires { { L::epilogue } -> std::convertible_to<Epilogue>; }) return L::epilogue;
  else if constexpr (layer_kind<L> == LayerKind::relu) return Epilogue::relu;
  else return Epilogue::none;
}
}  // namespace detail

// The GEMM epilogue (core/epilogue.hpp) that computes activation layer L, or none: relu for a
// ReLU; what L declares as `static constexpr Epilogue epilogue` otherwise (ReLU6: relu6).
// Sequential fuses a layer whose epilogue is not none into a FusesRelu layer before it.
template <class L>
inline constexpr Epilogue fused_epilogue = detail::epilogue_of<L>();

// A layer whose output is its input reinterpreted (Flatten): Sequential passes the same buffer on
// instead of copying, forward and backward.
template <class L>
concept ViewLayer = Layer<L> && L::is_view;

}  // namespace ctnn
// ---- end ctnn/core/layer.hpp ----
// ---- begin ctnn/core/parallel.hpp ----
// ctnn/core/parallel.hpp: the one place ctnn uses OpenMP.
//
// parallel_for_range(n, f) splits [0, n) into one contiguous chunk per thread (static schedule) and
// calls f(begin, end) on each. It runs serially when n is small, when `worth_it` is false, or when
// called from inside an OpenMP parallel region (a user's `#pragma omp parallel` calling ctnn does
// not nest teams). Called from several std::threads at once, each call opens its own team (libgomp
// keeps one thread pool per calling thread): correct, but up to threads x max_threads() busy
// threads; a server predicting from many threads calls set_num_threads(1) in each of them (it sets
// the calling thread's count only) or runs with OMP_NUM_THREADS=1. Kernels make every output
// element the work of exactly one chunk and never sum across chunks, so results do not depend on
// the thread count (tests/core/test_concurrency.cpp checks the bits).
#include <algorithm>
#include <atomic>
#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ctnn {

// Number of threads ctnn's parallel regions use.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Sets the thread count for later parallel regions started by the calling thread (like
// OMP_NUM_THREADS, which sets it for every thread).
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// The largest team any ctnn parallel region has run with since the last reset_widest_team(): lets
// a test check that a run "at n threads" really used n, and that a call from inside a parallel
// region opened no team of its own. One relaxed atomic per region, next to a region's microseconds.
inline std::atomic<int>& widest_team_counter() {
  static std::atomic<int> widest{1};
  return widest;
}
inline int widest_team() { return widest_team_counter().load(std::memory_order_relaxed); }
inline void reset_widest_team() { widest_team_counter().store(1, std::memory_order_relaxed); }

// Work (in multiply-adds or elements) below which a parallel region costs more than it saves:
// waking a second thread and the closing barrier take microseconds, more under load.
inline constexpr std::size_t kParallelWork = std::size_t{1} << 16;

template <class F>
void parallel_for_range(std::size_t n, F&& f, bool worth_it = true) {
  if (n == 0) return;
#ifdef _OPENMP
  const int threads = max_threads();
  if (worth_it && n > 1 && threads > 1 && !in_parallel_region()) {
    const std::size_t chunks = std::min<std::size_t>(n, static_cast<std::size_t>(threads));
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(chunks))
    for (std::size_t c = 0; c < chunks; ++c) {
      if (c == 0) {
        const int team = omp_get_num_threads();
        auto& widest = widest_team_counter();
        int seen = widest.load(std::memory_order_relaxed);
        while (team > seen && !widest.compare_exchange_weak(seen, team, std::memory_order_relaxed)) {
        }
      }
      const std::size_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      f(begin, end);
    }
    return;
  }
#endif
  (void)worth_it;
  f(std::size_t{0}, n);
}

// Calls f(i) for each i in [0, n), in parallel chunks.
template <class F>
void parallel_for(std::size_t n, F&& f, bool worth_it = true) {
  parallel_for_range(
      n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) f(i);
      },
      worth_it);
}

}  // namespace ctnn
// ---- end ctnn/core/parallel.hpp ----
// ---- begin ctnn/core/real.hpp ----
// ctnn/core/real.hpp: a real number usable as a template argument.
//
// clang 14 does not accept float template parameters, so rates such as Dropout<0.5> or
// LeakyReLU<0.3> are stored in millionths in this structural type. The implicit constructor makes
// Dropout<0.5> read as a user expects.

namespace ctnn {

struct Real {
  long long micros;
  constexpr Real(double v) : micros(static_cast<long long>(v * 1e6 + (v >= 0 ? 0.5 : -0.5))) {}
  constexpr double value() const { return static_cast<double>(micros) / 1e6; }
};

}  // namespace ctnn
// ---- end ctnn/core/real.hpp ----
// ---- begin ctnn/core/sequential.hpp ----
// ctnn/core/sequential.hpp: Sequential<Input<...>, Layers...>, a model whose topology is a type.
//
// From the list of layer specs the compiler derives, as constants: every layer's input and output
// shape, its parameter count and offset in one parameter arena, the activation and scratch sizes
// per sample, and which steps fuse (Dense/Conv2D + ReLU) or vanish (Flatten). A Sequential is the
// chain case of the planner in core/model.hpp (node k reads the output of node k-1), which owns
// all of that. The model object owns only the parameter (and state) arena; training state
// (gradients, optimizer moments, a training workspace) lives in a Trainer, and inference buffers
// belong to the caller (an InferenceContext) or to the calling thread.
// Thread safety: predict() and predict_class() are const and may run on one model from any number
// of threads at once; nothing may change the parameters (fit, a Trainer step, initialize, load)
// while they run.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- begin ctnn/core/model.hpp ----
// ctnn/core/model.hpp: the planner every model runs on, a compile-time DAG of layers.
//
// A model is a list of nodes, each a bound layer and the tensors it reads: tensor 0 is the input
// batch, tensor k+1 the output of node k (so a node reads only earlier tensors and the list is
// already in topological order). Sequential is the chain (node k reads tensor k); Graph
// (core/graph.hpp) lowers its front-end syntax to the same list. From the list the compiler
// derives, as constants:
//   - every tensor's shape, its consumers and its last reader;
//   - each node's parameter offset in ONE arena (segments rounded up to 64 bytes), its offset in
//     a second arena of non-trainable state (stateful layers, below), its scratch offsets;
//   - fusion: a ReLU after a FusesRelu layer (Dense, Conv2D, BatchNormalization) runs inside it,
//     and a ViewLayer (Flatten) shares its input's buffer, both only where the producer has a
//     single consumer. A producer that declares absorbs_activation_backward (BatchNormalization)
//     also takes the ReLU's backward into its own (it masks dy by its stored output), so the
//     ReLU's gradient passes on as a view's does;
//   - activation slots. Inference reuses a slot as soon as the last reader of its tensor has run
//     (first fit, in node order). Training keeps every activation live for the backward pass: a
//     layer's backward may read its x and y, and the planner does not ask which (the conservative
//     rule; it is also what a chain always did). The peaks are activation_floats_per_sample
//     (inference) and training_activation_floats_per_sample;
//   - gradient slots for backward<Top>, by liveness: a tensor's gradient is live from the backward
//     of its last consumer to that of its producer. Where a tensor fans out, its consumers' dx are
//     summed into its gradient in a fixed order (node index descending, then input slot): the
//     first writes it, each later one writes a temporary that is then added. The sum is therefore
//     the same at any thread count.
// Thread safety as for Sequential: predict() is const and may run from many threads at once.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <cctype>
#include <locale>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ---- begin ctnn/core/simd_target.hpp ----
// ctnn/core/simd_target.hpp: the name of the Highway target ctnn's kernels are compiled for.
//
// ctnn is header-only and uses Highway's static dispatch (kernels/highway.hpp), so the target is
// fixed by the compiler flags (HWY_STATIC_TARGET). It lives in core/ because the model summary
// prints it and core/ never includes kernels/.
#include <hwy/highway.h>

namespace ctnn {

// Name of the Highway target the kernels were compiled for, e.g. "AVX2", "AVX3", "SCALAR".
inline const char* simd_target() { return hwy::TargetName(HWY_STATIC_TARGET); }

}  // namespace ctnn
// ---- end ctnn/core/simd_target.hpp ----

namespace ctnn {

// The first element of a Sequential or a Graph: the shape of one input sample (channels last for
// images).
template <std::size_t... Dims>
struct Input {
  static_assert(sizeof...(Dims) >= 1 && (std::size_t{1} * ... * Dims) > 0,
                "Input needs at least one dimension and no dimension may be 0.");
  using shape = Shape<Dims...>;
};

// The contract of a STATEFUL bound layer (BatchNormalization's moving mean and variance): as
// ctnn::Layer, plus
//   state_count                 scalars it keeps in the model's state arena (not trainable:
//                               optimizers never see them; saved and loaded with the model)
//   init_state(state)           Keras's initial values
// and its forward takes the state after the parameters:
//   forward(params, state, x, y, n, scratch, ctx)
// In training (ctx.training) it may update the state; in inference it must only read it (the
// planner passes the model's arena from a const predict(), possibly from many threads at once).
// backward keeps the usual signature (no state). A stateful layer that declares fuses_relu = true
// takes the fused activation as a template argument of both passes,
//   forward<Epilogue>(params, state, x, y, n, scratch, ctx), backward<Epilogue>(...),
// and with absorbs_activation_backward = true its backward applies the activation's mask to dy
// itself (from y, its stored output), as BatchNormalization does.
template <class L>
concept StatefulLayer = requires {
  typename L::value_type;
  requires ShapeType<typename L::input_shape>;
  requires ShapeType<typename L::output_shape>;
  { L::param_count } -> std::convertible_to<std::size_t>;
  { L::state_count } -> std::convertible_to<std::size_t>;
  { L::scratch_per_sample } -> std::convertible_to<std::size_t>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(typename L::value_type* p, const typename L::value_type* c, std::size_t n, Rng& rng,
              const PassContext& ctx) {
  L::init(p, rng);
  L::init_state(p);
  L::forward(c, p, c, p, n, p, ctx);
  L::backward(c, c, c, c, p, p, n, p, ctx);
};

// The contract of a JOIN (Add, Concatenate): a parameter-free layer with several inputs.
//   is_join = true, arity       number of inputs (>= 2)
//   input_shape<J>              the shape of input J; output_shape, name, param_count = 0,
//                               scratch_per_sample = 0, init(params, rng) as a layer
//   forward(xs, y, n)           y from the inputs xs[0 .. arity)
//   backward(dy, j, dx, n)      writes every element of dx, the gradient of input j
// A join may fuse a following ReLU/ReLU6 (fuses_relu and absorbs_activation_backward, as Add):
//   forward(xs, y, n, act)      applies Epilogue act as it stores y
//   backward(dy, j, dx, n, y, act)  dx = dy masked by the activation's output y
template <class L>
concept JoinLayer = requires {
  typename L::value_type;
  requires L::is_join;
  { L::arity } -> std::convertible_to<std::size_t>;
  requires ShapeType<typename L::output_shape>;
  { L::name } -> std::convertible_to<std::string_view>;
} && requires(const typename L::value_type* const* xs, typename L::value_type* p,
              const typename L::value_type* c, std::size_t n) {
  L::forward(xs, p, n);
  L::backward(c, n, p, n);
};

// Any element a model's node may hold.
template <class L>
concept ModelLayer = Layer<L> || StatefulLayer<L> || JoinLayer<L>;

// A node of a model: bound layer L reading tensors In... (0 = the input, k+1 = node k's output).
template <class L, std::size_t... In>
struct Node {
  using layer = L;
  static constexpr std::size_t arity = sizeof...(In);
  static constexpr std::array<std::size_t, sizeof...(In)> inputs{In...};
};

namespace detail {

// Calls f.template operator()<I>() for I = 0 .. N-1, in order.
template <std::size_t N, class F>
constexpr void static_for(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) { (f.template operator()<I>(), ...); }(
      std::make_index_sequence<N>{});
}

// "2770634" -> "2,770,634".
inline std::string group_thousands(std::size_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

template <class L>
constexpr std::size_t state_count_of() {
  if constexpr (StatefulLayer<L>) return L::state_count;
  else return 0;
}

// Named in a static_assert's instantiation so the error shows which node is unused.
template <std::size_t Layer, class LayerType>
struct Graph_layer_output_is_never_used {
  static constexpr bool value = false;
};

// Adds src into dst, n values (the fan-out accumulation; elementwise, so thread-count free), in
// chunks over the threads for a large n. The arrays never overlap (restrict: it vectorizes).
template <class T>
inline void add_into(T* dst, const T* src, std::size_t n) {
  constexpr std::size_t kChunk = std::size_t{1} << 14;
  parallel_for_range((n + kChunk - 1) / kChunk, [&](std::size_t c0, std::size_t c1) {
    T* __restrict d = dst + c0 * kChunk;
    const T* __restrict s = src + c0 * kChunk;
    const std::size_t m = (c1 * kChunk < n ? c1 * kChunk : n) - c0 * kChunk;
    for (std::size_t i = 0; i < m; ++i) d[i] += s[i];
  }, n >= kParallelWork);
}

}  // namespace detail

// Whether a model is a Sequential chain or a Graph (summary style, what deploy/ accepts).
enum class ModelStyle { sequential, functional };

namespace detail {

template <class T, class InShape, class NodeList, ModelStyle Style>
class ModelCore;

template <class T, class InShape, class... Nodes, ModelStyle Style>
class ModelCore<T, InShape, std::tuple<Nodes...>, Style> {
 public:
  static_assert(std::is_floating_point_v<T>, "A model's scalar type must be float or double.");

  using value_type = T;
  using layers = std::tuple<typename Nodes::layer...>;
  static constexpr std::size_t num_layers = sizeof...(Nodes);
  template <std::size_t I>
  using layer = std::tuple_element_t<I, layers>;
  template <std::size_t I>
  using node = std::tuple_element_t<I, std::tuple<Nodes...>>;
  static constexpr ModelStyle style = Style;
  // True for a Sequential: node k reads tensor k, and deploy/ (quantize, export, StaticModel)
  // accepts the model.
  static constexpr bool is_chain = Style == ModelStyle::sequential;

  using input_shape = InShape;
  using output_shape = typename layer<num_layers - 1>::output_shape;
  static constexpr std::size_t input_size = input_shape::size;
  static constexpr std::size_t output_size = output_shape::size;

 private:
  static constexpr std::size_t N = num_layers, NT = N + 1, E = (Nodes::arity + ... + 0);
  static constexpr std::size_t kNone = ~std::size_t{0};

  static_assert((ModelLayer<typename Nodes::layer> && ...),
                "Every layer of a model must satisfy the ctnn::Layer contract (core/layer.hpp), "
                "the stateful one or the join one (core/model.hpp).");

  // Floats per arena segment are rounded up so each segment starts on a 64-byte line.
  static constexpr std::size_t kAlign = kAlignBytes / sizeof(T);
  static constexpr std::size_t round_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

  template <std::size_t I>
  static constexpr bool is_join = JoinLayer<layer<I>>;

  // The topology and what follows from it alone.
  struct Facts {
    std::array<std::size_t, NT> size{};         // floats per sample of each tensor
    std::array<std::size_t, N + 1> in_begin{};  // node i reads in[in_begin[i] .. in_begin[i+1])
    std::array<std::size_t, E> in{};
    std::array<std::size_t, E> edge_node{};
    std::array<std::size_t, NT> consumers{}, last_reader{};
    std::array<bool, N> fused{}, fuses_next{}, view{}, gview{};
    std::array<std::size_t, NT> root{}, groot{};  // the tensor whose buffer (gradient) it shares
    std::array<std::size_t, N> param_offset{}, param_count{}, state_offset{}, state_count{};
    std::array<std::size_t, N> scratch_offset{}, scratch_count{};
    std::array<bool, N> relu{}, can_fuse{}, can_view{}, absorbs{};
    std::array<Epilogue, N> epilogue{}, next_epilogue{};  // a fusable activation's; the fused one
    std::size_t arena = 0, state = 0, scratch = 0, inference_scratch = 0;
  };
  static constexpr Facts make_facts() {
    Facts f;
    f.size[0] = input_size;
    std::size_t e = 0;
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      f.size[I + 1] = L::output_shape::size;
      f.in_begin[I] = e;
      for (std::size_t t : node<I>::inputs) {
        f.in[e] = t;
        f.edge_node[e] = I;
        ++e;
      }
      f.epilogue[I] = fused_epilogue<L>;
      f.relu[I] = f.epilogue[I] != Epilogue::none;
      if constexpr (Layer<L>) {
        f.can_fuse[I] = FusesRelu<L>;
        f.can_view[I] = ViewLayer<L>;
      } else if constexpr (requires { { L::fuses_relu } -> std::convertible_to<bool>; }) {
        f.can_fuse[I] = L::fuses_relu;  // a stateful layer (BatchNormalization) or a join (Add)
      }
      if constexpr (requires { { L::absorbs_activation_backward } -> std::convertible_to<bool>; })
        f.absorbs[I] = f.can_fuse[I] && L::absorbs_activation_backward;
      f.param_offset[I] = f.arena;
      f.param_count[I] = L::param_count;
      f.arena += round_up(L::param_count);
      f.state_offset[I] = f.state;
      f.state_count[I] = state_count_of<L>();
      f.state += round_up(state_count_of<L>());
      f.scratch_offset[I] = f.scratch;
      f.scratch_count[I] = L::scratch_per_sample;
      f.scratch += round_up(L::scratch_per_sample);
      f.inference_scratch = std::max(f.inference_scratch, round_up(L::scratch_per_sample));
    });
    f.in_begin[N] = e;
    for (std::size_t t = 0; t < NT; ++t) f.last_reader[t] = t == N ? N : kNone;
    for (std::size_t k = 0; k < E; ++k) {
      ++f.consumers[f.in[k]];
      const std::size_t i = f.edge_node[k];
      if (f.last_reader[f.in[k]] == kNone || f.last_reader[f.in[k]] < i) f.last_reader[f.in[k]] = i;
    }
    for (std::size_t t = 0; t < NT; ++t) f.root[t] = f.groot[t] = t;
    for (std::size_t i = 0; i < N; ++i) {
      if (f.in_begin[i + 1] - f.in_begin[i] != 1) continue;
      const std::size_t t = f.in[f.in_begin[i]];
      const bool single = f.consumers[t] == 1;
      if (f.relu[i] && t > 0 && single && f.can_fuse[t - 1] && !f.fused[t - 1]) {
        f.fused[i] = true;
        f.fuses_next[t - 1] = true;
        f.next_epilogue[t - 1] = f.epilogue[i];
        f.root[i + 1] = f.root[t];
        if (f.absorbs[t - 1]) {  // its backward masks dy itself: the ReLU's gradient passes on
          f.gview[i] = true;
          f.groot[i + 1] = f.groot[t];
        }
      } else if (f.can_view[i] && single) {
        f.view[i] = true;
        f.root[i + 1] = f.root[t];
        if (t > 0) {  // the gradient passes through unchanged (not into the caller's dinput)
          f.gview[i] = true;
          f.groot[i + 1] = f.groot[t];
        }
      }
    }
    return f;
  }
  static constexpr Facts facts = make_facts();

  // A Graph whose node computes something no path takes to the output is a mistake.
  template <std::size_t I>
  static constexpr bool used() {
    return I + 1 == N || facts.consumers[I + 1] > 0;
  }
  static constexpr bool all_used = [] {
    bool ok = true;
    static_for<N>([&]<std::size_t I>() {
      if constexpr (!used<I>()) {
        static_assert(Graph_layer_output_is_never_used<I, layer<I>>::value,
                      "Every layer of a model must reach its output: the layer named in "
                      "Graph_layer_output_is_never_used<index, layer> is computed but never read "
                      "(Tag it and use it, or remove it).");
        ok = false;
      }
    });
    return ok;
  }();

  // First-fit slot allocation over the blocks live at once.
  struct Slots {
    std::array<std::size_t, NT + 2> off{}, len{};
    std::array<bool, NT + 2> live{};
    std::size_t peak = 0;
    constexpr std::size_t place(std::size_t id, std::size_t n) {
      std::size_t best = kNone;
      const auto fits = [&](std::size_t o) {
        for (std::size_t k = 0; k < NT + 2; ++k)
          if (live[k] && o < off[k] + len[k] && off[k] < o + n) return false;
        return true;
      };
      if (fits(0)) best = 0;
      for (std::size_t k = 0; k < NT + 2; ++k)
        if (live[k] && fits(off[k] + len[k]) && off[k] + len[k] < best) best = off[k] + len[k];
      off[id] = best;
      len[id] = n;
      live[id] = true;
      peak = std::max(peak, best + n);
      return best;
    }
  };

  struct ActPlan {
    std::array<std::size_t, NT> offset{};
    std::size_t floats = 0;
  };
  // Training: every buffer its own slot, in node order (the input first).
  static constexpr ActPlan make_training_plan() {
    ActPlan p;
    for (std::size_t t = 0; t < NT; ++t) {
      if (facts.root[t] == t) {
        p.offset[t] = p.floats;
        p.floats += round_up(facts.size[t]);
      } else {
        p.offset[t] = p.offset[facts.root[t]];
      }
    }
    return p;
  }
  // Inference: a buffer is free once the last reader of every tensor in it has run.
  static constexpr ActPlan make_inference_plan() {
    std::array<std::size_t, NT> end{};
    for (std::size_t t = 0; t < NT; ++t) end[t] = 0;
    for (std::size_t t = 0; t < NT; ++t) {
      const std::size_t r = facts.root[t];
      if (facts.last_reader[t] != kNone) end[r] = std::max(end[r], facts.last_reader[t]);
    }
    ActPlan p;
    Slots s;
    s.place(0, round_up(facts.size[0]));
    for (std::size_t i = 0; i < N; ++i) {
      if (facts.root[i + 1] == i + 1) s.place(i + 1, round_up(facts.size[i + 1]));
      for (std::size_t t = 0; t <= i; ++t)
        if (facts.root[t] == t && s.live[t] && end[t] == i) s.live[t] = false;
    }
    for (std::size_t t = 0; t < NT; ++t) p.offset[t] = s.off[facts.root[t]];
    p.floats = s.peak;
    return p;
  }
  static constexpr ActPlan train_plan = make_training_plan();
  static constexpr ActPlan infer_plan = make_inference_plan();

  struct GradPlan {
    std::array<std::size_t, NT> offset{};  // of each gradient root
    std::array<bool, N> active{};          // the node's output reaches Top
    std::array<bool, E> first{};           // this edge writes its input's gradient (not adds)
    std::size_t temp = 0, floats = 0;
  };
  static constexpr GradPlan make_grad_plan(std::size_t top) {
    GradPlan g;
    for (std::size_t j = 0; j <= top; ++j) {
      const std::size_t i = top - j;
      if (i == top) { g.active[i] = true; continue; }
      for (std::size_t k = 0; k < E; ++k)
        if (facts.in[k] == i + 1 && facts.edge_node[k] <= top && g.active[facts.edge_node[k]])
          g.active[i] = true;
    }
    Slots s;
    std::array<bool, NT> seen{};
    s.place(facts.groot[top + 1], round_up(facts.size[top + 1]));
    seen[facts.groot[top + 1]] = true;
    std::size_t temp = 0;
    for (std::size_t j = 0; j <= top; ++j) {
      const std::size_t i = top - j;
      if (!g.active[i] || facts.gview[i]) continue;
      for (std::size_t k = facts.in_begin[i]; k < facts.in_begin[i + 1]; ++k) {
        const std::size_t r = facts.groot[facts.in[k]];
        g.first[k] = !seen[r];
        if (!seen[r]) {
          seen[r] = true;
          if (r != 0) s.place(r, round_up(facts.size[r]));
        } else {
          temp = std::max(temp, round_up(facts.size[r]));
        }
      }
      s.live[i + 1] = false;  // node i consumed its output's gradient
    }
    for (std::size_t t = 0; t < NT; ++t) g.offset[t] = s.off[facts.groot[t]];
    g.temp = s.peak;
    g.floats = s.peak + temp;
    return g;
  }
  template <std::size_t Top>
  static constexpr GradPlan grad_plan = make_grad_plan(Top);

 public:
  // A constant naming the topology: FNV-1a (64-bit) over the input shape and, per node, its layer
  // name and kind, output shape, parameter and state counts, the tensors it reads, a window
  // layer's kernel, stride, dilation and padding, and a BatchNormalization's epsilon. An exported
  // header static_asserts it against its model type. A Graph and its NodeGraph form share it; a
  // Sequential differs from a Graph of the same layers. Settings that change neither the
  // parameters nor the shapes (an activation's slope, a dropout rate) are not part of it: the
  // topology() text a model file and a header also carry has every setting.
  static constexpr std::uint64_t topology_hash = [] {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto mix = [&](std::uint64_t v) {
      for (int b = 0; b < 8; ++b) {
        h ^= (v >> (8 * b)) & 0xff;
        h *= 0x100000001b3ull;
      }
    };
    const auto mix_shape = [&]<class S>() {
      mix(S::rank);
      for (std::size_t d : S::dims) mix(d);
    };
    mix(Style == ModelStyle::sequential ? 1 : 2);
    mix_shape.template operator()<InShape>();
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      mix(0x6e6f6465);  // "node"
      for (char c : std::string_view(L::name)) mix(std::uint64_t(static_cast<unsigned char>(c)));
      mix(std::uint64_t(layer_kind<L>));
      mix_shape.template operator()<typename L::output_shape>();
      mix(L::param_count);
      mix(state_count_of<L>());
      mix(node<I>::arity);
      for (std::size_t t : node<I>::inputs) mix(t);
      if constexpr (requires { L::geom::pad_top; L::geom::pad_left; L::geom::dilation; }) {
        mix(L::geom::oh), mix(L::geom::ow), mix(L::geom::pad_top), mix(L::geom::pad_left);
        mix(L::geom::dilation);
      }
      if constexpr (requires { { L::epsilon } -> std::convertible_to<double>; })
        mix(std::uint64_t(double(L::epsilon) * 1e9 + 0.5));
    });
    return h;
  }();

  // Trainable parameters, counted as Keras counts them.
  static constexpr std::size_t param_count = [] {
    std::size_t n = 0;
    for (std::size_t c : facts.param_count) n += c;
    return n;
  }();
  // Non-trainable state scalars (Keras's "Non-trainable params").
  static constexpr std::size_t state_count = [] {
    std::size_t n = 0;
    for (std::size_t c : facts.state_count) n += c;
    return n;
  }();
  // Scalars in the parameter arena (param_count plus alignment padding between layers) and in
  // the state arena.
  static constexpr std::size_t arena_size = facts.arena;
  static constexpr std::size_t state_size = facts.state;
  // Scalars of workspace per sample in a batch. activation_floats_per_sample is the inference
  // peak (slots reused by liveness); training keeps more (training_activation_floats_per_sample)
  // and adds gradient slots.
  static constexpr std::size_t activation_floats_per_sample = infer_plan.floats;
  static constexpr std::size_t training_activation_floats_per_sample = train_plan.floats;
  static constexpr std::size_t scratch_floats_per_sample = facts.scratch;
  static constexpr std::size_t inference_scratch_floats_per_sample = facts.inference_scratch;
  static constexpr std::size_t gradient_floats_per_sample = [] {
    if constexpr (N >= 2) return std::max(grad_plan<N - 1>.floats, grad_plan<N - 2>.floats);
    else return grad_plan<N - 1>.floats;
  }();
  template <std::size_t I>
  static constexpr std::size_t param_offset = facts.param_offset[I];
  template <std::size_t I>
  static constexpr std::size_t state_offset = facts.state_offset[I];
  // The tensors node I reads (0 = the input, k+1 = the output of layer k).
  template <std::size_t I>
  static constexpr auto inputs_of = node<I>::inputs;
  // Per-sample activation offsets of tensor t (for tests and tools).
  static constexpr std::size_t training_activation_offset(std::size_t t) { return train_plan.offset[t]; }
  static constexpr std::size_t inference_activation_offset(std::size_t t) { return infer_plan.offset[t]; }
  template <std::size_t I>
  static constexpr bool fused_into_previous = facts.fused[I];
  template <std::size_t I>
  static constexpr bool is_view = facts.view[I];

  // Activations, scratch and (when training) gradient buffers for batches of up to capacity()
  // samples. reserve() allocates only when the capacity grows or training is first asked for.
  class Workspace {
   public:
    void reserve(std::size_t batch, bool training) {
      if (batch <= cap_ && (training <= training_)) return;
      cap_ = std::max(batch, cap_);
      training_ = training_ || training;
      const std::size_t per = act() + scratch_floats_per_sample +
                              (training_ ? gradient_floats_per_sample : 0);
      buf_ = AlignedBuffer<T>();
      buf_.resize(per * cap_);
    }
    std::size_t capacity() const { return cap_; }
    bool training() const { return training_; }
    T* activation(std::size_t offset) { return buf_.data() + offset * cap_; }
    T* scratch(std::size_t offset) { return buf_.data() + (act() + offset) * cap_; }
    // The gradient slot at per-sample offset `which` (0: where the loss writes d loss / d output).
    T* gradient(std::size_t which) {
      return buf_.data() + (act() + scratch_floats_per_sample + which) * cap_;
    }
    T* input() { return activation(0); }
    // The batch size of the last training-mode forward() on this workspace, or 0 when the last
    // forward ran in inference mode (whose activations backward() cannot use) or none ran.
    std::size_t trained_batch() const { return trained_batch_; }

   private:
    friend class ModelCore;
    std::size_t trained_batch_ = 0;
    std::size_t act() const {
      return training_ ? std::max(training_activation_floats_per_sample,
                                  activation_floats_per_sample)
                       : activation_floats_per_sample;
    }
    AlignedBuffer<T> buf_;
    std::size_t cap_ = 0;
    bool training_ = false;
  };

  // Initializes every layer as Keras would (Glorot uniform weights, zero biases) from `seed`,
  // and every state to its layer's initial values.
  explicit ModelCore(std::uint64_t seed = 0) : params_(arena_size), state_(state_size) {
    initialize(seed);
  }

  void initialize(std::uint64_t seed) {
    Rng master(seed);
    std::fill(params_.begin(), params_.end(), T(0));
    std::fill(state_.begin(), state_.end(), T(0));
    static_for<N>([&]<std::size_t I>() {
      Rng rng(master.next_u64());
      layer<I>::init(params_.data() + facts.param_offset[I], rng);
      if constexpr (StatefulLayer<layer<I>>)
        layer<I>::init_state(state_.data() + facts.state_offset[I]);
    });
  }

  std::span<T> parameters() { return {params_.data(), params_.size()}; }
  std::span<const T> parameters() const { return {params_.data(), params_.size()}; }
  template <std::size_t I>
  std::span<T> layer_parameters() {
    return {params_.data() + facts.param_offset[I], layer<I>::param_count};
  }
  // The non-trainable state arena (state_size values; empty for a model without stateful layers).
  std::span<T> state() { return {state_.data(), state_.size()}; }
  std::span<const T> state() const { return {state_.data(), state_.size()}; }
  template <std::size_t I>
  std::span<T> layer_state() {
    return {state_.data() + facts.state_offset[I], state_count_of<layer<I>>()};
  }

  // Runs the batch already in ws.input() (n <= ws.capacity()) through every layer; returns the
  // output [n x output_size], which lives in ws. A training pass needs a training workspace.
  T* forward(Workspace& ws, std::size_t n, const PassContext& ctx) const {
    if (ctx.training && !ws.training())
      fail("forward() in training mode needs a workspace reserved for training (reserve(n, true)).");
    ws.trained_batch_ = 0;
    T* out = forward_on(params_.data(), const_cast<T*>(state_.data()), ws, n, ctx);
    if (ctx.training) ws.trained_batch_ = n;
    return out;
  }

  // The same pass over any parameters `p` (arena_size values) and any buffers `b` offering
  // activation(offset) and scratch(offset) as Workspace does (deploy/static_model.hpp runs it
  // over constexpr weights and fixed arrays, with no heap). The state arena is `state`; the
  // four-argument form is for models without stateful layers.
  template <class Buffers>
  static T* forward_on(const T* p, Buffers& ws, std::size_t n, const PassContext& ctx) {
    static_assert(state_size == 0 || sizeof(Buffers) == 0,
                  "This model has stateful layers: call forward_on(params, state, buffers, n, ctx).");
    return forward_on(p, static_cast<T*>(nullptr), ws, n, ctx);
  }
  template <class Buffers>
  static T* forward_on(const T* p, T* state, Buffers& ws, std::size_t n, const PassContext& ctx) {
    if (ctx.training) return run_forward<true>(p, state, ws, n, ctx);
    return run_forward<false>(p, state, ws, n, ctx);
  }
  // An inference pass as forward_on's that first shows `observe` every input of every node:
  // observe.template operator()<I, K>(x, n) with x the n samples of input K that node I is about
  // to read (K = 0 for a single-input node; with a fused ReLU already applied, views resolved). Calibration (deploy/quantize.hpp) reads the
  // inputs of the layers it quantizes this way, whatever the topology.
  template <class Buffers, class Observe>
  static T* forward_observed(const T* p, T* state, Buffers& ws, std::size_t n, Observe&& observe) {
    return run_forward<false>(p, state, ws, n, PassContext{}, &observe);
  }

  // Back-propagates dy = ws.gradient(0) [n x output of layer Top] through every layer whose output
  // reaches Top, writing every parameter gradient of layers 0 .. Top into `grads` (an arena-sized
  // span; zeros for a layer that does not reach Top). Layers after Top are not touched: a fused
  // loss starts at the layer before Softmax. When `dinput` is given, it receives d loss / d input
  // [n x input_size]. Runs after a training-mode forward() on the same workspace.
  template <std::size_t Top = N - 1>
  void backward(Workspace& ws, std::size_t n, T* grads, const PassContext& ctx,
                T* dinput = nullptr) const {
    static constexpr GradPlan g = grad_plan<Top>;
    static_assert(g.floats <= gradient_floats_per_sample,
                  "backward<Top> is planned for the last two layers only (the loss's seed).");
    // Training keeps every activation where backward reads it; inference reuses slots. A
    // backward after an inference forward (or a forward of another batch size) would read
    // overwritten activations.
    if (ws.trained_batch_ != n) {
      if (ws.trained_batch_ == 0)
        fail("backward() of ", n, " samples needs a training-mode forward() (PassContext{.training "
             "= true}) on the same workspace first; the last forward() on it ran in inference mode "
             "or none ran, so the activations it would read are not kept.");
      fail("backward() of ", n, " samples follows a training-mode forward() of ",
           ws.trained_batch_, " samples on this workspace; run both on the same batch.");
    }
    const T* p = params_.data();
    T* temp = ws.gradient(g.temp);
    // With ctx.update, every layer's parameters are updated as soon as their gradient is final,
    // right after its backward: no layer reads another's parameters in backward.
    if (ctx.update != nullptr)
      for (std::size_t i = Top + 1; i < N; ++i)  // not back-propagated (after a fused loss)
        if (facts.param_count[i] > 0) ctx.update->apply(facts.param_offset[i], facts.param_count[i]);
    static_for<Top + 1>([&]<std::size_t J>() {
      constexpr std::size_t I = Top - J;
      using L = layer<I>;
      const auto update_after = [&] {
        if constexpr (L::param_count > 0)
          if (ctx.update != nullptr) ctx.update->apply(facts.param_offset[I], L::param_count);
      };
      if constexpr (!g.active[I]) {
        std::fill(grads + facts.param_offset[I], grads + facts.param_offset[I] + L::param_count, T(0));
        update_after();
      } else if constexpr (facts.gview[I]) {
        return;  // the gradient passes through unchanged (shared buffer)
      } else {
        const T* dy = ws.gradient(g.offset[I + 1]);
        static_for<node<I>::arity>([&]<std::size_t K>() {
          constexpr std::size_t e = facts.in_begin[I] + K;
          constexpr std::size_t t = facts.in[e];
          constexpr std::size_t sz = facts.size[t];
          T* target = t == 0 ? dinput : ws.gradient(g.offset[t]);
          T* dx = target == nullptr ? nullptr : (g.first[e] ? target : temp);
          if constexpr (is_join<I> && facts.absorbs[I] && facts.fuses_next[I]) {
            if (dx) L::backward(dy, K, dx, n, ws.activation(train_plan.offset[I + 1]),
                                facts.next_epilogue[I]);
          } else if constexpr (is_join<I>) {
            if (dx) L::backward(dy, K, dx, n);
          } else if constexpr (facts.absorbs[I] && facts.fuses_next[I]) {
            L::template backward<facts.next_epilogue[I]>(
                p + facts.param_offset[I], ws.activation(train_plan.offset[t]),
                ws.activation(train_plan.offset[I + 1]), dy, dx, grads + facts.param_offset[I], n,
                ws.scratch(facts.scratch_offset[I]), layer_context<I>(ctx));
          } else {
            L::backward(p + facts.param_offset[I], ws.activation(train_plan.offset[t]),
                        ws.activation(train_plan.offset[I + 1]), dy, dx,
                        grads + facts.param_offset[I], n,
                        ws.scratch(facts.scratch_offset[I]), layer_context<I>(ctx));
          }
          if (dx != nullptr && dx != target) add_into(target, dx, n * sz);
        });
        update_after();
      }
    });
  }

  // Largest batch predict() processes at once; larger inputs go through in chunks.
  static constexpr std::size_t kInferenceChunk = 256;

  // The buffers of one inference at a time: a caller's own, for predict(ctx, ...). It borrows
  // nothing from a model (its size depends on the model type only), so one context serves every
  // model of this type, and a thread that keeps its own context never shares a buffer. It grows
  // to the largest chunk (at most kInferenceChunk samples) it has run and allocates only then.
  // Not for two threads at once: one context, one thread at a time.
  class InferenceContext {
   public:
    InferenceContext() = default;
    // Sized for batches of up to n samples: predict with it then allocates nothing.
    explicit InferenceContext(std::size_t n) { reserve(n); }
    void reserve(std::size_t n) { ws_.reserve(std::min(n, kInferenceChunk), false); }
    // Samples it holds without growing.
    std::size_t capacity() const { return ws_.capacity(); }

   private:
    friend class ModelCore;
    Workspace ws_;
  };

  // A context sized for batches of up to n samples.
  static InferenceContext make_context(std::size_t n = 0) { return InferenceContext(n); }

  // Inference on one sample: the output (probabilities after a final Softmax). Without a context
  // it runs in the calling thread's own context (thread_context()).
  std::array<T, output_size> predict(std::span<const T> x) const {
    return predict(thread_context(), x);
  }
  std::array<T, output_size> predict(InferenceContext& ctx, std::span<const T> x) const {
    if (x.size() != input_size)
      fail("predict() was given ", x.size(), " input values but the model's input ",
           input_shape::str(), " has ", input_size, ".");
    std::array<T, output_size> out;
    predict_into(ctx.ws_, x.data(), 1, out.data());
    return out;
  }

  // Inference on a batch: x holds n * input_size values, out receives n * output_size.
  void predict(std::span<const T> x, std::span<T> out) const { predict(thread_context(), x, out); }
  void predict(InferenceContext& ctx, std::span<const T> x, std::span<T> out) const {
    if (x.size() % input_size != 0)
      fail("predict() was given ", x.size(), " input values, not a multiple of the input size ",
           input_size, " of ", input_shape::str(), ".");
    const std::size_t n = x.size() / input_size;
    if (out.size() != n * output_size)
      fail("predict() got an output span of ", out.size(), " values for ", n, " samples; it needs ",
           n * output_size, ".");
    predict_into(ctx.ws_, x.data(), n, out.data());
  }

  // Index of the largest output of one sample (the predicted class).
  std::size_t predict_class(std::span<const T> x) const {
    return predict_class(thread_context(), x);
  }
  // A NaN output has no class: it is refused (as QuantizedModel refuses a non-finite input).
  std::size_t predict_class(InferenceContext& ctx, std::span<const T> x) const {
    const auto out = predict(ctx, x);
    for (std::size_t k = 0; k < output_size; ++k)
      if (out[k] != out[k])
        fail("predict_class(): output ", k, " of the model is NaN, so the sample has no class ",
             "(a NaN input or parameter propagates to the outputs).");
    return std::size_t(std::max_element(out.begin(), out.end()) - out.begin());
  }

  // The calling thread's context for this model type, used by predict() without a context. One
  // per thread and per model type (a function-local thread_local of this class template), freed
  // when the thread ends: N threads serving this type hold N of them.
  static InferenceContext& thread_context() {
    static thread_local InferenceContext ctx;
    return ctx;
  }

  // Sizes the calling thread's context for batches of up to n samples: predict() without a
  // context then allocates nothing on THIS thread for such batches. Each serving thread calls it
  // once (or lets its first batch do it).
  void reserve_inference(std::size_t n) const { thread_context().reserve(n); }

  // Keras's snake case of a class name (its to_snake_case): "BatchNormalization" ->
  // "batch_normalization", "GlobalAveragePooling2D" -> "global_average_pooling2d", "ReLU" -> "re_lu".
  static std::string snake_case(std::string_view n) {
    const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    // Underscores go before n[j] where (.)([A-Z][a-z]+) matches with the capital at j (matches
    // taken left to right, each ending after its lower-case run), then where a lower-case letter
    // meets a capital.
    std::vector<bool> mark(n.size() + 1, false);
    for (std::size_t i = 0; i + 2 < n.size();) {
      if (upper(n[i + 1]) && lower(n[i + 2])) {
        mark[i + 1] = true;
        i += 3;
        while (i < n.size() && lower(n[i])) ++i;
      } else {
        ++i;
      }
    }
    for (std::size_t j = 1; j < n.size(); ++j)
      if (lower(n[j - 1]) && upper(n[j])) mark[j] = true;
    std::string out;
    out.reserve(2 * n.size());
    for (std::size_t j = 0; j < n.size(); ++j) {
      if (mark[j]) out.push_back('_');
      out.push_back(char(std::tolower(static_cast<unsigned char>(n[j]))));
    }
    return out;
  }

  // The name summary() gives layer I ("conv2d_0", "batch_normalization_1"): Keras's snake-case
  // name of its class and its index.
  template <std::size_t I>
  static std::string layer_label() {
    return snake_case(layer<I>::name) + "_" + std::to_string(I);
  }

  // Keras-style summary table; a Graph's has Keras's functional "Connected to" column. Param #
  // counts a layer's parameters and its non-trainable state (BatchNormalization: 4C, as Keras).
  void summary(std::ostream& os) const {
    const bool graph = Style == ModelStyle::functional;
    struct Row {
      std::string layer, shape, params, from;
    };
    std::vector<Row> rows;
    if (graph) rows.push_back({" input_layer (InputLayer)", input_shape::str(), "0", "-"});
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      Row r;
      r.layer.append(" ").append(layer_label<I>()).append(" (").append(L::name).append(")");
      r.shape = L::output_shape::str();
      r.params = group_thousands(L::param_count + state_count_of<L>());
      for (std::size_t t : node<I>::inputs) {
        if (!r.from.empty()) r.from += ", ";
        r.from += t == 0 ? std::string("input_layer") : tensor_label(t);
      }
      rows.push_back(std::move(r));
    });
    // Columns as wide as Keras's (30, 28, 12) or as their longest entry and two spaces.
    std::size_t w0 = 30, w1 = 28, w2 = 12, w3 = 12;
    for (const Row& r : rows) {
      w0 = std::max(w0, r.layer.size() + 2);
      w1 = std::max(w1, r.shape.size() + 2);
      w2 = std::max(w2, r.params.size() + 2);
      w3 = std::max(w3, r.from.size());
    }
    const std::size_t width = graph ? std::max<std::size_t>(96, w0 + w1 + w2 + w3)
                                    : std::max<std::size_t>(72, w0 + w1 + w2);
    const auto line = [&](char c) { os << std::string(width, c) << '\n'; };
    os << "Model: \"" << (graph ? "functional" : "sequential") << "\" (ctnn, Highway target "
       << simd_target() << ", " << max_threads() << " threads)\n";
    line('_');
    os << std::left << std::setw(int(w0)) << " Layer (type)" << std::setw(int(w1)) << "Output Shape";
    if (graph) os << std::setw(int(w2)) << "Param #" << "Connected to\n";
    else os << "Param #\n";
    line('=');
    for (const Row& r : rows) {
      os << std::setw(int(w0)) << r.layer << std::setw(int(w1)) << r.shape;
      if (graph) os << std::setw(int(w2)) << r.params << r.from << '\n';
      else os << r.params << '\n';
    }
    line('=');
    const auto mb = [](std::size_t n) {
      std::ostringstream s;
      s << std::fixed << std::setprecision(2) << double(n * sizeof(T)) / (1024.0 * 1024.0);
      return s.str();
    };
    os << "Total params: " << group_thousands(param_count + state_count) << " ("
       << mb(param_count + state_count) << " MB)\n"
       << "Trainable params: " << group_thousands(param_count) << "\n"
       << "Non-trainable params: " << group_thousands(state_count) << "\n";
    line('_');
  }

 private:
  static std::string tensor_label(std::size_t t) {
    std::string s;
    static_for<N>([&]<std::size_t I>() {
      if (I + 1 == t) s = layer_label<I>();
    });
    return s;
  }

  // The context layer I sees: the step's, with a seed of its own, so that two random layers
  // (two Dropouts, two RandomFlips) draw independently within one step.
  template <std::size_t I>
  static PassContext layer_context(const PassContext& ctx) {
    return {ctx.training, ctx.seed ^ ((I + 1) * 0xA0761D6478BD642Full)};
  }

  // No observer (the operator is never called: `if constexpr` skips it; clang still looks it up).
  struct NoObserver {
    template <std::size_t I, std::size_t K>
    void operator()(const T*, std::size_t) const {}
  };
  template <bool Training, class Buffers, class Observe = NoObserver>
  static T* run_forward(const T* p, T* state, Buffers& ws, std::size_t n, const PassContext& ctx,
                        Observe* observe = nullptr) {
    static constexpr const ActPlan& a = Training ? train_plan : infer_plan;
    static_for<N>([&]<std::size_t I>() {
      using L = layer<I>;
      if constexpr (!std::is_same_v<Observe, NoObserver>)
        static_for<node<I>::arity>([&]<std::size_t K>() {
          observe->template operator()<I, K>(
              static_cast<const T*>(ws.activation(a.offset[node<I>::inputs[K]])), n);
        });
      if constexpr (facts.view[I] || facts.fused[I]) {
        return;  // Flatten passes its buffer on; a fused ReLU already ran in the layer before.
      } else {
        T* y = ws.activation(a.offset[I + 1]);
        if constexpr (is_join<I>) {
          std::array<const T*, node<I>::arity> xs;
          for (std::size_t k = 0; k < node<I>::arity; ++k)
            xs[k] = ws.activation(a.offset[node<I>::inputs[k]]);
          if constexpr (facts.fuses_next[I]) L::forward(xs.data(), y, n, facts.next_epilogue[I]);
          else L::forward(xs.data(), y, n);
        } else {
          const T* x = ws.activation(a.offset[node<I>::inputs[0]]);
          T* s = ws.scratch(Training ? facts.scratch_offset[I] : 0);
          const PassContext lc = layer_context<I>(ctx);
          if constexpr (StatefulLayer<L> && facts.fuses_next[I])
            L::template forward<facts.next_epilogue[I]>(p + facts.param_offset[I],
                                                        state + facts.state_offset[I], x, y, n, s,
                                                        lc);
          else if constexpr (StatefulLayer<L>)
            L::forward(p + facts.param_offset[I], state + facts.state_offset[I], x, y, n, s, lc);
          else if constexpr (facts.fuses_next[I])
            L::forward(p + facts.param_offset[I], x, y, n, s, lc, facts.next_epilogue[I]);
          else
            L::forward(p + facts.param_offset[I], x, y, n, s, lc);
        }
      }
    });
    return ws.activation(a.offset[N]);
  }

  // Reads only params_ and state_ and writes only ws and out, so calls with different
  // workspaces may overlap.
  void predict_into(Workspace& ws, const T* x, std::size_t n, T* out) const {
    const PassContext ctx{};
    for (std::size_t b = 0; b < n; b += kInferenceChunk) {
      const std::size_t m = std::min(kInferenceChunk, n - b);
      ws.reserve(m, false);
      std::copy(x + b * input_size, x + (b + m) * input_size, ws.input());
      const T* y = forward(ws, m, ctx);
      std::copy(y, y + m * output_size, out + b * output_size);
    }
  }

  static_assert(all_used);
  AlignedBuffer<T> params_;
  AlignedBuffer<T> state_;
};

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/core/model.hpp ----

namespace ctnn {

namespace detail {

template <class T, class In, class... Specs>
struct BindAll {
  using type = std::tuple<>;
};

template <class>
inline constexpr bool always_false_v = false;

// What a spec that is not one binds to once its static_assert has spoken: a shape-preserving
// layer that does nothing, so that no second error follows the sentence.
template <class In, class T>
struct NotALayer {
  using value_type = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "(not a layer)";
  static void init(T*, Rng&) {}
  static void forward(const T*, const T*, T*, std::size_t, T*, const PassContext&) {}
  static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                       const PassContext&) {}
};

// A layer spec (layers/*.hpp) is a class with a member template bind<InputShape, T>. It is named
// directly, not tested with a concept first: a spec whose own static_assert fails (a stride of 0)
// would then fail the test as well, and clang would print a second error after its sentence.
template <class S, class In, class T>
struct BindOne {
  using type = typename S::template bind<In, T>;
};
template <std::size_t... Dims, class In, class T>
struct BindOne<Input<Dims...>, In, T> {
  static_assert(always_false_v<In>,
                "Input may appear only once, first in a Sequential model; the layers follow it.");
  using type = NotALayer<In, T>;
};
template <class S, class In, class T>
  requires(!std::is_class_v<S>)
struct BindOne<S, In, T> {
  static_assert(always_false_v<S>,
                "Every element of a Sequential model after Input must be a layer spec such as "
                "ctnn::Dense<10>: a type with a member template bind<InputShape, T>.");
  using type = NotALayer<In, T>;
};

template <class T, class In, class S, class... Rest>
struct BindAll<T, In, S, Rest...> {
  using head = typename BindOne<S, In, T>::type;
  using type = decltype(std::tuple_cat(
      std::declval<std::tuple<head>>(),
      std::declval<typename BindAll<T, typename head::output_shape, Rest...>::type>()));
};

// The chain's node list: node k reads tensor k (the input for k = 0).
template <class Layers, class Seq>
struct ChainNodes;
template <class... Ls, std::size_t... K>
struct ChainNodes<std::tuple<Ls...>, std::index_sequence<K...>> {
  using type = std::tuple<Node<Ls, K>...>;
};

}  // namespace detail

template <class T, class InputSpec, class... Specs>
class BasicSequential {
  static_assert(sizeof(T) == 0,
                "A Sequential model starts with ctnn::Input<dims...>, then its layers.");
};

template <class T, std::size_t... InDims>
class BasicSequential<T, Input<InDims...>> {
  static_assert(sizeof(T) == 0, "A Sequential model needs at least one layer after Input.");
};

namespace detail {
template <class T, class In, class... Specs>
struct SequentialBase {
  using layers = typename BindAll<T, In, Specs...>::type;
  using type = ModelCore<T, In, typename ChainNodes<layers, std::index_sequence_for<Specs...>>::type,
                         ModelStyle::sequential>;
};
}  // namespace detail

template <class T, std::size_t... InDims, class First, class... Rest>
class BasicSequential<T, Input<InDims...>, First, Rest...>
    : public detail::SequentialBase<T, Shape<InDims...>, First, Rest...>::type {
  using Base = typename detail::SequentialBase<T, Shape<InDims...>, First, Rest...>::type;

 public:
  using Base::Base;
};

// The caller-owned inference buffers of a model type (BasicSequential or QuantizedModel):
//   ctnn::InferenceContext<Model> ctx(256);  model.predict(ctx, x, out);
template <class Model>
using InferenceContext = typename Model::InferenceContext;

// A float model: the type users write.
template <class InputSpec, class... Specs>
using Sequential = BasicSequential<float, InputSpec, Specs...>;

}  // namespace ctnn
// ---- end ctnn/core/sequential.hpp ----

// ---- begin ctnn/layers/conv2d.hpp ----
// ctnn/layers/conv2d.hpp: Conv2D<Filters, KH, KW, Stride, Padding, KernelInit, BiasInit,
// Dilation, Groups>, a 2-D convolution.
//
// Represents y[oy][ox][f] = b[f] + sum_{ky,kx,c} x[oy*S + ky*D - pt][ox*S + kx*D - pl][g*C/G + c]
// * W[ky][kx][c][f] over an H x W x C input (channels last), with g = f / (Filters/G) the group of
// filter f and c < C/G: Keras's Conv2D with dilation_rate D and groups G (G = 1: every filter sees
// every channel; G = C = Filters would be a depthwise convolution, for which DepthwiseConv2D is
// faster). Padding: valid, same, same_lower or explicit pads (layers/spatial.hpp).
// Requires: a rank-3 input; C and Filters divisible by G; for valid padding, a dilated kernel
// (D*(K-1)+1) no larger than the input.
// Output shape: Shape<OH, OW, Filters>. Parameters: W in Keras's [KH][KW][C/G][Filters] order,
// then b [Filters]: KH*KW*(C/G)*Filters + Filters. Init: KernelInit fills W and BiasInit b, with
// fan_in = KH*KW*C/G and fan_out = KH*KW*Filters (Keras's fans of that kernel shape); the
// defaults are Keras's, Glorot uniform W and zero b (core/init.hpp lists the others).
//
// How: each sample's input is unfolded into patches [OH*OW x KH*KW*C] (im2col, kept in scratch
// for the backward pass; each row holds group 0's KH*KW*C/G taps, then group 1's, ...) and each
// group's patches are multiplied by its W columns with the GEMM that vectorizes along the
// filters, bias and ReLU fused into its store. The patches of a batch lie back to back in
// scratch, so the weight gradient of a large layer is ONE GEMM over all samples' positions
// (K = n*OH*OW): its threads own disjoint filter columns and walk K in order, so the result does
// not depend on the thread count, and no per-sample copy of the gradient is kept. A small layer
// (gradient no larger than a sample's patches, such as the seed's) keeps one per sample and sums
// them in sample order (per_sample_grad below): faster, and still thread-count independent. The
// input gradient is computed per sample in parallel.
// A 3x3 stride-1 convolution with at least 8 input channels (ResNet's) instead takes Winograd's
// F(2x2, 3x3) or, where the output is a multiple of 4 on both sides (and the scratch rule below
// allows it), F(4x4, 3x3) (kernels/winograd.hpp): 16 multiplications per 2x2 outputs and channel
// pair, or 36 per 4x4, where the GEMM takes 36 or 144. The batch's transformed inputs V are kept in
// scratch for the backward pass, the 16 (36) products of each pass are GEMMs over all samples'
// tiles (the weight gradient's K = n * tiles, summed in sample and tile order), and the gradients
// go back through the adjoints of the same transforms: the exact gradients of the function computed
// forward, the same bits at any thread count. Its results differ from the GEMM path's by rounding
// only.
#include <cstddef>
#include <cstring>
#include <string>

// ---- begin ctnn/kernels/elementwise.hpp ----
// ctnn/kernels/elementwise.hpp: activations, forward and backward, over contiguous arrays.
//
// Each op is written once as a generic lambda over a Highway tag; full vectors use the native
// tag and the tail a one-lane tag, so there is no scalar copy of the math to drift out of sync.
// Backward ops take the forward output (y) where the derivative is cheapest from it.
#include <cstddef>

// ---- begin ctnn/kernels/highway.hpp ----
// ctnn/kernels/highway.hpp: how ctnn uses Highway.
//
// ctnn is header-only, so it uses Highway's static dispatch: kernels are compiled once, for the
// best target the compiler flags allow (HWY_STATIC_TARGET; -march is the CMake option CTNN_MARCH).
// Kernel headers put their code in namespace ctnn::HWY_NAMESPACE between HWY_BEFORE_NAMESPACE()
// and HWY_AFTER_NAMESPACE() (so the target attributes match, which aarch64 builds require) and
// re-export it into ctnn::kernels.
#include <hwy/highway.h>

// ---- end ctnn/kernels/highway.hpp ----
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = f(d, in[i]) for i < n.
template <class T, class F>
HWY_INLINE void map1(std::size_t n, const T* HWY_RESTRICT in, T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (i + L <= n) trips a false g++ 12 warning when inlined
  std::size_t i = 0;
  for (; i < full; i += L) hn::StoreU(f(d, hn::LoadU(d, in + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) hn::StoreU(f(d1, hn::LoadU(d1, in + i)), d1, out + i);
}

// out[i] = f(d, a[i], b[i]) for i < n.
template <class T, class F>
HWY_INLINE void map2(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                     T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L)
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) hn::StoreU(f(d1, hn::LoadU(d1, a + i), hn::LoadU(d1, b + i)), d1, out + i);
}

// y = 0 where x <= 0, else x: NaN stays NaN (NaN <= 0 is false), as in PyTorch and Keras.
// Not Max(x, 0): on x86 it returns the second operand when either is NaN, turning NaN into 0.
// The compare + blend costs one instruction more than Max per vector.
template <class T>
void relu_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return hn::IfThenZeroElse(v <= hn::Zero(d), v); });
}
// dx = 0 where y <= 0, else dy: where y is NaN the gradient passes, as PyTorch's
// threshold_backward does.
template <class T>
void relu_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx,
       [](auto d, auto yv, auto g) { return hn::IfThenZeroElse(yv <= hn::Zero(d), g); });
}

template <class T>
void leaky_relu_forward(std::size_t n, const T* x, T* y, T alpha) {
  map1(n, x, y, [alpha](auto d, auto v) {
    return hn::IfThenElse(v > hn::Zero(d), v, hn::Mul(v, hn::Set(d, alpha)));
  });
}
// dx = dy where x > 0, else alpha * dy.
template <class T>
void leaky_relu_backward(std::size_t n, const T* x, const T* dy, T* dx, T alpha) {
  map2(n, x, dy, dx, [alpha](auto d, auto xv, auto g) {
    return hn::IfThenElse(xv > hn::Zero(d), g, hn::Mul(g, hn::Set(d, alpha)));
  });
}

// sigmoid(x) from e = exp(-|x|) in [0, 1]: 1 / (1 + e) for x >= 0, e / (1 + e) below. Not
// 1 / (1 + exp(-x)): Highway's Exp is valid up to +104 only (float; sigmoid(-200) came out 1), and
// returns 0 for NaN (sigmoid(NaN) came out 1), so NaN is selected back in.
template <class D, class V>
HWY_INLINE V sigmoid_of(D d, V v) {
  using T = hn::TFromD<D>;
  const auto e = hn::Exp(d, hn::Neg(hn::Abs(v)));
  const auto r = hn::Div(hn::Set(d, T(1)), hn::Add(hn::Set(d, T(1)), e));
  return hn::IfThenElse(hn::IsNaN(v), v, hn::IfThenElse(v >= hn::Zero(d), r, hn::Mul(e, r)));
}

// y = 1 / (1 + exp(-x)).
template <class T>
void sigmoid_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return sigmoid_of(d, v); });
}
// dx = dy * y * (1 - y).
template <class T>
void sigmoid_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx, [](auto d, auto yv, auto g) {
    return hn::Mul(g, hn::Mul(yv, hn::Sub(hn::Set(d, T(1)), yv)));
  });
}

template <class T>
void tanh_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) { return hn::Tanh(d, v); });
}
// dx = dy * (1 - y^2).
template <class T>
void tanh_backward(std::size_t n, const T* y, const T* dy, T* dx) {
  map2(n, y, dy, dx, [](auto d, auto yv, auto g) {
    return hn::Mul(g, hn::NegMulAdd(yv, yv, hn::Set(d, T(1))));
  });
}

// The index of the first value of x[0..n) that is NaN or infinite, or n if all are finite: one
// compare per vector while all are finite (the training loop scans the parameter arena with it).
template <class T>
std::size_t first_non_finite(std::size_t n, const T* HWY_RESTRICT x) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L)
    if (!hn::AllTrue(d, hn::IsFinite(hn::LoadU(d, x + i)))) break;
  for (; i < n; ++i)
    if (!(x[i] - x[i] == T(0))) return i;  // inf - inf and NaN - NaN are NaN
  return n;
}

// out[j] = sum over rows r of x[r * cols + j], rows summed in order (the bias gradient).
template <class T>
void sum_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = cols - cols % L;  // (j + L <= cols) trips a false g++ 12 warning here
  std::size_t j = 0;
  for (; j < full; j += L) {
    auto s = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) s = hn::Add(s, hn::LoadU(d, x + r * cols + j));
    hn::StoreU(s, d, out + j);
  }
  for (; j < cols; ++j) {
    T s = 0;
    for (std::size_t r = 0; r < rows; ++r) s += x[r * cols + j];
    out[j] = s;
  }
}

// y = act(xs[0] + xs[1] + ... + xs[k-1]), summed left to right, act a fused ReLU/ReLU6 (NaN
// passes, as in relu_forward) or none. y may be xs[0] or xs[1] (each vector is read before it
// is written).
template <class T>
void add_activate(std::size_t n, const T* const* xs, std::size_t k, T* y, Epilogue act) {
  const auto run = [&](auto d, std::size_t i) {
    using D = decltype(d);
    auto v = hn::Add(hn::LoadU(d, xs[0] + i), hn::LoadU(d, xs[1] + i));
    for (std::size_t j = 2; j < k; ++j) v = hn::Add(v, hn::LoadU(d, xs[j] + i));
    const auto zero = hn::Zero(d);
    if (act == Epilogue::relu) {
      v = hn::IfThenZeroElse(v <= zero, v);
    } else if (act == Epilogue::relu6) {
      const auto six = hn::Set(d, hn::TFromD<D>(6));
      v = hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < zero, v));
    }
    hn::StoreU(v, d, y + i);
  };
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L) run(d, i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i) run(d1, i);
}

// The adjoint of im2col (col2im) for `rows` rows of patch gradients, each `patch` long: for every
// (tap, pixel) that taps(r, f) reports for row r (it calls f(tap, pixel)), and every group g,
//   dx[pixel * channels + g * gc + c] += dpatches[r * patch + g * group_patch + tap * gc + c]
// for c < gc = channels / groups, rows in order, taps in the order reported. Vectorized along the
// channels (a plain loop here was scalar: the compiler cannot rule out that dx and dpatches
// overlap, and 16 scalar read-modify-writes a tap cost more than the GEMM that made the rows).
template <class T, class Taps>
void col2im_add(std::size_t rows, std::size_t patch, std::size_t channels, std::size_t groups,
                std::size_t group_patch, const T* HWY_RESTRICT dpatches, Taps taps,
                T* HWY_RESTRICT dx) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t gc = channels / groups;
  const std::size_t full = gc - gc % L;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = dpatches + r * patch;
    taps(r, [&](std::size_t tap, std::size_t pixel) {
      for (std::size_t g = 0; g < groups; ++g) {
        const T* src = row + g * group_patch + tap * gc;
        T* dst = dx + pixel * channels + g * gc;
        std::size_t c = 0;
        for (; c < full; c += L)
          hn::StoreU(hn::Add(hn::LoadU(d, dst + c), hn::LoadU(d, src + c)), d, dst + c);
        for (; c < gc; ++c) dst[c] += src[c];
      }
    });
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::add_activate;
using ctnn::HWY_NAMESPACE::col2im_add;
using ctnn::HWY_NAMESPACE::first_non_finite;
using ctnn::HWY_NAMESPACE::leaky_relu_backward;
using ctnn::HWY_NAMESPACE::leaky_relu_forward;
using ctnn::HWY_NAMESPACE::relu_backward;
using ctnn::HWY_NAMESPACE::relu_forward;
using ctnn::HWY_NAMESPACE::sigmoid_backward;
using ctnn::HWY_NAMESPACE::sigmoid_forward;
using ctnn::HWY_NAMESPACE::sum_rows;
using ctnn::HWY_NAMESPACE::tanh_backward;
using ctnn::HWY_NAMESPACE::tanh_forward;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/elementwise.hpp ----
// ---- begin ctnn/kernels/gemm.hpp ----
// ctnn/kernels/gemm.hpp: the matrix products behind Dense and Conv2D.
//
//   gemm_nt: C[m][n] = act(sum_k A[m][k] * B[n][k] + bias[n])   (dot products along contiguous K)
//   gemm_nn: C[m][n] (+)= act(sum_k A(m,k) * B[k][n] + bias[n])  (vectorized along contiguous N;
//            A(m,k) = A[m * a_m + k * a_k], so A may be read transposed: dW = dY^T X)
//
// Both are register-blocked: an MR x NR tile of vector accumulators stays in registers while K is
// walked, so each loaded vector feeds several FMAs. Every C element is summed in the same order
// whatever the tile or thread split (threads own disjoint column ranges), so results are bitwise
// identical at any thread count. gemm_nt adds the bias and applies the activation as it stores
// each sum (the epilogue), so its output is written once. gemm_nn walks K in blocks of KC and
// stores partial sums between them, so it applies bias and activation in a second sweep over its
// thread's columns after the last block (none when both are absent, as in backward).
#include <cstddef>
#include <type_traits>


namespace ctnn::kernels {
using ctnn::Epilogue;  // the activation applied in the store (core/epilogue.hpp)

// A stride of A known when the caller is compiled: gemm_nn_fixed<N>(..., A, kFixed<C>, kFixed<1>,
// ...) instead of gemm_nn's (C, 1). With run-time strides an MR-row tile needs MR row offsets
// in registers; x86's 16 general registers do not hold 12 of them beside the loop's pointers, so
// g++ reloads one from a spill before every broadcast FMA. A fixed stride makes each row's offset
// a constant in the instruction. Same operations in the same order: the results are bitwise those
// of the run-time stride. Measured on Zen 5 (AVX-512, one thread) for Winograd's 16-filter
// products when ResNet-8's 28 x 28 layers took F(2x2) (196 x 16 x 16, 16 per sample; F(4x4) now
// makes them 49 x 16 x 16, 36 per sample): 9.3-11.3 against 14.4-15.6 us; its weight gradient
// (16 x 16 x 6272, A transposed): 22-23 against 33 us.
template <std::size_t S>
inline constexpr std::integral_constant<std::size_t, S> kFixed{};

// Rows of A that gemm_nt accumulates at once (its row block).
inline constexpr std::size_t kGemmNtRows = 32;

// Scratch elements gemm_nt needs for an M x N product: one vector per output of a row block.
template <class T>
constexpr std::size_t gemm_nt_scratch(std::size_t M, std::size_t N) {
  return (M < kGemmNtRows ? M : kGemmNtRows) * N * (HWY_MAX_BYTES / sizeof(T));
}
}  // namespace ctnn::kernels

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using kernels::Epilogue;

// ReLU as kernels::relu_forward computes it: 0 where x <= 0, so NaN stays NaN. ReLU6 as
// kernels::bounded_relu_forward computes it (6 where x >= 6, 0 where x < 0), bit for bit.
template <class T>
HWY_INLINE T apply_epilogue(T x, Epilogue e) {
  if (e == Epilogue::relu6) return x >= T(6) ? T(6) : x < T(0) ? T(0) : x;
  return (e == Epilogue::relu && x <= T(0)) ? T(0) : x;
}

// Vector registers of the target: 16 on x86 up to AVX2, 32 with AVX-512 and on Arm (NEON, SVE).
// Tile sizes below are chosen so accumulators + operands fill them without spilling.
// CTNN_VECTOR_REGISTERS overrides it (the tests build the 32-register tiles on AVX2 machines too).
#if defined(CTNN_VECTOR_REGISTERS)
inline constexpr std::size_t kVectorRegisters = CTNN_VECTOR_REGISTERS;
#elif HWY_ARCH_X86 && HWY_TARGET >= HWY_AVX2
inline constexpr std::size_t kVectorRegisters = 16;
#else
inline constexpr std::size_t kVectorRegisters = 32;
#endif

// gemm_nt tile: MR rows of A x NR rows of B. The block of A comes from L2 and the B rows of a
// column tile from L1 (they are reused by every row). Measured at the Dense forward seed shape on
// Zen 3 (AVX2, 16 registers, one thread): 1 x 8 and 2 x 7 take 2.8-2.9 ms, 4 x 3 3.9 ms, 2 x 4
// 3.6 ms, 1 x 12 3.5 ms (spills). With 32 registers (Zen 5, AVX-512) 2 x 8 (16 accumulators, 10
// loads per 16 FMAs) beats 1 x 16 (17 loads per 16 FMAs) by 13-21% at M = 32 and 256 (1 and 2
// threads; 3 x 7 and 4 x 6 in between) and ties at M = 1. The tile shape does not change any
// output's operations (each is one vector accumulator over K in order): the same bits.
// The accumulators are whole vectors (lanes are summed only once, at the very end) and live in
// `acc` between K blocks.
inline constexpr std::size_t kNtMR = kVectorRegisters == 16 ? 1 : 2;
inline constexpr std::size_t kNtNR = 8;

template <std::size_t MR, std::size_t NR, class D, class T>
HWY_INLINE void nt_tile(D d, std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A,
                        std::size_t lda, const T* HWY_RESTRICT B, std::size_t ldb,
                        T* HWY_RESTRICT acc, std::size_t acc_ld, bool first) {
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<D>;
  V c[MR][NR];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j)
      c[r][j] = first ? hn::Zero(d) : hn::Load(d, acc + (r * acc_ld + j) * L);
  for (std::size_t k = k0; k < k1; k += L) {
    V b[NR];
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j) b[j] = hn::LoadU(d, B + j * ldb + k);
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      const V a = hn::LoadU(d, A + r * lda + k);
      HWY_UNROLL(16)
      for (std::size_t j = 0; j < NR; ++j) c[r][j] = hn::MulAdd(a, b[j], c[r][j]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t j = 0; j < NR; ++j) hn::Store(c[r][j], d, acc + (r * acc_ld + j) * L);
}

// All rows of A against NR rows of B over [k0, k1): full MR tiles, then single rows.
template <std::size_t NR, class D, class T>
HWY_INLINE void nt_column(D d, std::size_t M, std::size_t k0, std::size_t k1, const T* A,
                          std::size_t lda, const T* B, std::size_t ldb, T* acc,
                          std::size_t acc_ld, bool first) {
  const std::size_t L = hn::Lanes(d);
  std::size_t m = 0;
  for (; m + kNtMR <= M; m += kNtMR)
    nt_tile<kNtMR, NR>(d, k0, k1, A + m * lda, lda, B, ldb, acc + m * acc_ld * L, acc_ld, first);
  for (; m < M; ++m)
    nt_tile<1, NR>(d, k0, k1, A + m * lda, lda, B, ldb, acc + m * acc_ld * L, acc_ld, first);
}

// C[M x N] = act(A[M x K] * B[N x K]^T + bias). bias may be null. `acc` is caller-provided,
// 64-byte aligned scratch of kernels::gemm_nt_scratch<T>(M, N) elements (vector accumulators,
// one per output of a block of rows; threads use disjoint columns of it).
//
// The Dense forward product: M is the batch (small), K the inputs (large). K is cut into blocks
// so a block of rows of A stays in cache while every column tile of B streams past it; B (the
// weights) is read from memory once per 32 rows. Each thread owns a range
// of columns and its own vector accumulators.
template <class T>
void gemm_nt(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
             std::size_t ldb, T* C, std::size_t ldc, const T* bias, Epilogue act,
             T* HWY_RESTRICT acc) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  // Measured at the seed shape (32 x 128 x 21632, Zen 3, one thread): blocks of 512 floats of K
  // and 32 rows (a 64 KiB block of A, in L2) beat 128 (A in L1) by ~20%: B is read as few longer
  // runs per row, which the hardware prefetchers follow; B is still read once per 32 rows.
  constexpr std::size_t KC = 2048 / sizeof(T);  // elements of K per block (a multiple of L)
  constexpr std::size_t MC = kernels::kGemmNtRows;  // rows of A per block
  const std::size_t kv = K - K % L;            // the vectorized part of K; the rest is scalar
  const std::size_t tiles = (N + kNtNR - 1) / kNtNR;
  parallel_for_range(
      tiles,
      [&](std::size_t t0, std::size_t t1) {
        const std::size_t n0 = t0 * kNtNR, n1 = t1 * kNtNR < N ? t1 * kNtNR : N;
        for (std::size_t m0 = 0; m0 < M; m0 += MC) {
          const std::size_t mc = M - m0 < MC ? M - m0 : MC;
          const T* Am = A + m0 * lda;
          for (std::size_t k0 = 0; k0 < kv || k0 == 0; k0 += KC) {
            const std::size_t k1 = k0 + KC < kv ? k0 + KC : kv;
            const bool first = k0 == 0;
            std::size_t n = n0;
            for (; n + kNtNR <= n1; n += kNtNR)
              nt_column<kNtNR>(d, mc, k0, k1, Am, lda, B + n * ldb, ldb, acc + n * L, N, first);
            for (; n < n1; ++n)
              nt_column<1>(d, mc, k0, k1, Am, lda, B + n * ldb, ldb, acc + n * L, N, first);
            if (kv == 0) break;
          }
          for (std::size_t m = 0; m < mc; ++m)
            for (std::size_t n = n0; n < n1; ++n) {
              T s = hn::GetLane(hn::SumOfLanes(d, hn::Load(d, acc + (m * N + n) * L)));
              const T* a = Am + m * lda;
              const T* b = B + n * ldb;
              for (std::size_t k = kv; k < K; ++k) s += a[k] * b[k];
              C[(m0 + m) * ldc + n] = apply_epilogue(bias ? s + bias[n] : s, act);
            }
        }
      },
      M * N * K >= kParallelWork);
}

// One MR x (NV vectors) tile of gemm_nn over k in [k0, k1): per k, NV vectors of B and one
// broadcast of A per row. Measured on Zen 3 (AVX2, one thread) for the Dense backward products at
// the seed shape (dX + dW): 6 x 2 takes 6.2-6.4 ms, 5 x 2 6.2-7.6, 8 x 1 7.2-7.4, 4 x 3 8.8-10.1
// (12 accumulators + 3 B + 1 A leave no room, and g++ refolds the loads). The 32-register choice
// (6 x 4) is not yet measured on AVX-512.
inline constexpr std::size_t kNnMR = 6;
inline constexpr std::size_t kNnNV = kVectorRegisters == 16 ? 2 : 4;

template <std::size_t MR, std::size_t NV, class T, class AM, class AK>
HWY_INLINE void nn_tile(std::size_t k0, std::size_t k1, const T* HWY_RESTRICT A, AM a_m,
                        AK a_k, const T* HWY_RESTRICT B, std::size_t ldb,
                        T* HWY_RESTRICT C, std::size_t ldc, bool accumulate) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V acc[MR][NV];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c)
      acc[r][c] = accumulate ? hn::LoadU(d, C + r * ldc + c * L) : hn::Zero(d);
  for (std::size_t k = k0; k < k1; ++k) {
    V b[NV];
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) b[c] = hn::LoadU(d, B + k * ldb + c * L);
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      const V a = hn::Set(d, A[r * a_m + k * a_k]);
      HWY_UNROLL(16)
      for (std::size_t c = 0; c < NV; ++c) acc[r][c] = hn::MulAdd(a, b[c], acc[r][c]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) hn::StoreU(acc[r][c], d, C + r * ldc + c * L);
}

// Rows per tile when only 1, 2 or 3 vectors of columns remain: enough independent accumulators
// to cover the FMA latency (4 cycles, 2 FMAs a cycle) without spilling. Measured on Zen 5
// (AVX-512, one thread) for the 16-filter convolution of ResNet-8 (784 x 16 x 144): 12 x 1
// against the 6 x 1 of the general tile.
inline constexpr std::size_t kNnTallMR[4] = {0, kVectorRegisters == 16 ? 8 : 12,
                                             kVectorRegisters == 16 ? 6 : 8, 6};

// All M rows of one column tile of NV vectors: MR rows at a time, then the rest.
template <std::size_t MR, std::size_t NV, class T, class AM, class AK>
HWY_INLINE void nn_rows(std::size_t M, std::size_t k0, std::size_t k1, const T* A, AM a_m,
                        AK a_k, const T* B, std::size_t ldb, T* C, std::size_t ldc,
                        bool accumulate) {
  std::size_t m = 0;
  for (; m + MR <= M; m += MR)
    nn_tile<MR, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
  if constexpr (HWY_TARGET != HWY_SCALAR && MR > 4) {
    // The last M % MR rows in tiles of 4 and 2 rows, then one (the 4 rows left of 16 filters in
    // 6-row tiles): a single-row tile loads NV vectors of B for NV FMAs. Two heights only, to
    // keep the code (and its compile time) small.
    for (; m + 4 <= M; m += 4)
      nn_tile<4, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
    for (; m + 2 <= M; m += 2)
      nn_tile<2, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
  }
  for (; m < M; ++m) nn_tile<1, NV>(k0, k1, A + m * a_m, a_m, a_k, B, ldb, C + m * ldc, ldc, accumulate);
}

// A single row of A (M = 1: a recurrent step, batch-1 inference) has no other rows to share B's
// loads, so its tile is as wide as the registers allow: 16 (8 on 16-register targets) vectors of
// independent accumulators hide the FMA latency that a 4-vector tile waits on. Each element is
// still summed as every tile sums it (from C or zero, k in order), so the bits do not change.
inline constexpr std::size_t kNnRowNV = kVectorRegisters == 16 ? 8 : 16;

// Scalar column tail of gemm_nn (fewer than one vector of columns left).
template <class T, class AM, class AK>
HWY_INLINE void nn_scalar(std::size_t M, std::size_t k0, std::size_t k1, const T* A,
                          AM a_m, AK a_k, const T* B, std::size_t ldb, T* C,
                          std::size_t ldc, std::size_t cols, bool accumulate) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t c = 0; c < cols; ++c) {
      T s = accumulate ? C[m * ldc + c] : T(0);
      for (std::size_t k = k0; k < k1; ++k) s += A[m * a_m + k * a_k] * B[k * ldb + c];
      C[m * ldc + c] = s;
    }
}

// C[M x N] (+)= act(A(M x K) * B[K x N] + bias), A(m, k) = A[m * a_m + k * a_k]. bias may be
// null. With accumulate, the epilogue must be none and bias null (it adds to C as it is).
template <class T>
void gemm_nn(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t a_m,
             std::size_t a_k, const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate,
             const T* bias, Epilogue act) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  constexpr std::size_t MR = kNnMR, NV = kNnNV;
  // K blocks of 256 keep the B panel (256 x NV vectors) in L1 while the rows of A pass.
  constexpr std::size_t KC = 256;
  const std::size_t W = NV * L;  // columns per tile
  const std::size_t blocks = (N + W - 1) / W;
  // Rows [m0, m1) x columns [n0, n1) of C.
  const auto panel = [&](std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1) {
    const std::size_t rows = m1 - m0;
    const T* Am = A + m0 * a_m;
    T* Cm = C + m0 * ldc;
    for (std::size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
      const std::size_t k1 = k0 + KC < K ? k0 + KC : K;
      const bool acc = accumulate || k0 != 0;
      std::size_t n = n0;
      if (rows == 1)  // [n0, n) is a multiple of W columns: what the loop below would take
        for (; n + kNnRowNV * L <= n1; n += kNnRowNV * L)
          nn_tile<1, kNnRowNV>(k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
      for (; n + W <= n1; n += W) nn_rows<MR, NV>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
      // Fewer than NV vectors of columns left (all of them when N < NV vectors, as for
      // a convolution of 16 filters on AVX-512): a taller tile of 1, 2 or 3 vectors.
      // (Not on SCALAR, one lane a vector: the scalar tail does it, in less code for a
      // microcontroller's flash.)
      if constexpr (HWY_TARGET != HWY_SCALAR) {
        const std::size_t rest = (n1 - n) / L;
        if (NV > 3 && rest == 3) {
          nn_rows<kNnTallMR[3], 3>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += 3 * L;
        } else if (NV > 2 && rest == 2) {
          nn_rows<kNnTallMR[2], 2>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += 2 * L;
        } else if (rest == 1) {
          nn_rows<kNnTallMR[1], 1>(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, acc);
          n += L;
        }
      }
      if (n < n1) nn_scalar(rows, k0, k1, Am, a_m, a_k, B + n, ldb, Cm + n, ldc, n1 - n, acc);
      if (K == 0) break;
    }
    if (bias || act != Epilogue::none)
      for (std::size_t m = 0; m < rows; ++m)
        for (std::size_t n = n0; n < n1; ++n) {
          T& c = Cm[m * ldc + n];
          c = apply_epilogue(bias ? c + bias[n] : c, act);
        }
  };
  const bool worth_it = M * N * K >= kParallelWork;
  if (!worth_it) {  // one thread: what either split below runs then (and no thread queries)
    panel(0, M, 0, N);
    return;
  }
  // Threads own disjoint column blocks, or, when there are fewer blocks than threads (a
  // weight gradient of 64 filters: one block of 4 vectors), disjoint panels of kRowPanel rows.
  // Either way each element of C is summed by one thread in K order: the same bits at any thread
  // count.
  constexpr std::size_t kRowPanel = 24;  // a multiple of every tile's rows (6, 8, 12)
  const std::size_t panels = (M + kRowPanel - 1) / kRowPanel;
  if (blocks < std::size_t(max_threads()) && panels >= 2 && !in_parallel_region()) {
    parallel_for_range(
        panels,
        [&](std::size_t p0, std::size_t p1) {
          panel(p0 * kRowPanel, p1 * kRowPanel < M ? p1 * kRowPanel : M, 0, N);
        },
        worth_it);
    return;
  }
  parallel_for_range(
      blocks,
      [&](std::size_t jb0, std::size_t jb1) {
        panel(0, M, jb0 * W, jb1 * W < N ? jb1 * W : N);
      },
      worth_it);
}

// C[M x N] = A(M x K) * B[K x N]: gemm_nn with N and A's strides fixed at compile time (kFixed),
// so only the tiles of N's width are compiled (gemm_nn with fixed strides compiles all of them:
// 2-5 s more for examples/resnet8.cpp when its Winograd products took it). Bitwise what
// gemm_nn(M, N, K, A, a_m, a_k, B, ldb, C, ldc, false, nullptr, none) computes: each element is
// summed from zero over k in order in one accumulator, whatever the tile. Conv2D's Winograd
// products (layers/conv2d.hpp) take it; im2col's did not gain (forward with its bias and ReLU: 5.9
// against 7.9 us for ResNet-8's stem, but 13.5 against 11.3 for the seed model's convolution).
// Large products outside a parallel region split into panels of rows across threads. Only one
// or two vectors of columns take the fixed path: their tiles are 8 to 12 rows tall, the ones
// whose row offsets do not fit in registers (6-row tiles of 4 vectors ran as fast either way:
// 49 x 64 x 576, 16 us). Other widths, and scalable or scalar targets, are that gemm_nn call.
template <std::size_t N, class T, class AM, class AK>
void gemm_nn_fixed(std::size_t M, std::size_t K, const T* A, AM a_m, AK a_k, const T* B,
                   std::size_t ldb, T* C, std::size_t ldc) {
#if HWY_HAVE_SCALABLE || HWY_TARGET == HWY_SCALAR
  constexpr bool whole = false;
  constexpr std::size_t L = 1;  // unused
#else
  constexpr std::size_t L = hn::MaxLanes(hn::ScalableTag<T>());
  constexpr bool whole = N % L == 0 && N / L <= 2;
#endif
  if constexpr (!whole) {
    gemm_nn(M, N, K, A, std::size_t(a_m), std::size_t(a_k), B, ldb, C, ldc, false,
            static_cast<const T*>(nullptr), Epilogue::none);
  } else {
    constexpr std::size_t vectors = N / L, blocks = vectors / kNnNV, rest = vectors % kNnNV;
    constexpr std::size_t n = blocks * kNnNV * L;  // the first column of the rest
    const auto rows = [&](std::size_t m0, std::size_t m1) {
      const T* Am = A + m0 * a_m;
      T* Cm = C + m0 * ldc;
      for (std::size_t b = 0; b < blocks; ++b)
        nn_rows<kNnMR, kNnNV>(m1 - m0, 0, K, Am, a_m, a_k, B + b * kNnNV * L, ldb,
                              Cm + b * kNnNV * L, ldc, false);
      if constexpr (rest > 0)
        nn_rows<kNnTallMR[rest], rest>(m1 - m0, 0, K, Am, a_m, a_k, B + n, ldb, Cm + n, ldc,
                                       false);
    };
    constexpr std::size_t kRowPanel = 24;  // as gemm_nn's
    const std::size_t panels = (M + kRowPanel - 1) / kRowPanel;
    parallel_for_range(
        panels,
        [&](std::size_t p0, std::size_t p1) {
          rows(p0 * kRowPanel, p1 * kRowPanel < M ? p1 * kRowPanel : M);
        },
        M * N * K >= kParallelWork);
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::gemm_nn;
using ctnn::HWY_NAMESPACE::gemm_nn_fixed;
using ctnn::HWY_NAMESPACE::gemm_nt;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/gemm.hpp ----
// ---- begin ctnn/kernels/winograd.hpp ----
// ctnn/kernels/winograd.hpp: Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (below
// F(2x2)'s, after "F(4x4, 3x3)") for 3x3 stride-1 convolutions on channels-last images, and the
// adjoint of every transform (for backward).
//
// A 3x3 convolution computes each 2x2 block of outputs ("tile") from a 4x4 window of the input.
// With d the window, g a filter's 3x3 taps for one input channel and
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// the tile is A^T [(G g G^T) .* (B^T d B)] A: 16 products instead of 36. Summed over the input
// channels, the products become 16 independent matrix products, one per position xi = 4i + j of
// the 4x4 transformed tile:
//   M[xi] (tiles x F) = V[xi] (tiles x C) * U[xi] (C x F),
// V = B^T d B for every tile and channel (winograd_f23_input), U = G g G^T for every channel and
// filter (winograd_f23_weights), and the output tile A^T M A (winograd_f23_output). That is
// 16 / 36 of the direct convolution's multiplications (1 / 2.25) when the output is even.
//
// Backward: the convolution above is a linear map of x and of w; its gradients apply the
// transposes (adjoints) of the same transforms, in reverse:
//   dM = adjoint of the output transform applied to dy     (winograd_f23_output_adjoint)
//   dU[xi] = V[xi]^T dM[xi],  dV[xi] = dM[xi] U[xi]^T       (GEMMs)
//   dw = adjoint of the weight transform applied to dU     (winograd_f23_weights_adjoint)
//   dx += adjoint of the input transform applied to dV     (winograd_f23_input_adjoint)
// so the gradients are exactly those of the function computed forward.
//
// Tiles: tile (ty, tx) covers outputs (2ty + a, 2tx + b), a, b in {0, 1}, and reads input rows
// 2ty - pad_top + i and columns 2tx - pad_left + j, i, j in 0..3; what falls outside the input is
// zero (the padding) and outputs past oh x ow are not written (an odd output size computes one
// half-empty row or column of tiles). Tiles are numbered ty * tw + tx; V, M and their gradients
// hold, for each xi, one row per tile at xi * stride + tile * channels (stride >= tiles *
// channels, so a caller can put many samples' tiles in one matrix per xi).
//
// Every transform works along the channels (contiguous in channels-last images): full vectors and
// a one-lane tail with the same operations, so an element's result does not depend on the vector
// width split. Each output element's operations are fixed by the formulas, so results are
// bitwise the same at any thread count when callers split work by samples.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace winograd_detail {

// The per-chunk bodies below are lambdas called once per vector of channels: inlined, their
// 16-vector tiles stay in registers (g++ otherwise calls them and passes the tiles in memory).
#if defined(__GNUC__)
#define CTNN_WG_INLINE __attribute__((always_inline))
#else
#define CTNN_WG_INLINE
#endif

// body(d, k) for k = 0, L, 2L, ... in full vectors of tag d, then body(d1, k) one lane at a time.
template <class T, class Body>
HWY_INLINE void for_lanes(std::size_t n, Body&& body) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t k = 0;
  for (; k < full; k += L) body(d, k);
  const hn::CappedTag<T, 1> d1;
  for (; k < n; ++k) body(d1, k);
}

// rows[i][j] = the pixel of image ([H][W][C]) read at position (i, j) of the N x N window of
// tile (ty, tx), tiles Step pixels apart (F(2x2): 4 and 2; F(4x4): 6 and 4), or null in the
// padding.
template <std::size_t N, std::size_t Step, class P>
HWY_INLINE void window(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                       std::size_t pad_left, std::size_t ty, std::size_t tx, P* image,
                       P* (&rows)[N][N]) {
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      const std::ptrdiff_t iy = std::ptrdiff_t(Step * ty + i) - std::ptrdiff_t(pad_top);
      const std::ptrdiff_t ix = std::ptrdiff_t(Step * tx + j) - std::ptrdiff_t(pad_left);
      const bool in = iy >= 0 && ix >= 0 && iy < std::ptrdiff_t(H) && ix < std::ptrdiff_t(W);
      rows[i][j] = in ? image + (std::size_t(iy) * W + std::size_t(ix)) * C : nullptr;
    }
}

template <class D, class V>
HWY_INLINE V activate(D d, V v, Epilogue act) {
  using T = hn::TFromD<D>;
  if (act == Epilogue::relu) return hn::IfThenZeroElse(v <= hn::Zero(d), v);
  if (act == Epilogue::relu6) {
    const auto six = hn::Set(d, T(6));
    return hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < hn::Zero(d), v));
  }
  return v;
}

}  // namespace winograd_detail

// U[xi][c][f] = (G g G^T)[i][j] for g = w[.][.][c][f], w in Keras's [3][3][C][F] layout.
template <class T>
void winograd_f23_weights(std::size_t C, std::size_t F, const T* HWY_RESTRICT w,
                          T* HWY_RESTRICT U) {
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      const auto half = hn::Set(d, T(0.5));
      const auto g = [&](std::size_t a, std::size_t b) {
        return hn::LoadU(d, w + ((a * 3 + b) * C + c) * F + f);
      };
      using V = decltype(g(0, 0));
      V t[4][3];  // G g
      for (std::size_t b = 0; b < 3; ++b) {
        const V g0 = g(0, b), g1 = g(1, b), g2 = g(2, b);
        t[0][b] = g0;
        t[1][b] = hn::Mul(half, hn::Add(hn::Add(g0, g1), g2));
        t[2][b] = hn::Mul(half, hn::Add(hn::Sub(g0, g1), g2));
        t[3][b] = g2;
      }
      for (std::size_t i = 0; i < 4; ++i) {
        T* u = U + (i * 4 * C + c) * F + f;
        const std::size_t step = C * F;  // from xi to xi + 1
        hn::StoreU(t[i][0], d, u);
        hn::StoreU(hn::Mul(half, hn::Add(hn::Add(t[i][0], t[i][1]), t[i][2])), d, u + step);
        hn::StoreU(hn::Mul(half, hn::Add(hn::Sub(t[i][0], t[i][1]), t[i][2])), d, u + 2 * step);
        hn::StoreU(t[i][2], d, u + 3 * step);
      }
    });
}

// dw[a][b][c][f] = (G^T dU G)[a][b]: the adjoint of winograd_f23_weights (overwrites dw).
template <class T>
void winograd_f23_weights_adjoint(std::size_t C, std::size_t F, const T* HWY_RESTRICT dU,
                                  T* HWY_RESTRICT dw) {
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      const auto half = hn::Set(d, T(0.5));
      const auto u = [&](std::size_t i, std::size_t j) {
        return hn::LoadU(d, dU + ((i * 4 + j) * C + c) * F + f);
      };
      using V = decltype(u(0, 0));
      V t[3][4];  // G^T dU
      for (std::size_t j = 0; j < 4; ++j) {
        const V u0 = u(0, j), u1 = u(1, j), u2 = u(2, j), u3 = u(3, j);
        const V s = hn::Mul(half, hn::Add(u1, u2)), e = hn::Mul(half, hn::Sub(u1, u2));
        t[0][j] = hn::Add(u0, s);
        t[1][j] = e;
        t[2][j] = hn::Add(s, u3);
      }
      for (std::size_t a = 0; a < 3; ++a) {
        const V s = hn::Mul(half, hn::Add(t[a][1], t[a][2]));
        const V e = hn::Mul(half, hn::Sub(t[a][1], t[a][2]));
        hn::StoreU(hn::Add(t[a][0], s), d, dw + ((a * 3 + 0) * C + c) * F + f);
        hn::StoreU(e, d, dw + ((a * 3 + 1) * C + c) * F + f);
        hn::StoreU(hn::Add(s, t[a][3]), d, dw + ((a * 3 + 2) * C + c) * F + f);
      }
    });
}

// V[xi * v_stride + (ty * tw + tx) * C + c] = (B^T d B)[i][j], d the 4x4 window of channel c
// of x ([H][W][C]) at tile (ty, tx), for th x tw tiles.
template <class T>
void winograd_f23_input(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                        std::size_t pad_left, std::size_t th, std::size_t tw,
                        const T* HWY_RESTRICT x, T* HWY_RESTRICT V, std::size_t v_stride) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* rows[4][4];  // the window's pixels, null in the padding
      winograd_detail::window<4, 2>(H, W, C, pad_top, pad_left, ty, tx, x, rows);
      T* out = V + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        const auto ld = [&](std::size_t i, std::size_t j) {
          return rows[i][j] ? hn::LoadU(d, rows[i][j] + c) : hn::Zero(d);
        };
        using Vec = decltype(ld(0, 0));
        Vec t[4][4];  // B^T d
        for (std::size_t j = 0; j < 4; ++j) {
          const Vec d0 = ld(0, j), d1 = ld(1, j), d2 = ld(2, j), d3 = ld(3, j);
          t[0][j] = hn::Sub(d0, d2);
          t[1][j] = hn::Add(d1, d2);
          t[2][j] = hn::Sub(d2, d1);
          t[3][j] = hn::Sub(d1, d3);
        }
        for (std::size_t i = 0; i < 4; ++i) {
          T* o = out + 4 * i * v_stride + c;
          hn::StoreU(hn::Sub(t[i][0], t[i][2]), d, o);
          hn::StoreU(hn::Add(t[i][1], t[i][2]), d, o + v_stride);
          hn::StoreU(hn::Sub(t[i][2], t[i][1]), d, o + 2 * v_stride);
          hn::StoreU(hn::Sub(t[i][1], t[i][3]), d, o + 3 * v_stride);
        }
      });
    }
}

// dx += the adjoint of winograd_f23_input applied to dV: each tile's (B dV B^T) added into the
// window it was read from, inside the image. Tiles are visited in order (they overlap by two
// rows and columns), so the sums have a fixed order.
template <class T>
void winograd_f23_input_adjoint(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                                std::size_t pad_left, std::size_t th, std::size_t tw,
                                const T* HWY_RESTRICT dV, std::size_t v_stride,
                                T* HWY_RESTRICT dx) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* rows[4][4];
      winograd_detail::window<4, 2>(H, W, C, pad_top, pad_left, ty, tx, dx, rows);
      const T* in = dV + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        const auto v = [&](std::size_t p, std::size_t q) {
          return hn::LoadU(d, in + (4 * p + q) * v_stride + c);
        };
        using Vec = decltype(v(0, 0));
        Vec t[4][4];  // dV B^T: t[p][j] = sum_q dV[p][q] B^T[q][j]
        for (std::size_t p = 0; p < 4; ++p) {
          const Vec v0 = v(p, 0), v1 = v(p, 1), v2 = v(p, 2), v3 = v(p, 3);
          t[p][0] = v0;
          t[p][1] = hn::Add(hn::Sub(v1, v2), v3);
          t[p][2] = hn::Add(hn::Sub(v1, v0), v2);
          t[p][3] = hn::Neg(v3);
        }
        for (std::size_t j = 0; j < 4; ++j) {  // B t: rows i from the p's
          const Vec s[4] = {t[0][j], hn::Add(hn::Sub(t[1][j], t[2][j]), t[3][j]),
                            hn::Add(hn::Sub(t[1][j], t[0][j]), t[2][j]), hn::Neg(t[3][j])};
          for (std::size_t i = 0; i < 4; ++i)
            if (T* px = rows[i][j]) hn::StoreU(hn::Add(hn::LoadU(d, px + c), s[i]), d, px + c);
        }
      });
    }
}

// y[2ty + a][2tx + b][f] = act((A^T M A)[a][b] + bias[f]) inside oh x ow (y is [oh][ow][F]);
// bias may be null.
template <class T>
void winograd_f23_output(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                         std::size_t tw, const T* HWY_RESTRICT M, std::size_t m_stride,
                         const T* HWY_RESTRICT bias, Epilogue act, T* HWY_RESTRICT y) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* in = M + (ty * tw + tx) * F;
      const bool down = 2 * ty + 1 < oh, right = 2 * tx + 1 < ow;
      T* y00 = y + ((2 * ty) * ow + 2 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        const auto m = [&](std::size_t i, std::size_t j) {
          return hn::LoadU(d, in + (4 * i + j) * m_stride + f);
        };
        using Vec = decltype(m(0, 0));
        Vec t[2][4];  // A^T M
        for (std::size_t j = 0; j < 4; ++j) {
          const Vec m0 = m(0, j), m1 = m(1, j), m2 = m(2, j), m3 = m(3, j);
          t[0][j] = hn::Add(hn::Add(m0, m1), m2);
          t[1][j] = hn::Sub(hn::Sub(m1, m2), m3);
        }
        const Vec b = bias ? hn::LoadU(d, bias + f) : hn::Zero(d);
        for (std::size_t a = 0; a < 2; ++a) {
          if (a == 1 && !down) break;
          T* row = y00 + a * ow * F + f;
          const Vec v0 = hn::Add(hn::Add(hn::Add(t[a][0], t[a][1]), t[a][2]), b);
          hn::StoreU(winograd_detail::activate(d, v0, act), d, row);
          if (right) {
            const Vec v1 = hn::Add(hn::Sub(hn::Sub(t[a][1], t[a][2]), t[a][3]), b);
            hn::StoreU(winograd_detail::activate(d, v1, act), d, row + F);
          }
        }
      });
    }
}

// dM = the adjoint of winograd_f23_output's linear part applied to dy ([oh][ow][F]): each tile's
// A dY A^T, with dY zero past oh x ow (dy is the gradient after the activation; the caller
// applies the activation's derivative before).
template <class T>
void winograd_f23_output_adjoint(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                                 std::size_t tw, const T* HWY_RESTRICT dy, T* HWY_RESTRICT dM,
                                 std::size_t m_stride) {
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* out = dM + (ty * tw + tx) * F;
      const bool down = 2 * ty + 1 < oh, right = 2 * tx + 1 < ow;
      const T* y00 = dy + ((2 * ty) * ow + 2 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec g[2][2];
        for (std::size_t a = 0; a < 2; ++a) {
          const bool row = a == 0 || down;
          g[a][0] = row ? hn::LoadU(d, y00 + a * ow * F + f) : hn::Zero(d);
          g[a][1] = row && right ? hn::LoadU(d, y00 + a * ow * F + F + f) : hn::Zero(d);
        }
        // r[a][j] = sum_b dY[a][b] A^T[b][j]: columns j of A^T are (1,0), (1,1), (1,-1), (0,-1).
        Vec r[2][4];
        for (std::size_t a = 0; a < 2; ++a) {
          r[a][0] = g[a][0];
          r[a][1] = hn::Add(g[a][0], g[a][1]);
          r[a][2] = hn::Sub(g[a][0], g[a][1]);
          r[a][3] = hn::Neg(g[a][1]);
        }
        for (std::size_t j = 0; j < 4; ++j) {
          T* o = out + j * m_stride + f;
          hn::StoreU(r[0][j], d, o);
          hn::StoreU(hn::Add(r[0][j], r[1][j]), d, o + 4 * m_stride);
          hn::StoreU(hn::Sub(r[0][j], r[1][j]), d, o + 8 * m_stride);
          hn::StoreU(hn::Neg(r[1][j]), d, o + 12 * m_stride);
        }
      });
    }
}

// ---- F(4x4, 3x3) ----
// The same scheme with 6x6 windows read every 4 pixels and 4x4 blocks of outputs: 36
// multiplications per 4x4 outputs and channel pair where the direct convolution takes 144 (1/4,
// against F(2x2)'s 1/2.25), and 36 / 16 = 2.25 transformed values per output against F(2x2)'s 4,
// so V and M take 44% less memory and traffic. Lavin and Gray's matrices (interpolation points
// 0, 1, -1, 2, -2 and infinity):
//   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1],
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0;  0 1 -1 2 -2 0;  0 1 1 4 4 0;  0 1 -1 8 -8 1].
// The points' powers (up to 8) and G's sixths round more: tests/kernels/test_winograd.cpp bounds
// F(4x4)'s difference from the direct convolution 3x looser than F(2x2)'s (1e-6 x sqrt(terms) fails
// it in float for a 28 x 28 weight gradient of 784 terms). Positions xi = 6i + j of the 6x6
// transformed tile; tile (ty, tx) covers outputs (4ty + a, 4tx + b), a, b in 0..3, and reads input
// rows 4ty - pad_top + i, columns 4tx - pad_left + j, i, j in 0..5 (zero outside the input);
// outputs past oh x ow are not written. Each function below is its F(2x2) namesake with these
// matrices.
namespace winograd_detail {

// The 1-D maps, y = Mat x for Mat = B^T, B, G, G^T, A^T and A, with shared partial sums.
struct F43 {
  template <class D, class V>
  static HWY_INLINE void bt(D d, const V (&x)[6], V (&y)[6]) {  // B^T
    using T = hn::TFromD<D>;
    const V four = hn::Set(d, T(4)), five = hn::Set(d, T(5)), two = hn::Set(d, T(2));
    y[0] = hn::MulAdd(four, x[0], hn::NegMulAdd(five, x[2], x[4]));
    y[1] = hn::NegMulAdd(four, hn::Add(x[1], x[2]), hn::Add(x[3], x[4]));
    y[2] = hn::MulAdd(four, hn::Sub(x[1], x[2]), hn::Sub(x[4], x[3]));
    const V g = hn::Sub(x[4], x[2]), h = hn::Sub(x[3], x[1]);
    y[3] = hn::MulAdd(two, h, g);
    y[4] = hn::NegMulAdd(two, h, g);
    y[5] = hn::MulAdd(four, x[1], hn::NegMulAdd(five, x[3], x[5]));
  }
  template <class D, class V>
  static HWY_INLINE void b(D d, const V (&g)[6], V (&y)[6]) {  // B = (B^T)^T
    using T = hn::TFromD<D>;
    const V four = hn::Set(d, T(4)), five = hn::Set(d, T(5)), two = hn::Set(d, T(2));
    y[0] = hn::Mul(four, g[0]);
    y[1] = hn::MulAdd(four, hn::Add(hn::Sub(g[2], g[1]), g[5]), hn::Mul(two, hn::Sub(g[4], g[3])));
    y[2] = hn::Neg(hn::Add(hn::MulAdd(five, g[0], hn::Mul(four, hn::Add(g[1], g[2]))),
                           hn::Add(g[3], g[4])));
    y[3] = hn::NegMulAdd(five, g[5], hn::MulAdd(two, hn::Sub(g[3], g[4]), hn::Sub(g[1], g[2])));
    y[4] = hn::Add(hn::Add(hn::Add(g[0], g[1]), hn::Add(g[2], g[3])), g[4]);
    y[5] = g[5];
  }
  template <class D, class V>
  static HWY_INLINE void g(D d, const V (&x)[3], V (&y)[6]) {  // G
    using T = hn::TFromD<D>;
    const V quarter = hn::Set(d, T(1) / T(4)), msixth = hn::Set(d, T(-1) / T(6));
    const V c24 = hn::Set(d, T(1) / T(24)), c12 = hn::Set(d, T(1) / T(12)),
            c6 = hn::Set(d, T(1) / T(6));
    const V s = hn::Add(x[0], x[2]);
    const V t = hn::MulAdd(c24, x[0], hn::Mul(c6, x[2]));
    y[0] = hn::Mul(quarter, x[0]);
    y[1] = hn::Mul(msixth, hn::Add(s, x[1]));
    y[2] = hn::Mul(msixth, hn::Sub(s, x[1]));
    y[3] = hn::MulAdd(c12, x[1], t);
    y[4] = hn::NegMulAdd(c12, x[1], t);
    y[5] = x[2];
  }
  template <class D, class V>
  static HWY_INLINE void gt(D d, const V (&u)[6], V (&y)[3]) {  // G^T
    using T = hn::TFromD<D>;
    const V quarter = hn::Set(d, T(1) / T(4)), msixth = hn::Set(d, T(-1) / T(6));
    const V c24 = hn::Set(d, T(1) / T(24)), c12 = hn::Set(d, T(1) / T(12)),
            c6 = hn::Set(d, T(1) / T(6));
    const V p = hn::Add(u[1], u[2]), q = hn::Add(u[3], u[4]);
    y[0] = hn::MulAdd(quarter, u[0], hn::MulAdd(msixth, p, hn::Mul(c24, q)));
    y[1] = hn::MulAdd(c6, hn::Sub(u[2], u[1]), hn::Mul(c12, hn::Sub(u[3], u[4])));
    y[2] = hn::Add(hn::MulAdd(msixth, p, hn::Mul(c6, q)), u[5]);
  }
  template <class D, class V>
  static HWY_INLINE void at(D d, const V (&m)[6], V (&y)[4]) {  // A^T
    using T = hn::TFromD<D>;
    const V two = hn::Set(d, T(2)), four = hn::Set(d, T(4)), eight = hn::Set(d, T(8));
    const V p = hn::Add(m[1], m[2]), q = hn::Add(m[3], m[4]);
    const V r = hn::Sub(m[1], m[2]), s = hn::Sub(m[3], m[4]);
    y[0] = hn::Add(hn::Add(m[0], p), q);
    y[1] = hn::MulAdd(two, s, r);
    y[2] = hn::MulAdd(four, q, p);
    y[3] = hn::Add(hn::MulAdd(eight, s, r), m[5]);
  }
  template <class D, class V>
  static HWY_INLINE void a(D d, const V (&g)[4], V (&y)[6]) {  // A = (A^T)^T
    using T = hn::TFromD<D>;
    const V two = hn::Set(d, T(2)), four = hn::Set(d, T(4)), eight = hn::Set(d, T(8));
    const V p = hn::Add(g[0], g[2]), q = hn::Add(g[1], g[3]);
    const V r = hn::MulAdd(four, g[2], g[0]), s = hn::MulAdd(two, g[1], hn::Mul(eight, g[3]));
    y[0] = g[0];
    y[1] = hn::Add(p, q);
    y[2] = hn::Sub(p, q);
    y[3] = hn::Add(r, s);
    y[4] = hn::Sub(r, s);
    y[5] = g[3];
  }
};

// out = Mat in Mat^T for the 1-D map f (y = Mat x): f on every column of in, then on every row
// of that, so out[i][j] = sum_k sum_l Mat[i][k] in[k][l] Mat[j][l].
template <std::size_t R, std::size_t N, class D, class V, class F>
HWY_INLINE void separable(D d, const V (&in)[N][N], V (&out)[R][R], F&& f) {
  V t[R][N];
  for (std::size_t j = 0; j < N; ++j) {
    V col[N], res[R];
    for (std::size_t i = 0; i < N; ++i) col[i] = in[i][j];
    f(d, col, res);
    for (std::size_t i = 0; i < R; ++i) t[i][j] = res[i];
  }
  for (std::size_t i = 0; i < R; ++i) f(d, t[i], out[i]);
}

}  // namespace winograd_detail

// U[xi][c][f] = (G g G^T)[i][j], xi = 6i + j, for g = w[.][.][c][f] (Keras's [3][3][C][F]).
template <class T>
void winograd_f43_weights(std::size_t C, std::size_t F, const T* HWY_RESTRICT w,
                          T* HWY_RESTRICT U) {
  using winograd_detail::F43;
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      using V = decltype(hn::Zero(d));
      V g[3][3], u[6][6];
      for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = 0; b < 3; ++b)
          g[a][b] = hn::LoadU(d, w + ((a * 3 + b) * C + c) * F + f);
      winograd_detail::separable<6>(d, g, u, [](auto dd, auto& x, auto& y) CTNN_WG_INLINE {
        F43::g(dd, x, y);
      });
      for (std::size_t xi = 0; xi < 36; ++xi)
        hn::StoreU(u[xi / 6][xi % 6], d, U + (xi * C + c) * F + f);
    });
}

// dw[a][b][c][f] = (G^T dU G)[a][b]: the adjoint of winograd_f43_weights (overwrites dw).
template <class T>
void winograd_f43_weights_adjoint(std::size_t C, std::size_t F, const T* HWY_RESTRICT dU,
                                  T* HWY_RESTRICT dw) {
  using winograd_detail::F43;
  for (std::size_t c = 0; c < C; ++c)
    winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
      using V = decltype(hn::Zero(d));
      V u[6][6], g[3][3];
      for (std::size_t xi = 0; xi < 36; ++xi)
        u[xi / 6][xi % 6] = hn::LoadU(d, dU + (xi * C + c) * F + f);
      winograd_detail::separable<3>(d, u, g, [](auto dd, auto& x, auto& y) CTNN_WG_INLINE {
        F43::gt(dd, x, y);
      });
      for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = 0; b < 3; ++b)
          hn::StoreU(g[a][b], d, dw + ((a * 3 + b) * C + c) * F + f);
    });
}

// V[xi * v_stride + (ty * tw + tx) * C + c] = (B^T d B)[i][j], d the 6x6 window of channel c
// of x ([H][W][C]) at tile (ty, tx), for th x tw tiles.
template <class T>
void winograd_f43_input(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                        std::size_t pad_left, std::size_t th, std::size_t tw,
                        const T* HWY_RESTRICT x, T* HWY_RESTRICT V, std::size_t v_stride) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* rows[6][6];
      winograd_detail::window<6, 4>(H, W, C, pad_top, pad_left, ty, tx, x, rows);
      T* out = V + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec win[6][6], v[6][6];
        for (std::size_t i = 0; i < 6; ++i)
          for (std::size_t j = 0; j < 6; ++j)
            win[i][j] = rows[i][j] ? hn::LoadU(d, rows[i][j] + c) : hn::Zero(d);
        winograd_detail::separable<6>(d, win, v, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::bt(dd, a, b);
        });
        for (std::size_t xi = 0; xi < 36; ++xi)
          hn::StoreU(v[xi / 6][xi % 6], d, out + xi * v_stride + c);
      });
    }
}

// dx += the adjoint of winograd_f43_input applied to dV: each tile's (B dV B^T) added into the
// window it was read from, inside the image, tiles in order (they overlap by two rows and
// columns), so the sums have a fixed order.
template <class T>
void winograd_f43_input_adjoint(std::size_t H, std::size_t W, std::size_t C, std::size_t pad_top,
                                std::size_t pad_left, std::size_t th, std::size_t tw,
                                const T* HWY_RESTRICT dV, std::size_t v_stride,
                                T* HWY_RESTRICT dx) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* rows[6][6];
      winograd_detail::window<6, 4>(H, W, C, pad_top, pad_left, ty, tx, dx, rows);
      const T* in = dV + (ty * tw + tx) * C;
      winograd_detail::for_lanes<T>(C, [&](auto d, std::size_t c) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec v[6][6], s[6][6];
        for (std::size_t xi = 0; xi < 36; ++xi)
          v[xi / 6][xi % 6] = hn::LoadU(d, in + xi * v_stride + c);
        winograd_detail::separable<6>(d, v, s, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::b(dd, a, b);
        });
        for (std::size_t i = 0; i < 6; ++i)
          for (std::size_t j = 0; j < 6; ++j)
            if (T* px = rows[i][j]) hn::StoreU(hn::Add(hn::LoadU(d, px + c), s[i][j]), d, px + c);
      });
    }
}

// y[4ty + a][4tx + b][f] = act((A^T M A)[a][b] + bias[f]) inside oh x ow (y is [oh][ow][F]);
// bias may be null.
template <class T>
void winograd_f43_output(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                         std::size_t tw, const T* HWY_RESTRICT M, std::size_t m_stride,
                         const T* HWY_RESTRICT bias, Epilogue act, T* HWY_RESTRICT y) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      const T* in = M + (ty * tw + tx) * F;
      const std::size_t rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4;
      const std::size_t cols = ow - 4 * tx < 4 ? ow - 4 * tx : 4;
      T* y00 = y + ((4 * ty) * ow + 4 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec m[6][6], o[4][4];
        for (std::size_t xi = 0; xi < 36; ++xi)
          m[xi / 6][xi % 6] = hn::LoadU(d, in + xi * m_stride + f);
        winograd_detail::separable<4>(d, m, o, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::at(dd, a, b);
        });
        const Vec b = bias ? hn::LoadU(d, bias + f) : hn::Zero(d);
        for (std::size_t a = 0; a < rows; ++a)
          for (std::size_t c = 0; c < cols; ++c)
            hn::StoreU(winograd_detail::activate(d, hn::Add(o[a][c], b), act), d,
                       y00 + (a * ow + c) * F + f);
      });
    }
}

// dM = the adjoint of winograd_f43_output's linear part applied to dy ([oh][ow][F]): each tile's
// A dY A^T, with dY zero past oh x ow (dy is the gradient after the activation).
template <class T>
void winograd_f43_output_adjoint(std::size_t oh, std::size_t ow, std::size_t F, std::size_t th,
                                 std::size_t tw, const T* HWY_RESTRICT dy, T* HWY_RESTRICT dM,
                                 std::size_t m_stride) {
  using winograd_detail::F43;
  for (std::size_t ty = 0; ty < th; ++ty)
    for (std::size_t tx = 0; tx < tw; ++tx) {
      T* out = dM + (ty * tw + tx) * F;
      const std::size_t rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4;
      const std::size_t cols = ow - 4 * tx < 4 ? ow - 4 * tx : 4;
      const T* y00 = dy + ((4 * ty) * ow + 4 * tx) * F;
      winograd_detail::for_lanes<T>(F, [&](auto d, std::size_t f) CTNN_WG_INLINE {
        using Vec = decltype(hn::Zero(d));
        Vec g[4][4], m[6][6];
        for (std::size_t a = 0; a < 4; ++a)
          for (std::size_t c = 0; c < 4; ++c)
            g[a][c] = a < rows && c < cols ? hn::LoadU(d, y00 + (a * ow + c) * F + f) : hn::Zero(d);
        winograd_detail::separable<6>(d, g, m, [](auto dd, auto& a, auto& b) CTNN_WG_INLINE {
          F43::a(dd, a, b);
        });
        for (std::size_t xi = 0; xi < 36; ++xi)
          hn::StoreU(m[xi / 6][xi % 6], d, out + xi * m_stride + f);
      });
    }
}

#undef CTNN_WG_INLINE

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::winograd_f23_input;
using ctnn::HWY_NAMESPACE::winograd_f23_input_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f23_output;
using ctnn::HWY_NAMESPACE::winograd_f23_output_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f23_weights;
using ctnn::HWY_NAMESPACE::winograd_f23_weights_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_input;
using ctnn::HWY_NAMESPACE::winograd_f43_input_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_output;
using ctnn::HWY_NAMESPACE::winograd_f43_output_adjoint;
using ctnn::HWY_NAMESPACE::winograd_f43_weights;
using ctnn::HWY_NAMESPACE::winograd_f43_weights_adjoint;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/winograd.hpp ----
// ---- begin ctnn/layers/dense.hpp ----
// ctnn/layers/dense.hpp: Dense<Units, KernelInit, BiasInit>, a fully connected layer.
//
// Represents y = x W^T + b for a flat input x of In::size values.
// Requires: a rank-1 input (put Flatten after images), Units >= 1.
// Output shape: Shape<Units>. Parameters: W [Units x In::size] (row j holds the weights of output
// j, so the forward product runs along contiguous memory), then b [Units]; Units * (In::size + 1)
// in all, as Keras counts. Init: KernelInit fills W (fan_in = In::size, fan_out = Units), BiasInit
// fills b; the defaults are Keras's, Glorot uniform W and zero b (core/init.hpp lists the others).
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>


namespace ctnn {

template <std::size_t Units, class KernelInit = init::GlorotUniform,
          class BiasInit = init::Zeros>
struct Dense {
  static_assert(Units >= 1, "Dense<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Dense's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 1,
                  "Dense needs a flat (rank-1) input, but the shape before it has more "
                  "dimensions: put ctnn::Flatten before Dense (the shapes are in bind<...> above).");
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<Units>;
    static constexpr std::size_t in = In::size;
    static constexpr std::size_t param_count = Units * in + Units;
    // The forward GEMM's vector accumulators (kernels::gemm_nt_scratch).
    static constexpr std::size_t scratch_per_sample = Units * (HWY_MAX_BYTES / sizeof(T));
    static constexpr std::string_view name = "Dense";
    static constexpr LayerKind kind = LayerKind::dense;
    static std::string spec() {
      return "ctnn::Dense<" + std::to_string(Units) + detail::init_spec<KernelInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      if constexpr (std::is_same_v<KernelInit, init::Orthogonal>)
        KernelInit::fill(p, Units * in, Units, in, rng);  // W's rows are Units (core/init.hpp)
      else
        KernelInit::fill(p, Units * in, in, Units, rng);
      BiasInit::fill(p + Units * in, Units, in, Units, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch, const PassContext&,
                        kernels::Epilogue act = kernels::Epilogue::none) {
      kernels::gemm_nt(n, Units, in, x, in, p, in, y, Units, p + Units * in, act, scratch);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T*, const PassContext&) {
      // dW[Units x in] = dy^T x (dy read transposed), summed over the batch in sample order.
      kernels::gemm_nn(Units, in, n, dy, 1, Units, x, in, dp, in, false, static_cast<const T*>(nullptr),
                       kernels::Epilogue::none);
      kernels::sum_rows(n, Units, dy, dp + Units * in);
      // dx[n x in] = dy W.
      if (dx)
        kernels::gemm_nn(n, in, Units, dy, Units, 1, p, in, dx, in, false,
                         static_cast<const T*>(nullptr), kernels::Epilogue::none);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/dense.hpp ----
// ---- begin ctnn/layers/spatial.hpp ----
// ctnn/layers/spatial.hpp: output sizes and padding of sliding-window layers (convolutions,
// pooling), with Keras's (TensorFlow's) valid/same and PyTorch's/ONNX's explicit per-side pads.
#include <cstddef>
#include <string>

namespace ctnn {

// How a sliding window meets the input's border; a value usable as a template argument:
//   Padding::valid                windows lie inside the input.
//   Padding::same                 zero-padded so the output has ceil(in / stride) positions; an
//                                 odd total pad puts the extra row/column after (Keras,
//                                 TensorFlow, ONNX SAME_UPPER).
//   Padding::same_lower           the same sizes with the extra row/column before (ONNX SAME_LOWER).
//   Padding::pads(t, b, l, r)     exactly t rows above, b below, l columns left, r right
//                                 (PyTorch's padding=p is pads(p, p, p, p); ONNX's pads
//                                 [t, l, b, r] is pads(t, b, l, r)). 1-D layers use l and r.
//   Padding::causal               1-D layers only (Conv1D): Dilation*(K-1) zeros before the
//                                 sequence, none after, so output t sees inputs <= t (Keras).
struct Padding {
  enum class Mode { valid, same, same_lower, explicit_pads, causal };
  Mode mode = Mode::valid;
  std::size_t top = 0, bottom = 0, left = 0, right = 0;

  static const Padding valid, same, same_lower;
  static const Padding causal;
  static constexpr Padding pads(std::size_t t, std::size_t b, std::size_t l, std::size_t r) {
    return Padding{Mode::explicit_pads, t, b, l, r};
  }
  friend constexpr bool operator==(const Padding&, const Padding&) = default;
};
inline constexpr Padding Padding::valid{Padding::Mode::valid};
inline constexpr Padding Padding::same{Padding::Mode::same};
inline constexpr Padding Padding::same_lower{Padding::Mode::same_lower};
inline constexpr Padding Padding::causal{Padding::Mode::causal};

namespace detail {
// "ctnn::Padding::same", for the C++ text of a layer (deploy/export.hpp).
inline std::string padding_spec(Padding pad) {
  switch (pad.mode) {
    case Padding::Mode::same: return "ctnn::Padding::same";
    case Padding::Mode::same_lower: return "ctnn::Padding::same_lower";
    case Padding::Mode::explicit_pads:
      return "ctnn::Padding::pads(" + std::to_string(pad.top) + ", " + std::to_string(pad.bottom) +
             ", " + std::to_string(pad.left) + ", " + std::to_string(pad.right) + ")";
    case Padding::Mode::causal: return "ctnn::Padding::causal";
    case Padding::Mode::valid: break;
  }
  return "ctnn::Padding::valid";
}
// "valid", "same", "same_lower" or "pads 1,0,1,0" (top, bottom, left, right).
inline std::string padding_config(Padding pad) {
  switch (pad.mode) {
    case Padding::Mode::same: return "same";
    case Padding::Mode::same_lower: return "same_lower";
    case Padding::Mode::explicit_pads:
      return "pads " + std::to_string(pad.top) + "," + std::to_string(pad.bottom) + "," +
             std::to_string(pad.left) + "," + std::to_string(pad.right);
    case Padding::Mode::causal: return "causal";
    case Padding::Mode::valid: break;
  }
  return "valid";
}
// "3x3 stride 1 valid": a window's settings, for a model's topology string (io/model_file.hpp).
// A dilation other than 1 is appended (" dilation 2"), so older topology strings are unchanged.
inline std::string window_config(std::size_t kh, std::size_t kw, std::size_t stride, Padding pad,
                                 std::size_t dilation = 1) {
  std::string s = std::to_string(kh) + "x" + std::to_string(kw) + " stride " +
                  std::to_string(stride) + " " + padding_config(pad);
  if (dilation != 1) s += " dilation " + std::to_string(dilation);
  return s;
}

// The extent a window of k taps with dilation d covers: d * (k - 1) + 1.
constexpr std::size_t dilated_extent(std::size_t k, std::size_t d) {
  return k == 0 || d == 0 ? 0 : d * (k - 1) + 1;
}

// Pads along one axis: before and after are the explicit pads (used only by explicit_pads).
// Number of window positions along one axis of `in` values, for a window of k taps with stride s
// and dilation d. A window larger than its padded input, or a stride, window or dilation of 0,
// yields 1 here (the layer's static_assert reports the real problem) so no size underflows or
// divides by zero into a cascade of further errors.
constexpr std::size_t window_out(std::size_t in, std::size_t k, std::size_t stride, Padding p,
                                 std::size_t before = 0, std::size_t after = 0,
                                 std::size_t dilation = 1) {
  if (stride == 0 || k == 0 || dilation == 0) return 1;
  const std::size_t ext = dilated_extent(k, dilation);
  if (p.mode == Padding::Mode::same || p.mode == Padding::Mode::same_lower)
    return (in + stride - 1) / stride;
  const std::size_t padded = p.mode == Padding::Mode::explicit_pads ? in + before + after : in;
  return ext <= padded ? (padded - ext) / stride + 1 : 1;
}

// Zero rows/columns added before the input along one axis.
constexpr std::size_t window_pad_before(std::size_t in, std::size_t k, std::size_t stride,
                                        Padding p, std::size_t before = 0,
                                        std::size_t dilation = 1) {
  if (p.mode == Padding::Mode::valid) return 0;
  if (p.mode == Padding::Mode::explicit_pads) return before;
  const std::size_t out = window_out(in, k, stride, p, 0, 0, dilation);
  const std::size_t needed = (out - 1) * stride + dilated_extent(k, dilation);
  const std::size_t total = needed > in ? needed - in : 0;
  return p.mode == Padding::Mode::same ? total / 2 : (total + 1) / 2;
}

// Geometry of a 2-D window sweep over an H x W x C input: KH x KW taps, stride S in both
// directions, dilation D in both directions (tap ky reads row oy*S + ky*D - pad_top).
template <std::size_t H, std::size_t W, std::size_t C, std::size_t KH, std::size_t KW,
          std::size_t S, Padding P, std::size_t D = 1>
struct Window2D {
  static constexpr std::size_t oh = window_out(H, KH, S, P, P.top, P.bottom, D),
                               ow = window_out(W, KW, S, P, P.left, P.right, D);
  static constexpr std::size_t pad_top = window_pad_before(H, KH, S, P, P.top, D);
  static constexpr std::size_t pad_left = window_pad_before(W, KW, S, P, P.left, D);
  static constexpr std::size_t dilation = D;
  // Every window fits its (padded) input: same always does; valid and explicit pads need the
  // dilated window to fit.
  static constexpr bool fits =
      P.mode == Padding::Mode::same || P.mode == Padding::Mode::same_lower ||
      (dilated_extent(KH, D) <=
           H + (P.mode == Padding::Mode::explicit_pads ? P.top + P.bottom : 0) &&
       dilated_extent(KW, D) <= W + (P.mode == Padding::Mode::explicit_pads ? P.left + P.right : 0));

  // Calls f(tap, input pixel) for each tap of window (oy, ox) that lies inside the input, taps in
  // row-major order (tap = ky * KW + kx, pixel = iy * W + ix).
  template <class F>
  static void for_taps(std::size_t oy, std::size_t ox, F&& f) {
    for (std::size_t ky = 0; ky < KH; ++ky) {
      const std::ptrdiff_t iy = std::ptrdiff_t(oy * S + ky * D) - std::ptrdiff_t(pad_top);
      if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
      for (std::size_t kx = 0; kx < KW; ++kx) {
        const std::ptrdiff_t ix = std::ptrdiff_t(ox * S + kx * D) - std::ptrdiff_t(pad_left);
        if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
        f(ky * KW + kx, std::size_t(iy) * W + std::size_t(ix));
      }
    }
  }
};

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/layers/spatial.hpp ----

namespace ctnn {
namespace detail {

// Rows per gemm_nt call when an input gradient dX = dY W^T is computed for `positions` rows: at
// most 32 (gemm_nt's own row block) and small enough that the call's vector accumulators (rows x
// K vectors of the widest target) take no more scratch than the rows' patches themselves. Each
// element's sum runs over the filters alone, so the split does not change any result.
template <class T>
constexpr std::size_t nt_chunk_rows(std::size_t positions) {
  const std::size_t r = positions / (HWY_MAX_BYTES / sizeof(T));
  return r < 1 ? 1 : r > kernels::kGemmNtRows ? kernels::kGemmNtRows : r;
}

// C[M x N] = A[M x K] B[N x K]^T in calls of at most R rows, with accumulators `acc` of
// kernels::gemm_nt_scratch<T>(R, N) elements.
template <std::size_t R, class T>
void gemm_nt_chunked(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda,
                     const T* B, std::size_t ldb, T* C, std::size_t ldc, T* acc) {
  for (std::size_t m0 = 0; m0 < M; m0 += R)
    kernels::gemm_nt(M - m0 < R ? M - m0 : R, N, K, A + m0 * lda, lda, B, ldb, C + m0 * ldc, ldc,
                     static_cast<const T*>(nullptr), kernels::Epilogue::none, acc);
}

// The computation of a convolution over an H x W x C image, shared by Conv2D and Conv1D (a
// 1 x Steps image). Shapes are set by the layer that derives from it.
template <class T, std::size_t H_, std::size_t W_, std::size_t C_, std::size_t Filters,
          std::size_t KH, std::size_t KW, std::size_t Stride, Padding Pad, std::size_t Dilation,
          std::size_t Groups, class KernelInit, class BiasInit>
struct ConvBody {
  static constexpr std::size_t H = H_, W = W_, C = C_;
  using geom = Window2D<H, W, C, KH, KW, Stride, Pad, Dilation>;
  static constexpr std::size_t in_size = H * W * C;
  static constexpr std::size_t out_size = geom::oh * geom::ow * Filters;
  static constexpr std::size_t positions = geom::oh * geom::ow;
  static constexpr std::size_t groups = Groups, dilation = Dilation;
  static constexpr std::size_t group_channels = Groups == 0 ? 1 : C / Groups;
  static constexpr std::size_t group_filters = Groups == 0 ? 1 : Filters / Groups;
  static constexpr std::size_t group_patch = KH * KW * group_channels;  // one group's GEMM K
  static constexpr std::size_t patch = group_patch * Groups;            // a row of patches
  static constexpr std::size_t weights = group_patch * Filters;
  static constexpr std::size_t param_count = weights + Filters;

  // Scratch for a batch of n: the patches of all n samples back to back (so the weight-gradient
  // GEMM reads them as one matrix), then, from the next 64-byte line, each sample's buffer of
  // input-gradient rows (dx_rows rows of patch gradients, scattered into dx before the next
  // rows) and, for a small layer, its weight-gradient copy. Per sample: patches + rows + copy +
  // one line of slack for the rounding between the two regions. No parameter gradient.
  static constexpr std::size_t kLine = 64 / sizeof(T);
  static constexpr std::size_t line_up(std::size_t v) { return (v + kLine - 1) / kLine * kLine; }
  static constexpr std::size_t patch_floats = positions * patch;
  static constexpr std::size_t dx_rows = positions < 48 ? positions : 48;  // 4 x 12, 8 x 6 rows
  static constexpr std::size_t rows_floats = line_up(dx_rows * patch);
  // A layer whose gradient is no larger than one sample's patches (the seed's 320 against 6,084)
  // keeps one per sample after its rows buffer and sums them in sample order, samples in
  // parallel: measured 112 against 61 GFLOP/s for the one-GEMM path at the seed shape (2 threads,
  // Zen 5), and bitwise the results of before. Larger layers take the one GEMM: their scratch
  // never holds a gradient copy larger than the patches.
  static constexpr bool per_sample_grad = Groups == 1 && param_count <= patch_floats;
  static constexpr std::size_t grad_floats = per_sample_grad ? line_up(param_count) : 0;
  // A sample's weight gradient is the product of its patches and dy over the positions. With
  // more taps than filters (ResNet-8's 16-filter 3x3 layers: 144 against 16) it is taken as
  // dW^T = dy^T P ([Filters x patch], vectorized along the 144 taps) and added transposed:
  // dy P^T's [patch x Filters] would be one vector wide, a tile that loads more than it
  // multiplies (that layer's weight gradient for a batch of 32 went from 1,108 to about 750 us
  // with gemm_nn's short last tile, in a training step at 2 threads on Zen 5).
  static constexpr bool transposed_grad = patch > Filters;
  static constexpr std::size_t im2col_scratch = patch_floats + rows_floats + grad_floats + kLine;

  // Winograd F(m x m, 3x3), m = 2 or 4: th x tw tiles of m x m outputs, xis = (m + 2)^2 transformed
  // positions. Scratch for a batch of n: V [xis][n][tiles][C] (kept for backward, then the input
  // gradient's dV), M [xis][n][tiles][F] (then dM), U [xis][C][F] and one more [xis][C][F] (dU,
  // then U transposed). The two shared matrices count in every sample's share, so the path is taken
  // only where they are no larger than one sample's V and M (not for 64 filters on 7x7, whose
  // im2col scratch is smaller). F(4x4) where the output is a multiple of 4 on both sides and its
  // matrices fit so (ResNet-8's 28 x 28 layers: 49 tiles x 36 against 196 x 16 multiplications and
  // transformed values per channel pair; forward and backward of a batch of 32 at one thread on Zen
  // 5, 1.04-1.16 ms against 1.64-1.84 for F(2x2)), F(2x2) elsewhere (at 14 x 14, 16 tiles of F(4x4)
  // compute 256 outputs for 196: 1.25-1.26 ms against 1.06-1.09, the shared matrices' limit aside).
  static constexpr std::size_t wg_tiles(std::size_t m) {
    return (geom::oh + m - 1) / m * ((geom::ow + m - 1) / m);
  }
  static constexpr bool wg_fits(std::size_t m) {  // shared matrices no larger than V and M
    return 2 * (m + 2) * (m + 2) * C * Filters <= (m + 2) * (m + 2) * wg_tiles(m) * (C + Filters);
  }
  static constexpr std::size_t wg_m =
      geom::oh % 4 == 0 && geom::ow % 4 == 0 && wg_fits(4) ? 4 : 2;
  static constexpr std::size_t xis = (wg_m + 2) * (wg_m + 2);
  static constexpr std::size_t th = (geom::oh + wg_m - 1) / wg_m,
                               tw = (geom::ow + wg_m - 1) / wg_m, tiles = th * tw;
  static constexpr std::size_t wg_sample = xis * tiles * (C + Filters);
  static constexpr std::size_t wg_shared = 2 * xis * C * Filters;
  static constexpr bool winograd = KH == 3 && KW == 3 && Stride == 1 && Dilation == 1 &&
                                   Groups == 1 && C >= 8 && wg_shared <= wg_sample;
  static constexpr std::size_t scratch_per_sample =
      winograd ? wg_sample + wg_shared : im2col_scratch;
  static T* rows_region(T* scratch, std::size_t n, std::size_t s) {
    return scratch + line_up(n * patch_floats) + s * (rows_floats + grad_floats);
  }
  static T* grad_region(T* scratch, std::size_t n, std::size_t s) {
    return rows_region(scratch, n, s) + rows_floats;
  }
  static constexpr std::size_t kWorkPerSample = positions * patch * group_filters;

  static void init(T* p, Rng& rng) {
    KernelInit::fill(p, weights, group_patch, KH * KW * Filters, rng);
    BiasInit::fill(p + weights, Filters, group_patch, KH * KW * Filters, rng);
  }

  // patches[pos][g][(ky*KW + kx)*C/G + c] = x[iy][ix][g*C/G + c] at that (dilated) tap, or 0 in
  // the padding. With one group, [pos][(ky*KW + kx)*C + c], the int8 path's layout too.
  static void im2col(const T* x, T* patches) {
    for (std::size_t oy = 0; oy < geom::oh; ++oy)
      for (std::size_t ox = 0; ox < geom::ow; ++ox) {
        T* row = patches + (oy * geom::ow + ox) * patch;
        for (std::size_t ky = 0; ky < KH; ++ky) {
          const std::ptrdiff_t iy =
              std::ptrdiff_t(oy * Stride + ky * Dilation) - std::ptrdiff_t(geom::pad_top);
          for (std::size_t kx = 0; kx < KW; ++kx) {
            const std::ptrdiff_t ix =
                std::ptrdiff_t(ox * Stride + kx * Dilation) - std::ptrdiff_t(geom::pad_left);
            const bool inside = iy >= 0 && ix >= 0 && iy < std::ptrdiff_t(H) && ix < std::ptrdiff_t(W);
            const T* src = inside ? x + (std::size_t(iy) * W + std::size_t(ix)) * C : nullptr;
            for (std::size_t g = 0; g < Groups; ++g) {
              T* dst = row + g * group_patch + (ky * KW + kx) * group_channels;
              if (!inside)
                for (std::size_t c = 0; c < group_channels; ++c) dst[c] = T(0);
              else
                std::memcpy(dst, src + g * group_channels, group_channels * sizeof(T));
            }
          }
        }
      }
  }

  // The adjoint of im2col for output positions [r0, r1): adds each patch gradient (rows of
  // dpatches, the first for position r0) into dx at the taps it came from.
  static void col2im_add(const T* dpatches, std::size_t r0, std::size_t r1, T* dx) {
    kernels::col2im_add(r1 - r0, patch, C, Groups, group_patch, dpatches,
                        [r0](std::size_t r, auto&& f) {
                          geom::for_taps((r0 + r) / geom::ow, (r0 + r) % geom::ow, f);
                        },
                        dx);
  }

  // The transforms of F(wg_m x wg_m, 3x3) (kernels/winograd.hpp).
  template <class... A>
  static void wg_weights(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_weights(a...);
    else kernels::winograd_f23_weights(a...);
  }
  template <class... A>
  static void wg_weights_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_weights_adjoint(a...);
    else kernels::winograd_f23_weights_adjoint(a...);
  }
  template <class... A>
  static void wg_input(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_input(a...);
    else kernels::winograd_f23_input(a...);
  }
  template <class... A>
  static void wg_input_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_input_adjoint(a...);
    else kernels::winograd_f23_input_adjoint(a...);
  }
  template <class... A>
  static void wg_output(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_output(a...);
    else kernels::winograd_f23_output(a...);
  }
  template <class... A>
  static void wg_output_adjoint(A... a) {
    if constexpr (wg_m == 4) kernels::winograd_f43_output_adjoint(a...);
    else kernels::winograd_f23_output_adjoint(a...);
  }

  // Forward in one pass over the samples: each sample's tiles, its xis GEMMs (tiles x C by
  // C x F) and its outputs.
  static void winograd_forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                               kernels::Epilogue act) {
    const std::size_t vs = n * tiles * C, ms = n * tiles * Filters;
    T* V = scratch;
    T* M = V + xis * vs;
    T* U = M + xis * ms;
    wg_weights(C, Filters, p, U);
    parallel_for(n, [&](std::size_t s) {
      T* Vs = V + s * tiles * C;
      T* Ms = M + s * tiles * Filters;
      wg_input(H, W, C, geom::pad_top, geom::pad_left, th, tw, x + s * in_size, Vs, vs);
      for (std::size_t xi = 0; xi < xis; ++xi)
        kernels::gemm_nn_fixed<Filters>(tiles, C, Vs + xi * vs, kernels::kFixed<C>,
                                        kernels::kFixed<1>, U + xi * C * Filters, Filters,
                                        Ms + xi * ms, Filters);
      wg_output(geom::oh, geom::ow, Filters, th, tw, Ms, ms, p + weights, act, y + s * out_size);
    }, n * kWorkPerSample >= kParallelWork);
  }

  // Backward in three passes: each sample's dM; dU = V^T dM for each xi over all samples' tiles
  // in (sample, tile) order, then dW and db; each sample's dV = dM U^T (into its V, no longer
  // needed) and dx.
  static void winograd_backward(const T* p, const T* dy, T* dx, T* dp, std::size_t n,
                                T* scratch) {
    const std::size_t vs = n * tiles * C, ms = n * tiles * Filters;
    T* V = scratch;
    T* dM = V + xis * vs;
    T* U = dM + xis * ms;
    T* B = U + xis * C * Filters;
    const bool par = n * kWorkPerSample >= kParallelWork;
    parallel_for(n, [&](std::size_t s) {
      wg_output_adjoint(geom::oh, geom::ow, Filters, th, tw, dy + s * out_size,
                        dM + s * tiles * Filters, ms);
    }, par);
    parallel_for(xis, [&](std::size_t xi) {
      kernels::gemm_nn_fixed<Filters>(C, n * tiles, V + xi * vs, kernels::kFixed<1>,
                                      kernels::kFixed<C>, dM + xi * ms, Filters,
                                      B + xi * C * Filters, Filters);
    }, par);
    wg_weights_adjoint(C, Filters, B, dp);
    kernels::sum_rows(n * positions, Filters, dy, dp + weights);
    if (!dx) return;
    wg_weights(C, Filters, p, U);
    for (std::size_t xi = 0; xi < xis; ++xi)  // B = U^T, [xis][F][C]
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t f = 0; f < Filters; ++f)
          B[(xi * Filters + f) * C + c] = U[(xi * C + c) * Filters + f];
    parallel_for(n, [&](std::size_t s) {
      T* dVs = V + s * tiles * C;
      const T* dMs = dM + s * tiles * Filters;
      for (std::size_t xi = 0; xi < xis; ++xi)
        kernels::gemm_nn_fixed<C>(tiles, Filters, dMs + xi * ms, kernels::kFixed<Filters>,
                                  kernels::kFixed<1>, B + xi * Filters * C, C, dVs + xi * vs, C);
      T* dxs = dx + s * in_size;
      for (std::size_t i = 0; i < in_size; ++i) dxs[i] = T(0);
      wg_input_adjoint(H, W, C, geom::pad_top, geom::pad_left, th, tw, dVs, vs, dxs);
    }, par);
  }

  static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                      kernels::Epilogue act) {
    if constexpr (winograd) {
      winograd_forward(p, x, y, n, scratch, act);
      return;
    }
    parallel_for(n, [&](std::size_t s) {
      T* patches = scratch + s * patch_floats;
      im2col(x + s * in_size, patches);
      for (std::size_t g = 0; g < Groups; ++g)
        kernels::gemm_nn(positions, group_filters, group_patch, patches + g * group_patch, patch,
                         1, p + g * group_filters, Filters, y + s * out_size + g * group_filters,
                         Filters, false, p + weights + g * group_filters, act);
    }, n * kWorkPerSample >= kParallelWork);
  }

  static void backward(const T* p, const T* dy, T* dx, T* dp, std::size_t n, T* scratch) {
    if constexpr (winograd) {
      winograd_backward(p, dy, dx, dp, n, scratch);
      return;
    }
    // The input gradient first, while dp is free: it holds W transposed per group,
    // wt[f][j] = W[j][f] ([Filters][group_patch]), so that dpatches_g = dy_g wt_g is a gemm_nn
    // vectorized along the patch (a gemm_nt would reduce along the few filters). dx_rows rows at a
    // time go to the sample's rows buffer and are scattered into dx; the patches stay intact.
    if (dx) {
      T* wt = dp;
      for (std::size_t j = 0; j < group_patch; ++j)
        for (std::size_t f = 0; f < Filters; ++f) wt[f * group_patch + j] = p[j * Filters + f];
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * out_size;
        T* dxs = dx + s * in_size;
        T* rows = rows_region(scratch, n, s);
        for (std::size_t i = 0; i < in_size; ++i) dxs[i] = T(0);
        for (std::size_t r0 = 0; r0 < positions; r0 += dx_rows) {
          const std::size_t m = positions - r0 < dx_rows ? positions - r0 : dx_rows;
          for (std::size_t g = 0; g < Groups; ++g)
            kernels::gemm_nn(m, group_patch, group_filters, dys + r0 * Filters + g * group_filters,
                             Filters, 1, wt + g * group_filters * group_patch, group_patch,
                             rows + g * group_patch, patch, false, static_cast<const T*>(nullptr),
                             kernels::Epilogue::none);
          col2im_add(rows, r0, r0 + m, dxs);
        }
      }, n * kWorkPerSample >= kParallelWork);
    }
    // dW_g[group_patch x group_filters] = patches_g^T dy_g over all n * positions rows at once,
    // summed in row (sample, then position) order; db = column sums of dy, in the same order.
    // Both overwrite dp (and so wt).
    if constexpr (per_sample_grad) {
      parallel_for(n, [&](std::size_t s) {
        T* dps = grad_region(scratch, n, s);
        const T* dys = dy + s * out_size;
        if constexpr (transposed_grad)
          kernels::gemm_nn(Filters, patch, positions, dys, 1, Filters, scratch + s * patch_floats,
                           patch, dps, patch, false, static_cast<const T*>(nullptr),
                           kernels::Epilogue::none);
        else
          kernels::gemm_nn(patch, Filters, positions, scratch + s * patch_floats, 1, patch, dys,
                           Filters, dps, Filters, false, static_cast<const T*>(nullptr),
                           kernels::Epilogue::none);
        kernels::sum_rows(positions, Filters, dys, dps + weights);
      }, n * kWorkPerSample >= kParallelWork);
      for (std::size_t i = 0; i < param_count; ++i) dp[i] = T(0);
      for (std::size_t s = 0; s < n; ++s) {
        const T* dps = grad_region(scratch, n, s);
        if constexpr (transposed_grad) {
          for (std::size_t j = 0; j < patch; ++j)
            for (std::size_t f = 0; f < Filters; ++f) dp[j * Filters + f] += dps[f * patch + j];
          for (std::size_t f = 0; f < Filters; ++f) dp[weights + f] += dps[weights + f];
        } else {
          for (std::size_t i = 0; i < param_count; ++i) dp[i] += dps[i];
        }
      }
    } else {
      for (std::size_t g = 0; g < Groups; ++g)
        kernels::gemm_nn(group_patch, group_filters, n * positions, scratch + g * group_patch, 1,
                         patch, dy + g * group_filters, Filters, dp + g * group_filters, Filters,
                         false, static_cast<const T*>(nullptr), kernels::Epilogue::none);
      kernels::sum_rows(n * positions, Filters, dy, dp + weights);
    }
  }

  // ", KernelInit, BiasInit, Dilation, Groups" for spec(), or the short form while both are 1.
  static std::string tail_spec() {
    if (Dilation == 1 && Groups == 1) return detail::init_spec<KernelInit, BiasInit>();
    return ", " + std::string(KernelInit::spec) + ", " + std::string(BiasInit::spec) + ", " +
           std::to_string(Dilation) + ", " + std::to_string(Groups);
  }
};

}  // namespace detail

template <std::size_t Filters, std::size_t KH, std::size_t KW, std::size_t Stride = 1,
          Padding Pad = Padding::valid, class KernelInit = init::GlorotUniform,
          class BiasInit = init::Zeros, std::size_t Dilation = 1, std::size_t Groups = 1>
struct Conv2D {
  static_assert(Filters >= 1 && KH >= 1 && KW >= 1 && Stride >= 1,
                "Conv2D needs at least one filter, a kernel of at least 1x1 and a stride >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Conv2D's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");
  static_assert(Dilation >= 1 && Groups >= 1, "Conv2D needs a dilation >= 1 and groups >= 1.");
  static_assert(Filters % (Groups == 0 ? 1 : Groups) == 0,
                "Conv2D's Filters must be a multiple of its Groups (each group has as many "
                "filters).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a Conv2D takes valid, same, same_lower or "
                "pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind
      : detail::ConvBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                         (In::rank > 2 ? In::dims[2] : 1), Filters, KH, KW, Stride, Pad, Dilation,
                         Groups, KernelInit, BiasInit> {
    using body = detail::ConvBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                  (In::rank > 2 ? In::dims[2] : 1), Filters, KH, KW, Stride, Pad,
                                  Dilation, Groups, KernelInit, BiasInit>;
    static_assert(In::rank == 3,
                  "Conv2D needs an image input of rank 3 (height, width, channels): use "
                  "Input<H, W, C> (the shapes are in bind<...> above).");
    static_assert(In::rank != 3 || body::C % Groups == 0,
                  "Conv2D's input channels must be a multiple of its Groups (each group sees "
                  "C / Groups channels; the shapes are in bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "Conv2D's kernel is larger than its input with valid padding: use a smaller "
                  "kernel or Padding::same (the shapes are in bind<...> above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, Filters>;
    static constexpr std::string_view name = "Conv2D";
    static constexpr LayerKind kind = LayerKind::conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (Groups != 1 ? " groups " + std::to_string(Groups) : std::string());
    }
    static std::string spec() {  // the layer as C++ source, for exported models
      return "ctnn::Conv2D<" + std::to_string(Filters) + ", " + std::to_string(KH) + ", " +
             std::to_string(KW) + ", " + std::to_string(Stride) + ", " + detail::padding_spec(Pad) +
             body::tail_spec() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      body::forward(p, x, y, n, scratch, act);
    }
    static void backward(const T* p, const T*, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T* scratch, const PassContext&) {
      body::backward(p, dy, dx, dp, n, scratch);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/conv2d.hpp ----
// ---- begin ctnn/layers/dropout.hpp ----
// ctnn/layers/dropout.hpp: Dropout<Rate>, inverted dropout as in Keras.
//
// Represents, in training, y = x * mask / (1 - Rate) with each mask element 0 with probability
// Rate; in inference, y = x. Requires 0 <= Rate < 1. Output shape: the input's. No parameters.
// The mask of sample s in a step comes from Rng(step seed, s) alone, so a seeded run draws the same
// masks at any thread count; it is kept in scratch (already scaled) for the backward pass.
#include <cstring>
#include <string>

// ---- begin ctnn/layers/param_free.hpp ----
// ctnn/layers/param_free.hpp: the common part of layers without parameters whose output has the
// input's shape (activations, Dropout). A bound layer derives from it and adds name, forward and
// backward.
#include <cstddef>


namespace ctnn::detail {

template <ShapeType In, class T, std::size_t ScratchPerSample = 0>
struct ParamFree {
  using value_type = T;
  using input_shape = In;
  using output_shape = In;
  static constexpr std::size_t param_count = 0;
  static constexpr std::size_t scratch_per_sample = ScratchPerSample;
  static constexpr bool fuses_relu = false;
  static constexpr bool is_view = false;
  static void init(T*, Rng&) {}
};

}  // namespace ctnn::detail
// ---- end ctnn/layers/param_free.hpp ----

namespace ctnn {

template <Real Rate>
struct Dropout {
  static_assert(Rate.value() >= 0.0 && Rate.value() < 1.0, "Dropout's rate must be in [0, 1).");

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, In::size> {
    static constexpr std::string_view name = "Dropout";
    static constexpr LayerKind kind = LayerKind::dropout;
    static std::string config() { return "rate " + std::to_string(Rate.value()); }
    static std::string spec() { return "ctnn::Dropout<" + std::to_string(Rate.value()) + ">"; }
    static constexpr double rate = Rate.value();

    static void forward(const T*, const T* x, T* y, std::size_t n, T* mask,
                        const PassContext& ctx) {
      if (!ctx.training || rate == 0.0) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < n * In::size; ++i) mask[i] = T(1);
        return;
      }
      const T keep_scale = static_cast<T>(1.0 / (1.0 - rate));
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0x9E3779B97F4A7C15ull + s);
        T* ms = mask + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) {
          ms[i] = rng.uniform01() < rate ? T(0) : keep_scale;
          y[s * In::size + i] = x[s * In::size + i] * ms[i];
        }
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* mask, const PassContext&) {
      if (dx)
        for (std::size_t i = 0; i < n * In::size; ++i) dx[i] = dy[i] * mask[i];
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/dropout.hpp ----
// ---- begin ctnn/layers/flatten.hpp ----
// ctnn/layers/flatten.hpp: Flatten, the input seen as a vector (row-major, channels last, as
// Keras flattens). Output shape: Shape<In::size>. No parameters, no work: Sequential hands the
// same buffer on, forward and backward (is_view).
#include <cstring>


namespace ctnn {

struct Flatten {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    using output_shape = Shape<In::size>;
    static constexpr std::string_view name = "Flatten";
    static constexpr LayerKind kind = LayerKind::flatten;
    static constexpr bool is_view = true;
    // Used only when the layer runs on its own (tests); inside a model no copy is made.
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n, T*,
                         const PassContext&) {
      if (dx && dx != dy) std::memcpy(dx, dy, n * In::size * sizeof(T));
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/flatten.hpp ----
// ---- begin ctnn/layers/leaky_relu.hpp ----
// ctnn/layers/leaky_relu.hpp: LeakyReLU<Alpha>, y = x for x > 0, else Alpha * x.
// Alpha defaults to 0.3 as in Keras (PyTorch's default is 0.01). Output shape: the input's.
#include <string>


namespace ctnn {

template <Real Alpha = 0.3>
struct LeakyReLU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "LeakyReLU";
    static constexpr LayerKind kind = LayerKind::leaky_relu;
    static std::string config() { return "alpha " + std::to_string(Alpha.value()); }
    static std::string spec() { return "ctnn::LeakyReLU<" + std::to_string(Alpha.value()) + ">"; }
    static constexpr T alpha = static_cast<T>(Alpha.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::leaky_relu_forward(n * In::size, x, y, alpha);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::leaky_relu_backward(n * In::size, x, dy, dx, alpha);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/leaky_relu.hpp ----
// ---- begin ctnn/layers/pooling.hpp ----
// ctnn/layers/pooling.hpp: MaxPool2D<PH, PW, Stride, Pad, Dilation> and
// AvgPool2D<PH, PW, Stride, Pad, Dilation, CountIncludePad>.
//
// Represents, for each window of PH x PW taps (stride Stride, default the pool size as in Keras;
// tap (ky, kx) of window (oy, ox) reads row oy*Stride + ky*Dilation - pad_top and column
// ox*Stride + kx*Dilation - pad_left, as ONNX's dilations) and each channel, the maximum
// (MaxPool2D) or mean (AvgPool2D) of the input.
// Requires: a rank-3 input; for valid padding or explicit pads, a (dilated) pool no larger than the
// padded input; every window must overlap the input (pads smaller than the window, as PyTorch asks).
// Output shape: Shape<OH, OW, C> (layers/spatial.hpp: Padding::valid, same, same_lower,
// pads(t, b, l, r)). No parameters.
// Padded positions are ignored by the max (as if -inf, like PyTorch and ONNX). The mean divides
// by the window's taps inside the input (Keras's behaviour, ONNX's count_include_pad = 0), or,
// with CountIncludePad = true, by all PH * PW taps, the padded zeros counted (ONNX's
// count_include_pad = 1, PyTorch's default).
// A NaN in a window makes its max NaN (as in PyTorch; a plain `v > max` would skip it).
// Backward: max routes each gradient to the first maximal input of its window (the first NaN for
// a NaN max; recomputed from the input, so nothing is stored); average spreads it evenly.
// Overlapping windows add up.
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {
namespace detail {

enum class PoolOp { max, average };

// Whether each of the `out` windows along one axis (k taps, stride s, dilation d, `before`
// padded positions ahead of the input) has at least one tap inside the input of `in` positions.
constexpr bool windows_overlap_input(std::size_t in, std::size_t k, std::size_t s, std::size_t d,
                                     std::size_t before, std::size_t out) {
  for (std::size_t o = 0; o < out; ++o) {
    bool any = false;
    for (std::size_t t = 0; t < k && !any; ++t) {
      const std::size_t pos = o * s + t * d;  // in padded coordinates
      any = pos >= before && pos - before < in;
    }
    if (!any) return false;
  }
  return true;
}

template <PoolOp Op, std::size_t PH, std::size_t PW, std::size_t Stride, Padding Pad,
          std::size_t Dilation = 1, bool CountIncludePad = false>
struct Pool2D {
  static_assert(PH >= 1 && PW >= 1, "A pooling window must be at least 1x1.");
  static_assert(Dilation >= 1, "A pooling layer's dilation must be at least 1.");
  static constexpr std::size_t S = Stride == 0 ? PH : Stride;

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "MaxPool2D/AvgPool2D need an image input of rank 3 (height, width, channels) "
                  "(the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    using geom = Window2D<H, W, C, PH, PW, S, Pad, Dilation>;
    static_assert(In::rank != 3 || geom::fits,
                  "The pooling window is larger than its input with valid padding (the shapes "
                  "are in bind<...> above).");
    static_assert(In::rank != 3 || !geom::fits ||
                      (windows_overlap_input(H, PH, S, Dilation, geom::pad_top, geom::oh) &&
                       windows_overlap_input(W, PW, S, Dilation, geom::pad_left, geom::ow)),
                  "A pooling window lies entirely in the padding: make each explicit pad smaller "
                  "than the (dilated) pool (the shapes are in bind<...> above).");
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = Op == PoolOp::max ? "MaxPool2D" : "AvgPool2D";
    static constexpr LayerKind kind =
        Op == PoolOp::max ? LayerKind::max_pool2d : LayerKind::avg_pool2d;
    // Unchanged text for dilation 1 without count_include_pad (older model files and exports).
    static std::string config() {
      return window_config(PH, PW, S, Pad, Dilation) +
             (CountIncludePad ? " count_include_pad" : "");
    }
    static std::string spec() {
      std::string s = std::string("ctnn::") + std::string(name) + "<" + std::to_string(PH) + ", " +
                      std::to_string(PW) + ", " + std::to_string(S) + ", " + padding_spec(Pad);
      if (Dilation != 1 || CountIncludePad) s += ", " + std::to_string(Dilation);
      if (CountIncludePad) s += ", true";
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    // Calls f(input offset) for each real input position of window (oy, ox), channel 0.
    template <class F>
    static void for_window(std::size_t oy, std::size_t ox, F&& f) {
      for (std::size_t ky = 0; ky < PH; ++ky) {
        const std::ptrdiff_t iy =
            std::ptrdiff_t(oy * S + ky * Dilation) - std::ptrdiff_t(geom::pad_top);
        if (iy < 0 || iy >= std::ptrdiff_t(H)) continue;
        for (std::size_t kx = 0; kx < PW; ++kx) {
          const std::ptrdiff_t ix =
              std::ptrdiff_t(ox * S + kx * Dilation) - std::ptrdiff_t(geom::pad_left);
          if (ix < 0 || ix >= std::ptrdiff_t(W)) continue;
          f((std::size_t(iy) * W + std::size_t(ix)) * C);
        }
      }
    }

    // The mean's divisor for a window with `count` taps in the input.
    static constexpr std::size_t divisor(std::size_t count) {
      return CountIncludePad ? PH * PW : count;
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* ys = y + s * output_shape::size;
        for (std::size_t oy = 0; oy < geom::oh; ++oy)
          for (std::size_t ox = 0; ox < geom::ow; ++ox) {
            T* out = ys + (oy * geom::ow + ox) * C;
            for (std::size_t c = 0; c < C; ++c) {
              T acc = T(0);
              std::size_t count = 0;
              for_window(oy, ox, [&](std::size_t off) {
                const T v = xs[off + c];
                // v != v: a NaN wins and stays (a NaN acc is never replaced), as in PyTorch.
                if constexpr (Op == PoolOp::max) acc = (count == 0 || v > acc || v != v) ? v : acc;
                else acc += v;
                ++count;
              });
              out[c] = Op == PoolOp::max ? acc : acc / T(divisor(count));
            }
          }
      }, n * In::size >= kParallelWork);
    }

    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* dxs = dx + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) dxs[i] = T(0);
        for (std::size_t oy = 0; oy < geom::oh; ++oy)
          for (std::size_t ox = 0; ox < geom::ow; ++ox) {
            const std::size_t o = (s * geom::oh * geom::ow + oy * geom::ow + ox) * C;
            for (std::size_t c = 0; c < C; ++c) {
              if constexpr (Op == PoolOp::max) {
                bool done = false;
                for_window(oy, ox, [&](std::size_t off) {
                  const T v = xs[off + c], m = y[o + c];
                  if (!done && (v == m || (v != v && m != m))) {  // a NaN max: the first NaN
                    dxs[off + c] += dy[o + c];
                    done = true;
                  }
                });
              } else {
                std::size_t count = 0;
                for_window(oy, ox, [&](std::size_t) { ++count; });
                const T g = dy[o + c] / T(divisor(count));
                for_window(oy, ox, [&](std::size_t off) { dxs[off + c] += g; });
              }
            }
          }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace detail

// Stride 0 means the pool size (Keras's default).
template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid,
          std::size_t Dilation = 1>
using MaxPool2D = detail::Pool2D<detail::PoolOp::max, PH, PW, Stride, Pad, Dilation>;

template <std::size_t PH, std::size_t PW = PH, std::size_t Stride = 0, Padding Pad = Padding::valid,
          std::size_t Dilation = 1, bool CountIncludePad = false>
using AvgPool2D = detail::Pool2D<detail::PoolOp::average, PH, PW, Stride, Pad, Dilation,
                                 CountIncludePad>;

}  // namespace ctnn
// ---- end ctnn/layers/pooling.hpp ----
// ---- begin ctnn/layers/relu.hpp ----
// ctnn/layers/relu.hpp: ReLU, y = max(x, 0). Output shape: the input's. No parameters.
// After Dense or Conv2D, Sequential fuses it into their GEMM's store (see FusesRelu).

namespace ctnn {

struct ReLU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "ReLU";
    static constexpr LayerKind kind = LayerKind::relu;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::relu_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::relu_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/relu.hpp ----
// ---- begin ctnn/layers/sigmoid.hpp ----
// ctnn/layers/sigmoid.hpp: Sigmoid, y = 1 / (1 + exp(-x)). Output shape: the input's.

namespace ctnn {

struct Sigmoid {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Sigmoid";
    static constexpr LayerKind kind = LayerKind::sigmoid;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::sigmoid_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::sigmoid_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/sigmoid.hpp ----
// ---- begin ctnn/layers/softmax.hpp ----
// ctnn/layers/softmax.hpp: Softmax over the last (only) axis of a flat input.
// Requires: a rank-1 input. Output shape: the input's. No parameters.
// Followed by a cross-entropy loss, training skips this backward pass: the loss hands the
// gradient with respect to the logits (p - y) straight to the layer before (see train/).
// ---- begin ctnn/kernels/softmax.hpp ----
// ctnn/kernels/softmax.hpp: row-wise softmax and its backward pass.
#include <cstddef>

#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[r] = exp(x[r] - max(x[r])) / sum(...) for each of `rows` rows of `cols` values. Subtracting
// the row maximum keeps exp in range; the result is the same softmax.
template <class T>
void softmax_forward(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x,
                     T* HWY_RESTRICT y) {
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const std::size_t L = hn::Lanes(d);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = xr[0];
    std::size_t j = 0;
    if (cols >= L) {
      auto m = hn::LoadU(d, xr);
      for (j = L; j + L <= cols; j += L) m = hn::Max(m, hn::LoadU(d, xr + j));
      mx = hn::GetLane(hn::MaxOfLanes(d, m));
    }
    for (; j < cols; ++j) mx = xr[j] > mx ? xr[j] : mx;
    auto sum = hn::Zero(d);
    T sum1 = 0;
    j = 0;
    for (; j + L <= cols; j += L) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, xr + j), hn::Set(d, mx)));
      hn::StoreU(e, d, yr + j);
      sum = hn::Add(sum, e);
    }
    for (; j < cols; ++j) {
      const auto e = hn::Exp(d1, hn::Sub(hn::LoadU(d1, xr + j), hn::Set(d1, mx)));
      hn::StoreU(e, d1, yr + j);
      sum1 += hn::GetLane(e);
    }
    const T inv = T(1) / (hn::GetLane(hn::SumOfLanes(d, sum)) + sum1);
    for (j = 0; j + L <= cols; j += L) hn::StoreU(hn::Mul(hn::LoadU(d, yr + j), hn::Set(d, inv)), d, yr + j);
    for (; j < cols; ++j) yr[j] *= inv;
  }
}

// dx = y * (dy - <dy, y>) row by row (the softmax Jacobian applied to dy).
template <class T>
void softmax_backward(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT y,
                      const T* HWY_RESTRICT dy, T* HWY_RESTRICT dx) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T dot = 0;
    for (std::size_t j = 0; j < cols; ++j) dot += yr[j] * gr[j];
    for (std::size_t j = 0; j < cols; ++j) dx[r * cols + j] = yr[j] * (gr[j] - dot);
  }
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::softmax_backward;
using ctnn::HWY_NAMESPACE::softmax_forward;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/softmax.hpp ----

namespace ctnn {

struct Softmax {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static_assert(In::rank == 1,
                  "Softmax needs a flat (rank-1) input: put Flatten and a Dense before it (the "
                  "shapes are in bind<...> above).");
    static constexpr std::string_view name = "Softmax";
    static constexpr LayerKind kind = LayerKind::softmax;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::softmax_forward(n, In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::softmax_backward(n, In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/softmax.hpp ----
// ---- begin ctnn/layers/tanh.hpp ----
// ctnn/layers/tanh.hpp: Tanh, y = tanh(x). Output shape: the input's.

namespace ctnn {

struct Tanh {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Tanh";
    static constexpr LayerKind kind = LayerKind::tanh;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::tanh_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T*, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::tanh_backward(n * In::size, y, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/tanh.hpp ----
// ---- begin ctnn/layers/global_pooling.hpp ----
// ctnn/layers/global_pooling.hpp: GlobalAveragePooling2D, GlobalMaxPooling2D (H x W x C -> C) and
// GlobalAveragePooling1D, GlobalMaxPooling1D (Steps x C -> C), as Keras's (keepdims=False).
//
// Represents, for each channel c, the mean (or maximum) of the input over every position:
// y[c] = (1 / P) * sum_p x[p][c] (or max_p x[p][c]), P = H * W (or Steps).
// Requires: a rank-3 input (2D) or a rank-2 input (1D), channels last. Output shape: Shape<C>.
// No parameters.
// How: one kernel pass per sample (kernels/pooling.hpp), vectorized along the channels; each
// channel's values are combined in position order, so the result does not depend on the vector
// width or the thread count. A NaN in a channel makes its mean and its max NaN.
// Backward: the mean spreads dy[c] / P over the channel's positions; the max routes dy[c] to the
// first maximal position (the first NaN for a NaN max; found again from the input, nothing stored).
#include <cstddef>
#include <string_view>

// ---- begin ctnn/kernels/pooling.hpp ----
// ctnn/kernels/pooling.hpp: reductions over the positions of a channels-last tensor (global
// pooling): x is rows x cols (positions x channels), the result one value per column.
//
// Vectors run along the channels, contiguous in memory; each column's values are combined in row
// order, one row after another, so a result does not depend on the vector width or the thread
// count (and equals the scalar loop over rows bit for bit). Full vectors use the native tag and
// the tail a one-lane tag: the same code for both, no scalar copy of the math.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[j] = f(d, column j's accumulator over rows) for every column, the accumulator starting at
// row 0 and folding each later row r in with acc = step(d, acc, x[r][j]).
template <class T, class Step, class Finish>
HWY_INLINE void fold_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x,
                          T* HWY_RESTRICT out, Step step, Finish finish) {
  const auto one_column_block = [&](auto d, std::size_t j) {
    auto acc = hn::LoadU(d, x + j);
    for (std::size_t r = 1; r < rows; ++r) acc = step(d, acc, hn::LoadU(d, x + r * cols + j));
    hn::StoreU(finish(d, acc), d, out + j);
  };
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = cols - cols % L;  // (j + L <= cols) trips a false g++ 12 warning
  std::size_t j = 0;
  for (; j < full; j += L) one_column_block(d, j);
  const hn::CappedTag<T, 1> d1;
  for (; j < cols; ++j) one_column_block(d1, j);
}

// out[j] = (x[0][j] + x[1][j] + ... + x[rows-1][j]) / rows, summed in row order. rows >= 1.
template <class T>
void mean_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  const T count = T(rows);
  fold_rows(rows, cols, x, out, [](auto, auto acc, auto v) { return hn::Add(acc, v); },
            [count](auto d, auto acc) { return hn::Div(acc, hn::Set(d, count)); });
}

// out[j] = max over rows of x[r][j]; a NaN anywhere in the column makes it NaN (as PyTorch's
// max pooling). Not Max(acc, v): on x86 it returns the second operand when either is NaN, so a
// NaN met early would be lost. The compare + blend keeps acc unless v is greater or NaN; once acc
// is NaN, no comparison is true and it stays NaN. (IsNaN, not Ne(v, v): Highway's Ne is the
// ordered compare on x86, false for NaN.) rows >= 1.
template <class T>
void max_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  fold_rows(rows, cols, x, out,
            [](auto, auto acc, auto v) {
              return hn::IfThenElse(hn::Or(hn::Gt(v, acc), hn::IsNaN(v)), v, acc);
            },
            [](auto, auto acc) { return acc; });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::max_rows;
using ctnn::HWY_NAMESPACE::mean_rows;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/pooling.hpp ----

namespace ctnn {
namespace detail {

// Rank 3 for the 2D layers, 2 for the 1D ones.
template <PoolOp Op, std::size_t Rank>
struct GlobalPool {
  template <ShapeType In, class T>
  struct bind {
    static_assert(Rank != 3 || In::rank == 3,
                  "GlobalAveragePooling2D/GlobalMaxPooling2D need an image input of rank 3 "
                  "(height, width, channels) (the shapes are in bind<...> above).");
    static_assert(Rank != 2 || In::rank == 2,
                  "GlobalAveragePooling1D/GlobalMaxPooling1D need a sequence input of rank 2 "
                  "(steps, channels) (the shapes are in bind<...> above).");
    static constexpr std::size_t C = In::rank == Rank ? In::dims[In::rank - 1] : 1;
    static constexpr std::size_t positions = In::size / C;
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name =
        Rank == 3 ? (Op == PoolOp::max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D")
                  : (Op == PoolOp::max ? "GlobalMaxPooling1D" : "GlobalAveragePooling1D");
    static constexpr LayerKind kind =
        Rank == 3 ? (Op == PoolOp::max ? LayerKind::global_max_pool2d : LayerKind::global_avg_pool2d)
                  : (Op == PoolOp::max ? LayerKind::global_max_pool1d : LayerKind::global_avg_pool1d);
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        if constexpr (Op == PoolOp::max) kernels::max_rows(positions, C, x + s * In::size, y + s * C);
        else kernels::mean_rows(positions, C, x + s * In::size, y + s * C);
      }, n * In::size >= kParallelWork);
    }

    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * C;
        T* dxs = dx + s * In::size;
        if constexpr (Op == PoolOp::max) {
          const T* xs = x + s * In::size;
          const T* ys = y + s * C;
          for (std::size_t i = 0; i < In::size; ++i) dxs[i] = T(0);
          for (std::size_t c = 0; c < C; ++c) {
            const T m = ys[c];
            for (std::size_t p = 0; p < positions; ++p) {
              const T v = xs[p * C + c];
              if (v == m || (v != v && m != m)) {  // a NaN max: the first NaN
                dxs[p * C + c] = dys[c];
                break;
              }
            }
          }
        } else {
          for (std::size_t p = 0; p < positions; ++p)
            for (std::size_t c = 0; c < C; ++c) dxs[p * C + c] = dys[c] / T(positions);
        }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace detail

using GlobalAveragePooling2D = detail::GlobalPool<detail::PoolOp::average, 3>;
using GlobalMaxPooling2D = detail::GlobalPool<detail::PoolOp::max, 3>;
using GlobalAveragePooling1D = detail::GlobalPool<detail::PoolOp::average, 2>;
using GlobalMaxPooling1D = detail::GlobalPool<detail::PoolOp::max, 2>;

}  // namespace ctnn
// ---- end ctnn/layers/global_pooling.hpp ----
// ---- begin ctnn/layers/pooling1d.hpp ----
// ctnn/layers/pooling1d.hpp: MaxPool1D<Pool, Stride, Pad> and
// AveragePooling1D<Pool, Stride, Pad, CountIncludePad> over sequences.
//
// Represents, for each window of Pool steps (stride Stride, default the pool size as in Keras)
// and each channel, the maximum or mean of a Steps x C input: the 2-D pooling of
// layers/pooling.hpp on a 1 x Steps x C image, with the same rules (padded steps ignored by the
// max; the mean divides by the window's steps inside the input, or by Pool with CountIncludePad,
// as ONNX's count_include_pad = 1; a NaN in a window makes its max NaN).
// Requires: a rank-2 input (steps, channels); Pad is valid, same, same_lower or pads(0, 0, l, r)
// (l steps before, r after); a pool no larger than the padded input; pads smaller than the pool.
// Output shape: Shape<OutSteps, C>. No parameters.
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {
namespace detail {

template <PoolOp Op, std::size_t Pool, std::size_t Stride, Padding Pad, bool CountIncludePad>
struct Pool1D {
  static_assert(Pad.top == 0 && Pad.bottom == 0,
                "1-D pooling pads steps with the left and right of Padding::pads(t, b, l, r): "
                "top and bottom must be 0.");
  static constexpr std::size_t S = Stride == 0 ? Pool : Stride;
  using Pool2 = Pool2D<Op, 1, Pool, S, Pad, 1, CountIncludePad>;

  // The 1 x Steps x C image a Steps x C input is seen as (1 x 1 x 1 for a wrong rank, which the
  // static_assert below reports).
  template <ShapeType In>
  using image = Shape<1, In::rank == 2 ? In::dims[0] : 1, In::rank == 2 ? In::dims[1] : 1>;

  template <ShapeType In, class T>
  struct bind : Pool2::template bind<image<In>, T> {
    static_assert(In::rank == 2,
                  "MaxPool1D/AveragePooling1D need a sequence input of rank 2 (steps, channels) "
                  "(the shapes are in bind<...> above).");
    using base = typename Pool2::template bind<image<In>, T>;
    using input_shape = In;
    using output_shape = Shape<base::geom::ow, base::C>;
    static constexpr std::string_view name = Op == PoolOp::max ? "MaxPool1D" : "AveragePooling1D";
    static constexpr LayerKind kind = Op == PoolOp::max ? LayerKind::max_pool1d : LayerKind::avg_pool1d;
    // "2 stride 2 valid" (a pads(0, 0, l, r) is written "pads 0,0,l,r").
    static std::string config() {
      return std::to_string(Pool) + " stride " + std::to_string(S) + " " + padding_config(Pad) +
             (CountIncludePad ? " count_include_pad" : "");
    }
    static std::string spec() {
      return std::string("ctnn::") + std::string(name) + "<" + std::to_string(Pool) + ", " +
             std::to_string(S) + ", " + padding_spec(Pad) + (CountIncludePad ? ", true" : "") + ">";
    }
  };
};

}  // namespace detail

// Stride 0 means the pool size (Keras's default).
template <std::size_t Pool, std::size_t Stride = 0, Padding Pad = Padding::valid>
using MaxPool1D = detail::Pool1D<detail::PoolOp::max, Pool, Stride, Pad, false>;

template <std::size_t Pool, std::size_t Stride = 0, Padding Pad = Padding::valid,
          bool CountIncludePad = false>
using AveragePooling1D = detail::Pool1D<detail::PoolOp::average, Pool, Stride, Pad, CountIncludePad>;

}  // namespace ctnn
// ---- end ctnn/layers/pooling1d.hpp ----
// ---- begin ctnn/layers/zero_padding.hpp ----
// ctnn/layers/zero_padding.hpp: ZeroPadding2D<Top, Bottom, Left, Right>, rows and columns of zeros
// around an image (Keras's ZeroPadding2D(((Top, Bottom), (Left, Right)))).
//
// Represents y[i][j][c] = x[i - Top][j - Left][c] where that lies inside the input, 0 elsewhere.
// ZeroPadding2D<p> pads every side by p, ZeroPadding2D<h, h, w> rows by h and columns by w (Keras's
// padding=p and padding=(h, w)).
// Requires: a rank-3 input (height, width, channels).
// Output shape: Shape<H + Top + Bottom, W + Left + Right, C>. No parameters.
// Backward: dx is dy without its border.
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>


namespace ctnn {

template <std::size_t Top, std::size_t Bottom = Top, std::size_t Left = Top, std::size_t Right = Left>
struct ZeroPadding2D {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "ZeroPadding2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::size_t OH = H + Top + Bottom, OW = W + Left + Right;
    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<OH, OW, C>;
    static constexpr std::size_t param_count = 0;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = "ZeroPadding2D";
    static constexpr LayerKind kind = LayerKind::zero_padding2d;
    // "1,1,2,2": top, bottom, left, right.
    static std::string config() {
      return std::to_string(Top) + "," + std::to_string(Bottom) + "," + std::to_string(Left) + "," +
             std::to_string(Right);
    }
    static std::string spec() {
      return "ctnn::ZeroPadding2D<" + std::to_string(Top) + ", " + std::to_string(Bottom) + ", " +
             std::to_string(Left) + ", " + std::to_string(Right) + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T*, Rng&) {}

    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      parallel_for(n, [&](std::size_t s) {
        const T* xs = x + s * In::size;
        T* ys = y + s * output_shape::size;
        for (std::size_t i = 0; i < output_shape::size; ++i) ys[i] = T(0);
        for (std::size_t i = 0; i < H; ++i)
          std::memcpy(ys + ((i + Top) * OW + Left) * C, xs + i * W * C, W * C * sizeof(T));
      }, n * output_shape::size >= kParallelWork);
    }

    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n, T*,
                         const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const T* dys = dy + s * output_shape::size;
        T* dxs = dx + s * In::size;
        for (std::size_t i = 0; i < H; ++i)
          std::memcpy(dxs + i * W * C, dys + ((i + Top) * OW + Left) * C, W * C * sizeof(T));
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/zero_padding.hpp ----
// ---- begin ctnn/layers/reshape.hpp ----
// ctnn/layers/reshape.hpp: Reshape<Dims...>, the input seen with another shape of the same size
// (row-major, channels last, as Keras's Reshape((Dims...)) without the batch dimension).
//
// Represents y = x with output shape Shape<Dims...>: Flatten generalized (Reshape<In::size> is a
// Flatten). Requires: Dims... multiply to the input's size. No parameters, no work: Sequential
// hands the same buffer on, forward and backward (is_view).
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {

template <std::size_t... Dims>
struct Reshape {
  static_assert(sizeof...(Dims) >= 1, "Reshape needs at least one dimension: Reshape<Dims...>.");

  // Flatten's bind with another output shape: the same copies when run on its own (tests),
  // none inside a model.
  template <ShapeType In, class T>
  struct bind : Flatten::bind<In, T> {
    static_assert(In::size == Shape<Dims...>::size,
                  "Reshape must keep the number of values: the input shape (first argument of "
                  "bind<...> above) and Shape<Dims...> of Reshape<Dims...> differ in size.");
    using output_shape = Shape<Dims...>;
    static constexpr std::string_view name = "Reshape";
    static constexpr LayerKind kind = LayerKind::reshape;
    static std::string spec() {
      std::string s = "ctnn::Reshape<";
      std::size_t i = 0;
      ((s += (i++ ? ", " : "") + std::to_string(Dims)), ...);
      return s + ">";
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/reshape.hpp ----
// ---- begin ctnn/layers/bounded_relu.hpp ----
// ctnn/layers/bounded_relu.hpp: BoundedReLU<MaxValue, NegativeSlope = 0, Threshold = 0>, Keras's
// ReLU(max_value, negative_slope, threshold), and ReLU6 = BoundedReLU<6> (MobileNet's).
//
// Represents y = MaxValue                           where x >= MaxValue,
//                x                                  where Threshold <= x < MaxValue,
//                NegativeSlope * (x - Threshold)    otherwise.
// Requires (as Keras): MaxValue, NegativeSlope and Threshold >= 0, and Threshold < MaxValue.
// (Keras's max_value=None is the plain ReLU or LeakyReLU layer.) Output shape: the input's. No
// parameters. Derivative at the kinks as PyTorch's: 0 at MaxValue, NegativeSlope at Threshold
// (ReLU6: 0 at 0 and at 6); a NaN input gives NaN and passes dy back.
// ReLU6 right after Dense or Conv2D is fused into their GEMM's store, as ReLU is (other settings
// run as a pass of their own).
#include <string>

// ---- begin ctnn/kernels/activations.hpp ----
// ctnn/kernels/activations.hpp: the MobileNet-era activations, forward and backward, over
// contiguous arrays: bounded ReLU (ReLU6), HardSwish, HardSigmoid, Swish (SiLU) and ELU.
//
// Written like kernels/elementwise.hpp (one generic lambda per op, run by map1/map2/map3 over
// full vectors and a one-lane tail). Two rules hold for every op here:
//   NaN in, NaN out: pieces are chosen with compare + select (a compare with NaN is false), never
//     with Min/Max, which on x86 return their second operand when either is NaN. Backward at a NaN
//     input does what PyTorch's does: dy for the piecewise-linear ones and ELU, 0 for HardSigmoid,
//     NaN for Swish.
//   +-infinity gives the limit, not inf * 0 = NaN: Highway's Exp is valid on [-FLT_MAX, 104]
//     (float) and returns 0 below -104 (and for NaN, hence the compare + select), so the ops that
//     need exp take it of -|x| only, or of a clamped argument.
// They run in the calling thread, as elementwise.hpp's do: the result cannot depend on the
// thread count.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = f(d, a[i], b[i], c[i]) for i < n.
template <class T, class F>
HWY_INLINE void map3(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                     const T* HWY_RESTRICT c, T* HWY_RESTRICT out, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (i + L <= n) trips a false g++ 12 warning when inlined
  std::size_t i = 0;
  for (; i < full; i += L)
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  const hn::CappedTag<T, 1> d1;
  for (; i < n; ++i)
    hn::StoreU(f(d1, hn::LoadU(d1, a + i), hn::LoadU(d1, b + i), hn::LoadU(d1, c + i)), d1, out + i);
}

// Keras's ReLU(max_value, negative_slope, threshold):
//   y = max_value                        where x >= max_value
//       negative_slope * (x - threshold) where x < threshold
//       x                                otherwise, NaN included.
// With no slope the lower piece is a selected 0 (0 * -inf would be NaN, and 0 * -1 is -0).
template <class T>
void bounded_relu_forward(std::size_t n, const T* x, T* y, T max_value, T slope, T threshold) {
  if (slope == T(0)) {
    map1(n, x, y, [=](auto d, auto v) {
      const auto m = hn::Set(d, max_value);
      return hn::IfThenZeroElse(v < hn::Set(d, threshold), hn::IfThenElse(v >= m, m, v));
    });
    return;
  }
  map1(n, x, y, [=](auto d, auto v) {
    const auto t = hn::Set(d, threshold), m = hn::Set(d, max_value);
    const auto below = hn::Mul(hn::Set(d, slope), hn::Sub(v, t));
    return hn::IfThenElse(v >= m, m, hn::IfThenElse(v < t, below, v));
  });
}
// dx = 0 where x >= max_value, negative_slope * dy where x <= threshold, else dy. At the kinks
// this is PyTorch's choice: ReLU6 (hardtanh_backward) gives 0 at both 0 and 6, ReLU 0 at 0,
// LeakyReLU the slope at 0. A NaN x passes dy, as theirs do.
template <class T>
void bounded_relu_backward(std::size_t n, const T* x, const T* dy, T* dx, T max_value, T slope,
                           T threshold) {
  map2(n, x, dy, dx, [=](auto d, auto v, auto g) {
    const auto low = hn::IfThenElse(v <= hn::Set(d, threshold), hn::Mul(g, hn::Set(d, slope)), g);
    return hn::IfThenZeroElse(v >= hn::Set(d, max_value), low);
  });
}

// HardSwish (Keras, PyTorch): y = x * relu6(x + 3) / 6, written by pieces: 0 where x <= -3, x
// where x >= 3, x * (x + 3) / 6 between. (x * relu6(x + 3) would make -inf * 0 = NaN.)
template <class T>
void hard_swish_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto three = hn::Set(d, T(3));
    const auto mid = hn::Mul(v, hn::Mul(hn::Add(v, three), hn::Set(d, T(1) / T(6))));
    return hn::IfThenZeroElse(v <= hn::Neg(three), hn::IfThenElse(v >= three, v, mid));
  });
}
// PyTorch's hardswish_backward: dx = 0 where x < -3, dy * (x / 3 + 0.5) where -3 <= x <= 3, else
// dy (so -0.5 dy at -3 and 1.5 dy at 3, the middle piece's slopes). A NaN x passes dy.
template <class T>
void hard_swish_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto three = hn::Set(d, T(3));
    // x / 3, not x * (1/3): PyTorch's rounding, so -1/2 and 3/2 exactly at the kinks.
    const auto mid = hn::Mul(g, hn::Add(hn::Div(v, three), hn::Set(d, T(0.5))));
    return hn::IfThenZeroElse(v < hn::Neg(three), hn::IfThenElse(v <= three, mid, g));
  });
}

// HardSigmoid as PyTorch and Keras 3 define it: y = relu6(x + 3) / 6, i.e. 0 where x <= -3, 1
// where x >= 3, x / 6 + 1/2 between. (Keras 2 used 0.2 x + 0.5 clipped to [0, 1]: not this.)
template <class T>
void hard_sigmoid_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto three = hn::Set(d, T(3));
    const auto mid = hn::MulAdd(v, hn::Set(d, T(1) / T(6)), hn::Set(d, T(0.5)));
    return hn::IfThenZeroElse(v <= hn::Neg(three),
                              hn::IfThenElse(v >= three, hn::Set(d, T(1)), mid));
  });
}
// PyTorch's hardsigmoid_backward: dx = dy / 6 where -3 < x < 3, else 0 (0 at both kinks, and 0
// at a NaN x, as PyTorch's: its `(x > -3 && x < 3) ? dy / 6 : 0` is false for NaN).
template <class T>
void hard_sigmoid_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto three = hn::Set(d, T(3));
    const auto inside = hn::And(v > hn::Neg(three), v < three);
    return hn::IfThenElseZero(inside, hn::Mul(g, hn::Set(d, T(1) / T(6))));
  });
}

// Below this, sigmoid(x) is 0 in float and double alike (exp(-1000) underflows), so clamping
// x there changes no finite result and turns -inf * 0 into -1000 * 0.
template <class T>
inline constexpr T kSwishFloor = T(-1000);

// Swish / SiLU: y = x * sigmoid(x); swish(-inf) = 0, swish(inf) = inf, swish(NaN) = NaN.
template <class T>
void swish_forward(std::size_t n, const T* x, T* y) {
  map1(n, x, y, [](auto d, auto v) {
    const auto lo = hn::Set(d, kSwishFloor<T>);
    const auto c = hn::IfThenElse(v < lo, lo, v);  // a compare: NaN stays NaN
    return hn::Mul(c, sigmoid_of(d, c));
  });
}
// dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x), recomputed (an exp is cheaper than keeping s
// from forward). x is clamped to [-1000, 1000] where the derivative is exactly 0 and 1 (in float
// and double), so +-inf gives 0 and dy, not inf * 0. A NaN x gives NaN (no kink to choose at).
template <class T>
void swish_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](auto d, auto v, auto g) {
    const auto lo = hn::Set(d, kSwishFloor<T>), hi = hn::Neg(lo);
    const auto c = hn::IfThenElse(v < lo, lo, hn::IfThenElse(v > hi, hi, v));
    const auto s = sigmoid_of(d, c);
    const auto one = hn::Set(d, T(1));
    return hn::Mul(g, hn::Mul(s, hn::MulAdd(c, hn::Sub(one, s), one)));
  });
}

// ELU (Keras, PyTorch): y = x where x > 0, alpha * (exp(x) - 1) elsewhere, with Expm1 of
// min(x, 0) (its valid range ends at +104; the value is unused where x > 0). ELU(-inf) = -alpha
// (Expm1 returns -1 below -104); ELU(NaN) = NaN (NaN > 0 is false, Expm1(NaN) is NaN, and the
// product with alpha keeps it: checked by the tests).
template <class T>
void elu_forward(std::size_t n, const T* x, T* y, T alpha) {
  map1(n, x, y, [alpha](auto d, auto v) {
    const auto z = hn::Zero(d);
    const auto neg = hn::IfThenElse(v > z, z, v);  // min(x, 0), keeping NaN
    return hn::IfThenElse(v > z, v, hn::Mul(hn::Set(d, alpha), hn::Expm1(d, neg)));
  });
}
// PyTorch's elu_backward: dx = dy * alpha * exp(x) = dy * (y + alpha) where x <= 0 (alpha dy at
// 0, the left piece's slope), else dy (also for a NaN x).
template <class T>
void elu_backward(std::size_t n, const T* x, const T* y, const T* dy, T* dx, T alpha) {
  map3(n, x, y, dy, dx, [alpha](auto d, auto v, auto yv, auto g) {
    return hn::IfThenElse(v <= hn::Zero(d), hn::Mul(g, hn::Add(yv, hn::Set(d, alpha))), g);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::bounded_relu_backward;
using ctnn::HWY_NAMESPACE::bounded_relu_forward;
using ctnn::HWY_NAMESPACE::elu_backward;
using ctnn::HWY_NAMESPACE::elu_forward;
using ctnn::HWY_NAMESPACE::hard_sigmoid_backward;
using ctnn::HWY_NAMESPACE::hard_sigmoid_forward;
using ctnn::HWY_NAMESPACE::hard_swish_backward;
using ctnn::HWY_NAMESPACE::hard_swish_forward;
using ctnn::HWY_NAMESPACE::swish_backward;
using ctnn::HWY_NAMESPACE::swish_forward;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/activations.hpp ----

namespace ctnn {

template <Real MaxValue, Real NegativeSlope = 0.0, Real Threshold = 0.0>
struct BoundedReLU {
  static_assert(MaxValue.value() >= 0.0, "BoundedReLU's max value must be >= 0 (as in Keras).");
  static_assert(NegativeSlope.value() >= 0.0,
                "BoundedReLU's negative slope must be >= 0 (as in Keras).");
  static_assert(Threshold.value() >= 0.0, "BoundedReLU's threshold must be >= 0 (as in Keras).");
  static_assert(Threshold.value() < MaxValue.value(),
                "BoundedReLU's threshold must be below its max value, or every output is the max.");

  static constexpr bool is_relu6 =
      MaxValue.micros == 6'000'000 && NegativeSlope.micros == 0 && Threshold.micros == 0;

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = is_relu6 ? "ReLU6" : "BoundedReLU";
    static constexpr LayerKind kind = LayerKind::bounded_relu;
    // ReLU6 after Dense or Conv2D runs in their GEMM's store. Its backward then reads the
    // clamped output as x, which selects the same pieces (y >= 6 iff x >= 6, y <= 0 iff x <= 0).
    static constexpr Epilogue epilogue = is_relu6 ? Epilogue::relu6 : Epilogue::none;
    static std::string config() {
      return "max_value " + std::to_string(MaxValue.value()) + " negative_slope " +
             std::to_string(NegativeSlope.value()) + " threshold " +
             std::to_string(Threshold.value());
    }
    static std::string spec() {
      if (is_relu6) return "ctnn::ReLU6";
      return "ctnn::BoundedReLU<" + std::to_string(MaxValue.value()) + ", " +
             std::to_string(NegativeSlope.value()) + ", " + std::to_string(Threshold.value()) +
             ">";
    }
    static constexpr T max_value = static_cast<T>(MaxValue.value());
    static constexpr T negative_slope = static_cast<T>(NegativeSlope.value());
    static constexpr T threshold = static_cast<T>(Threshold.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::bounded_relu_forward(n * In::size, x, y, max_value, negative_slope, threshold);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx)
        kernels::bounded_relu_backward(n * In::size, x, dy, dx, max_value, negative_slope,
                                       threshold);
    }
  };
};

// ReLU6 (MobileNet; Keras ReLU(max_value=6), PyTorch nn.ReLU6): y = min(max(x, 0), 6).
using ReLU6 = BoundedReLU<6.0>;

}  // namespace ctnn
// ---- end ctnn/layers/bounded_relu.hpp ----
// ---- begin ctnn/layers/elu.hpp ----
// ctnn/layers/elu.hpp: ELU<Alpha = 1>, the exponential linear unit (Keras ELU, PyTorch nn.ELU).
//
// Represents y = x for x > 0, Alpha * (exp(x) - 1) otherwise; any Alpha, as in Keras and
// PyTorch. Output shape: the input's. No parameters.
// Derivative as PyTorch's: Alpha * exp(x) = y + Alpha for x <= 0 (Alpha at the kink when
// Alpha != 1), 1 above. ELU(-inf) = -Alpha; a NaN input gives NaN and passes dy back.
#include <string>


namespace ctnn {

template <Real Alpha = 1.0>
struct ELU {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "ELU";
    static constexpr LayerKind kind = LayerKind::elu;
    static std::string config() { return "alpha " + std::to_string(Alpha.value()); }
    static std::string spec() { return "ctnn::ELU<" + std::to_string(Alpha.value()) + ">"; }
    static constexpr T alpha = static_cast<T>(Alpha.value());
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::elu_forward(n * In::size, x, y, alpha);
    }
    static void backward(const T*, const T* x, const T* y, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::elu_backward(n * In::size, x, y, dy, dx, alpha);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/elu.hpp ----
// ---- begin ctnn/layers/hard_sigmoid.hpp ----
// ctnn/layers/hard_sigmoid.hpp: HardSigmoid as PyTorch (nn.Hardsigmoid) and Keras 3
// (keras.activations.hard_sigmoid) define it: y = relu6(x + 3) / 6.
//
// Represents 0 for x <= -3, 1 for x >= 3, x / 6 + 1/2 between. Keras 2's hard_sigmoid was
// 0.2 x + 0.5 clipped to [0, 1]: a model from Keras 2 differs. Output shape: the input's. No
// parameters. Derivative as PyTorch's: 1/6 on (-3, 3), 0 elsewhere, at both kinks and at a NaN
// input (whose output is NaN).

namespace ctnn {

struct HardSigmoid {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "HardSigmoid";
    static constexpr LayerKind kind = LayerKind::hard_sigmoid;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::hard_sigmoid_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::hard_sigmoid_backward(n * In::size, x, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/hard_sigmoid.hpp ----
// ---- begin ctnn/layers/hard_swish.hpp ----
// ctnn/layers/hard_swish.hpp: HardSwish (MobileNetV3; Keras hard_swish, PyTorch nn.Hardswish).
//
// Represents y = x * relu6(x + 3) / 6: 0 for x <= -3, x for x >= 3. Output shape: the input's.
// No parameters. Derivative as PyTorch's: 0 below -3, x / 3 + 1/2 on [-3, 3] (so -1/2 at -3 and
// 3/2 at 3), 1 above. HardSwish(-inf) = 0; a NaN input gives NaN and passes dy back.

namespace ctnn {

struct HardSwish {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "HardSwish";
    static constexpr LayerKind kind = LayerKind::hard_swish;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::hard_swish_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::hard_swish_backward(n * In::size, x, dy, dx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/hard_swish.hpp ----
// ---- begin ctnn/layers/swish.hpp ----
// ctnn/layers/swish.hpp: Swish, also called SiLU (Keras swish / silu, PyTorch nn.SiLU).
//
// Represents y = x * sigmoid(x). Output shape: the input's. No parameters. Smooth: the
// derivative is s * (1 + x * (1 - s)) with s = sigmoid(x), recomputed in backward. Swish(-inf) =
// 0, Swish(inf) = inf, and a NaN input gives NaN, forward and backward.

namespace ctnn {

struct Swish {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T> {
    static constexpr std::string_view name = "Swish";
    static constexpr LayerKind kind = LayerKind::swish;
    static void forward(const T*, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      kernels::swish_forward(n * In::size, x, y);
    }
    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T*, const PassContext&) {
      if (dx) kernels::swish_backward(n * In::size, x, dy, dx);
    }
  };
};

// PyTorch's name for the same function (the same type: exported as ctnn::Swish).
using SiLU = Swish;

}  // namespace ctnn
// ---- end ctnn/layers/swish.hpp ----

// ---- begin ctnn/loss/binary_crossentropy.hpp ----
// ctnn/loss/binary_crossentropy.hpp: BinaryCrossEntropy.
//
// Represents, per sample, the mean over its outputs of -(t log p + (1 - t) log(1 - p)) for
// probabilities p (a Sigmoid output) and targets t in [0, 1], p clipped to [1e-7, 1 - 1e-7] as
// Keras does. Targets: vectors of width values. Accuracy: binary, threshold 0.5.
// Label smoothing (Keras's label_smoothing = s in [0, 1], default 0): the targets become
// t' = t (1 - s) + s / 2 before the above (the accuracy still reads t).
#include <algorithm>
#include <cmath>

// ---- begin ctnn/loss/loss.hpp ----
// ctnn/loss/loss.hpp: what a loss is, and the targets it reads.
//
// A loss compares a batch of model outputs y [n x width] with targets and reports the SUM of
// the per-sample losses (fit divides by the sample count for the epoch mean). Its backward writes
// d(mean loss over the batch) / dy, the gradient Keras's default reduction gives. Every loss
// states which targets it reads (class labels or target vectors) and which accuracy goes with it.
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ctnn {

// A batch of targets: n labels, or n rows of `width` values. Unused pointers are null.
template <class T>
struct Targets {
  const std::int32_t* labels = nullptr;
  const T* values = nullptr;
};

// The accuracy that accompanies a loss (Keras resolves "accuracy" the same way).
enum class Metric {
  sparse_categorical,  // argmax(y) == label
  categorical,         // argmax(y) == argmax(target)
  binary,              // (y > 0.5) == (target > 0.5), averaged over outputs
  none,                // regression: no accuracy
};

// Clipping of probabilities before a log, as Keras does (its backend epsilon).
inline constexpr double kProbabilityEpsilon = 1e-7;

template <class L>
concept Loss = requires(const L& l, const float* y, Targets<float> t, std::size_t n, float* dy) {
  { L::name } -> std::convertible_to<std::string_view>;
  { L::uses_labels } -> std::convertible_to<bool>;
  { L::metric } -> std::convertible_to<Metric>;
  { l.value(y, t, n, n) } -> std::convertible_to<double>;
  { l.backward(y, t, n, n, dy) } -> std::convertible_to<double>;
};

// A cross-entropy loss that can hand the gradient with respect to the logits of a preceding
// Softmax straight back (p - target): one cheap pass instead of the loss gradient followed by the
// softmax Jacobian, and no division by small probabilities.
template <class L>
concept FusesSoftmax = Loss<L> && requires(const L& l, const float* p, Targets<float> t,
                                           std::size_t n, float* d) {
  { l.backward_from_logits(p, t, n, n, d) } -> std::convertible_to<double>;
};

namespace detail {
template <class L>
constexpr bool needs_class_scores() {
  if constexpr (requires { { L::needs_class_scores } -> std::convertible_to<bool>; })
    return L::needs_class_scores;
  else
    return false;
}
}  // namespace detail

// Whether loss L can read a model output of shape Out (one sample), checked where a loss meets a
// model (fit, Trainer, evaluate, report). A cross-entropy over classes (it declares
// `needs_class_scores = true`) reads each sample's outputs as ONE distribution over classes, so it
// needs a flat vector of at least two class scores: over a feature map it would take every map
// value for a class and train to nonsense (Keras refuses one label per sample against such an output too). Losses that read each
// output on its own (mean squared error, binary cross-entropy) accept any shape, as in Keras.
template <class L, class Out>
struct LossReadsOutput {
  static constexpr bool classes = detail::needs_class_scores<L>();
  static_assert(!classes || Out::rank == 1,
                "A cross-entropy over classes (sparse or categorical) needs a flat (rank-1) model "
                "output with one score per class: end the model with Flatten, Dense<classes> and "
                "Softmax (the loss and the output Shape are in this instantiation).");
  static_assert(!classes || Out::rank != 1 || Out::size >= 2,
                "A cross-entropy over classes (sparse or categorical) needs at least 2 outputs, "
                "one per class: end the model with Dense<classes> and Softmax, or use "
                "BinaryCrossEntropy with one Sigmoid output for a yes/no target.");
  static constexpr bool value = true;
};

namespace detail {

// A probability clipped to [1e-7, 1 - 1e-7] before its log.
template <class T>
T clip_probability(T p) {
  return std::clamp(p, T(kProbabilityEpsilon), T(1 - kProbabilityEpsilon));
}

template <class T>
std::size_t argmax(const T* row, std::size_t width) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < width; ++j)
    if (row[j] > row[best]) best = j;
  return best;
}

// Sum over the batch of per-sample accuracy (1 or 0; for binary, the fraction of outputs right).
template <class T>
double correct(Metric m, const T* y, Targets<T> t, std::size_t n, std::size_t width) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T* row = y + i * width;
    switch (m) {
      case Metric::sparse_categorical:
        sum += argmax(row, width) == static_cast<std::size_t>(t.labels[i]) ? 1.0 : 0.0;
        break;
      case Metric::categorical:
        sum += argmax(row, width) == argmax(t.values + i * width, width) ? 1.0 : 0.0;
        break;
      case Metric::binary: {
        std::size_t ok = 0;
        for (std::size_t j = 0; j < width; ++j)
          ok += (row[j] > T(0.5)) == (t.values[i * width + j] > T(0.5));
        sum += double(ok) / double(width);
        break;
      }
      case Metric::none:
        break;
    }
  }
  return sum;
}

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/loss/loss.hpp ----
// ---- begin ctnn/optim/hyperparameter.hpp ----
// ctnn/optim/hyperparameter.hpp: range checks of optimizer hyperparameters, one sentence each.
//
// An optimizer checks its hyperparameters when it is constructed and at every step (a few
// compares per step; a user or a callback may change them between steps), and fit() checks them
// before its first step. set_hyperparameters() (checkpoint loading) does not: load_checkpoint
// changes nothing once it has started changing things, and the next step checks.
#include <cmath>
#include <limits>


namespace ctnn::detail {

// Fails unless v lies in [lo, hi) (hi_closed: [lo, hi]; hi infinite: any finite v >= lo, or
// v > lo when lo_open), e.g. "Adam's beta_1 must be a number in [0, 1); it is 1.5.".
inline void check_hyperparameter(const char* optimizer, const char* what, double v, double lo,
                                 bool lo_open = false,
                                 double hi = std::numeric_limits<double>::infinity(),
                                 bool hi_closed = false) {
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = std::isinf(hi) ? std::isfinite(v) : (hi_closed ? v <= hi : v < hi);
  if (above && below) return;
  if (std::isinf(hi))
    fail(optimizer, "'s ", what, " must be a finite number ", lo_open ? "> " : ">= ", lo,
         "; it is ", v, ".");
  fail(optimizer, "'s ", what, " must be a number in ", lo_open ? "(" : "[", lo, ", ", hi,
       hi_closed ? "]" : ")", "; it is ", v, ".");
}

}  // namespace ctnn::detail
// ---- end ctnn/optim/hyperparameter.hpp ----

namespace ctnn {

struct BinaryCrossEntropy {
  static constexpr std::string_view name = "binary_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr Metric metric = Metric::binary;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("binary_crossentropy", "label_smoothing", label_smoothing, 0,
                                 false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    const double s = label_smoothing;
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i) {
      const double c = double(detail::clip_probability(p[i]));
      const double y = s == 0 ? double(t.values[i]) : double(t.values[i]) * (1 - s) + 0.5 * s;
      sum -= y * std::log(c) + (1 - y) * std::log(1 - c);
    }
    return sum / double(width);
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    const T denom = T(n) * T(width), s = T(label_smoothing);
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      const T y = label_smoothing == 0 ? t.values[i] : t.values[i] * (T(1) - s) + T(0.5) * s;
      dp[i] = c == p[i] ? (c - y) / (c * (T(1) - c) * denom) : T(0);
    }
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
// ---- end ctnn/loss/binary_crossentropy.hpp ----
// ---- begin ctnn/loss/categorical_crossentropy.hpp ----
// ctnn/loss/categorical_crossentropy.hpp: CategoricalCrossEntropy.
//
// Represents, per sample, -sum_j t[j] log(p[j]) for probabilities p (a Softmax output) and target
// distributions t (one-hot or soft labels), with p clipped to [1e-7, 1 - 1e-7] as Keras does.
// Targets: vectors of width values. After a Softmax, training uses backward_from_logits:
// d(mean loss)/dlogits = (p - t) / n (exact when each target row sums to 1).
// Label smoothing (Keras's label_smoothing = s in [0, 1], default 0): the targets become
// t' = t (1 - s) + s / width before all of the above.
#include <algorithm>
#include <cmath>

// ---- begin ctnn/kernels/loss.hpp ----
// ctnn/kernels/loss.hpp: the vector arithmetic of the losses' gradients.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out = (a - b) * s. With a = softmax output and b = one-hot targets this is the fused
// softmax + cross-entropy gradient with respect to the logits; with a = prediction and b = target
// it is the MSE gradient (s = 2 / count).
template <class T>
void scaled_difference(std::size_t n, const T* a, const T* b, T s, T* out) {
  map2(n, a, b, out, [s](auto d, auto x, auto y) { return hn::Mul(hn::Sub(x, y), hn::Set(d, s)); });
}

// out = a * s.
template <class T>
void scale(std::size_t n, const T* a, T s, T* out) {
  map1(n, a, out, [s](auto d, auto x) { return hn::Mul(x, hn::Set(d, s)); });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::scale;
using ctnn::HWY_NAMESPACE::scaled_difference;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/loss.hpp ----

namespace ctnn {

struct CategoricalCrossEntropy {
  static constexpr std::string_view name = "categorical_crossentropy";
  static constexpr bool uses_labels = false;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::categorical;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("categorical_crossentropy", "label_smoothing", label_smoothing,
                                 0, false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    double sum = 0;
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n * width; ++i)
        if (t.values[i] != T(0)) sum -= double(t.values[i]) * std::log(double(detail::clip_probability(p[i])));
      return sum;
    }
    const double s = label_smoothing, k = s / double(width);
    for (std::size_t i = 0; i < n * width; ++i)
      sum -= (double(t.values[i]) * (1 - s) + k) * std::log(double(detail::clip_probability(p[i])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n * width; ++i) {
      const T c = detail::clip_probability(p[i]);
      const T target = label_smoothing == 0 ? t.values[i] : t.values[i] * (T(1) - s) + k;
      dp[i] = c == p[i] ? -target / (c * T(n)) : T(0);
    }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    kernels::scaled_difference(n * width, p, t.values, T(1) / T(n), dz);
    if (label_smoothing != 0) {  // (p - t') / n = (p - t) / n + s (t - 1 / width) / n
      const T s = T(label_smoothing), k = s / T(width), inv_n = T(1) / T(n);
      for (std::size_t i = 0; i < n * width; ++i) dz[i] += (s * t.values[i] - k) * inv_n;
    }
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
// ---- end ctnn/loss/categorical_crossentropy.hpp ----
// ---- begin ctnn/loss/mse.hpp ----
// ctnn/loss/mse.hpp: MeanSquaredError.
//
// Represents, per sample, the mean over its outputs of (y - t)^2 (Keras's reduction).
// Targets: vectors of width values. No accuracy (regression).

namespace ctnn {

struct MeanSquaredError {
  static constexpr std::string_view name = "mean_squared_error";
  static constexpr bool uses_labels = false;
  static constexpr Metric metric = Metric::none;

  template <class T>
  double value(const T* y, Targets<T> t, std::size_t n, std::size_t width) const {
    double sum = 0;
    for (std::size_t i = 0; i < n * width; ++i) {
      const double e = double(y[i]) - double(t.values[i]);
      sum += e * e;
    }
    return sum / double(width);
  }

  template <class T>
  double backward(const T* y, Targets<T> t, std::size_t n, std::size_t width, T* dy) const {
    kernels::scaled_difference(n * width, y, t.values, T(2) / (T(n) * T(width)), dy);
    return value(y, t, n, width);
  }
};

using MSE = MeanSquaredError;

}  // namespace ctnn
// ---- end ctnn/loss/mse.hpp ----
// ---- begin ctnn/loss/sparse_categorical_crossentropy.hpp ----
// ctnn/loss/sparse_categorical_crossentropy.hpp: SparseCategoricalCrossEntropy.
//
// Represents, per sample, -log(p[label]) for probabilities p (the output of a Softmax), with p
// clipped to [1e-7, 1 - 1e-7] as Keras does. Targets: class labels in [0, width).
// After a Softmax, training uses backward_from_logits: d(mean loss)/dlogits = (p - onehot) / n.
// Label smoothing (label_smoothing = s in [0, 1], default 0) is CategoricalCrossEntropy's on the
// one-hot label: t'[j] = (1 - s) [j == label] + s / width (Keras's sparse loss has no such option;
// this gives what its categorical loss gives on one-hot targets).
#include <algorithm>
#include <cmath>


namespace ctnn {

struct SparseCategoricalCrossEntropy {
  static constexpr std::string_view name = "sparse_categorical_crossentropy";
  static constexpr bool uses_labels = true;
  static constexpr bool needs_class_scores = true;  // see LossReadsOutput
  static constexpr Metric metric = Metric::sparse_categorical;
  double label_smoothing = 0;

  // Fails with a sentence unless label_smoothing is in [0, 1].
  void check_hyperparameters() const {
    detail::check_hyperparameter("sparse_categorical_crossentropy", "label_smoothing",
                                 label_smoothing, 0, false, 1, true);
  }

  template <class T>
  double value(const T* p, Targets<T> t, std::size_t n, std::size_t width) const {
    check_hyperparameters();
    double sum = 0;
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n; ++i) sum -= std::log(double(detail::clip_probability(p[i * width + static_cast<std::size_t>(t.labels[i])])));
      return sum;
    }
    const double s = label_smoothing, k = s / double(width);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < width; ++j)
        sum -= ((j == std::size_t(t.labels[i]) ? 1 - s : 0.0) + k) *
               std::log(double(detail::clip_probability(p[i * width + j])));
    return sum;
  }

  template <class T>
  double backward(const T* p, Targets<T> t, std::size_t n, std::size_t width, T* dp) const {
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n * width; ++i) dp[i] = T(0);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = i * width + std::size_t(t.labels[i]);
        const T c = detail::clip_probability(p[k]);
        dp[k] = c == p[k] ? T(-1) / (c * T(n)) : T(0);  // the clip's derivative is 0 outside
      }
      return value(p, t, n, width);
    }
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < width; ++j) {
        const T pij = p[i * width + j], c = detail::clip_probability(pij);
        const T target = (j == std::size_t(t.labels[i]) ? T(1) - s : T(0)) + k;
        dp[i * width + j] = c == pij ? -target / (c * T(n)) : T(0);
      }
    return value(p, t, n, width);
  }

  template <class T>
  double backward_from_logits(const T* p, Targets<T> t, std::size_t n, std::size_t width,
                              T* dz) const {
    const T inv_n = T(1) / T(n);
    kernels::scale(n * width, p, inv_n, dz);
    if (label_smoothing == 0) {
      for (std::size_t i = 0; i < n; ++i) dz[i * width + std::size_t(t.labels[i])] -= inv_n;
      return value(p, t, n, width);
    }
    // (p - t') / n with t' = (1 - s) onehot + s / width.
    const T s = T(label_smoothing), k = s / T(width);
    for (std::size_t i = 0; i < n * width; ++i) dz[i] -= k * inv_n;
    for (std::size_t i = 0; i < n; ++i) dz[i * width + std::size_t(t.labels[i])] -= (T(1) - s) * inv_n;
    return value(p, t, n, width);
  }
};

}  // namespace ctnn
// ---- end ctnn/loss/sparse_categorical_crossentropy.hpp ----

// ---- begin ctnn/optim/adam.hpp ----
// ctnn/optim/adam.hpp: Adam (Kingma & Ba), with Keras's defaults and formulation.
//
// Represents, at step t: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
// Defaults: lr 1e-3, b1 0.9, b2 0.999, eps 1e-7 (Keras); check_hyperparameters() gives the
// ranges. The moments are two arena-sized buffers allocated at the first step; every step after
// that is one fused pass over w, g, m and v.
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>


// ---- begin ctnn/kernels/update.hpp ----
// ctnn/kernels/update.hpp: optimizer updates, each one pass over the contiguous parameter arena.
//
// Fused: the whole Adam (or momentum SGD) step for every parameter of the model is one loop that
// reads w, g, m, v once and writes w, m, v once; there is no per-layer or per-tensor loop.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Calls body(tag, i) for every vector of [0, n) (a one-lane tag for the tail), split across
// threads in blocks of 1024 elements. An element's arithmetic does not depend on the split, so
// the result is the same at any thread count.
template <class T, class Body>
HWY_INLINE void for_each_vector(std::size_t n, const Body& body) {
  constexpr std::size_t kBlock = 1024;
  parallel_for_range(
      (n + kBlock - 1) / kBlock,
      [&](std::size_t b0, std::size_t b1) {
        const hn::ScalableTag<T> d;
        const std::size_t L = hn::Lanes(d);
        const std::size_t end = b1 * kBlock < n ? b1 * kBlock : n;
        std::size_t i = b0 * kBlock;
        for (; i + L <= end; i += L) body(d, i);
        for (; i < end; ++i) body(hn::CappedTag<T, 1>(), i);
      },
      n >= kParallelWork);
}

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= step * m / (sqrt(v) + eps)
// where the caller folds the bias corrections into step = lr * sqrt(1 - b2^t) / (1 - b1^t)
// (Keras's formulation).
template <class T>
void adam_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT m,
                 T* HWY_RESTRICT v, T step, T b1, T b2, T eps) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto mv = hn::MulAdd(hn::Set(d, b1), hn::LoadU(d, m + i), hn::Mul(hn::Set(d, T(1) - b1), gv));
    const auto vv = hn::MulAdd(hn::Set(d, b2), hn::LoadU(d, v + i),
                               hn::Mul(hn::Set(d, T(1) - b2), hn::Mul(gv, gv)));
    const auto upd = hn::Div(mv, hn::Add(hn::Sqrt(vv), hn::Set(d, eps)));
    hn::StoreU(mv, d, m + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(hn::NegMulAdd(hn::Set(d, step), upd, hn::LoadU(d, w + i)), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// AdamW (Keras: decoupled weight decay before the Adam step): w -= w * decay with
// decay = lr * weight_decay, then the Adam step of adam_update on the decayed w.
template <class T>
void adamw_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT m,
                  T* HWY_RESTRICT v, T step, T b1, T b2, T eps, T decay) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto mv = hn::MulAdd(hn::Set(d, b1), hn::LoadU(d, m + i), hn::Mul(hn::Set(d, T(1) - b1), gv));
    const auto vv = hn::MulAdd(hn::Set(d, b2), hn::LoadU(d, v + i),
                               hn::Mul(hn::Set(d, T(1) - b2), hn::Mul(gv, gv)));
    const auto upd = hn::Div(mv, hn::Add(hn::Sqrt(vv), hn::Set(d, eps)));
    const auto wv = hn::LoadU(d, w + i);
    const auto decayed = hn::NegMulAdd(wv, hn::Set(d, decay), wv);
    hn::StoreU(mv, d, m + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(hn::NegMulAdd(hn::Set(d, step), upd, decayed), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// Keras RMSprop: v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g and
// den = v - a^2 + eps, else den = v + eps; inc = lr g / sqrt(den); with momentum
// mo = momentum mo + inc and w -= mo, else w -= inc. a and mo may be null when unused.
template <class T>
void rmsprop_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT v,
                    T* HWY_RESTRICT mo, T* HWY_RESTRICT a, T lr, T rho, T momentum, T eps) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto r = hn::Set(d, rho), one_r = hn::Set(d, T(1) - rho);
    const auto vv = hn::MulAdd(r, hn::LoadU(d, v + i), hn::Mul(one_r, hn::Mul(gv, gv)));
    hn::StoreU(vv, d, v + i);
    auto den = hn::Add(vv, hn::Set(d, eps));
    if (a != nullptr) {
      const auto av = hn::MulAdd(r, hn::LoadU(d, a + i), hn::Mul(one_r, gv));
      hn::StoreU(av, d, a + i);
      den = hn::Add(hn::NegMulAdd(av, av, vv), hn::Set(d, eps));
    }
    auto inc = hn::Div(hn::Mul(hn::Set(d, lr), gv), hn::Sqrt(den));
    if (mo != nullptr) {
      inc = hn::MulAdd(hn::Set(d, momentum), hn::LoadU(d, mo + i), inc);
      hn::StoreU(inc, d, mo + i);
    }
    hn::StoreU(hn::Sub(hn::LoadU(d, w + i), inc), d, w + i);
  };
  for_each_vector<T>(n, body);
}

// Keras SGD: vel = momentum * vel - lr * g;  w += vel (Nesterov: w += momentum * vel - lr * g).
// With momentum 0, vel may be null and this is w -= lr * g.
template <class T>
void sgd_update(std::size_t n, T* HWY_RESTRICT w, const T* HWY_RESTRICT g, T* HWY_RESTRICT vel,
                T lr, T momentum, bool nesterov) {
  const auto body = [&](auto d, std::size_t i) {
    const auto gv = hn::LoadU(d, g + i);
    const auto wv = hn::LoadU(d, w + i);
    const auto lr_g = hn::Mul(hn::Set(d, lr), gv);
    if (vel == nullptr) {
      hn::StoreU(hn::Sub(wv, lr_g), d, w + i);
      return;
    }
    const auto mom = hn::Set(d, momentum);
    const auto vv = hn::MulSub(mom, hn::LoadU(d, vel + i), lr_g);
    hn::StoreU(vv, d, vel + i);
    hn::StoreU(nesterov ? hn::Add(wv, hn::MulSub(mom, vv, lr_g)) : hn::Add(wv, vv), d, w + i);
  };
  for_each_vector<T>(n, body);
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::adam_update;
using ctnn::HWY_NAMESPACE::adamw_update;
using ctnn::HWY_NAMESPACE::rmsprop_update;
using ctnn::HWY_NAMESPACE::sgd_update;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/update.hpp ----
// ---- begin ctnn/optim/clipping.hpp ----
// ctnn/optim/clipping.hpp: gradient clipping, Keras's clipnorm, global_clipnorm and clipvalue.
//
// Every optimizer has a public member `clipping` (all off by default), e.g.
//     ctnn::Adam opt;  opt.clipping.global_clipnorm = 1.0;
// Represents, before the optimizer's update (and before AdamW's weight decay, as Keras orders
// them: clip, decay, update), with c the option that is set:
//   clipnorm         g_t = g_t * c / max(||g_t||, c) for each parameter tensor t on its own
//   global_clipnorm  g   = g * c / max(||g||, c) with ||g|| over every tensor
//   clipvalue        g   = min(max(g, -c), c) elementwise
// At most one may be set (Keras uses only the first set of the three; a second would be ignored
// silently, so ctnn refuses it). A parameter tensor is a layer's kernel or its bias (Keras's
// variables); the Trainer tells the optimizer where they lie in the arena (set_tensors). An
// optimizer used without a Trainer and without set_tensors treats the arena as one tensor.
// The norms are summed in double in arena order by one thread, so the clipped gradient is the
// same at any thread count. A NaN gradient gives a NaN norm and NaN clipped gradients.
// Clipping is configuration, like the loss: checkpoints do not store it.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>


namespace ctnn {

// Where one parameter tensor (a kernel, a bias) lies in the parameter arena.
struct ParamTensor {
  std::size_t offset = 0, size = 0;
};

struct GradientClipping {
  double clipnorm = 0;         // 0: off
  double global_clipnorm = 0;  // 0: off
  double clipvalue = 0;        // 0: off

  bool active() const { return clipnorm > 0 || global_clipnorm > 0 || clipvalue > 0; }

  // Fails with a sentence unless each option is a finite number >= 0 (0 is off) and at most one
  // is set.
  void check(const char* optimizer) const {
    detail::check_hyperparameter(optimizer, "clipnorm", clipnorm, 0);
    detail::check_hyperparameter(optimizer, "global_clipnorm", global_clipnorm, 0);
    detail::check_hyperparameter(optimizer, "clipvalue", clipvalue, 0);
    const int set = int(clipnorm > 0) + int(global_clipnorm > 0) + int(clipvalue > 0);
    if (set > 1)
      fail(optimizer, " may clip gradients in one way only, but clipnorm is ", clipnorm,
           ", global_clipnorm ", global_clipnorm, " and clipvalue ", clipvalue,
           ": set one of them and leave the others 0.");
  }
};

namespace detail {

template <class T>
double sum_of_squares(const T* g, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
  return s;
}

// The clipped copy of a gradient and the tensor layout it is clipped by; one per optimizer.
template <class T>
class Clipper {
 public:
  void set_tensors(std::vector<ParamTensor> t) { tensors_ = std::move(t); }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }

  // g itself when `c` clips nothing; otherwise the clipped copy (allocated at the first call).
  std::span<const T> apply(const GradientClipping& c, std::span<const T> g) {
    if (!c.active()) return g;
    if (buf_.size() != g.size()) buf_ = AlignedBuffer<T>(g.size());
    T* out = buf_.data();
    std::copy(g.begin(), g.end(), out);
    const ParamTensor whole{0, g.size()};
    const std::span<const ParamTensor> ts =
        tensors_.empty() ? std::span<const ParamTensor>(&whole, 1) : std::span<const ParamTensor>(tensors_);
    for (const ParamTensor& t : ts)
      if (t.offset + t.size > g.size())
        fail("A parameter tensor at ", t.offset, " of ", t.size, " values lies outside the ",
             g.size(), " gradients given to the optimizer.");
    if (c.clipvalue > 0) {
      const T v = T(c.clipvalue);
      for (std::size_t i = 0; i < g.size(); ++i)
        out[i] = std::isnan(out[i]) ? out[i] : std::clamp(out[i], -v, v);
    } else if (c.clipnorm > 0) {
      for (const ParamTensor& t : ts) scale(out + t.offset, t.size, sum_of_squares(out + t.offset, t.size), c.clipnorm);
    } else {
      double s = 0;
      for (const ParamTensor& t : ts) s += sum_of_squares(out + t.offset, t.size);
      for (const ParamTensor& t : ts) scale(out + t.offset, t.size, s, c.global_clipnorm);
    }
    return {out, g.size()};
  }

 private:
  // g *= c / max(sqrt(sum_sq), c): unchanged when the norm is at most c.
  static void scale(T* g, std::size_t n, double sum_sq, double c) {
    const double norm = std::sqrt(sum_sq);
    if (norm <= c) return;
    const T f = std::isnan(norm) ? T(norm) : T(c / norm);
    for (std::size_t i = 0; i < n; ++i) g[i] *= f;
  }

  std::vector<ParamTensor> tensors_;
  AlignedBuffer<T> buf_;
};

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/optim/clipping.hpp ----

namespace ctnn {

template <class T>
class BasicAdam {
 public:
  explicit BasicAdam(T lr = T(1e-3), T b1 = T(0.9), T b2 = T(0.999), T eps = T(1e-7))
      : learning_rate(lr), beta_1(b1), beta_2(b2), epsilon(eps) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "Adam";
  T learning_rate, beta_1, beta_2, epsilon;

  // Fails with a sentence unless: learning rate finite >= 0 (0 at the end of a cosine schedule),
  // beta_1 and beta_2 in [0, 1) (1 divides the bias correction by 0), epsilon finite > 0 (0
  // divides 0 by 0 where a gradient has always been 0).
  void check_hyperparameters() const {
    detail::check_hyperparameter("Adam", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("Adam", "beta_1", double(beta_1), 0, false, 1);
    detail::check_hyperparameter("Adam", "beta_2", double(beta_2), 0, false, 1);
    detail::check_hyperparameter("Adam", "epsilon", double(epsilon), 0, true);
    clipping.check("Adam");
  }

  // Applies one update to params from grads (both arena-sized).
  void step(std::span<T> params, std::span<const T> grads) {
    check_hyperparameters();
    grads = clipper_.apply(clipping, grads);
    prepare(params.size());
    update_range(params.data(), grads.data(), 0, params.size());
  }

  // A step in pieces, for a trainer that updates each layer as soon as its gradient is final:
  // begin_step(n) once (false, changing nothing, when gradient clipping is set: clipnorm needs
  // every gradient first), then update_range over each layer's parameters exactly once. The
  // same arithmetic per parameter as step(): the same bits. (The arena's alignment padding
  // between layers is not visited: it holds 0 with a 0 gradient, which step() leaves at 0.)
  bool begin_step(std::size_t n) {
    check_hyperparameters();
    if (clipping.active()) return false;
    prepare(n);
    return true;
  }
  void update_range(T* w, const T* g, std::size_t offset, std::size_t count) {
    kernels::adam_update(count, w + offset, g + offset, m_.data() + offset, v_.data() + offset,
                         step_size_, beta_1, beta_2, epsilon);
  }

  std::uint64_t iterations() const { return t_; }

  // Gradient clipping (optim/clipping.hpp), off by default; set_tensors gives the parameter
  // tensors clipnorm clips one by one (the Trainer calls it).
  GradientClipping clipping;
  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  // Checkpoints (io/model_file.hpp): the hyperparameters in constructor order, and the state:
  // the step count and the buffers m, v (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(beta_1), double(beta_2), double(epsilon)};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 4) fail("Adam has 4 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), beta_1 = T(h[1]), beta_2 = T(h[2]), epsilon = T(h[3]);
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (m_.size() == 0) return {};
    return {{m_.data(), m_.size()}, {v_.data(), v_.size()}};
  }
  // Sets the step count and makes `buffers` (0, or 2 of n values) for the caller to fill.
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 2) fail("Adam keeps 0 or 2 state buffers, not ", buffers, ".");
    t_ = iterations;
    m_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    v_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{m_.data(), n}, {v_.data(), n}};
  }
  std::span<const T> first_moment() const { return {m_.data(), m_.size()}; }
  std::span<const T> second_moment() const { return {v_.data(), v_.size()}; }

 private:
  // Allocates the moments (first step, or a new size), counts the step and folds the bias
  // corrections into the step size.
  void prepare(std::size_t n) {
    if (m_.size() != n) {
      m_ = AlignedBuffer<T>(n);
      v_ = AlignedBuffer<T>(n);
      t_ = 0;
    }
    ++t_;
    const double b1t = std::pow(double(beta_1), double(t_)), b2t = std::pow(double(beta_2), double(t_));
    step_size_ = T(double(learning_rate) * std::sqrt(1.0 - b2t) / (1.0 - b1t));
  }

  detail::Clipper<T> clipper_;
  AlignedBuffer<T> m_, v_;
  std::uint64_t t_ = 0;
  T step_size_ = T(0);
};

using Adam = BasicAdam<float>;

}  // namespace ctnn
// ---- end ctnn/optim/adam.hpp ----
// ---- begin ctnn/optim/sgd.hpp ----
// ctnn/optim/sgd.hpp: stochastic gradient descent with optional (Nesterov) momentum.
//
// Represents Keras's SGD: vel = momentum * vel - lr * g; w += vel, or with Nesterov
// w += momentum * vel - lr * g. Defaults: lr 0.01, momentum 0 (Keras). One fused pass over the
// arena; the velocity buffer exists only when momentum > 0.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>



namespace ctnn {

template <class T>
class BasicSGD {
 public:
  explicit BasicSGD(T lr = T(0.01), T mom = T(0), bool use_nesterov = false)
      : learning_rate(lr), momentum(mom), nesterov(use_nesterov) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "SGD";
  T learning_rate, momentum;
  bool nesterov;

  // Fails with a sentence unless: learning rate finite >= 0 (0 at the end of a cosine schedule),
  // momentum in [0, 1] (Keras's range). Nesterov with momentum 0 is plain SGD, as in Keras.
  void check_hyperparameters() const {
    detail::check_hyperparameter("SGD", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("SGD", "momentum", double(momentum), 0, false, 1, true);
    clipping.check("SGD");
  }

  void step(std::span<T> params, std::span<const T> grads) {
    check_hyperparameters();
    grads = clipper_.apply(clipping, grads);
    prepare(params.size());
    update_range(params.data(), grads.data(), 0, params.size());
  }

  // A step in pieces, for a trainer that updates each layer as soon as its gradient is final:
  // begin_step(n) once (false, changing nothing, when gradient clipping is set: clipnorm needs
  // every gradient first), then update_range over each layer's parameters exactly once. The
  // same arithmetic per parameter as step(): the same bits. (The arena's alignment padding
  // between layers is not visited: it holds 0 with a 0 gradient, which step() leaves at 0.)
  bool begin_step(std::size_t n) {
    check_hyperparameters();
    if (clipping.active()) return false;
    prepare(n);
    return true;
  }
  void update_range(T* w, const T* g, std::size_t offset, std::size_t count) {
    kernels::sgd_update(count, w + offset, g + offset,
                        momentum != T(0) ? vel_.data() + offset : nullptr, learning_rate, momentum,
                        nesterov);
  }

  std::uint64_t iterations() const { return t_; }

  // Gradient clipping (optim/clipping.hpp), off by default; set_tensors gives the parameter
  // tensors clipnorm clips one by one (the Trainer calls it).
  GradientClipping clipping;
  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  // Checkpoints (io/model_file.hpp): hyperparameters (learning rate, momentum, nesterov as 0/1)
  // and the state: the step count and the velocity (none without momentum or before a step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(momentum), nesterov ? 1.0 : 0.0};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 3) fail("SGD has 3 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), momentum = T(h[1]), nesterov = h[2] != 0;
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (vel_.size() == 0) return {};
    return {{vel_.data(), vel_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers > 1) fail("SGD keeps 0 or 1 state buffers, not ", buffers, ".");
    t_ = iterations;
    vel_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{vel_.data(), n}};
  }

 private:
  // Allocates the velocity (first step with momentum, or a new size) and counts the step.
  void prepare(std::size_t n) {
    if (momentum != T(0) && vel_.size() != n) vel_ = AlignedBuffer<T>(n);
    ++t_;
  }

  detail::Clipper<T> clipper_;
  AlignedBuffer<T> vel_;
  std::uint64_t t_ = 0;
};

using SGD = BasicSGD<float>;

}  // namespace ctnn
// ---- end ctnn/optim/sgd.hpp ----

// ---- begin ctnn/data/clean.hpp ----
// ctnn/data/clean.hpp: cleaning a Table in place, each step reporting what it touched.
//
// Every step takes the Table, optionally a selection of columns (empty = all columns), changes
// the table in place and returns a CleanReport that prints as one line, e.g.
//   impute(mean): 16 cells in 14 rows (mean radius: 4, mean texture: 2, ...)
//   drop_duplicates: dropped 10 of 579 rows, 569 left
//
//   drop_missing(t, cols)           drops the rows with a missing (NaN) cell in cols.
//   impute(t, strategy, cols)       fills the missing cells of cols with Impute::mean(),
//                                   median(), most_frequent() or constant(value / "text").
//   drop_duplicates(t, cols)        drops rows equal to an earlier row in cols (missing equals
//                                   missing here), keeping the first.
//   drop_outliers(t, rule, cols)    drops the rows with an outlier in cols; the rule is
//   clip_outliers(t, rule, cols)    ZScore{threshold} or Range{lo, hi}; clipping moves each
//                                   outlier to the nearest bound instead.
//
// Missing cells (NaN; the CSV reader also reads non-numeric text in a numeric column as NaN) are
// never outliers and are left alone by all but drop_missing and impute.
//
// Order of statistics: a step computes every column's statistic (mean, median, mode, z-score
// bounds) from the table as it was passed in, all before changing anything. So the result does
// not depend on the order of the columns (dropping the outlier rows of one column does not shift
// the z-scores of the next), and a step that throws leaves the table unchanged.
//
// Column kinds: mean, median, constant(number) and the outlier rules apply to numeric columns,
// constant("text") to categorical ones and most_frequent to both. A column of the other kind is
// skipped when the selection is empty (all columns) and is an error when named.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

// ---- begin ctnn/data/stats.hpp ----
// ctnn/data/stats.hpp: the fill statistics shared by clean.hpp's impute (on a table) and
// preprocess.hpp's SimpleImputer (fitted on a training split), so both fill a gap alike.
// Each takes the non-missing values of one column, at least one.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace ctnn::data::stats {

// The mean, summed in the order given.
inline double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// The median (of an even count, the mean of the middle two); sorts v.
inline double median(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// The most frequent value; of a tie, the smallest (the first longest run once sorted); sorts v.
inline double most_frequent(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  double best = v[0];
  std::size_t best_n = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j] == v[i]) ++j;
    if (j - i > best_n) best = v[i], best_n = j - i;
    i = j;
  }
  return best;
}

}  // namespace ctnn::data::stats
// ---- end ctnn/data/stats.hpp ----
// ---- begin ctnn/data/table.hpp ----
// ctnn/data/table.hpp: a table of named columns, the form raw tabular data takes before it
// becomes a Dataset.
//
// A Table is what the CSV reader produces and what cleaning (clean.hpp) and integration
// (integrate.hpp) work on. Every column holds one double per row; a missing cell is NaN. A
// categorical column (text such as "benign", or a column the user declared categorical) stores
// the index of the cell's category in `categories`, also as a double (NaN when missing).
// `lines` keeps, for every row, the line of the source file it came from (1-based; 0 for rows
// made in memory), so errors and reports can point at the file.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>


namespace ctnn::data {

// Names a column by its header name or by its 0-based position.
class ColumnRef {
 public:
  ColumnRef(std::size_t index) : ref_(index) {}  // NOLINT: implicit on purpose
  ColumnRef(int index) : ref_(index < 0 ? static_cast<std::size_t>(-1) : std::size_t(index)) {}
  ColumnRef(std::string name) : ref_(std::move(name)) {}  // NOLINT
  ColumnRef(const char* name) : ref_(std::string(name)) {}  // NOLINT

  bool is_index() const { return std::holds_alternative<std::size_t>(ref_); }
  std::size_t index() const { return std::get<std::size_t>(ref_); }
  const std::string& name() const { return std::get<std::string>(ref_); }
  // "column 3" or "column \"radius\"", for messages.
  std::string describe() const {
    return is_index() ? "column " + std::to_string(index()) : "column \"" + excerpt(name()) + "\"";
  }

 private:
  std::variant<std::size_t, std::string> ref_;
};

struct Column {
  std::string name;
  std::vector<double> values;            // one per row; NaN marks a missing cell
  bool categorical = false;              // values are indices into `categories`
  std::vector<std::string> categories;   // the category names, for a categorical column
  bool ordered = false;                  // the categories' order means something (a file's class
                                         // list): to_dataset numbers classes in it, not sorted

  bool missing(std::size_t row) const { return std::isnan(values[row]); }
  // The cell as text: the category name, the number, or "" when missing.
  std::string text(std::size_t row) const {
    const double v = values[row];
    if (std::isnan(v)) return "";
    if (categorical) return categories.at(static_cast<std::size_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
  }
};

struct Table {
  std::string source;                  // where the rows came from (a file path), for messages
  std::vector<Column> columns;
  std::vector<std::size_t> lines;      // source line of each row (1-based), 0 when not from a file

  std::size_t rows() const { return columns.empty() ? lines.size() : columns.front().values.size(); }
  std::size_t cols() const { return columns.size(); }

  // The position of a column; throws ctnn::Error naming the table and its columns if absent.
  std::size_t index_of(const ColumnRef& ref) const {
    if (ref.is_index()) {
      if (ref.index() >= columns.size())
        fail(describe(), " has ", columns.size(), " columns; ", ref.describe(),
             " does not exist (columns are numbered from 0).");
      return ref.index();
    }
    for (std::size_t c = 0; c < columns.size(); ++c)
      if (columns[c].name == ref.name()) return c;
    std::string names;
    for (std::size_t c = 0; c < columns.size() && c < 40; ++c)
      names += (c ? ", \"" : "\"") + excerpt(columns[c].name) + "\"";
    if (columns.size() > 40) names += ", ...";
    fail(describe(), " has no ", ref.describe(), "; its columns are ", names, ".");
  }
  bool has(const std::string& name) const {
    for (const Column& c : columns)
      if (c.name == name) return true;
    return false;
  }
  Column& operator[](const ColumnRef& ref) { return columns[index_of(ref)]; }
  const Column& operator[](const ColumnRef& ref) const { return columns[index_of(ref)]; }

  // The line a row came from, for messages: "line 17 of wine.csv" or "row 3".
  std::string where(std::size_t row) const {
    if (row < lines.size() && lines[row] != 0 && !source.empty())
      return "line " + std::to_string(lines[row]) + " of " + source;
    return "row " + std::to_string(row);
  }
  std::string describe() const { return source.empty() ? "The table" : "The table from " + source; }

  // Keeps the rows at `keep` (in that order) in every column and in `lines`.
  void keep_rows(const std::vector<std::size_t>& keep) {
    for (Column& c : columns) {
      std::vector<double> v;
      v.reserve(keep.size());
      for (std::size_t r : keep) v.push_back(c.values[r]);
      c.values = std::move(v);
    }
    std::vector<std::size_t> l;
    l.reserve(keep.size());
    for (std::size_t r : keep) l.push_back(r < lines.size() ? lines[r] : 0);
    lines = std::move(l);
  }

  // Throws ctnn::Error unless every column has rows() values, `lines` has one entry a row, column
  // names are unique and categorical cells index their categories.
  void check_consistent() const {
    const std::size_t n = rows();
    if (lines.size() != n)
      fail(describe(), " has ", n, " rows but ", lines.size(), " line numbers.");
    std::unordered_map<std::string_view, std::size_t> seen;  // linear in the column count
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const Column& col = columns[c];
      if (col.values.size() != n)
        fail(describe(), ": column \"", excerpt(col.name), "\" has ", col.values.size(),
             " values, not ", n, ".");
      if (const auto [d, added] = seen.try_emplace(col.name, c); !added)
        fail(describe(), " has two columns named \"", excerpt(col.name), "\" (", d->second, " and ",
             c, ").");
      if (col.categorical)
        for (std::size_t r = 0; r < n; ++r) {
          const double v = col.values[r];
          if (!std::isnan(v) && (v < 0 || v >= double(col.categories.size()) || v != std::floor(v)))
            fail(describe(), ": column \"", excerpt(col.name), "\" at ", where(r),
                 " holds category index ", v, " but has ", col.categories.size(), " categories.");
        }
    }
  }
};

}  // namespace ctnn::data
// ---- end ctnn/data/table.hpp ----

namespace ctnn::data {

// What a cleaning step did. For the dropping steps rows_touched is the number of rows dropped and
// cells_changed is 0; for impute and clip_outliers rows_touched counts the rows with at least one
// changed cell.
struct CleanReport {
  std::string step;  // "drop_missing", "impute(median)", "clip_outliers(|z| > 3)", ...
  std::size_t rows_before = 0;
  std::size_t rows_after = 0;
  std::size_t rows_touched = 0;
  std::size_t cells_changed = 0;
  // Per column, in table order, only nonzero: missing cells found (drop_missing), cells filled
  // (impute) or outlier cells found (drop_outliers, clip_outliers).
  std::vector<std::pair<std::string, std::size_t>> per_column;
  // Columns with missing cells that impute left alone because the strategy does not apply to
  // their kind (e.g. a categorical column under mean), with their missing-cell counts.
  std::vector<std::pair<std::string, std::size_t>> skipped;

  std::size_t dropped() const { return rows_before - rows_after; }
  // The per-column count for `column`, 0 if it is not listed.
  std::size_t count(const std::string& column) const {
    for (const auto& [name, n] : per_column)
      if (name == column) return n;
    return 0;
  }
  std::string str() const {
    std::ostringstream os;
    os << step << ": ";
    const auto n = [](std::size_t k, const char* what) {
      return std::to_string(k) + " " + what + (k == 1 ? "" : "s");
    };
    if (step.rfind("drop", 0) == 0)
      os << "dropped " << dropped() << " of " << n(rows_before, "row") << ", " << rows_after
         << " left";
    else
      os << n(cells_changed, "cell") << " in " << n(rows_touched, "row");
    const auto list = [&os](const std::vector<std::pair<std::string, std::size_t>>& v) {
      for (std::size_t i = 0; i < v.size(); ++i)
        os << (i ? ", " : "") << v[i].first << ": " << v[i].second;
    };
    if (!per_column.empty()) {
      os << " (";
      list(per_column);
      os << ")";
    }
    if (!skipped.empty()) {
      os << "; missing cells left in skipped columns (";
      list(skipped);
      os << ")";
    }
    return os.str();
  }
};

inline std::ostream& operator<<(std::ostream& os, const CleanReport& r) { return os << r.str(); }

// How impute fills a missing cell.
class Impute {
 public:
  enum class Kind { mean, median, most_frequent, constant };

  // The mean / median of the column's finite values (an infinity is no measurement to average).
  static Impute mean() { return Impute(Kind::mean); }
  static Impute median() {
    return Impute(Kind::median);
  }  // of an even count: the middle two's mean
  // The most frequent value or category; of a tie, the smallest value / first category.
  static Impute most_frequent() { return Impute(Kind::most_frequent); }
  // A fixed number (numeric columns) or category (categorical columns; added if new).
  static Impute constant(double value) {
    if (std::isnan(value)) fail("Impute::constant needs a value to fill in, not NaN.");
    Impute i(Kind::constant);
    i.value_ = value;
    return i;
  }
  static Impute constant(std::string category) {
    Impute i(Kind::constant);
    i.text_ = true;
    i.category_ = std::move(category);
    return i;
  }

  Kind kind() const { return kind_; }
  bool is_text() const { return text_; }
  double value() const { return value_; }
  const std::string& category() const { return category_; }
  bool applies_to(const Column& c) const {
    if (kind_ == Kind::most_frequent) return true;
    if (kind_ == Kind::constant) return text_ == c.categorical;
    return !c.categorical;
  }
  // "mean", "constant 0", "constant \"unknown\"": the step's name in reports and errors.
  std::string name() const {
    switch (kind_) {
      case Kind::mean:
        return "mean";
      case Kind::median:
        return "median";
      case Kind::most_frequent:
        return "most_frequent";
      case Kind::constant:
        break;
    }
    if (text_) return "constant \"" + excerpt(category_) + "\"";
    std::ostringstream os;
    os << "constant " << value_;
    return os.str();
  }

 private:
  explicit Impute(Kind k) : kind_(k) {}
  Kind kind_;
  bool text_ = false;
  double value_ = 0;
  std::string category_;
};

// An outlier is a value whose |x - mean| / std exceeds `threshold`, i.e. one outside
// [mean - threshold * std, mean + threshold * std], with the mean and the population standard
// deviation of the column's finite values; ±infinity is one too, unless the column's finite
// values are all equal (then it has no outliers). Clipping moves it to the nearer bound.
struct ZScore {
  double threshold = 3.0;
};
// An outlier is a value outside [lo, hi] (either bound may be infinite); clipping moves it to
// the nearer bound.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};
using OutlierRule = std::variant<ZScore, Range>;

namespace detail {

// The selected column positions, each once, in the order given; all columns when `cols` is empty.
inline std::vector<std::size_t> select_columns(const Table& t, const std::vector<ColumnRef>& cols) {
  std::vector<std::size_t> out;
  if (cols.empty()) {
    for (std::size_t c = 0; c < t.cols(); ++c) out.push_back(c);
    return out;
  }
  for (const ColumnRef& ref : cols) {
    const std::size_t c = t.index_of(ref);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

// Whether each column is selected (all when `cols` is empty): a lookup, not a search per column.
inline std::vector<bool> selected(const Table& t, const std::vector<ColumnRef>& cols) {
  std::vector<bool> sel(t.cols(), cols.empty());
  if (!cols.empty())
    for (std::size_t c : select_columns(t, cols)) sel[c] = true;
  return sel;
}

inline std::size_t count_missing(const Column& c) {
  std::size_t n = 0;
  for (double v : c.values) n += std::isnan(v) ? 1u : 0u;
  return n;
}

// Keeps the rows not marked in `drop` and fills in the report's row counts.
inline void drop_marked(Table& t, const std::vector<bool>& drop, CleanReport& r) {
  std::vector<std::size_t> keep;
  for (std::size_t row = 0; row < drop.size(); ++row)
    if (!drop[row]) keep.push_back(row);
  r.rows_touched = drop.size() - keep.size();
  if (keep.size() != drop.size()) t.keep_rows(keep);
  r.rows_after = t.rows();
}

inline std::vector<double> finite_values(const Column& c) {
  std::vector<double> v;
  for (double x : c.values)
    if (std::isfinite(x)) v.push_back(x);
  return v;
}

// The fill value for one column; throws (naming the table and column) when there is none.
inline double impute_value(Table& t, std::size_t col, const Impute& how) {
  Column& c = t.columns[col];
  const auto none = [&](const char* what) {
    const std::size_t missing = count_missing(c);
    std::ostringstream why;
    if (missing == c.values.size())
      why << "all " << missing << " of its cells are missing";
    else
      why << missing << " of its " << c.values.size() << " cells are missing and the rest hold no "
          << what;
    fail(t.describe(), ": impute(", how.name(), ") cannot fill column \"", excerpt(c.name),
         "\": ", why.str(), ", so there is no ", how.name(), " to fill them with.");
  };
  switch (how.kind()) {
    case Impute::Kind::mean: {
      const std::vector<double> v = finite_values(c);
      if (v.empty()) none("finite value");
      return stats::mean(v);
    }
    case Impute::Kind::median: {
      std::vector<double> v = finite_values(c);
      if (v.empty()) none("finite value");
      return stats::median(v);
    }
    case Impute::Kind::most_frequent: {
      std::vector<double> v;
      for (double x : c.values)
        if (!std::isnan(x)) v.push_back(x);
      if (v.empty()) none("value");
      return stats::most_frequent(v);  // of a tie the smallest value (first category)
    }
    case Impute::Kind::constant:
      break;
  }
  if (!how.is_text()) return how.value();
  const auto it = std::find(c.categories.begin(), c.categories.end(), how.category());
  return double(it - c.categories.begin());  // == categories.size() for a new category
}

// Cells equal for duplicate detection: missing equals missing, and -0 equals 0.
inline bool same_cell(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

inline std::uint64_t cell_hash(double v) {
  if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
  if (v == 0) v = 0;  // -0 hashes as 0
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// The rule's bounds for one numeric column: values outside [lo, hi] are outliers (NaN never).
struct Bounds {
  double lo, hi;
};

inline Bounds outlier_bounds(const Column& c, const OutlierRule& rule) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (const Range* r = std::get_if<Range>(&rule)) return {r->lo, r->hi};
  const double thr = std::get<ZScore>(rule).threshold;
  const std::vector<double> v = finite_values(c);
  if (v.empty()) return {-kInf, kInf};
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = sum / double(v.size());
  double ss = 0;  // two passes: the one-pass formula cancels badly when std << |mean|
  for (double x : v) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / double(v.size()));
  if (sd == 0) return {-kInf, kInf};
  return {mean - thr * sd, mean + thr * sd};
}

inline std::string rule_name(const OutlierRule& rule) {
  std::ostringstream os;
  if (const Range* r = std::get_if<Range>(&rule))
    os << "range [" << r->lo << ", " << r->hi << "]";
  else
    os << "|z| > " << std::get<ZScore>(rule).threshold;
  return os.str();
}

// Checks the rule and the columns, then returns each selected numeric column with its bounds.
inline std::vector<std::pair<std::size_t, Bounds>> outlier_columns(
    const Table& t, const OutlierRule& rule, const std::vector<ColumnRef>& cols,
    const std::string& step) {
  if (const Range* r = std::get_if<Range>(&rule)) {
    if (!(r->lo <= r->hi))
      fail(step, ": Range{", r->lo, ", ", r->hi, "} is not a range; lo must not exceed hi and ",
           "neither may be NaN.");
  } else {
    const double thr = std::get<ZScore>(rule).threshold;
    if (!(thr > 0) || !std::isfinite(thr))
      fail(step, ": the z-score threshold must be a positive number, not ", thr, ".");
  }
  t.check_consistent();
  std::vector<std::pair<std::size_t, Bounds>> out;
  for (std::size_t c : select_columns(t, cols)) {
    const Column& col = t.columns[c];
    if (col.categorical) {
      if (cols.empty()) continue;
      fail(t.describe(), ": ", step, " cannot judge column \"", excerpt(col.name),
           "\": it is categorical (", col.categories.size(),
           " categories), so no value of it lies outside a range or has a z-score.");
    }
    out.emplace_back(c, outlier_bounds(col, rule));
  }
  return out;
}

inline bool outside(double v, Bounds b) { return v < b.lo || v > b.hi; }  // false for NaN

}  // namespace detail

// Drops every row with a missing cell in `cols` (all columns when empty).
inline CleanReport drop_missing(Table& t, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"drop_missing", t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> drop(t.rows(), false);
  const std::vector<bool> sel = detail::selected(t, cols);
  for (std::size_t c = 0; c < t.cols(); ++c) {
    if (!sel[c]) continue;
    const Column& col = t.columns[c];
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (col.missing(row)) drop[row] = true, ++n;
    if (n) r.per_column.emplace_back(col.name, n);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Fills the missing cells of `cols` (all columns when empty) as `how` says. Errors name the
// column: a column named in `cols` whose kind the strategy does not apply to, or a column with
// missing cells and no value to compute the fill from.
inline CleanReport impute(Table& t, const Impute& how, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"impute(" + how.name() + ")", t.rows(), t.rows(), 0, 0, {}, {}};
  const std::vector<bool> sel = detail::selected(t, cols);
  // First every fill value (and every error), then the changes.
  std::vector<std::pair<std::size_t, double>> fills;
  for (std::size_t c = 0; c < t.cols(); ++c) {
    if (!sel[c]) continue;
    const Column& col = t.columns[c];
    const std::size_t missing = detail::count_missing(col);
    if (!how.applies_to(col)) {
      if (!cols.empty())
        fail(t.describe(), ": impute(", how.name(), ") cannot fill column \"", excerpt(col.name),
             "\", which is ", col.categorical ? "categorical" : "numeric",
             col.categorical ? "; use Impute::most_frequent() or Impute::constant(\"text\") for it."
                             : "; use a numeric Impute::constant or another strategy for it.");
      if (missing) r.skipped.emplace_back(col.name, missing);
      continue;
    }
    if (missing) fills.emplace_back(c, detail::impute_value(t, c, how));
  }
  std::vector<bool> touched(t.rows(), false);
  for (const auto& [c, value] : fills) {
    Column& col = t.columns[c];
    if (col.categorical && value == double(col.categories.size()))
      col.categories.push_back(how.category());
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (col.missing(row)) col.values[row] = value, touched[row] = true, ++n;
    r.per_column.emplace_back(col.name, n);
    r.cells_changed += n;
  }
  r.rows_touched = std::size_t(std::count(touched.begin(), touched.end(), true));
  return r;
}

// Drops every row equal in `cols` (all columns when empty) to an earlier row, keeping the first.
inline CleanReport drop_duplicates(Table& t, const std::vector<ColumnRef>& cols = {}) {
  t.check_consistent();
  CleanReport r{"drop_duplicates", t.rows(), t.rows(), 0, 0, {}, {}};
  const std::vector<std::size_t> sel = detail::select_columns(t, cols);
  const auto equal = [&](std::size_t a, std::size_t b) {
    for (std::size_t c : sel)
      if (!detail::same_cell(t.columns[c].values[a], t.columns[c].values[b])) return false;
    return true;
  };
  // Rows bucketed by a hash of their cells, so the check is linear rather than quadratic.
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> kept;
  std::vector<bool> drop(t.rows(), false);
  for (std::size_t row = 0; row < t.rows(); ++row) {
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    for (std::size_t c : sel)
      h = (h ^ detail::cell_hash(t.columns[c].values[row])) * 0x100000001b3ull + (h >> 29);
    std::vector<std::size_t>& bucket = kept[h];
    drop[row] =
        std::any_of(bucket.begin(), bucket.end(), [&](std::size_t k) { return equal(k, row); });
    if (!drop[row]) bucket.push_back(row);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Drops every row with an outlier under `rule` in `cols` (all numeric columns when empty).
inline CleanReport drop_outliers(Table& t, const OutlierRule& rule,
                                 const std::vector<ColumnRef>& cols = {}) {
  const std::string step = "drop_outliers(" + detail::rule_name(rule) + ")";
  const auto bounds = detail::outlier_columns(t, rule, cols, step);
  CleanReport r{step, t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> drop(t.rows(), false);
  for (const auto& [c, b] : bounds) {
    std::size_t n = 0;
    for (std::size_t row = 0; row < t.rows(); ++row)
      if (detail::outside(t.columns[c].values[row], b)) drop[row] = true, ++n;
    if (n) r.per_column.emplace_back(t.columns[c].name, n);
  }
  detail::drop_marked(t, drop, r);
  return r;
}

// Moves every outlier under `rule` in `cols` (all numeric columns when empty) to the nearer bound.
inline CleanReport clip_outliers(Table& t, const OutlierRule& rule,
                                 const std::vector<ColumnRef>& cols = {}) {
  const std::string step = "clip_outliers(" + detail::rule_name(rule) + ")";
  const auto bounds = detail::outlier_columns(t, rule, cols, step);
  CleanReport r{step, t.rows(), t.rows(), 0, 0, {}, {}};
  std::vector<bool> touched(t.rows(), false);
  for (const auto& [c, b] : bounds) {
    std::size_t n = 0;
    std::vector<double>& values = t.columns[c].values;
    for (std::size_t row = 0; row < values.size(); ++row)
      if (detail::outside(values[row], b))
        values[row] = values[row] < b.lo ? b.lo : b.hi, touched[row] = true, ++n;
    if (n) r.per_column.emplace_back(t.columns[c].name, n);
    r.cells_changed += n;
  }
  r.rows_touched = std::size_t(std::count(touched.begin(), touched.end(), true));
  return r;
}

}  // namespace ctnn::data
// ---- end ctnn/data/clean.hpp ----
// ---- begin ctnn/data/csv.hpp ----
// ctnn/data/csv.hpp: reading delimited text (CSV, TSV, whitespace-separated) into a Table.
//
// read_csv(path, opts) reads a plain or gzip file (gzip is recognised by its magic bytes 1f 8b);
// parse_csv(text, name, opts) parses text already in memory, `name` standing in for the path in
// messages. The text is:
//   - an optional UTF-8 byte order mark, then `skip_lines` physical lines that are ignored;
//   - a header row naming the columns when `header` is true (else they are named "0", "1", ...;
//     `column_names` overrides either);
//   - data rows, one record a line, fields separated by `delimiter`, or by runs of spaces and tabs
//     when `whitespace` is true. Lines end in LF, CRLF or CR; blank lines are skipped.
//   - Fields follow RFC 4180: a field starting with a double quote runs to the matching quote and
//     may hold delimiters, line breaks and "" (one quote). Unquoted fields lose surrounding spaces.
// Cells: an empty cell or one of `missing` is missing (NaN). A column whose other cells all parse
// as numbers (std::from_chars, optional leading '+') is numeric; a number beyond double's range
// reads as the nearest double, as Python's float() and pandas read it: 1e-400 as 0 (-1e-400 as
// -0), 1e400 as inf, like the text "inf" does (Dataset checks refuse infinite features). A
// column with no number is categorical, its categories in order of first appearance;
// `categorical` forces columns to be categorical (integer codes, say), the category names being
// the cells' text.
// A column mixing numbers and text is an error that names the cell, unless the numbers are the
// majority and `bad_numbers` is BadNumbers::missing: then the text cells are read as missing and
// counted in the CsvReport that `report` points to (if any).
//
// Every error is a ctnn::Error naming the file, the line and, for a cell, the column, numbered
// from 1 as in an editor ("wine.csv, line 17, column 4 (\"ash\")"): a row with the wrong number of
// fields, an unterminated quote (the line where it opened), text after a closing quote, a mixed
// column, duplicate column names, no data rows, and a missing, unreadable or cut-off file. Table
// ColumnRef indices (in `categorical`) count from 0, like everywhere else in ctnn.
//
// The result's `lines` holds the line each row starts on (1-based), `source` the path.
//
// read_sklearn_csv(path) reads scikit-learn's bundled format: line 1 is
// `n_samples,n_features,class names...`, then rows of features and an integer class. Both counts
// are checked. Columns are "feature_0", ... (or the names given) and a categorical "target" whose
// categories are the class names in the file's order, marked Column::ordered so to_dataset keeps
// class i as class i.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

// ---- begin ctnn/data/gzip.hpp ----
// ctnn/data/gzip.hpp: sequential reading of a file that may be gzip-compressed.
//
// zlib's gzread recognises gzip by its magic bytes (1f 8b) and passes any other file through
// unchanged, so one Reader serves plain and compressed files alike. The format readers (idx.hpp,
// csv.hpp) share it; `kind` ("IDX file", "CSV file") names the file in every message.
//
// Errors are ctnn::Error sentences naming the path: a missing file (with the system's reason), a
// path that is not a regular file, a file that cannot be opened, and corrupt gzip data (with
// zlib's message). A stream that merely ends early is not an error here: callers ask cut_off()
// and word the truncation in terms of their own format.
//
// A Reader can also read bytes already in memory (a name stands in for the path in messages),
// with gzread's rules: gzip when the bytes start with 1f 8b, else plain; concatenated gzip
// members are read one after another, and non-gzip bytes after a member are ignored. One
// difference: gzread decompresses ahead of what was asked, the memory Reader does not, so
// corruption past the bytes a caller reads may go unnoticed there (as it would past a limit).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>


namespace ctnn::data::gzip_detail {

inline constexpr std::size_t kChunk = std::size_t{1} << 20;  // 1 MiB reads: few calls, small buffer
// Deflate's best case is 1032:1, so a gzip file of m bytes never decompresses to more than
// 1032 * m bytes: a safe bound on what to reserve before the data is actually read.
inline constexpr std::uint64_t kMaxDeflateRatio = 1032;

// One open file, read sequentially through zlib; tracks how many (decompressed) bytes it gave.
class Reader {
 public:
  Reader(std::string path, std::string kind) : path_(std::move(path)), kind_(std::move(kind)) {
    std::error_code ec;
    const auto st = std::filesystem::status(path_, ec);
    if (st.type() == std::filesystem::file_type::not_found)
      fail("The ", kind_, " '", path_, "' does not exist (",
           ec ? ec.message() : std::generic_category().message(ENOENT), ").");
    if (ec) fail("Cannot open the ", kind_, " '", path_, "': ", ec.message(), ".");
    if (std::filesystem::is_directory(st))
      fail("The ", kind_, " '", path_, "' is a directory, not a file.");
    if (!std::filesystem::is_regular_file(st))
      fail("The ", kind_, " '", path_, "' is not a regular file.");
    file_size_ = std::filesystem::file_size(path_, ec);
    if (ec) fail("Cannot read the size of the ", kind_, " '", path_, "': ", ec.message(), ".");
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr)
      fail("Cannot open the ", kind_, " '", path_, "' for reading",
           errno != 0 ? ": " + std::generic_category().message(errno) : std::string(), ".");
    gzbuffer(file_, 1u << 18);  // 256 KiB input buffer: fewer syscalls than zlib's 8 KiB default
  }
  // Reads `bytes` (which must outlive the Reader); `name` stands in for the path in messages.
  Reader(std::span<const std::uint8_t> bytes, std::string name, std::string kind)
      : path_(std::move(name)), kind_(std::move(kind)), file_size_(bytes.size()),
        mem_(std::make_unique<Memory>(bytes)) {}
  ~Reader() {
    if (file_ != nullptr) gzclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }
  std::uint64_t consumed() const { return consumed_; }
  // True for a plain file, where the data size is known from the file size.
  bool plain() { return mem_ ? !mem_->gzip : gzdirect(file_) != 0; }

  // Reads up to n bytes; fewer only at end of input. Throws on corrupt gzip data.
  std::size_t read(void* dst, std::size_t n) {
    if (mem_) {
      const std::size_t got = mem_->read(static_cast<unsigned char*>(dst), n, path_);
      consumed_ += got;
      return got;
    }
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n) {
      const auto want = static_cast<unsigned>(std::min(n - got, kChunk));
      const int r = gzread(file_, out + got, want);
      check_stream();
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
      consumed_ += static_cast<std::uint64_t>(r);
      if (static_cast<unsigned>(r) < want) break;
    }
    return got;
  }

  // Everything from here to the end of the input. Throws when a gzip stream is cut off, since
  // the text would silently lose its tail.
  std::string read_all() {
    std::string out;
    if (plain()) out.reserve(static_cast<std::size_t>(file_size_));
    constexpr std::size_t kStep = std::size_t{1} << 16;  // 64 KiB: small files stay small
    for (;;) {
      const std::size_t at = out.size();
      out.resize(at + kStep);
      const std::size_t got = read(out.data() + at, kStep);
      out.resize(at + got);
      if (got < kStep) break;
    }
    if (cut_off())
      fail("The gzip file '", path_, "' is cut off: its compressed stream ends after ", out.size(),
           " bytes of data, without its end marker and checksum.");
    return out;
  }

  // True when the input ended inside a gzip stream (zlib's Z_BUF_ERROR).
  bool cut_off() {
    if (mem_) return mem_->cut;
    int err = Z_OK;
    gzerror(file_, &err);
    return err == Z_BUF_ERROR;
  }
  // Why the input ended early, for messages.
  const char* end_reason() { return cut_off() ? " (the gzip stream is cut off)" : ""; }

 private:
  // Bytes in memory, copied (plain) or inflated (gzip) as read() asks for them.
  struct Memory {
    std::span<const std::uint8_t> in;
    std::size_t pos = 0;
    bool gzip = false;
    bool started = false;      // inflateInit2 done
    bool member_end = false;   // the last gzip member ended; look for another
    bool done = false;         // no more output
    bool cut = false;          // the input ended inside a gzip member
    z_stream z{};

    explicit Memory(std::span<const std::uint8_t> bytes)
        : in(bytes), gzip(bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B) {}
    ~Memory() {
      if (started) inflateEnd(&z);
    }
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;

    static bool gzip_at(std::span<const std::uint8_t> b, std::size_t at) {
      return b.size() - at >= 2 && b[at] == 0x1F && b[at + 1] == 0x8B;
    }

    std::size_t read(unsigned char* out, std::size_t n, const std::string& name) {
      if (!gzip) {
        const std::size_t k = std::min(n, in.size() - pos);
        if (k > 0) std::memcpy(out, in.data() + pos, k);
        pos += k;
        return k;
      }
      std::size_t got = 0;
      while (got < n && !done) {
        if (!started) {
          // 15 + 16: a 32 KiB window and a gzip (not zlib) wrapper, as gzread uses.
          if (inflateInit2(&z, 15 + 16) != Z_OK)
            fail("Cannot start decompressing '", name, "': zlib could not allocate its state.");
          started = true;
        } else if (member_end) {
          // Like gzread: another member follows, or the rest is trailing garbage to ignore.
          if (!gzip_at(in, pos)) {
            done = true;
            break;
          }
          inflateReset(&z);
          member_end = false;
        }
        z.next_in = const_cast<Bytef*>(in.data() + pos);
        z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size() - pos, UINT_MAX));
        z.next_out = out + got;
        z.avail_out = static_cast<uInt>(std::min<std::size_t>(n - got, UINT_MAX));
        const uInt avail_in = z.avail_in, avail_out = z.avail_out;
        const int r = inflate(&z, Z_NO_FLUSH);
        pos += avail_in - z.avail_in;
        got += avail_out - z.avail_out;
        if (r == Z_STREAM_END) {
          member_end = true;
        } else if (r == Z_DATA_ERROR) {
          corrupt(name, z.msg != nullptr ? z.msg : "compressed data error");
        } else if (r == Z_MEM_ERROR) {
          corrupt(name, "out of memory");
        } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_NEED_DICT, Z_STREAM_ERROR
          corrupt(name, "internal error: inflate stream corrupt");  // gzread's words
        } else if (avail_in == z.avail_in && avail_out == z.avail_out) {
          // No progress: the input ended inside a member (inflate has flushed all it decoded),
          // a truncation for the caller to word.
          cut = true;
          done = true;
        }
      }
      return got;
    }
  };

  void check_stream() {
    int err = Z_OK;
    std::string msg = gzerror(file_, &err);
    // Z_BUF_ERROR only means the input ended inside a gzip stream: reported as truncation.
    if (err == Z_OK || err == Z_BUF_ERROR) return;
    // zlib prefixes its message with the path, which ours already names. No byte offset either:
    // zlib decompresses ahead of what we asked for, so it would not locate the damage.
    if (msg.starts_with(path_ + ": ")) msg.erase(0, path_.size() + 2);
    corrupt(path_, msg);
  }
  [[noreturn]] static void corrupt(const std::string& path, const std::string& zlib_message) {
    fail("The gzip file '", path, "' is corrupt: zlib says \"", zlib_message, "\".");
  }

  std::string path_;
  std::string kind_;
  gzFile file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t consumed_ = 0;
  std::unique_ptr<Memory> mem_;  // set when reading bytes in memory instead of a file
};

}  // namespace ctnn::data::gzip_detail
// ---- end ctnn/data/gzip.hpp ----

namespace ctnn::data {

// What to do with a text cell in a column whose other cells are numbers.
enum class BadNumbers {
  error,    // throw, naming the cell (the default: a typo should not silently become NaN)
  missing,  // read it as missing (NaN) and count it in the CsvReport
};

// Facts about a read that the Table cannot hold.
struct CsvReport {
  std::size_t rows = 0;
  std::size_t missing_cells = 0;    // empty cells and missing markers
  std::size_t bad_numbers = 0;      // text cells in numeric columns read as missing
  std::vector<std::string> notes;   // one sentence per column that had such cells
};

struct CsvOptions {
  char delimiter = ',';             // ignored when `whitespace` is true
  bool whitespace = false;          // runs of spaces and tabs separate fields
  bool header = true;               // the first (non-skipped) row names the columns
  std::size_t skip_lines = 0;       // physical lines to ignore before the header or data
  std::vector<std::string> column_names = {};  // if not empty: the names of all columns, in order
  std::vector<std::string> missing = {"NA", "N/A", "NaN", "nan", "?", "null"};
  std::vector<ColumnRef> categorical = {};  // columns to read as categories even if numeric
  BadNumbers bad_numbers = BadNumbers::error;
  CsvReport* report = nullptr;      // if set, filled in by the read
};

namespace csv_detail {

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// The nearest double to the decimal number `s`, which std::from_chars found well formed but out of
// range: +-0 when its magnitude is below double's smallest, +-inf when above its largest. The
// decimal exponent of its first significant digit tells which (std::strtod would too, but reads
// the decimal point of the current locale).
inline double out_of_range_value(std::string_view s) {
  const bool negative = s.front() == '-';
  if (negative) s.remove_prefix(1);
  long long lead = 0;  // the power of ten of the first nonzero digit, before the exponent
  bool seen_point = false, seen_digit = false;
  std::size_t i = 0;
  for (; i < s.size() && s[i] != 'e' && s[i] != 'E'; ++i) {
    if (s[i] == '.') {
      seen_point = true;
    } else if (!seen_digit && s[i] == '0') {
      if (seen_point) --lead;
    } else if (!seen_digit) {
      seen_digit = true;
      if (seen_point) --lead;
    } else if (!seen_point) {
      ++lead;
    }
  }
  long long exponent = 0;  // saturated: only its sign against `lead` matters
  if (i < s.size()) {
    std::string_view e = s.substr(i + 1);
    const bool minus = !e.empty() && e.front() == '-';
    if (!e.empty() && (e.front() == '-' || e.front() == '+')) e.remove_prefix(1);
    for (char c : e) exponent = std::min<long long>(exponent * 10 + (c - '0'), 1LL << 40);
    if (minus) exponent = -exponent;
  }
  const double magnitude = lead + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -magnitude : magnitude;
}

// The whole of `s` (spaces around it allowed) as a double; false if it is not exactly a number.
inline bool parse_number(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') {  // from_chars rejects '+', spreadsheets write it
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) return false;
  }
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (end != s.data() + s.size()) return false;
  if (ec == std::errc::result_out_of_range) {  // a well-formed number past double's range
    out = out_of_range_value(s);
    return true;
  }
  return ec == std::errc();
}

// "wine.csv, line 17" and "wine.csv, line 17, column 4 (\"ash\")" (column counted from 1).
inline std::string at(const std::string& source, std::size_t line) {
  return source + ", line " + std::to_string(line);
}
inline std::string at(const std::string& source, std::size_t line, std::size_t col,
                      const std::string& name = "") {
  return at(source, line) + ", column " + std::to_string(col + 1) +
         (name.empty() ? "" : " (\"" + excerpt(name) + "\")");
}

struct Field {
  std::string text;       // unquoted fields trimmed; quoted ones exactly as written, unescaped
  std::size_t line = 0;   // where the field starts
  bool quoted = false;
};

// Splits text into records of fields, tracking physical line numbers.
class Parser {
 public:
  Parser(std::string_view text, const std::string& source, const CsvOptions& opts)
      : s_(text), source_(source), opts_(opts) {
    if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark, as Excel writes
  }

  void skip_lines(std::size_t n) {
    for (std::size_t i = 0; i < n && pos_ < s_.size(); ++i) {
      while (!at_eol()) ++pos_;
      end_line();
    }
  }

  // Reads the next non-blank record into `fields`; false at the end of the text.
  bool next(std::vector<Field>& fields) {
    for (;;) {
      while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) return false;
      if (!at_eol()) break;
      end_line();
    }
    record_line_ = line_;
    fields.clear();
    for (;;) {
      Field f;
      while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
      f.line = line_;
      if (pos_ < s_.size() && s_[pos_] == '"')
        read_quoted(f, fields.size());
      else
        read_plain(f);
      fields.push_back(std::move(f));
      if (opts_.whitespace)
        while (pos_ < s_.size() && is_blank(s_[pos_])) ++pos_;
      if (at_eol()) {
        if (pos_ < s_.size()) end_line();
        return true;
      }
      if (!opts_.whitespace) ++pos_;  // the delimiter
    }
  }

  std::size_t record_line() const { return record_line_; }

 private:
  bool separator(char c) const { return opts_.whitespace ? is_blank(c) : c == opts_.delimiter; }
  // Blanks around a field are dropped, unless the blank is itself the delimiter.
  bool trimmable(char c) const { return is_blank(c) && (opts_.whitespace || c != opts_.delimiter); }
  bool at_eol() const { return pos_ >= s_.size() || s_[pos_] == '\n' || s_[pos_] == '\r'; }
  void end_line() {  // consumes LF, CRLF or CR
    if (pos_ < s_.size() && s_[pos_] == '\r') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '\n') ++pos_;
    ++line_;
  }

  void read_plain(Field& f) {
    const std::size_t start = pos_;
    while (!at_eol() && !separator(s_[pos_])) ++pos_;
    std::size_t end = pos_;
    while (end > start && trimmable(s_[end - 1])) --end;
    f.text.assign(s_.substr(start, end - start));
  }

  void read_quoted(Field& f, std::size_t col) {
    f.quoted = true;
    ++pos_;
    for (;;) {
      if (pos_ >= s_.size())
        fail(at(source_, f.line, col), ": the quoted field that opens on this line is never "
             "closed (the text ends inside it). A quote inside a quoted field is written as \"\".");
      const char c = s_[pos_];
      if (c == '"') {
        if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '"') {
          f.text += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\r' || c == '\n') {  // a line break inside quotes is part of the field
        f.text += '\n';
        end_line();
        continue;
      }
      f.text += c;
      ++pos_;
    }
    const std::size_t after = pos_;
    while (pos_ < s_.size() && trimmable(s_[pos_])) ++pos_;
    if (opts_.whitespace && pos_ > after) return;
    if (!at_eol() && !separator(s_[pos_]))
      fail(at(source_, line_, col), ": unexpected text after the closing quote of a quoted field "
           "(which opened on line ", f.line,
           "). A quote inside a quoted field is written as \"\".");
  }

  std::string_view s_;
  const std::string& source_;
  const CsvOptions& opts_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::size_t record_line_ = 0;
};

// One column while the rows are read: numbers as they come, text cells kept until the column's
// type is known at the end.
struct Accum {
  struct Text {
    std::size_t row, line;
    std::string text;
  };
  std::vector<double> num;  // one per row; NaN for a missing or text cell
  std::vector<Text> text;   // the non-missing cells that are not numbers (all, if forced)
  std::size_t numbers = 0;
  std::size_t first_number_line = 0;
  std::string first_number;
  bool forced = false;      // listed in CsvOptions::categorical
};

inline void check_options(const CsvOptions& o) {
  if (!o.whitespace && (o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r'))
    fail("CsvOptions::delimiter cannot be a double quote or a line break (it is character code ",
         int(o.delimiter), ").");
}

// Sets up the table's columns from their names and marks the forced categorical ones.
inline void start_columns(Table& t, std::vector<Accum>& acc, std::vector<std::string> names,
                          const CsvOptions& o, std::size_t first_line) {
  if (!o.column_names.empty()) {
    if (o.column_names.size() != names.size())
      fail("CsvOptions::column_names gives ", o.column_names.size(), " names, but ",
           at(t.source, first_line), " has ", names.size(), " fields.");
    names = o.column_names;
  }
  // A map, not a pairwise check: a hostile header of a million fields must not take hours.
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t c = 0; c < names.size(); ++c)
    if (const auto [d, added] = seen.try_emplace(names[c], c); !added)
      fail(at(t.source, first_line), ": columns ", d->second + 1, " and ", c + 1,
           " are both named \"", excerpt(names[c]), "\"; column names must be unique.");
  t.columns.resize(names.size());
  for (std::size_t c = 0; c < names.size(); ++c) t.columns[c].name = std::move(names[c]);
  acc.assign(t.columns.size(), Accum{});
  for (const ColumnRef& ref : o.categorical) {
    std::size_t c = 0;
    try {
      c = t.index_of(ref);
    } catch (const Error& e) {
      fail("CsvOptions::categorical: ", e.what());
    }
    acc[c].forced = true;
  }
}

inline bool is_missing(std::string_view cell, const CsvOptions& o) {
  cell = trim(cell);
  if (cell.empty()) return true;
  for (const std::string& m : o.missing)
    if (cell == m) return true;
  return false;
}

// Decides the column's type and fills `col`; throws for a mixed column unless allowed.
inline void finish_column(Column& col, std::size_t c, Accum& a, const std::string& source,
                          const CsvOptions& o, CsvReport& report) {
  const std::size_t rows = a.num.size();
  if (a.forced || (a.numbers == 0 && !a.text.empty())) {
    col.categorical = true;
    col.values.assign(rows, std::numeric_limits<double>::quiet_NaN());
    std::unordered_map<std::string, std::size_t> index;
    for (Accum::Text& cell : a.text) {
      auto [it, added] = index.try_emplace(cell.text, col.categories.size());
      if (added) col.categories.push_back(cell.text);
      col.values[cell.row] = double(it->second);
    }
    return;
  }
  if (!a.text.empty()) {
    const Accum::Text& bad = a.text.front();
    if (a.numbers < a.text.size())
      fail(at(source, a.first_number_line, c, col.name), ": \"", excerpt(a.first_number),
           "\" is a number, but the column's other ", a.text.size(),
           " non-missing cells are text (the first, \"", excerpt(bad.text), "\", on line ",
           bad.line, "). List the column in CsvOptions::categorical to read every cell as a "
           "category name.");
    if (o.bad_numbers == BadNumbers::error)
      fail(at(source, bad.line, c, col.name), ": \"", excerpt(bad.text),
           "\" is not a number; the column's other cells are numeric (", a.numbers, " numbers, ",
           a.text.size(), " text cells). Set "
           "CsvOptions::bad_numbers = BadNumbers::missing to read such cells as missing, or list "
           "the column in CsvOptions::categorical to read it as text.");
    report.bad_numbers += a.text.size();
    report.notes.push_back(source + ", column " + std::to_string(c + 1) + " (\"" +
                           excerpt(col.name) + "\"): " + std::to_string(a.text.size()) +
                           " text cells read as missing, the first \"" + excerpt(bad.text) +
                           "\" on line " + std::to_string(bad.line) + ".");
  }
  col.values = std::move(a.num);
}

inline std::string read_text(const std::string& path) {
  gzip_detail::Reader in(path, "CSV file");
  std::string text = in.read_all();
  if (const auto nul = text.find('\0'); nul != std::string::npos) {
    const std::size_t line = 1 + std::size_t(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n'));
    fail("The CSV file '", path, "' holds a NUL byte on line ", line,
         ": it looks like a binary file, not text.");
  }
  return text;
}

}  // namespace csv_detail

// Parses delimited text held in memory; `source_name` names it in messages and in Table::source.
inline Table parse_csv(std::string_view text, const std::string& source_name,
                       CsvOptions opts = {}) {
  using namespace csv_detail;
  check_options(opts);
  CsvReport report;
  Table t;
  t.source = source_name;
  Parser p(text, t.source, opts);
  p.skip_lines(opts.skip_lines);

  std::vector<Field> fields;
  std::vector<Accum> acc;
  std::size_t first_line = 0;  // the header's line, or the first data row's
  bool started = false;
  if (opts.header) {
    if (!p.next(fields))
      fail("The CSV text from ", source_name, " is empty", opts.skip_lines ? " after the " : "",
           opts.skip_lines ? std::to_string(opts.skip_lines) + " skipped lines" : "",
           ": it has no header and no data rows.");
    first_line = p.record_line();
    std::vector<std::string> names;
    for (std::size_t c = 0; c < fields.size(); ++c)
      names.push_back(fields[c].text.empty() ? std::to_string(c) : std::move(fields[c].text));
    start_columns(t, acc, std::move(names), opts, first_line);
    started = true;
  }
  while (p.next(fields)) {
    if (!started) {
      first_line = p.record_line();
      std::vector<std::string> names;
      for (std::size_t c = 0; c < fields.size(); ++c) names.push_back(std::to_string(c));
      start_columns(t, acc, std::move(names), opts, first_line);
      started = true;
    }
    if (fields.size() != t.cols())
      fail(at(source_name, p.record_line()), " has ", fields.size(), " fields, but ",
           opts.header ? "the header (line " : "the first row (line ", first_line,
           opts.header ? ") names " : ") has ", t.cols(), opts.header ? " columns." : " fields.",
           fields.size() > t.cols() ? " A field that contains the delimiter must be quoted." : "");
    const std::size_t row = t.lines.size();
    t.lines.push_back(p.record_line());
    for (std::size_t c = 0; c < fields.size(); ++c) {
      Accum& a = acc[c];
      Field& f = fields[c];
      double v = 0;
      if (is_missing(f.text, opts)) {
        a.num.push_back(std::numeric_limits<double>::quiet_NaN());
        ++report.missing_cells;
      } else if (!a.forced && parse_number(f.text, v)) {
        a.num.push_back(v);
        if (a.numbers++ == 0) {
          a.first_number_line = f.line;
          a.first_number = f.text;
        }
      } else {
        a.num.push_back(std::numeric_limits<double>::quiet_NaN());
        a.text.push_back({row, f.line, std::move(f.text)});
      }
    }
  }
  if (t.lines.empty())
    fail("The CSV text from ", source_name, " has no data rows",
         opts.header ? " (only a header, on line " + std::to_string(first_line) + ")" : "", ".");
  for (std::size_t c = 0; c < t.cols(); ++c)
    finish_column(t.columns[c], c, acc[c], source_name, opts, report);
  report.rows = t.rows();
  if (opts.report != nullptr) *opts.report = std::move(report);
  return t;
}

// Reads a CSV file, plain or gzip; see the contract at the top of this header.
inline Table read_csv(const std::string& path, CsvOptions opts = {}) {
  const std::string text = csv_detail::read_text(path);
  return parse_csv(text, path, std::move(opts));
}

// Reads scikit-learn's CSV format (line 1: n_samples,n_features,class names...). Columns are
// `feature_names` (n_features of them) or "feature_0", ...; then "target", categorical with the
// class names in the file's order when line 1 names classes, else numeric.
inline Table read_sklearn_csv(const std::string& path,
                              const std::vector<std::string>& feature_names = {}) {
  using csv_detail::at;
  const std::string text = csv_detail::read_text(path);
  std::string_view first(text);
  if (first.starts_with("\xEF\xBB\xBF")) first.remove_prefix(3);
  first = first.substr(0, first.find_first_of("\r\n"));
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t comma = first.find(',', start);
    parts.emplace_back(csv_detail::trim(first.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const auto count = [&](std::size_t i, const char* what) {
    std::size_t n = 0;
    const std::string& s = parts[i];
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
      fail(at(path, 1, i), ": \"", excerpt(s), "\" is not a ", what,
           "; a scikit-learn CSV file starts with the line n_samples,n_features,class names...");
    return n;
  };
  if (parts.size() < 2)
    fail(at(path, 1), ": \"", excerpt(first), "\" is not a scikit-learn header; it should be "
         "n_samples,n_features,class names...");
  const std::size_t n_samples = count(0, "sample count");
  const std::size_t n_features = count(1, "feature count");
  const std::vector<std::string> classes(parts.begin() + 2, parts.end());
  for (std::size_t k = 0; k < classes.size(); ++k)
    if (classes[k].empty()) fail(at(path, 1, k + 2), ": the name of class ", k, " is empty.");
  if (!feature_names.empty() && feature_names.size() != n_features)
    fail("read_sklearn_csv was given ", feature_names.size(), " feature names, but ", at(path, 1),
         " says the file has ", n_features, " features.");

  CsvOptions opts;
  opts.header = false;
  opts.skip_lines = 1;
  Table t = parse_csv(text, path, opts);
  if (t.cols() != n_features + 1)
    fail(at(path, t.lines.front()), " has ", t.cols(), " fields, but line 1 says there are ",
         n_features, " features, so each row should have ", n_features + 1,
         " (the features, then the class).");
  if (t.rows() != n_samples)
    fail(path, " has ", t.rows(), " data rows (lines ", t.lines.front(), " to ", t.lines.back(),
         "), but its line 1 says ", n_samples, " samples.");
  for (std::size_t c = 0; c < t.cols(); ++c) {
    Column& col = t.columns[c];
    if (col.categorical) {  // its first category is the first text cell
      const std::size_t r = std::size_t(std::find(col.values.begin(), col.values.end(), 0.0) -
                                        col.values.begin());
      fail(at(path, t.lines[r], c), ": \"", excerpt(col.categories.front()), "\" is text, and the "
           "column holds no number; a scikit-learn CSV file holds only numbers.");
    }
    col.name = c == n_features ? "target"
               : feature_names.empty() ? "feature_" + std::to_string(c)
                                       : feature_names[c];
  }
  Column& target = t.columns.back();
  if (!classes.empty()) {
    for (std::size_t r = 0; r < t.rows(); ++r) {
      const double v = target.values[r];
      if (std::isnan(v) || v < 0 || v >= double(classes.size()) || v != std::floor(v))
        fail(at(path, t.lines[r], n_features, "target"), ": \"", excerpt(target.text(r)),
             "\" is not a class; line 1 names ", classes.size(), " classes, numbered 0 to ",
             classes.size() - 1, ".");
    }
    target.categorical = true;
    target.ordered = true;  // the file's class list: class i stays class i
    target.categories = classes;
  }
  t.check_consistent();  // duplicate names among `feature_names`
  return t;
}

}  // namespace ctnn::data
// ---- end ctnn/data/csv.hpp ----
// ---- begin ctnn/data/dataset.hpp ----
// ctnn/data/dataset.hpp: an in-memory dataset of fixed-size samples.
//
// A Dataset holds `size()` samples. Each sample is `feature_size()` floats stored contiguously in
// `x` (row-major, channels last for images: height, width, channels), and either
//   - a class label in `labels` (sparse classification; `num_classes` is the label range), or
//   - a target vector of `target_size` floats in `targets` (one-hot, binary or regression).
// `sample_shape` records the per-sample dimensions (e.g. {28, 28, 1}); a model checks it against
// its Input shape before training or evaluation. `feature_names` and `class_names` are optional
// (empty, or one name per feature / class) and only label reports.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>


namespace ctnn::data {

struct Dataset {
  std::vector<std::size_t> sample_shape;  // per-sample dimensions, channels last
  std::vector<float> x;                   // size() * feature_size() values
  std::vector<std::int32_t> labels;       // size() labels, or empty when targets are used
  std::vector<float> targets;             // size() * target_size values, or empty
  std::size_t target_size = 0;
  std::size_t num_classes = 0;            // labels lie in [0, num_classes)
  std::vector<std::string> feature_names;  // optional: one name per feature (from a CSV header)
  std::vector<std::string> class_names;    // optional: one name per class, for reports

  std::size_t feature_size() const {
    std::size_t n = 1;
    for (std::size_t d : sample_shape) n *= d;
    return sample_shape.empty() ? 0 : n;
  }
  std::size_t size() const {
    const std::size_t f = feature_size();
    return f == 0 ? 0 : x.size() / f;
  }
  bool has_labels() const { return !labels.empty(); }
  bool has_targets() const { return !targets.empty(); }
  const float* sample(std::size_t i) const { return x.data() + i * feature_size(); }

  // "{28, 28, 1}", for messages.
  std::string shape_text() const {
    std::string s = "{";
    for (std::size_t i = 0; i < sample_shape.size(); ++i)
      s += (i ? ", " : "") + std::to_string(sample_shape[i]);
    return s + "}";
  }

  // Throws ctnn::Error unless the sizes of x, labels and targets agree with each other.
  void check_consistent(const char* what = "dataset") const {
    const std::size_t f = feature_size();
    if (f == 0) fail("The ", what, " has no sample shape (feature size 0).");
    if (x.size() % f != 0)
      fail("The ", what, "'s sample shape ", shape_text(), " does not divide its data: ", x.size(),
           " feature values are not a whole number of samples of ", f, " values.");
    const std::size_t n = x.size() / f;
    // Per-sample counts that disagree with the shape's usually mean a wrong sample_shape, not
    // wrong labels: say so, with the sample size the labels imply, before counting samples.
    if (!labels.empty() && labels.size() != n) {
      if (x.size() % labels.size() == 0)
        fail("The ", what, "'s sample shape ", shape_text(), " (", f,
             " values a sample) makes its ", x.size(), " feature values ", n,
             " samples, but it has ", labels.size(), " labels, which make samples of ",
             x.size() / labels.size(), " values; check sample_shape.");
      fail("The ", what, " has ", n, " samples (", x.size(), " feature values of sample shape ",
           shape_text(), ") but ", labels.size(), " labels.");
    }
    if (!targets.empty() && (target_size == 0 || targets.size() != n * target_size)) {
      const std::size_t m = target_size == 0 ? 0 : targets.size() / target_size;
      if (m != 0 && targets.size() % target_size == 0 && x.size() % m == 0)
        fail("The ", what, "'s sample shape ", shape_text(), " (", f,
             " values a sample) makes its ", x.size(), " feature values ", n, " samples, but its ",
             targets.size(), " target values of target size ", target_size, " are ", m,
             " samples, which make samples of ", x.size() / m, " values; check sample_shape.");
      fail("The ", what, " has ", n, " samples but ", targets.size(),
           " target values (target size ", target_size, ").");
    }
    if (!feature_names.empty() && feature_names.size() != f)
      fail("The ", what, " has ", feature_names.size(), " feature names for ", f, " features.");
    if (!class_names.empty() && class_names.size() != num_classes)
      fail("The ", what, " has ", class_names.size(), " class names for ", num_classes,
           " classes.");
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= num_classes)
        fail("The ", what, " has label ", labels[i], " at sample ", i,
             ", outside the class range [0, ", num_classes, ").");
  }
};

}  // namespace ctnn::data
// ---- end ctnn/data/dataset.hpp ----
// ---- begin ctnn/data/from_table.hpp ----
// ctnn/data/from_table.hpp: turning a Table into a Dataset (to_dataset) and back (to_table).
//
// to_dataset(table, spec) takes the columns `spec` names:
//   - features: the columns that become each sample's floats, in order (empty = every column that
//     is not the label or a target). A categorical feature gives its stored category index; one-
//     hot encoding is preprocess.hpp's job. sample_shape = {number of features}.
//   - label (optional): sparse class labels. A categorical label's class is the position of its
//     category in sorted order (numeric order when every category name is a number, else byte-wise
//     lexicographic), so class numbering does not depend on which row came first; with
//     `keep_category_order`, or for a column marked Column::ordered (read_sklearn_csv's target),
//     it is the stored category index instead, and with `class_names` it is the position of
//     the name there. num_classes counts every category, used or not. A numeric label must be a
//     whole number >= 0; num_classes = max + 1, or class_names.size() (checked) when given.
//   - targets (instead of a label): each row's target vector, one column per element. A
//     categorical target column maps to class numbers as a label does (e.g. "no" 0, "yes" 1).
// Missing cells (NaN) in any selected column are an error naming the line and column: clean the
// table first (clean.hpp: drop_missing, impute), or, for features only, set
// `missing_features_as_nan` and fill them with a preprocess.hpp SimpleImputer fitted on the
// training split (so the test rows lend the training rows nothing). Every error is a ctnn::Error
// sentence.
//
// to_table(dataset) is the reverse, so a Dataset from another format (IDX, say) can meet CSV
// tables: features named by feature_names or "feature_0", ...; a "label" column (categorical with
// the class names, if any, else numeric); targets as "target_0", .... The sample shape is not
// kept: to_dataset gives it back flat, {feature_size()}. lines are 0 (not from a file).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>


namespace ctnn::data {

struct TableSpec {
  std::vector<ColumnRef> features = {};   // empty: every column but the label and targets
  std::optional<ColumnRef> label = {};    // sparse class labels, or
  std::vector<ColumnRef> targets = {};    // a target vector (regression, binary, multi-output)
  std::vector<std::string> class_names = {};  // optional: the classes, in class-index order
  bool keep_category_order = false;       // categorical label/targets: class = stored index
  bool missing_features_as_nan = false;   // a missing feature cell becomes NaN instead of an error
};

namespace from_table_detail {

// For each stored category of `col`, its class number; `names` gets the class names in order.
inline std::vector<std::int32_t> class_of_category(const Table& t, const Column& col,
                                                   const TableSpec& spec,
                                                   std::vector<std::string>& names) {
  const std::vector<std::string>& cats = col.categories;
  std::vector<std::int32_t> cls(cats.size());
  if (!spec.class_names.empty()) {
    for (std::size_t k = 0; k < cats.size(); ++k) {
      const auto it = std::find(spec.class_names.begin(), spec.class_names.end(), cats[k]);
      if (it == spec.class_names.end()) {
        std::string list;
        for (const std::string& n : spec.class_names)
          list += (list.empty() ? "\"" : ", \"") + excerpt(n) + "\"";
        fail(t.describe(), ": column \"", excerpt(col.name), "\" has the category \"",
             excerpt(cats[k]), "\", which is not one of TableSpec::class_names (", list, ").");
      }
      cls[k] = static_cast<std::int32_t>(it - spec.class_names.begin());
    }
    names = spec.class_names;
    return cls;
  }
  std::vector<std::size_t> order(cats.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (!spec.keep_category_order && !col.ordered) {
    std::vector<double> num(cats.size());
    bool numeric = true;
    for (std::size_t k = 0; k < cats.size() && numeric; ++k)
      numeric = csv_detail::parse_number(cats[k], num[k]) && !std::isnan(num[k]);
    // Integer codes read as categories sort as numbers: "2" before "10".
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return numeric ? num[a] < num[b] : cats[a] < cats[b];
    });
  }
  names.clear();
  for (std::size_t i = 0; i < order.size(); ++i) {
    cls[order[i]] = static_cast<std::int32_t>(i);
    names.push_back(cats[order[i]]);
  }
  return cls;
}

[[noreturn]] inline void missing_cell(const Table& t, std::size_t row, const Column& col,
                                      const char* role) {
  fail(t.describe(), " has a missing value at ", t.where(row), " in ", role, " column \"",
       excerpt(col.name),
       "\". Drop such rows with drop_missing or fill them with impute "
       "(ctnn/data/clean.hpp) before making a Dataset",
       std::string_view(role) == "feature"
           ? ", or keep them as NaN (TableSpec::missing_features_as_nan) for a SimpleImputer "
             "fitted on the training split (ctnn/data/preprocess.hpp)."
           : ".");
}

}  // namespace from_table_detail

inline Dataset to_dataset(const Table& t, const TableSpec& spec) {
  using namespace from_table_detail;
  t.check_consistent();
  if (spec.label && !spec.targets.empty())
    fail("TableSpec names both a label (", spec.label->describe(), ") and ", spec.targets.size(),
         " target columns; a Dataset has either class labels or target vectors.");
  if (!spec.class_names.empty() && !spec.label)
    fail("TableSpec::class_names is set (", spec.class_names.size(), " names), but no label "
         "column is; class names describe the label's classes.");
  if (t.rows() == 0) fail(t.describe(), " has no rows, so it makes an empty dataset.");

  // Every column may play one role only: a feature that is also the label would leak it.
  std::vector<const char*> role(t.cols(), nullptr);
  const auto claim = [&](const ColumnRef& ref, const char* what) {
    const std::size_t c = t.index_of(ref);
    if (role[c] != nullptr)
      fail("TableSpec uses column \"", excerpt(t.columns[c].name), "\" of ", t.describe(),
           " both as ", role[c], " and as ", what, ".");
    role[c] = what;
    return c;
  };
  std::optional<std::size_t> label;
  if (spec.label) label = claim(*spec.label, "the label");
  std::vector<std::size_t> targets;
  for (const ColumnRef& ref : spec.targets) targets.push_back(claim(ref, "a target"));
  std::vector<std::size_t> features;
  if (spec.features.empty()) {
    for (std::size_t c = 0; c < t.cols(); ++c)
      if (role[c] == nullptr) features.push_back(c);
  } else {
    for (const ColumnRef& ref : spec.features) features.push_back(claim(ref, "a feature"));
  }
  if (features.empty())
    fail(t.describe(), " has no feature columns once the label and targets are set aside.");

  const std::size_t n = t.rows();
  Dataset d;
  d.sample_shape = {features.size()};
  for (std::size_t c : features) d.feature_names.push_back(t.columns[c].name);
  d.x.resize(n * features.size());
  for (std::size_t j = 0; j < features.size(); ++j) {
    const Column& col = t.columns[features[j]];
    for (std::size_t r = 0; r < n; ++r) {
      if (col.missing(r)) {
        if (!spec.missing_features_as_nan) missing_cell(t, r, col, "feature");
        d.x[r * features.size() + j] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      d.x[r * features.size() + j] = static_cast<float>(col.values[r]);
    }
  }

  if (label) {
    const Column& col = t.columns[*label];
    d.labels.resize(n);
    if (col.categorical) {
      const std::vector<std::int32_t> cls = class_of_category(t, col, spec, d.class_names);
      for (std::size_t r = 0; r < n; ++r) {
        if (col.missing(r)) missing_cell(t, r, col, "the label");
        d.labels[r] = cls[static_cast<std::size_t>(col.values[r])];
      }
      d.num_classes = d.class_names.size();
    } else {
      double top = -1;
      for (std::size_t r = 0; r < n; ++r) {
        const double v = col.values[r];
        if (std::isnan(v)) missing_cell(t, r, col, "the label");
        if (v < 0 || v != std::floor(v) || v > double(std::numeric_limits<std::int32_t>::max()))
          fail(t.describe(), ": the label column \"", excerpt(col.name), "\" holds ", col.text(r),
               " at ", t.where(r),
               "; a numeric label must be a whole number from 0 (a class index).");
        if (!spec.class_names.empty() && v >= double(spec.class_names.size()))
          fail(t.describe(), ": the label column \"", excerpt(col.name), "\" holds ", col.text(r),
               " at ", t.where(r), ", but TableSpec::class_names names ", spec.class_names.size(),
               " classes (labels 0 to ", spec.class_names.size() - 1, ").");
        d.labels[r] = static_cast<std::int32_t>(v);
        top = std::max(top, v);
      }
      d.class_names = spec.class_names;
      d.num_classes = spec.class_names.empty() ? static_cast<std::size_t>(top) + 1
                                               : spec.class_names.size();
    }
  }

  if (!targets.empty()) {
    d.target_size = targets.size();
    d.targets.resize(n * targets.size());
    for (std::size_t j = 0; j < targets.size(); ++j) {
      const Column& col = t.columns[targets[j]];
      std::vector<std::int32_t> cls;
      std::vector<std::string> unused;
      if (col.categorical) {
        TableSpec order;  // class_names describe the label only
        order.keep_category_order = spec.keep_category_order;
        cls = class_of_category(t, col, order, unused);
      }
      for (std::size_t r = 0; r < n; ++r) {
        if (col.missing(r)) missing_cell(t, r, col, "target");
        const double v = col.values[r];
        d.targets[r * targets.size() + j] =
            col.categorical ? static_cast<float>(cls[static_cast<std::size_t>(v)])
                            : static_cast<float>(v);
      }
    }
  }
  d.check_consistent(("dataset made from " + t.describe()).c_str());
  return d;
}

inline Table to_table(const Dataset& d) {
  d.check_consistent();
  const std::size_t n = d.size();
  const std::size_t f = d.feature_size();
  Table t;
  for (std::size_t j = 0; j < f; ++j) {
    Column col;
    col.name = d.feature_names.empty() ? "feature_" + std::to_string(j) : d.feature_names[j];
    col.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) col.values[i] = d.x[i * f + j];
    t.columns.push_back(std::move(col));
  }
  if (d.has_labels()) {
    Column col;
    col.name = "label";
    col.values.assign(d.labels.begin(), d.labels.end());
    col.categorical = !d.class_names.empty();
    col.categories = d.class_names;
    t.columns.push_back(std::move(col));
  }
  for (std::size_t k = 0; k < d.target_size && d.has_targets(); ++k) {
    Column col;
    col.name = "target_" + std::to_string(k);
    col.values.resize(n);
    for (std::size_t i = 0; i < n; ++i) col.values[i] = d.targets[i * d.target_size + k];
    t.columns.push_back(std::move(col));
  }
  t.lines.assign(n, 0);
  for (std::size_t c = 0; c < t.cols(); ++c)
    for (std::size_t e = 0; e < c; ++e)
      if (t.columns[c].name == t.columns[e].name)
        fail("to_table: the dataset's columns ", e, " and ", c, " would both be named \"",
             excerpt(t.columns[c].name), "\"; rename the feature (Dataset::feature_names).");
  return t;
}

}  // namespace ctnn::data
// ---- end ctnn/data/from_table.hpp ----
// ---- begin ctnn/data/idx.hpp ----
// ctnn/data/idx.hpp: loading IDX files (the MNIST / Fashion-MNIST format), plain or gzip.
//
// An IDX file is a 4-byte big-endian magic 0x0000TTDD (TT the element type, DD the number of
// dimensions), DD big-endian uint32 dimension sizes, then the elements in row-major order. ctnn
// reads unsigned-byte files (TT = 0x08): images with 2 or more dimensions (n, d1, d2, ...) and
// labels with 1 dimension (n). gzip.hpp's Reader reads gzip and plain files alike.
//
// Every problem is a ctnn::Error naming the file and the values: missing file, bad magic,
// unsupported element type, a zero dimension, zero samples, truncation, trailing bytes, corrupt
// gzip data, and an image/label count mismatch. Sizes are checked before anything large is
// allocated, so a lying header cannot cause a huge allocation. Two limits, both by design: a read
// with IdxOptions::limit stops after the limit and does not inspect the rest of the file, and
// non-gzip bytes after the end of a gzip stream are skipped by zlib itself.
//
// The *_from_memory functions read IDX bytes already in memory (plain or gzip, same checks),
// a name standing in for the path in messages.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


namespace ctnn::data {

struct IdxOptions {
  float scale = 1.0f / 255.0f;  // pixel byte -> float factor; the default maps [0, 255] to [0, 1]
  std::size_t limit = SIZE_MAX;  // read at most this many samples
};

namespace idx_detail {

inline constexpr std::uint8_t kUbyte = 0x08;
inline constexpr std::uint32_t kImagesMagic = 0x00000803;  // ubyte, 3 dims: n, rows, cols
inline constexpr std::uint32_t kLabelsMagic = 0x00000801;  // ubyte, 1 dim: n

inline std::string hex(std::uint32_t v, int digits = 8) {
  std::ostringstream os;
  os << "0x" << std::hex << std::uppercase << std::setw(digits) << std::setfill('0') << v;
  return os.str();
}

inline const char* type_name(std::uint8_t t) {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

// The IDX file being read; every message calls it "IDX file".
class Reader : public gzip_detail::Reader {
 public:
  explicit Reader(std::string path) : gzip_detail::Reader(std::move(path), "IDX file") {}
  Reader(std::span<const std::uint8_t> bytes, std::string name)
      : gzip_detail::Reader(bytes, std::move(name), "IDX file") {}
};
using gzip_detail::kChunk;
using gzip_detail::kMaxDeflateRatio;

struct Header {
  std::vector<std::size_t> dims;  // dims[0] is the sample count
  std::uint64_t data_bytes = 0;   // product of all dims (one byte per element)
  std::uint64_t header_bytes = 0;
};

// `header_bytes` is the header size known so far (the magic alone is 4 bytes).
inline std::uint32_t read_be32(Reader& in, std::uint64_t header_bytes) {
  std::array<unsigned char, 4> b{};
  if (in.read(b.data(), 4) != 4)
    fail("The IDX file '", in.path(), "' ends inside its header: it has ", in.consumed(),
         " bytes, the header needs ", header_bytes == 4 ? "at least " : "", header_bytes,
         in.end_reason(), ".");
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
}

// Reads and checks the magic and dimensions. `want_dims` is 1 for labels; 0 means "2 or more".
inline Header read_header(Reader& in, std::uint32_t expected_magic, std::uint8_t want_dims) {
  const std::uint32_t magic = read_be32(in, 4);
  const auto type = static_cast<std::uint8_t>(magic >> 8);
  const auto ndims = static_cast<std::uint8_t>(magic);
  const bool dims_ok = want_dims == 0 ? ndims >= 2 : ndims == want_dims;
  if ((magic >> 16) != 0 || type_name(type) == nullptr || !dims_ok)
    fail("The IDX file '", in.path(), "' has a bad magic number: expected ", hex(expected_magic),
         want_dims == 0 ? " (or 0x000008NN with NN >= 2 dimensions)" : "", ", found ",
         hex(magic), ".");
  if (type != kUbyte)
    fail("The IDX file '", in.path(), "' holds ", type_name(type), " elements (type code ",
         hex(type, 2), "); only unsigned bytes (type code 0x08) are supported.");

  Header h;
  h.header_bytes = 4 + 4 * std::uint64_t{ndims};
  h.data_bytes = 1;
  bool overflow = false;
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint32_t d = read_be32(in, h.header_bytes);
    // Dimension 0 is the sample count; zero samples gets its own message later.
    if (d == 0 && i > 0)
      fail("The IDX file '", in.path(), "' has size 0 for dimension ", i,
           " (counting the sample count as dimension 0); every dimension must be at least 1.");
    h.dims.push_back(d);
    overflow = overflow || (d != 0 && h.data_bytes > std::numeric_limits<std::uint64_t>::max() / d);
    if (!overflow) h.data_bytes *= d;
  }
  if (overflow)
    fail("The IDX file '", in.path(), "' has a header whose dimensions multiply to more than "
         "2^64 elements.");
  if (h.dims[0] == 0)
    fail("The IDX file '", in.path(), "' holds 0 samples (empty dataset).");
  return h;
}

inline void truncated(Reader& in, const Header& h, std::uint64_t found, const char* reason = "") {
  fail("The IDX file '", in.path(), "' is truncated: its header (", h.dims[0],
       " samples) promises ", h.data_bytes, " bytes of data, found ", found, reason, ".");
}

// Plain files: the exact size is known, so check it before allocating anything.
inline void check_plain_size(Reader& in, const Header& h) {
  if (!in.plain()) return;
  const std::uint64_t avail = in.file_size() - h.header_bytes;  // header fully read, so no wrap
  if (avail < h.data_bytes) truncated(in, h, avail);
  if (avail > h.data_bytes)
    fail("The IDX file '", in.path(), "' has ", avail - h.data_bytes,
         " trailing bytes after the ", h.data_bytes, " bytes of data its header describes.");
}

// Streams the first `samples` samples' bytes to `sink(const unsigned char*, size_t)`. When all
// samples are read it also reads to the end, so trailing bytes and a bad gzip checksum are caught.
template <class Sink>
void read_data(Reader& in, const Header& h, std::size_t samples, Sink&& sink) {
  const std::uint64_t per_sample = h.data_bytes / h.dims[0];
  const std::uint64_t want = per_sample * samples;
  std::vector<unsigned char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(want, kChunk)));
  std::uint64_t done = 0;
  while (done < want) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(want - done, buf.size()));
    const std::size_t got = in.read(buf.data(), n);
    sink(buf.data(), got);
    done += got;
    if (got < n) truncated(in, h, done, in.end_reason());
  }
  if (samples < h.dims[0]) return;  // a limited read leaves the rest unread, by design
  std::uint64_t extra = 0;
  for (std::size_t got; (got = in.read(buf.data(), buf.size())) > 0;) extra += got;
  if (extra > 0)
    fail("The IDX file '", in.path(), "' has ", extra, " trailing bytes after the ", h.data_bytes,
         " bytes of data its header describes.");
  // All data arrived but the gzip trailer (CRC-32 and length) is missing, so it was never checked.
  if (in.cut_off())
    fail("The gzip file '", in.path(), "' is cut off after all ", h.data_bytes,
         " bytes of data: its checksum trailer is missing.");
}

// How many bytes to reserve: what the header claims, but never more than the file can produce.
inline std::size_t reserve_bound(Reader& in, std::uint64_t want) {
  const std::uint64_t cap = in.plain() ? in.file_size() : in.file_size() * kMaxDeflateRatio;
  return static_cast<std::size_t>(std::min(want, cap));
}

// min(count, limit), which must not be 0.
inline std::size_t samples_to_read(Reader& in, const Header& h, std::size_t limit) {
  const std::size_t n = std::min(h.dims[0], limit);
  if (n == 0)
    fail("Reading at most ", limit, " of the ", h.dims[0], " samples in the IDX file '", in.path(),
         "' gives an empty dataset.");
  return n;
}

inline std::vector<std::size_t> sample_shape(const Header& h) {
  // (n, rows, cols) is a grayscale image: add the channel axis, channels last like Keras.
  if (h.dims.size() == 3) return {h.dims[1], h.dims[2], 1};
  return {h.dims.begin() + 1, h.dims.end()};
}

// The images as a Dataset without labels.
inline Dataset read_images(Reader& in, const Header& h, const IdxOptions& opts) {
  check_plain_size(in, h);
  const std::size_t n = samples_to_read(in, h, opts.limit);
  std::array<float, 256> lut{};  // one multiply per byte value, not per pixel
  for (std::size_t v = 0; v < lut.size(); ++v) lut[v] = static_cast<float>(v) * opts.scale;
  Dataset d;
  d.sample_shape = sample_shape(h);
  d.x.reserve(reserve_bound(in, h.data_bytes / h.dims[0] * n));
  read_data(in, h, n, [&](const unsigned char* p, std::size_t k) {
    const std::size_t at = d.x.size();
    d.x.resize(at + k);
    for (std::size_t i = 0; i < k; ++i) d.x[at + i] = lut[p[i]];
  });
  return d;
}

inline std::vector<std::int32_t> read_labels(Reader& in, const Header& h, std::size_t limit) {
  check_plain_size(in, h);
  const std::size_t n = samples_to_read(in, h, limit);
  std::vector<std::int32_t> labels;
  labels.reserve(reserve_bound(in, n));
  read_data(in, h, n,
            [&](const unsigned char* p, std::size_t k) { labels.insert(labels.end(), p, p + k); });
  return labels;
}

// Both headers are checked (including that their counts agree) before any data is read.
inline Dataset read_pair(Reader& images, Reader& labels, const IdxOptions& opts) {
  const Header hi = read_header(images, kImagesMagic, 0);
  const Header hl = read_header(labels, kLabelsMagic, 1);
  if (hi.dims[0] != hl.dims[0])
    fail("The image file '", images.path(), "' holds ", hi.dims[0],
         " samples but the label file '", labels.path(), "' holds ", hl.dims[0], " labels.");
  Dataset d = read_images(images, hi, opts);
  d.labels = read_labels(labels, hl, opts.limit);  // same count as the images, checked above
  d.num_classes = static_cast<std::size_t>(*std::max_element(d.labels.begin(), d.labels.end())) + 1;
  return d;
}

}  // namespace idx_detail

// Reads an IDX image file: sample_shape {rows, cols, 1} for 3 dimensions (n, rows, cols), else
// {d1, d2, ...}; pixels are multiplied by opts.scale. The result has no labels.
inline Dataset load_idx_images(const std::string& path, IdxOptions opts = {}) {
  using namespace idx_detail;
  Reader in(path);
  return read_images(in, read_header(in, kImagesMagic, 0), opts);
}

// Reads an IDX label file (1 dimension): at most `limit` labels, each in [0, 255].
inline std::vector<std::int32_t> load_idx_labels(const std::string& path,
                                                 std::size_t limit = SIZE_MAX) {
  using namespace idx_detail;
  Reader in(path);
  return read_labels(in, read_header(in, kLabelsMagic, 1), limit);
}

// Reads an image file and its label file into one labelled Dataset; num_classes = max label + 1.
// Both headers are checked (including that their counts agree) before any data is read.
inline Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                        IdxOptions opts = {}) {
  idx_detail::Reader images(images_path);
  idx_detail::Reader labels(labels_path);
  return idx_detail::read_pair(images, labels, opts);
}

// load_idx_images on bytes in memory (plain or gzip); `name` stands in for the path in messages.
inline Dataset load_idx_images_from_memory(std::span<const std::uint8_t> bytes,
                                           const std::string& name, IdxOptions opts = {}) {
  using namespace idx_detail;
  Reader in(bytes, name);
  return read_images(in, read_header(in, kImagesMagic, 0), opts);
}

// load_idx_labels on bytes in memory (plain or gzip).
inline std::vector<std::int32_t> load_idx_labels_from_memory(std::span<const std::uint8_t> bytes,
                                                             const std::string& name,
                                                             std::size_t limit = SIZE_MAX) {
  using namespace idx_detail;
  Reader in(bytes, name);
  return read_labels(in, read_header(in, kLabelsMagic, 1), limit);
}

// load_idx on an image file and a label file held in memory (each plain or gzip).
inline Dataset load_idx_from_memory(std::span<const std::uint8_t> images,
                                    const std::string& images_name,
                                    std::span<const std::uint8_t> labels,
                                    const std::string& labels_name, IdxOptions opts = {}) {
  idx_detail::Reader in_images(images, images_name);
  idx_detail::Reader in_labels(labels, labels_name);
  return idx_detail::read_pair(in_images, in_labels, opts);
}

}  // namespace ctnn::data
// ---- end ctnn/data/idx.hpp ----
// ---- begin ctnn/data/integrate.hpp ----
// ctnn/data/integrate.hpp: one Table from several (files, formats, exports).
//
//   concat(parts)                        stacks the rows of tables with the same columns.
//   join(left, right, key, options, &r)  adds right's columns to left's rows by a key column.
//   hstack(parts)                        puts the columns of tables with the same rows side by side.
//
// concat: every part must have the same column names, each column of the same kind (numeric or
// categorical), in any order; the result has the first part's column order, every part's rows in
// turn, their `lines`, and as source the distinct sources joined by " + ". Categorical columns
// get the first part's categories followed by the later parts' new ones (in the order each part
// lists them), and the later parts' cells are re-indexed to match. A schema difference is an
// error naming both tables and the missing, extra or differently typed columns.
//
// join: rows of `left` with the right row whose key cell equals theirs (numbers by value,
// categorical cells by category text; a missing key matches nothing). The result keeps left's
// row order, lines and source, and has left's columns followed by right's non-key columns. The
// key must have the same kind in both tables and be unique in `right` (a repeat is an error
// naming both lines); left may repeat keys. JoinKind::inner drops the left rows without a match,
// JoinKind::left keeps them with missing cells. A right column whose name left already has gets
// JoinOptions::suffix appended, or is an error naming the clash when the suffix is empty.
//
// hstack: for files that hold different columns of the same samples in the same order (e.g.
// features in one file, targets in another) and no key. Every part must have as many rows as the
// first; the result has all parts' columns in order, the first part's lines and the sources
// joined by " + ". A row-count difference or a repeated column name is an error naming both.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>


namespace ctnn::data {

namespace detail {

// "the table from a.csv (part 2)", for messages that name several tables mid-sentence.
inline std::string table_name(const Table& t, const std::string& role) {
  std::string d = t.describe();
  d[0] = 't';  // describe() begins with "The table"
  return d + " (" + role + ")";
}
inline std::string part_name(const Table& t, std::size_t i) {
  return table_name(t, "part " + std::to_string(i + 1));
}

inline std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 40; ++i)  // as Table::index_of lists them
    out += (i ? ", \"" : "\"") + excerpt(names[i]) + "\"";
  if (names.size() > 40) out += ", ...";
  return out;
}

}  // namespace detail

// Stacks the rows of `parts`, in order (see the contract above). Throws when `parts` is empty.
inline Table concat(const std::vector<Table>& parts) {
  if (parts.empty()) fail("concat was given no tables to concatenate.");
  const Table& first = parts.front();
  for (const Table& p : parts) p.check_consistent();
  Table out;
  out.columns.resize(first.cols());
  for (std::size_t c = 0; c < first.cols(); ++c) {
    out.columns[c].name = first.columns[c].name;
    out.columns[c].categorical = first.columns[c].categorical;
    out.columns[c].categories = first.columns[c].categories;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Table& p = parts[i];
    // Where each of the first part's columns is in this part, checking the schemas agree.
    std::vector<std::string> missing, extra;
    for (const Column& col : first.columns)
      if (!p.has(col.name)) missing.push_back(col.name);
    for (const Column& col : p.columns)
      if (!first.has(col.name)) extra.push_back(col.name);
    if (!missing.empty() || !extra.empty())
      fail("Cannot concatenate ", detail::part_name(p, i), " with ", detail::part_name(first, 0),
           ": ", missing.empty() ? "" : "it lacks column(s) " + detail::quoted_list(missing),
           !missing.empty() && !extra.empty() ? " and " : "",
           extra.empty() ? "" : "it has extra column(s) " + detail::quoted_list(extra), ".");
    for (std::size_t c = 0; c < first.cols(); ++c) {
      const Column& from = p[first.columns[c].name];
      Column& to = out.columns[c];
      if (from.categorical != to.categorical)
        fail("Cannot concatenate ", detail::part_name(p, i), " with ", detail::part_name(first, 0),
             ": column \"", excerpt(to.name), "\" is ", to.categorical ? "categorical" : "numeric",
             " in the first but ", from.categorical ? "categorical" : "numeric", " in the other.");
      if (!from.categorical) {
        to.values.insert(to.values.end(), from.values.begin(), from.values.end());
        continue;
      }
      std::vector<double> index(from.categories.size());  // this part's index -> the result's
      for (std::size_t k = 0; k < from.categories.size(); ++k) {
        const auto it = std::find(to.categories.begin(), to.categories.end(), from.categories[k]);
        index[k] = double(it - to.categories.begin());
        if (it == to.categories.end()) to.categories.push_back(from.categories[k]);
      }
      for (double v : from.values)
        to.values.push_back(std::isnan(v) ? v : index[static_cast<std::size_t>(v)]);
    }
    out.lines.insert(out.lines.end(), p.lines.begin(), p.lines.end());
    if (!p.source.empty() && std::none_of(parts.begin(), parts.begin() + std::ptrdiff_t(i),
                                          [&](const Table& q) { return q.source == p.source; }))
      out.source += (out.source.empty() ? "" : " + ") + p.source;
  }
  return out;
}

enum class JoinKind { inner, left };

struct JoinOptions {
  JoinKind kind = JoinKind::inner;
  // Appended to a right column whose name the left table already has; empty: such a clash is an
  // error.
  std::string suffix = {};
};

// What a join did with the rows of each side.
struct JoinReport {
  std::string key;
  JoinKind kind = JoinKind::inner;
  std::size_t left_rows = 0, right_rows = 0;
  std::size_t matched = 0;       // left rows whose key the right table has
  std::size_t unmatched = 0;     // left rows without a match
  std::size_t dropped = 0;       // left rows not in the result (the unmatched, for an inner join)
  std::size_t right_unused = 0;  // right rows no left row matched

  std::string str() const {
    std::ostringstream os;
    os << (kind == JoinKind::inner ? "inner" : "left") << " join on \"" << excerpt(key)
       << "\": " << matched << " of " << left_rows << " left rows matched, " << unmatched
       << " unmatched (" << (dropped ? "dropped" : "kept with missing cells") << "); "
       << right_unused << " of " << right_rows << " right rows unused";
    return os.str();
  }
};

inline std::ostream& operator<<(std::ostream& os, const JoinReport& r) { return os << r.str(); }

// Joins `right` to `left` on `key` (see the contract above). A key given by name is looked up by
// that name in both tables; one given by position names left's column, found by name in right.
inline Table join(const Table& left, const Table& right, const ColumnRef& key,
                  const JoinOptions& options = {}, JoinReport* report = nullptr) {
  left.check_consistent();
  right.check_consistent();
  const std::size_t lk = left.index_of(key);
  const Column& lkey = left.columns[lk];
  const std::size_t rk = right.index_of(lkey.name);
  const Column& rkey = right.columns[rk];
  const std::string lname = detail::table_name(left, "left");
  const std::string rname = detail::table_name(right, "right");
  if (lkey.categorical != rkey.categorical)
    fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name), "\": it is ",
         lkey.categorical ? "categorical" : "numeric", " in the left table but ",
         rkey.categorical ? "categorical" : "numeric",
         " in the right; read it as the same kind in both.");

  // Right rows by key: numeric keys by value (+0 for -0), categorical ones by their text.
  std::unordered_map<double, std::size_t> by_value;
  std::unordered_map<std::string, std::size_t> by_text;
  // The right row with key column `k`'s key at `row` (right.rows() for none); with `add`, a new
  // key is first recorded as being at `row`.
  const auto lookup = [&](const Column& k, std::size_t row, bool add) -> std::size_t {
    if (k.missing(row)) return right.rows();
    if (k.categorical) {
      const auto it = add ? by_text.emplace(k.text(row), row).first : by_text.find(k.text(row));
      return it == by_text.end() ? right.rows() : it->second;
    }
    const double v = k.values[row] == 0 ? 0.0 : k.values[row];
    const auto it = add ? by_value.emplace(v, row).first : by_value.find(v);
    return it == by_value.end() ? right.rows() : it->second;
  };
  for (std::size_t row = 0; row < right.rows(); ++row) {
    const std::size_t first = lookup(rkey, row, true);
    if (first < row)
      fail(right.describe(), " has the key column \"", excerpt(rkey.name), "\" value \"",
           excerpt(rkey.text(row)), "\" twice, at ", right.where(first), " and ", right.where(row),
           "; join needs each key at most once in the right table.");
  }

  // The result's columns: left's, then right's non-key ones, renamed on a clash.
  Table out;
  out.source = left.source;
  std::vector<std::size_t> right_cols;
  for (const Column& col : left.columns) {
    out.columns.push_back(col);
    out.columns.back().values.clear();
  }
  for (std::size_t c = 0; c < right.cols(); ++c) {
    if (c == rk) continue;
    Column col = right.columns[c];
    col.values.clear();
    if (out.has(col.name)) {
      if (options.suffix.empty())
        fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name),
             "\": both have a column \"", excerpt(col.name),
             "\"; set JoinOptions::suffix to rename the right one.");
      if (out.has(col.name + options.suffix))
        fail("Cannot join ", rname, " to ", lname, " on column \"", excerpt(lkey.name),
             "\": renaming the ", "right column \"", excerpt(col.name), "\" to \"",
             excerpt(col.name + options.suffix), "\" clashes with a column of that name too.");
      col.name += options.suffix;
    }
    out.columns.push_back(std::move(col));
    right_cols.push_back(c);
  }

  JoinReport r;
  r.key = lkey.name;
  r.kind = options.kind;
  r.left_rows = left.rows();
  r.right_rows = right.rows();
  std::vector<bool> used(right.rows(), false);
  for (std::size_t row = 0; row < left.rows(); ++row) {
    const std::size_t match = lookup(lkey, row, false);
    const bool found = match < right.rows();
    (found ? r.matched : r.unmatched) += 1;
    if (!found && options.kind == JoinKind::inner) {
      ++r.dropped;
      continue;
    }
    if (found) used[match] = true;
    for (std::size_t c = 0; c < left.cols(); ++c)
      out.columns[c].values.push_back(left.columns[c].values[row]);
    for (std::size_t k = 0; k < right_cols.size(); ++k)
      out.columns[left.cols() + k].values.push_back(found
                                                        ? right.columns[right_cols[k]].values[match]
                                                        : std::numeric_limits<double>::quiet_NaN());
    out.lines.push_back(row < left.lines.size() ? left.lines[row] : 0);
  }
  r.right_unused = std::size_t(std::count(used.begin(), used.end(), false));
  if (report) *report = r;
  return out;
}

inline Table hstack(const std::vector<Table>& parts) {
  if (parts.empty()) fail("hstack needs at least one table.");
  Table out = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const Table& t = parts[i];
    if (t.rows() != out.rows())
      fail("hstack: ", detail::part_name(t, i), " has ", t.rows(), " rows but ",
           detail::part_name(parts.front(), 0), " has ", out.rows(),
           "; side-by-side tables need the same rows in the same order.");
    for (const Column& c : t.columns) {
      if (out.has(c.name))
        fail("hstack: the column \"", excerpt(c.name), "\" of ", detail::part_name(t, i),
             " is already in an earlier part; rename one of them.");
      out.columns.push_back(c);
    }
    if (!t.source.empty() && out.source.find(t.source) == std::string::npos)
      out.source += (out.source.empty() ? "" : " + ") + t.source;
  }
  out.check_consistent();
  return out;
}

}  // namespace ctnn::data
// ---- end ctnn/data/integrate.hpp ----
// ---- begin ctnn/data/preprocess.hpp ----
// ctnn/data/preprocess.hpp: fitted preprocessing (imputation of missing values, min-max scaling,
// z-score standardization and one-hot encoding), learnt on the training split and replayed
// unchanged on validation, test and inference inputs, and saved with the model so deployment sees
// the same preprocessing.
//
// Contract
// - A step (SimpleImputer, MinMaxScaler, StandardScaler, OneHotEncoder) learns its statistics in
//   fit(train) from
//   the training set only; transform(...) applies exactly those statistics to any later input.
//   Statistics are float64; each output is the float64 result rounded to float.
// - Preprocessing is an ordered list of steps; fit() fits each step on the output of the steps
//   before it, so a step's feature indices refer to the columns of its own input.
// - Widths: scalers keep the width; OneHotEncoder replaces each chosen feature, where it stands,
//   by k columns (k >= 1), so the width never shrinks along the pipeline. input_size() and
//   output_size() are known after fit. A transformed dataset whose width changed gets
//   sample_shape {output_size()}; otherwise its shape is kept.
// - transform(span in, span out) handles one sample without heap allocation: `in` is copied into
//   `out` and every step rewrites `out` in place (one-hot expands from the back).
// - Every input value must be finite, at fit and at transform, except NaN (a missing value) in a
//   feature that a SimpleImputer fills: a SimpleImputer on its own, or the leading SimpleImputer
//   steps of a Preprocessing. Infinities are never missing values. All errors are ctnn::Error
//   sentences naming the sample, feature and value. When a
//   dataset transform throws, the dataset is unchanged; the span path leaves `out` unspecified.
// - Feature names (Dataset::feature_names) are carried; one-hot columns are named "<name>=<k>".
//   Names seen at fit are kept and saved, and a dataset whose names differ at transform is
//   refused, since columns in another order would be silently mis-scaled.
//
// Binary block (Preprocessing::save / load), self-describing so a model file can embed it; all
// integers little-endian, all parameters IEEE-754 binary64 (so a round trip is bit exact):
//   header (24 bytes): "CTNNPREP" | u32 format version (1) | u64 body size B | u32 CRC-32 of the
//                      body (zlib's crc32, as in gzip)
//   body (B bytes):    u64 input size | u64 output size | u32 step count | u8 has names (0 or 1)
//                      [has names: input size x (u32 byte length, bytes)]
//                      per step: u32 kind tag | u64 step input size | u64 feature count c, then
//                        tag 1 MinMaxScaler:   f64 lo | f64 hi | c x (u64 feature, f64 min,
//                                              f64 max)
//                        tag 2 StandardScaler: c x (u64 feature, f64 mean, f64 std)
//                        tag 3 OneHotEncoder:  u8 unknown (0 error, 1 ignore) | c x (u64 feature,
//                                              u64 categories k)
//                        tag 4 SimpleImputer:  u8 strategy (0 mean, 1 median, 2 most frequent,
//                                              3 constant) | c x (u64 feature, f64 fill value,
//                                              f64 missing count seen at fit)
//   Features are strictly increasing within a step; each step's input size is the previous
//   step's output size and the last step's output size is the header's. load() checks all of it,
//   bounds every count by the bytes that remain, and reads the stream to exactly the block's end.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <istream>
#include <numeric>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

// ---- begin ctnn/core/bytes.hpp ----
// ctnn/core/bytes.hpp: the one little-endian byte codec and CRC-32 of ctnn's binary formats (the
// model file, io/model_file.hpp, and the preprocessing block it embeds, data/preprocess.hpp).
//
// ByteWriter appends fields to a byte string; ByteReader reads them back from bytes in memory,
// and running past the end is a ctnn::Error naming what was being read, at which offset, and
// what remained. Integers and doubles are encoded byte by byte, so the format is the same on
// any host.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <zlib.h>


namespace ctnn::detail {

// Appends little-endian fields to a byte string.
class ByteWriter {
 public:
  void u8(std::uint8_t v) { put(v, 1); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void f64(double v) { put(std::bit_cast<std::uint64_t>(v), 8); }
  // A u32 byte length, then the bytes.
  void str(std::string_view s) {
    if (s.size() > UINT32_MAX)
      fail("Cannot store a text of ", s.size(), " bytes: its length field has 32 bits.");
    u32(static_cast<std::uint32_t>(s.size()));
    bytes_ += s;
  }
  void raw(const void* p, std::size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  const std::string& bytes() const { return bytes_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  std::string bytes_;
};

// Reads little-endian fields from bytes in memory. `who` starts every message ("The model file
// \"m.ctnn\"", "Preprocessing::load: the block"); `base` is the offset of `bytes` in the whole
// file or block, for messages.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string who, std::size_t base = 0)
      : b_(bytes), who_(std::move(who)), base_(base) {}
  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(get(1, what)); }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(get(4, what)); }
  std::uint64_t u64(const char* what) { return get(8, what); }
  double f64(const char* what) { return std::bit_cast<double>(get(8, what)); }
  // A u32 byte length, then the bytes.
  std::string str(const char* what) {
    const std::uint32_t n = u32(what);
    return std::string(take(n, what), n);
  }
  // The next `n` bytes, in place.
  const char* take(std::uint64_t n, const char* what) {
    if (n > remaining())
      fail(who_, " is truncated or corrupt: reading ", what, " needs ", n, " bytes at offset ",
           base_ + pos_, " but only ", remaining(), " remain.");
    const char* p = b_.data() + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  // `n` items of `item_bytes` each must fit in what remains: a corrupt count fails here, before
  // anything is allocated for it.
  std::size_t count(std::uint64_t n, std::size_t item_bytes, const char* what) const {
    if (n > remaining() / item_bytes)
      fail(who_, " declares ", n, " ", what, " of at least ", item_bytes, " bytes each, but only ",
           remaining(), " bytes remain.");
    return static_cast<std::size_t>(n);
  }
  std::size_t remaining() const { return b_.size() - pos_; }

 private:
  std::uint64_t get(std::size_t n, const char* what) {
    const char* p = take(n, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
  }
  std::string_view b_;
  std::string who_;
  std::size_t pos_ = 0;
  std::size_t base_;
};

// zlib's CRC-32 (as gzip's) of `bytes`.
inline std::uint32_t crc32_of(std::string_view bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const char* p = bytes.data();
  for (std::size_t n = bytes.size(); n > 0;) {  // zlib takes uInt lengths
    const auto chunk = static_cast<uInt>(n < (std::size_t{1} << 30) ? n : (std::size_t{1} << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace ctnn::detail
// ---- end ctnn/core/bytes.hpp ----

namespace ctnn::data {

class Preprocessing;

// What a OneHotEncoder does at transform with a code it did not learn (>= k, negative or not an
// integer): throw a ctnn::Error, or encode it as all zeros.
enum class Unknown { error, ignore };

namespace detail {

// The single-sample path has no sample index to report.
inline constexpr std::size_t kInputSample = static_cast<std::size_t>(-1);
// A code column with more categories is almost surely a numeric column chosen by mistake, and
// its one-hot columns would swamp the width.
inline constexpr std::uint64_t kMaxCategories = std::uint64_t{1} << 16;
// Limits for load(): far beyond any real pipeline, small enough that a corrupt size fails
// instead of allocating or overflowing sample-count products.
inline constexpr std::uint64_t kMaxFeatures = std::uint64_t{1} << 32;
inline constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{1} << 30;
// Feature names are derived (a one-hot column is "<name>=<code>"), so a small block can ask for
// very many: 200 encoded features of 65536 categories make 13 million names from 4 KB. Their
// memory (text plus one std::string each) is bounded, at save and before load builds them.
inline constexpr std::uint64_t kMaxNameBytes = std::uint64_t{1} << 26;
inline constexpr char kMagic[8] = {'C', 'T', 'N', 'N', 'P', 'R', 'E', 'P'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderBytes = 24;
enum : std::uint32_t { kTagMinMax = 1, kTagStandard = 2, kTagOneHot = 3, kTagImputer = 4 };

inline std::string sample_text(std::size_t s) {
  return s == kInputSample ? std::string("the input sample") : "sample " + std::to_string(s);
}

// "feature 3" or "feature 3 (\"ash\")" when the dataset names its features.
inline std::string feature_text(std::size_t j, const std::vector<std::string>& names) {
  std::string s = "feature " + std::to_string(j);
  if (j < names.size()) s += " (\"" + excerpt(names[j]) + "\")";
  return s;
}

template <class... Parts>
[[noreturn]] void load_fail(const Parts&... parts) {
  fail("Preprocessing::load: ", parts...);
}

// The memory `names` take as counted against kMaxNameBytes.
inline std::uint64_t names_bytes(const std::vector<std::string>& names) {
  std::uint64_t bytes = 0;
  for (const std::string& n : names) bytes += sizeof(std::string) + n.size();
  return bytes;
}

// The total number of decimal digits in the codes 0 .. k-1.
inline std::uint64_t code_digits(std::uint64_t k) {
  std::uint64_t total = 0;
  for (std::uint64_t lo = 0, hi = 10, d = 1; lo < k; lo = hi, hi *= 10, ++d)
    total += d * (std::min(k, hi) - lo);
  return total;
}

// A training set must be consistent, non-empty and finite: statistics of NaN are meaningless.
// `may_miss[j]` (when not empty) marks the features where NaN, a missing value, is accepted.
inline void check_training_set(const Dataset& d, const char* who,
                               const std::vector<bool>& may_miss = {}) {
  d.check_consistent("training set");
  if (d.size() == 0) fail(who, ".fit: the training set has no samples.");
  const std::size_t f = d.feature_size();
  for (std::size_t k = 0; k < d.x.size(); ++k)
    if (!std::isfinite(d.x[k]) && !(std::isnan(d.x[k]) && !may_miss.empty() && may_miss[k % f]))
      fail(who, ".fit: the training set holds ", d.x[k], " at sample ", k / f, ", ",
           feature_text(k % f, d.feature_names),
           "; clean or impute missing values before fitting the preprocessing.");
}

// The chosen feature indices, sorted; empty chooses all `width` features.
inline std::vector<std::size_t> resolve_features(std::vector<std::size_t> chosen, std::size_t width,
                                                 const char* who) {
  if (chosen.empty()) {
    chosen.resize(width);
    std::iota(chosen.begin(), chosen.end(), std::size_t{0});
    return chosen;
  }
  std::sort(chosen.begin(), chosen.end());
  for (std::size_t c = 0; c < chosen.size(); ++c) {
    if (chosen[c] >= width)
      fail(who, ".fit: feature index ", chosen[c], " is out of range for a training set of ", width,
           " features.");
    if (c > 0 && chosen[c] == chosen[c - 1])
      fail(who, ": feature ", chosen[c], " is chosen twice.");
  }
  return chosen;
}

// The byte codec of the block (core/bytes.hpp, shared with the model file).
using Writer = ctnn::detail::ByteWriter;
using Reader = ctnn::detail::ByteReader;
inline constexpr const char* kBlockName = "Preprocessing::load: the block";

// A step's feature index read by load(): in range and after the previous one.
inline std::size_t checked_feature(std::uint64_t j, std::size_t c, std::size_t width,
                                   std::size_t prev, std::size_t step, const char* kind) {
  if (j >= width || (c > 0 && j <= prev))
    load_fail("step ", step, " (", kind, ") lists feature ", j, " at position ", c,
              "; expected a feature index below ", width,
              c > 0 ? " and above the previous one, " : "", c > 0 ? std::to_string(prev) : "", ".");
  return static_cast<std::size_t>(j);
}

// A scaler's fitted parameters: two float64 statistics per chosen feature (sorted).
struct FeatureStats {
  std::vector<std::size_t> cols;
  std::vector<double> a, b;

  void resize(std::size_t n) {
    a.assign(n, 0.0);
    b.assign(n, 0.0);
  }
  void write(Writer& w) const {
    for (std::size_t c = 0; c < cols.size(); ++c) {
      w.u64(cols[c]);
      w.f64(a[c]);
      w.f64(b[c]);
    }
  }
  // Reads `count` entries of (u64 feature, f64 a, f64 b); `ok(a, b)` vets each pair, and a
  // refused pair's message says `expect`.
  template <class Ok>
  void read(Reader& r, std::size_t width, std::uint64_t count, std::size_t step, const char* kind,
            const char* a_name, const char* b_name, Ok ok, const char* expect) {
    const std::size_t n = r.count(count, 24, (std::string(kind) + " features").c_str());
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t j =
          checked_feature(r.u64("a feature index"), c, width, c > 0 ? cols.back() : 0, step, kind);
      const double va = r.f64(a_name), vb = r.f64(b_name);
      if (!ok(va, vb))
        load_fail("step ", step, " (", kind, ") has ", a_name, " ", va, " and ", b_name, " ", vb,
                  " for feature ", j, "; expected ", expect, ".");
      cols.push_back(j);
      a.push_back(va);
      b.push_back(vb);
    }
  }
};

// The dataset and single-sample transforms shared by every step and by Preprocessing. D
// provides kName, apply(float* buf, sample) (rewrites buf in place from input_size() values to
// output_size() values), can_reject(), check_names(d) and names_after(names).
template <class D>
class RowTransform {
 public:
  bool fitted() const { return fitted_; }
  // The number of input and output features; 0 before fit.
  std::size_t input_size() const { return in_; }
  std::size_t output_size() const { return out_; }

  // A new dataset holding the transformed features, with the labels, targets and class names.
  Dataset transform(const Dataset& d) const {
    check_input(d);
    Dataset out;
    out.sample_shape = shape_after(d);
    out.labels = d.labels;
    out.targets = d.targets;
    out.target_size = d.target_size;
    out.num_classes = d.num_classes;
    out.feature_names = self().names_after(d.feature_names);
    out.class_names = d.class_names;
    out.x.resize(d.size() * out_);
    rows(d.x.data(), out.x.data(), d.size());
    return out;
  }

  // Transforms d's features in place (x is reallocated when the width changes).
  void transform_inplace(Dataset& d) const {
    check_input(d);
    std::vector<std::string> names = self().names_after(d.feature_names);
    std::vector<std::size_t> shape = shape_after(d);
    const std::size_t n = d.size();
    if (in_ == out_ && !self().can_reject()) {
      rows(d.x.data(), d.x.data(), n);
    } else {
      // A fresh buffer keeps d unchanged if a code is rejected half way.
      std::vector<float> x(n * out_);
      rows(d.x.data(), x.data(), n);
      d.x.swap(x);
    }
    d.sample_shape = std::move(shape);
    d.feature_names = std::move(names);
  }

  // One sample, no heap allocation: in.size() == input_size(), out.size() == output_size().
  // `out` may start at in.data() (then it is transformed in place).
  void transform(std::span<const float> in, std::span<float> out) const {
    require_fitted();
    if (in.size() != in_ || out.size() != out_)
      fail(D::kName, ": the input sample has ", in.size(), " values and the output span ",
           out.size(), ", but the fitted sizes are ", in_, " in and ", out_, " out.");
    for (std::size_t j = 0; j < in_; ++j)
      if (!std::isfinite(in[j]) && !(std::isnan(in[j]) && self().fills_missing(j)))
        fail(D::kName, ": the input sample holds ", in[j], " at feature ", j,
             "; clean or impute missing values before preprocessing.");
    if (out.data() != in.data()) std::memmove(out.data(), in.data(), in_ * sizeof(float));
    self().apply(out.data(), kInputSample);
  }

  Dataset fit_transform(const Dataset& train) {
    static_cast<D&>(*this).fit(train);
    return transform(train);
  }

 protected:
  void require_fitted() const {
    if (!fitted_)
      fail(D::kName, ": transform was called before fit; fit it on the training set first.");
  }
  // A step accepts any feature names; Preprocessing checks them against the fitted ones.
  void check_names(const Dataset&) const {}
  // Whether NaN (a missing value) is accepted in input feature j: only where an imputer fills it.
  bool fills_missing(std::size_t) const { return false; }

  std::size_t in_ = 0, out_ = 0;
  bool fitted_ = false;

 private:
  const D& self() const { return static_cast<const D&>(*this); }

  void check_input(const Dataset& d) const {
    require_fitted();
    d.check_consistent();
    const std::size_t f = d.feature_size();
    if (f != in_)
      fail(D::kName, " was fitted on ", in_, " features but the dataset has ", f,
           " features per sample.");
    self().check_names(d);
    for (std::size_t k = 0; k < d.x.size(); ++k)
      if (!std::isfinite(d.x[k]) && !(std::isnan(d.x[k]) && self().fills_missing(k % f)))
        fail(D::kName, ": the dataset holds ", d.x[k], " at sample ", k / f, ", ",
             feature_text(k % f, d.feature_names),
             "; clean or impute missing values before preprocessing.");
  }

  std::vector<std::size_t> shape_after(const Dataset& d) const {
    return in_ == out_ ? d.sample_shape : std::vector<std::size_t>{out_};
  }

  // n rows from src (in_ apart) into dst (out_ apart); src == dst only when in_ == out_.
  void rows(const float* src, float* dst, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
      const float* s = src + i * in_;
      float* t = dst + i * out_;
      if (t != s) std::memcpy(t, s, in_ * sizeof(float));
      self().apply(t, i);
    }
  }
};

}  // namespace detail

// Fills the missing values (NaN) of each chosen feature with a statistic of that feature's
// training values, as scikit-learn's SimpleImputer: the mean or the median of its finite values,
// its most frequent value (of a tie, the smallest), or a constant. Fitted on the training split
// only, so validation and test rows lend it nothing; saved with the model, so inference inputs
// with gaps are filled the same way. `features` empty chooses all. Infinities are not missing
// values: they are an error at fit and at transform. A chosen feature with no finite training
// value cannot be filled by a statistic (an error naming it); constant needs none.
class SimpleImputer : public detail::RowTransform<SimpleImputer> {
 public:
  static constexpr const char* kName = "SimpleImputer";
  enum class Strategy : std::uint8_t { mean = 0, median = 1, most_frequent = 2, constant = 3 };

  explicit SimpleImputer(Strategy strategy = Strategy::mean, std::vector<std::size_t> features = {},
                         double fill_value = 0.0)
      : strategy_(strategy), fill_(fill_value), chosen_(std::move(features)) {
    if (static_cast<std::uint8_t>(strategy) > 3)
      fail("SimpleImputer: unknown strategy ", int{static_cast<std::uint8_t>(strategy)},
           "; use mean, median, most_frequent or constant.");
    if (!std::isfinite(fill_value))
      fail("SimpleImputer: the constant fill value must be finite, not ", fill_value, ".");
    std::sort(chosen_.begin(), chosen_.end());
    if (std::adjacent_find(chosen_.begin(), chosen_.end()) != chosen_.end())
      fail("SimpleImputer: feature ", *std::adjacent_find(chosen_.begin(), chosen_.end()),
           " is chosen twice.");
  }
  static SimpleImputer constant(double value, std::vector<std::size_t> features = {}) {
    return SimpleImputer(Strategy::constant, std::move(features), value);
  }

  void fit(const Dataset& train) {
    fitted_ = false;
    d_check(train);
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    std::vector<double> v;
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      v.clear();
      for (std::size_t i = 0; i < n; ++i) {
        const float x = train.x[i * f + j];
        if (!std::isnan(x)) v.push_back(x);
      }
      st_.b[c] = static_cast<double>(n - v.size());
      if (strategy_ == Strategy::constant) {
        st_.a[c] = fill_;
        continue;
      }
      if (v.empty())
        fail("SimpleImputer.fit: ", detail::feature_text(j, train.feature_names), " has no value in ",
             "the ", n, " training samples (all missing), so there is no ", strategy_name(strategy_),
             " to fill it with; use SimpleImputer::constant or drop the feature.");
      st_.a[c] = strategy_ == Strategy::mean     ? stats::mean(v)
                 : strategy_ == Strategy::median ? stats::median(v)
                                                 : stats::most_frequent(v);
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  Strategy strategy() const { return strategy_; }
  // After fit: the imputed feature indices (sorted), the value each is filled with, and how many
  // training values of each were missing.
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& fill_values() const { return st_.a; }
  std::vector<std::size_t> missing_at_fit() const {
    return std::vector<std::size_t>(st_.b.begin(), st_.b.end());
  }

  static const char* strategy_name(Strategy s) {
    switch (s) {
      case Strategy::mean: return "mean";
      case Strategy::median: return "median";
      case Strategy::most_frequent: return "most frequent value";
      case Strategy::constant: return "constant";
    }
    return "?";
  }

 private:
  friend class detail::RowTransform<SimpleImputer>;
  friend class Preprocessing;

  // The training set may hold NaN in the chosen features (all features when none are chosen).
  void d_check(const Dataset& train) const {
    const std::size_t f = train.feature_size();
    std::vector<bool> may_miss(f, chosen_.empty());
    for (std::size_t j : chosen_)
      if (j < f) may_miss[j] = true;
    detail::check_training_set(train, kName, may_miss);
  }
  bool fills_missing(std::size_t j) const {
    return std::binary_search(st_.cols.begin(), st_.cols.end(), j);
  }
  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      if (std::isnan(v)) v = static_cast<float>(st_.a[c]);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagImputer);
    w.u64(in_);
    w.u64(st_.cols.size());
    w.u8(static_cast<std::uint8_t>(strategy_));
    st_.write(w);
  }
  static SimpleImputer read(detail::Reader& r, std::size_t width, std::uint64_t count,
                            std::size_t step) {
    const std::uint8_t strategy = r.u8("SimpleImputer strategy");
    if (strategy > 3)
      detail::load_fail("step ", step, " (SimpleImputer) has strategy ", int{strategy},
                        "; expected 0 (mean), 1 (median), 2 (most frequent) or 3 (constant).");
    SimpleImputer s(static_cast<Strategy>(strategy));
    s.st_.read(
        r, width, count, step, kName, "fill value", "missing count",
        [](double a, double b) { return std::isfinite(a) && b >= 0.0 && b == std::floor(b) && b < 0x1p53; },
        "a finite fill value and a whole missing count >= 0");
    if (s.strategy_ == Strategy::constant && !s.st_.a.empty()) s.fill_ = s.st_.a[0];
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  Strategy strategy_;
  double fill_;
  std::vector<std::size_t> chosen_;  // as given, sorted; empty means all
  detail::FeatureStats st_;          // a: fill value, b: missing values seen at fit
};

// Maps each chosen feature's training range [min, max] linearly onto [lo, hi] (default [0, 1]);
// a feature constant in training maps to lo. Values outside the training range map outside
// [lo, hi] (no clipping). `features` empty chooses all.
class MinMaxScaler : public detail::RowTransform<MinMaxScaler> {
 public:
  static constexpr const char* kName = "MinMaxScaler";

  explicit MinMaxScaler(double lo = 0.0, double hi = 1.0, std::vector<std::size_t> features = {})
      : lo_(lo), hi_(hi), chosen_(std::move(features)) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
      fail("MinMaxScaler: the feature range [", lo, ", ", hi, "] must be finite with lo < hi.");
  }

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      st_.a[c] = st_.b[c] = train.x[j];
      for (std::size_t i = 1; i < n; ++i) {
        const double v = train.x[i * f + j];
        st_.a[c] = std::min(st_.a[c], v);
        st_.b[c] = std::max(st_.b[c], v);
      }
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  double lo() const { return lo_; }
  double hi() const { return hi_; }
  // After fit: the scaled feature indices (sorted) and their training minimum and maximum.
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& data_min() const { return st_.a; }
  const std::vector<double>& data_max() const { return st_.b; }

 private:
  friend class detail::RowTransform<MinMaxScaler>;
  friend class Preprocessing;

  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      const double range = st_.b[c] - st_.a[c];
      if (range == 0.0) {
        v = static_cast<float>(lo_);
        continue;
      }
      // lo*(1-t) + hi*t is exactly lo at t = 0 and exactly hi at t = 1, so the training
      // extremes land on the range ends; lo + t*(hi-lo) can miss hi by an ulp.
      const double t = (static_cast<double>(v) - st_.a[c]) / range;
      v = static_cast<float>(lo_ * (1.0 - t) + hi_ * t);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagMinMax);
    w.u64(in_);
    w.u64(st_.cols.size());
    w.f64(lo_);
    w.f64(hi_);
    st_.write(w);
  }
  static MinMaxScaler read(detail::Reader& r, std::size_t width, std::uint64_t count,
                           std::size_t step) {
    const double lo = r.f64("MinMaxScaler lo"), hi = r.f64("MinMaxScaler hi");
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
      detail::load_fail("step ", step, " (MinMaxScaler) has the range [", lo, ", ", hi,
                        "]; expected finite values with lo < hi.");
    MinMaxScaler s(lo, hi);
    s.st_.read(
        r, width, count, step, kName, "min", "max",
        [](double a, double b) { return std::isfinite(a) && std::isfinite(b) && a <= b; },
        "finite values with min <= max");
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  double lo_, hi_;
  std::vector<std::size_t> chosen_;  // as given; empty means all
  detail::FeatureStats st_;          // a: training min, b: training max
};

// Standardizes each chosen feature to (x - mean) / std with the training mean and population
// standard deviation; a feature constant in training maps to 0. `features` empty chooses all.
class StandardScaler : public detail::RowTransform<StandardScaler> {
 public:
  static constexpr const char* kName = "StandardScaler";

  explicit StandardScaler(std::vector<std::size_t> features = {}) : chosen_(std::move(features)) {}

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    st_.cols = detail::resolve_features(chosen_, f, kName);
    st_.resize(st_.cols.size());
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      const std::size_t j = st_.cols[c];
      double sum = 0.0, lo = train.x[j], hi = train.x[j];
      for (std::size_t i = 0; i < n; ++i) {
        const double v = train.x[i * f + j];
        sum += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      // Constant is decided by min == max: a rounded mean could leave a tiny nonzero variance.
      if (lo == hi) {
        st_.a[c] = lo;
        continue;
      }
      const double mean = sum / static_cast<double>(n);
      double ss = 0.0;  // two passes: the sum of squares about the mean does not cancel
      for (std::size_t i = 0; i < n; ++i) {
        const double dv = train.x[i * f + j] - mean;
        ss += dv * dv;
      }
      st_.a[c] = mean;
      st_.b[c] = std::sqrt(ss / static_cast<double>(n));
    }
    in_ = out_ = f;
    fitted_ = true;
  }

  // After fit: the standardized feature indices (sorted), their training mean and population
  // standard deviation (0 for a constant feature).
  const std::vector<std::size_t>& features() const { return st_.cols; }
  const std::vector<double>& mean() const { return st_.a; }
  const std::vector<double>& stddev() const { return st_.b; }

 private:
  friend class detail::RowTransform<StandardScaler>;
  friend class Preprocessing;

  void apply(float* row, std::size_t) const {
    for (std::size_t c = 0; c < st_.cols.size(); ++c) {
      float& v = row[st_.cols[c]];
      const double sd = st_.b[c];
      v = sd == 0.0 ? 0.0f : static_cast<float>((static_cast<double>(v) - st_.a[c]) / sd);
    }
  }
  bool can_reject() const { return false; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const { return in; }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagStandard);
    w.u64(in_);
    w.u64(st_.cols.size());
    st_.write(w);
  }
  static StandardScaler read(detail::Reader& r, std::size_t width, std::uint64_t count,
                             std::size_t step) {
    StandardScaler s;
    s.st_.read(
        r, width, count, step, kName, "mean", "std",
        [](double a, double b) { return std::isfinite(a) && std::isfinite(b) && b >= 0.0; },
        "finite values with std >= 0");
    s.chosen_ = s.st_.cols;
    s.in_ = s.out_ = width;
    s.fitted_ = true;
    return s;
  }

  std::vector<std::size_t> chosen_;  // as given; empty means all
  detail::FeatureStats st_;          // a: training mean, b: population std
};

// Replaces each chosen feature, where it stands, by k indicator columns. A chosen feature holds
// integer category codes 0..k-1 stored as floats (as a categorical CSV column becomes); k is
// learnt by fit as max code + 1, or given per feature in `categories`. Training codes must be
// valid; at transform an unknown code (>= k, negative, not an integer) is an error naming the
// sample, feature and value, or with Unknown::ignore encodes as all zeros.
class OneHotEncoder : public detail::RowTransform<OneHotEncoder> {
 public:
  static constexpr const char* kName = "OneHotEncoder";

  explicit OneHotEncoder(std::vector<std::size_t> features, Unknown unknown = Unknown::error,
                         std::vector<std::size_t> categories = {})
      : unknown_(unknown) {
    if (features.empty()) fail("OneHotEncoder: no features were chosen to encode.");
    if (!categories.empty() && categories.size() != features.size())
      fail("OneHotEncoder: ", categories.size(), " category counts were given for ",
           features.size(), " features; give one per feature or none.");
    std::vector<std::size_t> order(features.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return features[a] < features[b]; });
    for (std::size_t o = 0; o < order.size(); ++o) {
      const std::size_t j = features[order[o]];
      if (o > 0 && j == chosen_.back()) fail("OneHotEncoder: feature ", j, " is chosen twice.");
      chosen_.push_back(j);
      if (categories.empty()) continue;
      const std::size_t k = categories[order[o]];
      if (k < 1 || k > detail::kMaxCategories)
        fail("OneHotEncoder: feature ", j, " was given ", k, " categories; expected 1 to ",
             detail::kMaxCategories, ".");
      given_k_.push_back(k);
    }
  }

  void fit(const Dataset& train) {
    detail::check_training_set(train, kName);
    fitted_ = false;
    const std::size_t f = train.feature_size(), n = train.size();
    cols_ = detail::resolve_features(chosen_, f, kName);
    k_.assign(cols_.size(), 0);
    std::size_t width = f;
    for (std::size_t c = 0; c < cols_.size(); ++c) {
      const std::size_t j = cols_[c];
      const double limit =
          static_cast<double>(given_k_.empty() ? detail::kMaxCategories : given_k_[c]);
      double top = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double v = train.x[i * f + j];
        if (!(v >= 0.0 && v == std::floor(v)))
          fail("OneHotEncoder.fit: the training set holds ", v, " at sample ", i, ", ",
               detail::feature_text(j, train.feature_names),
               ", which is not a category code (a non-negative integer).");
        if (v >= limit)
          fail("OneHotEncoder.fit: the training set holds code ", v, " at sample ", i, ", ",
               detail::feature_text(j, train.feature_names), ", but ",
               given_k_.empty() ? "the limit is " : "the encoder was given ", limit,
               " categories (codes 0 to ", limit - 1, ").");
        top = std::max(top, v);
      }
      k_[c] = given_k_.empty() ? static_cast<std::size_t>(top) + 1 : given_k_[c];
      width += k_[c] - 1;
    }
    in_ = f;
    out_ = width;
    fitted_ = true;
  }

  Unknown unknown() const { return unknown_; }
  // After fit: the encoded feature indices (sorted) and their category counts.
  const std::vector<std::size_t>& features() const { return cols_; }
  const std::vector<std::size_t>& categories() const { return k_; }

 private:
  friend class detail::RowTransform<OneHotEncoder>;
  friend class Preprocessing;
  OneHotEncoder() = default;  // for read()

  // Expands from the back: feature j's columns start at or after j, and every feature before j
  // is still unread, so writing right to left never overwrites input not yet read.
  void apply(float* row, std::size_t sample) const {
    std::size_t dst = out_, j = in_, c = cols_.size();
    while (c > 0) {
      --j;
      if (j != cols_[c - 1]) {
        row[--dst] = row[j];
        continue;
      }
      --c;
      const std::size_t k = k_[c];
      const float v = row[j];
      dst -= k;
      std::fill_n(row + dst, k, 0.0f);
      if (v >= 0.0f && static_cast<double>(v) < static_cast<double>(k) && v == std::floor(v))
        row[dst + static_cast<std::size_t>(v)] = 1.0f;
      else if (unknown_ == Unknown::error)
        fail("OneHotEncoder: ", detail::sample_text(sample), ", feature ", j, " holds ", v,
             ", which is not a known category code (0 to ", k - 1,
             "); pass Unknown::ignore to encode unknown codes as all zeros.");
    }
  }
  bool can_reject() const { return unknown_ == Unknown::error; }
  std::vector<std::string> names_after(const std::vector<std::string>& in) const {
    if (in.empty()) return {};
    std::vector<std::string> out;
    out.reserve(out_);
    for (std::size_t j = 0, c = 0; j < in.size(); ++j) {
      if (c < cols_.size() && cols_[c] == j) {
        for (std::size_t k = 0; k < k_[c]; ++k) out.push_back(in[j] + "=" + std::to_string(k));
        ++c;
      } else {
        out.push_back(in[j]);
      }
    }
    return out;
  }

  void write(detail::Writer& w) const {
    w.u32(detail::kTagOneHot);
    w.u64(in_);
    w.u64(cols_.size());
    w.u8(unknown_ == Unknown::ignore ? 1 : 0);
    for (std::size_t c = 0; c < cols_.size(); ++c) {
      w.u64(cols_[c]);
      w.u64(k_[c]);
    }
  }
  static OneHotEncoder read(detail::Reader& r, std::size_t width, std::uint64_t count,
                            std::size_t step) {
    OneHotEncoder s;
    const std::uint8_t unknown = r.u8("the OneHotEncoder unknown-code mode");
    if (unknown > 1)
      detail::load_fail("step ", step, " (OneHotEncoder) has unknown-code mode ", int{unknown},
                        "; expected 0 (error) or 1 (ignore).");
    s.unknown_ = unknown == 1 ? Unknown::ignore : Unknown::error;
    const std::size_t n = r.count(count, 16, "OneHotEncoder features");
    if (n == 0) detail::load_fail("step ", step, " (OneHotEncoder) encodes no features.");
    std::uint64_t out = width;
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t j = detail::checked_feature(r.u64("a feature index"), c, width,
                                                    c > 0 ? s.cols_.back() : 0, step, kName);
      const std::uint64_t k = r.u64("a category count");
      if (k < 1 || k > detail::kMaxCategories)
        detail::load_fail("step ", step, " (OneHotEncoder) gives feature ", j, " ", k,
                          " categories; expected 1 to ", detail::kMaxCategories, ".");
      s.cols_.push_back(j);
      s.k_.push_back(static_cast<std::size_t>(k));
      out += k - 1;
    }
    if (out > detail::kMaxFeatures)
      detail::load_fail("step ", step, " (OneHotEncoder) would output ", out,
                        " features, more than the limit of ", detail::kMaxFeatures, ".");
    s.chosen_ = s.cols_;
    s.given_k_ = s.k_;  // a loaded encoder keeps its categories if refitted
    s.in_ = width;
    s.out_ = static_cast<std::size_t>(out);
    s.fitted_ = true;
    return s;
  }

  Unknown unknown_ = Unknown::error;
  std::vector<std::size_t> chosen_;   // sorted
  std::vector<std::size_t> given_k_;  // per chosen feature, or empty to learn k
  std::vector<std::size_t> cols_, k_;
};

// An ordered list of fitted steps: fit on the training set, then the same transformation for
// validation, test and inference, and save/load as one binary block (format at the top).
class Preprocessing : public detail::RowTransform<Preprocessing> {
 public:
  static constexpr const char* kName = "Preprocessing";
  using Step = std::variant<MinMaxScaler, StandardScaler, OneHotEncoder, SimpleImputer>;

  // Appends a step; the pipeline must be (re)fitted afterwards.
  Preprocessing& add(Step step) {
    steps_.push_back(std::move(step));
    fitted_ = false;
    return *this;
  }
  const std::vector<Step>& steps() const { return steps_; }

  // Fits each step on the output of the steps before it; keeps the training feature names.
  void fit(const Dataset& train) {
    fitted_ = false;
    {
      // NaN may stand where the leading imputers fill it; the imputers' own fit checks the rest.
      const std::size_t f = train.feature_size();
      std::vector<bool> may_miss(f, false);
      for (const Step& s : steps_) {
        const auto* imp = std::get_if<SimpleImputer>(&s);
        if (!imp) break;
        for (std::size_t j = 0; j < f; ++j)
          if (imp->chosen_.empty() || std::binary_search(imp->chosen_.begin(), imp->chosen_.end(), j))
            may_miss[j] = true;
      }
      detail::check_training_set(train, kName, may_miss);
    }
    const Dataset* cur = &train;
    Dataset next;
    for (std::size_t s = 0; s < steps_.size(); ++s)
      std::visit(
          [&](auto& step) {
            step.fit(*cur);
            if (s + 1 < steps_.size()) {
              Dataset t = step.transform(*cur);
              next = std::move(t);
              cur = &next;
            }
          },
          steps_[s]);
    in_ = train.feature_size();
    out_ = in_;
    if (!steps_.empty())
      std::visit([&](const auto& st) { out_ = st.output_size(); }, steps_.back());
    input_names_ = train.feature_names;
    output_names_ = chain_names(input_names_);
    fitted_ = true;
  }

  // The feature names seen at fit (empty if the training set had none) and the names of the
  // output columns.
  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }

  void save(std::ostream& os) const {
    require_fitted();
    if (const std::uint64_t n = detail::names_bytes(output_names_); n > detail::kMaxNameBytes)
      fail("Preprocessing::save: the output feature names take ", n, " bytes, more than the "
           "limit of ", detail::kMaxNameBytes, " that load() accepts.");
    detail::Writer body;
    body.u64(in_);
    body.u64(out_);
    body.u32(static_cast<std::uint32_t>(steps_.size()));
    body.u8(input_names_.empty() ? 0 : 1);
    for (const std::string& name : input_names_) body.str(name);
    for (const Step& s : steps_) std::visit([&](const auto& st) { st.write(body); }, s);
    const std::string& b = body.bytes();
    if (b.size() > detail::kMaxBlockBytes)
      fail("Preprocessing::save: the block would be ", b.size(), " bytes, more than the limit of ",
           detail::kMaxBlockBytes, ".");
    detail::Writer head;
    for (char ch : detail::kMagic) head.u8(static_cast<std::uint8_t>(ch));
    head.u32(detail::kFormatVersion);
    head.u64(b.size());
    head.u32(ctnn::detail::crc32_of(b));
    os.write(head.bytes().data(), static_cast<std::streamsize>(head.bytes().size()));
    os.write(b.data(), static_cast<std::streamsize>(b.size()));
    if (!os)
      fail("Preprocessing::save: writing the ", detail::kHeaderBytes + b.size(),
           "-byte block to the stream failed.");
  }

  // Reads one block written by save(), leaving the stream just after it. Loaded steps keep
  // their features (and an encoder its category counts) if the pipeline is refitted.
  static Preprocessing load(std::istream& is) {
    char head[detail::kHeaderBytes] = {};
    is.read(head, static_cast<std::streamsize>(sizeof head));
    const auto got = static_cast<std::size_t>(is.gcount());
    const std::size_t magic_got = std::min(got, sizeof detail::kMagic);
    if (std::memcmp(head, detail::kMagic, magic_got) != 0) {
      std::ostringstream found;
      for (std::size_t i = 0; i < magic_got; ++i)
        found << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0')
              << int{static_cast<unsigned char>(head[i])};
      detail::load_fail("this is not a preprocessing block: it starts with bytes ", found.str(),
                        " where \"CTNNPREP\" was expected.");
    }
    if (got < detail::kHeaderBytes)
      detail::load_fail("the block is truncated: its header needs ", detail::kHeaderBytes,
                        " bytes but only ", got, " were read.");
    detail::Reader h(std::string_view(head + 8, detail::kHeaderBytes - 8), detail::kBlockName, 8);
    const std::uint32_t version = h.u32("the format version");
    if (version != detail::kFormatVersion)
      detail::load_fail("the block has format version ", version, "; this build reads version ",
                        detail::kFormatVersion, ".");
    const std::uint64_t size = h.u64("the body size");
    const std::uint32_t crc = h.u32("the checksum");
    if (size > detail::kMaxBlockBytes)
      detail::load_fail("the header announces a body of ", size, " bytes, more than the limit of ",
                        detail::kMaxBlockBytes, "; the block is corrupt.");
    // Read in chunks so a corrupt size meets the end of the stream before a big allocation.
    std::string body;
    while (body.size() < size) {
      const std::size_t old = body.size();
      const std::size_t chunk =
          std::min<std::size_t>(static_cast<std::size_t>(size) - old, 1u << 16);
      body.resize(old + chunk);
      is.read(body.data() + old, static_cast<std::streamsize>(chunk));
      const auto n = static_cast<std::size_t>(is.gcount());
      if (n < chunk)
        detail::load_fail("the block is truncated: the header announces a body of ", size,
                          " bytes but only ", old + n, " followed.");
    }
    if (const std::uint32_t actual = ctnn::detail::crc32_of(body); actual != crc) {
      std::ostringstream m;
      m << std::hex << "the body's CRC-32 is 0x" << actual << " but the header says 0x" << crc
        << "; the block is corrupt.";
      detail::load_fail(m.str());
    }
    return parse(body);
  }

 private:
  friend class detail::RowTransform<Preprocessing>;

  void apply(float* row, std::size_t sample) const {
    for (const Step& s : steps_) std::visit([&](const auto& st) { st.apply(row, sample); }, s);
  }
  bool fills_missing(std::size_t j) const {
    for (const Step& s : steps_) {
      const auto* imp = std::get_if<SimpleImputer>(&s);
      if (!imp) return false;
      if (imp->fills_missing(j)) return true;
    }
    return false;
  }
  bool can_reject() const {
    for (const Step& s : steps_)
      if (std::visit([](const auto& st) { return st.can_reject(); }, s)) return true;
    return false;
  }
  void check_names(const Dataset& d) const {
    if (input_names_.empty() || d.feature_names.empty()) return;
    for (std::size_t j = 0; j < input_names_.size(); ++j)
      if (d.feature_names[j] != input_names_[j])
        fail("Preprocessing: feature ", j, " of the dataset is named \"",
             excerpt(d.feature_names[j]), "\" but was \"", excerpt(input_names_[j]),
             "\" at fit; the columns must come in the order the preprocessing was fitted on.");
  }
  // Fitted names are carried to datasets that have none.
  std::vector<std::string> names_after(const std::vector<std::string>& in) const {
    return output_names_.empty() ? chain_names(in) : output_names_;
  }
  std::vector<std::string> chain_names(std::vector<std::string> names) const {
    for (const Step& s : steps_)
      names = std::visit([&](const auto& st) { return st.names_after(names); }, s);
    return names;
  }

  // chain_names(input names) for load(), refusing names over kMaxNameBytes before building them.
  static std::vector<std::string> checked_names(const std::vector<Step>& steps,
                                                std::vector<std::string> names) {
    const auto check = [](std::uint64_t bytes) {
      if (bytes > detail::kMaxNameBytes)
        detail::load_fail("the pipeline's feature names would take more than ",
                          detail::kMaxNameBytes, " bytes (one-hot columns are named "
                          "\"<name>=<code>\"); the block is corrupt or its pipeline too wide.");
    };
    std::uint64_t bytes = detail::names_bytes(names);
    check(bytes);
    for (const Step& step : steps) {
      if (names.empty()) break;
      if (const auto* e = std::get_if<OneHotEncoder>(&step)) {
        for (std::size_t c = 0; c < e->cols_.size(); ++c) {  // name j becomes k names "j=<code>"
          const std::uint64_t k = e->k_[c], len = names[e->cols_[c]].size();
          bytes += (k - 1) * sizeof(std::string) + (k - 1) * len + k + detail::code_digits(k);
          check(bytes);  // each term is below 2^48 and bytes below 2^27: no overflow
        }
      }
      names = std::visit([&](const auto& st) { return st.names_after(names); }, step);
    }
    return names;
  }

  static Preprocessing parse(std::string_view body) {
    detail::Reader r(body, detail::kBlockName, detail::kHeaderBytes);
    const std::uint64_t in = r.u64("the input size"), out = r.u64("the output size");
    const auto check_size = [](std::uint64_t v, const char* which) {
      if (v == 0 || v > detail::kMaxFeatures)
        detail::load_fail("the block gives ", which, " size ", v, "; expected 1 to ",
                          detail::kMaxFeatures, " features.");
    };
    check_size(in, "input");
    check_size(out, "output");
    const std::uint32_t n_steps = r.u32("the step count");
    const std::uint8_t has_names = r.u8("the has-names flag");
    if (has_names > 1)
      detail::load_fail("the has-names flag is ", int{has_names}, "; expected 0 or 1.");
    Preprocessing p;
    if (has_names == 1) {
      const std::size_t n = r.count(in, 4, "feature names");
      if (n * sizeof(std::string) > detail::kMaxNameBytes)
        detail::load_fail("the block names ", n, " input features, more than the ",
                          detail::kMaxNameBytes / sizeof(std::string), " names it may hold.");
      p.input_names_.reserve(n);
      for (std::size_t j = 0; j < n; ++j) p.input_names_.push_back(r.str("a feature name"));
    }
    // The smallest step is its tag, input size and count: 20 bytes.
    p.steps_.reserve(r.count(n_steps, 20, "steps"));
    auto width = static_cast<std::size_t>(in);
    for (std::size_t s = 0; s < n_steps; ++s) {
      const std::uint32_t tag = r.u32("a step's kind tag");
      const std::uint64_t step_in = r.u64("a step's input size");
      if (step_in != width)
        detail::load_fail("step ", s, " says its input has ", step_in,
                          " features but the steps before it give ", width, ".");
      const std::uint64_t count = r.u64("a step's feature count");
      switch (tag) {
        case detail::kTagMinMax:
          p.steps_.emplace_back(MinMaxScaler::read(r, width, count, s));
          break;
        case detail::kTagStandard:
          p.steps_.emplace_back(StandardScaler::read(r, width, count, s));
          break;
        case detail::kTagOneHot:
          p.steps_.emplace_back(OneHotEncoder::read(r, width, count, s));
          break;
        case detail::kTagImputer:
          p.steps_.emplace_back(SimpleImputer::read(r, width, count, s));
          break;
        default:
          detail::load_fail("step ", s, " has the unknown kind tag ", tag,
                            "; expected 1 (MinMaxScaler), 2 (StandardScaler), 3 (OneHotEncoder) "
                            "or 4 (SimpleImputer).");
      }
      std::visit([&](const auto& st) { width = st.output_size(); }, p.steps_.back());
    }
    if (width != out)
      detail::load_fail("the steps give ", width, " output features but the header says ", out,
                        ".");
    if (r.remaining() != 0)
      detail::load_fail("the body has ", r.remaining(),
                        " bytes left after the last step; its sizes are inconsistent.");
    p.in_ = static_cast<std::size_t>(in);
    p.out_ = width;
    p.output_names_ = checked_names(p.steps_, p.input_names_);
    p.fitted_ = true;
    return p;
  }

  std::vector<Step> steps_;
  std::vector<std::string> input_names_, output_names_;
};

// Short descriptions: "StandardScaler(30 features)", "MinMaxScaler([-1, 1], 4 of 13 features)",
// "OneHotEncoder(feature 3: 4 categories)"; a pipeline lists its steps, comma separated.
namespace detail {
inline void describe_count(std::ostream& os, std::size_t chosen, std::size_t width) {
  if (chosen != width) os << chosen << " of ";
  os << width << (width == 1 ? " feature" : " features");
}
}  // namespace detail

inline std::ostream& operator<<(std::ostream& os, const MinMaxScaler& s) {
  os << "MinMaxScaler(";
  if (s.fitted()) {
    os << "[" << s.lo() << ", " << s.hi() << "], ";
    detail::describe_count(os, s.features().size(), s.input_size());
  } else {
    os << "not fitted";
  }
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const StandardScaler& s) {
  os << "StandardScaler(";
  if (s.fitted())
    detail::describe_count(os, s.features().size(), s.input_size());
  else
    os << "not fitted";
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const SimpleImputer& s) {
  os << "SimpleImputer(" << SimpleImputer::strategy_name(s.strategy());
  if (s.fitted()) {
    os << ", ";
    detail::describe_count(os, s.features().size(), s.input_size());
    std::size_t missing = 0;
    for (std::size_t m : s.missing_at_fit()) missing += m;
    os << ", " << missing << " missing at fit";
  } else {
    os << ", not fitted";
  }
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const OneHotEncoder& s) {
  os << "OneHotEncoder(";
  if (!s.fitted()) return os << "not fitted)";
  for (std::size_t c = 0; c < s.features().size(); ++c)
    os << (c ? ", " : "") << "feature " << s.features()[c] << ": " << s.categories()[c]
       << (s.categories()[c] == 1 ? " category" : " categories");
  if (s.unknown() == Unknown::ignore) os << "; unknown codes ignored";
  return os << ")";
}

inline std::ostream& operator<<(std::ostream& os, const Preprocessing& p) {
  if (p.steps().empty()) return os << "Preprocessing(no steps)";
  for (std::size_t s = 0; s < p.steps().size(); ++s) {
    if (s) os << ", ";
    std::visit([&](const auto& st) { os << st; }, p.steps()[s]);
  }
  return os;
}

}  // namespace ctnn::data
// ---- end ctnn/data/preprocess.hpp ----
// ---- begin ctnn/data/split.hpp ----
// ctnn/data/split.hpp: picking samples from a Dataset (subset, head); a seeded train/test split.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>


namespace ctnn::data {

// A new Dataset holding the samples at `indices`, in that order (repeats allowed), with their
// labels or targets; shape, num_classes, target_size and the names are kept. Throws ctnn::Error
// if an index is out of range.
inline Dataset subset(const Dataset& d, std::span<const std::size_t> indices) {
  d.check_consistent();
  const std::size_t n = d.size(), f = d.feature_size(), t = d.target_size;
  Dataset out;
  out.sample_shape = d.sample_shape;
  out.num_classes = d.num_classes;
  out.target_size = d.target_size;
  out.feature_names = d.feature_names;
  out.class_names = d.class_names;
  out.x.reserve(indices.size() * f);
  if (d.has_labels()) out.labels.reserve(indices.size());
  if (d.has_targets()) out.targets.reserve(indices.size() * t);
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= n)
      fail("subset: index ", i, " at position ", k, " is out of range for a dataset of ", n,
           " samples.");
    out.x.insert(out.x.end(), d.x.begin() + static_cast<std::ptrdiff_t>(i * f),
                 d.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * f));
    if (d.has_labels()) out.labels.push_back(d.labels[i]);
    if (d.has_targets())
      out.targets.insert(out.targets.end(), d.targets.begin() + static_cast<std::ptrdiff_t>(i * t),
                         d.targets.begin() + static_cast<std::ptrdiff_t>((i + 1) * t));
  }
  return out;
}

// The first min(n, d.size()) samples, for short runs.
inline Dataset head(const Dataset& d, std::size_t n) {
  std::vector<std::size_t> idx(std::min(n, d.size()));
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return subset(d, idx);
}

// Shuffles the sample indices with ctnn::Rng(seed) and gives the first
// round(n * (1 - test_fraction)) of them, in shuffled order, to the first (train) set and the rest
// to the second (test) set. The same seed gives the same split on every platform. Throws
// ctnn::Error unless 0 < test_fraction < 1 and both parts get at least one sample.
inline std::pair<Dataset, Dataset> train_test_split(const Dataset& d, double test_fraction,
                                                    std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    fail("train_test_split: test_fraction must lie in (0, 1), got ", test_fraction, ".");
  d.check_consistent();
  const std::size_t n = d.size();
  const auto n_train =
      static_cast<std::size_t>(std::llround(static_cast<double>(n) * (1.0 - test_fraction)));
  if (n_train == 0 || n_train == n)
    fail("train_test_split: splitting ", n, " samples with test_fraction ", test_fraction,
         " gives ", n_train, " train and ", n - n_train, " test samples; both need at least one.");
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  Rng rng(seed);
  shuffle(idx, rng);
  const std::span<const std::size_t> all(idx);
  return {subset(d, all.first(n_train)), subset(d, all.subspan(n_train))};
}

}  // namespace ctnn::data
// ---- end ctnn/data/split.hpp ----
// ---- begin ctnn/data/transform.hpp ----
// ctnn/data/transform.hpp: in-place transforms and validation of a Dataset's values.
#include <cmath>
#include <cstddef>
#include <vector>


namespace ctnn::data {

// Multiplies every feature value by `factor` (e.g. 1/255 for raw pixel bytes).
inline void scale(Dataset& d, float factor) {
  for (float& v : d.x) v *= factor;
}

// Throws ctnn::Error unless the dataset is consistent (Dataset::check_consistent) and every value
// in x and targets is finite; the message names the first bad value's sample and index. `what`
// names the dataset in the message (e.g. "training set").
inline void validate(const Dataset& d, const char* what = "dataset") {
  d.check_consistent(what);
  // Shared by x and targets: `width` values per sample.
  const auto check = [what](const std::vector<float>& v, std::size_t width, const char* field,
                            const char* index_name) {
    for (std::size_t k = 0; k < v.size(); ++k)
      if (!std::isfinite(v[k]))
        fail("The ", what, " has a non-finite value (", v[k], ") in ", field, " at sample ",
             k / width, ", ", index_name, " ", k % width, ".");
  };
  check(d.x, d.feature_size(), "x", "feature");
  if (d.has_targets()) check(d.targets, d.target_size, "targets", "target index");
}

}  // namespace ctnn::data
// ---- end ctnn/data/transform.hpp ----

// ---- begin ctnn/eval/metrics.hpp ----
// ctnn/eval/metrics.hpp: evaluation metrics and the tables that print them.
//
// From raw arrays (no model needed):
//   - confusion_matrix(truth, predicted, num_classes): counts[t][p], rows = true class.
//   - classification_report(cm): per-class precision, recall, F1 and support, accuracy, and the
//     macro and support-weighted averages; the numbers of scikit-learn's
//     classification_report(y_true, y_pred, zero_division=0):
//       * a ratio whose denominator is 0 is 0 (precision of a class never predicted, recall of a
//         class absent from the truth, F1 when both are 0);
//       * F1 = 2 tp / (2 tp + fp + fn), which equals 2PR / (P + R) whenever that is defined;
//       * the macro average runs over the classes that occur in the truth or the predictions
//         (scikit-learn's default label set); a class in neither is listed with zeros but left
//         out of the macro average, and the table says so. The weighted average weighs by support.
//   - top_k_accuracy(scores, truth, num_classes, k): the fraction of samples whose true class is
//     among the k highest scores. Ties are broken toward the lower class index, as argmax (and
//     so evaluate()'s accuracy) breaks them: the true class t ranks after every class with a
//     higher score and every lower-indexed class with an equal one. Top-1 is then exactly the
//     accuracy and top-num_classes is exactly 1.
//   - regression_report(predictions, targets, n, outputs): MAE, MSE, RMSE and R² per output and
//     their uniform average over outputs (scikit-learn's multioutput="uniform_average"; the
//     overall RMSE is the mean of the per-output RMSEs, as sklearn's root_mean_squared_error).
//     R² of a constant target column is 1 if predicted exactly, else 0 (sklearn's force_finite).
// From a model and a Dataset:
//   - report(model, data[, loss][, ReportOptions]): inference in batches through one Workspace;
//     labelled data (or one-hot targets under a categorical loss) gives the confusion matrix,
//     the classification report and top-k accuracy (k is capped at the model's output count);
//     other target data gives the regression report (under BinaryCrossEntropy too: its MSE is
//     then the Brier score). The loss is computed only when given.
//   - report_sets(model, {{"train", a}, {"test", b}}[, loss][, options]): one report per named
//     set, printed as a compact comparison table.
// Every bad input (size mismatch, label out of range, k out of range, no samples, a non-finite
// prediction, a dataset that does not fit the model) is a ctnn::Error with the values.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iomanip>
#include <limits>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

// ---- begin ctnn/data/staging.hpp ----
// ctnn/data/staging.hpp: how a Dataset's samples reach a model.
//
// check_dataset_fits<Model, L> throws unless a dataset can feed Model under loss L (its sizes,
// labels or target vectors as L reads them); stage_batch<Model, L> copies chosen samples into the
// model's workspace and the target staging. Training (train/), evaluate() and the reports
// (eval/) all feed a model this way; it sits here, below them, so none includes another for it.
// Model and L are only read through their members (input_shape, Workspace, uses_labels, name).
#include <cstddef>
#include <cstdint>
#include <string>


namespace ctnn {
namespace detail {

// Throws unless `d` can feed a model with input_size inputs and output_size outputs under loss L.
template <class Model, class L>
void check_dataset_fits(const data::Dataset& d, const char* what) {
  if (d.size() == 0) fail("The ", what, " is empty: it has no samples.");
  data::validate(d, what);  // sizes agree, labels in the dataset's range, no NaN/Inf
  if (d.feature_size() != Model::input_size) {
    std::string shape = "(";
    for (std::size_t i = 0; i < d.sample_shape.size(); ++i)
      shape += (i ? ", " : "") + std::to_string(d.sample_shape[i]);
    fail("The ", what, "'s samples have shape ", shape, ") = ", d.feature_size(),
         " values, but the model's input ", Model::input_shape::str(), " takes ", Model::input_size,
         ".");
  }
  if constexpr (L::uses_labels) {
    if (!d.has_labels())
      fail("The loss ", L::name, " needs class labels, but the ", what, " has none.");
    for (std::size_t i = 0; i < d.labels.size(); ++i)
      if (d.labels[i] < 0 || std::size_t(d.labels[i]) >= Model::output_size)
        fail("The ", what, " has label ", d.labels[i], " at sample ", i,
             ", but the model has ", Model::output_size, " outputs: labels must lie in [0, ",
             Model::output_size, ").");
  } else {
    if (!d.has_targets())
      fail("The loss ", L::name, " needs target vectors, but the ", what,
           " has none (one-hot encode the labels into targets).");
    if (d.target_size != Model::output_size)
      fail("The ", what, "'s targets have ", d.target_size, " values per sample, but the model has ",
           Model::output_size, " outputs.");
  }
}

// Copies samples idx[0..n) of d into the workspace's input slot and the target staging.
template <class Model, class L>
void stage_batch(const data::Dataset& d, const std::size_t* idx, std::size_t n,
                 typename Model::Workspace& ws, std::int32_t* labels,
                 typename Model::value_type* targets) {
  using T = typename Model::value_type;
  T* x = ws.input();
  for (std::size_t i = 0; i < n; ++i) {
    const float* src = d.sample(idx[i]);
    for (std::size_t j = 0; j < Model::input_size; ++j) x[i * Model::input_size + j] = T(src[j]);
    if constexpr (L::uses_labels) {
      labels[i] = d.labels[idx[i]];
    } else {
      const float* t = d.targets.data() + idx[i] * d.target_size;
      for (std::size_t j = 0; j < Model::output_size; ++j) targets[i * Model::output_size + j] = T(t[j]);
    }
  }
}

}  // namespace detail

}  // namespace ctnn
// ---- end ctnn/data/staging.hpp ----

namespace ctnn {

// counts[t * num_classes + p]: samples of true class t predicted as p. class_names is optional
// (empty, or one per class) and only labels the printed table.
struct ConfusionMatrix {
  std::size_t num_classes = 0;
  std::vector<std::size_t> counts;
  std::vector<std::string> class_names;

  std::size_t at(std::size_t truth, std::size_t predicted) const {
    return counts[truth * num_classes + predicted];
  }
  std::size_t support(std::size_t c) const {  // samples whose true class is c (row sum)
    std::size_t s = 0;
    for (std::size_t p = 0; p < num_classes; ++p) s += at(c, p);
    return s;
  }
  std::size_t predicted(std::size_t c) const {  // samples predicted as c (column sum)
    std::size_t s = 0;
    for (std::size_t t = 0; t < num_classes; ++t) s += at(t, c);
    return s;
  }
  std::size_t correct() const {
    std::size_t s = 0;
    for (std::size_t c = 0; c < num_classes; ++c) s += at(c, c);
    return s;
  }
  std::size_t total() const {
    std::size_t s = 0;
    for (std::size_t v : counts) s += v;
    return s;
  }
};

struct ClassMetrics {
  std::string name;  // class name, or its index when the classes are unnamed
  double precision = 0, recall = 0, f1 = 0;
  std::size_t support = 0;    // true samples of the class (for averages: all samples)
  std::size_t predicted = 0;  // samples predicted as the class
};

struct ClassificationReport {
  std::vector<ClassMetrics> classes;
  double accuracy = 0;
  ClassMetrics macro_avg, weighted_avg;
  std::size_t samples = 0;
  std::size_t averaged_classes = 0;  // classes in the macro average (see the top of the file)
};

struct RegressionMetrics {
  double mae = 0, mse = 0, rmse = 0, r2 = 0;
};

struct RegressionReport {
  std::size_t samples = 0;
  RegressionMetrics overall;                // uniform average over outputs
  std::vector<RegressionMetrics> outputs;   // one per output
  std::vector<std::string> output_names;    // optional: one per output, for the table
};

namespace detail {

inline void check_label_range(std::int32_t label, std::size_t i, std::size_t num_classes,
                        const char* what) {
  if (label < 0 || std::size_t(label) >= num_classes)
    fail("The ", what, " label ", label, " at sample ", i, " is outside the class range [0, ",
         num_classes, ").");
}

// `noun` and `where` complete "The <noun> for sample i<where> is not finite".
template <class T>
void check_finite_scores(const T* row, std::size_t width, std::size_t sample, const char* noun,
                         const std::string& where = "") {
  for (std::size_t j = 0; j < width; ++j)
    if (!std::isfinite(row[j]))
      fail("The ", noun, " for sample ", sample, where, " is not finite (", row[j], " at output ",
           j, "): the model may have diverged.");
}

// Whether class t is among the k best of row[0..width): ties go to the lower index (file top).
template <class T>
bool in_top_k(const T* row, std::size_t width, std::size_t t, std::size_t k) {
  std::size_t ahead = 0;
  for (std::size_t j = 0; j < width; ++j)
    ahead += row[j] > row[t] || (j < t && row[j] == row[t]);
  return ahead < k;
}

template <class T>
double top_k_accuracy_of(std::span<const T> scores, std::span<const std::int32_t> truth,
                      std::size_t num_classes, std::size_t k) {
  if (num_classes == 0) fail("top_k_accuracy() needs at least one class, but num_classes is 0.");
  if (truth.empty()) fail("top_k_accuracy() was given no samples (the truth is empty).");
  if (k == 0 || k > num_classes)
    fail("top_k_accuracy() needs 1 <= k <= num_classes, but k is ", k, " with ", num_classes,
         " classes.");
  if (scores.size() != truth.size() * num_classes)
    fail("top_k_accuracy() was given ", scores.size(), " scores for ", truth.size(),
         " samples of ", num_classes, " classes; it needs ", truth.size() * num_classes, ".");
  std::size_t hits = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    check_label_range(truth[i], i, num_classes, "true");
    const T* row = scores.data() + i * num_classes;
    check_finite_scores(row, num_classes, i, "score");
    hits += in_top_k(row, num_classes, std::size_t(truth[i]), k);
  }
  return double(hits) / double(truth.size());
}

template <class P, class Q>
RegressionReport regression_report_of(const P* pred, std::size_t pred_size, const Q* target,
                                   std::size_t target_size, std::size_t n, std::size_t outputs) {
  if (n == 0 || outputs == 0)
    fail("regression_report() needs at least one sample and one output, but was given ", n,
         " samples of ", outputs, " outputs.");
  if (pred_size != n * outputs || target_size != n * outputs)
    fail("regression_report() was given ", pred_size, " predictions and ", target_size,
         " targets for ", n, " samples of ", outputs, " outputs; each needs ", n * outputs, ".");
  for (std::size_t k = 0; k < n * outputs; ++k) {
    if (!std::isfinite(pred[k]))
      fail("The prediction for sample ", k / outputs, ", output ", k % outputs,
           " is not finite (", pred[k], "): the model may have diverged.");
    if (!std::isfinite(target[k]))
      fail("The target of sample ", k / outputs, ", output ", k % outputs, " is not finite (",
           target[k], ").");
  }
  RegressionReport r;
  r.samples = n;
  r.outputs.resize(outputs);
  for (std::size_t j = 0; j < outputs; ++j) {
    double mean = 0, abs_sum = 0, sq_sum = 0, tot = 0;
    for (std::size_t i = 0; i < n; ++i) mean += double(target[i * outputs + j]);
    mean /= double(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double t = double(target[i * outputs + j]);
      const double e = double(pred[i * outputs + j]) - t;
      abs_sum += std::abs(e);
      sq_sum += e * e;
      tot += (t - mean) * (t - mean);
    }
    RegressionMetrics& m = r.outputs[j];
    m.mae = abs_sum / double(n);
    m.mse = sq_sum / double(n);
    m.rmse = std::sqrt(m.mse);
    m.r2 = tot > 0 ? 1 - sq_sum / tot : (sq_sum == 0 ? 1.0 : 0.0);
    r.overall.mae += m.mae / double(outputs);
    r.overall.mse += m.mse / double(outputs);
    r.overall.rmse += m.rmse / double(outputs);
    r.overall.r2 += m.r2 / double(outputs);
  }
  return r;
}

// "3 Dress", or "3" when unnamed (or named "3"); long names are cut so that a 10-class
// confusion matrix stays within 100 columns.
inline std::string indexed_label(std::size_t c, const std::string& name) {
  constexpr std::size_t kMaxName = 18;
  std::string s = std::to_string(c);
  if (name.empty() || name == s) return s;
  return s + ' ' + (name.size() <= kMaxName ? name : name.substr(0, kMaxName - 1) + "~");
}
inline std::string class_label(std::size_t c, const std::vector<std::string>& names) {
  return indexed_label(c, c < names.size() ? names[c] : std::string());
}

inline std::string format_metric(double v, int digits = 4) {
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  if (std::abs(v) >= 1e7)  // keeps columns from growing without bound
    s << std::scientific << std::setprecision(digits - 1) << v;
  else
    s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

inline std::size_t count_digits(std::size_t v) { return std::to_string(v).size(); }

}  // namespace detail

// Counts of (true class, predicted class) pairs; see the top of the file.
inline ConfusionMatrix confusion_matrix(std::span<const std::int32_t> truth,
                                        std::span<const std::int32_t> predicted,
                                        std::size_t num_classes) {
  if (num_classes == 0) fail("confusion_matrix() needs at least one class, but num_classes is 0.");
  if (truth.size() != predicted.size())
    fail("confusion_matrix() was given ", truth.size(), " true labels but ", predicted.size(),
         " predicted labels; they must pair up.");
  if (truth.empty()) fail("confusion_matrix() was given no samples.");
  ConfusionMatrix cm;
  cm.num_classes = num_classes;
  cm.counts.assign(num_classes * num_classes, 0);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    detail::check_label_range(truth[i], i, num_classes, "true");
    detail::check_label_range(predicted[i], i, num_classes, "predicted");
    ++cm.counts[std::size_t(truth[i]) * num_classes + std::size_t(predicted[i])];
  }
  return cm;
}

// Per-class precision, recall, F1 and support with accuracy and averages (see the top of the
// file). Class names: `class_names` if given (one per class), else the matrix's own, else indices.
inline ClassificationReport classification_report(const ConfusionMatrix& cm,
                                                  std::span<const std::string> class_names = {}) {
  const std::size_t k = cm.num_classes;
  if (k == 0 || cm.counts.size() != k * k)
    fail("classification_report() needs a confusion matrix of num_classes^2 counts, but it has ",
         cm.counts.size(), " counts for ", k, " classes.");
  if (!class_names.empty() && class_names.size() != k)
    fail("classification_report() was given ", class_names.size(), " class names for ", k,
         " classes.");
  const std::size_t total = cm.total();
  if (total == 0) fail("classification_report() was given a confusion matrix with no samples.");
  const std::vector<std::string> names =
      class_names.empty() ? cm.class_names
                          : std::vector<std::string>(class_names.begin(), class_names.end());
  const auto ratio = [](double num, double den) { return den > 0 ? num / den : 0.0; };
  ClassificationReport r;
  r.samples = total;
  r.accuracy = double(cm.correct()) / double(total);
  r.macro_avg.name = "macro avg";
  r.weighted_avg.name = "weighted avg";
  for (std::size_t c = 0; c < k; ++c) {
    ClassMetrics m;
    m.name = c < names.size() && !names[c].empty() ? names[c] : std::to_string(c);
    m.support = cm.support(c);
    m.predicted = cm.predicted(c);
    const double tp = double(cm.at(c, c));
    const double fp = double(m.predicted) - tp, fn = double(m.support) - tp;
    m.precision = ratio(tp, tp + fp);
    m.recall = ratio(tp, tp + fn);
    m.f1 = ratio(2 * tp, 2 * tp + fp + fn);
    if (m.support > 0 || m.predicted > 0) {
      ++r.averaged_classes;
      r.macro_avg.precision += m.precision;
      r.macro_avg.recall += m.recall;
      r.macro_avg.f1 += m.f1;
    }
    const double w = double(m.support) / double(total);
    r.weighted_avg.precision += w * m.precision;
    r.weighted_avg.recall += w * m.recall;
    r.weighted_avg.f1 += w * m.f1;
    r.classes.push_back(std::move(m));
  }
  // averaged_classes >= 1: every sample has a true class.
  r.macro_avg.precision /= double(r.averaged_classes);
  r.macro_avg.recall /= double(r.averaged_classes);
  r.macro_avg.f1 /= double(r.averaged_classes);
  r.macro_avg.support = r.weighted_avg.support = total;
  r.macro_avg.predicted = r.weighted_avg.predicted = total;
  return r;
}

// Fraction of samples whose true class is among the k highest of its num_classes scores
// (scores: one row per sample). Ties go to the lower class index (see the top of the file).
inline double top_k_accuracy(std::span<const float> scores, std::span<const std::int32_t> truth,
                             std::size_t num_classes, std::size_t k) {
  return detail::top_k_accuracy_of(scores, truth, num_classes, k);
}
inline double top_k_accuracy(std::span<const double> scores, std::span<const std::int32_t> truth,
                             std::size_t num_classes, std::size_t k) {
  return detail::top_k_accuracy_of(scores, truth, num_classes, k);
}

// The area under the ROC curve of `scores` (higher: more likely positive) for the samples
// marked positive: the probability that a random positive scores above a random negative, ties
// counting one half (the Mann-Whitney statistic, average ranks for tied scores; scikit-learn's
// roc_auc_score gives the same value). Needs as many flags as scores, at least one positive and
// one negative, and finite scores.
inline double roc_auc(std::span<const double> scores, const std::vector<bool>& positive) {
  if (scores.size() != positive.size())
    fail("roc_auc() was given ", scores.size(), " scores and ", positive.size(),
         " positive/negative flags; it needs one flag per score.");
  std::size_t pos = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]))
      fail("roc_auc(): score ", i, " is ", scores[i], "; the scores must be finite.");
    pos += positive[i];
  }
  const std::size_t neg = scores.size() - pos;
  if (pos == 0 || neg == 0)
    fail("roc_auc() needs positive and negative samples; it was given ", pos, " positive and ",
         neg, " negative.");
  std::vector<std::size_t> order(scores.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' ranks (1-based), tied scores sharing their average rank.
  double rank_sum = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double average = (double(i + 1) + double(j)) / 2.0;
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]]) rank_sum += average;
    i = j;
  }
  const double p = double(pos), n = double(neg);
  return (rank_sum - p * (p + 1) / 2) / (p * n);
}

// MAE, MSE, RMSE, R² of n samples of `outputs` values each (row-major); see the top of the file.
inline RegressionReport regression_report(std::span<const float> predictions,
                                          std::span<const float> targets, std::size_t n,
                                          std::size_t outputs) {
  return detail::regression_report_of(predictions.data(), predictions.size(), targets.data(),
                                   targets.size(), n, outputs);
}
inline RegressionReport regression_report(std::span<const double> predictions,
                                          std::span<const double> targets, std::size_t n,
                                          std::size_t outputs) {
  return detail::regression_report_of(predictions.data(), predictions.size(), targets.data(),
                                   targets.size(), n, outputs);
}

// Rows = true class, columns = predicted class (numbered; the row labels name them), with row
// totals (support) and column totals (predictions).
inline std::ostream& operator<<(std::ostream& os, const ConfusionMatrix& cm) {
  const std::size_t k = cm.num_classes;
  std::ostringstream s;
  std::size_t label_w = 11;  // "true \\ pred"
  for (std::size_t c = 0; c < k; ++c)
    label_w = std::max(label_w, detail::class_label(c, cm.class_names).size());
  std::size_t biggest = 0;
  for (std::size_t c = 0; c < k; ++c) biggest = std::max(biggest, cm.predicted(c));
  // A cell is as wide as the largest column total or index (at least 3), plus a gap of two.
  const std::size_t cell =
      std::max({detail::count_digits(biggest), detail::count_digits(k - 1), std::size_t{3}}) + 2;
  const std::size_t total_w = std::max<std::size_t>(detail::count_digits(cm.total()), 5) + 2;
  s << "Confusion matrix (rows: true class, columns: predicted class)\n";
  s << std::left << std::setw(int(label_w)) << "true \\ pred" << std::right;
  for (std::size_t c = 0; c < k; ++c) s << std::setw(int(cell)) << c;
  s << std::setw(int(total_w)) << "total" << '\n';
  for (std::size_t t = 0; t < k; ++t) {
    s << std::left << std::setw(int(label_w)) << detail::class_label(t, cm.class_names)
      << std::right;
    for (std::size_t p = 0; p < k; ++p) s << std::setw(int(cell)) << cm.at(t, p);
    s << std::setw(int(total_w)) << cm.support(t) << '\n';
  }
  s << std::left << std::setw(int(label_w)) << "total" << std::right;
  for (std::size_t p = 0; p < k; ++p) s << std::setw(int(cell)) << cm.predicted(p);
  s << std::setw(int(total_w)) << cm.total() << '\n';
  return os << s.str();
}

// scikit-learn's classification_report layout, with four decimals.
inline std::ostream& operator<<(std::ostream& os, const ClassificationReport& r) {
  std::vector<std::string> labels;
  std::size_t label_w = 12;  // "weighted avg"
  for (std::size_t c = 0; c < r.classes.size(); ++c) {
    labels.push_back(detail::indexed_label(c, r.classes[c].name));
    label_w = std::max(label_w, labels.back().size());
  }
  const std::size_t support_w = std::max<std::size_t>(detail::count_digits(r.samples), 7) + 2;
  std::ostringstream s;
  const auto row = [&](const std::string& label, const std::string& p, const std::string& rc,
                       const std::string& f, std::size_t support, const char* note = "") {
    s << std::right << std::setw(int(label_w)) << label << std::setw(11) << p << std::setw(11)
      << rc << std::setw(11) << f << std::setw(int(support_w)) << support << note << '\n';
  };
  s << std::setw(int(label_w)) << "" << std::setw(11) << "precision" << std::setw(11) << "recall"
    << std::setw(11) << "f1-score" << std::setw(int(support_w)) << "support" << "\n\n";
  std::vector<std::size_t> absent;
  for (std::size_t c = 0; c < r.classes.size(); ++c) {
    const ClassMetrics& m = r.classes[c];
    const bool in_avg = m.support > 0 || m.predicted > 0;
    if (!in_avg) absent.push_back(c);
    row(labels[c], detail::format_metric(m.precision), detail::format_metric(m.recall), detail::format_metric(m.f1),
        m.support, in_avg ? "" : "  (absent)");
  }
  s << '\n';
  row("accuracy", "", "", detail::format_metric(r.accuracy), r.samples);
  row(r.macro_avg.name, detail::format_metric(r.macro_avg.precision), detail::format_metric(r.macro_avg.recall),
      detail::format_metric(r.macro_avg.f1), r.macro_avg.support);
  row(r.weighted_avg.name, detail::format_metric(r.weighted_avg.precision),
      detail::format_metric(r.weighted_avg.recall), detail::format_metric(r.weighted_avg.f1),
      r.weighted_avg.support);
  if (!absent.empty()) {
    s << "(absent: class" << (absent.size() > 1 ? "es" : "");
    for (std::size_t i = 0; i < absent.size(); ++i) s << (i ? ", " : " ") << absent[i];
    s << (absent.size() > 1 ? " occur" : " occurs")
      << " in neither the truth nor the predictions;\n the macro average is over the other "
      << r.averaged_classes << " classes.)\n";
  }
  return os << s.str();
}

// One row per output, then the uniform average when there are several.
inline std::ostream& operator<<(std::ostream& os, const RegressionReport& r) {
  const std::size_t n_out = r.outputs.size();
  std::vector<std::string> labels;
  std::size_t label_w = 7;  // "average"
  for (std::size_t j = 0; j < n_out; ++j) {
    labels.push_back(detail::class_label(j, r.output_names));
    label_w = std::max(label_w, labels.back().size());
  }
  std::ostringstream s;
  const auto row = [&](const std::string& label, const RegressionMetrics& m) {
    s << std::left << std::setw(int(label_w)) << label << std::right << std::setw(14)
      << detail::format_metric(m.mae) << std::setw(14) << detail::format_metric(m.mse) << std::setw(14)
      << detail::format_metric(m.rmse) << std::setw(10) << detail::format_metric(m.r2) << '\n';
  };
  s << "Regression report (" << r.samples << " samples, " << n_out << " output"
    << (n_out == 1 ? "" : "s") << ")\n";
  s << std::left << std::setw(int(label_w)) << "output" << std::right << std::setw(14) << "MAE"
    << std::setw(14) << "MSE" << std::setw(14) << "RMSE" << std::setw(10) << "R2" << '\n';
  for (std::size_t j = 0; j < n_out; ++j) row(labels[j], r.outputs[j]);
  if (n_out > 1) row("average", r.overall);
  return os << s.str();
}

// ---------------------------------------------------------------------------------------------
// Reports of a model on datasets.

struct ReportOptions {
  std::size_t top_k = 5;          // capped at the model's output count
  std::size_t batch_size = 256;   // samples per forward pass (one workspace of this many)
  std::string name = "evaluation";  // names the set in tables and error messages
};

// What report() found on one dataset. For classification: confusion, classes and top-k; for
// regression: regression. loss is NaN unless a loss was given.
struct ModelReport {
  std::string name;
  std::size_t samples = 0;
  std::string loss_name;
  double loss = std::numeric_limits<double>::quiet_NaN();
  bool classification = false;
  ConfusionMatrix confusion;
  ClassificationReport classes;
  std::size_t top_k = 0;
  double top_k_accuracy = std::numeric_limits<double>::quiet_NaN();
  RegressionReport regression;

  double accuracy() const {
    return classification ? classes.accuracy : std::numeric_limits<double>::quiet_NaN();
  }
};

inline std::ostream& operator<<(std::ostream& os, const ModelReport& r) {
  std::ostringstream s;
  s << "Set '" << r.name << "': " << r.samples << " samples\n";
  if (!std::isnan(r.loss))
    s << "loss " << detail::format_metric(r.loss) << " (" << r.loss_name << ")"
      << (r.classification ? ", " : "\n");
  if (r.classification) {
    s << "accuracy " << detail::format_metric(r.classes.accuracy) << ", top-" << r.top_k
      << " accuracy " << detail::format_metric(r.top_k_accuracy) << "\n\n"
      << r.classes << '\n' << r.confusion;
  } else {
    s << '\n' << r.regression;
  }
  return os << s.str();
}

// Reports of one model on several named sets; prints as one comparison table.
struct SetReports {
  std::vector<ModelReport> sets;

  const ModelReport& operator[](std::string_view name) const {
    for (const ModelReport& r : sets)
      if (r.name == name) return r;
    fail("There is no set named '", name, "' among the ", sets.size(), " reported.");
  }
};

inline std::ostream& operator<<(std::ostream& os, const SetReports& all) {
  bool any_class = false, any_reg = false;
  std::size_t k = 0, name_w = 3, samples_w = 7;
  for (const ModelReport& r : all.sets) {
    (r.classification ? any_class : any_reg) = true;
    if (r.classification) k = r.top_k;
    name_w = std::max(name_w, r.name.size());
    samples_w = std::max(samples_w, detail::count_digits(r.samples));
  }
  std::vector<std::string> head{"loss"};
  if (any_class) head.insert(head.end(), {"accuracy", "macro F1", "top-" + std::to_string(k)});
  if (any_reg) head.insert(head.end(), {"MAE", "RMSE", "R2"});
  constexpr int kCol = 11;  // fits "-1234.5678" and the headers with a gap
  std::ostringstream s;
  s << std::left << std::setw(int(name_w)) << "Set" << std::right << std::setw(int(samples_w) + 2)
    << "samples";
  for (const std::string& h : head) s << std::setw(kCol) << h;
  s << '\n' << std::string(name_w + samples_w + 2 + head.size() * kCol, '-') << '\n';
  for (const ModelReport& r : all.sets) {
    s << std::left << std::setw(int(name_w)) << r.name << std::right
      << std::setw(int(samples_w) + 2) << r.samples << std::setw(kCol) << detail::format_metric(r.loss);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (any_class) {
      const bool c = r.classification;
      s << std::setw(kCol) << detail::format_metric(c ? r.classes.accuracy : nan) << std::setw(kCol)
        << detail::format_metric(c ? r.classes.macro_avg.f1 : nan) << std::setw(kCol)
        << detail::format_metric(c ? r.top_k_accuracy : nan);
    }
    if (any_reg) {
      const bool g = !r.classification;
      s << std::setw(kCol) << detail::format_metric(g ? r.regression.overall.mae : nan) << std::setw(kCol)
        << detail::format_metric(g ? r.regression.overall.rmse : nan) << std::setw(kCol)
        << detail::format_metric(g ? r.regression.overall.r2 : nan);
    }
    s << '\n';
  }
  return os << s.str();
}

namespace detail {

// "test" -> "test set" for messages, unless the name already ends in "set".
inline std::string set_phrase(const std::string& name) {
  const std::string n = name.empty() ? "evaluation" : name;
  return n.size() >= 3 && n.compare(n.size() - 3, 3, "set") == 0 ? n : n + " set";
}

// L decides what the data must hold (labels or targets) and how batches are staged; `loss` is
// null when no loss value is wanted.
template <class Model, class L>
ModelReport report_in(Model& model, const data::Dataset& d, const L* loss,
                      const ReportOptions& o) {
  using T = typename Model::value_type;
  constexpr std::size_t kOut = Model::output_size;
  const std::string what = set_phrase(o.name);
  if (o.top_k == 0) fail("The top-k accuracy needs k >= 1, but top_k is 0.");
  if (o.batch_size == 0) fail("The batch size of a report must be at least 1, but it is 0.");
  check_dataset_fits<Model, L>(d, what.c_str());

  const std::size_t n = d.size();
  constexpr bool kClassify = L::uses_labels || L::metric == Metric::categorical;
  ModelReport r;
  r.name = o.name;
  r.samples = n;
  r.classification = kClassify;
  typename Model::Workspace ws;
  ws.reserve(std::min(o.batch_size, n), false);
  const std::size_t cap = ws.capacity();
  std::vector<std::int32_t> labels(cap);
  std::vector<T> targets(cap * kOut);
  std::vector<std::size_t> idx(cap);
  std::vector<std::int32_t> truth, predicted;
  std::vector<T> outputs;
  if constexpr (kClassify) {
    truth.resize(n);
    predicted.resize(n);
    r.top_k = std::min(o.top_k, kOut);
  } else {
    outputs.resize(n * kOut);
  }
  double loss_sum = 0;
  std::size_t hits = 0;
  for (std::size_t b = 0; b < n; b += cap) {
    const std::size_t m = std::min(cap, n - b);
    for (std::size_t i = 0; i < m; ++i) idx[i] = b + i;
    stage_batch<Model, L>(d, idx.data(), m, ws, labels.data(), targets.data());
    const T* out = model.forward(ws, m, PassContext{});
    if (loss) loss_sum += loss->value(out, Targets<T>{labels.data(), targets.data()}, m, kOut);
    for (std::size_t i = 0; i < m; ++i) {
      const T* row = out + i * kOut;
      check_finite_scores(row, kOut, b + i, "model's output", " of the " + what);
      if constexpr (kClassify) {
        const std::size_t t = L::uses_labels ? std::size_t(labels[i])
                                             : argmax(targets.data() + i * kOut, kOut);
        truth[b + i] = std::int32_t(t);
        predicted[b + i] = std::int32_t(argmax(row, kOut));
        hits += in_top_k(row, kOut, t, r.top_k);
      } else {
        std::copy(row, row + kOut, outputs.data() + (b + i) * kOut);
      }
    }
  }
  if (loss) {
    r.loss_name = std::string(L::name);
    r.loss = loss_sum / double(n);
  }
  if constexpr (kClassify) {
    r.confusion = confusion_matrix(truth, predicted, kOut);
    if (d.class_names.size() == kOut) r.confusion.class_names = d.class_names;
    r.classes = classification_report(r.confusion);
    r.top_k_accuracy = double(hits) / double(n);
  } else {
    r.regression = regression_report_of(outputs.data(), outputs.size(), d.targets.data(),
                                     d.targets.size(), n, kOut);
  }
  return r;
}

}  // namespace detail

// Confusion matrix, classification report and top-k accuracy (labelled data) or regression
// report (target data) of `model` on `d`, in inference mode. No loss is computed.
template <class Model>
ModelReport report(Model& model, const data::Dataset& d, const ReportOptions& o = {}) {
  if (d.size() > 0 && !d.has_labels() && !d.has_targets())
    fail("The ", detail::set_phrase(o.name), " has neither labels nor targets: a report needs ",
         "one or the other to compare the model's outputs with.");
  if (d.has_labels())
    return detail::report_in<Model, SparseCategoricalCrossEntropy>(model, d, nullptr, o);
  return detail::report_in<Model, MeanSquaredError>(model, d, nullptr, o);
}

// The same, with the mean of `loss` over the set; the loss decides whether the data must hold
// labels or targets (one-hot targets under CategoricalCrossEntropy give a classification report).
template <class Model, Loss L>
ModelReport report(Model& model, const data::Dataset& d, const L& loss,
                   const ReportOptions& o = {}) {
  static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
  return detail::report_in<Model, L>(model, d, &loss, o);
}

// A dataset and the name it has in a comparison table.
struct NamedDataset {
  std::string name;
  const data::Dataset& data;
};

// report() on every set, e.g. report_sets(model, {{"train", a}, {"validation", b}, {"test", c}}).
// options.name is ignored (each set brings its own).
namespace detail {
template <class ReportOne>
SetReports report_each(std::initializer_list<NamedDataset> sets, ReportOptions o, ReportOne one) {
  SetReports all;
  for (const NamedDataset& s : sets) {
    o.name = s.name;
    all.sets.push_back(one(s.data, o));
  }
  return all;
}
}  // namespace detail

template <class Model>
SetReports report_sets(Model& model, std::initializer_list<NamedDataset> sets,
                       const ReportOptions& o = {}) {
  return detail::report_each(sets, o, [&](const data::Dataset& d, const ReportOptions& oo) {
    return report(model, d, oo);
  });
}
template <class Model, Loss L>
SetReports report_sets(Model& model, std::initializer_list<NamedDataset> sets, const L& loss,
                       const ReportOptions& o = {}) {
  return detail::report_each(sets, o, [&](const data::Dataset& d, const ReportOptions& oo) {
    return report(model, d, loss, oo);
  });
}

}  // namespace ctnn
// ---- end ctnn/eval/metrics.hpp ----

// ---- begin ctnn/train/callbacks.hpp ----
// ctnn/train/callbacks.hpp: what fit() calls between epochs, as Keras's callbacks: early
// stopping, learning-rate schedules (step, exponential, cosine, any function), reduce-on-plateau,
// and per-epoch logs to CSV or JSON lines.
//
// A callback sees a TrainingState: the epoch, the optimizer's learning rate (which it may change;
// fit() hands the new rate to the optimizer before the next epoch), a stop flag, and the model's
// parameter arena as bytes (to keep and restore the best weights). Callbacks run in the order
// given, once per epoch, never inside a batch, so a virtual call costs nothing that matters.
// Schedules work per epoch: epoch 1 trains at the optimizer's initial rate times the schedule's
// factor for epoch 1 (which is 1 for every schedule here).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

// ---- begin ctnn/train/history.hpp ----
// ctnn/train/history.hpp: what fit() records per epoch, and reading a monitored quantity from it.
//
// A History is the list of EpochLogs of one fit() call. Quantities are named as Keras names them:
// "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate" (accuracy is NaN for losses
// without one, val_* NaN without validation data). Monitors (early stopping, plateaus, search)
// read them through value_of(), which turns an unknown name into an error listing the known ones.
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>


namespace ctnn {

struct EpochLog {
  std::size_t epoch = 0;  // 1-based
  double loss = 0, accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double learning_rate = std::numeric_limits<double>::quiet_NaN();  // during this epoch
  double seconds = 0;
};

// The quantity `monitor` of an epoch; throws ctnn::Error for an unknown name.
inline double value_of(const EpochLog& e, std::string_view monitor) {
  if (monitor == "loss") return e.loss;
  if (monitor == "accuracy") return e.accuracy;
  if (monitor == "val_loss") return e.val_loss;
  if (monitor == "val_accuracy") return e.val_accuracy;
  if (monitor == "learning_rate") return e.learning_rate;
  fail("Unknown quantity to monitor: \"", monitor,
       "\"; use one of loss, accuracy, val_loss, val_accuracy, learning_rate.");
}

// Whether larger is better for `monitor` (accuracies) or smaller (losses), as Keras's mode="auto".
inline bool higher_is_better(std::string_view monitor) {
  (void)value_of(EpochLog{}, monitor);  // validates the name
  return monitor.find("accuracy") != std::string_view::npos;
}

struct History {
  std::vector<EpochLog> epochs;
  bool stopped_early = false;  // a callback ended training before options.epochs

  const EpochLog& last() const {
    if (epochs.empty()) fail("The history is empty: fit() ran no epoch.");
    return epochs.back();
  }
  // The epoch with the best value of `monitor` (first one on ties); NaN values are skipped.
  // Throws ctnn::Error if no epoch has a value (e.g. val_loss without validation data).
  const EpochLog& best(std::string_view monitor) const {
    const bool up = higher_is_better(monitor);
    const EpochLog* best = nullptr;
    for (const EpochLog& e : epochs) {
      const double v = value_of(e, monitor);
      if (std::isnan(v)) continue;
      if (!best || (up ? v > value_of(*best, monitor) : v < value_of(*best, monitor))) best = &e;
    }
    if (!best)
      fail("No epoch of the history has a value for \"", monitor, "\" (", epochs.size(),
           " epochs; val_* quantities need validation data, accuracy a classification loss).");
    return *best;
  }
};

}  // namespace ctnn
// ---- end ctnn/train/history.hpp ----

namespace ctnn {

struct TrainingState {
  std::size_t epoch = 0;             // 1-based: the epoch about to start or just ended
  std::size_t epochs = 0;            // the number fit() was asked for
  double learning_rate = 0;          // the optimizer's; callbacks may change it
  bool stop = false;                 // set to end training after the current epoch
  std::span<std::byte> parameters;   // the model's parameter arena
  const History* history = nullptr;  // the epochs so far
  std::ostream* out = nullptr;       // where fit() prints (nullptr when verbose is 0)
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainingState&) {}
  virtual void on_epoch_begin(TrainingState&) {}
  virtual void on_epoch_end(const EpochLog&, TrainingState&) {}
  virtual void on_train_end(TrainingState&) {}
};

namespace detail {

// The monitored value of an epoch; an error if it is NaN (asked for val_* without validation
// data, or accuracy of a regression loss), naming the callback.
inline double monitored(const EpochLog& log, const std::string& monitor, const char* who) {
  const double v = value_of(log, monitor);
  if (std::isnan(v))
    fail(who, " monitors \"", monitor, "\", which has no value at epoch ", log.epoch,
         (monitor.rfind("val_", 0) == 0 ? ": give fit() validation data or a validation_split."
                                         : ": the loss has no accuracy metric."));
  return v;
}

// Whether `v` improves on `best` by more than `min_delta` in the direction of `monitor`.
inline bool improves(double v, double best, double min_delta, bool up) {
  return up ? v - min_delta > best : v + min_delta < best;
}

}  // namespace detail

// Stops training when `monitor` has not improved by more than `min_delta` for `patience` epochs
// in a row (patience 0: at the first epoch without improvement). With restore_best_weights the
// model ends training (stopped early or not) with the parameters of its best epoch.
class EarlyStopping : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double min_delta = 0;
    std::size_t patience = 0;
    bool restore_best_weights = false;
  };
  EarlyStopping() : EarlyStopping(Options{}) {}
  explicit EarlyStopping(Options o) : o_(std::move(o)) {
    (void)higher_is_better(o_.monitor);  // an unknown name fails here, not after an epoch
    if (!(o_.min_delta >= 0)) fail("EarlyStopping: min_delta must be >= 0, got ", o_.min_delta, ".");
  }

  void on_train_begin(TrainingState&) override {
    up_ = higher_is_better(o_.monitor);
    best_ = up_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = 0;
    best_epoch_ = stopped_epoch_ = 0;
    best_weights_.clear();
  }
  void on_epoch_end(const EpochLog& log, TrainingState& s) override {
    const double v = detail::monitored(log, o_.monitor, "EarlyStopping");
    if (detail::improves(v, best_, o_.min_delta, up_)) {
      best_ = v;
      best_epoch_ = log.epoch;
      wait_ = 0;
      if (o_.restore_best_weights) best_weights_.assign(s.parameters.begin(), s.parameters.end());
      return;
    }
    if (++wait_ >= o_.patience) {  // wait_ >= 1 here, so patience 0 stops at once
      s.stop = true;
      stopped_epoch_ = log.epoch;
      if (s.out)
        *s.out << "Early stopping at epoch " << log.epoch << ": " << o_.monitor
               << " has not improved since epoch " << best_epoch_ << " (" << best_ << ").\n";
    }
  }
  void on_train_end(TrainingState& s) override {
    if (!o_.restore_best_weights || best_weights_.empty()) return;
    if (best_weights_.size() != s.parameters.size())
      fail("EarlyStopping: the model's parameter arena changed size during training.");
    std::copy(best_weights_.begin(), best_weights_.end(), s.parameters.begin());
    if (s.out)
      *s.out << "Restored the weights of epoch " << best_epoch_ << " (" << o_.monitor << " "
             << best_ << ").\n";
  }

  std::size_t best_epoch() const { return best_epoch_; }        // 0 before any epoch
  double best_value() const { return best_; }
  std::size_t stopped_epoch() const { return stopped_epoch_; }  // 0 if it never stopped training

 private:
  Options o_;
  bool up_ = false;
  double best_ = 0;
  std::size_t wait_ = 0, best_epoch_ = 0, stopped_epoch_ = 0;
  std::vector<std::byte> best_weights_;
};

// Sets the learning rate at the start of every epoch to schedule(epoch, initial rate), where the
// initial rate is the optimizer's when training begins. The schedules below are such functions;
// any callable double(std::size_t epoch, double initial) works.
class LearningRateScheduler : public Callback {
 public:
  using Schedule = std::function<double(std::size_t epoch, double initial_rate)>;
  // initial_rate: the rate of epoch 1; by default the optimizer's when training begins (give it
  // when resuming from a checkpoint, whose optimizer already holds a decayed rate).
  explicit LearningRateScheduler(Schedule f,
                                 double initial_rate = std::numeric_limits<double>::quiet_NaN())
      : f_(std::move(f)), given_(initial_rate) {
    if (!f_) fail("LearningRateScheduler needs a schedule function.");
  }
  void on_train_begin(TrainingState& s) override {
    initial_ = std::isnan(given_) ? s.learning_rate : given_;
  }
  void on_epoch_begin(TrainingState& s) override {
    const double lr = f_(s.epoch, initial_);
    if (!(lr >= 0) || !std::isfinite(lr))
      fail("The learning-rate schedule gave ", lr, " for epoch ", s.epoch,
           "; a learning rate must be finite and >= 0.");
    s.learning_rate = lr;
  }

 private:
  Schedule f_;
  double given_, initial_ = 0;
};

// initial * factor^floor((epoch - 1) / every): e.g. halve the rate every 5 epochs.
struct StepDecay {
  double factor = 0.5;
  std::size_t every = 10;
  double operator()(std::size_t epoch, double initial) const {
    if (every == 0) fail("StepDecay: `every` must be at least 1 epoch.");
    return initial * std::pow(factor, double((epoch - 1) / every));
  }
};

// initial * rate^(epoch - 1).
struct ExponentialDecay {
  double rate = 0.9;
  double operator()(std::size_t epoch, double initial) const {
    return initial * std::pow(rate, double(epoch - 1));
  }
};

// Cosine from initial (epoch 1) down to alpha * initial at epoch decay_epochs + 1, flat after.
struct CosineDecay {
  std::size_t decay_epochs = 10;
  double alpha = 0;
  double operator()(std::size_t epoch, double initial) const {
    if (decay_epochs == 0) fail("CosineDecay: decay_epochs must be at least 1.");
    const double t = double(std::min(epoch - 1, decay_epochs)) / double(decay_epochs);
    return initial * ((1 - alpha) * 0.5 * (1 + std::cos(std::numbers::pi * t)) + alpha);
  }
};

// Multiplies the learning rate by `factor` when `monitor` has not improved by more than
// `min_delta` for `patience` epochs, then waits `cooldown` epochs before counting again; never
// goes below min_lr (Keras's ReduceLROnPlateau).
class ReduceLROnPlateau : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double factor = 0.1;
    std::size_t patience = 10;
    double min_delta = 1e-4;
    std::size_t cooldown = 0;
    double min_lr = 0;
  };
  ReduceLROnPlateau() : ReduceLROnPlateau(Options{}) {}
  explicit ReduceLROnPlateau(Options o) : o_(std::move(o)) {
    (void)higher_is_better(o_.monitor);
    if (!(o_.factor > 0 && o_.factor < 1))
      fail("ReduceLROnPlateau: factor must lie in (0, 1), got ", o_.factor, ".");
  }
  void on_train_begin(TrainingState&) override {
    up_ = higher_is_better(o_.monitor);
    best_ = up_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    wait_ = cooldown_left_ = reductions_ = 0;
  }
  void on_epoch_end(const EpochLog& log, TrainingState& s) override {
    const double v = detail::monitored(log, o_.monitor, "ReduceLROnPlateau");
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      wait_ = 0;
    }
    if (detail::improves(v, best_, o_.min_delta, up_)) {
      best_ = v;
      wait_ = 0;
    } else if (cooldown_left_ == 0 && ++wait_ >= o_.patience) {
      if (s.learning_rate > o_.min_lr) {
        const double lr = std::max(s.learning_rate * o_.factor, o_.min_lr);
        if (s.out)
          *s.out << "ReduceLROnPlateau: epoch " << log.epoch << ", learning rate " << s.learning_rate
                 << " -> " << lr << ".\n";
        s.learning_rate = lr;
        ++reductions_;
      }
      cooldown_left_ = o_.cooldown;
      wait_ = 0;
    }
  }
  std::size_t reductions() const { return reductions_; }

 private:
  Options o_;
  bool up_ = false;
  double best_ = 0;
  std::size_t wait_ = 0, cooldown_left_ = 0, reductions_ = 0;
};

namespace detail {

inline std::ofstream open_log(const std::string& path, bool append, const char* who) {
  std::ofstream f(path, append ? std::ios::app : std::ios::trunc);
  if (!f) {
    const int err = errno;
    fail(who, " cannot open \"", path, "\" for writing: ",
         err == EISDIR ? "it is a directory, not a file" : std::strerror(err), ".");
  }
  return f;
}

inline void write_number(std::ostream& os, double v, const char* missing) {
  if (std::isnan(v)) {
    os << missing;
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    os << buf;
  }
}

// The fields every log line holds, in order.
inline std::vector<std::pair<const char*, double>> log_fields(const EpochLog& e) {
  return {{"epoch", double(e.epoch)},        {"loss", e.loss},
          {"accuracy", e.accuracy},          {"val_loss", e.val_loss},
          {"val_accuracy", e.val_accuracy},  {"learning_rate", e.learning_rate},
          {"seconds", e.seconds}};
}

}  // namespace detail

// Appends one line per epoch to a CSV file (header: epoch,loss,accuracy,val_loss,val_accuracy,
// learning_rate,seconds; a quantity without a value is an empty cell), flushed at every epoch so
// the log survives a crash. `append` keeps an existing file (without writing a second header).
class CsvLogger : public Callback {
 public:
  explicit CsvLogger(std::string path, bool append = false)
      : path_(std::move(path)), append_(append) {}
  void on_train_begin(TrainingState&) override {
    const bool had = append_ && std::ifstream(path_).peek() != std::ifstream::traits_type::eof();
    f_ = detail::open_log(path_, append_, "CsvLogger");
    if (!had) {
      const char* sep = "";
      for (const auto& [name, v] : detail::log_fields(EpochLog{})) f_ << std::exchange(sep, ",") << name;
      f_ << '\n' << std::flush;
    }
  }
  void on_epoch_end(const EpochLog& e, TrainingState&) override {
    const char* sep = "";
    for (const auto& [name, v] : detail::log_fields(e)) {
      f_ << std::exchange(sep, ",");
      detail::write_number(f_, v, "");
    }
    f_ << '\n' << std::flush;
    if (!f_) fail("CsvLogger could not write to \"", path_, "\" (disk full?).");
  }
  void on_train_end(TrainingState&) override { f_.close(); }

 private:
  std::string path_;
  bool append_;
  std::ofstream f_;
};

// Appends one JSON object per epoch and line ("JSON lines"), e.g.
// {"epoch":1,"loss":0.41,"accuracy":0.85,"val_loss":null,...}; NaN is written as null.
class JsonLinesLogger : public Callback {
 public:
  explicit JsonLinesLogger(std::string path, bool append = false)
      : path_(std::move(path)), append_(append) {}
  void on_train_begin(TrainingState&) override {
    f_ = detail::open_log(path_, append_, "JsonLinesLogger");
  }
  void on_epoch_end(const EpochLog& e, TrainingState&) override {
    const char* sep = "{";
    for (const auto& [name, v] : detail::log_fields(e)) {
      f_ << std::exchange(sep, ",") << '"' << name << "\":";
      detail::write_number(f_, v, "null");
    }
    f_ << "}\n" << std::flush;
    if (!f_) fail("JsonLinesLogger could not write to \"", path_, "\" (disk full?).");
  }
  void on_train_end(TrainingState&) override { f_.close(); }

 private:
  std::string path_;
  bool append_;
  std::ofstream f_;
};

}  // namespace ctnn
// ---- end ctnn/train/callbacks.hpp ----
// ---- begin ctnn/train/evaluate.hpp ----
// ctnn/train/evaluate.hpp: evaluate(model, data), the loss and accuracy of a model on a dataset.
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

// ---- begin ctnn/train/trainer.hpp ----
// ctnn/train/trainer.hpp: the training context of a model.
//
// A Trainer owns everything training needs beyond the model: the gradient arena (one buffer the
// size of the parameter arena), a workspace with gradient buffers, staging for targets, and the
// step counter that seeds Dropout and the augmentation layers. It tells the optimizer where the
// parameter tensors lie (for clipnorm, optim/clipping.hpp) and applies the layers' kernel
// regularizers (train/regularize.hpp) to the loss it reports and to the gradient. It allocates
// in its constructor and never again: step() is the steady-state training step and makes no heap
// allocation (an optimizer allocates its own state at its first step).
//
// The update is fused into backward when the optimizer can take a step in pieces (begin_step /
// update_range: Adam, AdamW, RMSprop, SGD without gradient clipping): each layer's parameters
// are updated right after that layer's backward, while the gradient it just wrote is warm in
// cache (all of it for a layer of up to a few hundred thousand parameters), instead of one more
// pass over the whole arena after backward. Every parameter gets the same operations as in the separate pass, so the results are
// the same bits (tests/train/test_fused_update.cpp); set_fused_update(false) runs the separate
// pass. The optimizer's step begins (its hyperparameters are checked, its step counted) after the
// loss and before backward, which then updates the layers from the last to the first.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

// ---- begin ctnn/train/regularize.hpp ----
// ctnn/train/regularize.hpp: kernel regularizers (Keras's kernel_regularizer), and where a
// layer's kernel lies among its parameters.
//
// A user attaches a regularizer by wrapping a layer spec:
//     ctnn::Regularized<ctnn::Conv2D<16, 3, 3>, ctnn::L2<1, 10000>>     // l2 = 1e-4
// The wrapper binds to the wrapped layer itself (same parameters, forward, backward, kind and
// fusions) and adds `using regularizer = R`. Training (Trainer, fit) then adds, as Keras does,
//   L2<N, D>:           l2 * sum(W^2)               to the loss, 2 * l2 * W       to the gradient
//   L1<N, D>:           l1 * sum(|W|)               to the loss, l1 * sign(W)     to the gradient
//   L1L2<N1, D1, N2, D2>: both (l1 = N1/D1, l2 = N2/D2)
// with l = N / D (a ratio: clang 14 has no float template parameters), over the layer's kernel
// only, not its bias. The penalty is computed from the weights the step's forward pass used, so
// the reported training loss is the mean loss of the batch plus the penalty, as Keras reports it;
// evaluate() and validation losses add the penalty at the evaluated weights, as Keras's test
// step does. Sums are in double in arena order.
//
// The kernel of a bound layer L is its first kernel_count<L> parameters: a layer declares
//     static constexpr std::size_t kernel_count = ...;
// or, without one, a Dense has param_count - units (W before b) and a Conv2D param_count -
// filters; any other layer has none (0). Regularized refuses a layer without a kernel.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>


namespace ctnn {

namespace detail {

template <class L>
constexpr std::size_t kernel_count_of() {
  if constexpr (requires { { L::kernel_count } -> std::convertible_to<std::size_t>; })
    return L::kernel_count;
  else if constexpr (layer_kind<L> == LayerKind::dense)
    return L::param_count - L::output_shape::size;
  else if constexpr (layer_kind<L> == LayerKind::conv2d)
    return L::param_count - L::output_shape::dims[L::output_shape::rank - 1];
  else
    return 0;
}

template <std::uint64_t N, std::uint64_t D>
inline constexpr double ratio = D > 0 ? double(N) / double(D) : 0.0;

}  // namespace detail

// Parameters at the start of bound layer L that form its kernel (0: none).
template <class L>
inline constexpr std::size_t kernel_count = detail::kernel_count_of<L>();

// l1 * sum(|W|) + l2 * sum(W^2), and its gradient l1 * sign(W) + 2 * l2 * W.
template <std::uint64_t N1, std::uint64_t D1, std::uint64_t N2, std::uint64_t D2>
struct L1L2 {
  // Instantiated by Regularized (a function, so that the class stays usable after the error and
  // no second error follows).
  static void check() {
    static_assert(D1 > 0 && D2 > 0, "A regularizer's factor N / D needs a denominator D >= 1.");
  }
  static constexpr double l1 = detail::ratio<N1, D1>;
  static constexpr double l2 = detail::ratio<N2, D2>;

  template <class T>
  static double penalty(const T* w, std::size_t n) {
    double s1 = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      s1 += std::abs(double(w[i]));
      s2 += double(w[i]) * double(w[i]);
    }
    return (l1 != 0 ? l1 * s1 : 0.0) + (l2 != 0 ? l2 * s2 : 0.0);
  }
  template <class T>
  static void add_gradient(const T* w, T* g, std::size_t n) {
    const T a = T(l1), b = T(2 * l2);
    for (std::size_t i = 0; i < n; ++i) {
      const T sign = w[i] > T(0) ? T(1) : (w[i] < T(0) ? T(-1) : w[i] * T(0));  // NaN stays NaN
      if constexpr (l1 != 0) g[i] += a * sign;
      if constexpr (l2 != 0) g[i] += b * w[i];
    }
  }
  static std::string spec() {
    return "l1 " + std::to_string(N1) + "/" + std::to_string(D1) + ", l2 " + std::to_string(N2) +
           "/" + std::to_string(D2);
  }
};

template <std::uint64_t N, std::uint64_t D>
struct L2 : L1L2<0, 1, N, D> {};
template <std::uint64_t N, std::uint64_t D>
struct L1 : L1L2<N, D, 0, 1> {};

template <class R>
concept Regularizer = requires(const float* w, float* g, std::size_t n) {
  { R::penalty(w, n) } -> std::convertible_to<double>;
  R::add_gradient(w, g, n);
};

namespace detail {
// Instantiates R::check() (its static_asserts), if R has one.
template <class R>
constexpr bool run_regularizer_check() {
  if constexpr (requires { R::check(); }) {
    void (*f)() = &R::check;
    return f != nullptr;
  } else {
    return true;
  }
}
}  // namespace detail

// Spec wrapped with kernel regularizer R (see the top of this file).
template <class Spec, class R>
struct Regularized {
  static_assert(Regularizer<R>,
                "Regularized<Spec, R>: R must be a regularizer such as ctnn::L2<1, 10000>.");
  static_assert(detail::run_regularizer_check<R>());

  template <ShapeType In, class T>
  struct bind : Spec::template bind<In, T> {
    using base = typename Spec::template bind<In, T>;
    using regularizer = R;
    static constexpr std::size_t kernel_count = detail::kernel_count_of<base>();
    static_assert(kernel_count > 0,
                  "Regularized<Spec, R> needs a layer with a kernel (Dense, Conv2D, or a layer "
                  "declaring kernel_count): this one has none to regularize.");
  };
};

namespace detail {

template <class L>
concept HasRegularizer = requires { typename L::regularizer; };

// Every parameter tensor of Model (a kernel and a bias where the layer has a kernel; otherwise
// all of a layer's parameters as one), in arena order: what clipnorm clips one by one.
template <class Model>
std::vector<ParamTensor> param_tensors() {
  std::vector<ParamTensor> t;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    constexpr std::size_t off = Model::template param_offset<I>, c = L::param_count;
    constexpr std::size_t k = kernel_count_of<L>();
    if constexpr (c == 0) {
      return;
    } else if constexpr (k > 0 && k < c) {
      t.push_back({off, k});
      t.push_back({off + k, c - k});
    } else {
      t.push_back({off, c});
    }
  });
  return t;
}

// Adds every regularized layer's gradient term to grads (arena-sized) and returns the sum of
// their penalties at params.
template <class Model, class T>
double apply_regularizers(const T* params, T* grads) {
  double penalty = 0;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>) {
      constexpr std::size_t off = Model::template param_offset<I>;
      penalty += L::regularizer::penalty(params + off, L::kernel_count);
      L::regularizer::add_gradient(params + off, grads + off, L::kernel_count);
    }
  });
  return penalty;
}

// Adds the regularizers' gradient terms to grads[begin, begin + count) only (the part of
// apply_regularizers a fused update applies to one range; elementwise, so the same bits).
template <class Model, class T>
void add_regularizer_gradients(const T* params, T* grads, std::size_t begin, std::size_t count) {
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>) {
      constexpr std::size_t k0 = Model::template param_offset<I>, k1 = k0 + L::kernel_count;
      const std::size_t a = begin > k0 ? begin : k0, b = begin + count < k1 ? begin + count : k1;
      if (a < b) L::regularizer::add_gradient(params + a, grads + a, b - a);
    }
  });
}

// The sum of every regularized layer's penalty at params (what evaluate() adds to the loss).
template <class Model, class T>
double regularization_penalty(const T* params) {
  double penalty = 0;
  static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    if constexpr (HasRegularizer<L>)
      penalty += L::regularizer::penalty(params + Model::template param_offset<I>, L::kernel_count);
  });
  return penalty;
}

template <class Model, std::size_t... I>
constexpr bool any_regularized(std::index_sequence<I...>) {
  return (HasRegularizer<typename Model::template layer<I>> || ...);
}

// Whether any layer of Model carries a regularizer.
template <class Model>
inline constexpr bool has_regularizers =
    any_regularized<Model>(std::make_index_sequence<Model::num_layers>{});

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/train/regularize.hpp ----

namespace ctnn {

// Sums over one batch: the loss (sum of per-sample losses) and the accuracy numerator.
struct StepStats {
  double loss_sum = 0;
  double correct = 0;
  std::size_t samples = 0;
};

// An optimizer that can take a step in pieces (optim/adam.hpp describes begin_step/update_range).
template <class O, class T>
concept FusableOptimizer = requires(O& o, T* w, const T* g, std::size_t k) {
  { o.begin_step(k) } -> std::convertible_to<bool>;
  o.update_range(w, g, k, k);
};

template <class Model, class Optimizer, Loss L>
class Trainer {
  static_assert(LossReadsOutput<L, typename Model::output_shape>::value);

 public:
  using T = typename Model::value_type;
  using Workspace = typename Model::Workspace;

  Trainer(Model& model, Optimizer& opt, L loss, std::size_t batch_capacity, std::uint64_t seed = 0)
      : model_(model), opt_(opt), loss_(loss), seed_(seed) {
    if (batch_capacity == 0) fail("The batch size must be at least 1.");
    ws_.reserve(batch_capacity, true);
    grads_.resize(Model::arena_size);
    labels_.resize(batch_capacity);
    targets_.resize(batch_capacity * Model::output_size);
    if constexpr (requires { opt.set_tensors(std::vector<ParamTensor>{}); })
      opt.set_tensors(detail::param_tensors<Model>());
    if constexpr (requires { loss.check_hyperparameters(); }) loss.check_hyperparameters();
  }

  std::size_t batch_capacity() const { return ws_.capacity(); }

  // Stages samples idx[0..n) of d as the next batch (d must have passed check_dataset_fits).
  void load_batch(const data::Dataset& d, std::span<const std::size_t> idx) {
    if (idx.size() > ws_.capacity())
      fail("A batch of ", idx.size(), " samples exceeds the trainer's capacity of ",
           ws_.capacity(), ".");
    detail::stage_batch<Model, L>(d, idx.data(), idx.size(), ws_, labels_.data(), targets_.data());
  }

  // Stages n samples given directly: x [n x input_size] and labels or target vectors.
  void load_batch(const T* x, std::size_t n, const std::int32_t* labels, const T* targets) {
    if (n > ws_.capacity())
      fail("A batch of ", n, " samples exceeds the trainer's capacity of ", ws_.capacity(), ".");
    std::copy(x, x + n * Model::input_size, ws_.input());
    if (labels) std::copy(labels, labels + n, labels_.data());
    if (targets) std::copy(targets, targets + n * Model::output_size, targets_.data());
  }

  // One optimizer step on the n staged samples: forward, loss, backward, update.
  StepStats step(std::size_t n) {
    const PassContext ctx{true, seed_ * 0x2545F4914F6CDD1Dull + steps_++};
    const T* out = model_.forward(ws_, n, ctx);
    const Targets<T> t{labels_.data(), targets_.data()};
    T* dy = ws_.gradient(0);
    StepStats s;
    s.samples = n;
    // Fused: the optimizer's step begins now and each layer is updated inside backward; the
    // regularizers' penalty is taken first, at the weights this step's forward pass used.
    last_fused_ = false;
    if constexpr (FusableOptimizer<Optimizer, T>)
      if (fuse_update_) last_fused_ = opt_.begin_step(Model::arena_size);
    const ParamUpdate update{&Trainer::update_range, this};
    const PassContext bctx{ctx.training, ctx.seed, last_fused_ ? &update : nullptr};
    double penalty = 0;
    if constexpr (detail::has_regularizers<Model>)
      if (last_fused_) penalty = detail::regularization_penalty<Model>(model_.parameters().data());
    using Last = typename Model::template layer<Model::num_layers - 1>;
    if constexpr (FusesSoftmax<L> && layer_kind<Last> == LayerKind::softmax) {
      // Fused: the loss writes d loss / d logits; Softmax's own backward never runs.
      s.loss_sum = loss_.backward_from_logits(out, t, n, Model::output_size, dy);
      if constexpr (Model::num_layers >= 2)
        model_.template backward<Model::num_layers - 2>(ws_, n, grads_.data(), bctx);
      else if (last_fused_)
        update_range(this, 0, Model::arena_size);  // a lone Softmax: nothing back-propagated
    } else {
      s.loss_sum = loss_.backward(out, t, n, Model::output_size, dy);
      model_.backward(ws_, n, grads_.data(), bctx);
    }
    s.correct = detail::correct(L::metric, out, t, n, Model::output_size);
    if constexpr (detail::has_regularizers<Model>) {  // the penalty counts once per sample's mean
      if (!last_fused_)
        penalty = detail::apply_regularizers<Model>(model_.parameters().data(), grads_.data());
      s.loss_sum += double(n) * penalty;
    }
    if (!last_fused_) opt_.step(model_.parameters(), std::span<const T>(grads_.data(), grads_.size()));
    return s;
  }

  // Whether step() updates the parameters inside backward when the optimizer can (the default),
  // or in a separate pass after it. Both give the same bits.
  void set_fused_update(bool on) { fuse_update_ = on; }
  bool fused_update() const { return fuse_update_; }
  // Whether the last step() ran fused (false with clipping or an optimizer without pieces).
  bool last_step_fused() const { return last_fused_; }

  std::span<const T> gradients() const { return {grads_.data(), grads_.size()}; }
  Workspace& workspace() { return ws_; }
  std::uint64_t steps() const { return steps_; }
  // Dropout masks depend on (seed, step): resuming at step k repeats the masks of an unbroken run.
  void set_steps(std::uint64_t k) { steps_ = k; }
  const L& loss() const { return loss_; }

 private:
  // ParamUpdate's function: the regularizers' gradient terms, then the optimizer, on one range.
  static void update_range(void* self, std::size_t offset, std::size_t count) {
    Trainer& tr = *static_cast<Trainer*>(self);
    T* w = tr.model_.parameters().data();
    if constexpr (detail::has_regularizers<Model>)
      detail::add_regularizer_gradients<Model>(static_cast<const T*>(w), tr.grads_.data(), offset, count);
    if constexpr (FusableOptimizer<Optimizer, T>) tr.opt_.update_range(w, tr.grads_.data(), offset, count);
  }

  bool fuse_update_ = true;
  bool last_fused_ = false;
  Model& model_;
  Optimizer& opt_;
  L loss_;
  std::uint64_t seed_;
  std::uint64_t steps_ = 0;
  Workspace ws_;
  AlignedBuffer<T> grads_;
  AlignedBuffer<std::int32_t> labels_;
  AlignedBuffer<T> targets_;
};

}  // namespace ctnn
// ---- end ctnn/train/trainer.hpp ----

namespace ctnn {

struct Evaluation {
  double loss = 0;
  double accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN for regression losses
  std::size_t samples = 0;
};

namespace detail {

// Evaluates in batches of ws.capacity() samples, in inference mode (Dropout off).
template <class Model, class L>
Evaluation evaluate_in(Model& model, typename Model::Workspace& ws, const data::Dataset& d,
                       const L& loss) {
  using T = typename Model::value_type;
  const std::size_t cap = ws.capacity();
  std::vector<std::int32_t> labels(cap);
  std::vector<T> targets(cap * Model::output_size);
  std::vector<std::size_t> idx(cap);
  double loss_sum = 0, right = 0;
  for (std::size_t b = 0; b < d.size(); b += cap) {
    const std::size_t n = std::min(cap, d.size() - b);
    std::iota(idx.begin(), idx.begin() + std::ptrdiff_t(n), b);
    stage_batch<Model, L>(d, idx.data(), n, ws, labels.data(), targets.data());
    const T* out = model.forward(ws, n, PassContext{});
    const Targets<T> t{labels.data(), targets.data()};
    loss_sum += loss.value(out, t, n, Model::output_size);
    right += correct(L::metric, out, t, n, Model::output_size);
  }
  Evaluation e;
  e.samples = d.size();
  e.loss = loss_sum / double(d.size());
  // Keras's evaluate() and val_loss include the regularization penalty, as its training loss does.
  if constexpr (has_regularizers<Model>)
    e.loss += regularization_penalty<Model>(model.parameters().data());
  if (L::metric != Metric::none) e.accuracy = right / double(d.size());
  return e;
}

}  // namespace detail

// Loss (mean over samples) and accuracy of `model` on `d`, in inference mode. The loss defaults
// to sparse categorical cross-entropy, which needs labels; pass another for target vectors.
template <class Model, class L = SparseCategoricalCrossEntropy>
Evaluation evaluate(Model& model, const data::Dataset& d, L loss = {}, std::size_t batch_size = 256) {
  if constexpr (Loss<L>) {
    static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
    detail::check_dataset_fits<Model, L>(d, "evaluation dataset");
    typename Model::Workspace ws;
    ws.reserve(std::min(batch_size == 0 ? 1 : batch_size, d.size()), false);
    return detail::evaluate_in(model, ws, d, loss);
  } else {
    constexpr bool is_a_loss = Loss<L>;  // a plain bool keeps the diagnostic to one sentence
    static_assert(is_a_loss, "evaluate()'s third argument must be a loss such as "
                           "ctnn::MeanSquaredError{} (see the Loss concept in loss/loss.hpp).");
    return {};
  }
}

}  // namespace ctnn
// ---- end ctnn/train/evaluate.hpp ----
// ---- begin ctnn/train/fit.hpp ----
// ctnn/train/fit.hpp: fit(model, optimizer, loss, data, options), Keras's model.fit.
//
// Trains for options.epochs passes over the data in batches of options.batch_size (the last
// batch may be smaller), reshuffling every epoch from options.seed, and returns the history of
// per-epoch loss and accuracy (and validation loss and accuracy when validation data is given or
// split off). On a terminal it redraws a progress line during each epoch; otherwise it prints one
// line per epoch. Before the first step it checks the options and the optimizer's
// hyperparameters (each error names the field, its value and the allowed range) and that every
// parameter is finite. A non-finite loss stops training with an error naming the epoch and batch
// (and the first non-finite parameter, if any); so does a non-finite parameter after an epoch,
// found by one vectorized scan of the parameter arena, named by layer (index, name) and index.
// Callbacks (early stopping, learning-rate schedules, logs, plots) run between epochs; the
// learning rate they set is the optimizer's `learning_rate` for the next epoch.
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>


namespace ctnn {

struct FitOptions {
  std::size_t epochs = 1;       // train until this epoch (counted from 1, including initial_epoch)
  std::size_t initial_epoch = 0;  // epochs already done, e.g. before a checkpoint (as Keras's)
  std::size_t batch_size = 32;
  const data::Dataset* validation = nullptr;  // evaluated after every epoch
  double validation_split = 0;  // or: hold out this last fraction of the data (as Keras does)
  bool shuffle = true;
  std::uint64_t seed = 0;       // shuffling and Dropout masks
  int verbose = 1;              // 0: silent; 1: progress
  std::ostream* out = &std::cout;
  // Called between epochs, in this order (callbacks.hpp): e.g. {early_stopping, csv_logger}.
  std::vector<std::reference_wrapper<Callback>> callbacks = {};
};

namespace detail {

inline bool is_terminal(const std::ostream* os) {
  return (os == &std::cout && isatty(STDOUT_FILENO)) || (os == &std::cerr && isatty(STDERR_FILENO));
}

inline void print_metrics(std::ostream& os, const char* prefix, double loss, double acc) {
  os << " - " << prefix << "loss: " << std::fixed << std::setprecision(4) << loss;
  if (!std::isnan(acc)) os << " - " << prefix << "accuracy: " << acc;
}

// The optimizer's learning rate, or NaN for an optimizer without one.
template <class Optimizer>
double learning_rate_of(const Optimizer& opt) {
  if constexpr (requires { opt.learning_rate; })
    return double(opt.learning_rate);
  else
    return std::numeric_limits<double>::quiet_NaN();
}

template <class Model, class Optimizer, Loss L>
History fit_checked(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o);

// v as a message prints it: "nan" for every NaN (glibc's printf gives "-nan" for a negative one).
inline std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os << v;
  return os.str();
}

// "" if every parameter of `model` is finite; otherwise names the first that is not, e.g.
// "parameter 5 of layer 0 (Dense) is nan". One vectorized scan of the arena.
template <class Model>
std::string first_non_finite_parameter(const Model& model) {
  using T = typename Model::value_type;
  const std::span<const T> p = model.parameters();
  const std::size_t bad = kernels::first_non_finite(p.size(), p.data());
  if (bad == p.size()) return "";
  std::ostringstream os;  // unless a layer holds it: the alignment padding between layers
  os << "parameter " << bad << " of the arena is " << number_text(double(p[bad]));
  static_for<Model::num_layers>([&]<std::size_t I>() {
    constexpr std::size_t begin = Model::template param_offset<I>;
    using Layer = typename Model::template layer<I>;
    if (bad >= begin && bad < begin + Layer::param_count) {
      os.str("");
      os << "parameter " << bad - begin << " of layer " << I << " (" << Layer::name << ") is "
         << number_text(double(p[bad]));
    }
  });
  return os.str();
}

}  // namespace detail

// Trains `model` on `data` with `opt` and `loss`; see the top of this file and FitOptions.
template <class Model, class Optimizer, class L>
History fit(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o = {}) {
  if constexpr (Loss<L>) {
    static_assert(LossReadsOutput<L, typename Model::output_shape>::value);
    return detail::fit_checked(model, opt, loss, data, o);
  } else {
    constexpr bool is_a_loss = Loss<L>;  // a plain bool keeps the diagnostic to one sentence
    static_assert(is_a_loss,
                  "fit()'s third argument must be a loss such as "
                  "ctnn::SparseCategoricalCrossEntropy{} (see the Loss concept in loss/loss.hpp).");
    return {};
  }
}

namespace detail {

template <class Model, class Optimizer, Loss L>
History fit_checked(Model& model, Optimizer& opt, L loss, const data::Dataset& data, FitOptions o) {
  if (o.epochs == 0) fail("fit() needs at least one epoch (options.epochs is 0).");
  if (o.initial_epoch >= o.epochs)
    fail("fit(): initial_epoch (", o.initial_epoch, ") must be below epochs (", o.epochs,
         "): epochs counts from the start, including the ones already done.");
  if (o.batch_size == 0) fail("fit() needs a batch size of at least 1 (options.batch_size is 0).");
  if (!(o.validation_split >= 0 && o.validation_split < 1))  // NaN fails too
    fail("validation_split must be in [0, 1), got ", o.validation_split, ".");
  if (o.validation && o.validation_split > 0)
    fail("fit() got both validation data and a validation_split: give one.");
  if (o.verbose != 0 && o.verbose != 1)
    fail("fit(): options.verbose must be 0 (silent) or 1 (progress); it is ", o.verbose, ".");
  if (o.verbose == 1 && o.out == nullptr)
    fail("fit(): options.out is null but options.verbose is 1: give a stream or set verbose to 0.");
  if constexpr (requires { opt.check_hyperparameters(); }) opt.check_hyperparameters();
  if (const std::string bad = first_non_finite_parameter(model); !bad.empty())
    fail("fit(): the model's ", bad, " before training: initialize or load it again.");

  // Keras's validation_split holds out the last samples, before any shuffling.
  std::optional<data::Dataset> train_part, val_part;
  const data::Dataset* train = &data;
  const data::Dataset* val = o.validation;
  if (o.validation_split > 0) {
    const std::size_t n_val = std::size_t(std::llround(double(data.size()) * o.validation_split));
    if (n_val == 0 || n_val >= data.size())
      fail("validation_split ", o.validation_split, " of ", data.size(),
           " samples leaves an empty training or validation part.");
    std::vector<std::size_t> idx(data.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    const auto cut = idx.begin() + std::ptrdiff_t(data.size() - n_val);
    train_part = data::subset(data, std::span<const std::size_t>(&*idx.begin(), data.size() - n_val));
    val_part = data::subset(data, std::span<const std::size_t>(&*cut, n_val));
    train = &*train_part;
    val = &*val_part;
  }
  detail::check_dataset_fits<Model, L>(*train, "training dataset");
  if (val) detail::check_dataset_fits<Model, L>(*val, "validation dataset");

  const std::size_t n = train->size();
  const std::size_t bs = std::min(o.batch_size, n);
  const std::size_t batches = (n + bs - 1) / bs;
  Trainer<Model, Optimizer, L> trainer(model, opt, loss, bs, o.seed);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(o.seed);
  const bool tty = o.verbose > 0 && detail::is_terminal(o.out);
  using clock = std::chrono::steady_clock;

  History history;
  TrainingState state;
  state.epochs = o.epochs;
  state.learning_rate = learning_rate_of(opt);
  state.parameters = std::as_writable_bytes(model.parameters());
  state.history = &history;
  state.out = o.verbose > 0 ? o.out : nullptr;
  const auto set_learning_rate = [&] {
    const double current = learning_rate_of(opt);
    if (state.learning_rate == current || (std::isnan(current) && std::isnan(state.learning_rate)))
      return;
    if (!(state.learning_rate >= 0) || !std::isfinite(state.learning_rate))
      fail("A callback set the learning rate to ", number_text(state.learning_rate), " at epoch ",
           state.epoch, "; a learning rate must be a finite number >= 0.");
    if constexpr (requires { opt.learning_rate; }) {
      opt.learning_rate = static_cast<decltype(opt.learning_rate)>(state.learning_rate);
      state.learning_rate = learning_rate_of(opt);  // what the optimizer holds, after rounding
    } else {
      fail("A callback changed the learning rate, but this optimizer has no `learning_rate`.");
    }
  };
  // Resuming: replay the shuffles and step count of the epochs already done, so the run goes on
  // exactly as an unbroken one (with the optimizer restored by load_checkpoint).
  for (std::size_t e = 0; e < o.initial_epoch; ++e)
    if (o.shuffle) shuffle(order, rng);
  trainer.set_steps(std::uint64_t(o.initial_epoch) * batches);
  for (Callback& c : o.callbacks) c.on_train_begin(state);
  set_learning_rate();
  for (std::size_t epoch = o.initial_epoch + 1; epoch <= o.epochs && !state.stop; ++epoch) {
    state.epoch = epoch;
    for (Callback& c : o.callbacks) c.on_epoch_begin(state);
    set_learning_rate();
    if (o.shuffle) shuffle(order, rng);
    const auto t0 = clock::now();
    auto last_draw = t0;
    double loss_sum = 0, correct = 0;
    if (o.verbose > 0) *o.out << "Epoch " << epoch << "/" << o.epochs << (tty ? "\n" : "");
    for (std::size_t b = 0; b < batches; ++b) {
      const std::size_t begin = b * bs, m = std::min(bs, n - begin);
      trainer.load_batch(*train, std::span<const std::size_t>(order.data() + begin, m));
      const StepStats s = trainer.step(m);
      if (!std::isfinite(s.loss_sum)) {
        const std::string bad = first_non_finite_parameter(model);
        fail("Training diverged: the loss is ", number_text(s.loss_sum), " at epoch ", epoch,
             ", batch ", b + 1, " of ", batches, bad.empty() ? "" : "; the model's ", bad,
             ". Lower the learning rate or check the data.");
      }
      loss_sum += s.loss_sum;
      correct += s.correct;
      if (tty && (clock::now() - last_draw > std::chrono::milliseconds(200) || b + 1 == batches)) {
        last_draw = clock::now();
        const double done = double(b + 1) / double(batches);
        const int bar = int(done * 30);
        *o.out << "\r" << std::setw(int(std::to_string(batches).size())) << b + 1 << "/" << batches
               << " [" << std::string(std::size_t(bar), '=') << (bar < 30 ? ">" : "")
               << std::string(std::size_t(bar < 30 ? 29 - bar : 0), '.') << "]";
        const double seen = double(begin + m);
        detail::print_metrics(*o.out, "", loss_sum / seen,
                              L::metric == Metric::none ? std::nan("") : correct / seen);
        *o.out << std::flush;
      }
    }
    // The loss is computed before the step's update, so the last update of an epoch can overflow
    // with every loss finite: one scan of the arena per epoch.
    if (const std::string bad = first_non_finite_parameter(model); !bad.empty())
      fail("Training diverged: the model's ", bad, " after epoch ", epoch,
           " (the loss was finite). Lower the learning rate or check the data.");
    EpochLog log;
    log.epoch = epoch;
    log.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    log.loss = loss_sum / double(n);
    log.learning_rate = learning_rate_of(opt);
    if (L::metric != Metric::none) log.accuracy = correct / double(n);
    if (val) {
      const Evaluation e = detail::evaluate_in(model, trainer.workspace(), *val, trainer.loss());
      log.val_loss = e.loss;
      log.val_accuracy = e.accuracy;
    }
    history.epochs.push_back(log);
    if (o.verbose > 0) {
      *o.out << (tty ? "\r" : " - ") << batches << "/" << batches << " - " << std::fixed
             << std::setprecision(1) << log.seconds << "s - " << std::setprecision(0)
             << double(n) / log.seconds << " samples/s";
      detail::print_metrics(*o.out, "", log.loss, log.accuracy);
      if (val) detail::print_metrics(*o.out, "val_", log.val_loss, log.val_accuracy);
      *o.out << (tty ? "\033[K\n" : "\n") << std::flush;
    }
    for (Callback& c : o.callbacks) c.on_epoch_end(history.epochs.back(), state);
    set_learning_rate();
  }
  history.stopped_early = state.stop && history.epochs.size() < o.epochs - o.initial_epoch;
  for (Callback& c : o.callbacks) c.on_train_end(state);
  return history;
}

}  // namespace detail
}  // namespace ctnn
// ---- end ctnn/train/fit.hpp ----
// ---- begin ctnn/train/plot.hpp ----
// ctnn/train/plot.hpp: the training curves of a History as an SVG picture a browser opens.
//
// plot_svg(history, os) draws one panel for the loss and, when the loss has an accuracy metric,
// one for the accuracy; each shows training (solid) and validation (dashed, when present) per
// epoch, with labelled axes. save_plot_svg(history, path) writes it atomically. SvgPlot is the
// callback that redraws the file after every epoch, so a browser shows training as it goes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

// ---- begin ctnn/io/atomic_file.hpp ----
// ctnn/io/atomic_file.hpp: writing a file so that a crash never leaves a half-written one.
//
// write_atomically(path, writer) has `writer` fill a temporary file beside `path` (same folder,
// so the rename stays on one file system), flushes and fsyncs it, then renames it over `path`.
// Until the rename the previous file is untouched; after it the new one is complete. On any
// error the temporary file is removed and a ctnn::Error names the path and the reason.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


namespace ctnn::io {

inline void write_atomically(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  // The whole content is built in memory first: the files written this way (models, plots) are
  // small next to RAM, and one write() call leaves no partial state to clean up but the temp file.
  std::ostringstream buffer(std::ios::binary);
  writer(buffer);
  if (!buffer) fail("Could not produce the content of \"", path, "\".");
  const std::string data = std::move(buffer).str();

  // A directory at `path` would only be found by the final rename, after all the writing.
  struct ::stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail("Cannot save \"", path, "\": it is a directory, not a file.");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("Cannot save \"", path, "\": creating the temporary file \"", tmp, "\" beside it failed: ",
         std::strerror(errno), ". The previous file, if any, is unchanged.");
  const auto give_up = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while ", what, ": ", std::strerror(err),
         ". The previous file, if any, is unchanged.");
  };
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("writing");
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) give_up("flushing to disk");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while closing: ", std::strerror(err), ".");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("Saving \"", path, "\" failed while renaming the finished file into place: ",
         std::strerror(err), ". The previous file, if any, is unchanged.");
  }
}

}  // namespace ctnn::io
// ---- end ctnn/io/atomic_file.hpp ----

namespace ctnn {

namespace detail {

inline std::string svg_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Tick positions covering [lo, hi] at a 1, 2 or 5 times a power of ten step, about `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = mag * (raw / mag < 1.5 ? 1 : raw / mag < 3.5 ? 2 : raw / mag < 7.5 ? 5 : 10);
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

struct Series {
  const char* name;
  double (*get)(const EpochLog&);
  const char* dash;  // stroke-dasharray, "" for solid
  const char* color;
};

inline void svg_panel(std::ostream& os, const History& h, const char* title,
                      const std::vector<Series>& series, double x0, double y0, double w, double hgt) {
  const double left = 64, right = 16, top = 34, bottom = 48;
  const double pw = w - left - right, ph = hgt - top - bottom;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : series)
    for (const EpochLog& e : h.epochs) {
      const double v = s.get(e);
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) return;  // nothing to draw
  if (hi - lo < 1e-12) lo -= 0.5 * std::max(std::abs(lo), 1e-3), hi += 0.5 * std::max(std::abs(hi), 1e-3);
  const double pad = (hi - lo) * 0.06;
  lo -= pad, hi += pad;
  const std::size_t n = h.epochs.size();
  const double first = double(h.epochs.front().epoch), last = double(h.epochs.back().epoch);
  const double xspan = n > 1 ? last - first : 1;
  const auto X = [&](double epoch) { return x0 + left + (n > 1 ? (epoch - first) / xspan * pw : pw / 2); };
  const auto Y = [&](double v) { return y0 + top + (hi - v) / (hi - lo) * ph; };

  os << "<text x=\"" << x0 + left + pw / 2 << "\" y=\"" << y0 + 20
     << "\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" << title << "</text>\n";
  os << "<rect x=\"" << x0 + left << "\" y=\"" << y0 + top << "\" width=\"" << pw << "\" height=\""
     << ph << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double t : nice_ticks(lo, hi)) {
    os << "<line x1=\"" << x0 + left << "\" x2=\"" << x0 + left + pw << "\" y1=\"" << Y(t)
       << "\" y2=\"" << Y(t) << "\" stroke=\"#ddd\"/>"
       << "<text x=\"" << x0 + left - 6 << "\" y=\"" << Y(t) + 4
       << "\" text-anchor=\"end\" font-size=\"11\">" << svg_number(t) << "</text>\n";
  }
  const std::size_t every = std::max<std::size_t>(1, (n + 9) / 10);
  for (std::size_t i = 0; i < n; i += every) {
    const double ep = double(h.epochs[i].epoch);
    os << "<line x1=\"" << X(ep) << "\" x2=\"" << X(ep) << "\" y1=\"" << y0 + top + ph << "\" y2=\""
       << y0 + top + ph + 5 << "\" stroke=\"#444\"/><text x=\"" << X(ep) << "\" y=\""
       << y0 + top + ph + 18 << "\" text-anchor=\"middle\" font-size=\"11\">" << h.epochs[i].epoch
       << "</text>\n";
  }
  os << "<text x=\"" << x0 + left + pw / 2 << "\" y=\"" << y0 + hgt - 8
     << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";

  // The curves first, then the legend on a white box over them.
  std::ostringstream legend;
  double legend_y = y0 + top + 16;
  std::size_t drawn = 0;
  for (const Series& s : series) {
    std::string points;
    std::string marks;
    for (const EpochLog& e : h.epochs) {
      const double v = s.get(e);
      if (!std::isfinite(v)) continue;
      const std::string px = svg_number(X(double(e.epoch))), py = svg_number(Y(v));
      points += px + "," + py + " ";
      marks += "<circle cx=\"" + px + "\" cy=\"" + py + "\" r=\"2.5\" fill=\"" + s.color + "\"/>";
    }
    if (points.empty()) continue;
    os << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
       << (*s.dash ? std::string(" stroke-dasharray=\"") + s.dash + "\"" : "") << " points=\""
       << points << "\"/>\n"
       << marks << "\n";
    ++drawn;
    legend << "<line x1=\"" << x0 + left + pw - 120 << "\" x2=\"" << x0 + left + pw - 96 << "\" y1=\""
       << legend_y - 4 << "\" y2=\"" << legend_y - 4 << "\" stroke=\"" << s.color
       << "\" stroke-width=\"2\"" << (*s.dash ? std::string(" stroke-dasharray=\"") + s.dash + "\"" : "")
       << "/><text x=\"" << x0 + left + pw - 90 << "\" y=\"" << legend_y
       << "\" font-size=\"12\">" << s.name << "</text>\n";
    legend_y += 16;
  }
  if (drawn)
    os << "<rect x=\"" << x0 + left + pw - 126 << "\" y=\"" << y0 + top + 4 << "\" width=\"120\" height=\""
       << 16 * double(drawn) + 4 << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
       << legend.str();
}

}  // namespace detail

// Writes the SVG document of `h`'s curves to `os`. An empty history draws empty axes' titles only.
inline void plot_svg(const History& h, std::ostream& os) {
  const auto has = [&](double (*get)(const EpochLog&)) {
    return std::any_of(h.epochs.begin(), h.epochs.end(),
                       [&](const EpochLog& e) { return std::isfinite(get(e)); });
  };
  using detail::Series;
  const Series train_loss{"training", [](const EpochLog& e) { return e.loss; }, "", "#1f77b4"};
  const Series val_loss{"validation", [](const EpochLog& e) { return e.val_loss; }, "6,4", "#ff7f0e"};
  const Series train_acc{"training", [](const EpochLog& e) { return e.accuracy; }, "", "#1f77b4"};
  const Series val_acc{"validation", [](const EpochLog& e) { return e.val_accuracy; }, "6,4",
                       "#ff7f0e"};
  const bool accuracy = has(train_acc.get) || has(val_acc.get);
  const double panel_w = 480, panel_h = 340, width = accuracy ? 2 * panel_w : panel_w;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << panel_h
     << "\" viewBox=\"0 0 " << width << " " << panel_h << "\" font-family=\"sans-serif\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  detail::svg_panel(os, h, "loss", {train_loss, val_loss}, 0, 0, panel_w, panel_h);
  if (accuracy) detail::svg_panel(os, h, "accuracy", {train_acc, val_acc}, panel_w, 0, panel_w, panel_h);
  os << "</svg>\n";
}

// Writes plot_svg(h) to `path` atomically (see io/atomic_file.hpp).
inline void save_plot_svg(const History& h, const std::string& path) {
  io::write_atomically(path, [&](std::ostream& os) { plot_svg(h, os); });
}

// Redraws `path` after every epoch.
class SvgPlot : public Callback {
 public:
  explicit SvgPlot(std::string path) : path_(std::move(path)) {}
  void on_epoch_end(const EpochLog&, TrainingState& s) override {
    if (s.history) save_plot_svg(*s.history, path_);
  }

 private:
  std::string path_;
};

}  // namespace ctnn
// ---- end ctnn/train/plot.hpp ----

// ---- begin ctnn/tune/search.hpp ----
// ctnn/tune/search.hpp: grid and random search over run-time hyperparameters.
//
// A Space names hyperparameters and their candidate values: a list (grid), or for random search
// a uniform, log-uniform or integer range. The objective is any callable double(const Params&)
// that builds a model, trains it with those settings and returns a score measured on held-out
// data, typically `fit(...).best("val_accuracy").val_accuracy`. The model's topology is a type,
// fixed at compile time; what is searched is everything fit() and the optimizer take at run time
// (learning rate, batch size, epochs, Adam's betas, schedules, ...).
//
// Every trial is kept: its parameters, score, time, and, if the objective threw ctnn::Error (a
// diverged run, say), the message; a failed trial does not end the search. The result prints
// as a table with the best trial marked.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace ctnn::tune {

// One point of a search space: hyperparameter names and values, in the Space's order.
class Params {
 public:
  double operator[](std::string_view name) const {
    for (const auto& [n, v] : items_)
      if (n == name) return v;
    std::string names;
    for (const auto& [n, v] : items_) names += (names.empty() ? "" : ", ") + n;
    fail("The search space has no hyperparameter \"", name, "\"; it has: ", names, ".");
  }
  // The value as a count (batch size, epochs): an error unless it is a whole number >= 0.
  std::size_t count(std::string_view name) const {
    const double v = (*this)[name];
    if (!(v >= 0) || v != std::floor(v) || v > 1e15)
      fail("Hyperparameter \"", name, "\" is ", v, ", not a whole number >= 0.");
    return std::size_t(v);
  }
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }
  void set(std::string name, double v) { items_.emplace_back(std::move(name), v); }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

class Space {
 public:
  enum class Kind { list, uniform, log_uniform, integer };
  struct Dimension {
    std::string name;
    Kind kind;
    std::vector<double> values;  // list
    double lo = 0, hi = 0;       // ranges (inclusive)
  };

  // A list of candidate values: every one in grid search, one drawn uniformly in random search.
  Space& grid(std::string name, std::vector<double> values) {
    if (values.empty()) fail("Hyperparameter \"", name, "\" has an empty list of values.");
    return add({std::move(name), Kind::list, std::move(values)});
  }
  Space& uniform(std::string name, double lo, double hi) { return range(std::move(name), Kind::uniform, lo, hi); }
  // log-uniform over [lo, hi], lo > 0: the usual prior for learning rates.
  Space& log_uniform(std::string name, double lo, double hi) {
    if (!(lo > 0)) fail("log_uniform \"", name, "\" needs lo > 0, got ", lo, ".");
    return range(std::move(name), Kind::log_uniform, lo, hi);
  }
  Space& integer(std::string name, double lo, double hi) {
    if (lo != std::floor(lo) || hi != std::floor(hi))
      fail("integer \"", name, "\" needs whole bounds, got [", lo, ", ", hi, "].");
    return range(std::move(name), Kind::integer, lo, hi);
  }
  const std::vector<Dimension>& dimensions() const { return dims_; }

 private:
  Space& range(std::string name, Kind k, double lo, double hi) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi))
      fail("Hyperparameter \"", name, "\" has the range [", lo, ", ", hi, "]; it needs finite lo <= hi.");
    return add({std::move(name), k, {}, lo, hi});
  }
  Space& add(Dimension d) {
    for (const Dimension& e : dims_)
      if (e.name == d.name) fail("Hyperparameter \"", d.name, "\" is in the search space twice.");
    dims_.push_back(std::move(d));
    return *this;
  }
  std::vector<Dimension> dims_;
};

struct Trial {
  std::size_t index = 0;  // 1-based, in the order run
  Params params;
  double score = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;
  std::string error;      // empty unless the objective threw
  bool ok() const { return error.empty() && std::isfinite(score); }
};

struct SearchOptions {
  std::string score_name = "score";  // the column title, e.g. "val_accuracy"
  bool maximize = true;              // false for a loss
  std::ostream* out = &std::cout;    // one line per trial as it ends; nullptr for silence
};

struct SearchResult {
  std::vector<Trial> trials;
  SearchOptions options;

  // The best successful trial (first on ties); throws ctnn::Error when every trial failed.
  const Trial& best() const {
    const Trial* b = nullptr;
    for (const Trial& t : trials)
      if (t.ok() && (!b || (options.maximize ? t.score > b->score : t.score < b->score))) b = &t;
    if (!b) fail("No trial of the search succeeded (", trials.size(), " trials); see their errors.");
    return *b;
  }
};

namespace detail {

inline std::string format_value(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

inline void print_trial_line(std::ostream& os, const Trial& t, std::size_t total,
                             const SearchOptions& o) {
  os << "Trial " << t.index << "/" << total << ":";
  for (const auto& [n, v] : t.params.items()) os << " " << n << "=" << format_value(v);
  if (t.ok())
    os << " -> " << o.score_name << " " << std::fixed << std::setprecision(4) << t.score
       << std::defaultfloat;
  else
    os << " -> failed: " << (t.error.empty() ? "the score is not finite" : t.error);
  os << " (" << std::fixed << std::setprecision(1) << t.seconds << " s)" << std::defaultfloat << "\n"
     << std::flush;
}

template <class Objective>
SearchResult run_trials(std::vector<Params> points, Objective& objective, const SearchOptions& o) {
  SearchResult r;
  r.options = o;
  for (std::size_t i = 0; i < points.size(); ++i) {
    Trial t;
    t.index = i + 1;
    t.params = std::move(points[i]);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      t.score = double(objective(static_cast<const Params&>(t.params)));
    } catch (const Error& e) {
      t.error = e.what();
    }
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.out) print_trial_line(*o.out, t, points.size(), o);
    r.trials.push_back(std::move(t));
  }
  return r;
}

}  // namespace detail

// Every combination of the listed values (the first dimension varies slowest).
template <class Objective>
SearchResult grid_search(const Space& space, Objective objective, SearchOptions o = {}) {
  std::vector<Params> points(1);
  for (const Space::Dimension& d : space.dimensions()) {
    if (d.kind != Space::Kind::list)
      fail("grid_search needs a list of values for \"", d.name,
           "\"; ranges (uniform, log_uniform, integer) are for random_search.");
    std::vector<Params> next;
    for (const Params& p : points)
      for (double v : d.values) {
        Params q = p;
        q.set(d.name, v);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  if (space.dimensions().empty()) fail("grid_search got an empty search space.");
  return detail::run_trials(std::move(points), objective, o);
}

// `trials` points drawn independently from the space with ctnn::Rng(seed): the same seed draws
// the same points on every platform.
template <class Objective>
SearchResult random_search(const Space& space, std::size_t trials, std::uint64_t seed,
                           Objective objective, SearchOptions o = {}) {
  if (space.dimensions().empty()) fail("random_search got an empty search space.");
  if (trials == 0) fail("random_search needs at least one trial.");
  Rng rng(seed);
  std::vector<Params> points(trials);
  for (Params& p : points)
    for (const Space::Dimension& d : space.dimensions()) {
      const double u = rng.uniform01();  // [0, 1)
      double v = 0;
      switch (d.kind) {
        case Space::Kind::list:
          v = d.values[std::min(d.values.size() - 1, std::size_t(u * double(d.values.size())))];
          break;
        case Space::Kind::uniform: v = d.lo + u * (d.hi - d.lo); break;
        case Space::Kind::log_uniform:
          v = std::exp(std::log(d.lo) + u * (std::log(d.hi) - std::log(d.lo)));
          break;
        case Space::Kind::integer: v = std::min(d.hi, std::floor(d.lo + u * (d.hi - d.lo + 1))); break;
      }
      p.set(d.name, v);
    }
  return detail::run_trials(std::move(points), objective, o);
}

// The table of every trial, best marked with '*', failures with their error.
inline std::ostream& operator<<(std::ostream& os, const SearchResult& r) {
  if (r.trials.empty()) return os << "(no trials)\n";
  std::vector<std::string> head{"trial"};
  for (const auto& [n, v] : r.trials.front().params.items()) head.push_back(n);
  head.push_back(r.options.score_name);
  head.push_back("seconds");
  std::vector<std::vector<std::string>> rows;
  const Trial* best = nullptr;
  for (const Trial& t : r.trials)
    if (t.ok() && (!best || (r.options.maximize ? t.score > best->score : t.score < best->score)))
      best = &t;
  for (const Trial& t : r.trials) {
    std::vector<std::string> row{std::to_string(t.index) + (&t == best ? " *" : "")};
    for (const auto& [n, v] : t.params.items()) row.push_back(detail::format_value(v));
    std::ostringstream s;
    if (t.ok()) s << std::fixed << std::setprecision(4) << t.score;
    else s << "failed";
    row.push_back(s.str());
    std::ostringstream sec;
    sec << std::fixed << std::setprecision(1) << t.seconds;
    row.push_back(sec.str());
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> w(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    w[c] = head[c].size();
    for (const auto& row : rows) w[c] = std::max(w[c], row[c].size());
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c)
      os << (c ? "  " : "") << std::setw(int(w[c])) << cells[c];
    os << "\n";
  };
  line(head);
  for (const auto& row : rows) line(row);
  for (const Trial& t : r.trials)
    if (!t.error.empty()) os << "trial " << t.index << " failed: " << t.error << "\n";
  if (best) os << "best: trial " << best->index << " (" << r.options.score_name << " "
               << std::fixed << std::setprecision(4) << best->score << std::defaultfloat << ")\n";
  return os;
}

}  // namespace ctnn::tune
// ---- end ctnn/tune/search.hpp ----

// ---- begin ctnn/io/model_file.hpp ----
// ctnn/io/model_file.hpp: saving and loading a model's parameters, with the fitted
// preprocessing and, for a training checkpoint, the optimizer's state.
//
// save(path, model, &preprocessing) and save_checkpoint(path, model, optimizer) write, atomically (io/atomic_file.hpp: a crash
// mid-save leaves the previous file intact), one file in the ctnn model format, version 1:
//
//   offset  size  field (integers little-endian)
//   0       8     magic "CTNNMODL"
//   8       4     format version (1)
//   12      4     parameter storage: 4 float32, 8 float64, 0x102 fp16, 0x202 bf16 (the low
//                 byte is b, the bytes per value; half storage loads into a float model)
//   16      4     L, length of the topology text
//   20      L     topology text, e.g. "Input(None, 28, 28, 1) > Conv2D[3x3 stride 1 valid]
//                 (None, 26, 26, 32) > ... > Softmax(None, 10)": every layer with its settings
//                 and output shape; a model loads only a file of the same topology
//   20+L    8     P, number of parameters (the model's arena, in its order)
//   28+L    P*b   the parameters, IEEE-754 little-endian (binary16 / bfloat16 for half storage)
//   ...     4     S, number of sections; then S times: 4-byte tag, 8-byte length, the bytes:
//                 "PREP" the fitted data::Preprocessing (its own block, data/preprocess.hpp)
//                 "OPTM" optimizer: u32 name length, name ("Adam", "SGD"), u32 H, H float64
//                        hyperparameters, u64 step count, u32 B, B buffers of P parameters
//                 "STAT" the non-trainable state arena of a model with stateful layers (moving
//                        statistics): u64 count, the values in the model's own type; present
//                        exactly when the model has state (older files have none)
//                 "TOPH" u64 Model::topology_hash, the constant an exported header also holds
//                        (model_file_info() reads it without a model type; older files have none)
//   end-4   4     CRC-32 (zlib's) of every byte before it
//
// load(path, model) and load_checkpoint(path, model, optimizer) check, in this order, that the file is complete, its magic and version,
// the checksum, the parameter type and the topology, and only then changes the model: a wrong,
// truncated or corrupted file is a ctnn::Error that says which check failed, with the values,
// and leaves the model (and optimizer and preprocessing) untouched.
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <iterator>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- begin ctnn/kernels/half.hpp ----
// ctnn/kernels/half.hpp: float <-> 16-bit conversion, IEEE fp16 (binary16) or bfloat16, the
// kernel behind fp16 / bf16 weight storage (io/model_file.hpp, deploy/half.hpp).
//
// to_half / from_half convert arrays; to_fp16, to_bf16, from_fp16, from_bf16 return vectors.
// Conversion to 16 bits rounds to nearest, ties to even, as IEEE-754 and F16C do:
//   fp16: |x| >= 65520 -> Inf; below 2^-14 -> subnormal (multiples of 2^-24), below 2^-25 -> 0;
//   bf16: keeps fp32's exponent range, so only the mantissa rounds (to 8 bits).
// NaN stays NaN (quiet, sign and top payload bits kept); Inf and signed zeros are exact.
// Widening back to fp32 is exact.
//
// Why not Highway's own DemoteTo: in Highway 1.0.3 the float -> bfloat16 DemoteTo truncates, and
// the float16 paths of targets without F16C truncate and turn Inf/NaN into finite values. The
// conversions below use only integer and float ops every target has, so they round the same way
// everywhere.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>


namespace ctnn {
// The 16-bit formats weights can be stored in.
enum class HalfFormat { fp16, bf16 };
}  // namespace ctnn

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// fp32 -> fp16 bits (in int32 lanes), round to nearest even.
template <class D, class V>
HWY_INLINE auto f32_to_f16_bits(D d, V v) {
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(di, v);
  const auto a = hn::And(bits, hn::Set(di, 0x7FFFFFFF));  // |x|
  // Normal fp16: add just under half an fp16 ulp (plus the kept lsb, for ties to even), drop 13
  // mantissa bits and rebias the exponent (127 -> 15); a carry rounds into the exponent, and
  // anything at or beyond 65520 lands on or past Inf's code 0x7C00.
  const auto lsb = hn::And(hn::ShiftRight<13>(a), hn::Set(di, 1));
  const auto normal = hn::Min(
      hn::ShiftRight<13>(hn::Sub(hn::Add(a, hn::Add(hn::Set(di, 0xFFF), lsb)),
                                 hn::Set(di, (127 - 15) << 23))),
      hn::Set(di, 0x7C00));
  // Subnormal fp16 (|x| < 2^-14): adding 0.5 makes the float unit 2^-24, the fp16 subnormal
  // step, so the FPU's own round-to-nearest-even leaves the fp16 code in the low mantissa bits.
  const auto sub = hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(d, a), hn::Set(d, 0.5f))),
                           hn::Set(di, 0x3F000000));
  const auto nan = hn::Or(hn::Set(di, 0x7E00), hn::And(hn::ShiftRight<13>(a), hn::Set(di, 0x3FF)));
  auto h = hn::IfThenElse(hn::Lt(a, hn::Set(di, 0x38800000)), sub, normal);
  h = hn::IfThenElse(hn::Gt(a, hn::Set(di, 0x7F800000)), nan, h);
  return hn::Or(h, hn::And(hn::ShiftRight<16>(bits), hn::Set(di, 0x8000)));  // the sign
}

// fp16 bits (in int32 lanes) -> fp32, exact.
template <class D, class VI>
HWY_INLINE auto f16_bits_to_f32(D d, VI h) {
  const hn::RebindToSigned<D> di;
  const auto e = hn::And(h, hn::Set(di, 0x7C00));
  // Exponent and mantissa move up 13 bits; the exponent rebias (15 -> 127) is one add, and a
  // second add takes Inf/NaN's exponent 31 to fp32's 255.
  const auto rebias = hn::Set(di, (127 - 15) << 23);
  const auto normal = hn::Add(hn::ShiftLeft<13>(hn::And(h, hn::Set(di, 0x7FFF))), rebias);
  const auto inf_nan = hn::Add(normal, rebias);
  const auto sub = hn::BitCast(di, hn::Mul(hn::ConvertTo(d, hn::And(h, hn::Set(di, 0x3FF))),
                                           hn::Set(d, 1.0f / 16777216.0f)));  // m * 2^-24
  auto r = hn::IfThenElse(hn::Eq(e, hn::Zero(di)), sub, normal);
  r = hn::IfThenElse(hn::Eq(e, hn::Set(di, 0x7C00)), inf_nan, r);
  return hn::BitCast(d, hn::Or(r, hn::ShiftLeft<16>(hn::And(h, hn::Set(di, 0x8000)))));
}

// fp32 -> bf16 bits (in int32 lanes), round to nearest even.
template <class D, class V>
HWY_INLINE auto f32_to_bf16_bits(D, V v) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lsb)));
  const auto nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40u));  // quiet bit set
  const auto a = hn::And(hn::BitCast(di, bits), hn::Set(di, 0x7FFFFFFF));
  return hn::BitCast(di, hn::IfThenElse(hn::RebindMask(du, hn::Gt(a, hn::Set(di, 0x7F800000))),
                                        nan, rounded));
}

// Applies f(d, i) to elements [i, i + Lanes(d)): native vectors, then a one-lane tag for the
// tail, so there is one copy of each conversion.
template <class F>
HWY_INLINE void for_each_lane_block(std::size_t n, F f) {
  const hn::ScalableTag<float> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;
  std::size_t i = 0;
  for (; i < full; i += L) f(d, i);
  const hn::CappedTag<float, 1> d1;
  for (; i < n; ++i) f(d1, i);
}

inline void to_half(HalfFormat format, std::size_t n, const float* HWY_RESTRICT x,
                    std::uint16_t* HWY_RESTRICT h) {
  for_each_lane_block(n, [&](auto d, std::size_t i) {
    const hn::Rebind<std::uint16_t, decltype(d)> d16;
    const auto v = hn::LoadU(d, x + i);
    const auto bits = format == HalfFormat::fp16 ? f32_to_f16_bits(d, v) : f32_to_bf16_bits(d, v);
    hn::StoreU(hn::DemoteTo(d16, bits), d16, h + i);  // every code is <= 0xFFFF: no saturation
  });
}

inline void from_half(HalfFormat format, std::size_t n, const std::uint16_t* HWY_RESTRICT h,
                      float* HWY_RESTRICT x) {
  for_each_lane_block(n, [&](auto d, std::size_t i) {
    const hn::Rebind<std::uint16_t, decltype(d)> d16;
    const hn::RebindToSigned<decltype(d)> di;
    const auto bits = hn::PromoteTo(di, hn::LoadU(d16, h + i));
    hn::StoreU(format == HalfFormat::fp16 ? f16_bits_to_f32(d, bits)
                                          : hn::BitCast(d, hn::ShiftLeft<16>(bits)),
               d, x + i);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn {

// h[i] = x[i] in `format`, rounded to nearest even. The spans must be the same length.
inline void to_half(HalfFormat format, std::span<const float> x, std::span<std::uint16_t> h) {
  if (x.size() != h.size())
    fail("to_half() was given ", x.size(), " floats but room for ", h.size(), " 16-bit values.");
  HWY_NAMESPACE::to_half(format, x.size(), x.data(), h.data());
}

// x[i] = h[i] widened exactly to fp32. The spans must be the same length.
inline void from_half(HalfFormat format, std::span<const std::uint16_t> h, std::span<float> x) {
  if (x.size() != h.size())
    fail("from_half() was given ", h.size(), " 16-bit values but room for ", x.size(), " floats.");
  HWY_NAMESPACE::from_half(format, h.size(), h.data(), x.data());
}

inline std::vector<std::uint16_t> to_fp16(std::span<const float> x) {
  std::vector<std::uint16_t> h(x.size());
  to_half(HalfFormat::fp16, x, h);
  return h;
}
inline std::vector<std::uint16_t> to_bf16(std::span<const float> x) {
  std::vector<std::uint16_t> h(x.size());
  to_half(HalfFormat::bf16, x, h);
  return h;
}
inline std::vector<float> from_fp16(std::span<const std::uint16_t> h) {
  std::vector<float> x(h.size());
  from_half(HalfFormat::fp16, h, x);
  return x;
}
inline std::vector<float> from_bf16(std::span<const std::uint16_t> h) {
  std::vector<float> x(h.size());
  from_half(HalfFormat::bf16, h, x);
  return x;
}

}  // namespace ctnn
// ---- end ctnn/kernels/half.hpp ----

namespace ctnn {

static_assert(std::endian::native == std::endian::little,
              "ctnn's model files store little-endian values; this target is big-endian.");

// "Input(None, 28, 28, 1) > Conv2D[3x3 stride 1 valid](None, 26, 26, 32) > ...": the model's
// layers with their settings and output shapes, the identity a model file must match. A Graph's
// text adds each layer's edges, " <- 0 3" (the tensors it reads: 0 the input, k the output of
// the k-th layer, from 1), so a graph of the same layers wired otherwise is another topology.
template <class Model>
std::string topology() {
  // Appends only: GCC 12 at -O3 warns (-Wrestrict, falsely) on `"[" + std::string + "]"` here.
  std::string s = "Input";
  s += Model::input_shape::str();
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    s += " > ";
    s += L::name;
    if constexpr (requires { L::config(); }) {
      s += '[';
      s += L::config();
      s += ']';
    }
    s += L::output_shape::str();
    if constexpr (!Model::is_chain) {  // a graph's edges: the tensors each layer reads
      s += " <-";
      for (std::size_t t : Model::template inputs_of<I>) {
        s += ' ';
        s += std::to_string(t);
      }
    }
  });
  return s;
}

namespace io {

inline constexpr char kModelMagic[8] = {'C', 'T', 'N', 'N', 'M', 'O', 'D', 'L'};
inline constexpr std::uint32_t kModelFormatVersion = 1;

namespace detail {

using ctnn::detail::ByteReader;  // the codec shared with data/preprocess.hpp (core/bytes.hpp)
using ctnn::detail::ByteWriter;
using ctnn::detail::crc32_of;

inline std::vector<char> read_whole_file(const std::string& path) {
  // POSIX calls rather than std::ifstream: a directory opens as a stream and then throws
  // std::ios_base::failure from the read, which names no path.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("Cannot open the model file \"", path, "\": ", std::strerror(errno), ".");
  struct ::stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail("Cannot read the model file \"", path, "\": ",
         err == EISDIR ? "it is a directory, not a file" : std::strerror(err), ".");
  }
  std::vector<char> data;
  if (S_ISREG(st.st_mode)) data.reserve(std::size_t(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail("Reading the model file \"", path, "\" failed after ", data.size(), " bytes: ",
           std::strerror(err), ".");
    }
    if (n == 0) break;
    data.insert(data.end(), chunk, chunk + n);
  }
  ::close(fd);
  return data;
}

template <class Optimizer>
concept Checkpointable = requires(Optimizer& o, const Optimizer& c) {
  { c.hyperparameters() } -> std::same_as<std::vector<double>>;
  c.state_buffers();
  o.restore_state(std::uint64_t{}, std::size_t{}, std::size_t{});
  { c.iterations() } -> std::same_as<std::uint64_t>;
  Optimizer::name;
};

}  // namespace detail
}  // namespace io

// How save() stores the parameters: as the model's own type, or halved to fp16 / bf16 (round to
// nearest even; a float model only), which halves the file for deployment at a small cost in
// accuracy (report it: deploy/half.hpp; the conversion is kernels/half.hpp). Checkpoints always
// store the model's own type.
enum class WeightStorage : std::uint32_t { native = 0, fp16 = 0x102, bf16 = 0x202 };

struct SaveOptions {
  const data::Preprocessing* preprocessing = nullptr;
  WeightStorage weights = WeightStorage::native;
};

namespace io::detail {

struct NoOptimizer {
  static constexpr std::string_view name = "none";
};

// What besides the parameters a file holds (save) or should restore (load).
template <class Optimizer, class Prep>
struct Parts {
  Optimizer* optimizer = nullptr;
  Prep* preprocessing = nullptr;
};

template <class Model, class Optimizer>
void save_parts(const std::string& path, const Model& model,
                Parts<const Optimizer, const data::Preprocessing> parts,
                WeightStorage storage = WeightStorage::native) {
  using T = typename Model::value_type;
  const auto params = model.parameters();
  std::vector<std::uint16_t> half;
  if (storage != WeightStorage::native) {
    if constexpr (!std::is_same_v<T, float>)
      fail("save(): fp16 / bf16 storage is for float models; this one is double.");
    else {
      half.resize(params.size());
      ctnn::to_half(storage == WeightStorage::fp16 ? ctnn::HalfFormat::fp16 : ctnn::HalfFormat::bf16,
                      params, half);
    }
  }
  write_atomically(path, [&](std::ostream& raw) {
    ByteWriter w;
    w.raw(kModelMagic, sizeof kModelMagic);
    w.u32(kModelFormatVersion);
    w.u32(storage == WeightStorage::native ? std::uint32_t(sizeof(T)) : std::uint32_t(storage));
    w.str(topology<Model>());
    w.u64(params.size());
    if (half.empty())
      w.raw(params.data(), params.size_bytes());
    else
      w.raw(half.data(), half.size() * sizeof(std::uint16_t));
    std::uint32_t sections = 0;
    std::string prep, opt, state;
    if constexpr (Model::state_size > 0) {  // non-trainable state, always in the model's type
      ByteWriter st;
      const auto values = model.state();
      st.u64(values.size());
      st.raw(values.data(), values.size_bytes());
      state = st.bytes();
      ++sections;
    }
    if (parts.preprocessing) {
      std::ostringstream s(std::ios::binary);
      parts.preprocessing->save(s);
      prep = std::move(s).str();
      ++sections;
    }
    if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
      static_assert(Checkpointable<Optimizer>,
                    "save(): this optimizer cannot be checkpointed (it lacks hyperparameters(), "
                    "state_buffers(), restore_state() or iterations()).");
      if (parts.optimizer) {
        ByteWriter o;
        o.str(Optimizer::name);
        const std::vector<double> h = parts.optimizer->hyperparameters();
        o.u32(std::uint32_t(h.size()));
        for (double v : h) o.f64(v);
        o.u64(parts.optimizer->iterations());
        const auto buffers = parts.optimizer->state_buffers();
        o.u32(std::uint32_t(buffers.size()));
        for (const auto& b : buffers) {
          if (b.size() != params.size())
            fail("save(): the optimizer's state has ", b.size(), " values for a model of ",
                 params.size(), " parameters; was it used with another model?");
          o.raw(b.data(), b.size_bytes());
        }
        opt = o.bytes();
        ++sections;
      }
    }
    ByteWriter hash;  // TOPH, always
    hash.u64(Model::topology_hash);
    ++sections;
    w.u32(sections);
    const auto section = [&](const char (&tag)[5], const std::string& bytes) {
      w.raw(tag, 4);
      w.u64(bytes.size());
      w.raw(bytes.data(), bytes.size());
    };
    if (!prep.empty()) section("PREP", prep);
    if (!opt.empty()) section("OPTM", opt);
    if (!state.empty()) section("STAT", state);
    section("TOPH", hash.bytes());
    w.u32(crc32_of(w.bytes()));  // of every byte before it
    raw.write(w.bytes().data(), std::streamsize(w.bytes().size()));
  });
}

// Checks a whole model file's size, magic, version and checksum (a ctnn::Error names the failed
// check and its values) and returns a reader past the 12-byte header: load() and
// model_file_info() share it.
inline ByteReader checked_reader(std::span<const char> data, const std::string& path) {
  constexpr std::size_t kMinSize = 8 + 4 + 4 + 4 + 8 + 4 + 4;
  if (data.size() < 8 || std::memcmp(data.data(), kModelMagic, 8) != 0)
    fail("\"", path, "\" is not a ctnn model file: it does not start with \"CTNNMODL\"",
         data.size() < 8 ? " (it has fewer than 8 bytes)." : ".");
  if (data.size() < kMinSize)
    fail("The model file \"", path, "\" is truncated: ", data.size(), " bytes, fewer than the ",
         kMinSize, " of an empty model file.");
  std::uint32_t version;
  std::memcpy(&version, data.data() + 8, 4);
  if (version != kModelFormatVersion)
    fail("The model file \"", path, "\" has format version ", version, "; this ctnn reads version ",
         kModelFormatVersion, ".");
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, data.data() + data.size() - 4, 4);
  const std::uint32_t crc = crc32_of(std::string_view(data.data(), data.size() - 4));
  if (crc != stored_crc)
    fail("The model file \"", path, "\" is corrupted or truncated: its checksum is ", std::hex,
         stored_crc, " but its ", std::dec, data.size() - 4, " bytes sum to ", std::hex, crc,
         std::dec, ".");

  ByteReader r(std::string_view(data.data(), data.size() - 4), "The model file \"" + path + "\"");
  r.take(12, "the header");
  return r;
}

// Parses a whole model file held in `data`; `path` names it in messages.
template <class Model, class Optimizer>
void load_parts(std::span<const char> data, const std::string& path, Model& model,
                Parts<Optimizer, data::Preprocessing> parts) {
  using T = typename Model::value_type;
  ByteReader r = checked_reader(data, path);
  const auto scalar = r.u32("the parameter size");
  const std::string topo = r.str("the topology");
  const std::string want = topology<Model>();
  if (topo != want)
    fail("The model file \"", path, "\" holds another model.\n  file:  ", topo, "\n  model: ", want);
  const bool half = scalar == std::uint32_t(WeightStorage::fp16) ||
                    scalar == std::uint32_t(WeightStorage::bf16);
  if (half && !std::is_same_v<T, float>)
    fail("The model file \"", path, "\" stores ",
         scalar == std::uint32_t(WeightStorage::fp16) ? "fp16" : "bf16",
         " parameters, which load into float models; this model uses double.");
  if (!half && scalar != sizeof(T))
    fail("The model file \"", path, "\" stores ", scalar, "-byte parameters; this model uses ",
         sizeof(T), "-byte ones (float vs double).");
  const auto count = r.u64("the parameter count");
  const auto params = model.parameters();
  if (count != params.size())
    fail("The model file \"", path, "\" has ", count, " parameters; the model has ", params.size(), ".");
  const char* values = r.take(count * (half ? 2 : sizeof(T)), "the parameters");
  std::vector<T> widened;  // half storage, widened before anything changes
  if (half) {
    std::vector<std::uint16_t> h(count);
    std::memcpy(h.data(), values, count * 2);
    widened.resize(count);
    if constexpr (std::is_same_v<T, float>)
      ctnn::from_half(scalar == std::uint32_t(WeightStorage::fp16) ? ctnn::HalfFormat::fp16
                                                                   : ctnn::HalfFormat::bf16,
                      h, widened);
    values = reinterpret_cast<const char*>(widened.data());
  }

  // Parse every section into temporaries before touching the model or the parts.
  const auto sections = r.u32("the section count");
  std::optional<data::Preprocessing> prep;
  bool has_opt = false;
  std::string opt_name;
  std::vector<double> hyper;
  std::uint64_t iterations = 0;
  std::vector<const char*> buffers;
  const char* state = nullptr;
  for (std::uint32_t s = 0; s < sections; ++s) {
    const std::string tag(r.take(4, "a section tag"), 4);
    const auto len = r.u64("a section length");
    const char* bytes = r.take(len, "a section");
    if (tag == "PREP") {
      std::istringstream is(std::string(bytes, std::size_t(len)), std::ios::binary);
      prep = data::Preprocessing::load(is);
    } else if (tag == "OPTM") {
      ByteReader o(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      opt_name = o.str("the optimizer's name");
      const auto nh = o.u32("the optimizer's hyperparameter count");
      if (nh > 64) fail("The model file \"", path, "\" is corrupt: ", nh, " optimizer hyperparameters.");
      for (std::uint32_t i = 0; i < nh; ++i) hyper.push_back(o.f64("a hyperparameter"));
      iterations = o.u64("the optimizer's step count");
      const auto nb = o.u32("the optimizer's buffer count");
      if (nb > 8) fail("The model file \"", path, "\" is corrupt: ", nb, " optimizer buffers.");
      for (std::uint32_t i = 0; i < nb; ++i) buffers.push_back(o.take(count * sizeof(T), "an optimizer buffer"));
      if (o.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", o.remaining(),
             " unexpected bytes at the end of the optimizer section.");
      has_opt = true;
    } else if (tag == "STAT") {
      ByteReader st(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      const auto n = st.u64("the state count");
      if (n != Model::state_size)
        fail("The model file \"", path, "\" has ", n, " state values (non-trainable); the model has ",
             Model::state_size, ".");
      state = st.take(n * sizeof(T), "the state values");
      if (st.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", st.remaining(),
             " unexpected bytes at the end of the state section.");
    } else if (tag == "TOPH") {
      ByteReader th(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      const auto hash = th.u64("the topology hash");
      if (th.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", th.remaining(),
             " unexpected bytes at the end of the topology hash section.");
      // The topology text matched already; a hash that does not is a file written by a ctnn
      // whose hash differs (or an edited file): say so rather than load it.
      if (hash != Model::topology_hash)
        fail("The model file \"", path, "\" has topology hash ", hash,
             " but the model's topology_hash is ", Model::topology_hash,
             " (the topology texts agree: was the file written by another ctnn version?).");
    } else {
      fail("The model file \"", path, "\" has an unknown section \"", tag, "\" (this ctnn knows PREP, ",
           "OPTM, STAT and TOPH).");
    }
  }
  if (r.remaining() != 0)
    fail("The model file \"", path, "\" is corrupt: ", r.remaining(), " unexpected bytes after its sections.");
  if (Model::state_size > 0 && state == nullptr)
    fail("The model file \"", path, "\" holds no layer state, but the model has ", Model::state_size,
         " state values (moving statistics) to load.");
  if (parts.preprocessing && !prep)
    fail("The model file \"", path, "\" holds no preprocessing, but load() was asked for one.");
  if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
    if (parts.optimizer) {
      if (!has_opt)
        fail("The model file \"", path, "\" holds no optimizer state (it was saved without one), ",
             "but load() was asked for the ", Optimizer::name, " optimizer's.");
      if (opt_name != Optimizer::name)
        fail("The model file \"", path, "\" holds the state of a ", opt_name, " optimizer, not ",
             Optimizer::name, ".");
      const std::vector<double> probe = parts.optimizer->hyperparameters();
      if (hyper.size() != probe.size())
        fail("The model file \"", path, "\" has ", hyper.size(), " hyperparameters for ", opt_name,
             ", which has ", probe.size(), ".");
    }
  }

  // Everything checked: now change the parts and the model. restore_state() is first because it
  // checks the buffer count before changing anything; nothing after it can fail.
  if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
    if (parts.optimizer) {
      auto views = parts.optimizer->restore_state(iterations, buffers.size(), count);
      parts.optimizer->set_hyperparameters(hyper);
      for (std::size_t i = 0; i < views.size(); ++i)
        std::memcpy(views[i].data(), buffers[i], count * sizeof(T));
    }
  }
  std::memcpy(params.data(), values, count * sizeof(T));
  if constexpr (Model::state_size > 0) std::memcpy(model.state().data(), state, Model::state_size * sizeof(T));
  if (parts.preprocessing) *parts.preprocessing = std::move(*prep);
}

template <class Model, class Optimizer>
void load_parts(const std::string& path, Model& model, Parts<Optimizer, data::Preprocessing> parts) {
  const std::vector<char> data = read_whole_file(path);
  load_parts<Model, Optimizer>(std::span<const char>(data), path, model, parts);
}

}  // namespace io::detail

// Writes `model`'s parameters, and the fitted preprocessing if given, to `path` atomically.
template <class Model>
void save(const std::string& path, const Model& model, const data::Preprocessing* preprocessing = nullptr) {
  io::detail::save_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, preprocessing});
}

// save() with options: e.g. {.preprocessing = &prep, .weights = WeightStorage::fp16}.
template <class Model>
void save(const std::string& path, const Model& model, const SaveOptions& options) {
  io::detail::save_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, options.preprocessing},
                                                         options.weights);
}

// A training checkpoint: save() plus the optimizer's hyperparameters and state, so training
// resumed after load_checkpoint() takes the same steps it would have taken without the stop.
template <class Model, class Optimizer>
void save_checkpoint(const std::string& path, const Model& model, const Optimizer& optimizer,
                     const data::Preprocessing* preprocessing = nullptr) {
  io::detail::save_parts<Model, Optimizer>(path, model, {&optimizer, preprocessing});
}

// Reads a file written by save() or save_checkpoint() into `model` (and `preprocessing` if
// given: then the file must hold one). Leaves everything untouched when it throws.
template <class Model>
void load(const std::string& path, Model& model, data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, preprocessing});
}

// Reads a checkpoint into `model` and `optimizer` (and `preprocessing` if given).
template <class Model, class Optimizer>
void load_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, Optimizer>(path, model, {&optimizer, preprocessing});
}

// What a model file says about its model, read without a model type: for tools that check a
// file against an exported header (its Model::topology_hash) or print what a file holds.
struct ModelFileInfo {
  std::string topology;                       // the topology() text
  std::optional<std::uint64_t> topology_hash;  // Model::topology_hash (absent in older files)
  std::uint64_t parameters = 0;               // the parameter count (the arena, padded)
  std::uint32_t storage = 0;                  // 4 float32, 8 float64, 0x102 fp16, 0x202 bf16
  std::vector<std::string> sections;          // the section tags in file order ("TOPH", ...)
};

// Reads `path`'s header and section tags, with load()'s checks of completeness, magic, version and
// checksum (a ctnn::Error names the failed check).
inline ModelFileInfo model_file_info(const std::string& path) {
  using io::detail::ByteReader;
  const std::vector<char> data = io::detail::read_whole_file(path);
  ByteReader r = io::detail::checked_reader(data, path);
  ModelFileInfo info;
  info.storage = r.u32("the parameter size");
  info.topology = r.str("the topology");
  info.parameters = r.u64("the parameter count");
  const std::uint32_t bytes_per = info.storage & 0xff;
  if (bytes_per != 2 && bytes_per != 4 && bytes_per != 8)
    fail("The model file \"", path, "\" has an unknown parameter storage ", info.storage, ".");
  if (info.parameters > data.size())
    fail("The model file \"", path, "\" is corrupt: it claims ", info.parameters,
         " parameters in ", data.size(), " bytes.");
  r.take(info.parameters * bytes_per, "the parameters");
  const auto sections = r.u32("the section count");
  for (std::uint32_t k = 0; k < sections; ++k) {
    std::string tag(r.take(4, "a section tag"), 4);
    const auto len = r.u64("a section length");
    const char* bytes = r.take(len, "a section");
    if (tag == "TOPH" && len == 8) {
      std::uint64_t h;
      std::memcpy(&h, bytes, 8);
      info.topology_hash = h;
    }
    info.sections.push_back(std::move(tag));
  }
  return info;
}

// load() from the bytes of a whole model file in memory; `name` stands in for the path in
// messages. Same checks, same guarantee: untouched on error.
template <class Model>
void load_from_memory(std::span<const char> bytes, const std::string& name, Model& model,
                      data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, io::detail::NoOptimizer>(bytes, name, model,
                                                         {nullptr, preprocessing});
}

// load_checkpoint() from the bytes of a whole model file in memory.
template <class Model, class Optimizer>
void load_checkpoint_from_memory(std::span<const char> bytes, const std::string& name,
                                 Model& model, Optimizer& optimizer,
                                 data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, Optimizer>(bytes, name, model, {&optimizer, preprocessing});
}

}  // namespace ctnn
// ---- end ctnn/io/model_file.hpp ----

// ---- begin ctnn/deploy/export.hpp ----
// ctnn/deploy/export.hpp: a trained model as a C++ header of constexpr weights, for firmware.
//
// export_header(path, model, name) writes (atomically) a header that needs nothing but ctnn's
// headers to compile: namespace `name` holding
//   using Model = ctnn::Sequential<...>;              the topology, as C++ source (a Graph in
//                                                     its node form, ctnn::NodeGraph<...>)
//   inline constexpr char topology[] = "...";         ctnn::topology<Model>(), for checks
//   static_assert(Model::topology_hash == ...);       the topology as a constant
//   alignas(64) inline constexpr float parameters[];  the arena, values as exact hex literals
//   state[]                                           the non-trainable state, if any
//   inline ctnn::deploy::StaticModel<Model> make()    an inference object over those weights
// so a firmware build does `static auto net = name::make(); net.predict(x);` with no file system,
// heap, exceptions or RTTI, and with weights in flash. Every value round-trips exactly (hex
// floats); a non-finite parameter is an error naming its index. write_constexpr_array() writes
// any array the same way (test inputs, expected outputs).
// export_header(path, quantized, name) does the same for a QuantizedModel (deploy/quantize.hpp):
// int8 weights, float scales and biases, and make() returning a StaticQuantizedModel.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <span>
#include <string>
#include <vector>

// ---- begin ctnn/deploy/quantize.hpp ----
// ctnn/deploy/quantize.hpp: post-training int8 quantization of a trained float Sequential or
// Graph.
//
//   auto q = ctnn::quantize(model, calibration_set);   // QuantizedModel<Model>
//   auto probs = q.predict(image);                      // like Sequential::predict
//
// Represents the same function as the float model, with every Dense, Conv2D, Conv1D and
// DepthwiseConv2D computed in 8-bit integers (a BatchNormalization right after one folded into
// its weights first: layers/fold_batch_norm.hpp):
//   weights      int8, symmetric, one scale per output channel: s_w[n] = max_k |W(k, n)| / 127
//                (a per-channel scale keeps a channel of small weights from being crushed by
//                another channel's large ones);
//   activations  the input of each quantized layer, symmetric with zero point 0 (so padding, ReLU
//                and max pooling stay exact in integers): uint8 [0, 255] when the calibration
//                data never made it negative (after a ReLU, or [0, 1] pixels), int8 [-127, 127]
//                otherwise; the scale covers the calibrated range (CalibrationOptions);
//   products     int8 x int8 summed exactly in int32 (kernels/int8.hpp), then
//                y = acc * (s_in * s_w[n]) + bias[n] in float, requantized straight to the
//                8-bit scale of the tensor it feeds (a ReLU between them becomes the clamp at 0)
//                when every reader of that tensor takes bytes (quantized layers, residual Adds,
//                GlobalAveragePooling: a fan-out too), otherwise (before Softmax, Tanh,
//                Concatenate, AvgPool2D, the output) kept in float;
//   residual Add rescales: y = s_a * q_a + s_b * q_b in float, requantized to its output's
//                scale (each 8-bit tensor has its own, calibrated like the layers' inputs) or
//                kept in float when a float layer reads it;
//   global average pooling on bytes sums each channel in int32 and writes the mean in float
//                (narrower than its inputs: the Dense after it quantizes it on its own scale).
// Layers between two quantized layers run on the bytes: ReLU (already applied by the clamp),
// Flatten, Reshape and Dropout (nothing to do), MaxPool2D and MaxPool1D with any padding and
// dilation (max commutes with a monotone quantizer; padded taps are skipped). Every
// other parameter-free layer runs in float with the float model's own code (Concatenate joins
// dequantized values). A layer
// with parameters of another kind is a compile error. The plan (which tensors are bytes, where
// each lives) is detail::Int8Forward's, made by the compiler from the model's node list.
// A sample holding NaN or an infinity gets NaN outputs (8-bit values cannot represent them, and
// clamping would make them a class); predict_class() refuses such a sample with an error.
// Requires: a float model with at least one Dense, Conv2D, Conv1D or DepthwiseConv2D; every
// BatchNormalization right after one of them (folded); no SeparableConv2D (write it as
// DepthwiseConv2D + Conv2D 1x1).
// Inference allocates nothing once reserve(n) (or a first batch of n) has sized the calling
// thread's workspace, or with an InferenceContext sized for the batch.
// Thread safety: as Sequential: predict() and predict_class() are const and may run on one
// QuantizedModel from any number of threads at once; each uses the caller's InferenceContext or
// the calling thread's own (thread_context()), never a buffer of the model.
// The layer loop itself is detail::Int8Forward (deploy/static_quantized.hpp), run here over heap
// buffers and by deploy::StaticQuantizedModel over an exported header's constants: the two compute
// the same bytes.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

// ---- begin ctnn/deploy/static_quantized.hpp ----
// ctnn/deploy/static_quantized.hpp: int8 inference over constant weights in memory fixed at
// compile time, and the int8 forward pass it shares with QuantizedModel (deploy/quantize.hpp).
//
// detail::Int8Forward<Model> is the node loop of a quantized model (a Sequential or a Graph) over
// raw pointers: what the compiler decides about the node list (the plan: kinds, folds, which
// tensors are bytes, each tensor's slot in one arena, sizes) and one
// run() over parameters and a workspace it does not own. QuantizedModel runs it over its own
// (heap) buffers; StaticQuantizedModel over the constant arrays of a header written by
// export_header(path, QuantizedModel, name) (deploy/export.hpp) and buffers that are array
// members, so both compute the same bytes.
//
// StaticQuantizedModel<Model> runs one sample at a time; nothing is allocated, thrown or looked up
// at run time, so it builds with -fno-exceptions -fno-rtti for a bare-metal target (Highway's
// SCALAR target there). Its sizes are known to the compiler:
//   weight_bytes   packed int8 weights, float multipliers, biases and input scales (read only)
//   buffer_bytes   the activation arena (plan.arena: every live tensor, float or 8-bit), int32
//                  sums, patches, float scratch and the outputs for one sample, each buffer
//                  64-byte aligned: the object is buffer_bytes plus 64 bytes of pointers
// The int8 GEMM also keeps a widened row tile on the stack: 6 KiB, 768 bytes on SCALAR
// (kernels/int8.hpp).
// Declare it static (or global) on a microcontroller so the buffers land in .bss, not the stack.
// Thread safety: by design it owns its buffers (no heap, no thread_local), so predict() is not
// const and one StaticQuantizedModel serves one thread (or one core) at a time; give each thread
// its own instance (the constant parameters are shared, only the buffers are copied).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

// ---- begin ctnn/deploy/static_model.hpp ----
// ctnn/deploy/static_model.hpp: inference over constant weights in memory fixed at compile time.
//
// StaticModel<Model> runs one sample at a time through `Model` (a ctnn::Sequential or Graph) using
// weights it does not own (typically the constexpr array of a header written by
// deploy/export.hpp, which the linker places in flash) and one array member for every activation
// and scratch buffer. Nothing is allocated, thrown or looked up at run time, so it builds with
// -fno-exceptions -fno-rtti for a bare-metal target; its size is known to the compiler:
//   weight_bytes   the parameters (arena_size values, read only)
//   buffer_bytes   activations and layer scratch for one sample (sizeof(StaticModel) adds a pointer)
// Declare it static (or global) on a microcontroller so the buffers land in .bss, not the stack.
// Thread safety: by design it owns its buffers (no heap, no thread_local), so predict() is not
// const and one StaticModel serves one thread (or one core) at a time; give each thread its own
// instance (the weights are shared, only the buffers are copied).
// This header includes the core and the layers only: no I/O, no zlib, no OpenMP needed.
#include <algorithm>
#include <cstddef>

// ---- begin ctnn/core/graph.hpp ----
// ctnn/core/graph.hpp: Graph<Input<...>, Specs...>, a model whose topology is a DAG, still a type.
//
//   struct Stem;  // any type names a tensor
//   using Net = ctnn::Graph<ctnn::Input<28, 28, 1>,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>, ctnn::ReLU, ctnn::Tag<Stem>,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>, ctnn::ReLU,
//       ctnn::Conv2D<16, 3, 3, 1, ctnn::Padding::same>,
//       ctnn::Add<Stem>, ctnn::ReLU, ctnn::Flatten, ctnn::Dense<10>, ctnn::Softmax>;
//
// The specs are read left to right with a CURRENT tensor (the input at first):
//   a layer spec (Dense<10>)      applies to the current tensor; its output becomes current
//   Tag<Name>                     names the current tensor (a later Tag of the same Name moves
//                                 the name)
//   From<Name>                    makes the named tensor current (to start a branch)
//   Add<Names...>                 current + the named tensors (same shape), left to right
//   Concatenate<Names...>         current, then the named tensors, along the last axis
//   Residual<Block<Body...>, Block<Shortcut...>>
//                                 body(x) + shortcut(x) of the current x (Block<> is the
//                                 identity), i.e. Tag, Body..., Tag, From, Shortcut..., Add
// The last spec's tensor is the output (one output), and every layer must reach it. The Graph
// lowers to the node list of core/model.hpp, the planner Sequential runs on too: same arena,
// same fusion (only where a producer has a single consumer), liveness-planned buffers.
// deploy/ takes Graphs as Sequentials: quantize (BatchNormalization folded), export_header (which
// writes the NodeGraph form below), StaticModel and StaticQuantizedModel.
#include <cstddef>
#include <tuple>
#include <type_traits>

// ---- begin ctnn/layers/add.hpp ----
// ctnn/layers/add.hpp: Add<Names...>, a join of a Graph (core/graph.hpp): y = x0 + x1 + ..., the
// current tensor first, then the named ones in order, summed left to right. Every input must have
// the same shape, which is also the output's. No parameters. Backward: each input's gradient is
// dy (a copy; the planner sums it into a tensor that fans out). A ReLU or ReLU6 right after it is
// fused into it, forward and backward.
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>


namespace ctnn {

// Named in the error when Add's inputs differ: Add_input_shapes_differ<first input, other input>.
template <class First, class Other>
struct Add_input_shapes_differ {
  static_assert(std::is_same_v<First, Other>,
                "Add sums tensors of one shape, but two of its inputs differ: the shapes are the "
                "two arguments of Add_input_shapes_differ<first input, other input>.");
  static constexpr bool value = std::is_same_v<First, Other>;
};

namespace detail {

template <class T, ShapeType First, ShapeType... Others>
struct AddJoin {
  static_assert(sizeof...(Others) >= 1, "Add needs at least one named tensor to add.");
  // Instantiates the named check (the Graph calls it once lowered, so the error is short).
  static constexpr bool verify() { return (Add_input_shapes_differ<First, Others>::value && ...); }
  using value_type = T;
  using output_shape = First;
  static constexpr bool is_join = true;
  // y[i] depends on x_k[i] alone (an elementwise sum): y may be the storage of input 0 or 1
  // (the int8 plan runs it in place where such an input dies here).
  static constexpr bool elementwise_in_place = true;
  static constexpr std::size_t arity = 1 + sizeof...(Others);
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "Add";
  static void init(T*, Rng&) {}
  // A ReLU (ReLU6) right after it runs in its store, and that ReLU's backward in its backward
  // (the planner passes `act`, core/model.hpp): the residual block's add-then-ReLU in one pass.
  static constexpr bool fuses_relu = true;
  static constexpr bool absorbs_activation_backward = true;
  // Samples in parallel for a large batch (each sample's values are summed alone: the same bits
  // at any thread count).
  static void forward(const T* const* xs, T* y, std::size_t n, Epilogue act = Epilogue::none) {
    parallel_for(n, [&](std::size_t s) {
      const T* in[arity];
      for (std::size_t k = 0; k < arity; ++k) in[k] = xs[k] + s * First::size;
      kernels::add_activate(First::size, in, arity, y + s * First::size, act);
    }, n * First::size >= kParallelWork);
  }
  static void backward(const T* dy, std::size_t, T* dx, std::size_t n) {
    std::memcpy(dx, dy, n * First::size * sizeof(T));
  }
  // With a fused activation: each input's gradient is dy masked by the stored output y.
  static void backward(const T* dy, std::size_t k, T* dx, std::size_t n, const T* y,
                       Epilogue act) {
    if (act == Epilogue::none) return backward(dy, k, dx, n);
    parallel_for(n, [&](std::size_t s) {
      const std::size_t o = s * First::size;
      if (act == Epilogue::relu)
        kernels::relu_backward(First::size, y + o, dy + o, dx + o);
      else
        kernels::bounded_relu_backward(First::size, y + o, dy + o, dx + o, T(6), T(0), T(0));
    }, n * First::size >= kParallelWork);
  }
};

}  // namespace detail

template <class... Names>
struct Add {
  template <class T, class... In>
  using bind_join = detail::AddJoin<T, In...>;
};

}  // namespace ctnn
// ---- end ctnn/layers/add.hpp ----
// ---- begin ctnn/layers/concatenate.hpp ----
// ctnn/layers/concatenate.hpp: Concatenate<Names...>, a join of a Graph (core/graph.hpp): the
// current tensor and the named ones, in that order, joined along the last axis (channels, for
// images), as Keras's Concatenate(axis=-1). Every input must agree on all other axes. No
// parameters. Backward: each input's gradient is its slice of dy.
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>


namespace ctnn {

namespace detail {
template <ShapeType S>
inline constexpr std::size_t last_axis = S::dims[S::rank - 1];
template <ShapeType S>
inline constexpr std::size_t leading_size = S::size / last_axis<S>;
template <ShapeType A, ShapeType B>
constexpr bool same_leading() {
  if (A::rank != B::rank) return false;
  for (std::size_t k = 0; k + 1 < A::rank; ++k)
    if (A::dims[k] != B::dims[k]) return false;
  return true;
}
template <ShapeType S, std::size_t Last, class Seq>
struct WithLast;
template <ShapeType S, std::size_t Last, std::size_t... K>
struct WithLast<S, Last, std::index_sequence<K...>> {
  using type = Shape<S::dims[K]..., Last>;
};
}  // namespace detail

// Named in the error when Concatenate's inputs disagree on an axis other than the last:
// Concatenate_inputs_differ_before_the_last_axis<first input, other input>.
template <class First, class Other>
struct Concatenate_inputs_differ_before_the_last_axis {
  static constexpr bool value = detail::same_leading<First, Other>();
  static_assert(value,
                "Concatenate joins tensors along the last axis, so they must agree on every other "
                "axis (and on rank), but two of its inputs do not: the shapes are the two "
                "arguments of Concatenate_inputs_differ_before_the_last_axis<first, other>.");
};

namespace detail {

template <class T, ShapeType First, ShapeType... Others>
struct ConcatenateJoin {
  static_assert(sizeof...(Others) >= 1, "Concatenate needs at least one named tensor to join.");
  // Instantiates the named check (the Graph calls it once lowered, so the error is short).
  static constexpr bool verify() {
    return (Concatenate_inputs_differ_before_the_last_axis<First, Others>::value && ...);
  }
  using value_type = T;
  static constexpr std::size_t arity = 1 + sizeof...(Others);
  static constexpr std::size_t rows = leading_size<First>;  // positions per sample
  static constexpr std::array<std::size_t, arity> width{last_axis<First>, last_axis<Others>...};
  static constexpr std::size_t total = (last_axis<First> + ... + last_axis<Others>);
  static constexpr std::array<std::size_t, arity> start = [] {
    std::array<std::size_t, arity> s{};
    for (std::size_t k = 1; k < arity; ++k) s[k] = s[k - 1] + width[k - 1];
    return s;
  }();
  using output_shape =
      typename WithLast<First, total, std::make_index_sequence<First::rank - 1>>::type;
  static constexpr bool is_join = true;
  static constexpr std::size_t param_count = 0, scratch_per_sample = 0;
  static constexpr std::string_view name = "Concatenate";
  static void init(T*, Rng&) {}
  static void forward(const T* const* xs, T* y, std::size_t n) {
    for (std::size_t k = 0; k < arity; ++k)
      for (std::size_t r = 0; r < n * rows; ++r)
        std::memcpy(y + r * total + start[k], xs[k] + r * width[k], width[k] * sizeof(T));
  }
  static void backward(const T* dy, std::size_t j, T* dx, std::size_t n) {
    for (std::size_t r = 0; r < n * rows; ++r)
      std::memcpy(dx + r * width[j], dy + r * total + start[j], width[j] * sizeof(T));
  }
};

}  // namespace detail

template <class... Names>
struct Concatenate {
  template <class T, class... In>
  using bind_join = detail::ConcatenateJoin<T, In...>;
};

}  // namespace ctnn
// ---- end ctnn/layers/concatenate.hpp ----

namespace ctnn {

template <class Name>
struct Tag {};
template <class Name>
struct From {};
template <class... Specs>
struct Block {};
template <class Body, class Shortcut = Block<>>
struct Residual {
  static_assert(sizeof(Body) == 0,
                "Residual takes two ctnn::Block<...> lists: Residual<Block<body...>, "
                "Block<shortcut...>> (an empty Block<> shortcut is the identity).");
};
template <class... Body, class... Shortcut>
struct Residual<Block<Body...>, Block<Shortcut...>> {};

// Named in the error when From, Add or Concatenate names a tensor no Tag named before. The
// check is a function whose address the lookup takes: its body (the error) is instantiated, while
// the lookup's value stays a constant, so no second error follows (with g++ or clang).
template <class Name>
struct No_tensor_is_tagged {
  static void check() {
    static_assert(detail::always_false_v<Name>,
                  "From, Add and Concatenate name a tensor tagged earlier with ctnn::Tag<Name>; the "
                  "Name in No_tensor_is_tagged<Name> has not been tagged before this point.");
  }
};

namespace detail {

template <class Name, std::size_t Id>
struct Binding {
  using name = Name;
  static constexpr std::size_t id = Id;
};

template <class Name, class Env>
struct LookupTensor;
template <class Name, class... B>
struct LookupTensor<Name, std::tuple<B...>> {
  static constexpr std::size_t found = [] {
    std::size_t r = ~std::size_t{0};
    ((r = std::is_same_v<Name, typename B::name> ? B::id : r), ...);
    return r;
  }();
  struct Tagged {
    static void check() {}
  };
  static constexpr void (*checked)() =
      &std::conditional_t<found != ~std::size_t{0}, Tagged, No_tensor_is_tagged<Name>>::check;
  static constexpr std::size_t value = found;
};

// The tensor tagged Name, or (after the error) the current one, so that no second error follows.
template <class Name, class Env, std::size_t Cur>
inline constexpr std::size_t tensor_of =
    (LookupTensor<Name, Env>::checked, LookupTensor<Name, Env>::value == ~std::size_t{0})
        ? Cur
        : LookupTensor<Name, Env>::value;

// The shape of tensor t (0 = the input) given the nodes so far.
template <std::size_t t, class In, class Nodes>
struct TensorShape {
  using type = typename std::tuple_element_t<t - 1, Nodes>::layer::output_shape;
};
template <class In, class Nodes>
struct TensorShape<0, In, Nodes> {
  using type = In;
};
template <std::size_t t, class In, class Nodes>
using tensor_shape = typename TensorShape<t, In, Nodes>::type;

template <class Residual, std::size_t Depth>
struct ResidualInput {};
template <class Residual, std::size_t Depth>
struct ResidualBody {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Specs>
struct LowerGraph {
  using nodes = Nodes;
  static constexpr std::size_t current = Cur;
};

template <class Nodes, class NewNode>
using append_node = decltype(std::tuple_cat(std::declval<Nodes>(), std::declval<std::tuple<NewNode>>()));

// A layer spec.
template <class T, class In, std::size_t Cur, class Env, class Nodes, class S, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, S, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename BindOne<S, tensor_shape<Cur, In, Nodes>, T>::type, Cur>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class Name, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Tag<Name>, Rest...>
    : LowerGraph<T, In, Cur,
                 decltype(std::tuple_cat(std::declval<Env>(), std::declval<std::tuple<Binding<Name, Cur>>>())),
                 Nodes, Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class Name, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, From<Name>, Rest...>
    : LowerGraph<T, In, tensor_of<Name, Env, Cur>, Env, Nodes, Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Names, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Add<Names...>, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename Add<Names...>::template bind_join<
                                             T, tensor_shape<Cur, In, Nodes>,
                                             tensor_shape<tensor_of<Names, Env, Cur>, In, Nodes>...>,
                                         Cur, tensor_of<Names, Env, Cur>...>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Names, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Concatenate<Names...>, Rest...>
    : LowerGraph<T, In, std::tuple_size_v<Nodes> + 1, Env,
                 append_node<Nodes, Node<typename Concatenate<Names...>::template bind_join<
                                             T, tensor_shape<Cur, In, Nodes>,
                                             tensor_shape<tensor_of<Names, Env, Cur>, In, Nodes>...>,
                                         Cur, tensor_of<Names, Env, Cur>...>>,
                 Rest...> {};

template <class T, class In, std::size_t Cur, class Env, class Nodes, class... Body,
          class... Shortcut, class... Rest>
struct LowerGraph<T, In, Cur, Env, Nodes, Residual<Block<Body...>, Block<Shortcut...>>, Rest...>
    : LowerGraph<T, In, Cur, Env, Nodes,
                 Tag<ResidualInput<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Body...,
                 Tag<ResidualBody<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 From<ResidualInput<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Shortcut...,
                 Add<ResidualBody<Residual<Block<Body...>, Block<Shortcut...>>, std::tuple_size_v<Nodes>>>,
                 Rest...> {};

template <class T, class In, class... Specs>
struct GraphBase {
  using lowered = LowerGraph<T, In, 0, std::tuple<>, std::tuple<>, Specs...>;
  using nodes = typename lowered::nodes;
  static_assert(std::tuple_size_v<nodes> >= 1, "A Graph model needs at least one layer after Input.");
  static_assert(std::tuple_size_v<nodes> == 0 || lowered::current == std::tuple_size_v<nodes>,
                "A Graph's output is its last spec's tensor, which must be the last layer's: end "
                "it with a layer, Add or Concatenate (not a From).");
  // The joins' shape checks, here rather than inside the lowering so their errors are short.
  template <class Node>
  static constexpr bool verify_node() {
    if constexpr (requires { Node::layer::verify(); }) return Node::layer::verify();
    else return true;
  }
  template <class... Ns>
  static constexpr bool verify(std::tuple<Ns...>*) {
    return (verify_node<Ns>() && ...);
  }
  static constexpr bool joins_ok = verify(static_cast<nodes*>(nullptr));
  using type = ModelCore<T, In, nodes, ModelStyle::functional>;
};

}  // namespace detail

template <class T, class InputSpec, class... Specs>
class BasicGraph {
  static_assert(sizeof(T) == 0, "A Graph model starts with ctnn::Input<dims...>, then its specs.");
};

template <class T, std::size_t... InDims, class... Specs>
class BasicGraph<T, Input<InDims...>, Specs...>
    : public detail::GraphBase<T, Shape<InDims...>, Specs...>::type {
  static_assert(detail::GraphBase<T, Shape<InDims...>, Specs...>::joins_ok || true);

 public:
  // The lowered model (its node list): the same type for a Graph and its NodeGraph form.
  using Base = typename detail::GraphBase<T, Shape<InDims...>, Specs...>::type;
  using Base::Base;
};

// A float graph: the type users write.
template <class InputSpec, class... Specs>
using Graph = BasicGraph<float, InputSpec, Specs...>;

// The same graphs written node by node, each naming the tensors it reads by number (0 the input,
// k + 1 the output of the k-th At): At<Spec, Inputs...> applies a layer spec to one tensor, or a
// join (Add<>, Concatenate<>) to several, in that order. The form export_header writes (tensor
// names are the user's own types and cannot be spelled in a generated header); a Graph and its
// node form lower to the same node list, so they share layout, topology() and topology_hash, and
// one's saved parameters load into the other.
//   using Net = ctnn::NodeGraph<ctnn::Input<8>, ctnn::At<ctnn::Dense<8>, 0>, ctnn::At<ctnn::ReLU, 1>,
//                               ctnn::At<ctnn::Add<>, 2, 0>, ctnn::At<ctnn::Dense<2>, 3>>;
template <class Spec, std::size_t... Inputs>
struct At {
  static_assert(sizeof...(Inputs) >= 1, "At<Spec, Inputs...> names at least one input tensor.");
};

// Named in the error when an At reads a tensor not computed before it.
template <std::size_t Node, std::size_t Tensor>
struct NodeGraph_reads_a_later_tensor {
  static constexpr bool value = false;
};

namespace detail {

template <class T, class In, class Nodes, class S, std::size_t... Ins>
struct BindAt;
template <class T, class In, class Nodes, class S, std::size_t I0>
struct BindAt<T, In, Nodes, S, I0> {
  using type = typename BindOne<S, tensor_shape<I0, In, Nodes>, T>::type;
};
template <class T, class In, class Nodes, class S, std::size_t I0, std::size_t I1, std::size_t... Is>
struct BindAt<T, In, Nodes, S, I0, I1, Is...> {
  using type = typename S::template bind_join<T, tensor_shape<I0, In, Nodes>,
                                              tensor_shape<I1, In, Nodes>, tensor_shape<Is, In, Nodes>...>;
};

template <class T, class In, class Nodes, class... Ats>
struct LowerNodes {
  using nodes = Nodes;
};
template <class T, class In, class Nodes, class S, std::size_t... Ins, class... Rest>
struct LowerNodes<T, In, Nodes, At<S, Ins...>, Rest...> {
  static constexpr std::size_t k = std::tuple_size_v<Nodes>;
  static constexpr bool ordered = [] {
    bool ok = true;
    ((ok = ok && (Ins <= k || NodeGraph_reads_a_later_tensor<k, Ins>::value)), ...);
    return ok;
  }();
  static_assert(ordered, "Each At<Spec, Inputs...> of a NodeGraph reads the input (0) or the output "
                         "of an earlier At (k + 1 for the k-th); the one named in "
                         "NodeGraph_reads_a_later_tensor<node, tensor> reads a later tensor.");
  using nodes = typename LowerNodes<T, In,
                                    append_node<Nodes, Node<typename BindAt<T, In, Nodes, S, (ordered ? Ins : 0)...>::type, Ins...>>,
                                    Rest...>::nodes;
};

template <class T, class In, class... Ats>
struct NodeGraphBase {
  using nodes = typename LowerNodes<T, In, std::tuple<>, Ats...>::nodes;
  static_assert(std::tuple_size_v<nodes> >= 1, "A NodeGraph needs at least one At after Input.");
  template <class... Ns>
  static constexpr bool verify(std::tuple<Ns...>*) {
    return ([] {
      if constexpr (requires { Ns::layer::verify(); }) return Ns::layer::verify();
      else return true;
    }() && ...);
  }
  static constexpr bool joins_ok = verify(static_cast<nodes*>(nullptr));
  using type = ModelCore<T, In, nodes, ModelStyle::functional>;
};

}  // namespace detail

template <class T, class InputSpec, class... Ats>
class BasicNodeGraph {
  static_assert(sizeof(T) == 0, "A NodeGraph starts with ctnn::Input<dims...>, then its At<...> nodes.");
};
template <class T, std::size_t... InDims, class... Ats>
class BasicNodeGraph<T, Input<InDims...>, Ats...>
    : public detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::type {
  static_assert(detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::joins_ok || true);

 public:
  using Base = typename detail::NodeGraphBase<T, Shape<InDims...>, Ats...>::type;
  using Base::Base;
};
template <class InputSpec, class... Ats>
using NodeGraph = BasicNodeGraph<float, InputSpec, Ats...>;

}  // namespace ctnn
// ---- end ctnn/core/graph.hpp ----
// ---- begin ctnn/layers/batch_norm.hpp ----
// ctnn/layers/batch_norm.hpp: BatchNormalization<Momentum, Epsilon>, batch normalization as in
// Keras (axis -1: per channel after Conv2D, per feature after Dense).
//
// Represents, for each channel c of the last axis (C channels; the m = n x positions values of a
// channel in a batch of n samples are its population):
//   training:  y = gamma[c] * (x - mean_B[c]) / sqrt(var_B[c] + Epsilon) + beta[c], where
//              mean_B and var_B are the batch's mean and BIASED variance (divided by m, not m - 1,
//              as Keras's ops.moments; PyTorch uses m - 1 in its moving variance, Keras does not),
//              and then the moving averages become
//                moving_mean = moving_mean * Momentum + mean_B * (1 - Momentum)
//                moving_var  = moving_var  * Momentum + var_B  * (1 - Momentum)
//              (Keras 3's BatchNormalization.call, which updates them only in training).
//   inference: y = gamma[c] * (x - moving_mean[c]) / sqrt(moving_var[c] + Epsilon) + beta[c];
//              the moving averages are read, never written.
// Requires: an input of any rank (the last axis holds the channels); 0 <= Momentum <= 1;
// Epsilon > 0. Momentum and Epsilon are ctnn::Real (millionths, since clang 14 takes no float
// template parameters), so Epsilon's resolution is 1e-6. Defaults: Keras's, 0.99 and 1e-3.
// Output shape: the input's. Parameters (trainable, Keras's order): gamma [C] (init ones), then
// beta [C] (init zeros): param_count = 2C. State (non-trainable, never stepped by an optimizer):
// moving mean [C] (init zeros), then moving variance [C] (init ones): state_count = 2C. Keras's
// summary counts 4C parameters, 2C of them non-trainable.
//
// The contract differs from core/layer.hpp's Layer in one place: forward takes the state
//     forward(params, state, x, y, n, scratch, ctx)
// (the planner's state arena hands each stateful layer its slice), and both forward and backward
// take a fused ReLU/ReLU6 as the template argument Act (none by default). backward is the usual one;
// it reads x, and y only to mask dy by a fused ReLU's output (fuses_relu below); after a training
// forward it is the full gradient through the batch statistics (mean_B and var_B depend on every
// x of the batch); after an inference forward it is
// the gradient with the moving statistics held fixed (a frozen BatchNormalization, as Keras runs
// one whose trainable is false).
//
// How: scratch per sample is [batch statistics 2C | partial sums 2C]; the batch statistics (the
// mean and 1/sqrt(var + Epsilon) that normalized the batch, kept for backward) live in sample 0's
// part only. Each sample's per-channel sums over its positions go to its own partial slot, in
// parallel, and the slots are then added in sample order: the results are the same bits at any
// thread count. The variance takes a second pass over x, with the mean subtracted first (no
// E[x^2] - E[x]^2 cancellation). A NaN input makes its channel's batch mean NaN, so in training
// the whole channel of the batch (and its moving averages) becomes NaN, as in Keras; in inference
// only the outputs it reaches are NaN.
#include <cmath>
#include <cstddef>
#include <string>

// ---- begin ctnn/kernels/batch_norm.hpp ----
// ctnn/kernels/batch_norm.hpp: the per-channel passes of batch normalization.
//
// Every kernel works on `rows` rows of C channels (x[r * C + c], channels last, as one sample of
// an H x W x C image or a batch of feature vectors is laid out) and is vectorized along the
// channels: a vector holds L neighbouring channels, so a channel's constants (mean, inverse
// standard deviation, gamma, beta) are loaded once per block and stay in registers for the whole
// row loop. Rows are visited in order, so a per-channel sum has one fixed order. The body of each
// kernel is written once as a generic lambda over a Highway tag: full vectors use the native tag,
// the channel tail a one-lane tag (no scalar copy of the math to drift out of sync).
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Calls f(d, c) for each block of channels starting at c: full vectors, then the tail one lane at
// a time.
template <class T, class F>
HWY_INLINE void for_channel_blocks(std::size_t channels, F f) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = channels - channels % L;  // (c + L <= channels) trips a g++ 12 warning
  std::size_t c = 0;
  for (; c < full; c += L) f(d, c);
  const hn::CappedTag<T, 1> d1;
  for (; c < channels; ++c) f(d1, c);
}

// out[c] = sum over rows r of (x[r][c] - mean[c])^2, rows in order (the variance's numerator, the
// second of two passes: subtracting the mean first keeps the sum accurate when |mean| >> std).
template <class T>
void bn_squared_deviations(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                           const T* HWY_RESTRICT mean, T* HWY_RESTRICT out) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    auto s = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) {
      const auto v = hn::Sub(hn::LoadU(d, x + r * channels + c), m);
      s = hn::MulAdd(v, v, s);
    }
    hn::StoreU(s, d, out + c);
  });
}

// The activation a ReLU (or ReLU6) fused into the normalization applies as it stores, and the
// gradient mask its backward applies from that stored output y, as the ReLU layers' own passes
// do (kernels/elementwise.hpp, activations.hpp): ReLU passes dy where y > 0 (and where y is NaN),
// ReLU6 where 0 < y < 6.
// (NaN passes, as in the ReLU layers and the GEMM epilogue: no Max, which drops NaN on x86.)
template <Epilogue Act, class D, class V>
HWY_INLINE V bn_activate(D d, V v) {
  using T = hn::TFromD<D>;
  if constexpr (Act == Epilogue::relu) {
    return hn::IfThenZeroElse(v <= hn::Zero(d), v);
  } else if constexpr (Act == Epilogue::relu6) {
    const auto six = hn::Set(d, T(6));
    return hn::IfThenElse(v >= six, six, hn::IfThenZeroElse(v < hn::Zero(d), v));
  } else {
    return v;
  }
}
template <Epilogue Act, class D, class V, class T>
HWY_INLINE V bn_masked(D d, V g, const T* HWY_RESTRICT y, std::size_t i) {
  if constexpr (Act == Epilogue::none) {
    (void)y, (void)i;
    return g;
  } else {
    const auto yv = hn::LoadU(d, y + i);
    if constexpr (Act == Epilogue::relu) return hn::IfThenZeroElse(yv <= hn::Zero(d), g);
    else return hn::IfThenZeroElse(hn::Or(yv <= hn::Zero(d), yv >= hn::Set(d, hn::TFromD<D>(6))), g);
  }
}

// y[r][c] = act((x[r][c] - mean[c]) * (inv_std[c] * gamma[c]) + beta[c]), act a fused ReLU or
// ReLU6 or none. y may be x.
template <Epilogue Act = Epilogue::none, class T>
void bn_normalize(std::size_t rows, std::size_t channels, const T* x, const T* HWY_RESTRICT mean,
                  const T* HWY_RESTRICT inv_std, const T* HWY_RESTRICT gamma,
                  const T* HWY_RESTRICT beta, T* y) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    const auto scale = hn::Mul(hn::LoadU(d, inv_std + c), hn::LoadU(d, gamma + c));
    const auto b = hn::LoadU(d, beta + c);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = r * channels + c;
      hn::StoreU(bn_activate<Act>(d, hn::MulAdd(hn::Sub(hn::LoadU(d, x + i), m), scale, b)), d,
                 y + i);
    }
  });
}

// The two sums of the backward pass, rows in order:
//   sum_dy[c] = sum_r dy[r][c]            (beta's gradient)
//   sum_dy_xhat[c] = sum_r dy[r][c] * (x[r][c] - mean[c]) * inv_std[c]   (gamma's gradient)
// (the product with inv_std is taken once, after the sum). With a fused activation Act, dy is the
// gradient of the activation's output y and is masked by it first (bn_masked).
template <Epilogue Act = Epilogue::none, class T>
void bn_backward_sums(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                      const T* HWY_RESTRICT y, const T* HWY_RESTRICT dy, const T* HWY_RESTRICT mean,
                      const T* HWY_RESTRICT inv_std, T* HWY_RESTRICT sum_dy,
                      T* HWY_RESTRICT sum_dy_xhat) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto m = hn::LoadU(d, mean + c);
    auto s = hn::Zero(d), sx = hn::Zero(d);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = r * channels + c;
      const auto g = bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i);
      s = hn::Add(s, g);
      sx = hn::MulAdd(g, hn::Sub(hn::LoadU(d, x + i), m), sx);
    }
    hn::StoreU(s, d, sum_dy + c);
    hn::StoreU(hn::Mul(sx, hn::LoadU(d, inv_std + c)), d, sum_dy_xhat + c);
  });
}

// The input gradient. With batch statistics (BatchStats), where the mean and variance are
// functions of every x of the batch (count values per channel):
//   dx = gamma * inv_std * (dy - (sum_dy + x_hat * sum_dy_xhat) / count),
//   x_hat = (x - mean) * inv_std;
// with fixed statistics (inference, the moving averages): dx = gamma * inv_std * dy, and
// sum_dy, sum_dy_xhat and count are not read. With a fused activation Act, dy is masked by y
// first, as in bn_backward_sums.
template <bool BatchStats, Epilogue Act = Epilogue::none, class T>
void bn_backward_dx(std::size_t rows, std::size_t channels, const T* HWY_RESTRICT x,
                    const T* HWY_RESTRICT y, const T* HWY_RESTRICT dy, const T* HWY_RESTRICT mean,
                    const T* HWY_RESTRICT inv_std, const T* HWY_RESTRICT gamma,
                    const T* HWY_RESTRICT sum_dy, const T* HWY_RESTRICT sum_dy_xhat, T count,
                    T* HWY_RESTRICT dx) {
  for_channel_blocks<T>(channels, [&](auto d, std::size_t c) {
    const auto is = hn::LoadU(d, inv_std + c);
    const auto scale = hn::Mul(is, hn::LoadU(d, gamma + c));
    if constexpr (BatchStats) {
      const auto m = hn::LoadU(d, mean + c);
      const auto inv_count = hn::Set(d, T(1) / count);
      const auto a = hn::Mul(hn::LoadU(d, sum_dy + c), inv_count);       // mean of dy
      const auto k = hn::Mul(hn::LoadU(d, sum_dy_xhat + c), inv_count);  // mean of dy * x_hat
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t i = r * channels + c;
        const auto xhat = hn::Mul(hn::Sub(hn::LoadU(d, x + i), m), is);
        // dy - a - x_hat * k
        const auto g = bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i);
        const auto inner = hn::NegMulAdd(xhat, k, hn::Sub(g, a));
        hn::StoreU(hn::Mul(scale, inner), d, dx + i);
      }
    } else {
      (void)x, (void)mean, (void)sum_dy, (void)sum_dy_xhat, (void)count;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t i = r * channels + c;
        hn::StoreU(hn::Mul(scale, bn_masked<Act>(d, hn::LoadU(d, dy + i), y, i)), d, dx + i);
      }
    }
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::bn_backward_dx;
using ctnn::HWY_NAMESPACE::bn_backward_sums;
using ctnn::HWY_NAMESPACE::bn_normalize;
using ctnn::HWY_NAMESPACE::bn_squared_deviations;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/batch_norm.hpp ----

namespace ctnn {

template <Real Momentum = 0.99, Real Epsilon = 0.001>
struct BatchNormalization {
  static_assert(Momentum.value() >= 0.0 && Momentum.value() <= 1.0,
                "BatchNormalization's momentum must be in [0, 1] (Keras's default is 0.99).");
  static_assert(Epsilon.value() > 0.0,
                "BatchNormalization's epsilon must be positive, and at least 1e-6 (the resolution "
                "of ctnn::Real); Keras's default is 1e-3.");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank >= 1, "BatchNormalization needs an input with at least one axis.");
    using value_type = T;
    using input_shape = In;
    using output_shape = In;
    static constexpr std::size_t channels = In::dims[In::rank - 1];  // C, the last axis
    static constexpr std::size_t positions = In::size / channels;    // values of a channel per sample
    static constexpr std::size_t param_count = 2 * channels;         // gamma, beta
    static constexpr std::size_t state_count = 2 * channels;         // moving mean, moving variance
    static constexpr std::size_t partial_offset = 2 * channels;
    static constexpr std::size_t scratch_per_sample = 4 * channels;
    static constexpr double momentum = Momentum.value();
    static constexpr double epsilon = Epsilon.value();
    static constexpr std::string_view name = "BatchNormalization";
    static constexpr LayerKind kind = LayerKind::batch_norm;
    // A ReLU or ReLU6 right after it (and read by nothing else) runs in its normalization's store,
    // and that ReLU's backward in its backward, which masks dy by the stored output y: the
    // planner names the activation as the template argument Act of both (core/model.hpp,
    // absorbs_activation_backward).
    static constexpr bool fuses_relu = true;
    static constexpr bool absorbs_activation_backward = true;
    static constexpr bool is_view = false;
    static std::string config() {
      return "momentum " + std::to_string(momentum) + ", epsilon " + std::to_string(epsilon);
    }
    static std::string spec() {
      return "ctnn::BatchNormalization<" + std::to_string(momentum) + ", " +
             std::to_string(epsilon) + ">";
    }

    static void init(T* p, Rng&) {
      for (std::size_t c = 0; c < channels; ++c) p[c] = T(1), p[channels + c] = T(0);
    }
    static void init_state(T* state) {
      for (std::size_t c = 0; c < channels; ++c) state[c] = T(0), state[channels + c] = T(1);
    }

    template <Epilogue Act = Epilogue::none>
    static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      if (n == 0) return;
      T* mean = scratch;
      T* inv_std = scratch + channels;
      const bool wide = n * In::size >= kParallelWork;
      if (ctx.training) {
        const T count = static_cast<T>(n * positions);
        // Pass 1: the mean.
        parallel_for(n, [&](std::size_t s) {
          kernels::sum_rows(positions, channels, x + s * In::size, partial(scratch, s));
        }, wide);
        sum_over_samples(scratch, n, 0, mean);
        for (std::size_t c = 0; c < channels; ++c) mean[c] /= count;
        // Pass 2: the biased variance (into inv_std until the state has it).
        parallel_for(n, [&](std::size_t s) {
          kernels::bn_squared_deviations(positions, channels, x + s * In::size, mean,
                                         partial(scratch, s) + channels);
        }, wide);
        sum_over_samples(scratch, n, channels, inv_std);
        // (1 - Momentum) is taken in double and rounded once, as Keras's Python float is.
        const T keep = static_cast<T>(momentum), take = static_cast<T>(1.0 - momentum);
        for (std::size_t c = 0; c < channels; ++c) {
          const T var = inv_std[c] / count;
          state[c] = state[c] * keep + mean[c] * take;
          state[channels + c] = state[channels + c] * keep + var * take;
          inv_std[c] = T(1) / std::sqrt(var + static_cast<T>(epsilon));
        }
      } else {
        for (std::size_t c = 0; c < channels; ++c) {
          mean[c] = state[c];
          inv_std[c] = T(1) / std::sqrt(state[channels + c] + static_cast<T>(epsilon));
        }
      }
      parallel_for(n, [&](std::size_t s) {
        kernels::bn_normalize<Act>(positions, channels, x + s * In::size, mean, inv_std, p,
                                   p + channels, y + s * In::size);
      }, wide);
    }

    template <Epilogue Act = Epilogue::none>
    static void backward(const T* p, const T* x, const T* y, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      T* dgamma = dp;
      T* dbeta = dp + channels;
      if (n == 0) {
        for (std::size_t i = 0; i < param_count; ++i) dp[i] = T(0);
        return;
      }
      const T* mean = scratch;
      const T* inv_std = scratch + channels;
      const bool wide = n * In::size >= kParallelWork;
      parallel_for(n, [&](std::size_t s) {
        T* part = partial(scratch, s);
        kernels::bn_backward_sums<Act>(positions, channels, x + s * In::size, y + s * In::size,
                                       dy + s * In::size, mean, inv_std, part, part + channels);
      }, wide);
      sum_over_samples(scratch, n, 0, dbeta);
      sum_over_samples(scratch, n, channels, dgamma);
      if (!dx) return;
      const T count = static_cast<T>(n * positions);
      parallel_for(n, [&](std::size_t s) {
        const std::size_t o = s * In::size;
        if (ctx.training)
          kernels::bn_backward_dx<true, Act>(positions, channels, x + o, y + o, dy + o, mean,
                                             inv_std, p, dbeta, dgamma, count, dx + o);
        else
          kernels::bn_backward_dx<false, Act>(positions, channels, x + o, y + o, dy + o, mean,
                                              inv_std, p, dbeta, dgamma, count, dx + o);
      }, wide);
    }

   private:
    static T* partial(T* scratch, std::size_t s) {
      return scratch + s * scratch_per_sample + partial_offset;
    }
    // out[c] = sum over samples s, in order, of partial slot s at [offset + c].
    static void sum_over_samples(T* scratch, std::size_t n, std::size_t offset, T* out) {
      for (std::size_t c = 0; c < channels; ++c) out[c] = partial(scratch, 0)[offset + c];
      for (std::size_t s = 1; s < n; ++s) {
        const T* part = partial(scratch, s) + offset;
        for (std::size_t c = 0; c < channels; ++c) out[c] += part[c];
      }
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/batch_norm.hpp ----
// ---- begin ctnn/layers/conv1d.hpp ----
// ctnn/layers/conv1d.hpp: Conv1D<Filters, K, Stride, Padding, Dilation, KernelInit, BiasInit,
// Groups>, a 1-D convolution over sequences.
//
// Represents y[t][f] = b[f] + sum_{k,c} x[t*S + k*D - pl][g*C/G + c] * W[k][c][f] over a
// Steps x C input (time, channels), with g = f / (Filters/G): Keras's Conv1D with padding valid,
// same or causal (Dilation*(K-1) zeros before the sequence, so output t sees inputs <= t), and
// dilation_rate D. Padding::pads(t, b, l, r) pads l before and r after (t and b are ignored).
// Requires: a rank-2 input (Input<Steps, C>); C and Filters divisible by G; for valid padding, a
// dilated kernel D*(K-1)+1 no longer than the sequence.
// Output shape: Shape<OT, Filters>. Parameters: W in Keras's [K][C/G][Filters] order, then
// b [Filters]. Init: fan_in = K*C/G, fan_out = K*Filters (Keras's); defaults Glorot uniform W,
// zero b.
// How: Conv2D's implementation (layers/conv2d.hpp) on a 1 x Steps image with a 1 x K kernel, so
// the same GEMMs, the same thread-count-independent weight gradient and the same scratch.
#include <cstddef>
#include <string>


namespace ctnn {
namespace detail {
// Conv1D's padding as the 2-D padding of a 1-row image: causal is K-1 dilated taps on the left.
constexpr Padding conv1d_padding(Padding p, std::size_t k, std::size_t dilation) {
  if (p.mode == Padding::Mode::causal) return Padding::pads(0, 0, dilation * (k - 1), 0);
  if (p.mode == Padding::Mode::explicit_pads) return Padding::pads(0, 0, p.left, p.right);
  return p;
}
}  // namespace detail

template <std::size_t Filters, std::size_t K, std::size_t Stride = 1,
          Padding Pad = Padding::valid, std::size_t Dilation = 1,
          class KernelInit = init::GlorotUniform, class BiasInit = init::Zeros,
          std::size_t Groups = 1>
struct Conv1D {
  static_assert(Filters >= 1 && K >= 1 && Stride >= 1 && Dilation >= 1 && Groups >= 1,
                "Conv1D needs at least one filter, a kernel of at least 1, and a stride, dilation "
                "and groups >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "Conv1D's KernelInit and BiasInit must be initializers such as ctnn::init::HeNormal "
                "(the list is in ctnn/core/init.hpp).");
  static_assert(Filters % (Groups == 0 ? 1 : Groups) == 0,
                "Conv1D's Filters must be a multiple of its Groups (each group has as many "
                "filters).");
  static constexpr Padding kPad2D = detail::conv1d_padding(Pad, K, Dilation);

  template <ShapeType In, class T>
  struct bind : detail::ConvBody<T, 1, In::dims[0], (In::rank > 1 ? In::dims[1] : 1), Filters, 1,
                                 K, Stride, kPad2D, Dilation, Groups, KernelInit, BiasInit> {
    using body = detail::ConvBody<T, 1, In::dims[0], (In::rank > 1 ? In::dims[1] : 1), Filters, 1,
                                  K, Stride, kPad2D, Dilation, Groups, KernelInit, BiasInit>;
    static_assert(In::rank == 2,
                  "Conv1D needs a sequence input of rank 2 (steps, channels): use "
                  "Input<Steps, C> (the shapes are in bind<...> above).");
    static_assert(In::rank != 2 || body::C % Groups == 0,
                  "Conv1D's input channels must be a multiple of its Groups (the shapes are in "
                  "bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 2 || geom::fits,
                  "Conv1D's dilated kernel is longer than its input with valid padding: use a "
                  "smaller kernel or Padding::same / Padding::causal (the shapes are in bind<...> "
                  "above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::ow, Filters>;
    static constexpr std::string_view name = "Conv1D";
    static constexpr LayerKind kind = LayerKind::conv1d;
    static std::string config() {
      std::string s = std::to_string(K) + " stride " + std::to_string(Stride) + " " +
                      detail::padding_config(Pad);
      if (Dilation != 1) s += " dilation " + std::to_string(Dilation);
      if (Groups != 1) s += " groups " + std::to_string(Groups);
      return s;
    }
    static std::string spec() {
      std::string s = "ctnn::Conv1D<" + std::to_string(Filters) + ", " + std::to_string(K) + ", " +
                      std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
                      std::to_string(Dilation);
      if (Groups != 1)
        s += ", " + std::string(KernelInit::spec) + ", " + std::string(BiasInit::spec) + ", " +
             std::to_string(Groups);
      else
        s += detail::init_spec<KernelInit, BiasInit>();
      return s + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      body::forward(p, x, y, n, scratch, act);
    }
    static void backward(const T* p, const T*, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T* scratch, const PassContext&) {
      body::backward(p, dy, dx, dp, n, scratch);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/conv1d.hpp ----
// ---- begin ctnn/layers/depthwise_conv2d.hpp ----
// ctnn/layers/depthwise_conv2d.hpp: DepthwiseConv2D<KH, KW, Stride, Padding, DepthMultiplier,
// Dilation, KernelInit, BiasInit>, a convolution of each channel on its own.
//
// Represents y[oy][ox][c*M + m] = b[c*M + m] + sum_{ky,kx} x[oy*S + ky*D - pt][ox*S + kx*D - pl][c]
// * W[ky][kx][c][m] over an H x W x C input (channels last), M = DepthMultiplier: Keras's
// DepthwiseConv2D with depth_multiplier M and dilation_rate D. Padding: valid, same, same_lower or
// explicit pads (layers/spatial.hpp).
// Requires: a rank-3 input; for valid padding, a dilated kernel no larger than the input.
// Output shape: Shape<OH, OW, C*M>. Parameters: W in Keras's [KH][KW][C][M] order, then b [C*M]:
// KH*KW*C*M + C*M. Init: KernelInit fills W, BiasInit b, with Keras's fans of that kernel shape,
// fan_in = KH*KW*C and fan_out = KH*KW*M; defaults Glorot uniform W and zero b.
//
// How: W's [C][M] block of a tap is one contiguous row of C*M weights, one per output channel,
// so every tap is a multiply-add along the output channels (kernels/depthwise.hpp, vectorized
// with Highway). With M > 1 each input pixel is first repeated into C*M channels (scratch), which
// makes the input row line up with the weights. Forward and input gradient run samples in
// parallel; the weight and bias gradients run channel blocks in parallel, each summed over
// samples and positions in order, so they do not depend on the thread count and need no
// per-sample copy.
#include <cstddef>
#include <string>
#include <utility>

// ---- begin ctnn/kernels/depthwise.hpp ----
// ctnn/kernels/depthwise.hpp: the per-channel products behind DepthwiseConv2D.
//
//   mul_add_row: out[j] = a[j] * b[j] + out[j] for j < n   (one fused multiply-add per element)
//
// A depthwise convolution is, at each output position and tap, this product along the channels
// (input row at that tap x the tap's weights), so it vectorizes along the channels, which are
// contiguous in channels-last images. Full vectors use the native tag and the tail a one-lane tag
// with the same MulAdd, so an element's result does not depend on whether it fell in a vector or
// the tail: a caller may split the channels among threads anywhere and get the same bits.
#include <cstddef>


HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class T>
void mul_add_row(std::size_t n, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                 T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = n - n % L;  // (j + L <= n) trips a false g++ 12 warning when inlined
  std::size_t j = 0;
  for (; j < full; j += L)
    hn::StoreU(hn::MulAdd(hn::LoadU(d, a + j), hn::LoadU(d, b + j), hn::LoadU(d, out + j)), d,
               out + j);
  const hn::CappedTag<T, 1> d1;
  for (; j < n; ++j)
    hn::StoreU(hn::MulAdd(hn::LoadU(d1, a + j), hn::LoadU(d1, b + j), hn::LoadU(d1, out + j)), d1,
               out + j);
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::mul_add_row;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/depthwise.hpp ----

namespace ctnn {
namespace detail {

// The depthwise computation over an H x W x C image, with or without a bias (SeparableConv2D's
// depthwise step has none).
template <class T, std::size_t H, std::size_t W, std::size_t C, std::size_t M, std::size_t KH,
          std::size_t KW, std::size_t Stride, Padding Pad, std::size_t Dilation, bool HasBias>
struct DepthwiseBody {
  using geom = Window2D<H, W, C, KH, KW, Stride, Pad, Dilation>;
  static constexpr std::size_t CM = C * M;
  static constexpr std::size_t in_size = H * W * C;
  static constexpr std::size_t positions = geom::oh * geom::ow;
  static constexpr std::size_t out_size = positions * CM;
  static constexpr std::size_t weights = KH * KW * CM;
  static constexpr std::size_t param_count = weights + (HasBias ? CM : 0);
  // The input repeated to C*M channels (M > 1 only), kept for the weight gradient; the backward
  // pass then reuses it for the repeated input gradient.
  static constexpr std::size_t scratch_per_sample = M > 1 ? H * W * CM : 0;
  // Channels per parallel chunk of the weight gradient: whole 64-byte lines, so two threads never
  // write the same line.
  static constexpr std::size_t kChannelBlock = 64 / sizeof(T);

  // Calls f(tap, input pixel) for each tap of window (oy, ox) that lies inside the input.
  template <class F>
  static void for_taps(std::size_t oy, std::size_t ox, F&& f) {
    geom::for_taps(oy, ox, std::forward<F>(f));
  }

  // The input of sample s as C*M channels per pixel: x itself when M = 1.
  static const T* repeated(const T* x, T* scratch, std::size_t s) {
    const T* xs = x + s * in_size;
    if constexpr (M == 1) {
      return xs;
    } else {
      T* r = scratch + s * scratch_per_sample;
      for (std::size_t i = 0; i < H * W * C; ++i)
        for (std::size_t m = 0; m < M; ++m) r[i * M + m] = xs[i];
      return r;
    }
  }

  static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                      kernels::Epilogue act) {
    parallel_for(n, [&](std::size_t s) {
      const T* xr = repeated(x, scratch, s);
      T* ys = y + s * out_size;
      for (std::size_t oy = 0; oy < geom::oh; ++oy)
        for (std::size_t ox = 0; ox < geom::ow; ++ox) {
          T* out = ys + (oy * geom::ow + ox) * CM;
          for (std::size_t j = 0; j < CM; ++j) out[j] = HasBias ? p[weights + j] : T(0);
          for_taps(oy, ox, [&](std::size_t tap, std::size_t pixel) {
            kernels::mul_add_row(CM, xr + pixel * CM, p + tap * CM, out);
          });
        }
      if (act == kernels::Epilogue::relu)  // v <= 0 is false for NaN, which stays
        for (std::size_t i = 0; i < out_size; ++i) ys[i] = ys[i] <= T(0) ? T(0) : ys[i];
    }, n * out_size * KH * KW >= kParallelWork);
  }

  // dy: n x out_size. Writes dp (weights, then the bias if any) and, unless null, dx.
  static void backward(const T* p, const T* x, const T* dy, T* dx, T* dp, std::size_t n,
                       T* scratch) {
    // For M = 1 the input is read where it is; for M > 1 the forward pass left it repeated in
    // scratch (forward always precedes backward).
    const auto xr = [&](std::size_t s) {
      return M == 1 ? x + s * in_size : scratch + s * scratch_per_sample;
    };
    const std::size_t blocks = (CM + kChannelBlock - 1) / kChannelBlock;
    parallel_for_range(blocks, [&](std::size_t b0, std::size_t b1) {
      const std::size_t j0 = b0 * kChannelBlock, j1 = b1 * kChannelBlock < CM ? b1 * kChannelBlock : CM;
      const std::size_t len = j1 - j0;
      for (std::size_t t = 0; t < KH * KW; ++t)
        for (std::size_t j = j0; j < j1; ++j) dp[t * CM + j] = T(0);
      if constexpr (HasBias)
        for (std::size_t j = j0; j < j1; ++j) dp[weights + j] = T(0);
      for (std::size_t s = 0; s < n; ++s) {
        const T* xs = xr(s);
        for (std::size_t pos = 0; pos < positions; ++pos) {
          const T* g = dy + s * out_size + pos * CM + j0;
          if constexpr (HasBias)
            for (std::size_t j = 0; j < len; ++j) dp[weights + j0 + j] += g[j];
          for_taps(pos / geom::ow, pos % geom::ow, [&](std::size_t tap, std::size_t pixel) {
            kernels::mul_add_row(len, xs + pixel * CM + j0, g, dp + tap * CM + j0);
          });
        }
      }
    }, n * out_size * KH * KW >= kParallelWork);
    if (!dx) return;
    parallel_for(n, [&](std::size_t s) {
      // The gradient of the repeated input (over the repeated input itself, no longer needed),
      // then summed over the M copies of each channel.
      T* dxr = M == 1 ? dx + s * in_size : scratch + s * scratch_per_sample;
      for (std::size_t i = 0; i < H * W * CM; ++i) dxr[i] = T(0);
      const T* dys = dy + s * out_size;
      for (std::size_t pos = 0; pos < positions; ++pos)
        for_taps(pos / geom::ow, pos % geom::ow, [&](std::size_t tap, std::size_t pixel) {
          kernels::mul_add_row(CM, p + tap * CM, dys + pos * CM, dxr + pixel * CM);
        });
      if constexpr (M > 1) {
        T* dxs = dx + s * in_size;
        for (std::size_t i = 0; i < H * W * C; ++i) {
          T sum = T(0);
          for (std::size_t m = 0; m < M; ++m) sum += dxr[i * M + m];
          dxs[i] = sum;
        }
      }
    }, n * out_size * KH * KW >= kParallelWork);
  }
};

}  // namespace detail

template <std::size_t KH, std::size_t KW, std::size_t Stride = 1, Padding Pad = Padding::valid,
          std::size_t DepthMultiplier = 1, std::size_t Dilation = 1,
          class KernelInit = init::GlorotUniform, class BiasInit = init::Zeros>
struct DepthwiseConv2D {
  static_assert(KH >= 1 && KW >= 1 && Stride >= 1 && DepthMultiplier >= 1 && Dilation >= 1,
                "DepthwiseConv2D needs a kernel of at least 1x1 and a stride, depth multiplier "
                "and dilation >= 1.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<BiasInit>,
                "DepthwiseConv2D's KernelInit and BiasInit must be initializers such as "
                "ctnn::init::HeNormal (the list is in ctnn/core/init.hpp).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a DepthwiseConv2D takes valid, same, same_lower "
                "or pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind : detail::DepthwiseBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                      (In::rank > 2 ? In::dims[2] : 1), DepthMultiplier, KH, KW,
                                      Stride, Pad, Dilation, true> {
    using body = detail::DepthwiseBody<T, In::dims[0], (In::rank > 1 ? In::dims[1] : 1),
                                       (In::rank > 2 ? In::dims[2] : 1), DepthMultiplier, KH, KW,
                                       Stride, Pad, Dilation, true>;
    static_assert(In::rank == 3,
                  "DepthwiseConv2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    using geom = typename body::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "DepthwiseConv2D's kernel is larger than its input with valid padding (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t C = In::rank > 2 ? In::dims[2] : 1;

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, body::CM>;
    static constexpr std::string_view name = "DepthwiseConv2D";
    static constexpr LayerKind kind = LayerKind::depthwise_conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (DepthMultiplier != 1 ? " multiplier " + std::to_string(DepthMultiplier)
                                   : std::string());
    }
    static std::string spec() {
      return "ctnn::DepthwiseConv2D<" + std::to_string(KH) + ", " + std::to_string(KW) + ", " +
             std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
             std::to_string(DepthMultiplier) + ", " + std::to_string(Dilation) +
             detail::init_spec<KernelInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      KernelInit::fill(p, body::weights, KH * KW * C, KH * KW * DepthMultiplier, rng);
      BiasInit::fill(p + body::weights, body::CM, KH * KW * C, KH * KW * DepthMultiplier, rng);
    }
    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      body::forward(p, x, y, n, scratch, act);
    }
    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      body::backward(p, x, dy, dx, dp, n, scratch);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/depthwise_conv2d.hpp ----
// ---- begin ctnn/layers/random_flip.hpp ----
// ctnn/layers/random_flip.hpp: RandomFlip<Mode>, Keras's RandomFlip preprocessing layer.
//
// Represents, in training, y = x flipped left-right (horizontal: along the width) and/or
// upside-down (vertical: along the height), each with probability 1/2, drawn per sample;
// in inference, y = x. Mode: FlipMode::horizontal, vertical or horizontal_and_vertical (Keras's
// default). Requires a rank-3 input (height, width, channels). Output shape: the input's. No
// parameters. The flips of sample s in a step come from Rng(step seed, s) alone, so a seeded run
// flips the same samples at any thread count; they are kept in scratch (2 values a sample) and
// backward sends each gradient back through the same flip (a permutation: dx = flip(dy)).
#include <cstring>
#include <string>


namespace ctnn {

enum class FlipMode { horizontal, vertical, horizontal_and_vertical };

template <FlipMode Mode = FlipMode::horizontal_and_vertical>
struct RandomFlip {
  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, 2> {
    static_assert(In::rank == 3,
                  "RandomFlip needs an image input of rank 3 (height, width, channels): use "
                  "Input<H, W, C> (the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::string_view name = "RandomFlip";
    // y = x in inference: the int8 plan (deploy/static_quantized.hpp) makes it a view.
    static constexpr bool identity_in_inference = true;
    static std::string config() {
      return Mode == FlipMode::horizontal ? "horizontal"
             : Mode == FlipMode::vertical ? "vertical" : "horizontal_and_vertical";
    }
    static std::string spec() { return "ctnn::RandomFlip<ctnn::FlipMode::" + config() + ">"; }

    // y[i][j] = x[flip_v ? H-1-i : i][flip_h ? W-1-j : j] over sample `from` into `to`; the map
    // is its own inverse, so backward uses it on dy.
    static void flip(const T* from, T* to, bool fh, bool fv) {
      for (std::size_t i = 0; i < H; ++i) {
        const std::size_t si = fv ? H - 1 - i : i;
        for (std::size_t j = 0; j < W; ++j) {
          const std::size_t sj = fh ? W - 1 - j : j;
          std::memcpy(to + (i * W + j) * C, from + (si * W + sj) * C, C * sizeof(T));
        }
      }
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T* flags,
                        const PassContext& ctx) {
      if (!ctx.training) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < 2 * n; ++i) flags[i] = T(0);
        return;
      }
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0xD1B54A32D192ED03ull + s);
        const bool fh = Mode != FlipMode::vertical && rng.uniform01() < 0.5;
        const bool fv = Mode != FlipMode::horizontal && rng.uniform01() < 0.5;
        flags[2 * s] = fh ? T(1) : T(0);
        flags[2 * s + 1] = fv ? T(1) : T(0);
        flip(x + s * In::size, y + s * In::size, fh, fv);
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* flags, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        flip(dy + s * In::size, dx + s * In::size, flags[2 * s] != T(0), flags[2 * s + 1] != T(0));
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/random_flip.hpp ----
// ---- begin ctnn/layers/random_translation.hpp ----
// ctnn/layers/random_translation.hpp: RandomTranslation<HeightFactor, WidthFactor, Fill>, Keras's
// RandomTranslation preprocessing layer with interpolation "nearest".
//
// Represents, in training, y[i][j] = x[i - dy][j - dx] for whole-pixel shifts
// dy = round(u * H), u uniform in [-HeightFactor, HeightFactor], and dx = round(v * W), v uniform
// in [-WidthFactor, WidthFactor], drawn per sample; in inference, y = x. Pixels read from outside
// the image follow Fill: TranslationFill::reflect (Keras's default, "d c b a | a b c d | d c b a":
// the edge pixel repeats) or TranslationFill::constant (zeros, Keras's fill_value 0). Keras's
// default interpolation "bilinear" would shift by fractions of a pixel; this layer rounds the
// shift to whole pixels, as Keras's interpolation="nearest" does.
// Requires a rank-3 input (height, width, channels) and factors in [0, 1] (fractions of the size,
// written as Real like Dropout's rate: RandomTranslation<0.1, 0.1>). Output shape: the input's.
// No parameters. The shifts of sample s in a step come from Rng(step seed, s) alone, so a seeded
// run shifts alike at any thread count; they are kept in scratch (2 values a sample) and backward
// adds each output gradient into the input pixel it was read from (reflection can read one pixel
// several times; constant fill reads none from outside).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>


namespace ctnn {

enum class TranslationFill { reflect, constant };

template <Real HeightFactor, Real WidthFactor, TranslationFill Fill = TranslationFill::reflect>
struct RandomTranslation {
  static_assert(HeightFactor.value() >= 0.0 && HeightFactor.value() <= 1.0 &&
                    WidthFactor.value() >= 0.0 && WidthFactor.value() <= 1.0,
                "RandomTranslation's height and width factors must be fractions in [0, 1].");

  template <ShapeType In, class T>
  struct bind : detail::ParamFree<In, T, 2> {
    static_assert(In::rank == 3,
                  "RandomTranslation needs an image input of rank 3 (height, width, channels): "
                  "use Input<H, W, C> (the shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1;
    static constexpr std::string_view name = "RandomTranslation";
    // y = x in inference: the int8 plan (deploy/static_quantized.hpp) makes it a view.
    static constexpr bool identity_in_inference = true;
    static std::string config() {
      return "height " + std::to_string(HeightFactor.value()) + ", width " +
             std::to_string(WidthFactor.value()) +
             (Fill == TranslationFill::reflect ? ", reflect" : ", constant");
    }
    static std::string spec() {
      return "ctnn::RandomTranslation<" + std::to_string(HeightFactor.value()) + ", " +
             std::to_string(WidthFactor.value()) +
             (Fill == TranslationFill::reflect ? "" : ", ctnn::TranslationFill::constant") + ">";
    }

    // The index in [0, n) that position r reads, or -1 (constant fill) for none.
    static std::int64_t source(std::int64_t r, std::int64_t n) {
      if (r >= 0 && r < n) return r;
      if constexpr (Fill == TranslationFill::constant) {
        return -1;
      } else {
        std::int64_t m = r % (2 * n);
        if (m < 0) m += 2 * n;
        return m < n ? m : 2 * n - 1 - m;
      }
    }
    // A shift of u * size pixels for u uniform in [-f, f], rounded half away from zero.
    static std::int64_t draw_shift(Rng& rng, double f, std::size_t size) {
      const double u = -f + 2 * f * rng.uniform01();
      return std::int64_t(std::lround(u * double(size)));
    }

    static void forward(const T*, const T* x, T* y, std::size_t n, T* shifts,
                        const PassContext& ctx) {
      if (!ctx.training) {
        if (y != x) std::memcpy(y, x, n * In::size * sizeof(T));
        for (std::size_t i = 0; i < 2 * n; ++i) shifts[i] = T(0);
        return;
      }
      parallel_for(n, [&](std::size_t s) {
        Rng rng(ctx.seed * 0x8CB92BA72F3D8DD7ull + s);
        const std::int64_t dy = draw_shift(rng, HeightFactor.value(), H);
        const std::int64_t dx = draw_shift(rng, WidthFactor.value(), W);
        shifts[2 * s] = T(dy);
        shifts[2 * s + 1] = T(dx);
        const T* xs = x + s * In::size;
        T* ys = y + s * In::size;
        for (std::size_t i = 0; i < H; ++i) {
          const std::int64_t si = source(std::int64_t(i) - dy, std::int64_t(H));
          for (std::size_t j = 0; j < W; ++j) {
            const std::int64_t sj = source(std::int64_t(j) - dx, std::int64_t(W));
            T* out = ys + (i * W + j) * C;
            if (si < 0 || sj < 0)
              for (std::size_t c = 0; c < C; ++c) out[c] = T(0);
            else
              std::memcpy(out, xs + (std::size_t(si) * W + std::size_t(sj)) * C, C * sizeof(T));
          }
        }
      }, n * In::size >= kParallelWork);
    }
    static void backward(const T*, const T*, const T*, const T* dy, T* dx, T*, std::size_t n,
                         T* shifts, const PassContext&) {
      if (!dx) return;
      parallel_for(n, [&](std::size_t s) {
        const std::int64_t sy = std::int64_t(shifts[2 * s]), sx = std::int64_t(shifts[2 * s + 1]);
        const T* g = dy + s * In::size;
        T* d = dx + s * In::size;
        for (std::size_t i = 0; i < In::size; ++i) d[i] = T(0);
        for (std::size_t i = 0; i < H; ++i) {
          const std::int64_t si = source(std::int64_t(i) - sy, std::int64_t(H));
          for (std::size_t j = 0; j < W; ++j) {
            const std::int64_t sj = source(std::int64_t(j) - sx, std::int64_t(W));
            if (si < 0 || sj < 0) continue;
            T* to = d + (std::size_t(si) * W + std::size_t(sj)) * C;
            const T* from = g + (i * W + j) * C;
            for (std::size_t c = 0; c < C; ++c) to[c] += from[c];
          }
        }
      }, n * In::size >= kParallelWork);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/random_translation.hpp ----
// ---- begin ctnn/layers/separable_conv2d.hpp ----
// ctnn/layers/separable_conv2d.hpp: SeparableConv2D<Filters, KH, KW, Stride, Padding,
// DepthMultiplier, Dilation, DepthwiseInit, PointwiseInit, BiasInit>, a depthwise convolution
// followed by a 1x1 convolution.
//
// Represents z = DepthwiseConv2D<KH, KW, Stride, Padding, M, Dilation>(x) without its bias, then
// y[oy][ox][f] = b[f] + sum_j z[oy][ox][j] * P[j][f] over the C*M channels j of z: Keras's
// SeparableConv2D with depth_multiplier M and dilation_rate D.
// Requires: a rank-3 input; for valid padding, a dilated kernel no larger than the input.
// Output shape: Shape<OH, OW, Filters>. Parameters in Keras's order: the depthwise kernel
// [KH][KW][C][M], the pointwise kernel [1][1][C*M][Filters], the bias [Filters]:
// KH*KW*C*M + C*M*Filters + Filters. Init (Keras's fans of each kernel shape): DepthwiseInit with
// fan_in = KH*KW*C, fan_out = KH*KW*M; PointwiseInit with fan_in = C*M, fan_out = Filters;
// BiasInit with the pointwise fans. Defaults Glorot uniform, Glorot uniform, zeros.
//
// How: the depthwise step of layers/depthwise_conv2d.hpp, its output z kept in scratch for all
// samples back to back, then the pointwise step as one GEMM over every position of the batch
// (bias and ReLU fused into its store). Backward: the pointwise kernel gradient is one GEMM over
// all positions (threads own disjoint filter columns), so no gradient is kept per sample and the
// result does not depend on the thread count; dz per sample, written over z; then the depthwise
// backward.
#include <cstddef>
#include <string>
#include <type_traits>


namespace ctnn {

template <std::size_t Filters, std::size_t KH, std::size_t KW, std::size_t Stride = 1,
          Padding Pad = Padding::valid, std::size_t DepthMultiplier = 1, std::size_t Dilation = 1,
          class DepthwiseInit = init::GlorotUniform, class PointwiseInit = init::GlorotUniform,
          class BiasInit = init::Zeros>
struct SeparableConv2D {
  static_assert(Filters >= 1 && KH >= 1 && KW >= 1 && Stride >= 1 && DepthMultiplier >= 1 &&
                    Dilation >= 1,
                "SeparableConv2D needs at least one filter, a kernel of at least 1x1 and a "
                "stride, depth multiplier and dilation >= 1.");
  static_assert(is_initializer_v<DepthwiseInit> && is_initializer_v<PointwiseInit> &&
                    is_initializer_v<BiasInit>,
                "SeparableConv2D's DepthwiseInit, PointwiseInit and BiasInit must be initializers "
                "such as ctnn::init::HeNormal (the list is in ctnn/core/init.hpp).");
  static_assert(Pad.mode != Padding::Mode::causal,
                "Padding::causal is for Conv1D; a SeparableConv2D takes valid, same, same_lower "
                "or pads(t, b, l, r).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 3,
                  "SeparableConv2D needs an image input of rank 3 (height, width, channels) (the "
                  "shapes are in bind<...> above).");
    static constexpr std::size_t H = In::dims[0], W = In::rank > 1 ? In::dims[1] : 1,
                                 C = In::rank > 2 ? In::dims[2] : 1, M = DepthMultiplier;
    using dw = detail::DepthwiseBody<T, H, W, C, M, KH, KW, Stride, Pad, Dilation, false>;
    using geom = typename dw::geom;
    static_assert(In::rank != 3 || geom::fits,
                  "SeparableConv2D's kernel is larger than its input with valid padding (the "
                  "shapes are in bind<...> above).");

    using value_type = T;
    using input_shape = In;
    using output_shape = Shape<geom::oh, geom::ow, Filters>;
    static constexpr std::size_t CM = dw::CM, positions = dw::positions;
    static constexpr std::size_t depthwise_weights = dw::weights;
    static constexpr std::size_t pointwise_weights = CM * Filters;
    static constexpr std::size_t param_count = depthwise_weights + pointwise_weights + Filters;
    // Scratch for n samples: z of all samples back to back (the pointwise GEMMs read it as one
    // matrix), then from the next line each sample's gemm_nt accumulators, then the depthwise
    // step's scratch. Per sample, plus a line of slack for each rounding.
    static constexpr std::size_t kLine = 64 / sizeof(T);
    static constexpr std::size_t line_up(std::size_t v) { return (v + kLine - 1) / kLine * kLine; }
    static constexpr std::size_t z_floats = positions * CM;
    static constexpr std::size_t dz_rows = detail::nt_chunk_rows<T>(positions);
    static constexpr std::size_t acc_floats = line_up(kernels::gemm_nt_scratch<T>(dz_rows, CM));
    static constexpr std::size_t scratch_per_sample =
        z_floats + acc_floats + dw::scratch_per_sample + 2 * kLine;
    static T* acc_region(T* scratch, std::size_t n) { return scratch + line_up(n * z_floats); }
    static T* dw_region(T* scratch, std::size_t n) {
      return acc_region(scratch, n) + n * acc_floats;
    }
    static constexpr std::string_view name = "SeparableConv2D";
    static constexpr LayerKind kind = LayerKind::separable_conv2d;
    static std::string config() {
      return detail::window_config(KH, KW, Stride, Pad, Dilation) +
             (M != 1 ? " multiplier " + std::to_string(M) : std::string());
    }
    static std::string spec() {
      std::string s = "ctnn::SeparableConv2D<" + std::to_string(Filters) + ", " +
                      std::to_string(KH) + ", " + std::to_string(KW) + ", " +
                      std::to_string(Stride) + ", " + detail::padding_spec(Pad) + ", " +
                      std::to_string(M) + ", " + std::to_string(Dilation);
      if constexpr (!std::is_same_v<DepthwiseInit, init::GlorotUniform> ||
                    !std::is_same_v<PointwiseInit, init::GlorotUniform> ||
                    !std::is_same_v<BiasInit, init::Zeros>)
        s += ", " + std::string(DepthwiseInit::spec) + ", " + std::string(PointwiseInit::spec) +
             ", " + std::string(BiasInit::spec);
      return s + ">";
    }
    static constexpr bool fuses_relu = true;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) {
      DepthwiseInit::fill(p, depthwise_weights, KH * KW * C, KH * KW * M, rng);
      PointwiseInit::fill(p + depthwise_weights, pointwise_weights, CM, Filters, rng);
      BiasInit::fill(p + depthwise_weights + pointwise_weights, Filters, CM, Filters, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&, kernels::Epilogue act = kernels::Epilogue::none) {
      T* z = scratch;
      dw::forward(p, x, z, n, dw_region(scratch, n), kernels::Epilogue::none);
      const T* P = p + depthwise_weights;
      kernels::gemm_nn(n * positions, Filters, CM, z, CM, 1, P, Filters, y, Filters, false,
                       P + pointwise_weights, act);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      T* z = scratch;
      const T* P = p + depthwise_weights;
      // dP[CM x Filters] = z^T dy and db over all n * positions rows, in row order.
      kernels::gemm_nn(CM, Filters, n * positions, z, 1, CM, dy, Filters, dp + depthwise_weights,
                       Filters, false, static_cast<const T*>(nullptr), kernels::Epilogue::none);
      kernels::sum_rows(n * positions, Filters, dy, dp + depthwise_weights + pointwise_weights);
      // dz_s[positions x CM] = dy_s P^T, over z_s (used above).
      parallel_for(n, [&](std::size_t s) {
        detail::gemm_nt_chunked<dz_rows>(positions, CM, Filters, dy + s * output_shape::size,
                                         Filters, P, Filters, z + s * z_floats, CM,
                                         acc_region(scratch, n) + s * acc_floats);
      }, n * positions * CM * Filters >= kParallelWork);
      dw::backward(p, x, z, dx, dp, n, dw_region(scratch, n));
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/separable_conv2d.hpp ----
// ---- begin ctnn/layers/embedding.hpp ----
// ctnn/layers/embedding.hpp: Embedding<Vocab, Dim, Init>, integer tokens to vectors, as Keras's
// Embedding.
//
// Represents y[t] = E[x[t]] for each position t of a sequence of token ids x (Shape<Steps>, or
// any shape: every input value is one token): output Shape<Steps, Dim> (the input's dimensions
// followed by Dim).
// Requires: each input value is a whole number in [0, Vocab), carried in the float input (exact
// for every id below 2^24, which Vocab may not exceed); anything else (a fraction, a negative
// id, NaN, an id >= Vocab) stops forward with a ctnn::Error naming the sample, the position and
// the value.
// Parameters: the table E [Vocab x Dim], Keras's `embeddings`. Init: Keras's default, uniform on
// [-0.05, 0.05] (init::EmbeddingUniform); any initializer may replace it (fan_in = Vocab,
// fan_out = Dim).
// Backward: dE[v] = sum of dy over every position whose token is v, in sample and position order
// (the same bits at any thread count); the input has no gradient (dx, when asked for, is zero).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>


namespace ctnn {
namespace init {
// Keras's Embedding default: uniform on [-0.05, 0.05].
struct EmbeddingUniform {
  static constexpr std::string_view spec = "ctnn::init::EmbeddingUniform";
  template <class T>
  static void fill(T* w, std::size_t count, std::size_t, std::size_t, Rng& rng) {
    detail::uniform(w, count, 0.05, rng);
  }
};
}  // namespace init

template <std::size_t Vocab, std::size_t Dim, class Init = init::EmbeddingUniform>
struct Embedding {
  static_assert(Vocab >= 1 && Dim >= 1, "Embedding<Vocab, Dim> needs a vocabulary and a dimension of at least 1.");
  static_assert(Vocab <= (std::size_t{1} << 24),
                "Embedding's token ids travel in the float input, which holds every whole number "
                "only up to 2^24: a vocabulary above 16,777,216 tokens cannot be carried exactly.");
  static_assert(is_initializer_v<Init>,
                "Embedding's Init must be an initializer such as ctnn::init::EmbeddingUniform (the "
                "list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    template <class S>
    struct append;
    template <std::size_t... D>
    struct append<Shape<D...>> {
      using type = Shape<D..., Dim>;
    };
    using value_type = T;
    using input_shape = In;
    using output_shape = typename append<In>::type;
    static constexpr std::size_t positions = In::size;
    static constexpr std::size_t param_count = Vocab * Dim;
    static constexpr std::size_t scratch_per_sample = 0;
    static constexpr std::string_view name = "Embedding";
    static constexpr LayerKind kind = LayerKind::embedding;
    static std::string config() { return std::to_string(Vocab) + "x" + std::to_string(Dim); }
    static std::string spec() {
      std::string s = "ctnn::Embedding<" + std::to_string(Vocab) + ", " + std::to_string(Dim);
      if constexpr (!std::is_same_v<Init, init::EmbeddingUniform>) s.append(", ").append(Init::spec);
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static void init(T* p, Rng& rng) { Init::fill(p, Vocab * Dim, Vocab, Dim, rng); }
    // One position at a time (deploy/streaming.hpp): the same table on a one-token input.
    using step = typename Embedding::template bind<Shape<1>, T>;

    // The token id at x[i], checked (i = sample * positions + position).
    static std::size_t token(const T* x, std::size_t i) {
      const T v = x[i];
      if (!(v >= T(0) && v < T(Vocab) && std::floor(v) == v))
        fail("Embedding<", Vocab, ", ", Dim, ">: sample ", i / positions, " position ",
             i % positions, " holds ", v, ", which is not a token id (a whole number in [0, ",
             Vocab, ")).");
      return static_cast<std::size_t>(v);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T*, const PassContext&) {
      for (std::size_t i = 0; i < n * positions; ++i) {
        const T* row = p + token(x, i) * Dim;
        std::copy(row, row + Dim, y + i * Dim);
      }
    }

    static void backward(const T*, const T* x, const T*, const T* dy, T* dx, T* dp, std::size_t n,
                         T*, const PassContext&) {
      std::fill(dp, dp + param_count, T(0));
      for (std::size_t i = 0; i < n * positions; ++i) {
        T* row = dp + static_cast<std::size_t>(x[i]) * Dim;  // checked by forward
        const T* g = dy + i * Dim;
        for (std::size_t k = 0; k < Dim; ++k) row[k] += g[k];
      }
      if (dx) std::fill(dx, dx + n * positions, T(0));
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/embedding.hpp ----
// ---- begin ctnn/layers/layer_norm.hpp ----
// ctnn/layers/layer_norm.hpp: LayerNormalization<Epsilon>, as Keras's (axis -1).
//
// Represents, for each position of the input (every index but the last axis) with its C values
// x[0..C) along the last axis:
//   mean = (1/C) sum x,  var = (1/C) sum (x - mean)^2   (biased, as Keras)
//   y = gamma * (x - mean) / sqrt(var + Epsilon) + beta
// the same in training and inference (nothing depends on the batch).
// Requires: an input of any rank; Epsilon > 0, a ctnn::Real (millionths), Keras's default 1e-3.
// Output shape: the input's. Parameters (Keras's order): gamma [C] (init ones), beta [C] (init
// zeros).
// How: each position's statistics come from two passes over its C values (the mean subtracted
// before squaring); forward keeps the mean and 1/sqrt(var + Epsilon) of each position in scratch for
// backward, which is
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma,  xhat = (x - mean) * rstd
// and dgamma = sum dy * xhat, dbeta = sum dy over every position of the batch, in sample and
// position order (the same bits at any thread count; samples run in parallel, the parameter
// sums afterwards in order).
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {

template <Real Epsilon = 0.001>
struct LayerNormalization {
  static_assert(Epsilon.value() > 0.0,
                "LayerNormalization's epsilon must be positive, and at least 1e-6 (the resolution "
                "of ctnn::Real); Keras's default is 1e-3.");

  template <ShapeType In, class T>
  struct bind {
    using value_type = T;
    using input_shape = In;
    using output_shape = In;
    static constexpr std::size_t C = In::dims[In::rank - 1];
    static constexpr std::size_t positions = In::size / C;
    static constexpr std::size_t param_count = 2 * C;
    static constexpr std::size_t scratch_per_sample = 2 * positions;  // mean, rstd
    static constexpr std::string_view name = "LayerNormalization";
    static constexpr LayerKind kind = LayerKind::layer_norm;
    static std::string spec() {
      return "ctnn::LayerNormalization<" + std::to_string(Epsilon.value()) + ">";
    }
    static std::string config() { return "epsilon " + std::to_string(Epsilon.value()); }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    // One step of a sequence (deploy/streaming.hpp): each position is normalized alone.
    using step = typename LayerNormalization::template bind<Shape<C>, T>;

    static void init(T* p, Rng&) {
      for (std::size_t c = 0; c < C; ++c) {
        p[c] = T(1);
        p[C + c] = T(0);
      }
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const T eps = static_cast<T>(Epsilon.value());
      parallel_for(
          n * positions,
          [&](std::size_t r) {
            const T* xr = x + r * C;
            T* yr = y + r * C;
            T mean = 0;
            for (std::size_t c = 0; c < C; ++c) mean += xr[c];
            mean /= T(C);
            T var = 0;
            for (std::size_t c = 0; c < C; ++c) var += (xr[c] - mean) * (xr[c] - mean);
            var /= T(C);
            const T rstd = T(1) / std::sqrt(var + eps);
            scratch[2 * r] = mean;
            scratch[2 * r + 1] = rstd;
            for (std::size_t c = 0; c < C; ++c) yr[c] = p[c] * ((xr[c] - mean) * rstd) + p[C + c];
          },
          n * In::size >= kParallelWork);
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      if (dx)
        parallel_for(
            n * positions,
            [&](std::size_t r) {
              const T* xr = x + r * C;
              const T* g = dy + r * C;
              const T mean = scratch[2 * r], rstd = scratch[2 * r + 1];
              T mg = 0, mgx = 0;
              for (std::size_t c = 0; c < C; ++c) {
                const T gc = g[c] * p[c];
                mg += gc;
                mgx += gc * ((xr[c] - mean) * rstd);
              }
              mg /= T(C);
              mgx /= T(C);
              for (std::size_t c = 0; c < C; ++c) {
                const T xhat = (xr[c] - mean) * rstd;
                dx[r * C + c] = rstd * (g[c] * p[c] - mg - xhat * mgx);
              }
            },
            n * In::size >= kParallelWork);
      for (std::size_t c = 0; c < 2 * C; ++c) dp[c] = T(0);
      for (std::size_t r = 0; r < n * positions; ++r) {
        const T* xr = x + r * C;
        const T mean = scratch[2 * r], rstd = scratch[2 * r + 1];
        for (std::size_t c = 0; c < C; ++c) {
          dp[c] += dy[r * C + c] * ((xr[c] - mean) * rstd);
          dp[C + c] += dy[r * C + c];
        }
      }
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/layer_norm.hpp ----
// ---- begin ctnn/layers/time_distributed.hpp ----
// ctnn/layers/time_distributed.hpp: TimeDistributed<Spec>, a layer applied to every step of a
// sequence with the same weights, as Keras's TimeDistributed.
//
// Represents y[t] = Inner(x[t]) for each step t of an input Shape<Steps, D...>, where Inner is
// Spec bound to one step's shape Shape<D...>: output Shape<Steps, Inner's output dims...>.
// Requires: a rank-2 or higher input; Spec a plain layer (Dense, an activation, Dropout, ...:
// not a stateful or join layer).
// Parameters: Inner's (Keras's TimeDistributed adds none), in its layout.
// How: the steps of n samples are n * Steps rows of Inner's input, contiguous already, so Inner
// runs once on them (one GEMM for a Dense) and its backward sums the weight gradients over every
// sample and step in that order: the same bits at any thread count.
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {
namespace detail {
template <class S>
struct TailShape;
template <std::size_t First, std::size_t... Rest>
struct TailShape<Shape<First, Rest...>> {
  using type = Shape<Rest...>;
};
template <std::size_t Steps, class S>
struct PrependShape;
template <std::size_t Steps, std::size_t... D>
struct PrependShape<Steps, Shape<D...>> {
  using type = Shape<Steps, D...>;
};
}  // namespace detail

template <class Spec>
struct TimeDistributed {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank >= 2,
                  "TimeDistributed needs a sequence input of rank 2 or more (steps first): the "
                  "shapes are in bind<...> above.");
    using inner = typename Spec::template bind<typename detail::TailShape<In>::type, T>;
    static_assert(Layer<inner>,
                  "TimeDistributed wraps a plain layer (Dense, an activation, Dropout): a stateful "
                  "or join layer cannot run step by step.");
    static constexpr std::size_t steps = In::dims[0];
    using value_type = T;
    using input_shape = In;
    using output_shape = typename detail::PrependShape<steps, typename inner::output_shape>::type;
    static constexpr std::size_t param_count = inner::param_count;
    static constexpr std::size_t scratch_per_sample = steps * inner::scratch_per_sample;
    static constexpr std::string_view name = "TimeDistributed";
    static std::string spec() {
      if constexpr (requires { inner::spec(); })
        return "ctnn::TimeDistributed<" + inner::spec() + ">";
      else  // a built-in layer without settings is spelled by its name (deploy/export.hpp)
        return "ctnn::TimeDistributed<ctnn::" + std::string(inner::name) + ">";
    }
    static std::string config() { return std::string(inner::name); }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;
    // One step (deploy/streaming.hpp): the inner layer itself.
    using step = inner;

    static void init(T* p, Rng& rng) { inner::init(p, rng); }
    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      inner::forward(p, x, y, n * steps, scratch, ctx);
    }
    static void backward(const T* p, const T* x, const T* y, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      inner::backward(p, x, y, dy, dx, dp, n * steps, scratch, ctx);
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/time_distributed.hpp ----
// ---- begin ctnn/layers/gru.hpp ----
// ctnn/layers/gru.hpp: GRU<Units, ReturnSequences, KernelInit, RecurrentInit, BiasInit>, a gated
// recurrent unit layer over sequences, as Keras's GRU (reset_after = True, its default).
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = 0, gates in Keras's order z, r, h:
//   x* = x_t W + b_input,  q* = h_{t-1} R + b_recurrent        (3 Units each)
//   z = sigmoid(xz + qz),  r = sigmoid(xr + qr),  hh = tanh(xh + r * qh)
//   h_t = z * h_{t-1} + (1 - z) * hh
// PyTorch's nn.GRU computes the same with its gates reordered (r, z, n): weight_ih = W^T and
// weight_hh = R^T with the first two blocks of Units swapped, bias_ih = b_input, bias_hh =
// b_recurrent (swapped likewise). Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences
// every h_t (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features>.
// Parameters in Keras's layout and order: kernel W [Features x 3 Units], recurrent_kernel
// R [Units x 3 Units], bias [2 x 3 Units] (the input bias, then the recurrent bias); 3 Units
// (Features + Units + 2) in all, as Keras counts. Init: Keras's defaults, Glorot uniform W
// (fan_in = Features, fan_out = 3 Units), orthogonal R, zero biases.
// How: as LSTM (layers/lstm.hpp), with the recurrent product kept apart from the input side's
// (reset_after multiplies it by r): one GEMM per step and sample block for h_{t-1} R + b_recurrent,
// the input products and the weight gradients as GEMMs over all samples and steps
// (layers/recurrent_base.hpp): the same bits at any thread count.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

// ---- begin ctnn/kernels/recurrent.hpp ----
// ctnn/kernels/recurrent.hpp: the elementwise cell updates of the recurrent layers, one sample's
// row of one time step, vectorized along the units.
//
//   lstm_cell_forward   Keras's LSTM cell (gate order i, f, c, o; sigmoid gates, tanh cell):
//                         i = s(z_i), f = s(z_f), g = tanh(z_c), o = s(z_o)
//                         c = f * c_prev + i * g,  h = o * tanh(c)
//   lstm_cell_backward  the same cell's gradient: from dh (the output's gradient plus the next
//                       step's recurrent gradient) and dc (the next step's cell gradient) to the
//                       gates' pre-activation gradient dz and the previous cell's gradient.
//
//   gru_cell_forward    Keras's GRU cell with reset_after (its default; PyTorch's nn.GRU): gate
//                       order z, r, h;  z = s(xz + qz), r = s(xr + qr), hh = tanh(xh + r * qh),
//                         h = z * h_prev + (1 - z) * hh
//                       where x* = x W + b_input and q* = h_prev R + b_recurrent
//   gru_cell_backward   its gradient, to the input side's and the recurrent side's
//                       pre-activations and the direct part of dh_prev (dh * z)
//   rnn_cell_forward    SimpleRNN: h = tanh(z), z = x W + h_prev R + b
//   rnn_cell_backward   dz = (dy + dh_next) * (1 - h^2)
//
// Each element goes through the same operations in the same order whatever the row, batch or
// thread split, so a recurrent layer built on them trains to the same bits at any thread count.
// The sigmoid is kernels::sigmoid_of (exact at both tails, NaN kept), tanh Highway's Tanh.
#include <cstddef>

#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Units [j0, j1) of one LSTM cell, with tag d (a full vector, or one lane for the tail).
template <class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_cell_forward_lanes(D d, std::size_t j, std::size_t U, T* HWY_RESTRICT z,
                                        const T* HWY_RESTRICT c_prev, T* HWY_RESTRICT c,
                                        T* HWY_RESTRICT tc, T* HWY_RESTRICT h,
                                        T* HWY_RESTRICT h2) {
  const auto i = sigmoid_of(d, hn::LoadU(d, z + j));
  const auto f = sigmoid_of(d, hn::LoadU(d, z + U + j));
  const auto g = hn::Tanh(d, hn::LoadU(d, z + 2 * U + j));
  const auto o = sigmoid_of(d, hn::LoadU(d, z + 3 * U + j));
  hn::StoreU(i, d, z + j);
  hn::StoreU(f, d, z + U + j);
  hn::StoreU(g, d, z + 2 * U + j);
  hn::StoreU(o, d, z + 3 * U + j);
  // c = f * c_prev + i * g; at the first step c_prev is zero and the product is left out.
  const auto ig = hn::Mul(i, g);
  const auto cv = c_prev ? hn::MulAdd(f, hn::LoadU(d, c_prev + j), ig) : ig;
  const auto t = hn::Tanh(d, cv);
  const auto hv = hn::Mul(o, t);
  hn::StoreU(cv, d, c + j);
  hn::StoreU(t, d, tc + j);
  hn::StoreU(hv, d, h + j);
  if (h2) hn::StoreU(hv, d, h2 + j);
}

// One row of one step. z[4U]: the gates' pre-activations (x W + h_prev U + b), replaced by their
// activations i, f, g, o (kept for backward). c_prev[U] is the previous cell state, or null at the
// first step (zero). Writes c[U], tc[U] = tanh(c), h[U] and, unless null, a copy of h into h2[U].
template <class T>
void lstm_cell_forward(std::size_t U, T* HWY_RESTRICT z, const T* HWY_RESTRICT c_prev,
                       T* HWY_RESTRICT c, T* HWY_RESTRICT tc, T* HWY_RESTRICT h,
                       T* HWY_RESTRICT h2) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) lstm_cell_forward_lanes(d, j, U, z, c_prev, c, tc, h, h2);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) lstm_cell_forward_lanes(d1, j, U, z, c_prev, c, tc, h, h2);
}

// CH chunks of L units (starting at unit j) of one LSTM step of one row, products and cell fused:
// each gate column of z = (x W + b) + h_prev R is summed in a register exactly as gemm_nn sums it
// (x W from zero with k in order, then the bias, then h_prev R with k in order; a stored and
// reloaded float is the same float), and the cell is lstm_cell_forward_lanes's operations on
// those values. W [F x 4U], R [U x 4U], b [4U]; c [U] is read and replaced, h_new [U] written.
template <std::size_t CH, class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_step_chunks(D d, std::size_t j, std::size_t F, std::size_t U,
                                 const T* HWY_RESTRICT x, const T* HWY_RESTRICT W,
                                 const T* HWY_RESTRICT b, const T* HWY_RESTRICT h,
                                 const T* HWY_RESTRICT R, T* HWY_RESTRICT c,
                                 T* HWY_RESTRICT h_new) {
  using V = hn::Vec<D>;
  const std::size_t L = hn::Lanes(d), G = 4 * U;
  V acc[CH][4];
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q)
    HWY_UNROLL(4)
    for (std::size_t g = 0; g < 4; ++g) acc[q][g] = hn::Zero(d);
  // acc += a M over the K rows of M [K x 4U], row by row (gemm_nn's order).
  const auto product = [&](const T* HWY_RESTRICT a, const T* HWY_RESTRICT M, std::size_t K) {
    for (std::size_t k = 0; k < K; ++k) {
      const V ak = hn::Set(d, a[k]);
      const T* row = M + k * G + j;
      HWY_UNROLL(16)
      for (std::size_t q = 0; q < CH; ++q)
        HWY_UNROLL(4)
        for (std::size_t g = 0; g < 4; ++g)
          acc[q][g] = hn::MulAdd(ak, hn::LoadU(d, row + g * U + q * L), acc[q][g]);
    }
  };
  product(x, W, F);
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q)
    HWY_UNROLL(4)
    for (std::size_t g = 0; g < 4; ++g)
      acc[q][g] = hn::Add(acc[q][g], hn::LoadU(d, b + g * U + j + q * L));
  product(h, R, U);
  HWY_UNROLL(16)
  for (std::size_t q = 0; q < CH; ++q) {
    const std::size_t u = j + q * L;
    const auto i = sigmoid_of(d, acc[q][0]);
    const auto f = sigmoid_of(d, acc[q][1]);
    const auto g = hn::Tanh(d, acc[q][2]);
    const auto o = sigmoid_of(d, acc[q][3]);
    const auto cv = hn::MulAdd(f, hn::LoadU(d, c + u), hn::Mul(i, g));
    hn::StoreU(cv, d, c + u);
    hn::StoreU(hn::Mul(o, hn::Tanh(d, cv)), d, h_new + u);
  }
}

// Whether lstm_step can run U units: whole vectors only (gemm_nn sums a column tail of less than
// one vector in scalar code, which lstm_step does not repeat), and not on Highway's SCALAR target:
// there MulAdd is the expression a * b + c, and where FMA exists (a Cortex-M4's FPv4) the compiler
// may contract the cell's f * c_prev + i * g around either product, differently in the fused
// code than in lstm_cell_forward (seen: other bits on a Cortex-M4).
template <class T>
inline bool lstm_step_fusable(std::size_t U) {
  if constexpr (HWY_TARGET == HWY_SCALAR) {
    return false;
  } else {
    const hn::ScalableTag<T> d;
    return U % hn::Lanes(d) == 0;
  }
}

// One LSTM step of one row, the products fused with the cell (deploy/streaming.hpp's one-step
// LSTM): c [U] (the previous cell state) is replaced by the new one and h_new [U] gets the new h,
// with the bits of gemm_nn's products and lstm_cell_forward (lstm_step_fusable(U) must hold).
// h [U], the previous h, must not alias h_new. Chunks of as many units as the registers hold
// accumulators for (4 gates each), then single vectors.
template <class T>
void lstm_step(std::size_t F, std::size_t U, const T* HWY_RESTRICT x, const T* HWY_RESTRICT W,
               const T* HWY_RESTRICT b, const T* HWY_RESTRICT h, const T* HWY_RESTRICT R,
               T* HWY_RESTRICT c, T* HWY_RESTRICT h_new) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  constexpr std::size_t CH = kVectorRegisters == 16 ? 2 : 4;  // 8 or 16 accumulators
  std::size_t j = 0;
  for (; j + CH * L <= U; j += CH * L) lstm_step_chunks<CH>(d, j, F, U, x, W, b, h, R, c, h_new);
  for (; j + L <= U; j += L) lstm_step_chunks<1>(d, j, F, U, x, W, b, h, R, c, h_new);
}

template <class D, class T = hn::TFromD<D>>
HWY_INLINE void lstm_cell_backward_lanes(D d, std::size_t j, std::size_t U, T* HWY_RESTRICT gz,
                                         const T* HWY_RESTRICT c_prev, const T* HWY_RESTRICT tc,
                                         const T* HWY_RESTRICT dy, const T* HWY_RESTRICT dh_next,
                                         T* HWY_RESTRICT dc) {
  const auto one = hn::Set(d, T(1));
  const auto i = hn::LoadU(d, gz + j);
  const auto f = hn::LoadU(d, gz + U + j);
  const auto g = hn::LoadU(d, gz + 2 * U + j);
  const auto o = hn::LoadU(d, gz + 3 * U + j);
  const auto t = hn::LoadU(d, tc + j);
  // dh = dy + dh_next (either may be absent: no output at this step, or the last step).
  auto dh = dy ? hn::LoadU(d, dy + j) : hn::Zero(d);
  if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
  // dc_t = dc_next + dh * o * (1 - tanh(c)^2)
  const auto dct = hn::MulAdd(hn::Mul(dh, o), hn::NegMulAdd(t, t, one), hn::LoadU(d, dc + j));
  const auto d_o = hn::Mul(hn::Mul(dh, t), hn::Mul(o, hn::Sub(one, o)));
  const auto d_i = hn::Mul(hn::Mul(dct, g), hn::Mul(i, hn::Sub(one, i)));
  const auto d_g = hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one));
  const auto d_f = c_prev ? hn::Mul(hn::Mul(dct, hn::LoadU(d, c_prev + j)), hn::Mul(f, hn::Sub(one, f)))
                          : hn::Zero(d);
  hn::StoreU(d_i, d, gz + j);
  hn::StoreU(d_f, d, gz + U + j);
  hn::StoreU(d_g, d, gz + 2 * U + j);
  hn::StoreU(d_o, d, gz + 3 * U + j);
  hn::StoreU(hn::Mul(dct, f), d, dc + j);
}

// One row of one step, backward. gz[4U] holds the activations i, f, g, o from forward and is
// replaced by the gradient of the pre-activations z. c_prev[U] (null at the first step) and
// tc[U] = tanh(c) are forward's. dy[U] is the gradient arriving from this step's output (null
// when the step has none) and dh_next[U] the one arriving through the next step's recurrent
// product (null at the last step). dc[U] holds the next step's cell gradient (zero at the last
// step) and is replaced by this step's contribution to the previous cell's: dc * f.
template <class T>
void lstm_cell_backward(std::size_t U, T* HWY_RESTRICT gz, const T* HWY_RESTRICT c_prev,
                        const T* HWY_RESTRICT tc, const T* HWY_RESTRICT dy,
                        const T* HWY_RESTRICT dh_next, T* HWY_RESTRICT dc) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) lstm_cell_backward_lanes(d, j, U, gz, c_prev, tc, dy, dh_next, dc);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) lstm_cell_backward_lanes(d1, j, U, gz, c_prev, tc, dy, dh_next, dc);
}

// Runs op(d, j) over [0, U): full vectors, then one lane at a time.
template <class T, class Op>
HWY_INLINE void for_lanes(std::size_t U, Op op) {
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = U - U % L;
  std::size_t j = 0;
  for (; j < full; j += L) op(d, j);
  const hn::CappedTag<T, 1> d1;
  for (; j < U; ++j) op(d1, j);
}

// One row of one GRU step. gx[3U]: the input side's pre-activations (x W + b_input), replaced by
// the activations z, r, hh (kept for backward). q[3U]: the recurrent side's (h_prev R +
// b_recurrent), kept. h_prev[U] is null at the first step (zero). Writes h[U] and, unless null,
// a copy into h2[U].
template <class T>
void gru_cell_forward(std::size_t U, T* HWY_RESTRICT gx, const T* HWY_RESTRICT q,
                      const T* HWY_RESTRICT h_prev, T* HWY_RESTRICT h, T* HWY_RESTRICT h2) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto z = sigmoid_of(d, hn::Add(hn::LoadU(d, gx + j), hn::LoadU(d, q + j)));
    const auto r = sigmoid_of(d, hn::Add(hn::LoadU(d, gx + U + j), hn::LoadU(d, q + U + j)));
    const auto hh = hn::Tanh(d, hn::MulAdd(r, hn::LoadU(d, q + 2 * U + j), hn::LoadU(d, gx + 2 * U + j)));
    hn::StoreU(z, d, gx + j);
    hn::StoreU(r, d, gx + U + j);
    hn::StoreU(hh, d, gx + 2 * U + j);
    // h = hh + z * (h_prev - hh): (1 - z) * hh + z * h_prev with one rounding less.
    const auto hp = h_prev ? hn::LoadU(d, h_prev + j) : hn::Zero(d);
    const auto hv = hn::MulAdd(z, hn::Sub(hp, hh), hh);
    hn::StoreU(hv, d, h + j);
    if (h2) hn::StoreU(hv, d, h2 + j);
  });
}

// One row of one GRU step, backward. gx[3U] holds z, r, hh and is replaced by the gradient of
// the input side's pre-activations; q[3U] holds the recurrent side's pre-activations and is
// replaced by their gradient. h_prev as in forward. dh = dy + dh_next + dh_direct (each of the
// first two may be null); dh_direct[U] holds the next step's direct part (zero at the last step)
// and is replaced by this step's, dh * z.
template <class T>
void gru_cell_backward(std::size_t U, T* HWY_RESTRICT gx, T* HWY_RESTRICT q,
                       const T* HWY_RESTRICT h_prev, const T* HWY_RESTRICT dy,
                       const T* HWY_RESTRICT dh_next, T* HWY_RESTRICT dh_direct) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto one = hn::Set(d, T(1));
    const auto z = hn::LoadU(d, gx + j);
    const auto r = hn::LoadU(d, gx + U + j);
    const auto hh = hn::LoadU(d, gx + 2 * U + j);
    auto dh = hn::LoadU(d, dh_direct + j);
    if (dy) dh = hn::Add(hn::LoadU(d, dy + j), dh);
    if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
    const auto hp = h_prev ? hn::LoadU(d, h_prev + j) : hn::Zero(d);
    const auto dz = hn::Mul(hn::Mul(dh, hn::Sub(hp, hh)), hn::Mul(z, hn::Sub(one, z)));
    const auto dah = hn::Mul(hn::Mul(dh, hn::Sub(one, z)), hn::NegMulAdd(hh, hh, one));
    const auto dr = hn::Mul(hn::Mul(dah, hn::LoadU(d, q + 2 * U + j)), hn::Mul(r, hn::Sub(one, r)));
    hn::StoreU(dz, d, gx + j);
    hn::StoreU(dr, d, gx + U + j);
    hn::StoreU(dah, d, gx + 2 * U + j);
    hn::StoreU(dz, d, q + j);
    hn::StoreU(dr, d, q + U + j);
    hn::StoreU(hn::Mul(dah, r), d, q + 2 * U + j);
    hn::StoreU(hn::Mul(dh, z), d, dh_direct + j);
  });
}

// One row of one SimpleRNN step: z[U] (x W + h_prev R + b) is replaced by h = tanh(z), which is
// also written to h[U] and, unless null, h2[U].
template <class T>
void rnn_cell_forward(std::size_t U, T* HWY_RESTRICT z, T* HWY_RESTRICT h, T* HWY_RESTRICT h2) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto hv = hn::Tanh(d, hn::LoadU(d, z + j));
    hn::StoreU(hv, d, z + j);
    if (h) hn::StoreU(hv, d, h + j);
    if (h2) hn::StoreU(hv, d, h2 + j);
  });
}

// Backward: z[U] holds h and is replaced by dz = (dy + dh_next) * (1 - h^2) (either may be null).
template <class T>
void rnn_cell_backward(std::size_t U, T* HWY_RESTRICT z, const T* HWY_RESTRICT dy,
                       const T* HWY_RESTRICT dh_next) {
  for_lanes<T>(U, [&](auto d, std::size_t j) {
    const auto hv = hn::LoadU(d, z + j);
    auto dh = dy ? hn::LoadU(d, dy + j) : hn::Zero(d);
    if (dh_next) dh = hn::Add(dh, hn::LoadU(d, dh_next + j));
    hn::StoreU(hn::Mul(dh, hn::NegMulAdd(hv, hv, hn::Set(d, T(1)))), d, z + j);
  });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::gru_cell_backward;
using ctnn::HWY_NAMESPACE::gru_cell_forward;
using ctnn::HWY_NAMESPACE::lstm_cell_backward;
using ctnn::HWY_NAMESPACE::lstm_cell_forward;
using ctnn::HWY_NAMESPACE::lstm_step;
using ctnn::HWY_NAMESPACE::lstm_step_fusable;
using ctnn::HWY_NAMESPACE::rnn_cell_backward;
using ctnn::HWY_NAMESPACE::rnn_cell_forward;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/recurrent.hpp ----
// ---- begin ctnn/layers/recurrent_base.hpp ----
// ctnn/layers/recurrent_base.hpp: the matrix products the recurrent layers (SimpleRNN, LSTM, GRU)
// share, for a sequence input Shape<Steps, Features> and Units outputs per step.
//
// Layout every recurrent layer uses, per sample b and step t (row b * Steps + t):
//   z [rows x Gates]    the gates' input-side pre-activations x_t W + b, then (per layer) their
//                       activations, then in backward their gradients
//   hp [rows x Units]   h_{t-1}, zero at t = 0 (the recurrent product's input, kept for dR)
// The per-step products read and write the rows of one step of a block of samples (stride
// Steps rows); the products over all rows (input side, weight gradients, dx) run once per batch
// and sum over samples and steps in that order, whatever the thread split.
#include <algorithm>
#include <cstddef>
#include <utility>


namespace ctnn::detail {

template <class T, std::size_t Steps, std::size_t Features, std::size_t Units>
struct RecurrentGemms {
  static constexpr std::size_t kLanes = HWY_MAX_BYTES / sizeof(T);
  // gemm_nt accumulators per sample: for dh = dq R^T (a block's rows x Units) and for
  // dx = dz W^T (min(rows, 32) x Features over all rows; see kernels::gemm_nt_scratch).
  static constexpr std::size_t acc_per_sample =
      kLanes * std::max(Units, (Steps < kernels::kGemmNtRows ? Steps : kernels::kGemmNtRows) * Features);
  static constexpr const T* none = nullptr;

  // z [n*Steps x G] = x W + b, W [Features x G].
  static void input_products(std::size_t n, std::size_t G, const T* x, const T* W, const T* b,
                             T* z) {
    kernels::gemm_nn(n * Steps, G, Features, x, Features, 1, W, G, z, G, false, b,
                     kernels::Epilogue::none);
  }
  // For samples [s0, s1) at step t: out_t (+)= hp_t R (+ bias), R [Units x G]; out has rows of
  // G with stride Steps rows.
  static void step_product(std::size_t s0, std::size_t s1, std::size_t t, std::size_t G,
                           const T* hp, const T* R, T* out, bool accumulate, const T* bias) {
    kernels::gemm_nn(s1 - s0, G, Units, hp + (s0 * Steps + t) * Units, Steps * Units, 1, R, G,
                     out + (s0 * Steps + t) * G, Steps * G, accumulate, bias,
                     kernels::Epilogue::none);
  }
  // For samples [s0, s1) at step t: dh [n x Units] rows s0.. = dq_t R^T.
  static void step_gradient(std::size_t s0, std::size_t s1, std::size_t t, std::size_t G,
                            const T* dq, const T* R, T* dh, T* acc) {
    kernels::gemm_nt(s1 - s0, Units, G, dq + (s0 * Steps + t) * G, Steps * G, R, G,
                     dh + s0 * Units, Units, none, kernels::Epilogue::none,
                     acc + s0 * acc_per_sample);
  }
  // dW = x^T dz, db = column sums of dz, and unless dx is null dx = dz W^T.
  static void input_gradients(std::size_t n, std::size_t G, const T* x, const T* dz, const T* W,
                              T* dW, T* db, T* dx, T* acc) {
    const std::size_t rows = n * Steps;
    kernels::gemm_nn(Features, G, rows, x, 1, Features, dz, G, dW, G, false, none,
                     kernels::Epilogue::none);
    kernels::sum_rows(rows, G, dz, db);
    if (dx)
      kernels::gemm_nt(rows, Features, G, dz, G, W, G, dx, Features, none,
                       kernels::Epilogue::none, acc);
  }
  // dR = hp^T dq (the t = 0 rows of hp are zero and add nothing).
  static void recurrent_gradient(std::size_t n, std::size_t G, const T* hp, const T* dq, T* dR) {
    kernels::gemm_nn(Units, G, n * Steps, hp, 1, Units, dq, G, dR, G, false, none,
                     kernels::Epilogue::none);
  }
  // hp's t = 0 rows of samples [s0, s1) are zero.
  static void zero_first_state(std::size_t s0, std::size_t s1, T* hp) {
    for (std::size_t b = s0; b < s1; ++b)
      std::fill(hp + b * Steps * Units, hp + b * Steps * Units + Units, T(0));
  }
  // Where step t's h goes: hp's next row, and the output y when the step has one (every step with
  // return_sequences, the last step without). Returns {h, copy}: the cell writes h and, unless
  // null, a copy.
  template <bool ReturnSequences>
  static std::pair<T*, T*> outputs(std::size_t b, std::size_t t, T* hp, T* y) {
    const std::size_t row = b * Steps + t;
    const bool last = t + 1 == Steps;
    T* out = ReturnSequences ? y + row * Units : (last ? y + b * Units : nullptr);
    if (last) return {out, nullptr};
    return {hp + (row + 1) * Units, out};
  }
  // The gradient arriving at step t's output, or null when the step has no output.
  template <bool ReturnSequences>
  static const T* output_gradient(std::size_t b, std::size_t t, const T* dy) {
    if constexpr (ReturnSequences) return dy + (b * Steps + t) * Units;
    else return t + 1 == Steps ? dy + b * Units : nullptr;
  }
  static constexpr bool worth_threads(std::size_t n, std::size_t G) {
    return n * Steps * G * Units >= kParallelWork;
  }
};

}  // namespace ctnn::detail
// ---- end ctnn/layers/recurrent_base.hpp ----
// ---- begin ctnn/layers/simple_rnn.hpp ----
// ctnn/layers/simple_rnn.hpp: SimpleRNN<Units, ReturnSequences, KernelInit, RecurrentInit,
// BiasInit>, a fully connected recurrent layer over sequences, as Keras's SimpleRNN.
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = 0:  h_t = tanh(x_t W + h_{t-1} R + b)
// (Keras's default activation; PyTorch's nn.RNN with weight_ih = W^T, weight_hh = R^T, bias_ih = b,
// bias_hh = 0). Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences every h_t
// (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features>.
// Parameters in Keras's layout and order: kernel W [Features x Units], recurrent_kernel
// R [Units x Units], bias b [Units]; Units (Features + Units + 1) in all. Init: Keras's defaults,
// Glorot uniform W (fan_in = Features, fan_out = Units), orthogonal R, zero b.
// How: as LSTM (layers/lstm.hpp): the input products of all steps as one GEMM, the recurrence per
// sample block with one GEMM per step, backpropagation through time, then the weight gradients
// as GEMMs over all samples and steps (layers/recurrent_base.hpp): the same bits at any thread
// count.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>


namespace ctnn {
namespace detail {
// ", KernelInit, RecurrentInit, BiasInit" for a recurrent layer's spec(), or "" for the defaults.
template <class KernelInit, class RecurrentInit, class BiasInit>
std::string recurrent_init_spec() {
  if constexpr (std::is_same_v<KernelInit, init::GlorotUniform> &&
                std::is_same_v<RecurrentInit, init::Orthogonal> &&
                std::is_same_v<BiasInit, init::Zeros>)
    return "";
  else
    return ", " + std::string(KernelInit::spec) + ", " + std::string(RecurrentInit::spec) + ", " +
           std::string(BiasInit::spec);
}
}  // namespace detail

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros>
struct SimpleRNN {
  static_assert(Units >= 1, "SimpleRNN<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "SimpleRNN's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "SimpleRNN needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t G = Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = Units * (features + Units + 1);
    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    // Scratch per sample: accumulators, z (then h, then dz) and h_{t-1} per step, dh.
    static constexpr std::size_t scratch_per_sample =
        gemms::acc_per_sample + 2 * steps * Units + Units;
    static constexpr std::string_view name = "SimpleRNN";
    static constexpr LayerKind kind = LayerKind::simple_rnn;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      return "ctnn::SimpleRNN<" + std::to_string(Units) + ", " +
             (ReturnSequences ? "true" : "false") +
             detail::recurrent_init_spec<KernelInit, RecurrentInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static constexpr std::size_t w_off = 0, r_off = features * Units, b_off = r_off + Units * Units;
    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * Units, features, Units, rng);
      RecurrentInit::fill(p + r_off, Units * Units, Units, Units, rng);
      BiasInit::fill(p + b_off, Units, features, Units, rng);
    }

    struct Regions {
      T *acc, *z, *hp, *dh;
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.z = r.acc + n * gemms::acc_per_sample;
      r.hp = r.z + n * steps * Units;
      r.dh = r.hp + n * steps * Units;
      return r;
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const Regions s = regions(scratch, n);
      gemms::input_products(n, G, x, p + w_off, p + b_off, s.z);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            gemms::zero_first_state(s0, s1, s.hp);
            for (std::size_t t = 0; t < steps; ++t) {
              if (t > 0) gemms::step_product(s0, s1, t, G, s.hp, p + r_off, s.z, true, nullptr);
              for (std::size_t b = s0; b < s1; ++b) {
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::rnn_cell_forward(Units, s.z + (b * steps + t) * G, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b)
                kernels::rnn_cell_backward(Units, s.z + (b * steps + t) * G,
                                           gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                           t + 1 < steps ? s.dh + b * Units : nullptr);
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.z, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.z, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.z, dp + r_off);
    }

    // One step of this layer (deploy/streaming.hpp's StreamingModel): input Shape<features>,
    // output Shape<Units>, the same parameters; h lives in the state arena between calls and
    // advances by one step per row (n rows are n consecutive steps). The products and the cell
    // are the whole-sequence pass's, in the same order, so a streamed sequence gives its bits.
    // Inference only: it has no backward (train the whole-sequence layer).
    struct step {
      using value_type = T;
      using input_shape = Shape<features>;
      using output_shape = Shape<Units>;
      static constexpr std::size_t param_count = bind::param_count;
      static constexpr std::size_t state_count = Units;
      static constexpr std::size_t scratch_per_sample = G;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        for (std::size_t r = 0; r < n; ++r) {
          T* z = scratch;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, z, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, z, G, true,
                           static_cast<const T*>(nullptr), kernels::Epilogue::none);
          kernels::rnn_cell_forward(Units, z, y + r * Units, h);
        }
      }
      template <class Never = void>
      static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                           const PassContext&) {
        static_assert(sizeof(Never) == 0, "A recurrent layer's one-step form cannot be trained: "
                                          "train the whole-sequence model.");
      }
    };
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/simple_rnn.hpp ----

namespace ctnn {

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros>
struct GRU {
  static_assert(Units >= 1, "GRU<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "GRU's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "GRU needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t G = 3 * Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = G * (features + Units + 2);
    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    // Scratch per sample: accumulators, both sides' gates per step, h_{t-1} per step, dh and
    // its direct part.
    static constexpr std::size_t scratch_per_sample =
        gemms::acc_per_sample + 2 * steps * G + steps * Units + 2 * Units;
    static constexpr std::string_view name = "GRU";
    static constexpr LayerKind kind = LayerKind::gru;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      return "ctnn::GRU<" + std::to_string(Units) + ", " + (ReturnSequences ? "true" : "false") +
             detail::recurrent_init_spec<KernelInit, RecurrentInit, BiasInit>() + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    static constexpr std::size_t w_off = 0, r_off = features * G, b_off = r_off + Units * G,
                                 rb_off = b_off + G;
    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * G, features, G, rng);
      RecurrentInit::fill(p + r_off, Units * G, Units, G, rng);
      BiasInit::fill(p + b_off, 2 * G, features, G, rng);
    }

    struct Regions {
      T *acc, *gx, *q, *hp, *dh, *dhd;
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.gx = r.acc + n * gemms::acc_per_sample;
      r.q = r.gx + n * steps * G;
      r.hp = r.q + n * steps * G;
      r.dh = r.hp + n * steps * Units;
      r.dhd = r.dh + n * Units;
      return r;
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const Regions s = regions(scratch, n);
      gemms::input_products(n, G, x, p + w_off, p + b_off, s.gx);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            gemms::zero_first_state(s0, s1, s.hp);
            for (std::size_t t = 0; t < steps; ++t) {
              if (t > 0)
                gemms::step_product(s0, s1, t, G, s.hp, p + r_off, s.q, false, p + rb_off);
              else  // h_{-1} = 0: the recurrent side is its bias
                for (std::size_t b = s0; b < s1; ++b)
                  std::copy(p + rb_off, p + rb_off + G, s.q + b * steps * G);
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::gru_cell_forward(Units, s.gx + row * G, s.q + row * G,
                                          t > 0 ? s.hp + row * Units : nullptr, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      // Through time, per sample block: gx becomes the input side's gradient, q the recurrent
      // side's.
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            std::fill(s.dhd + s0 * Units, s.dhd + s1 * Units, T(0));
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                kernels::gru_cell_backward(Units, s.gx + row * G, s.q + row * G,
                                           t > 0 ? s.hp + row * Units : nullptr,
                                           gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                           t + 1 < steps ? s.dh + b * Units : nullptr,
                                           s.dhd + b * Units);
              }
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.q, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.gx, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.q, dp + r_off);
      kernels::sum_rows(n * steps, G, s.q, dp + rb_off);
    }

    // One step of this layer (deploy/streaming.hpp's StreamingModel): input Shape<features>,
    // output Shape<Units>, the same parameters; h lives in the state arena between calls and
    // advances by one step per row (n rows are n consecutive steps). The products and the cell
    // are the whole-sequence pass's, in the same order, so a streamed sequence gives its bits.
    // Inference only: it has no backward (train the whole-sequence layer).
    struct step {
      using value_type = T;
      using input_shape = Shape<features>;
      using output_shape = Shape<Units>;
      static constexpr std::size_t param_count = bind::param_count;
      static constexpr std::size_t state_count = Units;
      static constexpr std::size_t scratch_per_sample = 2 * G;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        for (std::size_t r = 0; r < n; ++r) {
          // x side: x W + b_input; recurrent side: h R + b_recurrent (forward's products).
          T* gx = scratch;
          T* q = scratch + G;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, gx, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, q, G, false, p + rb_off,
                           kernels::Epilogue::none);
          kernels::gru_cell_forward(Units, gx, q, h, y + r * Units, static_cast<T*>(nullptr));
          std::copy(y + r * Units, y + (r + 1) * Units, h);
        }
      }
      template <class Never = void>
      static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                           const PassContext&) {
        static_assert(sizeof(Never) == 0, "A recurrent layer's one-step form cannot be trained: "
                                          "train the whole-sequence model.");
      }
    };
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/gru.hpp ----
// ---- begin ctnn/layers/lstm.hpp ----
// ctnn/layers/lstm.hpp: LSTM<Units, ReturnSequences, KernelInit, RecurrentInit, BiasInit,
// UnitForgetBias>, a long short-term memory layer over sequences, as Keras's LSTM.
//
// Represents, for t = 0 .. Steps-1 with h_{-1} = c_{-1} = 0:
//   z_t = x_t W + h_{t-1} R + b                       (4 * Units gate pre-activations)
//   i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_c), o = sigmoid(z_o)
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
// with Keras's defaults (activation tanh, recurrent_activation sigmoid, use_bias, no dropout).
// Output: h_{Steps-1} (Shape<Units>), or with ReturnSequences every h_t (Shape<Steps, Units>).
// Requires: a rank-2 input Shape<Steps, Features> (Input<Steps, Features>, or a Reshape to it).
// Parameters in Keras's layout and order: kernel W [Features x 4 Units], recurrent_kernel
// R [Units x 4 Units], bias b [4 Units], the gates in the order i, f, c, o along each row;
// 4 Units (Features + Units + 1) in all, as Keras counts. Init: KernelInit fills W (fan_in =
// Features, fan_out = 4 Units), RecurrentInit fills R (fan_in = Units), BiasInit fills b and, with
// UnitForgetBias, the forget gate's bias is 1 (Keras's unit_forget_bias). The defaults are
// Keras's: Glorot uniform, orthogonal, zeros, unit forget bias. The same weights give PyTorch's
// nn.LSTM with weight_ih = W^T, weight_hh = R^T, bias_ih = b, bias_hh = 0 (its gate order i, f,
// g, o is Keras's).
//
// How: the input products of all steps are one GEMM (x [batch*Steps x Features] times W, bias
// added in it). The recurrence then runs per sample block, one block per thread: each step adds
// h_{t-1} R (a GEMM of the block's rows) and applies the cell (kernels/recurrent.hpp). Backward
// (through time) runs the steps in reverse per block, carrying dh and dc, with the recurrent
// gradient dh_{t-1} = dz_t R^T as a GEMM; then dW = x^T dz, dR = h_prev^T dz, db = sum dz and
// dx = dz W^T are each one GEMM over all samples and steps, summed in sample-and-step order. No
// sum depends on the block split, so training gives the same bits at any thread count.
// Scratch (kept from forward to backward, per sample): the gates (4 Steps Units), c, tanh(c) and
// h_{t-1} (3 Steps Units each), dh and dc (2 Units), and the GEMM accumulators.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {

template <std::size_t Units, bool ReturnSequences = false, class KernelInit = init::GlorotUniform,
          class RecurrentInit = init::Orthogonal, class BiasInit = init::Zeros,
          bool UnitForgetBias = true>
struct LSTM {
  static_assert(Units >= 1, "LSTM<Units> needs at least one unit.");
  static_assert(is_initializer_v<KernelInit> && is_initializer_v<RecurrentInit> &&
                    is_initializer_v<BiasInit>,
                "LSTM's KernelInit, RecurrentInit and BiasInit must be initializers such as "
                "ctnn::init::Orthogonal (the list is in ctnn/core/init.hpp).");

  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "LSTM needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using value_type = T;
    using input_shape = In;
    static constexpr std::size_t steps = In::dims[0];
    static constexpr std::size_t features = In::rank == 2 ? In::dims[1] : 1;
    static constexpr std::size_t U = Units, G = 4 * Units;
    using output_shape = std::conditional_t<ReturnSequences, Shape<steps, Units>, Shape<Units>>;
    static constexpr std::size_t param_count = G * (features + Units + 1);

    using gemms = detail::RecurrentGemms<T, steps, features, Units>;
    static constexpr std::size_t acc_per_sample = gemms::acc_per_sample;
    static constexpr std::size_t scratch_per_sample =
        acc_per_sample + steps * G + 3 * steps * Units + 2 * Units;
    static constexpr std::string_view name = "LSTM";
    static constexpr LayerKind kind = LayerKind::lstm;
    static std::string config() {
      return std::to_string(Units) + (ReturnSequences ? " return_sequences" : "");
    }
    static std::string spec() {
      std::string s = "ctnn::LSTM<" + std::to_string(Units) + ", " +
                      (ReturnSequences ? "true" : "false");
      constexpr bool defaults = std::is_same_v<KernelInit, init::GlorotUniform> &&
                                std::is_same_v<RecurrentInit, init::Orthogonal> &&
                                std::is_same_v<BiasInit, init::Zeros> && UnitForgetBias;
      if (!defaults) {
        s.append(", ").append(KernelInit::spec).append(", ").append(RecurrentInit::spec);
        s.append(", ").append(BiasInit::spec).append(UnitForgetBias ? ", true" : ", false");
      }
      return s + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;

    // Offsets of the parameter blocks and of the scratch regions for a batch of n.
    static constexpr std::size_t w_off = 0, r_off = features * G, b_off = r_off + Units * G;
    struct Regions {
      T* acc;  // n * acc_per_sample
      T* z;    // [n][steps][4U] gates (pre-activation, activation, then dz)
      T* c;    // [n][steps][U] cell states
      T* tc;   // [n][steps][U] tanh(c)
      T* hp;   // [n][steps][U] h_{t-1} (zero at t = 0)
      T* dh;   // [n][U] dh arriving from the next step
      T* dc;   // [n][U] dc arriving from the next step
    };
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.acc = s;
      r.z = r.acc + n * acc_per_sample;
      r.c = r.z + n * steps * G;
      r.tc = r.c + n * steps * Units;
      r.hp = r.tc + n * steps * Units;
      r.dh = r.hp + n * steps * Units;
      r.dc = r.dh + n * Units;
      return r;
    }

    static void init(T* p, Rng& rng) {
      KernelInit::fill(p + w_off, features * G, features, G, rng);
      RecurrentInit::fill(p + r_off, Units * G, Units, G, rng);
      BiasInit::fill(p + b_off, G, features, G, rng);
      if constexpr (UnitForgetBias)
        for (std::size_t j = 0; j < Units; ++j) p[b_off + Units + j] = T(1);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext&) {
      const Regions s = regions(scratch, n);
      gemms::input_products(n, G, x, p + w_off, p + b_off, s.z);
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            gemms::zero_first_state(s0, s1, s.hp);
            for (std::size_t t = 0; t < steps; ++t) {
              if (t > 0) gemms::step_product(s0, s1, t, G, s.hp, p + r_off, s.z, true, nullptr);
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                const auto [h, copy] = gemms::template outputs<ReturnSequences>(b, t, s.hp, y);
                kernels::lstm_cell_forward(Units, s.z + row * G,
                                           t > 0 ? s.c + (row - 1) * Units : nullptr,
                                           s.c + row * Units, s.tc + row * Units, h, copy);
              }
            }
          },
          gemms::worth_threads(n, G));
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext&) {
      const Regions s = regions(scratch, n);
      // Through time, per sample block: s.z becomes dz.
      parallel_for_range(
          n,
          [&](std::size_t s0, std::size_t s1) {
            std::fill(s.dc + s0 * Units, s.dc + s1 * Units, T(0));
            for (std::size_t t = steps; t-- > 0;) {
              for (std::size_t b = s0; b < s1; ++b) {
                const std::size_t row = b * steps + t;
                kernels::lstm_cell_backward(Units, s.z + row * G,
                                            t > 0 ? s.c + (row - 1) * Units : nullptr,
                                            s.tc + row * Units,
                                            gemms::template output_gradient<ReturnSequences>(b, t, dy),
                                            t + 1 < steps ? s.dh + b * Units : nullptr,
                                            s.dc + b * Units);
              }
              if (t > 0) gemms::step_gradient(s0, s1, t, G, s.z, p + r_off, s.dh, s.acc);
            }
          },
          gemms::worth_threads(n, G));
      gemms::input_gradients(n, G, x, s.z, p + w_off, dp + w_off, dp + b_off, dx, s.acc);
      gemms::recurrent_gradient(n, G, s.hp, s.z, dp + r_off);
    }

    // One step of this layer (deploy/streaming.hpp's StreamingModel): input Shape<features>,
    // output Shape<Units>, the same parameters; h and c live in the state arena between calls and
    // advances by one step per row (n rows are n consecutive steps). The products and the cell
    // are the whole-sequence pass's, in the same order, so a streamed sequence gives its bits.
    // Inference only: it has no backward (train the whole-sequence layer).
    struct step {
      using value_type = T;
      using input_shape = Shape<features>;
      using output_shape = Shape<Units>;
      static constexpr std::size_t param_count = bind::param_count;
      static constexpr std::size_t state_count = 2 * Units;
      static constexpr std::size_t scratch_per_sample = G + 2 * Units;
      static constexpr std::string_view name = bind::name;
      static constexpr bool fuses_relu = false;
      static constexpr bool is_view = false;
      static void init(T* p, Rng& rng) { bind::init(p, rng); }
      static void init_state(T* s) { std::fill(s, s + state_count, T(0)); }
      static void forward(const T* p, T* state, const T* x, T* y, std::size_t n, T* scratch,
                          const PassContext&) {
        T* h = state;
        if (kernels::lstm_step_fusable<T>(Units)) {  // one pass: products and cell in registers
          T* c = state + Units;
          for (std::size_t r = 0; r < n; ++r) {
            kernels::lstm_step(features, Units, x + r * features, p + w_off, p + b_off, h,
                               p + r_off, c, y + r * Units);
            std::copy(y + r * Units, y + (r + 1) * Units, h);
          }
          return;
        }
        for (std::size_t r = 0; r < n; ++r) {
          // z = x W + b, then z += h R (forward's two products); the cell reads c and writes
          // the new c to scratch, which then replaces it.
          T* z = scratch;
          T* c = state + Units;
          kernels::gemm_nn(1, G, features, x + r * features, features, 1, p + w_off, G, z, G,
                           false, p + b_off, kernels::Epilogue::none);
          kernels::gemm_nn(1, G, Units, h, Units, 1, p + r_off, G, z, G, true,
                           static_cast<const T*>(nullptr), kernels::Epilogue::none);
          kernels::lstm_cell_forward(Units, z, c, z + G, z + G + Units, y + r * Units, h);
          std::copy(z + G, z + G + Units, c);
        }
      }
      template <class Never = void>
      static void backward(const T*, const T*, const T*, const T*, T*, T*, std::size_t, T*,
                           const PassContext&) {
        static_assert(sizeof(Never) == 0, "A recurrent layer's one-step form cannot be trained: "
                                          "train the whole-sequence model.");
      }
    };
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/lstm.hpp ----
// ---- begin ctnn/layers/bidirectional.hpp ----
// ctnn/layers/bidirectional.hpp: Bidirectional<Spec, Merge>, a recurrent layer run over a sequence
// forwards and backwards, as Keras's Bidirectional.
//
// Represents, for a recurrent Spec (SimpleRNN, LSTM, GRU) bound to In = Shape<Steps, Features>:
//   f = Spec(x)                      the forward layer on x_0 .. x_{Steps-1}
//   b = Spec'(reverse(x))            a second layer (its own weights) on x_{Steps-1} .. x_0
// and, without return_sequences, y = merge(f, b) (f's last output, and b's: the one that has read
// the whole sequence backwards); with return_sequences, y_t = merge(f_t, b_{Steps-1-t}) (b's
// outputs put back in time order, so y_t has seen x_0 .. x_t forwards and x_{Steps-1} .. x_t
// backwards), as Keras and PyTorch's bidirectional=True.
// Merge (Keras's merge_mode): concat [f, b] along the last axis (the default: output Units doubled),
// sum f + b, ave (f + b) / 2, mul f * b.
// Requires: Spec a recurrent layer with a rank-2 input (static_asserts name the misuse).
// Parameters: the forward layer's, then the backward layer's, each in Spec's layout (Keras's
// order of forward_layer and backward_layer weights); each initialized as Spec initializes.
// How: the input reversed in time once per sample, Spec's own forward and backward (one GEMM for
// all input products, the recurrence per sample block) twice; backward splits dy by the merge,
// reverses the backward layer's share in time, and adds its dx back in time order. Same bits at
// any thread count, as Spec. Not streamable (its backward direction needs the sequence's end):
// StreamingModel rejects it at compile time.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>


namespace ctnn {

// How Bidirectional combines the two directions' outputs (Keras's merge_mode).
enum class Merge { concat, sum, ave, mul };

namespace detail {
// A whole-sequence layer whose one-step form keeps state: SimpleRNN, LSTM, GRU.
template <class L>
concept RecurrentLayer = requires { typename L::step; } && StatefulLayer<typename L::step>;

constexpr const char* merge_name(Merge m) {
  return m == Merge::concat ? "concat" : m == Merge::sum ? "sum" : m == Merge::ave ? "ave" : "mul";
}
}  // namespace detail

template <class Spec, Merge MergeMode = Merge::concat>
struct Bidirectional {
  template <ShapeType In, class T>
  struct bind {
    static_assert(In::rank == 2,
                  "Bidirectional needs a sequence input of rank 2 (steps, features): use "
                  "Input<Steps, Features> or Reshape<Steps, Features> before it (the shapes are in "
                  "bind<...> above).");
    using inner = typename Spec::template bind<In, T>;
    static constexpr bool wraps_recurrent = detail::RecurrentLayer<inner>;
    static_assert(wraps_recurrent,
                  "Bidirectional wraps a recurrent layer (SimpleRNN, LSTM or GRU).");
    static constexpr std::size_t steps = In::dims[0];
    static constexpr bool sequences = inner::output_shape::rank == 2;  // return_sequences
    static constexpr std::size_t units = inner::output_shape::dims[inner::output_shape::rank - 1];
    static constexpr std::size_t out_units = MergeMode == Merge::concat ? 2 * units : units;
    static constexpr std::size_t rows = sequences ? steps : 1;  // output rows per sample
    using value_type = T;
    using input_shape = In;
    using output_shape = std::conditional_t<sequences, Shape<steps, out_units>, Shape<out_units>>;
    static constexpr std::size_t in_size = In::size, half = inner::output_shape::size;
    static constexpr std::size_t param_count = 2 * inner::param_count;
    // Per sample: the two layers' scratch, the reversed input and its gradient, the two layers'
    // outputs and their gradients; each region starts aligned (the kernels want it), which the
    // eight regions' padding (at most `align` values each, counted once per sample) pays for.
    static constexpr std::size_t align = kAlignBytes / sizeof(T);
    static constexpr std::size_t scratch_per_sample =
        2 * inner::scratch_per_sample + 2 * in_size + 4 * half + 8 * align;
    static constexpr std::string_view name = "Bidirectional";
    static std::string config() {
      return std::string(inner::name) + " " + inner::config() + " merge " +
             detail::merge_name(MergeMode);
    }
    static std::string spec() {
      return "ctnn::Bidirectional<" + inner::spec() + ", ctnn::Merge::" +
             detail::merge_name(MergeMode) + ">";
    }
    static constexpr bool fuses_relu = false;
    static constexpr bool is_view = false;
    // Its output at any step depends on the sequence's last step (deploy/streaming.hpp reads this).
    static constexpr bool reads_whole_sequence = true;

    struct Regions {
      T* fwd;  // the forward layer's scratch   [n * inner::scratch_per_sample]
      T* bwd;  // the backward layer's scratch  [n * inner::scratch_per_sample]
      T* xr;   // x reversed in time            [n * in_size]
      T* dxr;  // the backward layer's dx (reversed time)
      T* yf;   // the forward layer's output    [n * half]
      T* yb;   // the backward layer's output (its own, reversed, time order)
      T* dyf;  // their gradients
      T* dyb;
    };
    static std::size_t padded(std::size_t count) { return (count + align - 1) / align * align; }
    static Regions regions(T* s, std::size_t n) {
      Regions r;
      r.fwd = s;
      r.bwd = r.fwd + padded(n * inner::scratch_per_sample);
      r.xr = r.bwd + padded(n * inner::scratch_per_sample);
      r.dxr = r.xr + padded(n * in_size);
      r.yf = r.dxr + padded(n * in_size);
      r.yb = r.yf + padded(n * half);
      r.dyf = r.yb + padded(n * half);
      r.dyb = r.dyf + padded(n * half);
      return r;
    }

    // Row t of sample b of a [n][Steps][width] array, reversed: row Steps-1-t.
    static void reverse_steps(const T* from, T* to, std::size_t n, std::size_t width) {
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t t = 0; t < steps; ++t)
          std::copy(from + (b * steps + steps - 1 - t) * width,
                    from + (b * steps + steps - t) * width, to + (b * steps + t) * width);
    }
    // Output row r of sample b comes from the backward layer's row rows-1-r.
    static const T* backward_row(const T* yb, std::size_t b, std::size_t r) {
      return yb + (b * rows + rows - 1 - r) * units;
    }

    static void init(T* p, Rng& rng) {
      inner::init(p, rng);
      inner::init(p + inner::param_count, rng);
    }

    static void forward(const T* p, const T* x, T* y, std::size_t n, T* scratch,
                        const PassContext& ctx) {
      const Regions s = regions(scratch, n);
      reverse_steps(x, s.xr, n, In::dims[1]);
      inner::forward(p, x, s.yf, n, s.fwd, ctx);
      inner::forward(p + inner::param_count, s.xr, s.yb, n, s.bwd, ctx);
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t r = 0; r < rows; ++r) {
          const T* f = s.yf + (b * rows + r) * units;
          const T* g = backward_row(s.yb, b, r);
          T* out = y + (b * rows + r) * out_units;
          if constexpr (MergeMode == Merge::concat) {
            std::copy(f, f + units, out);
            std::copy(g, g + units, out + units);
          } else {
            for (std::size_t u = 0; u < units; ++u) {
              if constexpr (MergeMode == Merge::sum) out[u] = f[u] + g[u];
              else if constexpr (MergeMode == Merge::ave) out[u] = (f[u] + g[u]) * T(0.5);
              else out[u] = f[u] * g[u];
            }
          }
        }
    }

    static void backward(const T* p, const T* x, const T*, const T* dy, T* dx, T* dp,
                         std::size_t n, T* scratch, const PassContext& ctx) {
      const Regions s = regions(scratch, n);
      for (std::size_t b = 0; b < n; ++b)
        for (std::size_t r = 0; r < rows; ++r) {
          const T* d = dy + (b * rows + r) * out_units;
          T* df = s.dyf + (b * rows + r) * units;
          T* dg = s.dyb + (b * rows + rows - 1 - r) * units;
          if constexpr (MergeMode == Merge::concat) {
            std::copy(d, d + units, df);
            std::copy(d + units, d + 2 * units, dg);
          } else if constexpr (MergeMode == Merge::sum) {
            std::copy(d, d + units, df);
            std::copy(d, d + units, dg);
          } else if constexpr (MergeMode == Merge::ave) {
            for (std::size_t u = 0; u < units; ++u) df[u] = dg[u] = d[u] * T(0.5);
          } else {
            const T* f = s.yf + (b * rows + r) * units;
            const T* g = backward_row(s.yb, b, r);
            for (std::size_t u = 0; u < units; ++u) {
              df[u] = d[u] * g[u];
              dg[u] = d[u] * f[u];
            }
          }
        }
      inner::backward(p, x, s.yf, s.dyf, dx, dp, n, s.fwd, ctx);
      inner::backward(p + inner::param_count, s.xr, s.yb, s.dyb, dx ? s.dxr : nullptr,
                      dp + inner::param_count, n, s.bwd, ctx);
      if (dx) {
        constexpr std::size_t F = In::dims[1];
        for (std::size_t b = 0; b < n; ++b)
          for (std::size_t t = 0; t < steps; ++t) {
            const T* from = s.dxr + (b * steps + steps - 1 - t) * F;
            T* to = dx + (b * steps + t) * F;
            for (std::size_t f = 0; f < F; ++f) to[f] += from[f];
          }
      }
    }
  };
};

}  // namespace ctnn
// ---- end ctnn/layers/bidirectional.hpp ----

namespace ctnn::deploy {

template <class Model>
class StaticModel {
 public:
  using T = typename Model::value_type;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;
  static constexpr std::size_t weight_bytes = Model::arena_size * sizeof(T);
  static constexpr std::size_t buffer_floats =
      Model::activation_floats_per_sample + Model::inference_scratch_floats_per_sample;
  static constexpr std::size_t buffer_bytes = buffer_floats * sizeof(T);

  // `params` must hold Model::arena_size values in the model's arena order (as an exported
  // header's `parameters` or a trained model's parameters() do) and outlive this object.
  explicit constexpr StaticModel(const T* params) noexcept
    requires(Model::state_size == 0)
      : params_(params) {}
  // A model with non-trainable state (BatchNormalization) also takes it: state_size values, as
  // an exported header's `state` or a trained model's state() hold them. Only read.
  constexpr StaticModel(const T* params, const T* state) noexcept
      : params_(params), state_(state) {}

  // The outputs for one sample of input_size values; they live in this object until the next
  // call (copy them to keep them).
  const T* predict(const T* x) noexcept {
    std::copy(x, x + input_size, buf_);  // slot 0 of the activations is the input
    Buffers b{buf_};
    // Inference only reads the state (StatefulLayer's contract).
    return Model::forward_on(params_, const_cast<T*>(state_), b, 1, PassContext{});
  }
  // The index of the largest output (the predicted class; the first one on ties).
  std::size_t predict_class(const T* x) noexcept {
    const T* y = predict(x);
    return std::size_t(std::max_element(y, y + output_size) - y);
  }

 private:
  struct Buffers {  // what Model::forward_on asks of a workspace, for a batch of one
    T* base;
    T* activation(std::size_t offset) const noexcept { return base + offset; }
    T* scratch(std::size_t offset) const noexcept {
      return base + Model::activation_floats_per_sample + offset;
    }
  };
  const T* params_;
  const T* state_ = nullptr;
  alignas(kAlignBytes) T buf_[buffer_floats];  // the arena's and the kernels' alignment
};

}  // namespace ctnn::deploy
// ---- end ctnn/deploy/static_model.hpp ----
// ---- begin ctnn/kernels/int8.hpp ----
// ctnn/kernels/int8.hpp: the 8-bit integer kernels behind deploy/quantize.hpp.
//
//   pack_int8_weights: W(k, n) (int8, any strides) -> the packed layout gemm_int8 reads
//   gemm_int8:         C[m][n] = sum_k A[m][k] * W(k, n)   (A int8 or uint8, W int8, C int32)
//   quantize_8bit:     q = clamp(round_even(x * inv_scale))           (float -> int8/uint8)
//   requantize_8bit:   q = clamp(round_even((C * mult[n] + bias[n]) * inv_scale))
//   dequantize_int32:  y = act(C * mult[n] + bias[n])                  (-> float)
//
// How gemm_int8 multiplies: x86 before AVX-512 VNNI has no 8-bit dot product that is exact for
// signed x signed bytes (pmaddubsw saturates), so both operands are widened to int16 and
// multiplied pairwise into int32 lanes (Highway 1.0.3's ReorderWidenMulAccumulate, vpmaddwd on
// AVX2): one instruction does 2 multiply-adds per 32-bit lane, |a| <= 255 and |w| <= 127 keep
// every product exact and a sum of K < 2^31 / (255 * 127) ~ 66,000 terms cannot overflow.
// The product is vectorized along N (output channels): W is packed as [K/2][Np][2], so one
// 16-byte load widens to the weights of L columns for two consecutive k, and one broadcast 32-bit
// pair (a[k], a[k+1]) of a row of A serves every column vector. Columns are padded to
// kInt8ColumnPad and an odd K gets a zero k, both in the packing, so the inner loop has no tail.
// Integer sums are exact, so results are bitwise identical at any tile, block or thread split.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>


namespace ctnn::kernels {

// Packed weight columns are padded to a multiple of the widest int32 vector of the target.
inline constexpr std::size_t kInt8ColumnPad = HWY_MAX_BYTES / sizeof(std::int32_t);

constexpr std::size_t int8_padded_columns(std::size_t N) {
  return (N + kInt8ColumnPad - 1) / kInt8ColumnPad * kInt8ColumnPad;
}
// Bytes of the packed form of a K x N int8 weight matrix.
constexpr std::size_t int8_packed_size(std::size_t K, std::size_t N) {
  return (K + 1) / 2 * int8_padded_columns(N) * 2;
}

// Writes the packed form of W(k, n) = W[k * w_k + n * w_n] (K x N) into `packed`
// (int8_packed_size(K, N) bytes): packed[((k / 2) * Np + n) * 2 + k % 2] = W(k, n), zero in the
// padding. Dense weights [N][K] are w_k = 1, w_n = K; Conv2D's HWIO [K][N] are w_k = N, w_n = 1.
// constexpr so an exported header's weights are packed by the compiler, for its own target.
constexpr void pack_int8_weights(std::size_t K, std::size_t N, const std::int8_t* W, std::size_t w_k,
                                 std::size_t w_n, std::int8_t* packed) {
  const std::size_t Np = int8_padded_columns(N);
  for (std::size_t i = 0; i < int8_packed_size(K, N); ++i) packed[i] = 0;
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t n = 0; n < N; ++n) packed[((k / 2) * Np + n) * 2 + k % 2] = W[k * w_k + n * w_n];
}

// Value range of an 8-bit activation: uint8 [0, 255]; int8 symmetric [-127, 127] (-128 is left
// out so negation and symmetric scales stay exact).
template <class Q>
inline constexpr int kQuantMin = std::is_signed_v<Q> ? -127 : 0;
template <class Q>
inline constexpr int kQuantMax = std::is_signed_v<Q> ? 127 : 255;

}  // namespace ctnn::kernels

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// gemm_int8 tile: MR rows x NV int32 vectors. With 16 registers, 6 x 2 holds 12 accumulators,
// 2 widened weight vectors and 1 broadcast pair (the same budget as gemm_nn's float tile); 32
// registers allow 6 x 4.
inline constexpr std::size_t kI8MR = 6;
inline constexpr std::size_t kI8NV = kVectorRegisters == 16 ? 2 : 4;
// Pairs of k per block: for a 2-vector column tile on AVX2, 256 pairs are 8 KiB of packed weights,
// so the panel stays in L1 while every row tile passes over it. SCALAR (a microcontroller build)
// has no such cache but a small stack: 32 pairs keep gemm_int8's widened rows at 768 bytes.
inline constexpr std::size_t kI8KC = HWY_TARGET == HWY_SCALAR ? 32 : 256;

// Rows [0, rows) of A, k in [2 p0, min(2 p1, K)), widened to int16 into w[r * 2 * kI8KC + ...]
// with a zero after an odd K: each (k, k+1) int16 pair is then one 32-bit value that the tile
// broadcasts with a single load, instead of assembling it from two bytes for every column tile.
template <class TA>
HWY_INLINE void widen_rows(std::size_t rows, std::size_t p0, std::size_t p1, std::size_t K,
                           const TA* HWY_RESTRICT A, std::size_t lda, std::int16_t* HWY_RESTRICT w) {
  const hn::ScalableTag<std::int16_t> d16;
  const hn::Rebind<TA, decltype(d16)> d8;
  const std::size_t L = hn::Lanes(d16);
  const std::size_t k0 = 2 * p0, k1 = 2 * p1 < K ? 2 * p1 : K;
  for (std::size_t r = 0; r < rows; ++r) {
    const TA* a = A + r * lda;
    std::int16_t* out = w + r * 2 * kI8KC - k0;
    std::size_t k = k0;
    for (; k + L <= k1; k += L) hn::StoreU(hn::PromoteTo(d16, hn::LoadU(d8, a + k)), d16, out + k);
    for (; k < k1; ++k) out[k] = std::int16_t(a[k]);
    if (k1 % 2 == 1) out[k1] = 0;
  }
}

// One MR x NV tile over `count` pairs: C (+)= A * W for those k. Aw: the widened rows
// (widen_rows), Bp: the packed weights from the block's first pair and the tile's first column.
#if HWY_TARGET == HWY_SCALAR
// SCALAR (e.g. a Cortex-M build) has one lane per vector, too few to hold an int16 pair in an int32
// lane: the tile is plain C++ over the same packed layout, one column per "vector" (L = 1).
template <std::size_t MR, std::size_t NV>
HWY_INLINE void int8_tile(std::size_t count, const std::int16_t* HWY_RESTRICT Aw,
                          const std::int8_t* HWY_RESTRICT Bp, std::size_t Np,
                          std::int32_t* HWY_RESTRICT C, std::size_t ldc, std::size_t cols,
                          bool accumulate) {
  for (std::size_t r = 0; r < MR; ++r)
    for (std::size_t c = 0; c < NV && c < cols; ++c) {
      std::int32_t s = 0;
      for (std::size_t p = 0; p < count; ++p) {
        const std::int8_t* w = Bp + (p * Np + c) * 2;
        s += std::int32_t(Aw[r * 2 * kI8KC + 2 * p]) * w[0] +
             std::int32_t(Aw[r * 2 * kI8KC + 2 * p + 1]) * w[1];
      }
      std::int32_t* out = C + r * ldc + c;
      *out = (accumulate ? *out : 0) + s;
    }
}
#else
template <std::size_t MR, std::size_t NV>
HWY_INLINE void int8_tile(std::size_t count, const std::int16_t* HWY_RESTRICT Aw,
                          const std::int8_t* HWY_RESTRICT Bp, std::size_t Np,
                          std::int32_t* HWY_RESTRICT C, std::size_t ldc, std::size_t cols,
                          bool accumulate) {
  const hn::ScalableTag<std::int32_t> d32;
  const hn::Repartition<std::int16_t, decltype(d32)> d16;
  const hn::Rebind<std::int8_t, decltype(d16)> d8;
  const std::size_t L = hn::Lanes(d32);
  using V32 = hn::Vec<decltype(d32)>;
  using V16 = hn::Vec<decltype(d16)>;
  // sum1 is Highway's second accumulator for targets whose widening multiply splits odd and even
  // lanes (on AVX2 it stays zero and the compiler drops it).
  V32 s0[MR][NV], s1[MR][NV];
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) s0[r][c] = s1[r][c] = hn::Zero(d32);
  for (std::size_t p = 0; p < count; ++p) {
    V16 b[NV];
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c)
      b[c] = hn::PromoteTo(d16, hn::LoadU(d8, Bp + (p * Np + c * L) * 2));
    HWY_UNROLL(16)
    for (std::size_t r = 0; r < MR; ++r) {
      std::int32_t pair;  // (A(r, 2p), A(r, 2p+1)) as the int16 halves of one int32
      std::memcpy(&pair, Aw + r * 2 * kI8KC + 2 * p, sizeof pair);
      const V16 a = hn::BitCast(d16, hn::Set(d32, pair));
      HWY_UNROLL(16)
      for (std::size_t c = 0; c < NV; ++c)
        s0[r][c] = hn::ReorderWidenMulAccumulate(d32, a, b[c], s0[r][c], s1[r][c]);
    }
  }
  HWY_UNROLL(16)
  for (std::size_t r = 0; r < MR; ++r)
    HWY_UNROLL(16)
    for (std::size_t c = 0; c < NV; ++c) {
      V32 s = hn::RearrangeToOddPlusEven(s0[r][c], s1[r][c]);
      std::int32_t* out = C + r * ldc + c * L;
      if (c * L + L <= cols) {
        if (accumulate) s = hn::Add(s, hn::LoadU(d32, out));
        hn::StoreU(s, d32, out);
      } else {  // the last, partial column vector: only `cols - c * L` outputs exist
        alignas(64) std::int32_t lanes[HWY_MAX_BYTES / sizeof(std::int32_t)];
        hn::Store(s, d32, lanes);
        for (std::size_t j = 0; c * L + j < cols; ++j) out[j] = (accumulate ? out[j] : 0) + lanes[j];
      }
    }
}
#endif  // HWY_TARGET == HWY_SCALAR

// C[M x N] = A[M x K] * W[K x N] in int32, W given packed (kernels::pack_int8_weights). TA is
// int8_t or uint8_t. lda >= K, ldc >= N.
template <class TA>
void gemm_int8(std::size_t M, std::size_t N, std::size_t K, const TA* A, std::size_t lda,
               const std::int8_t* Bp, std::int32_t* C, std::size_t ldc) {
  static_assert(std::is_same_v<TA, std::int8_t> || std::is_same_v<TA, std::uint8_t>,
                "gemm_int8 multiplies int8 or uint8 activations by int8 weights.");
  const hn::ScalableTag<std::int32_t> d32;
  const std::size_t L = hn::Lanes(d32);
  const std::size_t Np = kernels::int8_padded_columns(N);
  const std::size_t pairs = (K + 1) / 2;
  const std::size_t vecs = (N + L - 1) / L;  // column vectors, the last maybe partial
  if (K == 0) {  // empty sums; the packed weights may be an empty (null) buffer
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n) C[m * ldc + n] = 0;
    return;
  }
  parallel_for_range(
      (vecs + kI8NV - 1) / kI8NV,
      [&](std::size_t t0, std::size_t t1) {
        const std::size_t v0 = t0 * kI8NV, v1 = t1 * kI8NV < vecs ? t1 * kI8NV : vecs;
        // The widened rows of a row tile for one K block: 6 x 512 int16 = 6 KiB (768 bytes on
        // SCALAR), on the stack of each thread (L1-resident while every column tile reads it).
        alignas(64) std::int16_t Aw[kI8MR * 2 * kI8KC];
        for (std::size_t p0 = 0; p0 < pairs || p0 == 0; p0 += kI8KC) {
          const std::size_t p1 = p0 + kI8KC < pairs ? p0 + kI8KC : pairs;
          const bool acc = p0 != 0;
          const std::int8_t* Bk = Bp + p0 * Np * 2;
          // Rows [m, m + MR) against the thread's columns.
          const auto rows = [&]<std::size_t MR>(std::size_t m) {
            widen_rows(MR, p0, p1, K, A + m * lda, lda, Aw);
            std::size_t v = v0;
            for (; v + kI8NV <= v1; v += kI8NV)
              int8_tile<MR, kI8NV>(p1 - p0, Aw, Bk + v * L * 2, Np, C + m * ldc + v * L, ldc,
                                   N - v * L, acc);
            for (; v < v1; ++v)
              int8_tile<MR, 1>(p1 - p0, Aw, Bk + v * L * 2, Np, C + m * ldc + v * L, ldc,
                               N - v * L, acc);
          };
          std::size_t m = 0;
          for (; m + kI8MR <= M; m += kI8MR) rows.template operator()<kI8MR>(m);
          for (; m < M; ++m) rows.template operator()<1>(m);
          if (pairs == 0) break;
        }
      },
      M * N * K >= kParallelWork);
}

// Shared by the stores below: f(d, i) computes the float values of elements [i, i + Lanes(d)) of
// a row; full vectors use the native tag and the tail a one-lane tag (one copy of the math).
template <class F>
HWY_INLINE void for_row(std::size_t N, F f) {
  const hn::ScalableTag<float> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = N - N % L;
  std::size_t i = 0;
  for (; i < full; i += L) f(d, i);
  const hn::CappedTag<float, 1> d1;
  for (; i < N; ++i) f(d1, i);
}

// Rounds (ties to even, as NearestInt does in the default rounding mode), clamps to Q's range
// and stores as Q. `lo` raises the lower bound (0 applies a ReLU).
template <class Q, class D, class V>
HWY_INLINE void store_quantized(D df, V y, int lo, Q* out) {
  const hn::RebindToSigned<D> di;
  const hn::Rebind<Q, D> dq;
  auto q = hn::Min(hn::Max(hn::NearestInt(y), hn::Set(di, lo)), hn::Set(di, kernels::kQuantMax<Q>));
  (void)df;
  hn::StoreU(hn::DemoteTo(dq, q), dq, out);
}

// q[i] = clamp(round(x[i] * inv_scale)) for i < n.
template <class Q>
void quantize_8bit(std::size_t n, const float* HWY_RESTRICT x, float inv_scale, Q* HWY_RESTRICT q) {
  for_row(n, [&](auto d, std::size_t i) {
    store_quantized<Q>(d, hn::Mul(hn::LoadU(d, x + i), hn::Set(d, inv_scale)),
                       kernels::kQuantMin<Q>, q + i);
  });
}

// out[m][n] = clamp(round((C[m][n] * mult[n] + bias[n]) * inv_scale)), clamped at 0 below too
// with relu: a Dense/Conv2D output requantized straight to the next layer's input scale.
template <class Q>
void requantize_8bit(std::size_t M, std::size_t N, const std::int32_t* C, std::size_t ldc,
                     const float* mult, const float* bias, float inv_scale, bool relu, Q* out,
                     std::size_t ldo) {
  const int lo = relu ? 0 : kernels::kQuantMin<Q>;
  for (std::size_t m = 0; m < M; ++m)
    for_row(N, [&](auto d, std::size_t i) {
      const hn::RebindToSigned<decltype(d)> di;
      const auto y = hn::MulAdd(hn::ConvertTo(d, hn::LoadU(di, C + m * ldc + i)),
                                hn::LoadU(d, mult + i), hn::LoadU(d, bias + i));
      store_quantized<Q>(d, hn::Mul(y, hn::Set(d, inv_scale)), lo, out + m * ldo + i);
    });
}

// out[m][n] = act(C[m][n] * mult[n] + bias[n]) in float (the last quantized layer of a run).
inline void dequantize_int32(std::size_t M, std::size_t N, const std::int32_t* C, std::size_t ldc,
                             const float* mult, const float* bias, bool relu, float* out,
                             std::size_t ldo) {
  for (std::size_t m = 0; m < M; ++m)
    for_row(N, [&](auto d, std::size_t i) {
      const hn::RebindToSigned<decltype(d)> di;
      auto y = hn::MulAdd(hn::ConvertTo(d, hn::LoadU(di, C + m * ldc + i)), hn::LoadU(d, mult + i),
                          hn::LoadU(d, bias + i));
      if (relu) y = hn::IfThenZeroElse(y <= hn::Zero(d), y);  // NaN stays NaN, as relu_forward
      hn::StoreU(y, d, out + m * ldo + i);
    });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::dequantize_int32;
using ctnn::HWY_NAMESPACE::gemm_int8;
using ctnn::HWY_NAMESPACE::quantize_8bit;
using ctnn::HWY_NAMESPACE::requantize_8bit;
}  // namespace ctnn::kernels
// ---- end ctnn/kernels/int8.hpp ----

namespace ctnn {
namespace deploy {

// The parameters the int8 forward pass reads, wherever they live. Per quantized (Dense/Conv2D)
// layer, in order: `packed` its int8 weights in kernels::pack_int8_weights' layout at the plan's
// packed offsets; per output channel `multipliers` (s_in * s_w[n], one int32 unit in real terms)
// and float `biases`; per scale slot (Int8Forward's plan: one per quantized layer's input, then
// one per 8-bit tensor only Adds and global average pools read) `input_scales` and
// `input_signed` (int8 or uint8).
struct Int8Parameters {
  const std::int8_t* packed;
  const float* multipliers;
  const float* biases;
  const float* input_scales;
  const bool* input_signed;
};

}  // namespace deploy

namespace detail {

enum class QKind {
  dense, conv, depthwise, relu, flatten, identity, maxpool, batch_norm, add, gap, join, other
};

// From the kind the layer declares (core/layer.hpp), never its name: a user layer runs in float.
// QKind::identity is a layer that is y = x in inference (Dropout, and the augmentation layers,
// which declare identity_in_inference): the plan makes it a view of its input.
template <class L>
constexpr QKind qkind() {
  if constexpr (requires { requires bool(L::identity_in_inference); }) {
    return QKind::identity;
  } else if constexpr (JoinLayer<L>) {
    if constexpr (requires { L::elementwise_in_place; })
      return L::elementwise_in_place ? QKind::add : QKind::join;  // Add; Concatenate
    else
      return QKind::join;
  } else {
    switch (layer_kind<L>) {
      case LayerKind::dense: return QKind::dense;
      case LayerKind::conv2d: return QKind::conv;
      case LayerKind::conv1d: return QKind::conv;  // Conv2D's implementation on a 1-row image
      case LayerKind::depthwise_conv2d: return QKind::depthwise;
      case LayerKind::relu: return QKind::relu;
      case LayerKind::flatten: return QKind::flatten;
      case LayerKind::dropout: return QKind::identity;
      case LayerKind::max_pool2d: return QKind::maxpool;
      case LayerKind::max_pool1d: return QKind::maxpool;  // MaxPool2D's code on a 1 x Steps image
      case LayerKind::reshape: return QKind::flatten;     // a view, as Flatten
      case LayerKind::batch_norm: return QKind::batch_norm;
      case LayerKind::global_avg_pool2d: return QKind::gap;
      case LayerKind::global_avg_pool1d: return QKind::gap;  // the same code on a 1 x Steps image
      default: return QKind::other;
    }
  }
}

// One static_assert per layer, so the compiler names the offending layer type.
template <class L>
struct Quantizable {
  static_assert(L::param_count == 0 || qkind<L>() == QKind::dense || qkind<L>() == QKind::conv ||
                    qkind<L>() == QKind::depthwise || qkind<L>() == QKind::batch_norm ||
                    layer_kind<L> == LayerKind::separable_conv2d,
                "quantize() handles Dense, Conv2D, Conv1D and DepthwiseConv2D as the only layers "
                "with parameters (and folds BatchNormalization into them): this layer has "
                "parameters of another kind (see the layer type in this instantiation).");
  static_assert(layer_kind<L> != LayerKind::separable_conv2d,
                "quantize() does not handle SeparableConv2D yet: write it as DepthwiseConv2D then "
                "Conv2D<F, 1, 1> (the same function; each quantizes), or keep the model in float "
                "(see the layer type in this instantiation).");
  static constexpr bool value = true;
};

// Named in the error when a BatchNormalization cannot be folded into the layer before it.
template <std::size_t Layer, class LayerType>
struct BatchNormalization_cannot_be_folded {
  static constexpr bool value = false;
};

// The kernel size and stride of a Conv2D, recovered from its window geometry type.
template <class G>
struct WindowArgs;
template <std::size_t H, std::size_t W, std::size_t C, std::size_t KH, std::size_t KW,
          std::size_t S, Padding P, std::size_t D>
struct WindowArgs<Window2D<H, W, C, KH, KW, S, P, D>> {
  static constexpr std::size_t kh = KH, kw = KW, stride = S, dilation = D;
};

// Calls f.template operator()<Q>() with Q = int8_t for signed data, uint8_t otherwise. With
// KnownUnsigned (bytes after a ReLU, which calibration can only find non-negative) only the
// uint8_t form exists: half the code to compile.
template <bool KnownUnsigned = false, class F>
void with_8bit_type(bool is_signed, F&& f) {
  if constexpr (KnownUnsigned) {
    f.template operator()<std::uint8_t>();
  } else {
    if (is_signed) f.template operator()<std::int8_t>();
    else f.template operator()<std::uint8_t>();
  }
}

// The int8 forward pass of a float model (a Sequential chain or a Graph), planned by the compiler
// from the model's node list, as the float model's own planner plans it:
//   - every Dense/Conv2D/Conv1D/DepthwiseConv2D is a quantized ("compute") layer (a depthwise one
//     sums its taps per channel in int32; the others are one int8 GEMM); a BatchNormalization whose
//     input is such a layer's output and read by nothing else is folded into that layer's
//     weights (fold_batch_norm) and disappears; any other BatchNormalization is refused;
//   - 8-bit tensors have scales ("slots": slot c < computes is compute layer c's input scale, the
//     others belong to tensors only Adds and global average pools read). The output of a compute
//     layer or an Add is stored in bytes when a single-consumer path of ReLU, Flatten, Reshape,
//     Dropout, MaxPool and folded BatchNormalization leads to a tensor whose every reader takes
//     bytes: compute layers, Adds and GlobalAveragePooling (a fan-out such as a residual block's
//     input included). A ReLU on that path becomes the clamp of the store. Otherwise (a
//     Concatenate, a float layer next, the output) it is stored in float, a compute layer's with a
//     ReLU directly after it fused into that store;
//   - an Add reading or writing bytes rescales: y = sum_k s_k * q_k (a float input as it is), then
//     y is requantized to its output's scale (clamped at 0 by a ReLU after it) or kept in float;
//     a GlobalAveragePooling reading bytes sums each channel in int32 and writes s * sum / P in
//     float (a mean is narrower than its inputs: the next layer quantizes it on its own scale);
//   - every other layer (Concatenate, other pooling to the mean, activations, Softmax, ...) runs
//     in float with the float model's own code, and a compute layer reading a float tensor
//     quantizes it first;
//   - each tensor gets a slot in one byte arena by liveness (first fit, 64-byte aligned), the
//     input is read where the caller keeps it: `plan.arena` bytes per sample hold every live
//     tensor at once.
// PositionBlock: output positions of one sample a Conv2D's GEMM runs at once (its patches and
// int32 sums are that many rows); the results do not depend on it, the scratch size does.
template <class Model, std::size_t PositionBlock = 64>
struct Int8Forward {
  static constexpr std::size_t num_layers = Model::num_layers;
  static constexpr std::size_t NT = num_layers + 1;  // tensors: the input, then each node's output
  template <std::size_t I>
  using layer = typename Model::template layer<I>;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;
  static constexpr std::size_t kNone = std::size_t(-1);

  // Everything about the node list the compiler can decide: kinds, folds, which tensors are
  // bytes, where each lives, and the sizes of the scratch buffers.
  struct Plan {
    std::array<QKind, num_layers> kind{};
    std::array<std::size_t, num_layers> next{};    // compute layer: the next one fed in bytes
    std::array<bool, num_layers> relu{};           // compute layer: ReLU applied in its store
    std::array<bool, num_layers> alias{};          // the node computes nothing (view, folded
                                                   // BatchNormalization, ReLU done by a store)
    std::array<bool, num_layers> inplace{};        // a float ReLU or Add writing over an input
                                                   // nothing reads after it
    std::array<std::size_t, num_layers> fold{};    // compute layer: the BatchNormalization folded
                                                   // into it (kNone: none)
    std::array<bool, num_layers> in_bytes{};       // input arrives as 8-bit
    std::array<bool, NT> bytes{};                  // tensor held as 8-bit
    std::array<bool, NT> unsigned_bytes{};         // 8-bit tensor after a ReLU: uint8 for sure
    std::array<bool, num_layers> unsigned_in{};    // compute layer reading such bytes
    std::array<std::size_t, NT> slot{};            // 8-bit tensor: its scale's slot
    std::array<std::size_t, NT> size{};            // tensor: values per sample
    std::array<std::size_t, num_layers> in_slot{};   // compute layer: its input scale's slot
    std::array<std::size_t, num_layers> out_slot{};  // compute layer or Add storing bytes: the
                                                     // slot of that output (kNone: float)
    std::array<bool, num_layers> add8{};           // Add reading or writing bytes (rescaling)
    // A slot >= computes is calibrated on input obs_input of node obs_node.
    std::array<std::size_t, num_layers + NT> obs_node{}, obs_input{};
    std::array<std::size_t, NT> root{};            // the tensor whose buffer it is
    std::array<std::size_t, NT> offset{};          // root tensor: its slot, bytes per sample
    std::array<std::size_t, num_layers> qin{};     // compute layer on a float input: the slot of
                                                   // its quantized copy
    std::array<std::size_t, num_layers> index{};   // compute layer: 0, 1, ... in order
    std::array<std::size_t, num_layers> K{}, N{}, rows{};  // GEMM per sample: rows x N, depth K
    std::array<std::size_t, num_layers> packed_offset{}, channel_offset{}, weight_offset{};
    std::size_t computes = 0, packed = 0, channels = 0, weights = 0;
    std::size_t scales = 0;                        // slots: computes, then the other 8-bit tensors
    std::size_t arena = 0;                         // bytes per sample of every live tensor
    std::size_t acc = 1, patches = 1;              // int32 / byte scratch per sample
    std::size_t float_scratch = 1;                 // for layers run in float
    std::size_t unfoldable = kNone;                // a BatchNormalization that cannot be folded
  };
  // Conv2D runs its GEMM over blocks of output positions of one sample: the block's patches
  // and int32 sums (64 x 32 filters = 8 KiB at the seed) stay in L1 between the GEMM and the
  // requantizing store, and a batch needs only a block of scratch per sample. QuantizedModel runs
  // 64 positions at a time, StaticQuantizedModel 16 (a microcontroller's RAM).
  static constexpr std::size_t kPositionBlock = PositionBlock;
  // Values an 8-bit Add sums at once in float (its scratch per sample).
  static constexpr std::size_t kAddChunk = 64;
  // Every input of every node, as (node, input index, tensor) edges.
  static constexpr std::size_t num_edges = [] {
    std::size_t e = 0;
    detail::static_for<num_layers>([&]<std::size_t I>() { e += Model::template inputs_of<I>.size(); });
    return e;
  }();

  static constexpr std::size_t round64(std::size_t v) { return (v + 63) / 64 * 64; }
  static constexpr bool is_compute(QKind k) {
    return k == QKind::dense || k == QKind::conv || k == QKind::depthwise;
  }
  // The weight matrix of compute layer i in memory: GEMM-packed (kernels::pack_int8_weights) or,
  // for a DepthwiseConv2D, plain [tap][channel].
  static constexpr std::size_t stored_size(QKind k, std::size_t K, std::size_t N) {
    return k == QKind::depthwise ? K * N : kernels::int8_packed_size(K, N);
  }

  static constexpr Plan make_plan() {
    Plan p;
    std::array<std::size_t, NT> size{}, consumers{}, sole{}, end{};
    std::array<std::size_t, num_layers> input{};  // a single-input node's input tensor
    std::array<std::size_t, num_edges + 1> edge_node{}, edge_k{}, edge_t{};
    std::size_t edges = 0;
    size[0] = input_size;
    for (std::size_t t = 0; t < NT; ++t) sole[t] = p.slot[t] = kNone;
    detail::static_for<num_layers>([&]<std::size_t I>() {
      using L = layer<I>;
      static_assert(detail::Quantizable<L>::value);
      p.kind[I] = detail::qkind<L>();
      p.next[I] = p.fold[I] = p.qin[I] = p.in_slot[I] = p.out_slot[I] = kNone;
      size[I + 1] = L::output_shape::size;
      input[I] = Model::template inputs_of<I>[0];
      std::size_t k = 0;
      for (std::size_t t : Model::template inputs_of<I>) {
        ++consumers[t];
        sole[t] = I;
        edge_node[edges] = I, edge_k[edges] = k++, edge_t[edges++] = t;
      }
      if constexpr (detail::qkind<L>() == QKind::dense) {
        p.K[I] = L::in, p.N[I] = L::output_shape::size, p.rows[I] = 1;
        p.acc = std::max(p.acc, p.N[I]);
      } else if constexpr (detail::qkind<L>() == QKind::conv) {
        p.K[I] = L::patch, p.N[I] = L::output_shape::dims[L::output_shape::rank - 1],
        p.rows[I] = L::positions;
        p.acc = std::max(p.acc, kPositionBlock * p.N[I]);
        p.patches = std::max(p.patches, kPositionBlock * p.K[I]);
      } else if constexpr (detail::qkind<L>() == QKind::depthwise) {
        p.K[I] = WindowArgs<typename L::geom>::kh * WindowArgs<typename L::geom>::kw;
        p.N[I] = L::output_shape::dims[2];
        p.rows[I] = L::output_shape::dims[0] * L::output_shape::dims[1];
        p.acc = std::max(p.acc, kPositionBlock * p.N[I]);
      }
      if (is_compute(p.kind[I])) {
        p.in_slot[I] = p.index[I] = p.computes++;
        p.packed_offset[I] = p.packed;
        p.packed += round64(stored_size(p.kind[I], p.K[I], p.N[I]));
        p.channel_offset[I] = p.channels;
        p.channels += p.N[I];
        p.weight_offset[I] = p.weights;
        p.weights += p.K[I] * p.N[I];
      }
      // A BatchNormalization right after a Dense, Conv2D or DepthwiseConv2D that nothing
      // else reads folds into it.
      if constexpr (detail::qkind<L>() == QKind::batch_norm) {
        const std::size_t t = input[I];
        bool folds = false;
        if constexpr (I > 0) {
          using P = layer<I - 1>;
          folds = t == I && (layer_kind<P> == LayerKind::dense || layer_kind<P> == LayerKind::conv2d ||
                             layer_kind<P> == LayerKind::depthwise_conv2d);
        }
        if (folds) {
          p.fold[I - 1] = I;
          p.alias[I] = true;
        } else if (p.unfoldable == kNone) {
          p.unfoldable = I;
        }
      }
    });
    for (std::size_t i = 0; i < num_layers; ++i)  // a fold needs its input read by the BN only
      if (p.kind[i] == QKind::batch_norm && p.alias[i] && consumers[input[i]] != 1) {
        p.alias[i] = false;
        p.fold[i - 1] = kNone;
        if (p.unfoldable == kNone) p.unfoldable = i;
      }
    for (std::size_t i = 0; i < num_layers; ++i)
      if (p.kind[i] == QKind::flatten || p.kind[i] == QKind::identity) p.alias[i] = true;
    // Byte paths: from each compute layer and Add along single consumers through byte-safe
    // layers, to a tensor every reader of which takes bytes.
    const auto passes_bytes = [&](std::size_t c) {
      return p.kind[c] == QKind::relu || p.kind[c] == QKind::maxpool ||
             p.kind[c] == QKind::flatten || p.kind[c] == QKind::identity ||
             (p.kind[c] == QKind::batch_norm && p.alias[c]);
    };
    const auto reads_bytes = [&](std::size_t c) {
      return is_compute(p.kind[c]) || p.kind[c] == QKind::add || p.kind[c] == QKind::gap;
    };
    p.scales = p.computes;
    for (std::size_t i = 0; i < num_layers; ++i) {
      if (!is_compute(p.kind[i]) && p.kind[i] != QKind::add) continue;
      std::size_t t = i + 1;
      bool relu = false;
      while (consumers[t] == 1 && passes_bytes(sole[t])) {
        relu = relu || p.kind[sole[t]] == QKind::relu;
        t = sole[t] + 1;
      }
      bool all = consumers[t] > 0;
      std::size_t first_edge = kNone, first_compute = kNone;
      for (std::size_t e = 0; e < edges; ++e) {
        if (edge_t[e] != t) continue;
        all = all && reads_bytes(edge_node[e]);
        if (first_edge == kNone) first_edge = e;
        if (first_compute == kNone && is_compute(p.kind[edge_node[e]])) first_compute = edge_node[e];
      }
      if (all) {
        // The slot of the first compute layer reading it (every compute reader shares it), or a
        // slot of its own, calibrated where it is first read.
        std::size_t slot = first_compute != kNone ? p.index[first_compute] : p.scales++;
        if (first_compute == kNone) {
          p.obs_node[slot] = edge_node[first_edge];
          p.obs_input[slot] = edge_k[first_edge];
        }
        p.out_slot[i] = slot;
        p.relu[i] = relu;
        if (consumers[t] == 1 && is_compute(p.kind[sole[t]])) p.next[i] = sole[t];
        for (std::size_t u = i + 1;; u = sole[u] + 1) {
          p.bytes[u] = true;
          p.unsigned_bytes[u] = relu;  // the store clamps at 0 when a ReLU lies on the path
          p.slot[u] = slot;
          if (u == t) break;
          p.in_bytes[sole[u]] = true;
          if (p.kind[sole[u]] == QKind::relu) p.alias[sole[u]] = true;  // the store's clamp
        }
        for (std::size_t e = 0; e < edges; ++e) {
          if (edge_t[e] != t) continue;
          const std::size_t c = edge_node[e];
          if (p.kind[c] != QKind::add) p.in_bytes[c] = true;
          if (is_compute(p.kind[c])) {
            p.in_slot[c] = slot;
            p.unsigned_in[c] = relu;
          }
        }
      } else if (is_compute(p.kind[i])) {
        // A float store: a ReLU reading it alone (after a folded BatchNormalization) is fused.
        std::size_t u = i + 1;
        while (consumers[u] == 1 && p.kind[sole[u]] == QKind::batch_norm && p.alias[sole[u]])
          u = sole[u] + 1;
        if (consumers[u] == 1 && p.kind[sole[u]] == QKind::relu) {
          p.relu[i] = true;
          p.alias[sole[u]] = true;
        }
      }
    }
    // An Add with an 8-bit input or output rescales in float chunks.
    for (std::size_t e = 0; e < edges; ++e)
      if (p.kind[edge_node[e]] == QKind::add && p.bytes[edge_t[e]]) p.add8[edge_node[e]] = true;
    for (std::size_t i = 0; i < num_layers; ++i)
      if (p.kind[i] == QKind::add && p.bytes[i + 1]) p.add8[i] = true;
    for (std::size_t i = 0; i < num_layers; ++i)
      if (p.add8[i]) p.float_scratch = std::max(p.float_scratch, kAddChunk);
    // Scratch for the layers run in float (an alias runs nothing: Dropout's mask is not needed).
    detail::static_for<num_layers>([&]<std::size_t I>() {
      if (!p.alias[I] && !is_compute(p.kind[I]) && !p.add8[I] && !p.in_bytes[I])
        p.float_scratch = std::max(p.float_scratch, layer<I>::scratch_per_sample);
    });
    // Buffers: an alias shares its input's; a float ReLU or Add whose input (one of the first
    // two, for an Add) of its own size is read by nothing after it writes over that input. A
    // buffer lives until the last node reading any tensor in it has run (the output until the
    // end). The input (tensor 0) stays the caller's.
    std::array<std::size_t, NT> last{};  // the last node reading each tensor (views included)
    detail::static_for<num_layers>([&]<std::size_t I>() {
      for (std::size_t t : Model::template inputs_of<I>) last[t] = std::max(last[t], I);
    });
    for (std::size_t t = 0; t < NT; ++t) p.root[t] = t;
    detail::static_for<num_layers>([&]<std::size_t I>() {
      if (p.alias[I]) {
        p.root[I + 1] = p.root[input[I]];
        return;
      }
      constexpr bool add = [] {
        if constexpr (requires { layer<I>::elementwise_in_place; })
          return JoinLayer<layer<I>> && layer<I>::elementwise_in_place;
        else
          return false;
      }();
      if (!(add || p.kind[I] == QKind::relu)) return;
      constexpr auto ins = Model::template inputs_of<I>;
      for (std::size_t k = 0; k < std::min<std::size_t>(ins.size(), 2); ++k) {
        const std::size_t r = p.root[ins[k]];
        // Of the same element width: an 8-bit Add reads each chunk of its inputs before it
        // writes that chunk.
        bool dead = r != 0 && p.bytes[r] == p.bytes[I + 1] && size[r] == size[I + 1];
        for (std::size_t t = 0; t <= I; ++t)
          if (p.root[t] == r && last[t] > I) dead = false;
        if (dead) {
          p.root[I + 1] = r;
          p.inplace[I] = true;
          return;
        }
      }
    });
    for (std::size_t t = 0; t < NT; ++t) end[t] = 0;
    detail::static_for<num_layers>([&]<std::size_t I>() {
      if (!p.alias[I])
        for (std::size_t t : Model::template inputs_of<I>)
          end[p.root[t]] = std::max(end[p.root[t]], I);
    });
    end[p.root[num_layers]] = kNone;
    // First fit over the slots live at once: ids 0 .. NT-1 tensors, NT + i node i's quantized input.
    std::array<std::size_t, NT + num_layers> off{}, len{};
    std::array<bool, NT + num_layers> live{};
    const auto place = [&](std::size_t id, std::size_t n) {
      const auto fits = [&](std::size_t o) {
        for (std::size_t k = 0; k < NT + num_layers; ++k)
          if (live[k] && o < off[k] + len[k] && off[k] < o + n) return false;
        return true;
      };
      std::size_t best = fits(0) ? 0 : kNone;
      for (std::size_t k = 0; k < NT + num_layers; ++k)
        if (live[k] && off[k] + len[k] < best && fits(off[k] + len[k])) best = off[k] + len[k];
      off[id] = best;
      len[id] = n;
      live[id] = true;
      p.arena = std::max(p.arena, best + n);
    };
    for (std::size_t i = 0; i < num_layers; ++i) {
      if (p.alias[i]) continue;
      if (is_compute(p.kind[i]) && !p.in_bytes[i]) {
        place(num_layers + 1 + i, round64(size[input[i]]));
        p.qin[i] = off[num_layers + 1 + i];
      }
      if (p.root[i + 1] == i + 1)
        place(i + 1, round64(size[i + 1] * (p.bytes[i + 1] ? 1 : sizeof(float))));
      live[num_layers + 1 + i] = false;
      for (std::size_t t = 0; t < NT; ++t)
        if (live[t] && p.root[t] == t && end[t] == i) live[t] = false;
    }
    for (std::size_t t = 0; t < NT; ++t) p.offset[t] = off[p.root[t]];
    p.size = size;
    return p;
  }
  static constexpr Plan plan = make_plan();
  static_assert(plan.computes > 0,
                "quantize() needs a model with at least one Dense or Conv2D layer to quantize.");
  static_assert(plan.unfoldable == kNone ||
                    BatchNormalization_cannot_be_folded<plan.unfoldable, layer<(plan.unfoldable < num_layers ? plan.unfoldable : 0)>>::value,
                "quantize() folds each BatchNormalization into the Dense or Conv2D right before "
                "it; the one named in BatchNormalization_cannot_be_folded<index, layer> follows "
                "another layer (or a tensor something else also reads): keep this model in float.");
  static_assert(plan.root[num_layers] != 0 && !plan.bytes[num_layers]);

  // Buffers for n samples: arena plan.arena * n bytes (64-byte aligned); acc, patches and
  // fscratch plan.acc, plan.patches and plan.float_scratch per sample.
  struct Workspace {
    std::uint8_t* arena;
    std::int32_t* acc;
    std::uint8_t* patches;
    float* fscratch;
  };

  // patches[(pos - pos0)][(ky*KW + kx)*C + c] = x at that tap, 0 (the zero point) in the padding,
  // for output positions [pos0, pos1) of one sample: Conv2D's im2col on 8-bit values.
  template <class L, class Q>
  static void im2col8(const Q* x, std::size_t pos0, std::size_t pos1, Q* patches) {
    using G = typename L::geom;
    using A = detail::WindowArgs<G>;
    constexpr std::size_t C = L::C;
    for (std::size_t pos = pos0; pos < pos1; ++pos) {
      const std::size_t oy = pos / G::ow, ox = pos % G::ow;
      Q* row = patches + (pos - pos0) * L::patch;
      for (std::size_t ky = 0; ky < A::kh; ++ky) {
        const std::ptrdiff_t iy = std::ptrdiff_t(oy * A::stride + ky * A::dilation) - std::ptrdiff_t(G::pad_top);
        for (std::size_t kx = 0; kx < A::kw; ++kx) {
          const std::ptrdiff_t ix =
              std::ptrdiff_t(ox * A::stride + kx * A::dilation) - std::ptrdiff_t(G::pad_left);
          Q* dst = row + (ky * A::kw + kx) * C;
          if (iy < 0 || ix < 0 || iy >= std::ptrdiff_t(L::H) || ix >= std::ptrdiff_t(L::W))
            std::memset(dst, 0, C);
          else
            std::memcpy(dst, x + (std::size_t(iy) * L::W + std::size_t(ix)) * C, C);
        }
      }
    }
  }

  // The int32 products of quantized layer I, stored as bytes of the next layer's input scale or
  // as floats. x: n samples of I's input in bytes (signedness p.input_signed).
  template <std::size_t I>
  static void run_compute(const deploy::Int8Parameters& p, const Workspace& w,
                          const std::uint8_t* x, std::size_t n, void* y) {
    using L = layer<I>;
    constexpr std::size_t c = plan.in_slot[I], K = plan.K[I], N = plan.N[I];
    const std::int8_t* W = p.packed + plan.packed_offset[I];
    const float* mult = p.multipliers + plan.channel_offset[I];
    const float* bias = p.biases + plan.channel_offset[I];
    // Stores rows [r0, r0 + rows) of one sample's (or the batch's) int32 products.
    const auto store = [&](const std::int32_t* acc, std::size_t rows, std::size_t out_offset) {
      if constexpr (plan.out_slot[I] != kNone) {
        constexpr std::size_t nc = plan.out_slot[I];
        with_8bit_type<plan.relu[I]>(p.input_signed[nc], [&]<class Q>() {
          kernels::requantize_8bit(rows, N, acc, N, mult, bias, 1.0f / p.input_scales[nc],
                                   plan.relu[I], static_cast<Q*>(y) + out_offset, N);
        });
      } else {
        kernels::dequantize_int32(rows, N, acc, N, mult, bias, plan.relu[I],
                                  static_cast<float*>(y) + out_offset, N);
      }
    };
    with_8bit_type<plan.unsigned_in[I]>(p.input_signed[c], [&]<class TA>() {
      const TA* xa = reinterpret_cast<const TA*>(x);
      if constexpr (plan.kind[I] == QKind::dense) {
        kernels::gemm_int8(n, N, K, xa, K, W, w.acc, N);
        store(w.acc, n, 0);
      } else if constexpr (plan.kind[I] == QKind::depthwise) {
        // acc[pos][ch] = sum over the window's taps inside the input of x[pixel][ch / M] *
        // W[tap][ch] (padding is the zero point: it adds nothing).
        constexpr std::size_t P = plan.rows[I], C = L::C, M = N / C, OW = L::geom::ow;
        parallel_for(n, [&](std::size_t s) {
          const TA* xs = xa + s * L::input_shape::size;
          std::int32_t* acc = w.acc + s * plan.acc;
          for (std::size_t p0 = 0; p0 < P; p0 += kPositionBlock) {
            const std::size_t rows = std::min(kPositionBlock, P - p0);
            for (std::size_t r = 0; r < rows; ++r) {
              std::int32_t* a = acc + r * N;
              for (std::size_t ch = 0; ch < N; ++ch) a[ch] = 0;
              L::geom::for_taps((p0 + r) / OW, (p0 + r) % OW, [&](std::size_t tap, std::size_t pixel) {
                const TA* px = xs + pixel * C;
                const std::int8_t* wt = W + tap * N;
                for (std::size_t ch = 0; ch < N; ++ch)
                  a[ch] += std::int32_t(px[ch / M]) * std::int32_t(wt[ch]);
              });
            }
            store(acc, rows, s * L::output_shape::size + p0 * N);
          }
        }, n * P * K * N >= kParallelWork);
      } else {
        constexpr std::size_t P = L::positions;
        parallel_for(n, [&](std::size_t s) {
          TA* patches = reinterpret_cast<TA*>(w.patches) + s * plan.patches;
          std::int32_t* acc = w.acc + s * plan.acc;
          for (std::size_t p0 = 0; p0 < P; p0 += kPositionBlock) {
            const std::size_t rows = std::min(kPositionBlock, P - p0);
            im2col8<L>(xa + s * L::input_shape::size, p0, p0 + rows, patches);
            kernels::gemm_int8(rows, N, K, patches, K, W, acc, N);
            store(acc, rows, s * L::output_shape::size + p0 * N);
          }
        }, n * P * K * N >= kParallelWork);
      }
    });
  }

  // Max pooling on 8-bit values, with the float layer's window geometry (pads, dilation): padded
  // taps are skipped as in float, and no window lies wholly in the padding (the layer's
  // static_assert), so every output is the max of real bytes.
  template <class L, class Q>
  static void maxpool8(const Q* x, Q* y, std::size_t n) {
    constexpr std::size_t C = L::C, OH = L::geom::oh, OW = L::geom::ow;
    parallel_for(n, [&](std::size_t s) {
      const Q* xs = x + s * L::input_shape::size;
      Q* ys = y + s * L::output_shape::size;
      for (std::size_t oy = 0; oy < OH; ++oy)
        for (std::size_t ox = 0; ox < OW; ++ox)
          for (std::size_t ch = 0; ch < C; ++ch) {
            Q m = std::numeric_limits<Q>::lowest();
            L::for_window(oy, ox, [&](std::size_t off) { m = std::max(m, xs[off + ch]); });
            ys[(oy * OW + ox) * C + ch] = m;
          }
    }, n * L::input_shape::size >= kParallelWork);
  }

  // An Add with 8-bit inputs or output: per sample, kAddChunk values at a time, y = x_0 + x_1 +
  // ... in float (an 8-bit input dequantized, s * q), stored as bytes of its output's scale (the
  // clamp at 0 of a uint8 output is the ReLU after it) or as floats. Each chunk of every input is
  // read before that chunk of y is written, so y may be the storage of an input of its width.
  template <std::size_t I>
  static void run_add(const deploy::Int8Parameters& p, const Workspace& w, const float* x,
                      std::size_t n, void* y) {
    constexpr auto ins = Model::template inputs_of<I>;
    constexpr std::size_t S = plan.size[I + 1];
    parallel_for(n, [&](std::size_t s) {
      float* acc = w.fscratch + s * plan.float_scratch;
      for (std::size_t i0 = 0; i0 < S; i0 += kAddChunk) {
        const std::size_t m = std::min(kAddChunk, S - i0);
        detail::static_for<ins.size()>([&]<std::size_t K>() {
          constexpr std::size_t t = ins[K];
          const void* src = tensor(w, x, t, n);
          if constexpr (plan.bytes[t]) {
            const float sc = p.input_scales[plan.slot[t]];
            with_8bit_type<plan.unsigned_bytes[t]>(p.input_signed[plan.slot[t]], [&]<class Q>() {
              const Q* q = static_cast<const Q*>(src) + s * S + i0;
              for (std::size_t i = 0; i < m; ++i)
                acc[i] = K == 0 ? sc * float(q[i]) : acc[i] + sc * float(q[i]);
            });
          } else {
            const float* f = static_cast<const float*>(src) + s * S + i0;
            for (std::size_t i = 0; i < m; ++i) acc[i] = K == 0 ? f[i] : acc[i] + f[i];
          }
        });
        if constexpr (plan.bytes[I + 1]) {
          constexpr std::size_t o = plan.out_slot[I];
          with_8bit_type<plan.unsigned_bytes[I + 1]>(p.input_signed[o], [&]<class Q>() {
            kernels::quantize_8bit(m, acc, 1.0f / p.input_scales[o], static_cast<Q*>(y) + s * S + i0);
          });
        } else {
          std::memcpy(static_cast<float*>(y) + s * S + i0, acc, m * sizeof(float));
        }
      }
    }, n * S >= kParallelWork);
  }

  // GlobalAveragePooling on 8-bit values: each channel's bytes summed exactly in int32, then
  // y[c] = sum * (s / P) in float.
  template <class L, class Q>
  static void gap8(const Q* x, float scale, float* y, std::size_t n) {
    constexpr std::size_t C = L::C, P = L::positions;
    const float unit = scale / float(P);
    parallel_for(n, [&](std::size_t s) {
      const Q* xs = x + s * L::input_shape::size;
      for (std::size_t ch = 0; ch < C; ++ch) {
        std::int32_t sum = 0;
        for (std::size_t q = 0; q < P; ++q) sum += std::int32_t(xs[q * C + ch]);
        y[s * C + ch] = float(sum) * unit;
      }
    }, n * L::input_shape::size >= kParallelWork);
  }

  // Where tensor t of n samples lives: the caller's input or a slot of the arena.
  static void* tensor(const Workspace& w, const float* x, std::size_t t, std::size_t n) {
    if (plan.root[t] == 0) return const_cast<float*>(x);
    return w.arena + plan.offset[t] * n;
  }

  // n samples (x: n * input_size floats) through every node into out (n * output_size). Each
  // tensor is read and written in its planned slot; the plan says whether it holds floats or
  // bytes.
  static void run(const deploy::Int8Parameters& p, const Workspace& w, const float* x,
                  std::size_t n, float* out) {
    const PassContext ctx{};
    detail::static_for<num_layers>([&]<std::size_t I>() {
      using L = layer<I>;
      constexpr QKind kind = plan.kind[I];
      constexpr std::size_t in = Model::template inputs_of<I>[0];
      void* y = tensor(w, x, I + 1, n);
      if constexpr (plan.alias[I]) {
        return;  // a view, inference-mode Dropout, a folded BatchNormalization or an applied ReLU
      } else if constexpr (is_compute(kind)) {
        constexpr std::size_t c = plan.in_slot[I];
        std::uint8_t* qx;
        if constexpr (plan.in_bytes[I]) {
          qx = static_cast<std::uint8_t*>(tensor(w, x, in, n));
        } else {  // a float input is quantized first
          qx = w.arena + plan.qin[I] * n;
          const float* fx = static_cast<const float*>(tensor(w, x, in, n));
          with_8bit_type(p.input_signed[c], [&]<class Q>() {
            kernels::quantize_8bit(n * L::input_shape::size, fx, 1.0f / p.input_scales[c],
                                   reinterpret_cast<Q*>(qx));
          });
        }
        run_compute<I>(p, w, qx, n, y);
      } else if constexpr (plan.add8[I]) {
        run_add<I>(p, w, x, n, y);
      } else if constexpr (plan.in_bytes[I] && kind == QKind::gap) {
        with_8bit_type<plan.unsigned_bytes[in]>(p.input_signed[plan.slot[in]], [&]<class Q>() {
          gap8<L>(static_cast<const Q*>(tensor(w, x, in, n)), p.input_scales[plan.slot[in]],
                  static_cast<float*>(y), n);
        });
      } else if constexpr (plan.in_bytes[I]) {
        static_assert(kind == QKind::maxpool, "only max pooling, Add and global average pooling "
                                              "compute on bytes");
        with_8bit_type<plan.unsigned_bytes[in]>(p.input_signed[plan.slot[in]], [&]<class Q>() {
          maxpool8<L>(static_cast<const Q*>(tensor(w, x, in, n)), static_cast<Q*>(y), n);
        });
      } else if constexpr (plan.inplace[I] && kind == QKind::relu) {
        float* v = static_cast<float*>(y);  // over its input: NaN stays NaN, as ReLU's kernel
        for (std::size_t i = 0; i < n * L::output_shape::size; ++i) v[i] = v[i] <= 0.0f ? 0.0f : v[i];
      } else if constexpr (kind == QKind::join || kind == QKind::add) {  // an in-place Add
                                                                          // writes over input 0 or 1
        std::array<const float*, L::arity> xs;
        for (std::size_t k = 0; k < L::arity; ++k)
          xs[k] = static_cast<const float*>(tensor(w, x, Model::template inputs_of<I>[k], n));
        L::forward(xs.data(), static_cast<float*>(y), n);
      } else {
        L::forward(nullptr, static_cast<const float*>(tensor(w, x, in, n)), static_cast<float*>(y),
                   n, w.fscratch, ctx);
      }
    });
    std::memcpy(out, tensor(w, x, num_layers, n), n * output_size * sizeof(float));
    // 8-bit values cannot hold NaN or infinity: quantize_8bit clamps them into range, and the
    // sample would silently get a class. A sample with a non-finite input value gets NaN outputs
    // instead (its float model's outputs would not be finite either). One scan of the input.
    for (std::size_t s = 0; s < n; ++s)
      if (kernels::first_non_finite(input_size, x + s * input_size) != input_size)
        std::fill_n(out + s * output_size, output_size, std::numeric_limits<float>::quiet_NaN());
  }
};

}  // namespace detail

namespace deploy {

// The packed form (kernels::pack_int8_weights) of every quantized layer's int8 weights, computed
// by the compiler: `weights` holds, layer after layer, W(k, n) at [k * N + n]. The packing pads
// columns to the SIMD width of the target being compiled, so an exported header stores the plain
// weights and each target packs them for itself.
template <class Model>
constexpr auto pack_int8_weights(const std::int8_t (&weights)[ctnn::detail::Int8Forward<Model>::plan.weights]) {
  constexpr auto& plan = ctnn::detail::Int8Forward<Model>::plan;
  std::array<std::int8_t, plan.packed> packed{};
  for (std::size_t i = 0; i < Model::num_layers; ++i)
    if (plan.kind[i] == ctnn::detail::QKind::depthwise)
      for (std::size_t k = 0; k < plan.K[i] * plan.N[i]; ++k)
        packed[plan.packed_offset[i] + k] = weights[plan.weight_offset[i] + k];
    else if (ctnn::detail::Int8Forward<Model>::is_compute(plan.kind[i]))
      kernels::pack_int8_weights(plan.K[i], plan.N[i], weights + plan.weight_offset[i], plan.N[i],
                                 1, packed.data() + plan.packed_offset[i]);
  return packed;
}

// Int8 inference on one sample of `Model` (a float ctnn::Sequential type), computing exactly what
// QuantizedModel<Model> computes, over parameters it does not own (an exported header's constant
// arrays: export_header in deploy/export.hpp) with every buffer an array member.
template <class Model>
class StaticQuantizedModel {
  using Forward = ctnn::detail::Int8Forward<Model, 16>;
  static constexpr auto& plan = Forward::plan;

 public:
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;
  // Read-only parameters: packed int8 weights (columns padded to the SIMD width), per output
  // channel a float multiplier and bias, per scale slot a float scale and a bool.
  static constexpr std::size_t weight_bytes =
      plan.packed + 2 * plan.channels * sizeof(float) + plan.scales * (sizeof(float) + sizeof(bool));
  // Each buffer is 64-byte aligned (the kernels' alignment): the sum of their sizes rounded up to
  // 64 bytes, so an object is buffer_bytes plus its parameter pointers (padded to 64 bytes).
  static constexpr std::size_t buffer_bytes =
      Forward::round64(plan.arena) + Forward::round64(plan.float_scratch * sizeof(float)) +
      Forward::round64(output_size * sizeof(float)) + Forward::round64(plan.acc * sizeof(std::int32_t)) +
      Forward::round64(plan.patches);

  // `params` must point to arrays laid out as Int8Parameters says and outlive this object.
  explicit constexpr StaticQuantizedModel(const Int8Parameters& params) noexcept : params_(params) {}

  // The outputs for one sample of input_size values; they live in this object until the next
  // call (copy them to keep them).
  const float* predict(const float* x) noexcept {
    const typename Forward::Workspace w{arena_, acc_, patches_, fscratch_};
    Forward::run(params_, w, x, 1, out_);
    return out_;
  }
  // The index of the largest output (the predicted class; the first one on ties). A sample with
  // a NaN or infinite input has NaN outputs and gets 0 here: check predict()'s outputs for NaN
  // when the input may hold them (this class never throws).
  std::size_t predict_class(const float* x) noexcept {
    const float* y = predict(x);
    return std::size_t(std::max_element(y, y + output_size) - y);
  }

 private:
  Int8Parameters params_;
  // The kernels' alignment, as in StaticModel.
  alignas(kAlignBytes) std::uint8_t arena_[plan.arena];  // every live tensor, float or 8-bit
  alignas(kAlignBytes) float fscratch_[plan.float_scratch];
  alignas(kAlignBytes) float out_[output_size];
  alignas(kAlignBytes) std::int32_t acc_[plan.acc];
  alignas(kAlignBytes) std::uint8_t patches_[plan.patches];
};

}  // namespace deploy
}  // namespace ctnn
// ---- end ctnn/deploy/static_quantized.hpp ----
// ---- begin ctnn/layers/fold_batch_norm.hpp ----
// ctnn/layers/fold_batch_norm.hpp: fold an inference-mode BatchNormalization into the Dense or
// Conv2D before it.
//
// In inference a BatchNormalization is an affine map per channel, y = s[c] * (z - mean[c]) +
// beta[c] with s[c] = gamma[c] / sqrt(moving_var[c] + epsilon), so after z = W x + b it can be
// merged into the weights:
//     W'[..][c] = W[..][c] * s[c],   b'[c] = (b[c] - moving_mean[c]) * s[c] + beta[c].
// The folded layer alone then computes what the pair computed (up to rounding): one layer fewer
// to run at inference, to quantize to int8 and to export. These are functions over parameter
// arrays, for the planner to call on its arenas. s is computed in double and rounded once.
// Only valid when nothing (no activation) runs between the two layers.
#include <cmath>
#include <cstddef>
#include <type_traits>


namespace ctnn {

// Where the output channel c sits in a weight array of fan_in x channels values.
enum class WeightLayout {
  channels_last,   // W[i][c], index i * channels + c (Conv2D's [KH][KW][C][Filters])
  channels_first,  // W[c][i], index c * fan_in + i (Dense's [Units][In])
};

// Folds a BatchNormalization's gamma, beta, moving mean and moving variance (channels values
// each) and its epsilon into weights (fan_in x channels, in `layout`) and bias (channels), in
// place.
template <class T>
void fold_batch_norm(T* weights, T* bias, std::size_t fan_in, std::size_t channels,
                     WeightLayout layout, const T* gamma, const T* beta, const T* moving_mean,
                     const T* moving_var, double epsilon) {
  for (std::size_t c = 0; c < channels; ++c) {
    const double s = double(gamma[c]) / std::sqrt(double(moving_var[c]) + epsilon);
    for (std::size_t i = 0; i < fan_in; ++i) {
      T& w = layout == WeightLayout::channels_last ? weights[i * channels + c]
                                                   : weights[c * fan_in + i];
      w = static_cast<T>(double(w) * s);
    }
    bias[c] = static_cast<T>((double(bias[c]) - double(moving_mean[c])) * s + double(beta[c]));
  }
}

// Folds bound BatchNormalization BN (its params gamma, beta and its state) into the parameters of
// the bound Dense, Conv2D or DepthwiseConv2D Prev that feeds it: prev_params is Prev's slice of the parameter
// arena, weights then bias, as both lay them out.
template <class Prev, class BN>
void fold_batch_norm(typename Prev::value_type* prev_params,
                     const typename BN::value_type* bn_params,
                     const typename BN::value_type* bn_state) {
  using T = typename Prev::value_type;
  static_assert(std::is_same_v<T, typename BN::value_type>,
                "fold_batch_norm needs both layers bound with the same scalar type.");
  static_assert(layer_kind<BN> == LayerKind::batch_norm,
                "fold_batch_norm's second layer must be a BatchNormalization.");
  static_assert(layer_kind<Prev> == LayerKind::dense || layer_kind<Prev> == LayerKind::conv2d ||
                    layer_kind<Prev> == LayerKind::depthwise_conv2d,
                "fold_batch_norm folds into a Dense, Conv2D or DepthwiseConv2D only (the layer "
                "before the BatchNormalization has another kind).");
  static_assert(std::is_same_v<typename Prev::output_shape, typename BN::input_shape>,
                "fold_batch_norm needs the BatchNormalization to take the previous layer's output "
                "shape: they are not consecutive layers.");
  constexpr std::size_t C = BN::channels;
  constexpr std::size_t weights = Prev::param_count - C;  // both: weights, then C biases
  static_assert(weights % C == 0, "fold_batch_norm: the weights are not fan_in x channels.");
  constexpr WeightLayout layout = layer_kind<Prev> == LayerKind::dense
                                      ? WeightLayout::channels_first
                                      : WeightLayout::channels_last;
  fold_batch_norm(prev_params, prev_params + weights, weights / C, C, layout, bn_params,
                  bn_params + C, bn_state, bn_state + C, BN::epsilon);
}

}  // namespace ctnn
// ---- end ctnn/layers/fold_batch_norm.hpp ----

namespace ctnn {

// How activation scales are chosen from the calibration data.
struct CalibrationOptions {
  // The percentage of the absolute values seen at a quantized input that its range must cover:
  // 100 takes the maximum; less clips that many outliers for a finer step on the rest.
  double percentile = 100.0;
  // Calibration samples run through the float model this many at a time.
  std::size_t batch = 256;
};

template <class Model>
class QuantizedModel {
 public:
  using float_model = Model;
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "quantize() takes a float model (ctnn::Sequential), not a double one.");
  static constexpr std::size_t num_layers = Model::num_layers;
  template <std::size_t I>
  using layer = typename Model::template layer<I>;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;

 private:
  using QKind = detail::QKind;
  // The layer loop over raw pointers, shared with deploy::StaticQuantizedModel.
  using Forward = detail::Int8Forward<Model>;
  static constexpr auto& plan = Forward::plan;
  static constexpr bool is_compute(QKind k) { return Forward::is_compute(k); }

 public:
  // Number of quantized (Dense, Conv2D, Conv1D, DepthwiseConv2D) layers.
  static constexpr std::size_t quantized_layers = plan.computes;
  // Bytes of the quantized model's parameters: int8 weights (one byte each), float32 scales (one
  // per output channel, one per quantized input) and float32 biases. (In memory the weights are
  // packed with columns padded to the SIMD width: packed_weight_bytes.)
  static constexpr std::size_t weight_bytes = plan.weights;
  static constexpr std::size_t scale_bytes = (plan.channels + plan.scales) * sizeof(float);
  static constexpr std::size_t bias_bytes = plan.channels * sizeof(float);
  static constexpr std::size_t parameter_bytes = weight_bytes + scale_bytes + bias_bytes;
  static constexpr std::size_t packed_weight_bytes = plan.packed;
  // The float model's parameter bytes, for comparison.
  static constexpr std::size_t float_parameter_bytes = Model::param_count * sizeof(float);

  // Quantizes `model` with activation ranges measured on `calibration` (n * input_size values).
  QuantizedModel(const Model& model, std::span<const float> calibration,
                 const CalibrationOptions& options = {})
      : packed_(plan.packed), w_scale_(plan.channels), mult_(plan.channels),
        bias_(plan.channels) {
    if (calibration.empty() || calibration.size() % input_size != 0)
      fail("quantize() needs calibration samples of ", input_size, " values each; it was given ",
           calibration.size(), " values.");
    if (!(options.percentile > 0.0 && options.percentile <= 100.0))
      fail("CalibrationOptions::percentile must be in (0, 100]; it is ", options.percentile, ".");
    quantize_weights(model);
    calibrate(model, calibration, options);
  }

  // Input scale of quantized layer I (a Dense or Conv2D): real value = scale * integer.
  template <std::size_t I>
  float input_scale() const {
    static_assert(is_compute(plan.kind[I]), "input_scale<I>() is defined for Dense and Conv2D layers.");
    return in_scale_[plan.in_slot[I]];
  }
  // Whether layer I's input is int8 (true) or uint8 (false, never negative in calibration).
  template <std::size_t I>
  bool input_is_signed() const {
    static_assert(is_compute(plan.kind[I]), "input_is_signed<I>() is defined for Dense and Conv2D layers.");
    return in_signed_[plan.in_slot[I]];
  }
  // The per-output-channel weight scales of layer I.
  template <std::size_t I>
  std::span<const float> weight_scales() const {
    static_assert(is_compute(plan.kind[I]), "weight_scales<I>() is defined for Dense and Conv2D layers.");
    return {w_scale_.data() + plan.channel_offset[I], plan.N[I]};
  }
  // The int8 weight of layer I from input k (Dense: input index; Conv2D: (ky*KW + kx)*C + c) to
  // output channel n.
  template <std::size_t I>
  std::int8_t weight(std::size_t k, std::size_t n) const {
    static_assert(is_compute(plan.kind[I]), "weight<I>() is defined for Dense and Conv2D layers.");
    if constexpr (plan.kind[I] == QKind::depthwise) return packed_[plan.packed_offset[I] + k * plan.N[I] + n];
    const std::size_t Np = kernels::int8_padded_columns(plan.N[I]);
    return packed_[plan.packed_offset[I] + ((k / 2) * Np + n) * 2 + k % 2];
  }

  // Every parameter the int8 forward pass reads, as raw pointers into this object (valid while it
  // lives): what deploy::export_header writes and deploy::StaticQuantizedModel runs on.
  deploy::Int8Parameters int8_parameters() const {
    return {packed_.data(), mult_.data(), bias_.data(), in_scale_.data(), in_signed_.data()};
  }
  // Number of output channels over all quantized layers (the length of the per-channel arrays).
  static constexpr std::size_t channels = plan.channels;

  // Largest batch run at once; larger inputs go through in chunks.
  static constexpr std::size_t kInferenceChunk = 256;

  // The buffers of one inference at a time (see Sequential's InferenceContext): owned by the
  // caller, sized by the model type alone, grown (and allocating) only for a larger chunk than
  // it has run. One context, one thread at a time.
  class InferenceContext {
   public:
    InferenceContext() = default;
    // Sized for batches of up to n samples: predict with it then allocates nothing.
    explicit InferenceContext(std::size_t n) { reserve(n); }
    void reserve(std::size_t n) {
      n = std::min(n, kInferenceChunk);
      if (n <= cap_) return;
      cap_ = n;
      arena_.resize(plan.arena * cap_);
      acc_.resize(plan.acc * cap_);
      patches_.resize(plan.patches * cap_);
      fscratch_.resize(plan.float_scratch * cap_);
    }
    // Samples it holds without growing.
    std::size_t capacity() const { return cap_; }

   private:
    friend class QuantizedModel;
    std::size_t cap_ = 0;
    AlignedBuffer<std::uint8_t> arena_;
    AlignedBuffer<std::int32_t> acc_;
    AlignedBuffer<std::uint8_t> patches_;
    AlignedBuffer<float> fscratch_;
  };

  // A context sized for batches of up to n samples.
  static InferenceContext make_context(std::size_t n = 0) { return InferenceContext(n); }

  // The calling thread's context for this model type, used by predict() without a context (one
  // per thread and per QuantizedModel type, freed when the thread ends).
  static InferenceContext& thread_context() {
    static thread_local InferenceContext ctx;
    return ctx;
  }

  // Sizes the calling thread's context for batches of up to n samples: predict() without a
  // context then allocates nothing on this thread for such batches.
  void reserve(std::size_t n) const { thread_context().reserve(n); }
  // The same, under the name Sequential uses.
  void reserve_inference(std::size_t n) const { reserve(n); }

  // Inference on one sample: the output (probabilities after a final Softmax).
  std::array<float, output_size> predict(std::span<const float> x) const {
    return predict(thread_context(), x);
  }
  std::array<float, output_size> predict(InferenceContext& ctx, std::span<const float> x) const {
    if (x.size() != input_size)
      fail("QuantizedModel::predict() was given ", x.size(), " input values but the model's input ",
           Model::input_shape::str(), " has ", input_size, ".");
    std::array<float, output_size> out;
    run_chunks(ctx, x.data(), 1, out.data());
    return out;
  }

  // Inference on a batch: x holds n * input_size values, out receives n * output_size.
  void predict(std::span<const float> x, std::span<float> out) const {
    predict(thread_context(), x, out);
  }
  void predict(InferenceContext& ctx, std::span<const float> x, std::span<float> out) const {
    if (x.size() % input_size != 0)
      fail("QuantizedModel::predict() was given ", x.size(),
           " input values, not a multiple of the input size ", input_size, ".");
    const std::size_t n = x.size() / input_size;
    if (out.size() != n * output_size)
      fail("QuantizedModel::predict() got an output span of ", out.size(), " values for ", n,
           " samples; it needs ", n * output_size, ".");
    run_chunks(ctx, x.data(), n, out.data());
  }

  // The fraction of `d`'s samples whose largest int8 output is their label (the int8 model's
  // test accuracy). Refuses a dataset of another sample size, without labels or with a label
  // outside [0, output_size), and a sample holding NaN or an infinity (it has no class).
  double accuracy(const data::Dataset& d) const {
    if (d.feature_size() != input_size)
      fail("QuantizedModel::accuracy() was given samples of ", d.feature_size(),
           " values but the model's input ", Model::input_shape::str(), " has ", input_size, ".");
    if (!d.has_labels() || d.labels.size() != d.size())
      fail("QuantizedModel::accuracy() needs one class label per sample; the dataset has ",
           d.labels.size(), " labels for ", d.size(), " samples.");
    if (d.size() == 0) fail("QuantizedModel::accuracy() was given an empty dataset.");
    std::vector<float> out(std::min(d.size(), kInferenceChunk) * output_size);
    std::size_t right = 0;
    for (std::size_t b = 0; b < d.size(); b += kInferenceChunk) {
      const std::size_t m = std::min(kInferenceChunk, d.size() - b);
      const std::span<const float> x(d.x.data() + b * input_size, m * input_size);
      if (const std::size_t i = kernels::first_non_finite(x.size(), x.data()); i != x.size())
        fail("QuantizedModel::accuracy(): sample ", b + i / input_size, " holds ", x[i],
             " (value ", i % input_size, "), which has no class in 8-bit inference.");
      predict(x, std::span<float>(out.data(), m * output_size));
      for (std::size_t s = 0; s < m; ++s) {
        const std::int32_t label = d.labels[b + s];
        if (label < 0 || std::size_t(label) >= output_size)
          fail("QuantizedModel::accuracy(): the label ", label, " of sample ", b + s,
               " is outside the class range [0, ", output_size, ").");
        const float* p = out.data() + s * output_size;
        right += std::size_t(std::max_element(p, p + output_size) - p) == std::size_t(label);
      }
    }
    return double(right) / double(d.size());
  }

  // Index of the largest output of one sample (the predicted class).
  std::size_t predict_class(std::span<const float> x) const {
    return predict_class(thread_context(), x);
  }
  std::size_t predict_class(InferenceContext& ctx, std::span<const float> x) const {
    const auto out = predict(ctx, x);
    if (const std::size_t i = kernels::first_non_finite(input_size, x.data()); i != input_size)
      fail("QuantizedModel::predict_class(): input value ", i, " is ", x[i],
           ", which 8-bit inference cannot represent: the outputs are NaN and there is no class.");
    return std::size_t(std::max_element(out.begin(), out.end()) - out.begin());
  }

 private:
  // Per-channel symmetric int8 weights, packed for kernels::gemm_int8; biases kept in float.
  void quantize_weights(const Model& model) {
    const float* params = model.parameters().data();
    detail::static_for<num_layers>([&]<std::size_t I>() {
      if constexpr (is_compute(plan.kind[I])) {
        constexpr std::size_t K = plan.K[I], N = plan.N[I];
        const float* w = params + Model::template param_offset<I>;
        std::vector<float> folded;  // the weights with the BatchNormalization after them folded in
        if constexpr (plan.fold[I] != Forward::kNone) {
          constexpr std::size_t B = plan.fold[I];
          folded.assign(w, w + layer<I>::param_count);
          fold_batch_norm<layer<I>, layer<B>>(folded.data(),
                                              params + Model::template param_offset<B>,
                                              model.state().data() + Model::template state_offset<B>);
          w = folded.data();
        }
        // W(k, n): Dense stores [N][K], Conv2D and Conv1D [K][N] (HWIO). A grouped convolution
        // stores [taps][C/G][N]; its int8 matrix is block-diagonal over the im2col row [taps][C]
        // (zero where channel c is not in filter n's group), so the one GEMM stays right.
        using L = layer<I>;
        const auto weight = [&](std::size_t k, std::size_t n) -> float {
          if constexpr (plan.kind[I] == QKind::dense) {
            return w[k + n * K];
          } else if constexpr (plan.kind[I] == QKind::depthwise) {
            return w[k * N + n];  // [KH][KW][C][M]: tap k, output channel n = c * M + m
          } else if constexpr (L::groups == 1) {
            return w[k * N + n];
          } else {
            const std::size_t tap = k / L::C, c = k % L::C;
            return c / L::group_channels == n / L::group_filters
                       ? w[(tap * L::group_channels + c % L::group_channels) * N + n]
                       : 0.0f;
          }
        };
        constexpr std::size_t bias_at = plan.kind[I] == QKind::dense ? K * N : L::param_count - N;
        static_assert(plan.kind[I] != QKind::depthwise || L::param_count == K * N + N);
        std::vector<std::int8_t> q(K * N);
        for (std::size_t n = 0; n < N; ++n) {
          float m = 0.0f;
          for (std::size_t k = 0; k < K; ++k) m = std::max(m, std::abs(weight(k, n)));
          const float s = m > 0.0f ? m / 127.0f : 1.0f;  // an all-zero channel stays zero
          w_scale_[plan.channel_offset[I] + n] = s;
          for (std::size_t k = 0; k < K; ++k)
            q[k * N + n] = std::int8_t(std::clamp(std::nearbyint(weight(k, n) / s), -127.0f, 127.0f));
          bias_[plan.channel_offset[I] + n] = w[bias_at + n];
        }
        if constexpr (plan.kind[I] == QKind::depthwise)  // plain [tap][channel]
          std::copy(q.begin(), q.end(), packed_.data() + plan.packed_offset[I]);
        else
          kernels::pack_int8_weights(K, N, q.data(), N, 1, packed_.data() + plan.packed_offset[I]);
      }
    });
  }

  // Runs the float model over the calibration samples and records, for every scale slot, the
  // minimum and the distribution of absolute values of its tensor (read at each quantized
  // layer's input, and where the plan says for a tensor only Adds and global average pools
  // read); sets the scales from them.
  void calibrate(const Model& model, std::span<const float> xs, const CalibrationOptions& opt) {
    const std::size_t total = xs.size() / input_size;
    const std::size_t B = std::max<std::size_t>(1, std::min(opt.batch, total));
    std::array<double, plan.scales> lo{}, hi{};  // minimum and maximum |x|
    // 4096 bins over [0, max |x|]: a percentile lands within 1/4096 of the range.
    constexpr std::size_t kBins = 4096;
    std::vector<std::vector<std::uint64_t>> hist(plan.scales, std::vector<std::uint64_t>(kBins));
    std::array<std::uint64_t, plan.scales> count{};
    // The float model's own inference pass, shown every node's inputs (whatever the topology: a
    // Graph's tensors live in the float planner's slots).
    typename Model::Workspace ws;
    ws.reserve(B, false);
    const float* params = model.parameters().data();
    float* state = const_cast<float*>(model.state().data());  // read only in inference
    const bool percentile = opt.percentile < 100.0;
    for (int pass = 0; pass < (percentile ? 2 : 1); ++pass)
      for (std::size_t s0 = 0; s0 < total; s0 += B) {
        const std::size_t n = std::min(B, total - s0);
        std::memcpy(ws.input(), xs.data() + s0 * input_size, n * input_size * sizeof(float));
        const auto record = [&](std::size_t c, const float* x, std::size_t m) {
          if (pass == 0) {
            for (std::size_t i = 0; i < m; ++i) {
              lo[c] = std::min(lo[c], double(x[i]));
              hi[c] = std::max(hi[c], double(std::abs(x[i])));
            }
          } else if (hi[c] > 0.0) {
            for (std::size_t i = 0; i < m; ++i) {
              const auto bin = std::size_t(double(std::abs(x[i])) / hi[c] * kBins);
              ++hist[c][std::min(bin, kBins - 1)];
            }
            count[c] += m;
          }
        };
        const auto observe = [&]<std::size_t I, std::size_t K>(const float* x, std::size_t) {
          constexpr std::size_t m = plan.size[Model::template inputs_of<I>[K]];
          if constexpr (K == 0 && is_compute(plan.kind[I])) record(plan.index[I], x, n * m);
          for (std::size_t c = plan.computes; c < plan.scales; ++c)
            if (plan.obs_node[c] == I && plan.obs_input[c] == K) record(c, x, n * m);
        };
        Model::forward_observed(params, state, ws, n, observe);
      }
    for (std::size_t c = 0; c < plan.scales; ++c) {
      in_signed_[c] = lo[c] < 0.0;
      double range = hi[c];
      if (percentile && count[c] > 0) {
        const auto need = std::uint64_t(std::ceil(double(count[c]) * opt.percentile / 100.0));
        std::uint64_t seen = 0;
        std::size_t bin = 0;
        while (bin + 1 < kBins && (seen += hist[c][bin]) < need) ++bin;
        range = hi[c] * double(bin + 1) / kBins;
      }
      const double qmax = in_signed_[c] ? 127.0 : 255.0;
      in_scale_[c] = range > 0.0 ? float(range / qmax) : 1.0f;
    }
    // The float multiplier of each output channel: one int32 unit of the product is
    // s_in * s_w[n] in real terms.
    detail::static_for<num_layers>([&]<std::size_t I>() {
      if constexpr (is_compute(plan.kind[I]))
        for (std::size_t n = 0; n < plan.N[I]; ++n)
          mult_[plan.channel_offset[I] + n] =
              in_scale_[plan.in_slot[I]] * w_scale_[plan.channel_offset[I] + n];
    });
  }

  void run_chunks(InferenceContext& c, const float* x, std::size_t n, float* out) const {
    for (std::size_t b = 0; b < n; b += kInferenceChunk) {
      const std::size_t m = std::min(kInferenceChunk, n - b);
      c.reserve(m);
      run(c, x + b * input_size, m, out + b * output_size);
    }
  }

  // One chunk of n <= c.capacity() samples through every layer; reads only the parameters.
  void run(InferenceContext& c, const float* x, std::size_t n, float* out) const {
    const typename Forward::Workspace w{c.arena_.data(), c.acc_.data(), c.patches_.data(),
                                        c.fscratch_.data()};
    Forward::run(int8_parameters(), w, x, n, out);
  }

  AlignedBuffer<std::int8_t> packed_;            // every layer's packed int8 weights
  std::vector<float> w_scale_, mult_, bias_;     // per output channel, layers in order
  std::array<float, plan.scales> in_scale_{};  // per scale slot
  std::array<bool, plan.scales> in_signed_{};
};

// Quantizes a trained float model with activation ranges calibrated on `calibration` (a few
// hundred to a few thousand representative samples; labels are not used).
template <class Model>
QuantizedModel<Model> quantize(const Model& model, const data::Dataset& calibration,
                               const CalibrationOptions& options = {}) {
  if (calibration.feature_size() != Model::input_size)
    fail("quantize() was given calibration samples of ", calibration.feature_size(),
         " values but the model's input ", Model::input_shape::str(), " has ", Model::input_size,
         ".");
  return QuantizedModel<Model>(model, calibration.x, options);
}

template <class Model>
QuantizedModel<Model> quantize(const Model& model, std::span<const float> calibration,
                               const CalibrationOptions& options = {}) {
  return QuantizedModel<Model>(model, calibration, options);
}

}  // namespace ctnn
// ---- end ctnn/deploy/quantize.hpp ----

namespace ctnn::deploy {

namespace detail {
// "ctnn::Name<>", built in a function of its own: one named result, returned without a copy
// (GCC 12 misfires -Wrestrict on "literal" + string, and -Warray-bounds on the move of a local
// string out of a function with several returns).
inline std::string join_spec(std::string_view name) {
  std::string s = "ctnn::";
  s += name;
  s += "<>";
  return s;
}
}  // namespace detail

// One layer as C++ source: "ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid>". A layer's
// regularizer (training only) is not written.
template <class L>
std::string layer_spec() {
  if constexpr (JoinLayer<L>) {
    return detail::join_spec(L::name);
  } else if constexpr (requires { L::spec(); }) {
    return L::spec();
  } else {
    // A built-in layer without settings is spelled by its name; a user layer's name may be
    // anything (even "ReLU"), so it must say how it is spelled.
    constexpr bool spelled = layer_kind<L> != LayerKind::other;
    static_assert(spelled, "export_header writes a user-defined layer as C++ source through its "
                           "static spec() function (e.g. returning \"my::Layer<4>\"); add one.");
    std::string s = "ctnn::";
    s += L::name;
    return s;
  }
}

// "ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid>, ...>"
// A Graph is written in its node form, ctnn::NodeGraph<ctnn::Input<...>, ctnn::At<spec, inputs...>,
// ...> (core/graph.hpp): the same node list, so the same layout and topology_hash.
template <class Model>
std::string cpp_type() {
  using T = typename Model::value_type;
  constexpr bool is_float = std::is_same_v<T, float>;
  std::string s = Model::is_chain ? (is_float ? "ctnn::Sequential<" : "ctnn::BasicSequential<double, ")
                                  : (is_float ? "ctnn::NodeGraph<" : "ctnn::BasicNodeGraph<double, ");
  s += "ctnn::Input<";
  for (std::size_t i = 0; i < Model::input_shape::rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(Model::input_shape::dims[i]);
  }
  s += ">";
  ctnn::detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    s += ", ";
    if constexpr (!Model::is_chain) s += "ctnn::At<";
    s += layer_spec<typename Model::template layer<I>>();
    if constexpr (!Model::is_chain) {
      for (std::size_t t : Model::template inputs_of<I>) {
        s += ", ";
        s += std::to_string(t);
      }
      s += ">";
    }
  });
  return s + ">";
}

// Writes `alignas(64) inline constexpr <type> <name>[N] = {...};`: floats as exact hex literals,
// int8 values as integers, bools as true/false.
template <class T>
void write_constexpr_array(std::ostream& os, const std::string& name, std::span<const T> values) {
  constexpr bool floating = std::is_same_v<T, float> || std::is_same_v<T, double>;
  static_assert(floating || std::is_same_v<T, std::int8_t> || std::is_same_v<T, bool>,
                "write_constexpr_array writes float, double, std::int8_t or bool arrays.");
  const char* type = std::is_same_v<T, float>    ? "float "
                     : std::is_same_v<T, double> ? "double "
                     : std::is_same_v<T, bool>   ? "bool "
                                                 : "std::int8_t ";
  os << "alignas(" << kAlignBytes << ") inline constexpr " << type << name << "[" << values.size()
     << "] = {";
  // Six hex floats or sixteen small integers a line.
  const std::size_t per_line = floating ? 6 : 16;
  char buf[48];
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (floating) {
      if (!std::isfinite(values[i]))
        fail("export: ", name, "[", i, "] is ", values[i], "; only finite values can be exported.");
      std::snprintf(buf, sizeof buf, "%a%s", double(values[i]), std::is_same_v<T, float> ? "f" : "");
    } else if constexpr (std::is_same_v<T, bool>) {
      std::snprintf(buf, sizeof buf, "%s", values[i] ? "true" : "false");
    } else {
      std::snprintf(buf, sizeof buf, "%d", int(values[i]));
    }
    os << (i % per_line == 0 ? "\n    " : " ") << buf << (i + 1 < values.size() ? "," : "");
  }
  os << "};\n";
}

// The `using Model = ...;` and `topology[]` lines both kinds of header open with.
template <class Model>
std::string model_declaration() {
  // Appends, not `"literal" + std::string`: GCC 12's -Wrestrict misfires on the latter at -O3.
  std::string s = "using Model = ";
  s += cpp_type<Model>();
  s += ";\ninline constexpr char topology[] = \"";
  s += topology<Model>();
  s += "\";\nstatic_assert(Model::topology_hash == ";
  s += std::to_string(Model::topology_hash);
  s += "ull, \"this header was written for another ctnn model topology\");\n";
  return s;
}

// Fails unless `name` can name a namespace.
inline void require_cpp_identifier(const std::string& name) {
  const bool identifier = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                          name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                 "0123456789_") == std::string::npos;
  if (!identifier) fail("export_header: \"", name, "\" is not a C++ identifier (it names a namespace).");
}

// Writes the header described at the top of this file; `name` must be a C++ identifier.
template <class Model>
void export_header(const std::string& path, const Model& model, const std::string& name) {
  require_cpp_identifier(name);
  using T = typename Model::value_type;
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn::deploy::export_header: a trained model as constants. Do not edit.\n"
       << "// " << Model::param_count << " parameters, " << StaticModel<Model>::weight_bytes
       << " bytes of weights (with alignment padding) and " << StaticModel<Model>::buffer_bytes
       << " bytes of buffers for one sample.\n"
       << "#pragma once\n#include <ctnn/deploy/static_model.hpp>\n\nnamespace " << name << " {\n\n"
       << model_declaration<Model>()
       << "static_assert(Model::arena_size == " << Model::arena_size
       << ", \"this header was written for another ctnn model layout\");\n\n";
    write_constexpr_array<T>(os, "parameters", model.parameters());
    os << "\n// An inference object over these weights (its buffers live inside it: make it static).\n";
    if constexpr (Model::state_size > 0) {
      os << "// The non-trainable state (BatchNormalization's moving statistics).\n";
      write_constexpr_array<T>(os, "state", model.state());
      os << "inline ctnn::deploy::StaticModel<Model> make() { return ctnn::deploy::StaticModel<Model>(parameters, state); }\n\n";
    } else {
      os << "inline ctnn::deploy::StaticModel<Model> make() { return ctnn::deploy::StaticModel<Model>(parameters); }\n\n";
    }
    os << "}  // namespace " << name << "\n";
  });
}

// The int8 model (deploy/quantize.hpp) as a header: namespace `name` holding
//   using Model = ctnn::Sequential<...>;          the float model's topology, as C++ source
//   inline constexpr char topology[] = "...";
//   weights[]        std::int8_t, each quantized layer's W(k, n) at [k * N + n], layers in order
//   packed           the same packed for the compiling target (constexpr: columns are padded to
//                    that target's SIMD width, so one header serves every target)
//   weight_scales[]  per output channel (for reference; the run uses multipliers)
//   multipliers[], biases[]            per output channel, exact hex floats
//   input_scales[], input_signed[]     per scale slot (each quantized layer input, then the
//                                      8-bit tensors only Adds and global pools read)
//   inline ctnn::deploy::StaticQuantizedModel<Model> make()
// StaticQuantizedModel over these arrays computes exactly what `model` computes.
template <class Model>
void export_header(const std::string& path, const QuantizedModel<Model>& model,
                   const std::string& name) {
  require_cpp_identifier(name);
  using Forward = ctnn::detail::Int8Forward<Model>;
  constexpr auto& plan = Forward::plan;
  using Static = StaticQuantizedModel<Model>;
  std::vector<std::int8_t> weights(plan.weights);
  std::vector<float> weight_scales(plan.channels);
  ctnn::detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    if constexpr (Forward::is_compute(plan.kind[I])) {
      for (std::size_t k = 0; k < plan.K[I]; ++k)
        for (std::size_t n = 0; n < plan.N[I]; ++n)
          weights[plan.weight_offset[I] + k * plan.N[I] + n] = model.template weight<I>(k, n);
      const auto s = model.template weight_scales<I>();
      std::copy(s.begin(), s.end(), weight_scales.begin() + std::ptrdiff_t(plan.channel_offset[I]));
    }
  });
  const Int8Parameters p = model.int8_parameters();
  io::write_atomically(path, [&](std::ostream& os) {
    os << "// Generated by ctnn::deploy::export_header: a trained model quantized to int8, as "
          "constants. Do not edit.\n"
       << "// " << plan.weights << " int8 weights, " << plan.channels << " output channels, "
       << plan.computes << " quantized layers; on this host " << Static::weight_bytes
       << " bytes of parameters (packed) and " << Static::buffer_bytes
       << " bytes of buffers for one sample.\n"
       << "#pragma once\n#include <cstdint>\n#include <ctnn/deploy/static_quantized.hpp>\n\n"
       << "namespace " << name << " {\n\n"
       << model_declaration<Model>()
       << "static_assert(ctnn::detail::Int8Forward<Model>::plan.weights == " << plan.weights
       << " && ctnn::detail::Int8Forward<Model>::plan.channels == " << plan.channels
       << " && ctnn::detail::Int8Forward<Model>::plan.scales == " << plan.scales
       << ", \"this header was written for another ctnn int8 layout: export it again\");\n\n";
    write_constexpr_array<std::int8_t>(os, "weights", weights);
    os << "alignas(" << kAlignBytes
       << ") inline constexpr auto packed = ctnn::deploy::pack_int8_weights<Model>(weights);\n";
    write_constexpr_array<float>(os, "weight_scales", weight_scales);
    write_constexpr_array<float>(os, "multipliers", {p.multipliers, plan.channels});
    write_constexpr_array<float>(os, "biases", {p.biases, plan.channels});
    write_constexpr_array<float>(os, "input_scales", {p.input_scales, plan.scales});
    write_constexpr_array<bool>(os, "input_signed", {p.input_signed, plan.scales});
    os << "\n// An int8 inference object over these constants (its buffers live inside it: make it "
          "static).\n"
       << "inline ctnn::deploy::StaticQuantizedModel<Model> make() {\n"
       << "  return ctnn::deploy::StaticQuantizedModel<Model>(\n"
       << "      {packed.data(), multipliers, biases, input_scales, input_signed});\n}\n\n"
       << "}  // namespace " << name << "\n";
  });
}

}  // namespace ctnn::deploy
// ---- end ctnn/deploy/export.hpp ----
// ---- begin ctnn/deploy/fold.hpp ----
// ctnn/deploy/fold.hpp: a trained model with its BatchNormalizations folded into the layers
// before them, for float inference and export.
//
//   auto folded = ctnn::fold_batch_norms(model);    // a FoldedModel<Model>
//   folded.predict(x);                              // the same function, fewer layers
//   ctnn::deploy::export_header("m.hpp", folded, "m");
//
// Represents the inference-mode function of `model` with every BatchNormalization that directly
// follows a Dense, Conv2D or DepthwiseConv2D (and is the only reader of its output) merged into
// that layer's weights and bias (layers/fold_batch_norm.hpp: W' = W s, b' = (b - mean) s + beta,
// s = gamma / sqrt(var + eps), computed in double). FoldedModel<Model> is the model type without
// those nodes: a Sequential stays a chain, a Graph keeps its wiring (each remaining node reads the
// same tensors, renumbered). Any other BatchNormalization stays, with its state. Outputs agree
// with the unfolded model's up to float rounding (tested: within 1e-5 of the output range).
// The folded model is for inference: training it would train a different function (no batch
// statistics).
#include <algorithm>
#include <array>
#include <cstddef>
#include <tuple>
#include <utility>


namespace ctnn {
namespace detail {

template <class Model>
struct FoldPlan {
  static constexpr std::size_t N = Model::num_layers;
  struct Plan {
    std::array<bool, N> drop{};                 // a BatchNormalization folded into node - 1
    std::array<std::size_t, N + 1> tensor{};    // each tensor's number in the folded model
    std::array<std::size_t, N> index{};         // a kept node's index in the folded model
    std::array<std::size_t, N> kept_node{};     // the folded model's node J is node kept_node[J]
    std::size_t kept = 0;
  };
  static constexpr Plan make() {
    Plan p;
    std::array<std::size_t, N + 1> consumers{};
    static_for<N>([&]<std::size_t I>() {
      for (std::size_t t : Model::template inputs_of<I>) ++consumers[t];
    });
    static_for<N>([&]<std::size_t I>() {
      using L = typename Model::template layer<I>;
      if constexpr (I > 0 && layer_kind<L> == LayerKind::batch_norm) {
        using Prev = typename Model::template layer<I - 1>;
        constexpr LayerKind k = layer_kind<Prev>;
        p.drop[I] = Model::template inputs_of<I>[0] == I && consumers[I] == 1 && !p.drop[I - 1] &&
                    (k == LayerKind::dense || k == LayerKind::conv2d ||
                     k == LayerKind::depthwise_conv2d);
      }
    });
    for (std::size_t i = 0; i < N; ++i) {
      if (p.drop[i]) {
        p.tensor[i + 1] = p.tensor[i];  // its input is tensor i, the folded layer's output
      } else {
        p.index[i] = p.kept;
        p.kept_node[p.kept++] = i;
        p.tensor[i + 1] = p.kept;
      }
    }
    return p;
  }
  static constexpr Plan plan = make();

  template <std::size_t J, std::size_t... K>
  static auto node_of(std::index_sequence<K...>)
      -> Node<typename Model::template layer<plan.kept_node[J]>,
              plan.tensor[Model::template inputs_of<plan.kept_node[J]>[K]]...>;
  template <std::size_t... J>
  static auto nodes_of(std::index_sequence<J...>)
      -> std::tuple<decltype(node_of<J>(
          std::make_index_sequence<Model::template node<plan.kept_node[J]>::arity>{}))...>;
  using type = ModelCore<typename Model::value_type, typename Model::input_shape,
                         decltype(nodes_of(std::make_index_sequence<plan.kept>{})), Model::style>;
};

}  // namespace detail

// The type of fold_batch_norms(model): Model without its foldable BatchNormalizations.
template <class Model>
using FoldedModel = typename detail::FoldPlan<Model>::type;

// `model` with each BatchNormalization right after a Dense, Conv2D or DepthwiseConv2D folded into
// that layer (see the top of this file).
template <class Model>
FoldedModel<Model> fold_batch_norms(const Model& model) {
  using F = FoldedModel<Model>;
  using P = detail::FoldPlan<Model>;
  F out(0);
  const auto* params = model.parameters().data();
  const auto* state = model.state().data();
  auto* to = out.parameters().data();
  auto* to_state = out.state().data();
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    if constexpr (!P::plan.drop[I]) {
      using L = typename Model::template layer<I>;
      constexpr std::size_t J = P::plan.index[I];
      std::copy_n(params + Model::template param_offset<I>, L::param_count,
                  to + F::template param_offset<J>);
      if constexpr (StatefulLayer<L>)
        std::copy_n(state + Model::template state_offset<I>, L::state_count,
                    to_state + F::template state_offset<J>);
      if constexpr (I + 1 < Model::num_layers && P::plan.drop[I + 1])
        fold_batch_norm<L, typename Model::template layer<I + 1>>(
            to + F::template param_offset<J>, params + Model::template param_offset<I + 1>,
            state + Model::template state_offset<I + 1>);
    }
  });
  return out;
}

}  // namespace ctnn
// ---- end ctnn/deploy/fold.hpp ----
// ---- begin ctnn/deploy/half.hpp ----
// ctnn/deploy/half.hpp: 16-bit storage of a float model's weights, IEEE fp16 or bfloat16.
//
// half_parameters(model, format) and set_half_parameters(model, halves, format) move a model's
// whole parameter arena to 16 bits and back (half the bytes to ship; the model still computes in
// fp32). The conversions, and how they round, are in kernels/half.hpp.
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>


namespace ctnn {

// Bytes of a float model's parameters stored in 16 bits (Keras's parameter count, no padding).
template <class Model>
inline constexpr std::size_t half_parameter_bytes = Model::param_count * sizeof(std::uint16_t);

// The model's whole parameter arena (in arena order, alignment padding included) in `format`.
template <class Model>
std::vector<std::uint16_t> half_parameters(const Model& model, HalfFormat format) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "16-bit weight storage converts from a float model (Sequential), not a double one.");
  std::vector<std::uint16_t> h(model.parameters().size());
  to_half(format, model.parameters(), h);
  return h;
}

// Loads parameters stored by half_parameters() (same model type) back into the model, as fp32.
template <class Model>
void set_half_parameters(Model& model, std::span<const std::uint16_t> h, HalfFormat format) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "16-bit weight storage converts into a float model (Sequential), not a double one.");
  if (h.size() != model.parameters().size())
    fail("set_half_parameters() was given ", h.size(), " 16-bit values but the model's parameter "
         "arena holds ", model.parameters().size(), ".");
  from_half(format, h, model.parameters());
}

}  // namespace ctnn
// ---- end ctnn/deploy/half.hpp ----
// ---- begin ctnn/deploy/monitor.hpp ----
// ctnn/deploy/monitor.hpp: watching a model in service.
//
// ReferenceProfile: what the model met in training, fitted once on the training data and shipped
// with the model (save/load, a small text block; no training data needed to rebuild it):
//   - per input feature, the training minimum and maximum;
//   - the distribution of the model's own predictions on the training data:
//       classification: counts of the predicted class (arg-max; with one output, output >= 0.5
//                       is class 1), one distribution over max(2, outputs) classes;
//       regression:     per output, `bins` equal-width bins over the training output range
//                       [lo, hi], plus one bin below lo and one above hi: one distribution a output.
// Monitored<Model>: wraps a model (by reference) and, for every prediction,
//   - refuses an input holding NaN or Inf: the model is not run, the outputs are NaN and the
//     status says nonfinite_input (a service should answer "bad request", not a guess);
//   - flags NaN/Inf outputs (status nonfinite_output; they are not counted in the distribution);
//   - counts input features outside the training range widened by a margin:
//       feature j is out of range when x_j < min_j - m_j or x_j > max_j + m_j,
//       m_j = range_margin * (max_j - min_j) + range_margin_abs,
//     and flags the sample (out_of_range) when more than range_max_features features are; every
//     feature keeps a counter, and the largest excess beyond [min_j, max_j] is remembered;
//   - times the call (steady_clock, from entry to return, checks included) into a fixed
//     log-scale histogram: 8 buckets an octave, so a percentile is the upper edge of its bucket,
//     at most 12.5% above the true value, and never above the exact maximum. Single-sample and
//     batch calls have separate histograms (a batch is one observation). Refused calls are not
//     timed;
//   - counts the predicted category (class, or bin per output).
// Drift, computed on demand from the counts (no allocation):
//   PSI = sum_i (a_i - e_i) ln(a_i / e_i), the population stability index of the observed
//   distribution a against the training one e, each smoothed as p_i = (c_i + 0.5) / (n + 0.5 k)
//   (k categories, n samples) so an empty category gives a large finite term, not infinity;
//   TVD = (1/2) sum_i |a_i - e_i| on the raw fractions, in [0, 1]. For regression both are the
//   maximum over outputs. drifted() is PSI > psi_threshold (default 0.25, the customary
//   "significant shift" level; 0.1 to 0.25 is usually read as moderate) once at least
//   min_samples predictions (default 100) were counted; before that, and with no predictions,
//   the scores are NaN and drifted() is false.
// No heap allocation per call: every counter is sized in the constructor; stats() (a snapshot
// with vectors) and to_json() allocate. Call reserve(batch) on each serving thread before its
// first batch prediction (it sizes that thread's inference context).
// Thread safety: one Monitored, like the model it wraps, may serve predict() from any number of
// threads at once, and stats(), drift_score(), to_json() may be read meanwhile. A web server
// wants exactly that: one monitor per model with one set of numbers, whichever worker thread
// answered. So every counter and histogram bucket is a std::atomic updated with relaxed
// fetch_add (no lock: a few nanoseconds against a prediction's microseconds); only a new record
// for the largest excess, which happens a handful of times in a service's life, takes a mutex so
// its three fields stay together. A snapshot taken while predictions run is a consistent view of
// each counter, not of all at once (a call in flight may be counted in `samples` and not yet in
// the distribution). reset() and merge() may also run concurrently, with the same caveat.
// Separate monitors (e.g. per shard or per process) still combine with merge().
// Errors (sizes that disagree, a corrupt saved profile, bad options) are ctnn::Error sentences.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <istream>
#include <limits>
#include <locale>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>


namespace ctnn {

enum class OutputKind { classification, regression };

inline const char* to_string(OutputKind k) {
  return k == OutputKind::classification ? "classification" : "regression";
}

struct ProfileOptions {
  // Unset: classification when the data has labels or the model ends in Softmax, else regression.
  std::optional<OutputKind> kind = std::nullopt;
  std::size_t bins = 10;  // regression: equal-width bins per output inside the training range
};

// The training reference a Monitored compares service traffic against; see the top of the file.
// Its members may be filled by hand (from saved numbers); check() says whether they agree.
struct ReferenceProfile {
  OutputKind kind = OutputKind::classification;
  std::size_t input_size = 0;
  std::size_t output_size = 0;
  std::size_t bins = 0;                    // regression only; 0 for classification
  std::vector<double> feature_min;         // input_size values
  std::vector<double> feature_max;         // input_size values
  std::vector<double> output_lo;           // regression: output_size values, else empty
  std::vector<double> output_hi;           // regression: output_size values, else empty
  std::vector<std::uint64_t> counts;       // distributions() x categories(), row-major

  std::size_t distributions() const { return kind == OutputKind::classification ? 1 : output_size; }
  std::size_t categories() const {
    if (kind == OutputKind::regression) return bins + 2;
    return std::max<std::size_t>(output_size, 2);
  }
  // Training samples behind the distribution.
  std::uint64_t samples() const {
    std::uint64_t n = 0;
    for (std::size_t c = 0; c < categories() && c < counts.size(); ++c) n += counts[c];
    return n;
  }

  // The category of output vector y in distribution d (see the top of the file).
  template <class T>
  std::size_t category(const T* y, std::size_t d) const {
    if (kind == OutputKind::classification) {
      if (output_size == 1) return y[0] >= T(0.5) ? 1 : 0;
      return std::size_t(std::max_element(y, y + output_size) - y);
    }
    const double v = double(y[d]), lo = output_lo[d], hi = output_hi[d];
    if (v < lo) return 0;
    if (v > hi) return bins + 1;
    if (!(hi > lo)) return 1;  // a constant training output: everything equal to it is bin 1
    const auto b = std::size_t((v - lo) / (hi - lo) * double(bins));
    return 1 + std::min(b, bins - 1);
  }

  // Throws unless the members agree with each other (sizes, finite ranges, min <= max, counts).
  void check(const char* who = "ReferenceProfile") const {
    if (input_size == 0 || output_size == 0)
      fail(who, ": the profile has ", input_size, " inputs and ", output_size,
           " outputs; both must be at least 1.");
    if (kind == OutputKind::regression && bins == 0)
      fail(who, ": a regression profile needs at least 1 bin per output, but bins is 0.");
    const auto sized = [&](const auto& v, std::size_t n, const char* name) {
      if (v.size() != n)
        fail(who, ": ", name, " holds ", v.size(), " values but the profile needs ", n, ".");
    };
    sized(feature_min, input_size, "feature_min");
    sized(feature_max, input_size, "feature_max");
    const bool reg = kind == OutputKind::regression;
    sized(output_lo, reg ? output_size : 0, "output_lo");
    sized(output_hi, reg ? output_size : 0, "output_hi");
    sized(counts, distributions() * categories(), "counts");
    const auto ranges = [&](const std::vector<double>& lo, const std::vector<double>& hi,
                            const char* what) {
      for (std::size_t j = 0; j < lo.size(); ++j)
        if (!std::isfinite(lo[j]) || !std::isfinite(hi[j]) || lo[j] > hi[j])
          fail(who, ": ", what, " ", j, " has the range [", lo[j], ", ", hi[j],
               "]; it must be finite with min <= max.");
    };
    ranges(feature_min, feature_max, "feature");
    ranges(output_lo, output_hi, "output");
    const std::uint64_t n = samples();
    if (n == 0) fail(who, ": the reference distribution counts no samples.");
    for (std::size_t d = 1; d < distributions(); ++d) {
      std::uint64_t m = 0;
      for (std::size_t c = 0; c < categories(); ++c) m += counts[d * categories() + c];
      if (m != n)
        fail(who, ": output ", d, "'s distribution counts ", m, " samples but output 0's counts ",
             n, "; every output sees the same samples.");
    }
  }

  // Fits the profile on the training data, running `model` over it in batches.
  template <class Model>
  static ReferenceProfile fit(Model& model, const data::Dataset& train, ProfileOptions opt = {}) {
    using T = typename Model::value_type;
    constexpr std::size_t D = Model::input_size, N = Model::output_size;
    if (train.size() == 0) fail("ReferenceProfile::fit: the training dataset has no samples.");
    data::validate(train, "training dataset");
    if (train.feature_size() != D)
      fail("ReferenceProfile::fit: the training samples have ", train.feature_size(),
           " features but the model's input ", Model::input_shape::str(), " takes ", D, ".");
    if (opt.bins == 0 || opt.bins > kMaxBins)
      fail("ReferenceProfile::fit: bins is ", opt.bins, "; it must lie in [1, ", kMaxBins, "].");
    using Last = typename Model::template layer<Model::num_layers - 1>;
    ReferenceProfile p;
    p.kind = opt.kind.value_or(train.has_labels() || layer_kind<Last> == LayerKind::softmax
                                   ? OutputKind::classification
                                   : OutputKind::regression);
    p.input_size = D;
    p.output_size = N;
    p.bins = p.kind == OutputKind::regression ? opt.bins : 0;
    const std::size_t n = train.size();
    p.feature_min.assign(train.x.begin(), train.x.begin() + D);
    p.feature_max = p.feature_min;
    for (std::size_t i = 1; i < n; ++i)
      for (std::size_t j = 0; j < D; ++j) {
        const double v = train.x[i * D + j];
        p.feature_min[j] = std::min(p.feature_min[j], v);
        p.feature_max[j] = std::max(p.feature_max[j], v);
      }
    // All outputs are kept: regression bins need the output range before counting.
    std::vector<T> y(n * N);
    constexpr std::size_t kChunk = 256;
    std::vector<T> xin(kChunk * D);
    for (std::size_t b = 0; b < n; b += kChunk) {
      const std::size_t m = std::min(kChunk, n - b);
      std::copy(train.x.begin() + std::ptrdiff_t(b * D), train.x.begin() + std::ptrdiff_t((b + m) * D),
                xin.begin());
      model.predict(std::span<const T>(xin.data(), m * D), std::span<T>(y.data() + b * N, m * N));
    }
    for (std::size_t k = 0; k < y.size(); ++k)
      if (!std::isfinite(y[k]))
        fail("ReferenceProfile::fit: the model's output ", k % N, " for training sample ", k / N,
             " is ", y[k], "; a profile needs finite predictions.");
    if (p.kind == OutputKind::regression) {
      p.output_lo.assign(N, std::numeric_limits<double>::infinity());
      p.output_hi.assign(N, -std::numeric_limits<double>::infinity());
      for (std::size_t k = 0; k < y.size(); ++k) {
        p.output_lo[k % N] = std::min(p.output_lo[k % N], double(y[k]));
        p.output_hi[k % N] = std::max(p.output_hi[k % N], double(y[k]));
      }
    }
    p.counts.assign(p.distributions() * p.categories(), 0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t d = 0; d < p.distributions(); ++d)
        ++p.counts[d * p.categories() + p.category(y.data() + i * N, d)];
    return p;
  }

  // A text block: a "ctnn-reference-profile 1" line, then one line a field (name, values),
  // then "end". Doubles are written with 17 significant digits, so load() gets them back exactly.
  void save(std::ostream& os) const {
    check("ReferenceProfile::save");
    std::ostringstream s;
    s.imbue(std::locale::classic());
    s << std::setprecision(17);
    s << kMagic << ' ' << kVersion << '\n'
      << "kind " << to_string(kind) << '\n'
      << "input_size " << input_size << '\n'
      << "output_size " << output_size << '\n'
      << "bins " << bins << '\n';
    const auto field = [&](const char* name, const auto& v) {
      s << name;
      for (const auto x : v) s << ' ' << x;
      s << '\n';
    };
    field("feature_min", feature_min);
    field("feature_max", feature_max);
    field("output_lo", output_lo);
    field("output_hi", output_hi);
    field("counts", counts);
    s << "end\n";
    os << s.str();
    if (!os) fail("ReferenceProfile::save: writing the profile to the stream failed.");
  }

  // Reads one block written by save(), leaving the stream after its "end" line, and checks it.
  static ReferenceProfile load(std::istream& is) {
    const auto bad = [](const auto&... parts) {
      fail("ReferenceProfile::load: ", parts...);
    };
    const std::locale old = is.imbue(std::locale::classic());
    std::string word;
    const auto expect = [&](const char* name) {
      if (!(is >> word)) bad("the block ends where the field '", name, "' was expected.");
      if (word != name) bad("expected the field '", name, "' but found '", word, "'.");
    };
    // A whole number >= 0. Not `is >> v`: a stream reads "-5" into an unsigned as 2^64 - 5.
    const auto count = [&](const char* name, std::uint64_t& v) {
      std::string tok;
      if (!(is >> tok)) return false;
      const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      if (ec != std::errc() || end != tok.data() + tok.size())
        bad("the field '", name, "' holds '", tok, "' where a count (a whole number >= 0) was expected.");
      return true;
    };
    const auto size = [&](const char* name, std::size_t limit) {
      expect(name);
      std::uint64_t v = 0;
      if (!count(name, v)) bad("the field '", name, "' has no readable count.");
      if (v > limit) bad("the field '", name, "' is ", v, ", more than the limit of ", limit, ".");
      return std::size_t(v);
    };
    const auto values = [&](const char* name, auto& v, std::size_t n) {
      expect(name);
      v.resize(n);
      for (std::size_t k = 0; k < n; ++k) {
        bool ok;
        if constexpr (std::is_same_v<std::decay_t<decltype(v[k])>, std::uint64_t>) ok = count(name, v[k]);
        else ok = bool(is >> v[k]);
        if (!ok)
          bad("the field '", name, "' ends after ", k, " of its ", n,
              " values (or holds a value that is not a finite number).");
      }
    };
    if (!(is >> word) || word != kMagic)
      bad("this is not a reference profile: it starts with '", word, "' where '", kMagic,
          "' was expected.");
    int version = 0;
    if (!(is >> version) || version != kVersion)
      bad("the profile has format version ", version, "; this build reads version ", kVersion, ".");
    ReferenceProfile p;
    expect("kind");
    if (!(is >> word) || (word != "classification" && word != "regression"))
      bad("the kind is '", word, "'; it must be 'classification' or 'regression'.");
    p.kind = word == "regression" ? OutputKind::regression : OutputKind::classification;
    p.input_size = size("input_size", kMaxSize);
    p.output_size = size("output_size", kMaxSize);
    p.bins = size("bins", kMaxBins);
    const bool reg = p.kind == OutputKind::regression;
    values("feature_min", p.feature_min, p.input_size);
    values("feature_max", p.feature_max, p.input_size);
    values("output_lo", p.output_lo, reg ? p.output_size : 0);
    values("output_hi", p.output_hi, reg ? p.output_size : 0);
    values("counts", p.counts, p.distributions() * p.categories());
    expect("end");
    is.imbue(old);
    p.check("ReferenceProfile::load");
    return p;
  }

  bool operator==(const ReferenceProfile&) const = default;

  static constexpr const char* kMagic = "ctnn-reference-profile";
  static constexpr int kVersion = 1;
  // Limits for load(): far beyond any real model, small enough that a corrupt size fails
  // instead of allocating without bound.
  static constexpr std::size_t kMaxSize = std::size_t{1} << 28;
  static constexpr std::size_t kMaxBins = 1024;
};

struct MonitorOptions {
  double range_margin = 0.05;            // of each feature's training range (max - min)
  double range_margin_abs = 0.0;         // added to it, in the feature's units
  std::size_t range_max_features = 0;    // a sample is out of range with more features outside
  double psi_threshold = 0.25;           // drifted() when PSI exceeds it
  std::uint64_t min_samples = 100;       // fewer counted predictions give no drift verdict
};

// What became of one sample. Out-of-range is a warning beside the status: the outputs are real.
enum class Status : std::uint8_t { ok, nonfinite_input, nonfinite_output };

inline const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::nonfinite_input: return "nonfinite_input";
    case Status::nonfinite_output: return "nonfinite_output";
  }
  return "?";
}

struct SampleFlags {
  Status status = Status::ok;
  std::uint32_t out_of_range_features = 0;  // features outside the widened training range
  bool out_of_range = false;                // more than range_max_features of them
  bool ok() const { return status == Status::ok; }  // the outputs are finite model outputs
};

// One sample's outputs (all NaN when the input was refused) and its flags.
template <class T, std::size_t N>
struct Prediction {
  std::array<T, N> outputs;
  SampleFlags flags;
  bool ok() const { return flags.ok(); }
};

// Counts of one batch call.
struct BatchSummary {
  std::size_t samples = 0;
  std::size_t predicted = 0;  // samples the model ran on
  std::size_t nonfinite_inputs = 0, nonfinite_outputs = 0, out_of_range = 0;
};

// Percentiles of a latency histogram, in nanoseconds (NaN when nothing was timed).
struct LatencyStats {
  std::uint64_t count = 0;
  double mean_ns = NAN, p50_ns = NAN, p90_ns = NAN, p99_ns = NAN, min_ns = NAN, max_ns = NAN;
};

// A snapshot of a Monitored's counters and scores.
struct MonitorStats {
  std::uint64_t calls = 0;        // single-sample predict calls
  std::uint64_t batch_calls = 0;  // batch predict calls
  std::uint64_t samples = 0;      // samples given, in both forms
  std::uint64_t predicted = 0;    // samples the model ran on (samples - nonfinite_inputs)
  std::uint64_t nonfinite_inputs = 0, nonfinite_outputs = 0;
  std::uint64_t out_of_range_samples = 0;  // samples flagged out_of_range
  std::uint64_t out_of_range_values = 0;   // feature values outside the widened range, in all
  LatencyStats latency, batch_latency;
  MonitorOptions options;
  std::vector<std::uint64_t> feature_out_of_range;  // per feature: how often it was outside
  std::optional<std::size_t> worst_feature;          // the feature most often outside
  std::optional<std::size_t> worst_excess_feature;   // where the largest excess was seen
  double worst_excess = 0;        // largest distance beyond [min_j, max_j], in feature units
  double worst_excess_value = NAN;  // the input value that gave it
  OutputKind kind = OutputKind::classification;
  std::size_t distributions = 1, categories = 0;
  std::uint64_t counted = 0;      // predictions in the observed distribution (finite outputs)
  std::vector<double> reference;  // distributions x categories fractions, training
  std::vector<double> observed;   // the same, in service
  std::vector<double> psi_per_output;  // one per distribution
  double psi = NAN, tvd = NAN;
  bool drifted = false;

  // One JSON object (fields as above; NaN and Inf are null, an absent feature is null).
  void to_json(std::ostream& os) const;
};

namespace detail {

// Nanosecond latencies in log-scale buckets: 0..7 exactly, then 8 buckets an octave up to 2^64.
class LatencyHistogram {
 public:
  static constexpr std::size_t kBuckets = 8 * 62;

  static std::size_t bucket(std::uint64_t ns) {
    if (ns < 8) return std::size_t(ns);
    const int e = static_cast<int>(std::bit_width(ns)) - 1;  // >= 3
    return std::size_t(8 * (e - 2)) + std::size_t((ns >> (e - 3)) & 7);
  }
  static std::uint64_t upper_edge(std::size_t b) {
    if (b < 8) return b;
    const int e = int(b / 8) + 2;
    const std::uint64_t lower = (8 + std::uint64_t(b % 8)) << (e - 3);
    return lower + ((std::uint64_t{1} << (e - 3)) - 1);
  }

  // Safe from any number of threads at once (no lock; see the top of the file). The sum and the
  // extremes are updated before the bucket, which is released: a reader that sees the bucket
  // (acquire) sees them too, so a percentile is never capped below its own bucket.
  void record(std::uint64_t ns) {
    sum_.fetch_add(ns, std::memory_order_relaxed);
    lower_to(min_, ns);
    raise_to(max_, ns);
    counts_[bucket(ns)].fetch_add(1, std::memory_order_release);
  }
  void merge(const LatencyHistogram& o) {
    const Snapshot s = o.snapshot();
    sum_.fetch_add(o.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    lower_to(min_, o.min_.load(std::memory_order_relaxed));
    raise_to(max_, s.max);
    for (std::size_t b = 0; b < kBuckets; ++b)
      if (s.counts[b]) counts_[b].fetch_add(s.counts[b], std::memory_order_release);
  }
  void reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    min_.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  // The upper edge of the bucket holding the ceil(q * count)-th smallest value, capped at max.
  double percentile(double q) const { return percentile(q, snapshot()); }
  LatencyStats stats() const {
    const Snapshot s = snapshot();  // one copy, so the count and the percentiles agree
    LatencyStats l;
    l.count = s.count;
    if (s.count == 0) return l;
    l.mean_ns = double(s.sum) / double(s.count);
    l.p50_ns = percentile(0.50, s);
    l.p90_ns = percentile(0.90, s);
    l.p99_ns = percentile(0.99, s);
    l.min_ns = double(s.min);
    l.max_ns = double(s.max);
    return l;
  }

 private:
  struct Snapshot {
    std::array<std::uint64_t, kBuckets> counts;
    std::uint64_t count = 0, sum = 0, min = 0, max = 0;
  };
  // Buckets first (acquire), then what was written before them. While others record, sum may
  // hold a call whose bucket was not yet seen: the mean is then off by that call, for that read.
  Snapshot snapshot() const {
    Snapshot s;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      s.counts[b] = counts_[b].load(std::memory_order_acquire);
      s.count += s.counts[b];
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    s.min = min_.load(std::memory_order_relaxed);
    s.max = max_.load(std::memory_order_relaxed);
    return s;
  }
  static double percentile(double q, const Snapshot& s) {
    if (s.count == 0) return NAN;
    const auto rank = std::max<std::uint64_t>(1, std::uint64_t(std::ceil(q * double(s.count))));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += s.counts[b];
      if (seen >= rank) return double(std::min(upper_edge(b), s.max));
    }
    return double(s.max);
  }
  static void lower_to(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t cur = a.load(std::memory_order_relaxed);
    while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
  static void raise_to(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t cur = a.load(std::memory_order_relaxed);
    while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> sum_{0};  // nanoseconds: 2^64 ns is 584 years of calls
  std::atomic<std::uint64_t> min_{std::numeric_limits<std::uint64_t>::max()}, max_{0};
};

// PSI and TVD of observed counts against reference counts over k categories (top of the file).
struct DriftScores {
  double psi = NAN, tvd = NAN;
};
inline std::uint64_t count_of(std::uint64_t c) { return c; }
inline std::uint64_t count_of(const std::atomic<std::uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}
// obs: plain counts or a live Monitored's atomic ones (each read once, so the scores use one
// consistent set of observed counts).
template <class Count>
DriftScores drift_scores(const std::uint64_t* ref, const Count* live, std::size_t k) {
  constexpr std::size_t kStack = 64;  // categories counted on the stack; more read in two passes
  std::array<std::uint64_t, kStack> copy;
  const bool copied = k <= kStack;
  if (copied)
    for (std::size_t c = 0; c < k; ++c) copy[c] = count_of(live[c]);
  const auto obs = [&](std::size_t c) { return copied ? copy[c] : count_of(live[c]); };
  std::uint64_t nr = 0, no = 0;
  for (std::size_t c = 0; c < k; ++c) nr += ref[c], no += obs(c);
  if (nr == 0 || no == 0) return {};
  constexpr double kAlpha = 0.5;  // Jeffreys-style smoothing: an empty category stays finite
  DriftScores s{0, 0};
  for (std::size_t c = 0; c < k; ++c) {
    const double e = (double(ref[c]) + kAlpha) / (double(nr) + kAlpha * double(k));
    const double a = (double(obs(c)) + kAlpha) / (double(no) + kAlpha * double(k));
    s.psi += (a - e) * std::log(a / e);
    s.tvd += 0.5 * std::abs(double(obs(c)) / double(no) - double(ref[c]) / double(nr));
  }
  return s;
}

// A JSON number, or null for NaN and Inf.
inline void json_number(std::ostream& os, double v) {
  if (std::isfinite(v)) os << v;
  else os << "null";
}

}  // namespace detail

inline void MonitorStats::to_json(std::ostream& out) const {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << std::setprecision(10);
  const auto num = [&](double v) { detail::json_number(os, v); };
  const auto arr = [&](const auto& v) {
    os << '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) os << ',';
      num(double(v[i]));
    }
    os << ']';
  };
  const auto opt = [&](const std::optional<std::size_t>& v) {
    if (v) os << *v;
    else os << "null";
  };
  const auto lat = [&](const LatencyStats& l) {
    os << "{\"count\":" << l.count << ",\"mean\":";
    num(l.mean_ns);
    os << ",\"p50\":";
    num(l.p50_ns);
    os << ",\"p90\":";
    num(l.p90_ns);
    os << ",\"p99\":";
    num(l.p99_ns);
    os << ",\"min\":";
    num(l.min_ns);
    os << ",\"max\":";
    num(l.max_ns);
    os << '}';
  };
  os << "{\"calls\":" << calls << ",\"batch_calls\":" << batch_calls << ",\"samples\":" << samples
     << ",\"predicted\":" << predicted << ",\"nonfinite_inputs\":" << nonfinite_inputs
     << ",\"nonfinite_outputs\":" << nonfinite_outputs
     << ",\"out_of_range_samples\":" << out_of_range_samples
     << ",\"out_of_range_values\":" << out_of_range_values << ",\"latency_ns\":";
  lat(latency);
  os << ",\"batch_latency_ns\":";
  lat(batch_latency);
  os << ",\"range\":{\"margin\":";
  num(options.range_margin);
  os << ",\"margin_abs\":";
  num(options.range_margin_abs);
  os << ",\"max_features\":" << options.range_max_features << ",\"worst_feature\":";
  opt(worst_feature);
  os << ",\"worst_feature_count\":" << (worst_feature ? feature_out_of_range[*worst_feature] : 0)
     << ",\"worst_excess\":";
  num(worst_excess);
  os << ",\"worst_excess_feature\":";
  opt(worst_excess_feature);
  os << ",\"worst_excess_value\":";
  num(worst_excess_value);
  os << ",\"per_feature\":";
  arr(feature_out_of_range);
  os << "},\"drift\":{\"kind\":\"" << to_string(kind) << "\",\"distributions\":" << distributions
     << ",\"categories\":" << categories << ",\"counted\":" << counted << ",\"psi\":";
  num(psi);
  os << ",\"tvd\":";
  num(tvd);
  os << ",\"threshold\":";
  num(options.psi_threshold);
  os << ",\"min_samples\":" << options.min_samples
     << ",\"drifted\":" << (drifted ? "true" : "false") << ",\"psi_per_output\":";
  arr(psi_per_output);
  os << ",\"reference\":";
  arr(reference);
  os << ",\"observed\":";
  arr(observed);
  os << "}}";
  out << os.str();
}

// A readable summary: counts, flags, latency percentiles, drift and the two distributions.
inline std::ostream& operator<<(std::ostream& out, const MonitorStats& s) {
  std::ostringstream os;
  const auto g = [](std::uint64_t v) { return detail::group_thousands(std::size_t(v)); };
  const auto fixed = [](double v, int digits) {
    if (!std::isfinite(v)) return std::string("-");
    std::ostringstream f;
    f << std::fixed << std::setprecision(digits) << v;
    return f.str();
  };
  const auto ns = [&](double v) { return std::isfinite(v) ? g(std::uint64_t(v)) : std::string("-"); };
  const auto pct = [&](std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? std::string("-") : fixed(100.0 * double(part) / double(whole), 2) + "%";
  };
  os << "Monitor: " << g(s.samples) << " samples in " << g(s.calls) << " calls and "
     << g(s.batch_calls) << " batch calls; " << g(s.predicted) << " predicted\n";
  os << "  non-finite inputs   " << g(s.nonfinite_inputs) << " (refused, model not run)\n"
     << "  non-finite outputs  " << g(s.nonfinite_outputs) << '\n'
     << "  out of range        " << g(s.out_of_range_samples) << " samples ("
     << pct(s.out_of_range_samples, s.predicted) << "), " << g(s.out_of_range_values)
     << " feature values (margin " << s.options.range_margin << " of the range + "
     << s.options.range_margin_abs << ", more than " << s.options.range_max_features
     << " features flags a sample)\n";
  if (s.worst_feature)
    os << "  most often outside  feature " << *s.worst_feature << " ("
       << g(s.feature_out_of_range[*s.worst_feature]) << " times); largest excess "
       << s.worst_excess << " at feature " << *s.worst_excess_feature << " (value "
       << s.worst_excess_value << ")\n";
  const auto lat = [&](const char* name, const LatencyStats& l) {
    os << "  " << name << g(l.count) << " timed: p50 " << ns(l.p50_ns) << "  p90 " << ns(l.p90_ns)
       << "  p99 " << ns(l.p99_ns) << "  max " << ns(l.max_ns) << "  mean " << ns(l.mean_ns)
       << " ns\n";
  };
  lat("latency             ", s.latency);
  lat("batch latency       ", s.batch_latency);
  os << "  drift (" << to_string(s.kind) << ", " << g(s.counted) << " counted): PSI "
     << fixed(s.psi, 4) << " (threshold " << s.options.psi_threshold << "), TVD " << fixed(s.tvd, 4)
     << ": "
     << (s.drifted ? "DRIFTED"
         : s.counted < s.options.min_samples
             ? "no verdict below " + g(s.options.min_samples) + " predictions"
             : std::string("no drift"))
     << '\n';
  if (s.kind == OutputKind::classification) {
    os << "  class  reference   observed\n";
    for (std::size_t c = 0; c < s.categories; ++c)
      os << std::setw(7) << c << std::setw(11) << fixed(s.reference[c], 4) << std::setw(11)
         << fixed(s.counted ? s.observed[c] : NAN, 4) << '\n';
  } else {
    os << "  output       PSI\n";
    for (std::size_t d = 0; d < s.psi_per_output.size(); ++d)
      os << std::setw(8) << d << std::setw(10) << fixed(s.psi_per_output[d], 4) << '\n';
  }
  return out << os.str();
}

// A model in service: predictions with flags, counters, latency and drift (top of the file).
template <class Model>
class Monitored {
 public:
  using T = typename Model::value_type;
  static constexpr std::size_t input_size = Model::input_size;
  static constexpr std::size_t output_size = Model::output_size;

  Monitored(Model& model, ReferenceProfile profile, MonitorOptions options = {})
      : model_(model), profile_(std::move(profile)), options_(options) {
    profile_.check("Monitored");
    if (profile_.input_size != input_size || profile_.output_size != output_size)
      fail("Monitored: the reference profile describes ", profile_.input_size, " inputs and ",
           profile_.output_size, " outputs, but the model takes ", input_size, " inputs ",
           Model::input_shape::str(), " and gives ", output_size, " outputs.");
    const auto nonneg = [](double v, const char* name) {
      if (!(v >= 0) || !std::isfinite(v))
        fail("Monitored: the option ", name, " is ", v, "; it must be finite and at least 0.");
    };
    nonneg(options_.range_margin, "range_margin");
    nonneg(options_.range_margin_abs, "range_margin_abs");
    if (!(options_.psi_threshold > 0) || !std::isfinite(options_.psi_threshold))
      fail("Monitored: the option psi_threshold is ", options_.psi_threshold,
           "; it must be finite and above 0.");
    lo_.resize(input_size);
    hi_.resize(input_size);
    for (std::size_t j = 0; j < input_size; ++j) {
      const double m = options_.range_margin * (profile_.feature_max[j] - profile_.feature_min[j]) +
                       options_.range_margin_abs;
      lo_[j] = profile_.feature_min[j] - m;
      hi_[j] = profile_.feature_max[j] + m;
    }
    // Value-initialized: every counter starts at 0.
    feature_oor_ = std::make_unique<Counter[]>(input_size);
    observed_ = std::make_unique<Counter[]>(profile_.counts.size());
  }

  // Fits the profile on `train` (ReferenceProfile::fit) and monitors against it.
  Monitored(Model& model, const data::Dataset& train, MonitorOptions options = {},
            ProfileOptions profile_options = {})
      : Monitored(model, ReferenceProfile::fit(model, train, profile_options), options) {}

  // One sample of input_size values. A NaN or Inf input is refused: outputs NaN, model not run.
  Prediction<T, output_size> predict(std::span<const T> x) {
    const auto t0 = std::chrono::steady_clock::now();
    if (x.size() != input_size)
      fail("Monitored::predict() was given ", x.size(), " input values but the model's input ",
           Model::input_shape::str(), " has ", input_size, ".");
    add(calls_);
    add(samples_);
    Prediction<T, output_size> p;
    if (!all_finite(x.data())) {
      add(nonfinite_inputs_);
      p.outputs.fill(std::numeric_limits<T>::quiet_NaN());
      p.flags.status = Status::nonfinite_input;
      return p;
    }
    p.outputs = model_.predict(x);
    p.flags = after_model(x.data(), p.outputs.data());
    latency_.record(elapsed_ns(t0));
    return p;
  }

  // A batch: x holds n * input_size values, out receives n * output_size; flags, when not empty,
  // receives one SampleFlags a sample. Refused samples get NaN outputs; the others run as
  // contiguous sub-batches. Allocation-free for n up to the size given to reserve().
  BatchSummary predict(std::span<const T> x, std::span<T> out, std::span<SampleFlags> flags = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    if (x.size() % input_size != 0)
      fail("Monitored::predict() was given ", x.size(),
           " input values, not a multiple of the input size ", input_size, " of ",
           Model::input_shape::str(), ".");
    const std::size_t n = x.size() / input_size;
    if (out.size() != n * output_size)
      fail("Monitored::predict() got an output span of ", out.size(), " values for ", n,
           " samples; it needs ", n * output_size, ".");
    if (!flags.empty() && flags.size() != n)
      fail("Monitored::predict() got ", flags.size(), " flags for ", n,
           " samples; give one a sample or none.");
    add(batch_calls_);
    add(samples_, n);
    BatchSummary sum;
    sum.samples = n;
    std::size_t start = 0;
    const auto run = [&](std::size_t end) {  // samples [start, end) are all finite
      if (end == start) return;
      model_.predict(x.subspan(start * input_size, (end - start) * input_size),
                     out.subspan(start * output_size, (end - start) * output_size));
      for (std::size_t i = start; i < end; ++i) {
        const SampleFlags f = after_model(x.data() + i * input_size, out.data() + i * output_size);
        if (!flags.empty()) flags[i] = f;
        sum.nonfinite_outputs += f.status == Status::nonfinite_output;
        sum.out_of_range += f.out_of_range;
      }
      sum.predicted += end - start;
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (all_finite(x.data() + i * input_size)) continue;
      run(i);
      start = i + 1;
      add(nonfinite_inputs_);
      ++sum.nonfinite_inputs;
      std::fill_n(out.data() + i * output_size, output_size, std::numeric_limits<T>::quiet_NaN());
      if (!flags.empty()) flags[i] = SampleFlags{Status::nonfinite_input, 0, false};
    }
    run(n);
    if (sum.predicted > 0) batch_latency_.record(elapsed_ns(t0));
    return sum;
  }

  // Sizes the calling thread's inference context of the model for batches of up to n samples
  // (each serving thread calls it once; see Sequential::reserve_inference).
  void reserve(std::size_t n) { model_.reserve_inference(n); }

  // PSI of the observed prediction distribution against the training one (max over outputs for
  // regression); NaN below min_samples counted predictions.
  double drift_score() const {
    if (load(counted_) < std::max<std::uint64_t>(options_.min_samples, 1)) return NAN;
    double worst = 0;
    const std::size_t k = profile_.categories();
    for (std::size_t d = 0; d < profile_.distributions(); ++d)
      worst = std::max(worst,
                       detail::drift_scores(&profile_.counts[d * k], &observed_[d * k], k).psi);
    return worst;
  }
  bool drifted() const {
    const double s = drift_score();
    return std::isfinite(s) && s > options_.psi_threshold;
  }

  MonitorStats stats() const {
    MonitorStats s;
    s.calls = load(calls_);
    s.batch_calls = load(batch_calls_);
    s.nonfinite_inputs = load(nonfinite_inputs_);
    s.samples = std::max(load(samples_), s.nonfinite_inputs);
    s.predicted = s.samples - s.nonfinite_inputs;
    s.nonfinite_outputs = load(nonfinite_outputs_);
    s.out_of_range_samples = load(oor_samples_);
    s.out_of_range_values = load(oor_values_);
    s.latency = latency_.stats();
    s.batch_latency = batch_latency_.stats();
    s.options = options_;
    s.feature_out_of_range.resize(input_size);
    for (std::size_t j = 0; j < input_size; ++j) s.feature_out_of_range[j] = load(feature_oor_[j]);
    const auto& f = s.feature_out_of_range;
    const auto most = std::max_element(f.begin(), f.end());
    if (*most > 0) s.worst_feature = std::size_t(most - f.begin());
    {
      const std::lock_guard<std::mutex> lock(worst_mutex_);
      if (worst_excess_feature_) {
        s.worst_excess_feature = worst_excess_feature_;
        s.worst_excess = worst_excess_.load(std::memory_order_relaxed);
        s.worst_excess_value = worst_excess_value_;
      }
    }
    s.kind = profile_.kind;
    s.distributions = profile_.distributions();
    s.categories = profile_.categories();
    const std::size_t k = s.categories;
    std::vector<std::uint64_t> observed(profile_.counts.size());  // one read of each count
    for (std::size_t c = 0; c < observed.size(); ++c) observed[c] = load(observed_[c]);
    // counted: the samples in distribution 0 of this read (every distribution counts each once).
    for (std::size_t c = 0; c < k; ++c) s.counted += observed[c];
    s.reference.resize(profile_.counts.size());
    s.observed.resize(observed.size());
    for (std::size_t d = 0; d < s.distributions; ++d) {
      std::uint64_t nr = 0;
      for (std::size_t c = 0; c < k; ++c) nr += profile_.counts[d * k + c];
      for (std::size_t c = 0; c < k; ++c) {
        s.reference[d * k + c] = double(profile_.counts[d * k + c]) / double(nr);
        s.observed[d * k + c] =
            s.counted ? double(observed[d * k + c]) / double(s.counted) : NAN;
      }
      const auto ds = detail::drift_scores(&profile_.counts[d * k], &observed[d * k], k);
      const bool enough = s.counted >= std::max<std::uint64_t>(options_.min_samples, 1);
      s.psi_per_output.push_back(enough ? ds.psi : NAN);
      if (enough) {
        s.psi = std::isnan(s.psi) ? ds.psi : std::max(s.psi, ds.psi);
        s.tvd = std::isnan(s.tvd) ? ds.tvd : std::max(s.tvd, ds.tvd);
      }
    }
    s.drifted = std::isfinite(s.psi) && s.psi > options_.psi_threshold;
    return s;
  }

  void to_json(std::ostream& os) const { stats().to_json(os); }

  // Adds another monitor's counters (e.g. another thread's) into this one. Both must use the same
  // profile and options.
  void merge(const Monitored& o) {
    if (!(o.profile_ == profile_))
      fail("Monitored::merge: the other monitor uses a different reference profile (",
           o.profile_.samples(), " training samples, ", to_string(o.profile_.kind), ") than this one (",
           profile_.samples(), " training samples, ", to_string(profile_.kind), ").");
    if (o.lo_ != lo_ || o.options_.range_max_features != options_.range_max_features)
      fail("Monitored::merge: the other monitor uses different range options.");
    add(calls_, load(o.calls_));
    add(batch_calls_, load(o.batch_calls_));
    add(samples_, load(o.samples_));
    add(nonfinite_inputs_, load(o.nonfinite_inputs_));
    add(nonfinite_outputs_, load(o.nonfinite_outputs_));
    add(oor_samples_, load(o.oor_samples_));
    add(oor_values_, load(o.oor_values_));
    add(counted_, load(o.counted_));
    for (std::size_t j = 0; j < input_size; ++j) add(feature_oor_[j], load(o.feature_oor_[j]));
    for (std::size_t c = 0; c < profile_.counts.size(); ++c) add(observed_[c], load(o.observed_[c]));
    std::optional<std::size_t> feature;
    double excess = 0, value = NAN;
    {
      const std::lock_guard<std::mutex> lock(o.worst_mutex_);
      feature = o.worst_excess_feature_;
      excess = o.worst_excess_.load(std::memory_order_relaxed);
      value = o.worst_excess_value_;
    }
    if (feature) record_excess(excess, *feature, value);
    latency_.merge(o.latency_);
    batch_latency_.merge(o.batch_latency_);
  }

  // Zeroes every counter; keeps the profile, options and allocations.
  void reset() {
    for (Counter* c : {&calls_, &batch_calls_, &samples_, &nonfinite_inputs_, &nonfinite_outputs_,
                       &oor_samples_, &oor_values_, &counted_})
      c->store(0, std::memory_order_relaxed);
    for (std::size_t j = 0; j < input_size; ++j) feature_oor_[j].store(0, std::memory_order_relaxed);
    for (std::size_t c = 0; c < profile_.counts.size(); ++c)
      observed_[c].store(0, std::memory_order_relaxed);
    {
      const std::lock_guard<std::mutex> lock(worst_mutex_);
      worst_excess_.store(0, std::memory_order_relaxed);
      worst_excess_feature_.reset();
      worst_excess_value_ = NAN;
    }
    latency_.reset();
    batch_latency_.reset();
  }

  const ReferenceProfile& profile() const { return profile_; }
  const MonitorOptions& options() const { return options_; }
  Model& model() { return model_; }

 private:
  static std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point t0) {
    const auto d = std::chrono::steady_clock::now() - t0;
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  static bool all_finite(const T* x) {
    for (std::size_t j = 0; j < input_size; ++j)
      if (!std::isfinite(x[j])) return false;
    return true;
  }

  // Range check of a finite input and bookkeeping of the outputs the model gave for it.
  SampleFlags after_model(const T* x, const T* y) {
    SampleFlags f;
    for (std::size_t j = 0; j < input_size; ++j) {
      const double v = double(x[j]);
      if (v >= lo_[j] && v <= hi_[j]) continue;
      ++f.out_of_range_features;
      add(feature_oor_[j]);
      const double excess =
          v < lo_[j] ? profile_.feature_min[j] - v : v - profile_.feature_max[j];
      if (excess > worst_excess_.load(std::memory_order_relaxed)) record_excess(excess, j, v);
    }
    if (f.out_of_range_features) add(oor_values_, f.out_of_range_features);
    f.out_of_range = f.out_of_range_features > options_.range_max_features;
    if (f.out_of_range) add(oor_samples_);
    for (std::size_t k = 0; k < output_size; ++k)
      if (!std::isfinite(y[k])) {
        f.status = Status::nonfinite_output;
        add(nonfinite_outputs_);
        return f;
      }
    const std::size_t cats = profile_.categories();
    for (std::size_t d = 0; d < profile_.distributions(); ++d)
      add(observed_[d * cats + profile_.category(y, d)]);
    add(counted_);
    return f;
  }

  // A new largest excess: rare (each record beats the last), so a mutex keeps the three fields
  // together without costing the common path, which only reads worst_excess_.
  void record_excess(double excess, std::size_t feature, double value) {
    const std::lock_guard<std::mutex> lock(worst_mutex_);
    if (!(excess > worst_excess_.load(std::memory_order_relaxed))) return;
    worst_excess_.store(excess, std::memory_order_relaxed);
    worst_excess_feature_ = feature;
    worst_excess_value_ = value;
  }

  using Counter = std::atomic<std::uint64_t>;
  static void add(Counter& c, std::uint64_t v = 1) { c.fetch_add(v, std::memory_order_relaxed); }
  static std::uint64_t load(const Counter& c) { return c.load(std::memory_order_relaxed); }

  Model& model_;
  ReferenceProfile profile_;
  MonitorOptions options_;
  std::vector<double> lo_, hi_;  // the widened training range per feature
  // Shared by every calling thread: atomics (see the top of the file).
  Counter calls_{0}, batch_calls_{0}, samples_{0};
  Counter nonfinite_inputs_{0}, nonfinite_outputs_{0};
  Counter oor_samples_{0}, oor_values_{0}, counted_{0};
  std::unique_ptr<Counter[]> feature_oor_;  // input_size counters
  std::unique_ptr<Counter[]> observed_;     // like profile_.counts
  std::atomic<double> worst_excess_{0};     // read without the lock, written under it
  mutable std::mutex worst_mutex_;          // guards the record: the three fields together
  std::optional<std::size_t> worst_excess_feature_;
  double worst_excess_value_ = NAN;
  detail::LatencyHistogram latency_, batch_latency_;
};

// The summary of a monitor's current stats().
template <class Model>
std::ostream& operator<<(std::ostream& os, const Monitored<Model>& m) {
  return os << m.stats();
}

}  // namespace ctnn
// ---- end ctnn/deploy/monitor.hpp ----
// ---- begin ctnn/optim/adamw.hpp ----
// ctnn/optim/adamw.hpp: AdamW (Loshchilov & Hutter), Adam with decoupled weight decay, as Keras's.
//
// Represents, at step t, in Keras's order (clipping first, see optim/clipping.hpp):
//   w -= lr * weight_decay * w                       (decay, on every parameter, bias included)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
// Defaults: lr 1e-3, weight_decay 0.004, b1 0.9, b2 0.999, eps 1e-7 (Keras's AdamW); the
// constructor takes them in Keras's order. With weight_decay 0 it is Adam. The moments are two
// arena-sized buffers allocated at the first step; each step is one fused pass over w, g, m, v.
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>


namespace ctnn {

template <class T>
class BasicAdamW {
 public:
  explicit BasicAdamW(T lr = T(1e-3), T wd = T(0.004), T b1 = T(0.9), T b2 = T(0.999),
                      T eps = T(1e-7))
      : learning_rate(lr), weight_decay(wd), beta_1(b1), beta_2(b2), epsilon(eps) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "AdamW";
  T learning_rate, weight_decay, beta_1, beta_2, epsilon;
  GradientClipping clipping;  // off by default (optim/clipping.hpp)

  // Fails with a sentence unless: learning rate finite >= 0, weight_decay finite >= 0, beta_1 and
  // beta_2 in [0, 1), epsilon finite > 0, and the clipping options valid.
  void check_hyperparameters() const {
    detail::check_hyperparameter("AdamW", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("AdamW", "weight_decay", double(weight_decay), 0);
    detail::check_hyperparameter("AdamW", "beta_1", double(beta_1), 0, false, 1);
    detail::check_hyperparameter("AdamW", "beta_2", double(beta_2), 0, false, 1);
    detail::check_hyperparameter("AdamW", "epsilon", double(epsilon), 0, true);
    clipping.check("AdamW");
  }

  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  // Applies one update to params from grads (both arena-sized).
  void step(std::span<T> params, std::span<const T> grads) {
    check_hyperparameters();
    grads = clipper_.apply(clipping, grads);
    prepare(params.size());
    update_range(params.data(), grads.data(), 0, params.size());
  }

  // A step in pieces, for a trainer that updates each layer as soon as its gradient is final:
  // begin_step(n) once (false, changing nothing, when gradient clipping is set: clipnorm needs
  // every gradient first), then update_range over each layer's parameters exactly once. The
  // same arithmetic per parameter as step(): the same bits. (The arena's alignment padding
  // between layers is not visited: it holds 0 with a 0 gradient, which step() leaves at 0.)
  bool begin_step(std::size_t n) {
    check_hyperparameters();
    if (clipping.active()) return false;
    prepare(n);
    return true;
  }
  void update_range(T* w, const T* g, std::size_t offset, std::size_t count) {
    kernels::adamw_update(count, w + offset, g + offset, m_.data() + offset, v_.data() + offset,
                          step_size_, beta_1, beta_2, epsilon, T(learning_rate * weight_decay));
  }

  std::uint64_t iterations() const { return t_; }

  // Checkpoints (io/model_file.hpp): the hyperparameters in constructor order, and the state:
  // the step count and the buffers m, v (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(weight_decay), double(beta_1), double(beta_2),
            double(epsilon)};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 5) fail("AdamW has 5 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), weight_decay = T(h[1]), beta_1 = T(h[2]), beta_2 = T(h[3]),
    epsilon = T(h[4]);
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (m_.size() == 0) return {};
    return {{m_.data(), m_.size()}, {v_.data(), v_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 2) fail("AdamW keeps 0 or 2 state buffers, not ", buffers, ".");
    t_ = iterations;
    m_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    v_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{m_.data(), n}, {v_.data(), n}};
  }
  std::span<const T> first_moment() const { return {m_.data(), m_.size()}; }
  std::span<const T> second_moment() const { return {v_.data(), v_.size()}; }

 private:
  // Allocates the moments (first step, or a new size), counts the step and folds the bias
  // corrections into the step size.
  void prepare(std::size_t n) {
    if (m_.size() != n) {
      m_ = AlignedBuffer<T>(n);
      v_ = AlignedBuffer<T>(n);
      t_ = 0;
    }
    ++t_;
    const double b1t = std::pow(double(beta_1), double(t_)), b2t = std::pow(double(beta_2), double(t_));
    step_size_ = T(double(learning_rate) * std::sqrt(1.0 - b2t) / (1.0 - b1t));
  }

  AlignedBuffer<T> m_, v_;
  std::uint64_t t_ = 0;
  T step_size_ = T(0);
  detail::Clipper<T> clipper_;
};

using AdamW = BasicAdamW<float>;

}  // namespace ctnn
// ---- end ctnn/optim/adamw.hpp ----
// ---- begin ctnn/optim/rmsprop.hpp ----
// ctnn/optim/rmsprop.hpp: RMSprop (Hinton), with Keras's defaults and formulation.
//
// Represents, per parameter (Keras's keras/optimizers/rmsprop.py, after clipping):
//   v = rho v + (1 - rho) g^2
//   centered: a = rho a + (1 - rho) g;  den = v - a^2 + eps     otherwise den = v + eps
//   inc = lr g / sqrt(den)                                       (eps inside the root, as Keras)
//   momentum > 0: mo = momentum mo + inc;  w -= mo               otherwise w -= inc
// Defaults: lr 1e-3, rho 0.9, momentum 0, eps 1e-7, centered false (Keras). The state is three
// arena-sized buffers (v, mo, a) allocated at the first step, whatever the options, so a
// checkpoint restores before its hyperparameters are known; mo and a stay 0 while unused.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>


namespace ctnn {

template <class T>
class BasicRMSprop {
 public:
  explicit BasicRMSprop(T lr = T(1e-3), T r = T(0.9), T mom = T(0), T eps = T(1e-7),
                        bool is_centered = false)
      : learning_rate(lr), rho(r), momentum(mom), epsilon(eps), centered(is_centered) {
    check_hyperparameters();
  }

  static constexpr std::string_view name = "RMSprop";
  T learning_rate, rho, momentum, epsilon;
  bool centered;
  GradientClipping clipping;  // off by default (optim/clipping.hpp)

  // Fails with a sentence unless: learning rate finite >= 0, rho in [0, 1), momentum in [0, 1],
  // epsilon finite > 0 (0 divides 0 by 0 where a gradient has always been 0), clipping valid.
  void check_hyperparameters() const {
    detail::check_hyperparameter("RMSprop", "learning rate", double(learning_rate), 0);
    detail::check_hyperparameter("RMSprop", "rho", double(rho), 0, false, 1);
    detail::check_hyperparameter("RMSprop", "momentum", double(momentum), 0, false, 1, true);
    detail::check_hyperparameter("RMSprop", "epsilon", double(epsilon), 0, true);
    clipping.check("RMSprop");
  }

  void set_tensors(std::vector<ParamTensor> t) { clipper_.set_tensors(std::move(t)); }

  void step(std::span<T> params, std::span<const T> grads) {
    check_hyperparameters();
    grads = clipper_.apply(clipping, grads);
    prepare(params.size());
    update_range(params.data(), grads.data(), 0, params.size());
  }

  // A step in pieces, for a trainer that updates each layer as soon as its gradient is final:
  // begin_step(n) once (false, changing nothing, when gradient clipping is set: clipnorm needs
  // every gradient first), then update_range over each layer's parameters exactly once. The
  // same arithmetic per parameter as step(): the same bits. (The arena's alignment padding
  // between layers is not visited: it holds 0 with a 0 gradient, which step() leaves at 0.)
  bool begin_step(std::size_t n) {
    check_hyperparameters();
    if (clipping.active()) return false;
    prepare(n);
    return true;
  }
  void update_range(T* w, const T* g, std::size_t offset, std::size_t count) {
    kernels::rmsprop_update(count, w + offset, g + offset, v_.data() + offset,
                            momentum > T(0) ? mo_.data() + offset : nullptr,
                            centered ? a_.data() + offset : nullptr, learning_rate, rho, momentum,
                            epsilon);
  }

  std::uint64_t iterations() const { return t_; }

  // Checkpoints (io/model_file.hpp): hyperparameters (lr, rho, momentum, epsilon, centered as
  // 0/1) and the state: the step count and the buffers v, mo, a (none before the first step).
  std::vector<double> hyperparameters() const {
    return {double(learning_rate), double(rho), double(momentum), double(epsilon),
            centered ? 1.0 : 0.0};
  }
  void set_hyperparameters(std::span<const double> h) {
    if (h.size() != 5) fail("RMSprop has 5 hyperparameters, not ", h.size(), ".");
    learning_rate = T(h[0]), rho = T(h[1]), momentum = T(h[2]), epsilon = T(h[3]),
    centered = h[4] != 0;
  }
  std::vector<std::span<const T>> state_buffers() const {
    if (v_.size() == 0) return {};
    return {{v_.data(), v_.size()}, {mo_.data(), mo_.size()}, {a_.data(), a_.size()}};
  }
  std::vector<std::span<T>> restore_state(std::uint64_t iterations, std::size_t buffers, std::size_t n) {
    if (buffers != 0 && buffers != 3) fail("RMSprop keeps 0 or 3 state buffers, not ", buffers, ".");
    t_ = iterations;
    v_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    mo_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    a_ = buffers ? AlignedBuffer<T>(n) : AlignedBuffer<T>();
    if (!buffers) return {};
    return {{v_.data(), n}, {mo_.data(), n}, {a_.data(), n}};
  }

 private:
  // Allocates the state (first step, or a new size) and counts the step.
  void prepare(std::size_t n) {
    if (v_.size() != n) {
      v_ = AlignedBuffer<T>(n);
      mo_ = AlignedBuffer<T>(n);
      a_ = AlignedBuffer<T>(n);
    }
    ++t_;
  }

  AlignedBuffer<T> v_, mo_, a_;
  std::uint64_t t_ = 0;
  detail::Clipper<T> clipper_;
};

using RMSprop = BasicRMSprop<float>;

}  // namespace ctnn
// ---- end ctnn/optim/rmsprop.hpp ----
// ---- begin ctnn/deploy/streaming.hpp ----
// ctnn/deploy/streaming.hpp: a recurrent model run one time step per call, with its hidden state
// in fixed member buffers.
//
// StreamingModel<Model> takes a model trained on whole sequences (Input<Steps, Features>, then
// SimpleRNN / LSTM / GRU layers, then any layers that act on one step's output; or
// Input<Steps> of token ids and an Embedding before the recurrent layers) and runs it on one
// step x_t of Features values (or one token) at a time:
//   step(x_t)   the model's output after this step: what the whole model outputs for the sequence
//               x_0 .. x_t (for a model whose last recurrent layer returns sequences, row t of
//               its output); the recurrent layers' h (and LSTM's c) advance
//   reset()     a new sequence: the recurrent states back to zero
// After Steps calls, step() returns what Model::predict returns for the whole sequence (the same
// operations in the same order: tests/deploy/test_streaming.cpp checks the bits), and nothing
// stops a stream from running longer than Steps: the recurrence does not depend on Steps.
//
// How: the planner (core/model.hpp) runs a second model type whose recurrent layers are replaced
// by their one-step forms (each recurrent layer's `step`: input Shape<Features>, output
// Shape<Units>, same parameters, its h and c in the state arena). The parameter arena is the
// model's own, so the weights of an exported header (deploy/export.hpp) or a trained model's
// parameters() serve both. As StaticModel: no heap, no exceptions, no OpenMP needed; one instance
// per stream (and per thread): weights shared, buffers and state per instance.
// Requires: the model's input feeds only recurrent layers (or an Embedding); a recurrent layer that returns
// sequences feeds only recurrent layers or is the model's output (a compile-time error names
// the layer otherwise); no Bidirectional layer (it needs the sequence's end). Inference only: the one-step layers have no backward.
#include <algorithm>
#include <array>
#include <cstddef>
#include <tuple>
#include <utility>


namespace ctnn::deploy {
namespace detail {

// A bound layer with a one-step form: the recurrent layers (whose steps keep state) and layers
// that act on each position alone (Embedding).
template <class L>
concept HasStep = requires { typename L::step; };
template <class L>
concept IsRecurrent = HasStep<L> && StatefulLayer<typename L::step>;

template <class L>
struct StepOf {
  using type = L;
};
template <HasStep L>
struct StepOf<L> {
  using type = typename L::step;
};

template <class N>
struct StepNode;
template <class L, std::size_t... In>
struct StepNode<ctnn::Node<L, In...>> {
  using type = ctnn::Node<typename StepOf<L>::type, In...>;
};

template <class L>
concept ReadsWholeSequence = requires { requires L::reads_whole_sequence; };

template <class Model, class Seq>
struct StepModelOf;
template <class Model, std::size_t... I>
struct StepModelOf<Model, std::index_sequence<I...>> {
  static_assert(!(ReadsWholeSequence<typename Model::template layer<I>> || ...),
                "StreamingModel cannot stream a Bidirectional layer: its backward direction reads "
                "the sequence from its last step, which a stream has not seen yet.");
  using first = typename Model::template layer<0>;
  static_assert(HasStep<first> || ReadsWholeSequence<first>,  // (the assertion above says why)
                "StreamingModel runs a model one time step at a time: its first layer must be a "
                "recurrent layer (SimpleRNN, LSTM or GRU) reading the Input<Steps, Features>, or an "
                "Embedding before one.");
  using type = ctnn::detail::ModelCore<
      typename Model::value_type, typename StepOf<first>::type::input_shape,
      std::tuple<typename StepNode<typename Model::template node<I>>::type...>, Model::style>;
};

}  // namespace detail

template <class Model>
class StreamingModel {
 public:
  using T = typename Model::value_type;
  // The one-step model: same parameters, recurrent layers replaced by their steps.
  using StepModel = typename detail::StepModelOf<Model, std::make_index_sequence<Model::num_layers>>::type;
  static constexpr std::size_t step_input_size = StepModel::input_size;  // Features
  static constexpr std::size_t output_size = StepModel::output_size;
  static constexpr std::size_t weight_bytes = Model::arena_size * sizeof(T);
  static constexpr std::size_t buffer_floats = StepModel::activation_floats_per_sample +
                                               StepModel::inference_scratch_floats_per_sample;
  // Activations and scratch for one step, plus the recurrent (and any other) state.
  static constexpr std::size_t buffer_bytes = (buffer_floats + StepModel::state_size) * sizeof(T);

 private:
  static constexpr std::size_t N = Model::num_layers;
  template <std::size_t I>
  using step_layer = typename StepModel::template layer<I>;

  // Every node reads tensors of the size its one-step layer takes: tensor 0 is one step's
  // Features, tensor k+1 node k's one-step output.
  static constexpr std::size_t bad_node = [] {
    std::array<std::size_t, N + 1> size{};
    size[0] = StepModel::input_size;
    std::size_t bad = N;
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = step_layer<I>;
      size[I + 1] = L::output_shape::size;
      if constexpr (!JoinLayer<L>) {
        if (size[Model::template inputs_of<I>[0]] != L::input_shape::size && bad == N) bad = I;
      }
    });
    return bad;
  }();
  static_assert(bad_node == N,
                "StreamingModel: a layer reads one time step's output of a recurrent layer that "
                "returns sequences, but takes the whole sequence (only another recurrent layer, or "
                "nothing, may follow a return_sequences layer).");
  static_assert(StepModel::arena_size == Model::arena_size,
                "StreamingModel: the one-step model's parameter arena differs from the model's.");

 public:
  // `params`: Model::arena_size values in the model's arena order (an exported header's
  // `parameters`, a trained model's parameters()); they must outlive this object.
  explicit StreamingModel(const T* params) noexcept
    requires(Model::state_size == 0)
      : params_(params) {
    reset();
  }
  // A model with non-trainable state (BatchNormalization) also takes it (Model::state_size
  // values, only read, copied in).
  StreamingModel(const T* params, const T* state) noexcept : params_(params) {
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = typename Model::template layer<I>;
      if constexpr (StatefulLayer<L> && !detail::IsRecurrent<L>)
        std::copy(state + Model::template state_offset<I>,
                  state + Model::template state_offset<I> + L::state_count,
                  state_.data() + StepModel::template state_offset<I>);
    });
    reset();
  }

  // Starts a new sequence: every recurrent layer's state is zero again.
  void reset() noexcept {
    ctnn::detail::static_for<N>([&]<std::size_t I>() {
      using L = step_layer<I>;
      if constexpr (detail::IsRecurrent<typename Model::template layer<I>>)
        L::init_state(state_.data() + StepModel::template state_offset<I>);
    });
  }

  // Advances every recurrent layer by one step of step_input_size values and returns the model's
  // output_size outputs for it; they live in this object until the next call.
  const T* step(const T* x) noexcept {
    std::copy(x, x + step_input_size, buf_);  // slot 0 of the activations is the input
    Buffers b{buf_};
    return StepModel::forward_on(params_, state_.data(), b, 1, PassContext{});
  }

 private:
  struct Buffers {
    T* base;
    T* activation(std::size_t offset) const noexcept { return base + offset; }
    T* scratch(std::size_t offset) const noexcept {
      return base + StepModel::activation_floats_per_sample + offset;
    }
  };
  const T* params_;
  std::array<T, StepModel::state_size + 1> state_{};  // (+1: never a zero-length array)
  alignas(kAlignBytes) T buf_[buffer_floats];
};

}  // namespace ctnn::deploy
// ---- end ctnn/deploy/streaming.hpp ----
// ---- end ctnn/ctnn.hpp ----
