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
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "ctnn/core/parallel.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/deploy/static_model.hpp"
#include "ctnn/kernels/elementwise.hpp"
#include "ctnn/kernels/int8.hpp"
#include "ctnn/layers/spatial.hpp"

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
