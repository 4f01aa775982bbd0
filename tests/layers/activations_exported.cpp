// See activations_exported.hpp: only ctnn/deploy/static_model.hpp is included here.
#include "activations_exported.hpp"

#include <algorithm>

void exported_activation_predict(const float* params, const float* x, float* y) {
  ctnn::deploy::StaticModel<ExportedActivationModel> net(params);  // small: fine on the stack
  const float* out = net.predict(x);
  std::copy(out, out + ExportedActivationModel::output_size, y);
}
