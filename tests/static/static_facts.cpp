// Compile-time facts: compiling this file is passing (each requirement is a static_assert whose
// message says what it checks).
#include <type_traits>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

// The seed model: shapes and Keras's parameter count.
using Seed = Sequential<Input<28, 28, 1>, Conv2D<32, 3, 3>, ReLU, Flatten, Dense<128>, ReLU,
                        Dense<10>, Softmax>;
static_assert(Seed::param_count == 2'770'634, "The seed model has Keras's 2,770,634 parameters.");
static_assert(std::is_same_v<Seed::output_shape, Shape<10>>, "The seed model outputs 10 values.");
static_assert(std::is_same_v<Seed::layer<0>::output_shape, Shape<26, 26, 32>>,
              "A valid 3x3 convolution of 28x28 gives 26x26.");
static_assert(std::is_same_v<Seed::layer<2>::output_shape, Shape<21632>>,
              "Flatten of 26x26x32 has 21632 values.");
static_assert(Seed::layer<0>::param_count == 320 && Seed::layer<3>::param_count == 2'769'024 &&
                  Seed::layer<5>::param_count == 1290,
              "Per-layer parameter counts are Keras's.");
static_assert(Seed::param_offset<0> == 0 && Seed::param_offset<3> % 16 == 0 &&
                  Seed::param_offset<5> % 16 == 0,
              "Each layer's parameters start on a 64-byte boundary of the arena.");
static_assert(Seed::arena_size >= Seed::param_count && Seed::arena_size < Seed::param_count + 64,
              "The arena is the parameters plus at most a little alignment padding.");
static_assert(Seed::training_activation_floats_per_sample ==
                  784 /*input*/ + 21632 /*conv+relu*/ + 128 + 16 /*Dense 10 padded*/ + 16 /*Softmax padded*/,
              "Flatten and the fused ReLUs take no activation memory of their own.");
static_assert(Seed::activation_floats_per_sample == 784 + 21632,
              "Inference reuses slots by liveness: the peak is the input beside Conv2D's output; "
              "Dense's output then takes the input's slot, Softmax's the one freed after it.");

// Layers bound in isolation.
template <class Spec, std::size_t... D>
using On = typename Spec::template bind<Shape<D...>, float>;
static_assert(std::is_same_v<On<Conv2D<8, 3, 3, 2>, 7, 7, 3>::output_shape, Shape<3, 3, 8>>,
              "Stride 2, valid: (7 - 3) / 2 + 1 = 3.");
static_assert(std::is_same_v<On<Conv2D<8, 3, 3, 2, Padding::same>, 7, 7, 3>::output_shape,
                             Shape<4, 4, 8>>,
              "Stride 2, same: ceil(7 / 2) = 4.");
static_assert(On<Conv2D<8, 3, 3>, 7, 7, 3>::param_count == 3 * 3 * 3 * 8 + 8,
              "Conv2D has kh*kw*c*filters weights plus one bias per filter.");
static_assert(std::is_same_v<On<MaxPool2D<2>, 26, 26, 32>::output_shape, Shape<13, 13, 32>>,
              "MaxPool2D<2> halves each side (stride defaults to the pool size).");
static_assert(std::is_same_v<On<AvgPool2D<3, 3, 2, Padding::same>, 7, 5, 4>::output_shape,
                             Shape<4, 3, 4>>,
              "AvgPool2D with same padding gives ceil(size / stride).");
static_assert(std::is_same_v<On<MaxPool2D<3, 3, 1>, 5, 5, 1>::output_shape, Shape<3, 3, 1>>,
              "Overlapping pooling: (5 - 3) / 1 + 1 = 3.");
static_assert(std::is_same_v<On<Flatten, 2, 3, 4>::output_shape, Shape<24>>,
              "Flatten multiplies the dimensions.");
static_assert(On<Dropout<0.25>, 10>::rate == 0.25, "Dropout keeps its rate.");
static_assert(On<LeakyReLU<>, 10>::alpha == 0.3f, "LeakyReLU's alpha defaults to Keras's 0.3.");
static_assert(On<Dense<7>, 5>::param_count == 42, "Dense has in*units weights plus units biases.");

// Contracts.
static_assert(Layer<On<Conv2D<2, 3, 3>, 5, 5, 1>> && Layer<On<Dense<3>, 4>> &&
                  Layer<On<MaxPool2D<2>, 4, 4, 1>> && Layer<On<AvgPool2D<2>, 4, 4, 1>> &&
                  Layer<On<Flatten, 2, 2>> && Layer<On<Dropout<0.5>, 3>> && Layer<On<ReLU, 3>> &&
                  Layer<On<LeakyReLU<0.1>, 3>> && Layer<On<Sigmoid, 3>> && Layer<On<Tanh, 3>> &&
                  Layer<On<Softmax, 3>>,
              "Every layer satisfies the Layer concept.");
static_assert(FusesRelu<On<Dense<3>, 4>> && FusesRelu<On<Conv2D<2, 3, 3>, 5, 5, 1>> &&
                  !FusesRelu<On<Tanh, 3>>,
              "Dense and Conv2D fuse a following ReLU into their GEMM epilogue.");
static_assert(ViewLayer<On<Flatten, 2, 2>> && !ViewLayer<On<ReLU, 3>>, "Flatten is a view.");
static_assert(Loss<SparseCategoricalCrossEntropy> && Loss<CategoricalCrossEntropy> &&
                  Loss<BinaryCrossEntropy> && Loss<MeanSquaredError>,
              "Every loss satisfies the Loss concept.");
static_assert(FusesSoftmax<SparseCategoricalCrossEntropy> && FusesSoftmax<CategoricalCrossEntropy> &&
                  !FusesSoftmax<MeanSquaredError>,
              "The cross-entropies fuse with a preceding Softmax.");
static_assert(Real(0.3).value() == 0.3 && Real(-0.5).micros == -500000,
              "Real stores millionths exactly.");

// Flat models and double models.
using Tabular = BasicSequential<double, Input<30>, Dense<16>, Tanh, Dropout<0.2>, Dense<1>, Sigmoid>;
static_assert(Tabular::param_count == 30 * 16 + 16 + 17, "A flat double model counts the same way.");
static_assert(std::is_same_v<Tabular::value_type, double>, "BasicSequential takes the scalar type.");
static_assert(Tabular::input_size == 30 && Tabular::output_size == 1, "Input and output sizes.");
