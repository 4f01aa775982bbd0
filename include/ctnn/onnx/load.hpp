// ctnn/onnx/load.hpp: load_onnx(path, model), an ONNX file's weights into a model type written
// by hand (or by ctnn-onnx), after checking that the file's graph is that type.
//
// The file is imported as ctnn-onnx imports it (onnx/import.hpp); the result must be `Model`
// exactly: the same input shape, the same layers in the same order reading the same tensors,
// each with the same settings (kernel, stride, padding, units, slopes, ...), except that the
// type may end in a Softmax the file lacks (PyTorch's classifiers end in logits). Initializers are
// not part of the check (a model declared with HeNormal takes weights trained elsewhere). Any
// difference is an Error naming the first layer that differs and both spellings; the model is
// then left unchanged. On success its parameters and state (BatchNormalization's moving
// statistics) are the file's, converted to ctnn's layouts, ready for predict(), fine-tuning,
// quantize() or export_header(). Link ctnn::onnx.
#pragma once
#include <algorithm>
#include <string>

#include "ctnn/deploy/export.hpp"
#include "ctnn/onnx/import.hpp"

namespace ctnn::onnx {

namespace detail {
// A layer's spelling without its initializers (", ctnn::init::GlorotUniform" and the like).
inline std::string without_initializers(std::string s) {
  for (std::size_t p; (p = s.find(", ctnn::init::")) != std::string::npos;) {
    std::size_t e = p + 2;
    while (e < s.size() && s[e] != ',' && s[e] != '>') ++e;
    s.erase(p, e - p);
  }
  return s;
}
// Layer L's spelling for the comparison: without its initializers, and for an LSTM without the
// UnitForgetBias flag that follows them (initialization only; ctnn-onnx never writes it).
template <class L>
std::string comparable_spec() {
  std::string s = without_initializers(deploy::layer_spec<L>());
  if constexpr (layer_kind<L> == LayerKind::lstm) {
    const std::size_t c1 = s.find(','), c2 = s.find(',', c1 + 1);
    if (c1 != std::string::npos && c2 != std::string::npos) s = s.substr(0, c2) + ">";
  }
  return s;
}
inline std::string dims_text(const std::vector<std::size_t>& d) {
  std::string s;
  for (std::size_t i = 0; i < d.size(); ++i) { if (i) s += "x"; s += std::to_string(d[i]); }
  return s;
}
inline std::string list_text(const std::vector<std::size_t>& d) {
  std::string s;
  for (std::size_t i = 0; i < d.size(); ++i) { if (i) s += ", "; s += std::to_string(d[i]); }
  return s;
}
}  // namespace detail

// Fails (naming the difference) unless `imported` is the model type `Model`.
template <class Model>
void check_matches(const ImportedModel& imported, const std::string& what) {
  using In = typename Model::input_shape;
  std::vector<std::size_t> in(In::dims.begin(), In::dims.end());
  if (imported.input_dims != in)
    fail("load_onnx: ", what, " takes a ", detail::dims_text(imported.input_dims), " input (ONNX '",
         imported.input_name, "'); the model type takes ", detail::dims_text(in), ".");
  // A trailing Softmax the file lacks is allowed: PyTorch's classifiers end in logits (its
  // CrossEntropyLoss holds the softmax), and training on in ctnn wants the probabilities.
  constexpr std::size_t N = Model::num_layers;
  constexpr bool softmax_last = N > 0 && layer_kind<typename Model::template layer<N - 1>> == LayerKind::softmax;
  const bool extra_softmax = softmax_last && imported.layers.size() + 1 == N &&
                             (imported.layers.empty() || imported.layers.back().spec != "ctnn::Softmax");
  if (imported.layers.size() != N && !extra_softmax)
    fail("load_onnx: ", what, " maps to ", imported.layers.size(), " ctnn layers; the model type has ", N,
         " (the file is ", imported.model_type(), ").");
  ctnn::detail::static_for<N>([&]<std::size_t I>() {
    if (I == imported.layers.size()) {  // the trailing Softmax: it must read the file's output
      bool last = true;
      if constexpr (!Model::is_chain) last = Model::template inputs_of<I>.size() == 1 && Model::template inputs_of<I>[0] == I;
      if (!last) fail("load_onnx: the model type's last layer, a Softmax, does not read the file's output.");
      return;
    }
    const ImportedLayer& l = imported.layers[I];
    const std::string mine = detail::comparable_spec<typename Model::template layer<I>>();
    const std::string theirs = detail::without_initializers(l.spec);
    std::vector<std::size_t> inputs;
    if constexpr (Model::is_chain) {
      inputs.push_back(I);
    } else {
      for (std::size_t t : Model::template inputs_of<I>) inputs.push_back(t);
    }
    if (mine != theirs || inputs != l.inputs)
      fail("load_onnx: layer ", I, " of the model type is ", mine, " (reading tensors ",
           detail::list_text(inputs), "); ", what, "'s ONNX node '", l.onnx_node, "' (", l.onnx_op,
           ") maps to ", theirs, " (reading tensors ", detail::list_text(l.inputs), ").");
  });
}

// Loads the weights of the ONNX file at `path` into `model` (see the top of this file).
template <class Model>
void load_onnx(const std::string& path, Model& model, const ImportOptions& options = {}) {
  static_assert(std::is_same_v<typename Model::value_type, float>,
                "load_onnx loads float models (ONNX files hold float32 weights).");
  const ImportedModel imported = import_model(path, options);
  check_matches<Model>(imported, path);
  const std::vector<float> params = imported.arena(), state = imported.state_arena();
  if (params.size() != model.parameters().size() || state.size() != model.state().size())
    fail("load_onnx: ", path, " gives ", params.size(), " parameter and ", state.size(),
         " state values for the model's ", model.parameters().size(), " and ", model.state().size(), ".");
  std::copy(params.begin(), params.end(), model.parameters().begin());
  std::copy(state.begin(), state.end(), model.state().begin());
}

}  // namespace ctnn::onnx
