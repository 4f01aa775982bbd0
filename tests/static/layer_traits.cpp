// Compile-time facts about layer kinds and loss/output pairings: compiling this file is passing.
#include <string_view>

#include <ctnn/ctnn.hpp>
#include <ctnn/deploy/static_quantized.hpp>

using namespace ctnn;

template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, float>;

// Every built-in layer declares its kind; the passes that treat layers specially read only that.
static_assert(layer_kind<On<Dense<4>, 3>> == LayerKind::dense, "Dense declares kind dense.");
static_assert(layer_kind<On<Conv2D<2, 3, 3>, 5, 5, 1>> == LayerKind::conv2d,
              "Conv2D declares kind conv2d.");
static_assert(layer_kind<On<MaxPool2D<2>, 4, 4, 1>> == LayerKind::max_pool2d,
              "MaxPool2D declares kind max_pool2d.");
static_assert(layer_kind<On<AvgPool2D<2>, 4, 4, 1>> == LayerKind::avg_pool2d,
              "AvgPool2D declares kind avg_pool2d.");
static_assert(layer_kind<On<Flatten, 2, 3>> == LayerKind::flatten, "Flatten declares kind flatten.");
static_assert(layer_kind<On<Dropout<0.5>, 3>> == LayerKind::dropout,
              "Dropout declares kind dropout.");
static_assert(layer_kind<On<ReLU, 3>> == LayerKind::relu, "ReLU declares kind relu.");
static_assert(layer_kind<On<LeakyReLU<>, 3>> == LayerKind::leaky_relu,
              "LeakyReLU declares kind leaky_relu (it is not a ReLU: never fused as one).");
static_assert(layer_kind<On<Sigmoid, 3>> == LayerKind::sigmoid, "Sigmoid declares kind sigmoid.");
static_assert(layer_kind<On<Tanh, 3>> == LayerKind::tanh, "Tanh declares kind tanh.");
static_assert(layer_kind<On<Softmax, 3>> == LayerKind::softmax, "Softmax declares kind softmax.");

// The other declared traits of the built-in layers.
static_assert(FusesRelu<On<Dense<4>, 3>> && FusesRelu<On<Conv2D<2, 3, 3>, 5, 5, 1>>,
              "Dense and Conv2D can apply a ReLU in their GEMM's store.");
static_assert(!FusesRelu<On<MaxPool2D<2>, 4, 4, 1>> && !FusesRelu<On<Tanh, 3>>,
              "Pooling and activations have no epilogue to fuse a ReLU into.");
static_assert(ViewLayer<On<Flatten, 2, 3>> && !ViewLayer<On<Dropout<0.5>, 3>>,
              "Flatten is a view of its input; Dropout is not.");

// A user layer that declares no kind is `other`, whatever its name.
struct NamedLikeReLU {
  using value_type = float;
  using input_shape = Shape<3>;
  using output_shape = Shape<3>;
  static constexpr std::size_t param_count = 0;
  static constexpr std::size_t scratch_per_sample = 0;
  static constexpr std::string_view name = "ReLU";
  static void init(float*, Rng&) {}
  static void forward(const float*, const float*, float*, std::size_t, float*, const PassContext&) {}
  static void backward(const float*, const float*, const float*, const float*, float*, float*,
                       std::size_t, float*, const PassContext&) {}
};
static_assert(Layer<NamedLikeReLU>, "The test layer satisfies the Layer contract.");
static_assert(layer_kind<NamedLikeReLU> == LayerKind::other,
              "A layer named \"ReLU\" that declares no kind is of kind other.");
static_assert(detail::qkind<NamedLikeReLU>() == detail::QKind::other,
              "The int8 path runs such a layer in float, not as a ReLU on bytes.");
static_assert(detail::qkind<On<ReLU, 3>>() == detail::QKind::relu &&
                  detail::qkind<On<Dense<4>, 3>>() == detail::QKind::dense &&
                  detail::qkind<On<Conv2D<2, 3, 3>, 5, 5, 1>>() == detail::QKind::conv &&
                  detail::qkind<On<Flatten, 2, 3>>() == detail::QKind::flatten &&
                  detail::qkind<On<Dropout<0.5>, 3>>() == detail::QKind::identity &&
                  detail::qkind<On<MaxPool2D<2>, 4, 4, 1>>() == detail::QKind::maxpool &&
                  detail::qkind<On<AvgPool2D<2>, 4, 4, 1>>() == detail::QKind::other,
              "The int8 plan takes each built-in layer's role from its kind.");

// Sequential fuses a ReLU after Dense by kind: the ReLU then takes no activation slot.
static_assert(Sequential<Input<3>, Dense<4>, ReLU>::training_activation_floats_per_sample ==
                  Sequential<Input<3>, Dense<4>>::training_activation_floats_per_sample,
              "A ReLU after Dense is fused into Dense's store.");
static_assert(Sequential<Input<3>, Dense<4>, LeakyReLU<>>::training_activation_floats_per_sample >
                  Sequential<Input<3>, Dense<4>>::training_activation_floats_per_sample,
              "A LeakyReLU after Dense is not fused.");

// Which model outputs a loss can read (what the Trainer, fit, evaluate and report check).
static_assert(SparseCategoricalCrossEntropy::needs_class_scores &&
                  CategoricalCrossEntropy::needs_class_scores,
              "The cross-entropies over classes need a vector of class scores.");
static_assert(!detail::needs_class_scores<MeanSquaredError>() &&
                  !detail::needs_class_scores<BinaryCrossEntropy>(),
              "Mean squared error and binary cross-entropy read each output on its own.");
static_assert(LossReadsOutput<SparseCategoricalCrossEntropy, Shape<10>>::value &&
                  LossReadsOutput<CategoricalCrossEntropy, Shape<2>>::value,
              "A cross-entropy over classes reads a flat vector of 2 or more class scores.");
static_assert(LossReadsOutput<MeanSquaredError, Shape<26, 26, 8>>::value &&
                  LossReadsOutput<MeanSquaredError, Shape<1>>::value,
              "Mean squared error accepts any output shape (Keras does).");
static_assert(LossReadsOutput<BinaryCrossEntropy, Shape<8, 8, 1>>::value &&
                  LossReadsOutput<BinaryCrossEntropy, Shape<1>>::value,
              "Binary cross-entropy is elementwise and accepts any output shape (Keras does: "
              "e.g. a per-pixel mask).");
