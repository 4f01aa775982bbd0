// ONNX import: a model PyTorch trained (scripts/torch_seed_onnx.py wrote tests/onnx/data/) loaded
// into the seed model's ctnn type, its 10,000 test predictions against PyTorch's own; and the
// importer's refusals (a wrong type, an operator or attribute ctnn lacks, a broken file).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/onnx/load.hpp>
#include <ctnn/onnx/layout.hpp>
#include <ctnn/onnx/save.hpp>

#include "torch_compare.hpp"

namespace {
const std::string kData = CTNN_ONNX_DATA_DIR;
const std::string kOnnxTests = CTNN_ONNX_TESTDATA_DIR;

// The seed model as PyTorch's peer writes it: logits out (PyTorch's CrossEntropyLoss holds the
// softmax), so no Softmax layer.
using Seed = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU, ctnn::Flatten,
                              ctnn::Dense<128>, ctnn::ReLU, ctnn::Dense<10>>;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ctnn::Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("load_onnx: the seed model trained by PyTorch gives PyTorch's 10,000 test predictions") {
  auto model = std::make_unique<Seed>();
  ctnn::onnx::load_onnx(kData + "/torch_seed_cnn.onnx", *model);
  ctnn_onnx_test::check_against_torch(*model, kData + "/torch_seed_cnn_outputs.bin", 0.8);
}

TEST_CASE("load_onnx: PyTorch's seed model with a Softmax after it trains on in ctnn (fine-tuning)", "[long]") {
  // PyTorch's classifier ends in logits; the ctnn type adds the Softmax its cross-entropy wants.
  using Tuned = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU, ctnn::Flatten,
                                 ctnn::Dense<128>, ctnn::ReLU, ctnn::Dense<10>, ctnn::Softmax>;
  auto model = std::make_unique<Tuned>();
  ctnn::onnx::load_onnx(kData + "/torch_seed_cnn.onnx", *model);
  const std::string dir = CTNN_FASHION_MNIST_DIR;
  const auto train = ctnn::data::load_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", {.limit = 12000});
  const auto test = ctnn::data::load_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
  const auto before = ctnn::evaluate(*model, test);
  const auto train_before = ctnn::evaluate(*model, train);
  CHECK(before.accuracy > 0.87);  // PyTorch's 0.8795 (the images scaled by 1/255 here)
  ctnn::Adam opt(1e-4f);
  ctnn::fit(*model, opt, ctnn::SparseCategoricalCrossEntropy{}, train, {.epochs = 1, .seed = 1, .verbose = 0});
  const auto after = ctnn::evaluate(*model, test);
  const auto train_after = ctnn::evaluate(*model, train);
  INFO("test accuracy " << before.accuracy << " -> " << after.accuracy << "; training loss " << train_before.loss
       << " -> " << train_after.loss);
  CHECK(train_after.loss < train_before.loss);  // it learns from where PyTorch left it
  CHECK(after.accuracy > before.accuracy - 0.01);
}

TEST_CASE("load_onnx: a file that is not the model type is refused, naming the first difference") {
  const std::string path = kData + "/torch_seed_cnn.onnx";
  using Wider = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3>, ctnn::ReLU, ctnn::Flatten,
                                 ctnn::Dense<64>, ctnn::ReLU, ctnn::Dense<10>>;
  auto wider = std::make_unique<Wider>(7);
  const std::vector<float> before(wider->parameters().begin(), wider->parameters().end());
  const std::string e = error_of([&] { ctnn::onnx::load_onnx(path, *wider); });
  INFO(e);
  CHECK(e.find("layer 3 of the model type is ctnn::Dense<64>") != std::string::npos);
  CHECK(e.find("maps to ctnn::Dense<128>") != std::string::npos);
  CHECK(std::equal(before.begin(), before.end(), wider->parameters().begin()));  // unchanged

  using Strided = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3, 2>, ctnn::ReLU,
                                   ctnn::Flatten, ctnn::Dense<128>, ctnn::ReLU, ctnn::Dense<10>>;
  auto strided = std::make_unique<Strided>();
  CHECK(error_of([&] { ctnn::onnx::load_onnx(path, *strided); }).find("layer 0") != std::string::npos);

  // Initializers are not part of the type's identity: a HeNormal model takes the weights.
  using HeSeed = ctnn::Sequential<ctnn::Input<28, 28, 1>, ctnn::Conv2D<32, 3, 3, 1, ctnn::Padding::valid, ctnn::init::HeNormal>,
                                  ctnn::ReLU, ctnn::Flatten, ctnn::Dense<128, ctnn::init::HeNormal>, ctnn::ReLU,
                                  ctnn::Dense<10>>;
  auto he = std::make_unique<HeSeed>();
  CHECK_NOTHROW(ctnn::onnx::load_onnx(path, *he));
}

TEST_CASE("ONNX import: what ctnn cannot compute exactly is an error naming the node, operator and attribute") {
  using ctnn::onnx::import_model;
  ctnn::onnx::ImportOptions none;
  // ONNX's own cases (libonnx-testdata).
  const auto import_case = [&](const std::string& name) {
    return error_of([&] { import_model(kOnnxTests + "/node/" + name + "/model.onnx", none); });
  };
  const std::string ceil = error_of([&] {
    import_model(kOnnxTests + "/node/test_maxpool_2d_ceil/model.onnx");
  });
  CHECK(ceil.find("node 0 (MaxPool): ceil_mode = 1") != std::string::npos);
  CHECK(import_case("test_softmax_axis_0").find("(Softmax): axis 0 of a rank-3 tensor") != std::string::npos);
  CHECK(import_case("test_conv_with_strides_padding").find("data inputs ('x', 'W')") != std::string::npos);
  // A weight bound, an operator without a layer.
  const std::string op = import_case("test_reduce_mean_default_axes_keepdims_example");
  CHECK(op.find("operator ReduceMean has no ctnn layer") != std::string::npos);

  // A truncated file and a file that is not ONNX at all.
  const std::string tmp = std::string(CTNN_ONNX_TMP_DIR) + "/truncated.onnx";
  {
    std::ifstream in(kData + "/torch_seed_cnn.onnx", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(tmp, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 3));
  }
  CHECK(error_of([&] { import_model(tmp); }).find("is not an ONNX model") != std::string::npos);
  CHECK(error_of([&] { import_model(kData + "/no_such_file.onnx"); }).find("cannot open model file") !=
        std::string::npos);
}

TEST_CASE("ONNX import: BatchNormalization after a Flatten of a channels-first image keeps ONNX's feature order") {
  // x [N, 2, 1, 2] -> MaxPool 1x1 (ctnn holds it channels last) -> Flatten (ONNX's features are
  // c * 2 + w; ctnn's w * 2 + c) -> BatchNormalization with per-feature values.
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(14);
  auto* g = m.mutable_graph();
  g->set_name("bn_after_flatten");
  const auto info = [](::onnx::ValueInfoProto* v, const char* name, std::vector<std::int64_t> dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("batch");
    for (auto d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  };
  info(g->add_input(), "x", {2, 1, 2});
  info(g->add_output(), "y", {4});
  const float scale[4] = {1, 2, 3, 4}, bias[4] = {0.5f, -1, 2, 0}, mean[4] = {0.25f, 0, -0.5f, 1}, var[4] = {1, 4, 0.25f, 2};
  for (auto [name, v] : {std::pair{"scale", scale}, std::pair{"B", bias}, std::pair{"mean", mean}, std::pair{"var", var}}) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    t->add_dims(4);
    for (int i = 0; i < 4; ++i) t->add_float_data(v[i]);
  }
  auto* pool = g->add_node();
  pool->set_op_type("MaxPool");
  pool->add_input("x");
  pool->add_output("p");
  auto* ks = pool->add_attribute();
  ks->set_name("kernel_shape");
  ks->set_type(::onnx::AttributeProto::INTS);
  ks->add_ints(1), ks->add_ints(1);
  auto* fl = g->add_node();
  fl->set_op_type("Flatten");
  fl->add_input("p");
  fl->add_output("f");
  auto* bn = g->add_node();
  bn->set_op_type("BatchNormalization");
  for (const char* i : {"f", "scale", "B", "mean", "var"}) bn->add_input(i);
  bn->add_output("y");
  ::onnx::checker::check_model(m);

  const auto imported = ctnn::onnx::import_model(m);
  using Net = ctnn::Sequential<ctnn::Input<1, 2, 2>, ctnn::MaxPool2D<1, 1, 1>, ctnn::Flatten, ctnn::BatchNormalization<0.9, 0.00001>>;
  ctnn::onnx::check_matches<Net>(imported, "the model");
  auto net = std::make_unique<Net>();
  const std::vector<float> pa = imported.arena();
  std::copy(pa.begin(), pa.end(), net->parameters().begin());
  const std::vector<float> st = imported.state_arena();
  std::copy(st.begin(), st.end(), net->state().begin());
  const float x_onnx[4] = {0.3f, -0.7f, 1.1f, 2.0f};  // [c][h][w]
  std::vector<float> x(4), y(4);
  ctnn::onnx::to_ctnn<float>(imported.input_order, x_onnx, x);
  const auto out = net->predict(x);
  ctnn::onnx::to_onnx<float>(imported.output_order, std::span<const float>(out.data(), 4), y.data());
  for (int f = 0; f < 4; ++f) {
    const double want = scale[f] * (x_onnx[f] - mean[f]) / std::sqrt(double(var[f]) + 1e-5) + bias[f];
    INFO("feature " << f);
    CHECK(std::abs(y[std::size_t(f)] - want) <= 1e-5 * std::max(1.0, std::abs(want)));
  }
  // And save_onnx writes the statistics back in ONNX's order.
  const ::onnx::ModelProto back = ctnn::onnx::to_onnx_model(*net);
  for (const auto& t : back.graph().initializer())
    if (t.name().find("_scale") != std::string::npos) {
      const ctnn::onnx::Constant c = ctnn::onnx::read_tensor(t, t.name());
      CHECK(c.values == std::vector<double>{1, 2, 3, 4});
    }
}
