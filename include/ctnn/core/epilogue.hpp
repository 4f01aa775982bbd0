// ctnn/core/epilogue.hpp: the activation a layer's forward may apply in its own store.
//
// Sequential decides at compile time that a ReLU (or ReLU6) after Dense or Conv2D is fused into
// their GEMM (core/layer.hpp, FusesRelu, fused_epilogue) and passes Epilogue::relu (relu6) to their
// forward; the GEMM kernels
// (kernels/gemm.hpp) apply it as they write each output. It lives in core/ so the planner names it
// without including kernels/: kernels build on core, never the other way.
#pragma once

namespace ctnn {

// Activation applied in a GEMM epilogue.
enum class Epilogue { none, relu, relu6 };

}  // namespace ctnn
