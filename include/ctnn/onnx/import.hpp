// ctnn/onnx/import.hpp: an ONNX model read into ctnn's terms: the C++ model type that computes
// the same function, its parameter and state arenas, and how a sample's values are ordered.
//
// import_model(file) reads the file with the official ONNX library (libonnx-dev's generated
// protobuf classes; link the `onnx_proto` CMake target, as the target ctnn::onnx does) and maps
// its graph, node by node in ONNX's (topological) order, onto ctnn's layers:
//   Conv (1-D and 2-D; groups, depthwise, dilations, pads, auto_pad)  -> Conv1D, Conv2D,
//        DepthwiseConv2D (group == channels)
//   Gemm (alpha, beta, transB; bias [N] or [1, N]), MatMul by a constant [K, N], and MatMul
//        followed by Add of a constant [N]                               -> Dense
//   MaxPool, AveragePool (1-D and 2-D; pads, dilations, count_include_pad) -> MaxPool2D,
//        AvgPool2D, MaxPool1D, AveragePooling1D
//   GlobalAveragePool, GlobalMaxPool     -> GlobalAveragePooling2D/1D, GlobalMaxPooling2D/1D
//   BatchNormalization (inference form)  -> BatchNormalization (moving statistics as state)
//   Relu, LeakyRelu, Elu, Sigmoid, Tanh, HardSwish, HardSigmoid (alpha 1/6, beta 1/2),
//        Clip (min 0)                    -> ReLU, LeakyReLU, ELU, Sigmoid, Tanh, HardSwish,
//                                           HardSigmoid, ReLU6 / BoundedReLU
//   Softmax over a sample's only axis    -> Softmax
//   Flatten (axis 1), Reshape (batch kept) -> Flatten, Reshape (or nothing)
//   Add of two tensors, Concat           -> Add, Concatenate (a graph: ctnn::NodeGraph)
//   Add of a constant after Conv/Gemm/MatMul with one consumer -> folded into that bias
//   Dropout (ratio)                      -> Dropout (the identity in inference)
//   Identity, Constant                   -> nothing
// Layouts: in a graph with a convolution, pooling or BatchNormalization, an image input (C x H x W
// per sample) or sequence (C x L) is stored channels last, as ctnn computes (and so is every
// image those layers make); Conv weights
// [F][C/G][KH][KW] become Keras's [KH][KW][C/G][F]; Gemm's B (PyTorch's Linear [out][in] when
// transB = 1) becomes Dense's [units][in], its input columns permuted when the input is a
// flattened channels-last image, so Flatten -> Gemm computes what ONNX computes. The first axis
// of the graph's input and output is the batch.
// Whatever it cannot map exactly (an operator, an attribute value, a broadcast, a layout) is an
// Error naming the node, its operator and the attribute, never a different model.
//
// The result (ImportedModel) gives the model type as C++ source (model_type()), the arenas in
// the layout Model::parameters() and Model::state() use (padded per layer to 64 bytes), and the
// input and output orders of ctnn/onnx/layout.hpp. tools/ctnn_onnx.cpp writes it as a header;
// ctnn/onnx/load.hpp loads it into a model type written by hand.
#pragma once
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/layers/spatial.hpp"
#include "ctnn/onnx/layout.hpp"

namespace ctnn::onnx {

// A constant tensor (an initializer, a Constant node, or a graph input bound to a value): its
// dimensions and its values (floats and integers alike held as double, exactly).
struct Constant {
  std::vector<std::int64_t> dims;
  std::vector<double> values;
  std::size_t size() const { return values.size(); }
};

// Reads a TensorProto of float, double, int32 or int64 elements (typed fields or raw_data).
inline Constant read_tensor(const ::onnx::TensorProto& t, const std::string& what) {
  Constant c;
  std::size_t n = 1;
  for (std::int64_t d : t.dims()) {
    if (d < 0) fail("ONNX: tensor ", what, " has a negative dimension ", d, ".");
    c.dims.push_back(d);
    n *= std::size_t(d);
  }
  if (t.has_data_location() && t.data_location() == ::onnx::TensorProto::EXTERNAL)
    fail("ONNX: tensor ", what, " keeps its data in an external file; ctnn-onnx reads tensors "
         "stored inside the model (save it with onnx.save_model(..., save_as_external_data=False)).");
  const std::string& raw = t.raw_data();
  const auto take = [&]<class V>(const auto& typed) {
    if (!raw.empty()) {
      if (raw.size() != n * sizeof(V))
        fail("ONNX: tensor ", what, " has ", raw.size(), " bytes of raw data for ", n, " values of ",
             sizeof(V), " bytes.");
      for (std::size_t i = 0; i < n; ++i) {
        V v;
        std::memcpy(&v, raw.data() + i * sizeof(V), sizeof(V));
        c.values.push_back(double(v));
      }
    } else {
      if (std::size_t(typed.size()) != n)
        fail("ONNX: tensor ", what, " holds ", typed.size(), " values for its shape's ", n, ".");
      for (auto v : typed) c.values.push_back(double(V(v)));
    }
  };
  switch (t.data_type()) {
    case ::onnx::TensorProto::FLOAT: take.template operator()<float>(t.float_data()); break;
    case ::onnx::TensorProto::DOUBLE: take.template operator()<double>(t.double_data()); break;
    case ::onnx::TensorProto::INT32: take.template operator()<std::int32_t>(t.int32_data()); break;
    case ::onnx::TensorProto::INT64: take.template operator()<std::int64_t>(t.int64_data()); break;
    default:
      fail("ONNX: tensor ", what, " has element type ", t.data_type(),
           " (TensorProto.DataType); ctnn-onnx reads float, double, int32 and int64 tensors.");
  }
  return c;
}

// Reads a serialized TensorProto file (an ONNX test case's input_0.pb, output_0.pb, ...).
inline Constant read_tensor_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("ONNX: cannot open tensor file ", path, ".");
  ::onnx::TensorProto t;
  if (!t.ParseFromIstream(&f)) fail("ONNX: ", path, " is not a serialized TensorProto.");
  return read_tensor(t, path);
}

inline ::onnx::ModelProto read_model_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("ONNX: cannot open model file ", path, ".");
  ::onnx::ModelProto m;
  if (!m.ParseFromIstream(&f))
    fail("ONNX: ", path, " is not an ONNX model (the protobuf ModelProto does not parse: "
         "truncated or another kind of file).");
  if (!m.has_graph()) fail("ONNX: ", path, " holds no graph.");
  return m;
}

struct ImportOptions {
  // Graph inputs given as constants (for example the weights of ONNX's node tests, which are
  // inputs of the graph), by input name.
  std::map<std::string, Constant> bound;
};

// One ctnn layer of the imported model.
struct ImportedLayer {
  std::string spec;                 // the layer as C++ source: "ctnn::Conv2D<32, 3, 3, 1, ...>"
  std::string onnx_node, onnx_op;   // the ONNX node it comes from
  std::vector<std::size_t> inputs;  // the tensors it reads (0: the model's input; k: layer k-1's output)
  std::vector<float> params, state; // in the layer's own layout
  std::vector<std::size_t> dims;    // its output shape
};

struct ImportedModel {
  std::string producer;                    // "pytorch 1.13.1"
  std::int64_t opset = 0;                  // of the default ("ai.onnx") domain
  std::string input_name, output_name;
  std::vector<std::size_t> input_dims;     // ctnn's Input<...>
  std::vector<std::size_t> onnx_input_dims, onnx_output_dims;  // per sample, ONNX's order
  std::vector<std::uint32_t> input_order, output_order;        // ctnn/onnx/layout.hpp; empty: same
  std::size_t input_batch_axis = 0, output_batch_axis = 0;     // 1: time major ([T, N, F])
  std::vector<ImportedLayer> layers;

  static constexpr std::size_t kAlign = kAlignBytes / sizeof(float);
  static std::size_t round_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

  // True when every layer reads the one before it (a ctnn::Sequential); else a NodeGraph.
  bool is_chain() const {
    for (std::size_t k = 0; k < layers.size(); ++k)
      if (layers[k].inputs.size() != 1 || layers[k].inputs[0] != k) return false;
    return true;
  }
  std::string model_type() const {
    const bool chain = is_chain();
    std::string s = chain ? "ctnn::Sequential<ctnn::Input<" : "ctnn::NodeGraph<ctnn::Input<";
    for (std::size_t i = 0; i < input_dims.size(); ++i)
      { if (i) s += ", "; s += std::to_string(input_dims[i]); }
    s += ">";
    for (const ImportedLayer& l : layers) {
      s += chain ? ", " + l.spec : ", ctnn::At<" + l.spec;
      if (!chain) {
        for (std::size_t t : l.inputs) s += ", " + std::to_string(t);
        s += ">";
      }
    }
    return s + ">";
  }
  std::size_t param_count() const {
    std::size_t n = 0;
    for (const ImportedLayer& l : layers) n += l.params.size();
    return n;
  }
  std::size_t state_count() const {
    std::size_t n = 0;
    for (const ImportedLayer& l : layers) n += l.state.size();
    return n;
  }
  // Model::parameters() and Model::state() of the model type: each layer's values, padded.
  std::vector<float> arena() const { return pack(&ImportedLayer::params); }
  std::vector<float> state_arena() const { return pack(&ImportedLayer::state); }

 private:
  std::vector<float> pack(std::vector<float> ImportedLayer::*part) const {
    std::vector<float> a;
    for (const ImportedLayer& l : layers) {
      const std::size_t at = a.size();
      a.resize(at + round_up((l.*part).size()), 0.0f);
      std::copy((l.*part).begin(), (l.*part).end(), a.begin() + std::ptrdiff_t(at));
    }
    return a;
  }
};

namespace detail {

inline std::string join(const std::vector<std::int64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) { if (i) s += ", "; s += std::to_string(v[i]); }
  return s;
}

// A tensor of the graph as ctnn holds it: per sample (no batch axis).
struct Value {
  std::vector<std::size_t> onnx;         // ONNX's dimensions
  std::vector<std::size_t> dims;         // ctnn's
  std::vector<std::uint32_t> order;      // layout.hpp's order; empty: the same as ONNX's
  bool channels_last = false;            // dims = onnx with its first axis moved last
  std::size_t tensor = 0;                // ctnn tensor id
  std::size_t batch_axis = 0;            // where the batch sits in ONNX's full shape (1 for a
                                         // time-major sequence [T, N, F], as ONNX's LSTM takes)
  bool single_use = true;                // every name on the way from its layer has one reader
  std::size_t size() const {
    std::size_t n = 1;
    for (std::size_t d : dims) n *= d;
    return n;
  }
};

inline Value channels_last_value(std::vector<std::size_t> onnx) {
  Value v;
  v.onnx = onnx;
  v.dims.assign(onnx.begin() + 1, onnx.end());
  v.dims.push_back(onnx[0]);
  v.order = channels_last_order(onnx);
  v.channels_last = true;
  return v;
}

// The output length of a window over `in` positions (ONNX's and Keras's formulas).
struct Window {
  std::size_t k = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0;
  Padding::Mode mode = Padding::Mode::valid;
  std::size_t eff() const { return dilation * (k - 1) + 1; }
};

class Importer {
 public:
  Importer(const ::onnx::ModelProto& m, const ImportOptions& opt) : model_(m), opt_(opt) {}

  ImportedModel run() {
    const ::onnx::GraphProto& g = model_.graph();
    out_.producer = model_.producer_name() +
                    (model_.producer_version().empty() ? "" : " " + model_.producer_version());
    for (const auto& op : model_.opset_import())
      if (op.domain().empty() || op.domain() == "ai.onnx") out_.opset = op.version();
    for (const auto& t : g.initializer()) constants_[t.name()] = read_tensor(t, "'" + t.name() + "'");
    for (const auto& [name, c] : opt_.bound) constants_[name] = c;
    for (const auto& n : g.node())
      for (const auto& i : n.input()) ++uses_[i];
    for (const auto& o : g.output()) ++uses_[o.name()];

    // The one data input: a graph input that is neither an initializer nor bound.
    std::vector<const ::onnx::ValueInfoProto*> data;
    for (const auto& i : g.input())
      if (!constants_.count(i.name())) data.push_back(&i);
    if (data.size() != 1) {
      std::string names;
      for (auto* d : data) names += (names.empty() ? "'" : ", '") + d->name() + "'";
      fail("ONNX: the graph has ", data.size(), " data inputs (", names.empty() ? "none" : names,
           "); a ctnn model takes one. Bind the others to constants (ctnn-onnx --bind name=file.pb).");
    }
    read_input(*data[0]);

    for (int k = 0; k < g.node_size(); ++k) node(g.node(k), k);

    if (g.output_size() != 1)
      fail("ONNX: the graph has ", g.output_size(), " outputs; a ctnn model has one.");
    const std::string& oname = g.output(0).name();
    const auto it = values_.find(oname);
    if (it == values_.end()) fail("ONNX: the graph's output '", oname, "' is not computed by any node ctnn maps.");
    if (out_.layers.empty()) fail("ONNX: the graph computes nothing ctnn can hold as a layer (its output is its input).");
    if (it->second.tensor != out_.layers.size())
      fail("ONNX: the graph's output '", oname, "' is not the last layer's output (a node after it "
           "computes something unused); ctnn's model output is its last layer.");
    out_.output_name = oname;
    out_.output_batch_axis = it->second.batch_axis;
    out_.onnx_output_dims = it->second.onnx;
    out_.output_order = it->second.order;
    return out_;
  }

 private:
  const ::onnx::ModelProto& model_;
  const ImportOptions& opt_;
  ImportedModel out_;
  std::map<std::string, Constant> constants_;
  std::map<std::string, Value> values_;
  std::map<std::string, int> uses_;
  std::map<std::size_t, std::string> produced_by_op_;  // ctnn tensor -> the ONNX output name
  std::int64_t batch_ = 0;  // the input's batch size where the graph fixes it, else 0
  // Integer shape vectors computed in the graph (Shape, Gather, Unsqueeze, Concat), with
  // kBatch for the batch size; and tensors known to be all zeros (ConstantOfShape(..., 0)).
  static constexpr std::int64_t kBatch = std::numeric_limits<std::int64_t>::min();
  std::map<std::string, std::vector<std::int64_t>> shapes_;
  std::set<std::string> zeros_;

  // --- context for errors --------------------------------------------------------------------
  std::string where_;
  template <class... Parts>
  [[noreturn]] void error(const Parts&... parts) const {
    fail("ONNX ", where_, ": ", parts...);
  }

  // Does tensor `name` reach a Conv, pooling or BatchNormalization through elementwise operators
  // (activations, Dropout, Identity, Add) only?
  bool reaches_spatial(const std::string& name) const {
    static const std::set<std::string> spatial = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
                                                  "GlobalMaxPool", "BatchNormalization"};
    static const std::set<std::string> through = {"Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "HardSwish",
                                                  "HardSigmoid", "Clip", "Dropout", "Identity", "Add"};
    std::set<std::string> seen = {name};
    std::vector<std::string> todo = {name};
    while (!todo.empty()) {
      const std::string t = todo.back();
      todo.pop_back();
      for (const auto& n : model_.graph().node()) {
        bool reads = false;
        for (const auto& i : n.input()) reads = reads || i == t;
        if (!reads) continue;
        if (spatial.count(n.op_type())) return true;
        if (through.count(n.op_type()) && n.output_size() > 0 && seen.insert(n.output(0)).second)
          todo.push_back(n.output(0));
      }
    }
    return false;
  }

  void read_input(const ::onnx::ValueInfoProto& in) {
    const std::string& name = in.name();
    if (!in.type().has_tensor_type())
      fail("ONNX: input '", name, "' is not a tensor.");
    const auto& tt = in.type().tensor_type();
    if (tt.elem_type() != ::onnx::TensorProto::FLOAT)
      fail("ONNX: input '", name, "' has element type ", tt.elem_type(), "; ctnn-onnx imports float models.");
    const auto& shape = tt.shape();
    if (shape.dim_size() < 1) fail("ONNX: input '", name, "' is a scalar; ctnn reads the first axis as the batch.");
    // A time-major sequence [T, N, F] when it is a recurrent layer's X with layout 0 (ONNX's own
    // tests feed one so); then the batch is axis 1.
    bool time_major = false;
    for (const auto& n : model_.graph().node())
      if ((n.op_type() == "LSTM" || n.op_type() == "GRU" || n.op_type() == "RNN") && !n.input().empty() &&
          input(n, 0) == name && int_attr(n, "layout", 0) == 0)
        time_major = true;
    if (time_major && shape.dim_size() != 3)
      fail("ONNX: input '", name, "' feeds a recurrent layer but is not [T, N, F].");
    const int b = time_major ? 1 : 0;
    if (shape.dim(b).has_dim_value()) batch_ = shape.dim(b).dim_value();
    std::vector<std::size_t> dims;
    if (shape.dim_size() == 1) dims.push_back(1);  // a vector: a batch of single values
    for (int d = 0; d < shape.dim_size(); ++d) {
      if (d == b) continue;
      if (!shape.dim(d).has_dim_value() || shape.dim(d).dim_value() <= 0)
        fail("ONNX: input '", name, "' axis ", d, " has no fixed size ('", shape.dim(d).dim_param(),
             "'); a ctnn model's shapes are compile-time constants, so every axis but the batch "
             "must be fixed.");
      dims.push_back(std::size_t(shape.dim(d).dim_value()));
    }
    // Channels last when the input reaches a convolution, pooling or BatchNormalization through
    // elementwise operators only (save.hpp writes the same rule).
    const bool spatial = reaches_spatial(name);
    Value v;
    if (time_major) {
      v.onnx = v.dims = dims;
      v.batch_axis = 1;
      out_.input_batch_axis = 1;
    } else if (spatial && (dims.size() == 2 || dims.size() == 3)) {
      v = channels_last_value(dims);
    } else {
      v.onnx = v.dims = dims;
    }
    v.tensor = 0;
    out_.input_name = name;
    out_.input_dims = v.dims;
    out_.onnx_input_dims = dims;
    out_.input_order = v.order;
    values_[name] = v;
  }

  // --- attributes ----------------------------------------------------------------------------
  const ::onnx::AttributeProto* attr(const ::onnx::NodeProto& n, const std::string& a) const {
    for (const auto& x : n.attribute())
      if (x.name() == a) return &x;
    return nullptr;
  }
  std::int64_t int_attr(const ::onnx::NodeProto& n, const std::string& a, std::int64_t def) const {
    const auto* x = attr(n, a);
    return x ? x->i() : def;
  }
  double float_attr(const ::onnx::NodeProto& n, const std::string& a, double def) const {
    const auto* x = attr(n, a);
    return x ? double(x->f()) : def;
  }
  std::string string_attr(const ::onnx::NodeProto& n, const std::string& a, std::string def) const {
    const auto* x = attr(n, a);
    return x ? x->s() : def;
  }
  std::vector<std::int64_t> ints_attr(const ::onnx::NodeProto& n, const std::string& a,
                                      std::vector<std::int64_t> def) const {
    const auto* x = attr(n, a);
    if (!x) return def;
    return {x->ints().begin(), x->ints().end()};
  }
  // Fails on any attribute of the node that is not in `known`.
  void only_attributes(const ::onnx::NodeProto& n, std::initializer_list<const char*> known) const {
    for (const auto& x : n.attribute()) {
      bool ok = false;
      for (const char* k : known) ok = ok || x.name() == k;
      if (!ok) error("attribute '", x.name(), "' is not one ctnn-onnx maps for this operator.");
    }
  }

  // --- tensors -------------------------------------------------------------------------------
  // Input i of a node, or an Error when the node has none there.
  const std::string& input(const ::onnx::NodeProto& n, int i) const {
    if (n.input_size() <= i || n.input(i).empty()) error("has no input ", i, ".");
    return n.input(i);
  }
  // The first value of a constant, or an Error when it is empty.
  double first(const Constant& c, const char* what) const {
    if (c.values.empty()) error(what, " is an empty tensor.");
    return c.values[0];
  }
  const Value& value(const std::string& name) const {
    const Value& v = any_value(name);
    if (v.batch_axis != 0)
      error("input '", name, "' has its batch on axis ", v.batch_axis, " (time major); this operator "
            "takes it on axis 0 (a Transpose back, as PyTorch writes after an LSTM, comes first).");
    return v;
  }
  const Value& any_value(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) {
      if (constants_.count(name))
        error("input '", name, "' is a constant where ctnn needs a computed tensor (a constant "
              "operand of this operator has no ctnn layer).");
      error("input '", name, "' is not computed by any node ctnn maps.");
    }
    return it->second;
  }
  const Constant* constant(const std::string& name) const {
    const auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : &it->second;
  }
  const Constant& need_constant(const ::onnx::NodeProto& n, int i, const char* role) const {
    if (n.input_size() <= i || n.input(i).empty()) error("has no ", role, " input.");
    const Constant* c = constant(n.input(i));
    if (!c) error("its ", role, " ('", n.input(i), "') is computed, not a constant; ctnn keeps ",
                  role, "s as parameters.");
    return *c;
  }

  void alias(const ::onnx::NodeProto& n, const Value& v) { values_[n.output(0)] = v; }

  // Appends a layer reading `inputs`, producing `out` (its tensor id is set here).
  void add_layer(const ::onnx::NodeProto& n, std::string spec, std::vector<std::size_t> inputs,
                 Value out, std::vector<float> params = {}, std::vector<float> state = {}) {
    add_layer_as(n, n.output(0), std::move(spec), std::move(inputs), std::move(out), std::move(params),
                 std::move(state));
  }
  void add_layer_as(const ::onnx::NodeProto& n, const std::string& output, std::string spec,
                    std::vector<std::size_t> inputs, Value out, std::vector<float> params = {},
                    std::vector<float> state = {}) {
    ImportedLayer l;
    l.spec = std::move(spec);
    l.onnx_node = n.name();
    l.onnx_op = n.op_type();
    l.inputs = std::move(inputs);
    l.params = std::move(params);
    l.state = std::move(state);
    l.dims = out.dims;
    out_.layers.push_back(std::move(l));
    out.tensor = out_.layers.size();
    produced_by_op_[out.tensor] = output;
    values_[output] = std::move(out);
  }

  void node(const ::onnx::NodeProto& n, int k) {
    where_ = "node " + std::to_string(k) + (n.name().empty() ? "" : " '" + n.name() + "'") + " (" +
             n.op_type() + ")";
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      error("is in domain '", n.domain(), "'; ctnn-onnx maps the default ONNX domain.");
    const std::string& op = n.op_type();
    const bool recurrent_op = op == "LSTM" || op == "GRU" || op == "RNN";  // Y may be absent, Y_h used
    if (n.output_size() < 1 || (n.output(0).empty() && !recurrent_op)) error("has no output.");
    if (op == "Constant") return constant_node(n);
    if (shape_op(n)) return;
    // The operators with a handler of their own, by ONNX name.
    using Handler = void (Importer::*)(const ::onnx::NodeProto&);
    static const std::map<std::string, Handler> handlers = {
        {"LSTM", &Importer::recurrent}, {"GRU", &Importer::recurrent}, {"RNN", &Importer::recurrent},
        {"Transpose", &Importer::transpose}, {"Squeeze", &Importer::squeeze}, {"Gather", &Importer::gather},
        {"Identity", &Importer::identity}, {"Dropout", &Importer::dropout}, {"Conv", &Importer::conv},
        {"Gemm", &Importer::gemm}, {"MatMul", &Importer::matmul}, {"Add", &Importer::add},
        {"MaxPool", &Importer::max_pool}, {"AveragePool", &Importer::average_pool},
        {"GlobalAveragePool", &Importer::global_average_pool}, {"GlobalMaxPool", &Importer::global_max_pool},
        {"BatchNormalization", &Importer::batch_norm}, {"Flatten", &Importer::flatten},
        {"Reshape", &Importer::reshape}, {"Concat", &Importer::concat}, {"Softmax", &Importer::softmax},
        {"HardSigmoid", &Importer::hard_sigmoid}, {"Clip", &Importer::clip}};
    if (const auto h = handlers.find(op); h != handlers.end()) return (this->*h->second)(n);
    // Activations without settings, and with a slope.
    static const std::map<std::string, std::string> plain = {
        {"Relu", "ctnn::ReLU"}, {"Sigmoid", "ctnn::Sigmoid"}, {"Tanh", "ctnn::Tanh"}, {"HardSwish", "ctnn::HardSwish"}};
    if (const auto a = plain.find(op); a != plain.end()) return activation(n, a->second, {});
    if (op == "LeakyRelu")
      return activation(n, "ctnn::LeakyReLU<" + real(float_attr(n, "alpha", 0.01), "alpha") + ">", {"alpha"});
    if (op == "Elu") return activation(n, "ctnn::ELU<" + real(float_attr(n, "alpha", 1.0), "alpha") + ">", {"alpha"});
    error("operator ", op, " has no ctnn layer (ctnn-onnx maps Conv, Gemm, MatMul, Add, MaxPool, "
          "AveragePool, GlobalAveragePool, GlobalMaxPool, BatchNormalization, Flatten, Reshape, "
          "Concat, Softmax, Relu, LeakyRelu, Elu, Sigmoid, Tanh, HardSwish, HardSigmoid, Clip, "
          "Dropout, LSTM, GRU, RNN, Identity and Constant, and Transpose, Squeeze, Gather, Shape, "
          "Unsqueeze and ConstantOfShape around recurrent layers).");
  }

  // A setting held as ctnn::Real (millionths): it must be one to a relative 1e-6 (0.01f, 0.1f,
  // 1e-5f are; 1/6 is not).
  std::string real(double v, const char* what) const {
    const double r = std::round(v * 1e6) / 1e6;
    if (std::abs(r - v) > 1e-6 * std::abs(v))
      error("attribute ", what, " = ", v, " is not a multiple of 1e-6 (to a relative 1e-6), the "
            "resolution ctnn keeps it at.");
    return std::to_string(r);
  }

  // --- shape arithmetic (PyTorch's zero initial states of a recurrent layer) ----------------
  // An integer vector: a computed shape or an int64 constant.
  const std::vector<std::int64_t>* shape_of(const std::string& name) {
    if (const auto it = shapes_.find(name); it != shapes_.end()) return &it->second;
    if (const Constant* c = constant(name)) {
      std::vector<std::int64_t> v;
      for (double x : c->values) {
        if (x != std::floor(x)) return nullptr;
        v.push_back(std::int64_t(x));
      }
      shapes_[name] = v;
      return &shapes_[name];
    }
    return nullptr;
  }
  // Shape, and Gather / Unsqueeze / Concat over integer vectors, and ConstantOfShape: computed
  // here (nothing for ctnn to hold); false for a node that is not one of them.
  bool shape_op(const ::onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (op == "Shape") {
      only_attributes(n, {});
      const Value& x = any_value(input(n, 0));
      std::vector<std::int64_t> v(x.onnx.begin(), x.onnx.end());
      v.insert(v.begin() + std::ptrdiff_t(x.batch_axis), kBatch);
      shapes_[n.output(0)] = v;
      return true;
    }
    if (op == "ConstantOfShape") {
      only_attributes(n, {"value"});
      if (const auto* a = attr(n, "value")) {
        const Constant c = read_tensor(a->t(), "value");
        for (double x : c.values)
          if (x != 0.0) error("value = ", x, ": ctnn maps ConstantOfShape only as the zeros of an initial state.");
      }
      zeros_.insert(n.output(0));
      return true;
    }
    const bool ints = n.input_size() > 0 && shape_of(input(n, 0)) != nullptr && !values_.count(input(n, 0));
    if (!ints) return false;
    if (op == "Gather") {
      only_attributes(n, {"axis"});
      const auto v = *shape_of(input(n, 0));
      const auto* idx = shape_of(input(n, 1));
      if (!idx || int_attr(n, "axis", 0) != 0) error("a Gather of a shape by a computed index.");
      std::vector<std::int64_t> out;
      for (std::int64_t i : *idx) {
        const std::int64_t k = i < 0 ? i + std::int64_t(v.size()) : i;
        if (k < 0 || k >= std::int64_t(v.size())) error("index ", i, " is outside a shape of ", v.size(), " values.");
        out.push_back(v[std::size_t(k)]);
      }
      shapes_[n.output(0)] = out;
      return true;
    }
    if (op == "Unsqueeze") {  // of a scalar or a vector: the same values
      shapes_[n.output(0)] = *shape_of(input(n, 0));
      return true;
    }
    if (op == "Concat") {
      std::vector<std::int64_t> out;
      for (const auto& i : n.input()) {
        const auto* v = shape_of(i);
        if (!v) error("concatenates a shape with a tensor.");
        out.insert(out.end(), v->begin(), v->end());
      }
      shapes_[n.output(0)] = out;
      return true;
    }
    return false;
  }
  bool is_zeros(const std::string& name) const {
    if (name.empty() || zeros_.count(name)) return true;
    const Constant* c = constant(name);
    if (!c) return false;
    for (double x : c->values)
      if (x != 0.0) return false;
    return true;
  }

  // --- recurrent layers ---------------------------------------------------------------------
  // LSTM, GRU (linear_before_reset = 1: Keras's reset_after) and RNN (tanh), forward, one layer,
  // zero initial states, no sequence lengths or peepholes: ctnn's LSTM, GRU and SimpleRNN. The
  // output used decides return_sequences: Y (every step) or Y_h (the last one).
  void recurrent(const ::onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    only_attributes(n, {"hidden_size", "direction", "layout", "activations", "clip", "input_forget",
                        "linear_before_reset", "activation_alpha", "activation_beta"});
    if (string_attr(n, "direction", "forward") != "forward")
      error("direction = '", string_attr(n, "direction", "forward"), "': ctnn imports forward recurrent "
            "layers (Bidirectional is not mapped yet).");
    if (attr(n, "clip")) error("clip is set; ctnn's recurrent layers do not clip.");
    if (int_attr(n, "input_forget", 0)) error("input_forget = 1 is not mapped.");
    if (attr(n, "activation_alpha") || attr(n, "activation_beta")) error("activation_alpha/beta are not mapped.");
    const std::vector<std::string> defaults = op == "LSTM" ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                              : op == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                            : std::vector<std::string>{"Tanh"};
    if (const auto* a = attr(n, "activations")) {
      std::vector<std::string> acts(a->strings().begin(), a->strings().end());
      if (acts != defaults) error("activations other than the defaults are not mapped.");
    }
    if (op == "GRU" && int_attr(n, "linear_before_reset", 0) != 1)
      error("linear_before_reset = 0: ctnn's GRU is Keras's reset_after = True (PyTorch's GRU), "
            "linear_before_reset = 1.");
    const std::int64_t layout = int_attr(n, "layout", 0);
    const Value& x = any_value(input(n, 0));
    if (x.onnx.size() != 2 || x.batch_axis != (layout == 0 ? 1u : 0u) || !x.order.empty() || x.channels_last ||
        x.dims != x.onnx)
      error("input '", input(n, 0), "' is not a ", layout == 0 ? "[T, N, F] (time-major)" : "[N, T, F]",
            " sequence.");
    const std::size_t T = x.onnx[0], F = x.onnx[1];
    const std::size_t H = std::size_t(int_attr(n, "hidden_size", 0));
    const std::size_t G = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1;
    const Constant& W = need_constant(n, 1, "W");
    const Constant& R = need_constant(n, 2, "R");
    if (W.size() != G * H * F || R.size() != G * H * H)
      error("W [", join(W.dims), "] and R [", join(R.dims), "] are not [1, ", G * H, ", ", F, "] and [1, ",
            G * H, ", ", H, "].");
    std::vector<double> Wb(G * H, 0.0), Rb(G * H, 0.0);
    if (n.input_size() > 3 && !n.input(3).empty()) {
      const Constant& B = need_constant(n, 3, "B");
      if (B.size() != 2 * G * H) error("B has ", B.size(), " values for ", 2 * G * H, ".");
      std::copy(B.values.begin(), B.values.begin() + std::ptrdiff_t(G * H), Wb.begin());
      std::copy(B.values.begin() + std::ptrdiff_t(G * H), B.values.end(), Rb.begin());
    }
    if (n.input_size() > 4 && !n.input(4).empty()) error("sequence_lens is given; ctnn's sequences have one length.");
    for (int i : {5, 6})
      if (n.input_size() > i && !is_zeros(n.input(i)))
        error(i == 5 ? "initial_h" : "initial_c", " is not zero; ctnn's recurrent layers start from zero.");
    if (n.input_size() > 7 && !n.input(7).empty()) error("peepholes (P) are not mapped.");
    // ctnn (Keras) gate blocks in ONNX's: LSTM i, f, c, o <- ONNX i, o, f, c; GRU z, r, h <- z, r, h.
    const std::size_t lstm_gate[4] = {0, 2, 3, 1};
    const auto og = [&](std::size_t g) { return op == "LSTM" ? lstm_gate[g] : g; };
    const std::size_t GH = G * H;
    std::vector<float> p;
    p.resize(F * GH + H * GH + (op == "GRU" ? 2 : 1) * GH);
    for (std::size_t g = 0; g < G; ++g)
      for (std::size_t u = 0; u < H; ++u) {
        const std::size_t row = og(g) * H + u, col = g * H + u;
        for (std::size_t k = 0; k < F; ++k) p[k * GH + col] = float(W.values[row * F + k]);
        for (std::size_t k = 0; k < H; ++k) p[F * GH + k * GH + col] = float(R.values[row * H + k]);
        float* b = p.data() + F * GH + H * GH;
        if (op == "GRU") {
          b[col] = float(Wb[row]), b[GH + col] = float(Rb[row]);
        } else {
          // One bias: ONNX's two added (exactly the input one when the recurrent one is zero).
          b[col] = Rb[row] == 0.0 ? float(Wb[row]) : float(Wb[row]) + float(Rb[row]);
        }
      }
    const auto used = [&](int o) { return n.output_size() > o && !n.output(o).empty() && uses_[n.output(o)] > 0; };
    if (used(2)) error("its cell state output Y_c is used; ctnn's LSTM gives its hidden states.");
    if (used(0) && used(1)) error("both Y and Y_h are used; ctnn's layer gives one of them.");
    const bool sequences = used(0);
    const std::string name = op == "LSTM" ? "LSTM" : op == "GRU" ? "GRU" : "SimpleRNN";
    Value y;
    if (sequences) {  // Y: [T, 1, N, H] (layout 0) or [N, T, 1, H]
      y.onnx = {T, 1, H};
      y.dims = {T, H};
      y.batch_axis = layout == 0 ? 2 : 0;
    } else {  // Y_h: [1, N, H] or [N, 1, H]
      y.onnx = {1, H};
      y.dims = {H};
      y.batch_axis = layout == 0 ? 1 : 0;
    }
    if (!sequences && !used(1)) error("neither Y nor Y_h is used.");
    const std::string out = n.output(sequences ? 0 : 1);
    y.single_use = uses_[out] == 1;
    add_layer_as(n, out, "ctnn::" + name + "<" + std::to_string(H) + ", " + (sequences ? "true" : "false") + ">",
                 {x.tensor}, y, std::move(p));
  }

  // A Transpose that only moves the batch axis (PyTorch's [N, T, F] <-> [T, N, F] around an
  // LSTM): the same values per sample.
  void transpose(const ::onnx::NodeProto& n) {
    only_attributes(n, {"perm"});
    const Value& x = any_value(input(n, 0));
    const std::size_t rank = x.onnx.size() + 1;
    std::vector<std::int64_t> perm = ints_attr(n, "perm", {});
    if (perm.size() != rank) error("perm = [", join(perm), "] for a rank-", rank, " tensor.");
    {
      std::vector<std::int64_t> sorted = perm;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t a = 0; a < rank; ++a)
        if (sorted[a] != std::int64_t(a)) error("perm = [", join(perm), "] is not a permutation.");
    }
    Value y = x;
    std::vector<std::size_t> rest;
    for (std::size_t a = 0; a < rank; ++a) {
      const std::size_t from = std::size_t(perm[a]);
      if (from == x.batch_axis) y.batch_axis = a;
      else rest.push_back(from < x.batch_axis ? from : from - 1);
    }
    for (std::size_t i = 0; i < rest.size(); ++i)
      if (rest[i] != i)
        error("perm = [", join(perm), "] reorders a sample's axes; ctnn maps a Transpose that moves "
              "only the batch axis.");
    y.single_use = x.single_use && uses_[input(n, 0)] == 1;
    values_[n.output(0)] = y;
  }

  // Squeeze of unit axes other than the batch: the same values per sample.
  void squeeze(const ::onnx::NodeProto& n) {
    only_attributes(n, {"axes"});
    const Value& x = any_value(input(n, 0));
    std::vector<std::int64_t> axes = ints_attr(n, "axes", {});
    if (n.input_size() > 1 && !n.input(1).empty()) {
      const auto* v = shape_of(input(n, 1));
      if (!v) error("its axes are computed.");
      axes = *v;
    }
    const std::int64_t rank = std::int64_t(x.onnx.size()) + 1;
    std::vector<bool> drop(std::size_t(rank), false);
    if (axes.empty()) {
      error("squeezes every unit axis (no axes given); ctnn maps a Squeeze with its axes.");
    }
    for (std::int64_t a : axes) {
      if (a < -rank || a >= rank) error("axes = [", join(axes), "] for a rank-", rank, " tensor.");
      drop[std::size_t(a < 0 ? a + rank : a)] = true;
    }
    Value y = x;
    y.onnx.clear();
    std::size_t b = 0;
    for (std::size_t a = 0, k = 0; a < std::size_t(rank); ++a) {
      if (a == x.batch_axis) {
        if (drop[a]) error("squeezes the batch axis.");
        b = a - (std::size_t(std::count(drop.begin(), drop.begin() + std::ptrdiff_t(a), true)));
        continue;
      }
      if (drop[a] && x.onnx[k] != 1) error("squeezes axis ", a, " of size ", x.onnx[k], ".");
      if (!drop[a]) y.onnx.push_back(x.onnx[k]);
      ++k;
    }
    y.batch_axis = b;
    // Only the unit axis ONNX's recurrent output has and ctnn's does not: the same values in
    // the same shape (squeezing a tensor's own axes would need a ctnn Reshape).
    if (y.onnx != x.dims || !x.order.empty())
      error("squeezes a tensor's own axes ([", join({x.onnx.begin(), x.onnx.end()}), "] per sample); ctnn maps the "
            "Squeeze of a recurrent layer's direction axis.");
    y.single_use = x.single_use && uses_[input(n, 0)] == 1;
    values_[n.output(0)] = y;
  }

  // Gather of the last step of a recurrent layer's sequence (PyTorch's out[:, -1]): that layer
  // returns its last step instead.
  void gather(const ::onnx::NodeProto& n) {
    only_attributes(n, {"axis"});
    const Value& x = value(input(n, 0));
    const auto* idx = shape_of(input(n, 1));
    std::int64_t axis = int_attr(n, "axis", 0);
    if (axis < 0) axis += std::int64_t(x.onnx.size()) + 1;
    const bool last_layer = x.tensor == out_.layers.size() && x.tensor > 0;
    ImportedLayer* l = last_layer ? &out_.layers.back() : nullptr;
    const bool sequence = l && x.dims.size() == 2 && (l->onnx_op == "LSTM" || l->onnx_op == "GRU" || l->onnx_op == "RNN") &&
                          l->spec.find(", true>") != std::string::npos;
    if (!idx || idx->size() != 1 || axis != 1 || !sequence)
      error("ctnn maps Gather only as the last step of a recurrent layer's output sequence.");
    const std::int64_t T = std::int64_t(x.dims[0]), i = (*idx)[0];
    if (i != -1 && i != T - 1) error("gathers step ", i, " of ", T, "; ctnn's recurrent layers give every step or the last.");
    if (!x.single_use || uses_[input(n, 0)] != 1)
      error("the sequence is also read elsewhere; ctnn's layer gives every step or the last, not both.");
    l->spec.replace(l->spec.find(", true>"), 7, ", false>");
    l->dims = {x.dims[1]};
    Value y;
    y.onnx = y.dims = {x.dims[1]};
    y.tensor = x.tensor;
    values_[n.output(0)] = y;
  }

  void identity(const ::onnx::NodeProto& n) { alias(n, value(input(n, 0))); }
  void max_pool(const ::onnx::NodeProto& n) { pool(n, true); }
  void average_pool(const ::onnx::NodeProto& n) { pool(n, false); }
  void global_average_pool(const ::onnx::NodeProto& n) { global_pool(n, false); }
  void global_max_pool(const ::onnx::NodeProto& n) { global_pool(n, true); }

  // Dropout(ratio): ctnn's Dropout, the identity in inference and dropout when training goes on.
  void dropout(const ::onnx::NodeProto& n) {
    only_attributes(n, {"ratio", "seed", "is_test", "consumed_inputs"});
    if (n.output_size() > 1 && !n.output(1).empty() && uses_[n.output(1)] > 0)
      error("its mask output is used; ctnn's Dropout has no mask output.");
    double ratio = float_attr(n, "ratio", 0.5);
    if (n.input_size() > 1 && !n.input(1).empty()) ratio = first(need_constant(n, 1, "ratio"), "ratio");
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Constant& t = need_constant(n, 2, "training_mode");
      if (first(t, "training_mode") != 0.0) error("training_mode = true: ctnn imports the inference form.");
    }
    if (!(ratio >= 0.0 && ratio < 1.0)) error("ratio = ", ratio, " is outside [0, 1).");
    const Value& x = value(input(n, 0));
    add_layer(n, "ctnn::Dropout<" + real(ratio, "ratio") + ">", {x.tensor}, x);
  }

  void constant_node(const ::onnx::NodeProto& n) {
    const auto* v = attr(n, "value");
    if (!v || !v->has_t()) error("only Constant's 'value' tensor form is mapped.");
    constants_[n.output(0)] = read_tensor(v->t(), "'" + n.output(0) + "'");
  }

  void activation(const ::onnx::NodeProto& n, const std::string& spec,
                  std::initializer_list<const char*> known) {
    only_attributes(n, known);
    const Value& x = value(input(n, 0));
    add_layer(n, spec, {x.tensor}, x);
  }

  void hard_sigmoid(const ::onnx::NodeProto& n) {
    only_attributes(n, {"alpha", "beta"});
    const double a = float_attr(n, "alpha", 0.2), b = float_attr(n, "beta", 0.5);
    if (std::abs(a - 1.0 / 6.0) > 1e-7 || std::abs(b - 0.5) > 1e-7)
      error("alpha = ", a, ", beta = ", b, ": ctnn's HardSigmoid is PyTorch's and Keras 3's, "
            "alpha 1/6 and beta 1/2.");
    activation(n, "ctnn::HardSigmoid", {"alpha", "beta"});
  }

  void clip(const ::onnx::NodeProto& n) {
    only_attributes(n, {"min", "max"});
    double lo = float_attr(n, "min", -INFINITY), hi = float_attr(n, "max", INFINITY);
    if (n.input_size() > 1 && !n.input(1).empty()) {
      const Constant& c = need_constant(n, 1, "min");
      lo = first(c, "min");
    }
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Constant& c = need_constant(n, 2, "max");
      hi = first(c, "max");
    }
    if (lo != 0.0)
      error("min = ", lo, ": ctnn maps Clip only as a ReLU with a maximum (min 0).");
    const Value& x = value(input(n, 0));
    if (std::isinf(hi)) return add_layer(n, "ctnn::ReLU", {x.tensor}, x);
    if (hi == 6.0) return add_layer(n, "ctnn::ReLU6", {x.tensor}, x);
    if (hi <= 0.0) error("max = ", hi, ": a ReLU's maximum must be positive.");
    add_layer(n, "ctnn::BoundedReLU<" + real(hi, "max") + ", 0.000000, 0.000000>", {x.tensor}, x);
  }

  void softmax(const ::onnx::NodeProto& n) {
    only_attributes(n, {"axis"});
    const Value& x = value(input(n, 0));
    const std::int64_t rank = std::int64_t(x.onnx.size()) + 1;
    std::int64_t axis = int_attr(n, "axis", out_.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    // Before opset 13 Softmax runs over the axes from `axis` on, flattened; from 13, over `axis`.
    const bool whole_sample = axis == 1 && (out_.opset < 13 || rank == 2);
    if (!whole_sample || x.dims.size() != 1)
      error("axis ", int_attr(n, "axis", out_.opset >= 13 ? -1 : 1), " of a rank-", rank,
            " tensor: ctnn's Softmax runs over a flat sample (an [N, K] tensor, axis 1 or -1).");
    add_layer(n, "ctnn::Softmax", {x.tensor}, x);
  }

  // --- windows (Conv and pooling) ------------------------------------------------------------
  // The per-axis settings, checked to be one stride and one dilation for all spatial axes, and
  // the padding as a ctnn::Padding.
  struct Geometry {
    std::vector<std::size_t> kernel;
    std::size_t stride = 1, dilation = 1;
    Padding pad = Padding::valid;
    std::vector<std::size_t> pad_begin, pad_end;
  };
  Geometry geometry(const ::onnx::NodeProto& n, const std::vector<std::size_t>& kernel,
                    const std::vector<std::size_t>& in) const {
    const std::size_t r = kernel.size();
    Geometry g;
    g.kernel = kernel;
    const auto ks = ints_attr(n, "kernel_shape", {});
    if (!ks.empty()) {
      if (ks.size() != r) error("kernel_shape = [", join(ks), "] has ", ks.size(), " axes for ", r, ".");
      for (std::size_t a = 0; a < r; ++a)
        if (std::size_t(ks[a]) != kernel[a])
          error("kernel_shape = [", join(ks), "] differs from its weights' kernel.");
    }
    const auto same = [&](const std::vector<std::int64_t>& v, const char* what) -> std::size_t {
      if (v.empty()) return 1;
      if (v.size() != r) error(what, " = [", join(v), "] has ", v.size(), " values for ", r, " axes.");
      for (std::int64_t x : v)
        if (x != v[0] || x < 1)
          error(what, " = [", join(v), "]: ctnn's layers take one ", what,
                " (at least 1) for every spatial axis.");
      return std::size_t(v[0]);
    };
    g.stride = same(ints_attr(n, "strides", {}), "strides");
    g.dilation = same(ints_attr(n, "dilations", {}), "dilations");
    const std::string ap = string_attr(n, "auto_pad", "NOTSET");
    const auto pads = ints_attr(n, "pads", {});
    g.pad_begin.assign(r, 0);
    g.pad_end.assign(r, 0);
    if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      g.pad = ap == "SAME_UPPER" ? Padding::same : Padding::same_lower;
      for (std::size_t a = 0; a < r; ++a) {
        const std::size_t out = (in[a] + g.stride - 1) / g.stride;
        const std::size_t eff = g.dilation * (kernel[a] - 1) + 1;
        const std::size_t need = (out - 1) * g.stride + eff;
        const std::size_t total = need > in[a] ? need - in[a] : 0;
        g.pad_begin[a] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
        g.pad_end[a] = total - g.pad_begin[a];
      }
    } else if (ap == "VALID" || ap == "NOTSET") {
      if (ap == "NOTSET" && !pads.empty()) {
        if (pads.size() != 2 * r) error("pads = [", join(pads), "] has ", pads.size(), " values for ", r, " axes.");
        bool any = false;
        for (std::size_t a = 0; a < r; ++a) {
          if (pads[a] < 0 || pads[a + r] < 0) error("pads = [", join(pads), "] has a negative pad.");
          g.pad_begin[a] = std::size_t(pads[a]);
          g.pad_end[a] = std::size_t(pads[a + r]);
          any = any || pads[a] || pads[a + r];
        }
        if (any)
          g.pad = r == 2 ? Padding::pads(g.pad_begin[0], g.pad_end[0], g.pad_begin[1], g.pad_end[1])
                         : Padding::pads(0, 0, g.pad_begin[0], g.pad_end[0]);
      }
    } else {
      error("auto_pad = '", ap, "' is not an ONNX padding mode.");
    }
    return g;
  }
  static std::size_t out_len(std::size_t in, std::size_t k, std::size_t s, std::size_t d,
                             std::size_t pb, std::size_t pe) {
    const std::size_t eff = d * (k - 1) + 1;
    if (in + pb + pe < eff) return 0;
    return (in + pb + pe - eff) / s + 1;
  }
  std::vector<std::size_t> output_spatial(const Geometry& g, const std::vector<std::size_t>& in) const {
    std::vector<std::size_t> out;
    for (std::size_t a = 0; a < in.size(); ++a) {
      const std::size_t o = g.pad.mode == Padding::Mode::same || g.pad.mode == Padding::Mode::same_lower
                                ? (in[a] + g.stride - 1) / g.stride
                                : out_len(in[a], g.kernel[a], g.stride, g.dilation, g.pad_begin[a], g.pad_end[a]);
      if (o == 0)
        error("its (dilated) kernel ", g.dilation * (g.kernel[a] - 1) + 1, " is larger than the padded input (",
              in[a], " + ", g.pad_begin[a], " + ", g.pad_end[a], ") on spatial axis ", a, ".");
      out.push_back(o);
    }
    return out;
  }
  // A channels-last image or sequence: [C, spatial...] in ONNX.
  const Value& spatial_input(const ::onnx::NodeProto& n, std::size_t rank) const {
    const Value& x = value(input(n, 0));
    if (x.onnx.size() != rank + 1 || !x.channels_last)
      error("input '", input(n, 0), "' is not a channels-first ", rank == 2 ? "image [N, C, H, W]" : "sequence [N, C, L]",
            " ctnn holds channels last (its ONNX shape per sample is [", join({x.onnx.begin(), x.onnx.end()}), "]).");
    return x;
  }

  void conv(const ::onnx::NodeProto& n) {
    only_attributes(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    const Constant& w = need_constant(n, 1, "weight");
    if (w.dims.size() != 3 && w.dims.size() != 4)
      error("weights of rank ", w.dims.size(), ": ctnn has 1-D and 2-D convolutions (Conv1D, Conv2D).");
    const std::size_t r = w.dims.size() - 2;
    const Value& x = spatial_input(n, r);
    const std::size_t C = x.onnx[0], F = std::size_t(w.dims[0]), Cg = std::size_t(w.dims[1]);
    const std::size_t G = std::size_t(int_attr(n, "group", 1));
    if (G < 1 || C % G || F % G || Cg * G != C)
      error("group = ", G, " with ", C, " input channels and weights [", join(w.dims),
            "]: the weights must be [F, C/group, ...].");
    std::vector<std::size_t> kernel(w.dims.begin() + 2, w.dims.end());
    std::vector<std::size_t> in(x.onnx.begin() + 1, x.onnx.end());
    Geometry g = geometry(n, kernel, in);
    const std::vector<std::size_t> osp = output_spatial(g, in);
    // A 1-D convolution padded (K-1)*D before and nothing after is Keras's causal one.
    if (r == 1 && kernel[0] > 1 && g.pad.mode == Padding::Mode::explicit_pads &&
        g.pad_begin[0] == g.dilation * (kernel[0] - 1) && g.pad_end[0] == 0)
      g.pad = Padding::causal;
    std::vector<float> bias(F, 0.0f);
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Constant& b = need_constant(n, 2, "bias");
      if (b.size() != F) error("bias has ", b.size(), " values for ", F, " filters.");
      for (std::size_t f = 0; f < F; ++f) bias[f] = float(b.values[f]);
    }
    std::size_t taps = 1;
    for (std::size_t k : kernel) taps *= k;
    std::vector<std::size_t> onnx_out{F};
    onnx_out.insert(onnx_out.end(), osp.begin(), osp.end());
    Value y = channels_last_value(onnx_out);
    std::vector<float> p;
    const std::string pad = ctnn::detail::padding_spec(g.pad);
    std::string spec;
    const bool depthwise = r == 2 && G == C && C > 1 && G > 1;
    if (depthwise) {
      // W[ky][kx][c][m] = onnx W[c*M + m][0][ky][kx]
      const std::size_t M = F / C;
      p.resize(taps * F + F);
      for (std::size_t t = 0; t < taps; ++t)
        for (std::size_t f = 0; f < F; ++f) p[t * F + f] = float(w.values[f * taps + t]);
      spec = "ctnn::DepthwiseConv2D<" + std::to_string(kernel[0]) + ", " + std::to_string(kernel[1]) +
             ", " + std::to_string(g.stride) + ", " + pad + ", " + std::to_string(M) + ", " +
             std::to_string(g.dilation) + ">";
    } else {
      // W[taps][c][f] = onnx W[f][c][taps]
      p.resize(taps * Cg * F + F);
      for (std::size_t t = 0; t < taps; ++t)
        for (std::size_t c = 0; c < Cg; ++c)
          for (std::size_t f = 0; f < F; ++f)
            p[(t * Cg + c) * F + f] = float(w.values[(f * Cg + c) * taps + t]);
      const std::string inits = ", ctnn::init::GlorotUniform, ctnn::init::Zeros, ";
      if (r == 2) {
        spec = "ctnn::Conv2D<" + std::to_string(F) + ", " + std::to_string(kernel[0]) + ", " +
               std::to_string(kernel[1]) + ", " + std::to_string(g.stride) + ", " + pad +
               (g.dilation == 1 && G == 1 ? std::string()
                                          : inits + std::to_string(g.dilation) + ", " + std::to_string(G)) +
               ">";
      } else {
        spec = "ctnn::Conv1D<" + std::to_string(F) + ", " + std::to_string(kernel[0]) + ", " +
               std::to_string(g.stride) + ", " + pad + ", " + std::to_string(g.dilation) +
               (G == 1 ? std::string() : inits + std::to_string(G)) + ">";
      }
    }
    std::copy(bias.begin(), bias.end(), p.end() - std::ptrdiff_t(F));
    add_layer(n, spec, {x.tensor}, y, std::move(p));
  }

  // A Dense layer from weights W[j][k] = at(k, j) over a flat input x (its columns permuted when
  // x's order is not ONNX's), bias b[j].
  template <class At>
  void dense(const ::onnx::NodeProto& n, const Value& x, std::size_t K, std::size_t N, At at,
             const std::vector<float>& bias) {
    if (x.dims.size() != 1)
      error("input '", input(n, 0), "' has ", x.onnx.size(), " axes per sample; ctnn's Dense takes a "
            "flat [N, K] tensor (Flatten first).");
    if (x.dims[0] != K) error("input has ", x.dims[0], " features for weights of ", K, ".");
    std::vector<float> p(N * K + N);
    for (std::size_t j = 0; j < N; ++j)
      for (std::size_t i = 0; i < K; ++i)
        p[j * K + i] = float(at(x.order.empty() ? i : x.order[i], j));
    std::copy(bias.begin(), bias.end(), p.begin() + std::ptrdiff_t(N * K));
    Value y;
    y.onnx = y.dims = {N};
    add_layer(n, "ctnn::Dense<" + std::to_string(N) + ">", {x.tensor}, y, std::move(p));
  }

  void gemm(const ::onnx::NodeProto& n) {
    only_attributes(n, {"alpha", "beta", "transA", "transB", "broadcast"});
    if (int_attr(n, "transA", 0)) error("transA = 1: ctnn's Dense reads its input as [N, K].");
    const Value& x = value(input(n, 0));
    const Constant& b = need_constant(n, 1, "B (weight)");
    if (b.dims.size() != 2) error("B has rank ", b.dims.size(), "; Gemm's B is a matrix.");
    const bool tb = int_attr(n, "transB", 0) != 0;
    const std::size_t K = std::size_t(tb ? b.dims[1] : b.dims[0]), N = std::size_t(tb ? b.dims[0] : b.dims[1]);
    const double alpha = float_attr(n, "alpha", 1.0), beta = float_attr(n, "beta", 1.0);
    std::vector<float> bias(N, 0.0f);
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Constant& c = need_constant(n, 2, "C (bias)");
      const bool per_unit = c.size() == N && (c.dims.size() == 1 || (c.dims.size() == 2 && c.dims[0] == 1));
      const bool scalar = c.size() == 1;
      if (!per_unit && !scalar)
        error("C has shape [", join(c.dims), "]: ctnn's Dense adds one bias per output unit ([", N,
              "] or [1, ", N, "]), not one per row of the batch.");
      for (std::size_t j = 0; j < N; ++j) bias[j] = float(beta * c.values[scalar ? 0 : j]);
    }
    dense(n, x, K, N,
          [&](std::size_t k, std::size_t j) { return alpha * b.values[tb ? j * K + k : k * N + j]; }, bias);
  }

  void matmul(const ::onnx::NodeProto& n) {
    only_attributes(n, {});
    const Value& x = value(input(n, 0));
    const Constant& b = need_constant(n, 1, "B (weight)");
    if (b.dims.size() != 2) error("B has rank ", b.dims.size(), "; ctnn maps MatMul by a constant matrix.");
    const std::size_t K = std::size_t(b.dims[0]), N = std::size_t(b.dims[1]);
    dense(n, x, K, N, [&](std::size_t k, std::size_t j) { return b.values[k * N + j]; },
          std::vector<float>(N, 0.0f));
  }

  void add(const ::onnx::NodeProto& n) {
    only_attributes(n, {});
    if (n.input_size() != 2) error("has ", n.input_size(), " inputs.");
    const Constant* c0 = constant(input(n, 0));
    const Constant* c1 = constant(input(n, 1));
    if (c0 && c1) error("adds two constants.");
    if (c0 || c1) return add_bias(n, c0 ? input(n, 1) : input(n, 0), c0 ? *c0 : *c1);
    const Value& a = value(input(n, 0));
    const Value& b = value(input(n, 1));
    if (a.onnx != b.onnx || a.order != b.order)
      error("its inputs have shapes [", join({a.onnx.begin(), a.onnx.end()}), "] and [",
            join({b.onnx.begin(), b.onnx.end()}), "] per sample", a.onnx == b.onnx ? " in different layouts" : "",
            "; ctnn's Add takes tensors of one shape (no broadcasting).");
    Value y = a;
    add_layer(n, "ctnn::Add<>", {a.tensor, b.tensor}, y);
  }

  // x + c where x comes from Conv, Gemm or MatMul that nothing else reads: c joins its bias.
  void add_bias(const ::onnx::NodeProto& n, const std::string& xname, const Constant& c) {
    const Value& x = value(xname);
    const bool last = x.tensor == out_.layers.size() && x.tensor > 0;
    ImportedLayer* l = last ? &out_.layers.back() : nullptr;
    const bool biased = l && (l->onnx_op == "Conv" || l->onnx_op == "Gemm" || l->onnx_op == "MatMul") &&
                        produced_by_op_[x.tensor] == xname && uses_[xname] == 1;
    if (!biased)
      error("adds the constant '", (constant(input(n, 0)) ? input(n, 0) : input(n, 1)),
            "' to a tensor that is not the only use of a Conv, Gemm or MatMul output; ctnn can "
            "hold a constant addend only as that layer's bias.");
    const std::size_t F = l->onnx_op == "Conv" ? x.onnx[0] : x.dims.back();
    // Per output channel: [F], [1, F] for Dense; [F, 1, 1], [1, F, 1, 1] (or [F, 1]) for Conv;
    // or one value.
    std::size_t nonunit = 0, at = 0, rank = c.dims.size();
    for (std::size_t a = 0; a < rank; ++a)
      if (c.dims[a] != 1) ++nonunit, at = a;
    // Broadcasting aligns the last axes: the channel axis of [F, H, W] is axis rank - 3 of c.
    const std::size_t behind = l->onnx_op == "Conv" ? x.onnx.size() : 1;
    const bool per_channel = c.size() == F && rank >= behind && rank <= x.onnx.size() + 1 &&
                             (F == 1 || at == rank - behind);
    (void)nonunit;
    if (c.size() != 1 && !per_channel)
      error("the constant addend has shape [", join(c.dims), "]; it can join the bias only as one "
            "value per output channel (", F, ").");
    float* bias = l->params.data() + (l->params.size() - F);
    for (std::size_t f = 0; f < F; ++f) bias[f] = float(double(bias[f]) + c.values[c.size() == 1 ? 0 : f]);
    l->onnx_op += "+Add";
    values_[n.output(0)] = x;
    produced_by_op_[x.tensor] = n.output(0);
  }

  void pool(const ::onnx::NodeProto& n, bool max) {
    if (max)
      only_attributes(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    else
      only_attributes(n, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides", "dilations"});
    if (int_attr(n, "ceil_mode", 0)) error("ceil_mode = 1: ctnn's pools round the output size down.");
    if (int_attr(n, "storage_order", 0)) error("storage_order = 1 (column-major indices) is not mapped.");
    if (n.output_size() > 1 && !n.output(1).empty()) error("its Indices output is not mapped.");
    const auto ks = ints_attr(n, "kernel_shape", {});
    if (ks.size() != 1 && ks.size() != 2)
      error("kernel_shape = [", join(ks), "]: ctnn has 1-D and 2-D pooling.");
    const std::size_t r = ks.size();
    const Value& x = spatial_input(n, r);
    std::vector<std::size_t> kernel(ks.begin(), ks.end());
    std::vector<std::size_t> in(x.onnx.begin() + 1, x.onnx.end());
    const Geometry g = geometry(n, kernel, in);
    const bool cip = !max && int_attr(n, "count_include_pad", 0);
    const std::vector<std::size_t> osp = output_spatial(g, in);
    // ctnn refuses a window that lies entirely in the padding (ONNX's pads < kernel allows none
    // with dilation 1; a dilated one can).
    for (std::size_t a = 0; a < r; ++a)
      for (std::size_t o = 0; o < osp[a]; ++o) {
        bool hits = false;
        for (std::size_t j = 0; j < kernel[a]; ++j) {
          const std::ptrdiff_t pos = std::ptrdiff_t(o * g.stride + j * g.dilation) - std::ptrdiff_t(g.pad_begin[a]);
          hits = hits || (pos >= 0 && pos < std::ptrdiff_t(in[a]));
        }
        if (!hits) error("window ", o, " on spatial axis ", a, " lies entirely in the padding.");
      }
    const std::string pad = ctnn::detail::padding_spec(g.pad);
    std::string spec;
    if (r == 2) {
      spec = std::string(max ? "ctnn::MaxPool2D<" : "ctnn::AvgPool2D<") + std::to_string(kernel[0]) + ", " +
             std::to_string(kernel[1]) + ", " + std::to_string(g.stride) + ", " + pad;
      if (g.dilation != 1 || cip) spec += ", " + std::to_string(g.dilation);
      if (cip) spec += ", true";
      spec += ">";
    } else {
      if (g.dilation != 1) error("dilations = ", g.dilation, ": ctnn's 1-D pools have no dilation.");
      spec = std::string(max ? "ctnn::MaxPool1D<" : "ctnn::AveragePooling1D<") + std::to_string(kernel[0]) +
             ", " + std::to_string(g.stride) + ", " + pad + (cip ? ", true" : "") + ">";
    }
    std::vector<std::size_t> onnx_out{x.onnx[0]};
    onnx_out.insert(onnx_out.end(), osp.begin(), osp.end());
    add_layer(n, spec, {x.tensor}, channels_last_value(onnx_out));
  }

  void global_pool(const ::onnx::NodeProto& n, bool max) {
    only_attributes(n, {});
    const Value& x0 = value(input(n, 0));
    const std::size_t r = x0.onnx.size() - 1;
    if (r != 1 && r != 2) error("input of rank ", r + 2, ": ctnn has 1-D and 2-D global pooling.");
    const Value& x = spatial_input(n, r);
    Value y;
    y.onnx.assign(r + 1, 1);
    y.onnx[0] = x.onnx[0];
    y.dims = {x.onnx[0]};  // [C] and ONNX's [C, 1, 1] hold the same values in the same order
    const std::string spec = std::string("ctnn::Global") + (max ? "Max" : "Average") + "Pooling" +
                             (r == 2 ? "2D" : "1D");
    add_layer(n, spec, {x.tensor}, y);
  }

  void batch_norm(const ::onnx::NodeProto& n) {
    only_attributes(n, {"epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"});
    if (int_attr(n, "training_mode", 0)) error("training_mode = 1: ctnn imports the inference form.");
    if (int_attr(n, "is_test", 1) == 0) error("is_test = 0: ctnn imports the inference form.");
    if (int_attr(n, "spatial", 1) != 1) error("spatial = 0 is not mapped.");
    for (int o = 1; o < n.output_size(); ++o)
      if (!n.output(o).empty() && uses_[n.output(o)] > 0) error("its running-statistics outputs are used.");
    const Value& x = value(input(n, 0));
    if (!(x.channels_last || x.onnx.size() == 1))
      error("input '", input(n, 0), "' is neither a flat [N, C] tensor nor a channels-first image or sequence.");
    const std::size_t C = x.onnx[0];
    const Constant& scale = need_constant(n, 1, "scale");
    const Constant& bias = need_constant(n, 2, "B");
    const Constant& mean = need_constant(n, 3, "mean");
    const Constant& var = need_constant(n, 4, "var");
    for (const Constant* c : {&scale, &bias, &mean, &var})
      if (c->size() != C) error("a per-channel input has ", c->size(), " values for ", C, " channels.");
    std::vector<float> p(2 * C), s(2 * C);
    // ctnn's feature c of a flat tensor whose order is not ONNX's is ONNX's feature order[c].
    const bool permuted = x.onnx.size() == 1 && !x.order.empty();
    for (std::size_t c = 0; c < C; ++c) {
      const std::size_t o = permuted ? x.order[c] : c;
      p[c] = float(scale.values[o]), p[C + c] = float(bias.values[o]);
      s[c] = float(mean.values[o]), s[C + c] = float(var.values[o]);
    }
    const std::string spec = "ctnn::BatchNormalization<" + real(float_attr(n, "momentum", 0.9), "momentum") +
                             ", " + real(float_attr(n, "epsilon", 1e-5), "epsilon") + ">";
    add_layer(n, spec, {x.tensor}, x, std::move(p), std::move(s));
  }

  // Flattening keeps the order of the values ctnn holds: ctnn flattens its own layout.
  void flatten_to(const ::onnx::NodeProto& n, const Value& x) {
    Value y = x;
    std::size_t size = x.size();
    y.onnx = y.dims = {size};
    y.channels_last = false;
    if (x.dims.size() == 1) return alias(n, y);
    add_layer(n, "ctnn::Flatten", {x.tensor}, y);
  }

  void flatten(const ::onnx::NodeProto& n) {
    only_attributes(n, {"axis"});
    const Value& x = value(input(n, 0));
    std::int64_t axis = int_attr(n, "axis", 1);
    if (axis < 0) axis += std::int64_t(x.onnx.size()) + 1;
    if (axis != 1)
      error("axis = ", int_attr(n, "axis", 1), ": ctnn flattens each sample (axis 1), keeping the batch.");
    flatten_to(n, x);
  }

  void reshape(const ::onnx::NodeProto& n) {
    only_attributes(n, {"allowzero"});
    const Value& x = value(input(n, 0));
    const Constant& s = need_constant(n, 1, "shape");
    std::vector<std::int64_t> shape(s.values.begin(), s.values.end());
    if (shape.empty() || !(shape[0] == 0 || shape[0] == -1 || (batch_ > 0 && shape[0] == batch_)))
      error("shape = [", join(shape), "]: ctnn keeps the batch axis (the first value must be 0, -1 or "
            "the input's batch size", batch_ > 0 ? " " + std::to_string(batch_) : std::string(), ").");
    // The per-sample dims: 0 copies the input's axis, one -1 takes what is left.
    std::vector<std::size_t> dims;
    std::size_t known = 1;
    int infer = -1;
    for (std::size_t a = 1; a < shape.size(); ++a) {
      if (shape[a] == -1) {
        if (infer >= 0 || shape[0] == -1) error("shape = [", join(shape), "] has more than one -1.");
        infer = int(a - 1);
        dims.push_back(0);
      } else if (shape[a] == 0) {
        if (a - 1 >= x.onnx.size()) error("shape = [", join(shape), "] copies an axis the input lacks.");
        dims.push_back(x.onnx[a - 1]);
        known *= dims.back();
      } else if (shape[a] > 0) {
        dims.push_back(std::size_t(shape[a]));
        known *= dims.back();
      } else {
        error("shape = [", join(shape), "] has a negative size.");
      }
    }
    if (infer >= 0) dims[std::size_t(infer)] = known ? x.size() / known : 0;
    std::size_t size = 1;
    for (std::size_t d : dims) size *= d;
    if (size != x.size() || dims.empty())
      error("shape = [", join(shape), "] holds ", size, " values per sample; the input holds ", x.size(), ".");
    if (dims.size() == 1) return flatten_to(n, x);
    if (!x.order.empty())
      error("reshapes a channels-last tensor into [", join({dims.begin(), dims.end()}),
            "]; ctnn can only flatten it (its values are in another order than ONNX's).");
    Value y;
    y.onnx = y.dims = dims;
    y.tensor = x.tensor;
    if (dims == x.dims) return alias(n, y);
    std::string spec = "ctnn::Reshape<";
    for (std::size_t a = 0; a < dims.size(); ++a) { if (a) spec += ", "; spec += std::to_string(dims[a]); }
    add_layer(n, spec + ">", {x.tensor}, y);
  }

  void concat(const ::onnx::NodeProto& n) {
    only_attributes(n, {"axis"});
    if (n.input_size() < 2) error("has ", n.input_size(), " input; Concatenate joins two or more.");
    const Value& a = value(input(n, 0));
    std::int64_t axis = int_attr(n, "axis", 1);
    if (axis < 0) axis += std::int64_t(a.onnx.size()) + 1;
    const bool channel = a.channels_last && axis == 1;
    const bool last = a.order.empty() && axis == std::int64_t(a.onnx.size());
    if (!channel && !last)
      error("axis = ", int_attr(n, "axis", 1), " of [N, ", join({a.onnx.begin(), a.onnx.end()}),
            "]: ctnn concatenates along the channels of an image (axis 1) or the last axis of a tensor "
            "in ONNX's order.");
    std::vector<std::size_t> inputs;
    std::vector<std::size_t> onnx = a.onnx;
    const std::size_t ax = std::size_t(axis - 1);
    onnx[ax] = 0;
    for (int i = 0; i < n.input_size(); ++i) {
      const Value& v = value(n.input(i));
      bool same = v.onnx.size() == a.onnx.size() && v.channels_last == a.channels_last &&
                  (channel || (v.order.empty() && v.dims == v.onnx));
      for (std::size_t d = 0; same && d < v.onnx.size(); ++d) same = d == ax || v.onnx[d] == a.onnx[d];
      if (!same) error("input '", n.input(i), "' differs from the first input on an axis other than ", axis, ".");
      onnx[ax] += v.onnx[ax];
      inputs.push_back(v.tensor);
    }
    Value y;
    if (channel) {
      y = channels_last_value(onnx);
    } else {
      y.onnx = y.dims = onnx;
    }
    add_layer(n, "ctnn::Concatenate<>", inputs, y);
  }
};

}  // namespace detail

// The ONNX operators import_model maps (README's conformance table runs ONNX's tests of each).
inline const std::vector<std::string>& mapped_operators() {
  static const std::vector<std::string> ops = {
      "Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
      "BatchNormalization", "Flatten", "Reshape", "Concat", "Softmax", "Relu", "LeakyRelu", "Elu",
      "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Clip", "Dropout", "Identity", "LSTM", "GRU", "RNN"};
  return ops;
}

inline ImportedModel import_model(const ::onnx::ModelProto& model, const ImportOptions& options = {}) {
  return detail::Importer(model, options).run();
}

inline ImportedModel import_model(const std::string& path, const ImportOptions& options = {}) {
  const ::onnx::ModelProto m = read_model_file(path);
  return import_model(m, options);
}

}  // namespace ctnn::onnx
