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
#pragma once
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

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/parallel.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/data/dataset.hpp"
#include "ctnn/deploy/static_quantized.hpp"
#include "ctnn/kernels/int8.hpp"
#include "ctnn/layers/fold_batch_norm.hpp"
#include "ctnn/layers/spatial.hpp"

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
