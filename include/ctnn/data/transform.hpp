// ctnn/data/transform.hpp: in-place transforms and validation of a Dataset's values.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/data/dataset.hpp"

namespace ctnn::data {

// Multiplies every feature value by `factor` (e.g. 1/255 for raw pixel bytes).
inline void scale(Dataset& d, float factor) {
  for (float& v : d.x) v *= factor;
}

// Throws ctnn::Error unless the dataset is consistent (Dataset::check_consistent) and every value
// in x and targets is finite; the message names the first bad value's sample and index. `what`
// names the dataset in the message (e.g. "training set").
inline void validate(const Dataset& d, const char* what = "dataset") {
  d.check_consistent(what);
  // Shared by x and targets: `width` values per sample.
  const auto check = [what](const std::vector<float>& v, std::size_t width, const char* field,
                            const char* index_name) {
    for (std::size_t k = 0; k < v.size(); ++k)
      if (!std::isfinite(v[k]))
        fail("The ", what, " has a non-finite value (", v[k], ") in ", field, " at sample ",
             k / width, ", ", index_name, " ", k % width, ".");
  };
  check(d.x, d.feature_size(), "x", "feature");
  if (d.has_targets()) check(d.targets, d.target_size, "targets", "target index");
}

}  // namespace ctnn::data
