// The model of the export test in test_activations.cpp, declared with the text export_header
// writes for it, and its StaticModel run in activations_exported.cpp, a translation unit that
// includes only what an exported header includes: if the text or those includes were wrong, the
// test executable would not build.
#pragma once
#include <ctnn/deploy/static_model.hpp>

#define CTNN_ACT_MODEL                                                                          \
  ctnn::Sequential<ctnn::Input<6>, ctnn::Dense<5>, ctnn::ReLU6, ctnn::Dense<5>,                   \
  ctnn::BoundedReLU<2.500000, 0.200000, 0.500000>, ctnn::HardSwish, ctnn::Dense<5>,               \
  ctnn::HardSigmoid, ctnn::Dense<5>, ctnn::Swish, ctnn::Dense<4>, ctnn::ELU<0.700000>,            \
  ctnn::Dense<3>, ctnn::Softmax>
#define CTNN_ACT_STR2(...) #__VA_ARGS__
#define CTNN_ACT_STR(...) CTNN_ACT_STR2(__VA_ARGS__)

using ExportedActivationModel = CTNN_ACT_MODEL;
inline constexpr char kExportedActivationModelText[] = CTNN_ACT_STR(CTNN_ACT_MODEL);

// StaticModel<ExportedActivationModel> over `params` on one sample x, outputs into y.
void exported_activation_predict(const float* params, const float* x, float* y);
