// ctnn/onnx/save.hpp: save_onnx(path, model), a float ctnn model as an ONNX file (opset 14),
// written with ONNX's own C++ library and checked by its checker (onnx::checker::check_model)
// before the file is (atomically) written.
//
// The ONNX graph is the one ctnn-onnx imports back to the same model type with the same
// parameter and state bits (onnx/import.hpp maps each node below back to its layer):
//   Conv2D, DepthwiseConv2D (group = C), Conv1D -> Conv (weights [F][C/G][k...], pads or auto_pad;
//        a causal Conv1D as pads [(K-1)D, 0]); Dense -> Gemm (transB = 1: Dense's [units][in]);
//   MaxPool2D, AvgPool2D, MaxPool1D, AveragePooling1D -> MaxPool, AveragePool; the global pools
//        -> GlobalAveragePool / GlobalMaxPool then Flatten (ONNX keeps [N, C, 1, 1]);
//   BatchNormalization -> BatchNormalization (its moving statistics as mean and var);
//   ReLU, LeakyReLU, ELU, Sigmoid, Tanh, HardSwish, HardSigmoid, Softmax -> the same operators;
//        ReLU6 and BoundedReLU<max> -> Clip(0, max); Dropout -> Dropout (ratio, inference);
//   Flatten -> Flatten; Reshape -> Reshape [-1, dims...]; Add -> Add; Concatenate -> Concat;
//   LSTM, GRU, SimpleRNN -> LSTM, GRU (linear_before_reset = 1), RNN, batch first (layout = 1),
//        then a Reshape that drops ONNX's direction axis.
// A model whose layers hold images or sequences (any convolution, pooling or BatchNormalization
// on them) takes and gives them channels first, as PyTorch does ([N, C, H, W], [N, C, L]); a
// Dense after a Flatten of such an image has its weight columns in ONNX's order. Any other
// layer (Bidirectional, Embedding, LayerNormalization, Swish, ZeroPadding2D, ...) is an Error
// naming it. Link ctnn::onnx.
#pragma once
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ctnn/core/layer.hpp"
#include "ctnn/deploy/export.hpp"
#include "ctnn/layers/add.hpp"
#include "ctnn/layers/concatenate.hpp"
#include "ctnn/io/atomic_file.hpp"
#include "ctnn/onnx/layout.hpp"

namespace ctnn::onnx {

namespace detail {

// "ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::pads(1, 1, 0, 0)>" -> "Conv2D" and its top-level
// template arguments.
struct Spec {
  std::string name;
  std::vector<std::string> args;
};
inline Spec parse_spec(const std::string& s) {
  Spec r;
  std::size_t b = s.find('<');
  std::string head = s.substr(0, b);
  if (head.rfind("ctnn::", 0) == 0) head = head.substr(6);
  r.name = head;
  if (b == std::string::npos) return r;
  int depth = 0;
  std::string cur;
  for (std::size_t i = b + 1; i + 1 < s.size(); ++i) {
    const char c = s[i];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      r.args.push_back(cur);
      cur.clear();
      continue;
    }
    if (!(cur.empty() && c == ' ')) cur += c;
  }
  if (!cur.empty()) r.args.push_back(cur);
  return r;
}

// A ctnn::Padding spelling, as ONNX attributes for `r` spatial axes: auto_pad or pads.
struct OnnxPad {
  std::string auto_pad;  // "" for explicit pads
  std::vector<std::int64_t> pads;
};
inline OnnxPad onnx_padding(const std::string& p, std::size_t r, std::size_t k, std::size_t d) {
  OnnxPad o;
  if (p == "ctnn::Padding::same") return {"SAME_UPPER", {}};
  if (p == "ctnn::Padding::same_lower") return {"SAME_LOWER", {}};
  if (p == "ctnn::Padding::valid") {
    o.pads.assign(2 * r, 0);
    return o;
  }
  if (p == "ctnn::Padding::causal") {
    o.pads = {std::int64_t(d * (k - 1)), 0};
    return o;
  }
  std::size_t t = 0, b = 0, l = 0, rr = 0;
  if (std::sscanf(p.c_str(), "ctnn::Padding::pads(%zu, %zu, %zu, %zu)", &t, &b, &l, &rr) != 4)
    fail("save_onnx: unknown padding ", p, ".");
  if (r == 2)
    o.pads = {std::int64_t(t), std::int64_t(l), std::int64_t(b), std::int64_t(rr)};
  else
    o.pads = {std::int64_t(l), std::int64_t(rr)};
  return o;
}

// The tensor ctnn tensor t is in the ONNX graph.
struct OnnxTensor {
  std::string name;
  std::vector<std::size_t> onnx;    // per sample, ONNX's order
  bool channels_last = false;       // ctnn holds it channels last (onnx = [C, spatial...])
  std::vector<std::uint32_t> order; // layout.hpp's order; empty: the same
};

class Writer {
 public:
  ::onnx::ModelProto model;
  ::onnx::GraphProto* graph;
  int counter = 0;

  Writer() {
    model.set_ir_version(8);
    model.set_producer_name("ctnn");
    model.set_producer_version("0.1.0");
    auto* op = model.add_opset_import();
    op->set_domain("");
    op->set_version(14);  // HardSwish is an opset 14 operator
    graph = model.mutable_graph();
    graph->set_name("ctnn");
  }
  std::string fresh(const std::string& base) { return base + "_" + std::to_string(counter++); }

  std::string initializer(const std::string& base, const std::vector<std::int64_t>& dims,
                          const std::vector<float>& values) {
    auto* t = graph->add_initializer();
    const std::string name = fresh(base);
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return name;
  }
  std::string int64s(const std::string& base, const std::vector<std::int64_t>& values) {
    auto* t = graph->add_initializer();
    const std::string name = fresh(base);
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::INT64);
    t->add_dims(std::int64_t(values.size()));
    for (auto v : values) t->add_int64_data(v);
    return name;
  }
  ::onnx::NodeProto* node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                          const std::string& output) {
    auto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }
  static void attr(::onnx::NodeProto* n, const std::string& a, std::int64_t v) {
    auto* x = n->add_attribute();
    x->set_name(a);
    x->set_type(::onnx::AttributeProto::INT);
    x->set_i(v);
  }
  static void attr(::onnx::NodeProto* n, const std::string& a, float v) {
    auto* x = n->add_attribute();
    x->set_name(a);
    x->set_type(::onnx::AttributeProto::FLOAT);
    x->set_f(v);
  }
  static void attr(::onnx::NodeProto* n, const std::string& a, const std::string& v) {
    auto* x = n->add_attribute();
    x->set_name(a);
    x->set_type(::onnx::AttributeProto::STRING);
    x->set_s(v);
  }
  static void attr(::onnx::NodeProto* n, const std::string& a, const std::vector<std::int64_t>& v) {
    auto* x = n->add_attribute();
    x->set_name(a);
    x->set_type(::onnx::AttributeProto::INTS);
    for (auto i : v) x->add_ints(i);
  }
  void value_info(::onnx::ValueInfoProto* v, const std::string& name, const std::vector<std::size_t>& dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto::FLOAT);
    auto* shape = tt->mutable_shape();
    shape->add_dim()->set_dim_param("batch");
    for (std::size_t d : dims) shape->add_dim()->set_dim_value(std::int64_t(d));
  }
};

inline OnnxTensor channels_first(std::string name, const std::vector<std::size_t>& ctnn_dims) {
  OnnxTensor t;
  t.name = std::move(name);
  t.onnx.push_back(ctnn_dims.back());
  t.onnx.insert(t.onnx.end(), ctnn_dims.begin(), ctnn_dims.end() - 1);
  t.channels_last = true;
  t.order = channels_last_order(t.onnx);
  return t;
}
inline std::size_t to_size(const std::string& s) { return std::size_t(std::stoull(s)); }

// What a layer is, from its declared kind (core/layer.hpp's LayerKind; the join types for Add and
// Concatenate), never from its display name: "" for a layer save_onnx does not write.
template <class L>
struct JoinOf {
  static constexpr const char* name = "";
};
template <class T, ShapeType F, ShapeType... O>
struct JoinOf<ctnn::detail::AddJoin<T, F, O...>> {
  static constexpr const char* name = "Add";
};
template <class T, ShapeType F, ShapeType... O>
struct JoinOf<ctnn::detail::ConcatenateJoin<T, F, O...>> {
  static constexpr const char* name = "Concatenate";
};
inline std::string kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::dense: return "Dense";
    case LayerKind::conv2d: return "Conv2D";
    case LayerKind::depthwise_conv2d: return "DepthwiseConv2D";
    case LayerKind::conv1d: return "Conv1D";
    case LayerKind::max_pool2d: return "MaxPool2D";
    case LayerKind::avg_pool2d: return "AvgPool2D";
    case LayerKind::max_pool1d: return "MaxPool1D";
    case LayerKind::avg_pool1d: return "AveragePooling1D";
    case LayerKind::global_avg_pool2d: return "GlobalAveragePooling2D";
    case LayerKind::global_max_pool2d: return "GlobalMaxPooling2D";
    case LayerKind::global_avg_pool1d: return "GlobalAveragePooling1D";
    case LayerKind::global_max_pool1d: return "GlobalMaxPooling1D";
    case LayerKind::batch_norm: return "BatchNormalization";
    case LayerKind::relu: return "ReLU";
    case LayerKind::leaky_relu: return "LeakyReLU";
    case LayerKind::elu: return "ELU";
    case LayerKind::sigmoid: return "Sigmoid";
    case LayerKind::tanh: return "Tanh";
    case LayerKind::hard_swish: return "HardSwish";
    case LayerKind::hard_sigmoid: return "HardSigmoid";
    case LayerKind::bounded_relu: return "BoundedReLU";
    case LayerKind::softmax: return "Softmax";
    case LayerKind::dropout: return "Dropout";
    case LayerKind::flatten: return "Flatten";
    case LayerKind::reshape: return "Reshape";
    case LayerKind::lstm: return "LSTM";
    case LayerKind::gru: return "GRU";
    case LayerKind::simple_rnn: return "SimpleRNN";
    default: return "";
  }
}
// The ONNX operator of an activation without settings, or nullptr.
inline const char* plain_activation(LayerKind k) {
  switch (k) {
    case LayerKind::relu: return "Relu";
    case LayerKind::sigmoid: return "Sigmoid";
    case LayerKind::tanh: return "Tanh";
    case LayerKind::hard_swish: return "HardSwish";
    default: return nullptr;
  }
}
template <class L>
std::string export_kind() {
  if constexpr (JoinLayer<L>) return JoinOf<L>::name;
  else return kind_name(layer_kind<L>);
}

}  // namespace detail

// The ONNX model of `model` (see the top of this file), checked by ONNX's checker.
template <class Model>
::onnx::ModelProto to_onnx_model(const Model& model) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "save_onnx writes float models (ONNX's float32); quantized models are not written yet.");
  using namespace detail;
  constexpr std::size_t N = Model::num_layers;
  Writer w;
  std::vector<OnnxTensor> tensors(N + 1);
  std::vector<std::string> specs(N), kinds(N);
  std::vector<LayerKind> layer_kinds(N, LayerKind::other);
  std::vector<std::vector<std::size_t>> out_dims(N + 1), inputs(N);
  std::vector<std::size_t> param_offset(N), state_offset(N), param_count(N), state_count(N);
  using In = typename Model::input_shape;
  out_dims[0].assign(In::dims.begin(), In::dims.end());
  ctnn::detail::static_for<N>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    specs[I] = deploy::layer_spec<L>();
    kinds[I] = export_kind<L>();
    if constexpr (!JoinLayer<L>) layer_kinds[I] = layer_kind<L>;
    out_dims[I + 1].assign(L::output_shape::dims.begin(), L::output_shape::dims.end());
    if constexpr (Model::is_chain) {
      inputs[I] = {I};
    } else {
      for (std::size_t t : Model::template inputs_of<I>) inputs[I].push_back(t);
    }
    param_offset[I] = Model::template param_offset<I>;
    param_count[I] = L::param_count;
    state_offset[I] = Model::template state_offset<I>;
    state_count[I] = ctnn::detail::state_count_of<L>();
  });
  // The input: channels first when it reaches a convolution, pooling or BatchNormalization
  // through elementwise layers only (import.hpp reads with the same rule).
  std::vector<bool> reach(N + 1, false);
  reach[0] = true;
  bool spatial = false;
  for (std::size_t I = 0; I < N; ++I) {
    bool reads = false;
    for (std::size_t t : inputs[I]) reads = reads || reach[t];
    if (!reads) continue;
    const std::string& k = kinds[I];
    if (k.find("Conv") != std::string::npos || k.find("Pool") != std::string::npos || k == "BatchNormalization")
      spatial = true;
    static const std::set<std::string> through = {"ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "HardSwish",
                                                  "HardSigmoid", "BoundedReLU", "Dropout", "Add"};
    if (through.count(k)) reach[I + 1] = true;
  }
  if (spatial && (In::rank == 2 || In::rank == 3)) {
    tensors[0] = channels_first("input", out_dims[0]);
  } else {
    tensors[0].name = "input";
    tensors[0].onnx = out_dims[0];
  }
  w.value_info(w.graph->add_input(), "input", tensors[0].onnx);

  const float* P = model.parameters().data();
  const float* S = model.state().data();
  for (std::size_t I = 0; I < N; ++I) {
    const Spec sp = parse_spec(specs[I]);
    const std::string& kind = kinds[I];
    const OnnxTensor& x = tensors[inputs[I][0]];
    const std::vector<std::size_t>& xd = out_dims[inputs[I][0]];
    const std::string lname = "layer" + std::to_string(I) + "_" + kind;
    const std::string out = lname;
    const float* p = P + param_offset[I];
    OnnxTensor y;
    y.name = out;
    const auto cant = [&](const std::string& why) {
      fail("save_onnx: layer ", I, " (", specs[I], ") cannot be written as ONNX: ", why, ".");
    };
    const auto same_layout = [&] {
      y.onnx = x.onnx;
      y.channels_last = x.channels_last;
      y.order = x.order;
    };
    if (kind == "Conv2D" || kind == "DepthwiseConv2D" || kind == "Conv1D") {
      if (!x.channels_last) cant("its input is not held channels first in ONNX");
      const bool dw = kind == "DepthwiseConv2D", c1 = kind == "Conv1D";
      const std::size_t r = c1 ? 1 : 2;
      std::size_t KH, KW, St, D, G = 1, M = 1;
      std::string pad;
      const std::size_t C = xd.back();
      std::size_t F;
      if (dw) {
        KH = to_size(sp.args[0]), KW = to_size(sp.args[1]), St = to_size(sp.args[2]), pad = sp.args[3];
        M = to_size(sp.args[4]), D = to_size(sp.args[5]);
        F = C * M, G = C;
      } else if (c1) {
        F = to_size(sp.args[0]), KH = 1, KW = to_size(sp.args[1]), St = to_size(sp.args[2]), pad = sp.args[3];
        D = to_size(sp.args[4]);
        if (sp.args.size() > 7) G = to_size(sp.args[7]);
      } else {
        F = to_size(sp.args[0]), KH = to_size(sp.args[1]), KW = to_size(sp.args[2]), St = to_size(sp.args[3]);
        pad = sp.args[4];
        D = sp.args.size() > 7 ? to_size(sp.args[7]) : 1;
        G = sp.args.size() > 8 ? to_size(sp.args[8]) : 1;
      }
      const std::size_t Cg = C / G, taps = KH * KW;
      // ctnn W[taps][C/G][F] (depthwise: [taps][C][M], i.e. [taps][F]) -> ONNX W[F][C/G][taps].
      std::vector<float> W(F * (dw ? 1 : Cg) * taps);
      for (std::size_t t = 0; t < taps; ++t)
        for (std::size_t f = 0; f < F; ++f) {
          if (dw) {
            W[f * taps + t] = p[t * F + f];
          } else {
            for (std::size_t c = 0; c < Cg; ++c) W[(f * Cg + c) * taps + t] = p[(t * Cg + c) * F + f];
          }
        }
      std::vector<float> B(p + (param_count[I] - F), p + param_count[I]);
      std::vector<std::int64_t> wdims = {std::int64_t(F), std::int64_t(dw ? 1 : Cg)};
      if (!c1) wdims.push_back(std::int64_t(KH));
      wdims.push_back(std::int64_t(KW));
      auto* n = w.node("Conv", lname, {x.name, w.initializer(lname + "_W", wdims, W), w.initializer(lname + "_B", {std::int64_t(F)}, B)}, out);
      Writer::attr(n, "kernel_shape", c1 ? std::vector<std::int64_t>{std::int64_t(KW)}
                                           : std::vector<std::int64_t>{std::int64_t(KH), std::int64_t(KW)});
      Writer::attr(n, "strides", std::vector<std::int64_t>(r, std::int64_t(St)));
      Writer::attr(n, "dilations", std::vector<std::int64_t>(r, std::int64_t(D)));
      Writer::attr(n, "group", std::int64_t(G));
      const OnnxPad op = onnx_padding(pad, r, KW, D);
      if (!op.auto_pad.empty()) Writer::attr(n, "auto_pad", op.auto_pad);
      else Writer::attr(n, "pads", op.pads);
      y = channels_first(out, out_dims[I + 1]);
    } else if (kind == "Dense") {
      if (xd.size() != 1) cant("its input is not flat");
      const std::size_t K = xd[0], U = to_size(sp.args[0]);
      std::vector<float> B(U * K);
      for (std::size_t j = 0; j < U; ++j)
        for (std::size_t i = 0; i < K; ++i) B[j * K + (x.order.empty() ? i : x.order[i])] = p[j * K + i];
      std::vector<float> C(p + U * K, p + U * K + U);
      auto* n = w.node("Gemm", lname, {x.name, w.initializer(lname + "_W", {std::int64_t(U), std::int64_t(K)}, B),
                                        w.initializer(lname + "_B", {std::int64_t(U)}, C)}, out);
      Writer::attr(n, "transB", std::int64_t(1));
      y.onnx = {U};
    } else if (kind == "MaxPool2D" || kind == "AvgPool2D" || kind == "MaxPool1D" || kind == "AveragePooling1D") {
      if (!x.channels_last) cant("its input is not held channels first in ONNX");
      const bool max = kind.rfind("Max", 0) == 0, one = kind.back() == 'D' && kind[kind.size() - 2] == '1';
      std::size_t PH = 1, PW, St, D = 1;
      bool cip = false;
      std::string pad;
      if (one) {
        PW = to_size(sp.args[0]), St = to_size(sp.args[1]), pad = sp.args[2];
        cip = sp.args.size() > 3 && sp.args[3] == "true";
      } else {
        PH = to_size(sp.args[0]), PW = to_size(sp.args[1]), St = to_size(sp.args[2]), pad = sp.args[3];
        if (sp.args.size() > 4) D = to_size(sp.args[4]);
        cip = sp.args.size() > 5 && sp.args[5] == "true";
      }
      if (!max && D != 1) cant("ONNX opset 14's AveragePool has no dilations");
      const std::size_t r = one ? 1 : 2;
      auto* n = w.node(max ? "MaxPool" : "AveragePool", lname, {x.name}, out);
      Writer::attr(n, "kernel_shape", one ? std::vector<std::int64_t>{std::int64_t(PW)}
                                           : std::vector<std::int64_t>{std::int64_t(PH), std::int64_t(PW)});
      Writer::attr(n, "strides", std::vector<std::int64_t>(r, std::int64_t(St)));
      if (max && D != 1) Writer::attr(n, "dilations", std::vector<std::int64_t>(r, std::int64_t(D)));
      if (cip) Writer::attr(n, "count_include_pad", std::int64_t(1));
      const OnnxPad op = onnx_padding(pad, r, PW, D);
      if (!op.auto_pad.empty()) Writer::attr(n, "auto_pad", op.auto_pad);
      else Writer::attr(n, "pads", op.pads);
      y = channels_first(out, out_dims[I + 1]);
    } else if (kind.rfind("Global", 0) == 0) {
      if (!x.channels_last) cant("its input is not held channels first in ONNX");
      const bool max = kind.find("Max") != std::string::npos;
      const std::string pooled = lname + "_pooled";
      w.node(max ? "GlobalMaxPool" : "GlobalAveragePool", lname, {x.name}, pooled);
      auto* f = w.node("Flatten", lname + "_flatten", {pooled}, out);
      Writer::attr(f, "axis", std::int64_t(1));
      y.onnx = {xd.back()};
    } else if (kind == "BatchNormalization") {
      if (!(x.channels_last || xd.size() == 1)) cant("its input is neither flat nor held channels first");
      const std::size_t C = xd.back();
      const float* s = S + state_offset[I];
      // ONNX's feature order[c] is ctnn's c on a flat tensor whose order is not ONNX's.
      const bool permuted = xd.size() == 1 && !x.order.empty();
      const auto block = [&](const float* v) {
        std::vector<float> o(C);
        for (std::size_t c = 0; c < C; ++c) o[permuted ? x.order[c] : c] = v[c];
        return o;
      };
      auto* n = w.node("BatchNormalization", lname,
                       {x.name, w.initializer(lname + "_scale", {std::int64_t(C)}, block(p)),
                        w.initializer(lname + "_B", {std::int64_t(C)}, block(p + C)),
                        w.initializer(lname + "_mean", {std::int64_t(C)}, block(s)),
                        w.initializer(lname + "_var", {std::int64_t(C)}, block(s + C))},
                       out);
      Writer::attr(n, "momentum", float(std::stod(sp.args[0])));
      Writer::attr(n, "epsilon", float(std::stod(sp.args[1])));
      same_layout();
    } else if (const char* act = plain_activation(layer_kinds[I])) {
      w.node(act, lname, {x.name}, out);
      same_layout();
    } else if (kind == "LeakyReLU" || kind == "ELU") {
      auto* n = w.node(kind == "ELU" ? "Elu" : "LeakyRelu", lname, {x.name}, out);
      Writer::attr(n, "alpha", float(std::stod(sp.args[0])));
      same_layout();
    } else if (kind == "HardSigmoid") {
      auto* n = w.node("HardSigmoid", lname, {x.name}, out);
      Writer::attr(n, "alpha", float(1.0 / 6.0));
      Writer::attr(n, "beta", 0.5f);
      same_layout();
    } else if (kind == "BoundedReLU") {  // ReLU6 spells no settings
      const double hi = sp.args.empty() ? 6.0 : std::stod(sp.args[0]);
      if (sp.args.size() >= 3 && (std::stod(sp.args[1]) != 0.0 || std::stod(sp.args[2]) != 0.0))
        cant("a negative slope or a threshold has no ONNX Clip");
      w.node("Clip", lname, {x.name, w.initializer(lname + "_min", {}, {0.0f}), w.initializer(lname + "_max", {}, {float(hi)})}, out);
      same_layout();
    } else if (layer_kinds[I] == LayerKind::softmax) {
      auto* n = w.node("Softmax", lname, {x.name}, out);
      Writer::attr(n, "axis", std::int64_t(-1));
      same_layout();
    } else if (kind == "Dropout") {
      w.node("Dropout", lname, {x.name, w.initializer(lname + "_ratio", {}, {float(std::stod(sp.args[0]))})}, out);
      same_layout();
    } else if (kind == "Flatten") {
      auto* n = w.node("Flatten", lname, {x.name}, out);
      Writer::attr(n, "axis", std::int64_t(1));
      std::size_t size = 1;
      for (std::size_t d : xd) size *= d;
      y.onnx = {size};
      y.order = x.order;
    } else if (kind == "Reshape") {
      if (!x.order.empty()) cant("it reshapes a tensor ONNX holds channels first");
      std::vector<std::int64_t> shape = {-1};
      for (std::size_t d : out_dims[I + 1]) shape.push_back(std::int64_t(d));
      w.node("Reshape", lname, {x.name, w.int64s(lname + "_shape", shape)}, out);
      y.onnx = out_dims[I + 1];
    } else if (kind == "LSTM" || kind == "GRU" || kind == "SimpleRNN") {
      // layout = 1 (batch first, opset 14): X [N, T, F]; Y [N, T, 1, H] or Y_h [N, 1, H], then a
      // Reshape drops the direction axis.
      if (!x.order.empty() || x.channels_last || xd.size() != 2) cant("its input is not a [N, T, F] sequence in ONNX");
      const std::size_t T = xd[0], F = xd[1], H = to_size(sp.args[0]);
      const bool sequences = sp.args[1] == "true";
      const std::size_t G = kind == "LSTM" ? 4 : kind == "GRU" ? 3 : 1, GH = G * H;
      const std::size_t lstm_gate[4] = {0, 2, 3, 1};  // ctnn's i, f, c, o blocks in ONNX's i, o, f, c
      std::vector<float> W(GH * F), R(GH * H), B(2 * GH, 0.0f);
      const float* b = p + F * GH + H * GH;
      for (std::size_t g = 0; g < G; ++g)
        for (std::size_t u = 0; u < H; ++u) {
          const std::size_t row = (kind == "LSTM" ? lstm_gate[g] : g) * H + u, col = g * H + u;
          for (std::size_t k = 0; k < F; ++k) W[row * F + k] = p[k * GH + col];
          for (std::size_t k = 0; k < H; ++k) R[row * H + k] = p[F * GH + k * GH + col];
          B[row] = b[col];
          if (kind == "GRU") B[GH + row] = b[GH + col];  // the recurrent bias (reset_after)
        }
      const std::string op = kind == "SimpleRNN" ? "RNN" : kind;
      auto* n = w.graph->add_node();
      n->set_op_type(op);
      n->set_name(lname);
      n->add_input(x.name);
      n->add_input(w.initializer(lname + "_W", {1, std::int64_t(GH), std::int64_t(F)}, W));
      n->add_input(w.initializer(lname + "_R", {1, std::int64_t(GH), std::int64_t(H)}, R));
      n->add_input(w.initializer(lname + "_B", {1, std::int64_t(2 * GH)}, B));
      const std::string raw = lname + "_out";
      n->add_output(sequences ? raw : "");
      if (!sequences) n->add_output(raw);
      Writer::attr(n, "hidden_size", std::int64_t(H));
      Writer::attr(n, "layout", std::int64_t(1));
      if (kind == "GRU") Writer::attr(n, "linear_before_reset", std::int64_t(1));
      std::vector<std::int64_t> shape = {-1};
      if (sequences) shape.push_back(std::int64_t(T));
      shape.push_back(std::int64_t(H));
      w.node("Reshape", lname + "_reshape", {raw, w.int64s(lname + "_shape", shape)}, out);
      y.onnx = out_dims[I + 1];
    } else if (kind == "Add" || kind == "Concatenate") {
      std::vector<std::string> names;
      for (std::size_t t : inputs[I]) {
        const bool same = tensors[t].channels_last == x.channels_last &&
                          (x.channels_last || tensors[t].order == x.order);
        if (!same) cant("its inputs are held in different orders in ONNX");
        names.push_back(tensors[t].name);
      }
      if (kind == "Add") {
        if (names.size() != 2) cant("ONNX's Add takes two inputs");
        w.node("Add", lname, names, out);
        same_layout();
      } else {
        auto* n = w.node("Concat", lname, names, out);
        Writer::attr(n, "axis", std::int64_t(x.channels_last ? 1 : std::int64_t(xd.size())));
        if (x.channels_last) {
          y = channels_first(out, out_dims[I + 1]);
        } else {
          if (!x.order.empty()) cant("its inputs are permuted flat tensors");
          y.onnx = out_dims[I + 1];
        }
      }
    } else {
      cant(kind.empty() ? std::string("save_onnx has no ONNX mapping for its kind of layer")
                        : "save_onnx has no ONNX mapping for " + kind + " yet");
    }
    y.name = out;
    tensors[I + 1] = y;
  }
  w.graph->mutable_node(w.graph->node_size() - 1)->set_output(0, "output");
  w.value_info(w.graph->add_output(), "output", tensors[N].onnx);
  try {
    ::onnx::checker::check_model(w.model);
  } catch (const std::exception& e) {
    fail("save_onnx: ONNX's checker refuses the model written: ", e.what());
  }
  return w.model;
}

// Writes `model` as an ONNX file at `path` (atomically: a failure leaves any file there as it was).
template <class Model>
void save_onnx(const std::string& path, const Model& model) {
  const ::onnx::ModelProto m = to_onnx_model(model);
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fail("save_onnx: the ONNX model could not be serialized.");
  io::write_atomically(path, [&](std::ostream& os) { os.write(bytes.data(), std::streamsize(bytes.size())); });
}

}  // namespace ctnn::onnx
