// ctnn/core/sequential.hpp: Sequential<Input<...>, Layers...>, a model whose topology is a type.
//
// From the list of layer specs the compiler derives, as constants: every layer's input and output
// shape, its parameter count and offset in one parameter arena, the activation and scratch sizes
// per sample, and which steps fuse (Dense/Conv2D + ReLU) or vanish (Flatten). The model object
// owns only the parameter arena; training state (gradients, optimizer moments, a training
// workspace) lives in a Trainer, and inference buffers belong to the caller (an InferenceContext)
// or to the calling thread.
// Thread safety: predict() and predict_class() are const and may run on one model from any number
// of threads at once; nothing may change the parameters (fit, a Trainer step, initialize, load)
// while they run.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <locale>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/epilogue.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/simd_target.hpp"

namespace ctnn {

// The first element of a Sequential: the shape of one input sample (channels last for images).
template <std::size_t... Dims>
struct Input {
  static_assert(sizeof...(Dims) >= 1 && (std::size_t{1} * ... * Dims) > 0,
                "Input needs at least one dimension and no dimension may be 0.");
  using shape = Shape<Dims...>;
};

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

template <class T, std::size_t... InDims, class First, class... Rest>
class BasicSequential<T, Input<InDims...>, First, Rest...> {
 public:
  static_assert(std::is_floating_point_v<T>, "A model's scalar type must be float or double.");

  using value_type = T;
  using layers = typename detail::BindAll<T, Shape<InDims...>, First, Rest...>::type;
  static constexpr std::size_t num_layers = 1 + sizeof...(Rest);
  template <std::size_t I>
  using layer = std::tuple_element_t<I, layers>;

  using input_shape = Shape<InDims...>;
  using output_shape = typename layer<num_layers - 1>::output_shape;
  static constexpr std::size_t input_size = input_shape::size;
  static constexpr std::size_t output_size = output_shape::size;

 private:
  template <std::size_t... I>
  static constexpr bool all_layers(std::index_sequence<I...>) {
    return (Layer<layer<I>> && ...);
  }
  static_assert(all_layers(std::make_index_sequence<num_layers>{}),
                "Every layer of a Sequential must satisfy the ctnn::Layer contract (core/layer.hpp).");

  // Floats per arena segment are rounded up so each layer's parameters start on a 64-byte line.
  static constexpr std::size_t kAlign = kAlignBytes / sizeof(T);
  static constexpr std::size_t round_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

  template <std::size_t I>
  static constexpr bool fused_into_previous() {
    if constexpr (I == 0) return false;
    else return fused_epilogue<layer<I>> != Epilogue::none && FusesRelu<layer<I - 1>>;
  }
  template <std::size_t I>
  static constexpr bool fuses_next() {
    if constexpr (I + 1 >= num_layers) return false;
    else return fused_into_previous<I + 1>();
  }

  struct Plan {
    std::array<std::size_t, num_layers> param_offset{}, param_count{};
    std::array<std::size_t, num_layers> in_offset{}, out_offset{};  // per-sample activation slots
    std::array<std::size_t, num_layers> scratch_offset{};
    std::size_t arena = 0, activations = 0, scratch = 0, widest = 0;
  };
  static constexpr Plan make_plan() {
    Plan p;
    p.activations = round_up(input_size);  // slot 0: the input batch
    p.widest = input_size;
    std::size_t prev_out = 0;
    detail::static_for<num_layers>([&]<std::size_t I>() {
      using L = layer<I>;
      p.param_offset[I] = p.arena;
      p.param_count[I] = L::param_count;
      p.arena += round_up(L::param_count);
      p.in_offset[I] = prev_out;
      if (ViewLayer<L> || fused_into_previous<I>()) {
        p.out_offset[I] = prev_out;  // same buffer as the layer before
      } else {
        p.out_offset[I] = p.activations;
        p.activations += round_up(L::output_shape::size);
      }
      prev_out = p.out_offset[I];
      p.scratch_offset[I] = p.scratch;
      p.scratch += round_up(L::scratch_per_sample);
      p.widest = std::max(p.widest, L::output_shape::size);
    });
    return p;
  }
  static constexpr Plan plan = make_plan();

 public:
  // Trainable parameters, counted as Keras counts them.
  static constexpr std::size_t param_count = [] {
    std::size_t n = 0;
    for (std::size_t c : plan.param_count) n += c;
    return n;
  }();
  // Scalars in the parameter arena (param_count plus alignment padding between layers).
  static constexpr std::size_t arena_size = plan.arena;
  // Scalars of workspace per sample in a batch: activations, layer scratch and two gradient
  // buffers (the last only when training).
  static constexpr std::size_t activation_floats_per_sample = plan.activations;
  static constexpr std::size_t scratch_floats_per_sample = plan.scratch;
  static constexpr std::size_t gradient_floats_per_sample = 2 * round_up(plan.widest);
  template <std::size_t I>
  static constexpr std::size_t param_offset = plan.param_offset[I];

  // Activations, scratch and (when training) gradient buffers for batches of up to capacity()
  // samples. reserve() allocates only when the capacity grows.
  class Workspace {
   public:
    void reserve(std::size_t batch, bool training) {
      if (batch <= cap_ && (training <= training_)) return;
      cap_ = std::max(batch, cap_);
      training_ = training_ || training;
      const std::size_t per = activation_floats_per_sample + scratch_floats_per_sample +
                              (training_ ? gradient_floats_per_sample : 0);
      buf_ = AlignedBuffer<T>();
      buf_.resize(per * cap_);
    }
    std::size_t capacity() const { return cap_; }
    T* activation(std::size_t offset) { return buf_.data() + offset * cap_; }
    T* scratch(std::size_t offset) {
      return buf_.data() + (activation_floats_per_sample + offset) * cap_;
    }
    T* gradient(int which) {
      return buf_.data() +
             (activation_floats_per_sample + scratch_floats_per_sample +
              std::size_t(which) * round_up(plan.widest)) * cap_;
    }
    T* input() { return activation(0); }

   private:
    AlignedBuffer<T> buf_;
    std::size_t cap_ = 0;
    bool training_ = false;
  };

  // Initializes every layer as Keras would (Glorot uniform weights, zero biases) from `seed`.
  explicit BasicSequential(std::uint64_t seed = 0) : params_(arena_size) { initialize(seed); }

  void initialize(std::uint64_t seed) {
    Rng master(seed);
    std::fill(params_.begin(), params_.end(), T(0));
    detail::static_for<num_layers>([&]<std::size_t I>() {
      Rng rng(master.next_u64());
      layer<I>::init(params_.data() + plan.param_offset[I], rng);
    });
  }

  std::span<T> parameters() { return {params_.data(), params_.size()}; }
  std::span<const T> parameters() const { return {params_.data(), params_.size()}; }
  template <std::size_t I>
  std::span<T> layer_parameters() {
    return {params_.data() + plan.param_offset[I], layer<I>::param_count};
  }

  // Runs the batch already in ws.input() (n <= ws.capacity()) through every layer; returns the
  // output [n x output_size], which lives in ws.
  T* forward(Workspace& ws, std::size_t n, const PassContext& ctx) const {
    return forward_on(params_.data(), ws, n, ctx);
  }

  // The same pass over any parameters `p` (an arena of arena_size values) and any buffers `b`
  // offering activation(offset) and scratch(offset) as Workspace does: deploy/static_model.hpp
  // runs it over constexpr weights and fixed arrays, with no heap.
  template <class Buffers>
  static T* forward_on(const T* p, Buffers& ws, std::size_t n, const PassContext& ctx) {
    detail::static_for<num_layers>([&]<std::size_t I>() {
      using L = layer<I>;
      if constexpr (ViewLayer<L> || fused_into_previous<I>()) {
        return;  // Flatten passes its buffer on; a fused ReLU already ran in the layer before.
      } else {
        const T* x = ws.activation(plan.in_offset[I]);
        T* y = ws.activation(plan.out_offset[I]);
        T* s = ws.scratch(plan.scratch_offset[I]);
        if constexpr (fuses_next<I>())
          L::forward(p + plan.param_offset[I], x, y, n, s, ctx, fused_epilogue<layer<I + 1>>);
        else
          L::forward(p + plan.param_offset[I], x, y, n, s, ctx);
      }
    });
    return ws.activation(plan.out_offset[num_layers - 1]);
  }

  // Back-propagates dy = ws.gradient(0) [n x output of layer Top] through layers Top .. 0,
  // writing every parameter gradient of those layers into `grads` (an arena-sized span). Layers
  // after Top are not touched: a fused loss starts at the layer before Softmax.
  template <std::size_t Top = num_layers - 1>
  void backward(Workspace& ws, std::size_t n, T* grads, const PassContext& ctx) const {
    const T* p = params_.data();
    int cur = 0;
    detail::static_for<Top + 1>([&]<std::size_t J>() {
      constexpr std::size_t I = Top - J;
      using L = layer<I>;
      if constexpr (ViewLayer<L>) {
        return;  // the gradient passes through unchanged
      } else {
        T* dy = ws.gradient(cur);
        T* dx = I == 0 ? nullptr : ws.gradient(1 - cur);  // no input gradient for the data
        L::backward(p + plan.param_offset[I], ws.activation(plan.in_offset[I]),
                    ws.activation(plan.out_offset[I]), dy, dx, grads + plan.param_offset[I], n,
                    ws.scratch(plan.scratch_offset[I]), ctx);
        cur = 1 - cur;
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
    friend class BasicSequential;
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

  // Keras-style summary table.
  void summary(std::ostream& os) const {
    const auto line = [&](char c) { os << std::string(72, c) << '\n'; };
    os << "Model: \"sequential\" (ctnn, Highway target " << simd_target() << ", "
       << max_threads() << " threads)\n";
    line('_');
    os << std::left << std::setw(30) << " Layer (type)" << std::setw(28) << "Output Shape"
       << "Param #\n";
    line('=');
    detail::static_for<num_layers>([&]<std::size_t I>() {
      using L = layer<I>;
      std::string lname(L::name);
      std::string lower;
      for (char c : lname) lower += char(std::tolower(static_cast<unsigned char>(c)));
      const std::string label = " " + lower + "_" + std::to_string(I) + " (" + lname + ")";
      os << std::setw(30) << label << std::setw(28) << L::output_shape::str()
         << detail::group_thousands(L::param_count) << '\n';
    });
    line('=');
    std::ostringstream mb;
    mb << std::fixed << std::setprecision(2) << double(param_count * sizeof(T)) / (1024.0 * 1024.0);
    os << "Total params: " << detail::group_thousands(param_count) << " (" << mb.str() << " MB)\n"
       << "Trainable params: " << detail::group_thousands(param_count) << "\n"
       << "Non-trainable params: 0\n";
    line('_');
  }

 private:
  // Reads only params_ and writes only ws and out, so calls with different workspaces may overlap.
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

  AlignedBuffer<T> params_;
};

// The caller-owned inference buffers of a model type (BasicSequential or QuantizedModel):
//   ctnn::InferenceContext<Model> ctx(256);  model.predict(ctx, x, out);
template <class Model>
using InferenceContext = typename Model::InferenceContext;

// A float model: the type users write.
template <class InputSpec, class... Specs>
using Sequential = BasicSequential<float, InputSpec, Specs...>;

}  // namespace ctnn
