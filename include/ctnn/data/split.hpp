// ctnn/data/split.hpp: picking samples from a Dataset (subset, head); a seeded train/test split.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/data/dataset.hpp"

namespace ctnn::data {

// A new Dataset holding the samples at `indices`, in that order (repeats allowed), with their
// labels or targets; shape, num_classes, target_size and the names are kept. Throws ctnn::Error
// if an index is out of range.
inline Dataset subset(const Dataset& d, std::span<const std::size_t> indices) {
  d.check_consistent();
  const std::size_t n = d.size(), f = d.feature_size(), t = d.target_size;
  Dataset out;
  out.sample_shape = d.sample_shape;
  out.num_classes = d.num_classes;
  out.target_size = d.target_size;
  out.feature_names = d.feature_names;
  out.class_names = d.class_names;
  out.x.reserve(indices.size() * f);
  if (d.has_labels()) out.labels.reserve(indices.size());
  if (d.has_targets()) out.targets.reserve(indices.size() * t);
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::size_t i = indices[k];
    if (i >= n)
      fail("subset: index ", i, " at position ", k, " is out of range for a dataset of ", n,
           " samples.");
    out.x.insert(out.x.end(), d.x.begin() + static_cast<std::ptrdiff_t>(i * f),
                 d.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * f));
    if (d.has_labels()) out.labels.push_back(d.labels[i]);
    if (d.has_targets())
      out.targets.insert(out.targets.end(), d.targets.begin() + static_cast<std::ptrdiff_t>(i * t),
                         d.targets.begin() + static_cast<std::ptrdiff_t>((i + 1) * t));
  }
  return out;
}

// The first min(n, d.size()) samples, for short runs.
inline Dataset head(const Dataset& d, std::size_t n) {
  std::vector<std::size_t> idx(std::min(n, d.size()));
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return subset(d, idx);
}

// Shuffles the sample indices with ctnn::Rng(seed) and gives the first
// round(n * (1 - test_fraction)) of them, in shuffled order, to the first (train) set and the rest
// to the second (test) set. The same seed gives the same split on every platform. Throws
// ctnn::Error unless 0 < test_fraction < 1 and both parts get at least one sample.
inline std::pair<Dataset, Dataset> train_test_split(const Dataset& d, double test_fraction,
                                                    std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    fail("train_test_split: test_fraction must lie in (0, 1), got ", test_fraction, ".");
  d.check_consistent();
  const std::size_t n = d.size();
  const auto n_train =
      static_cast<std::size_t>(std::llround(static_cast<double>(n) * (1.0 - test_fraction)));
  if (n_train == 0 || n_train == n)
    fail("train_test_split: splitting ", n, " samples with test_fraction ", test_fraction,
         " gives ", n_train, " train and ", n - n_train, " test samples; both need at least one.");
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  Rng rng(seed);
  shuffle(idx, rng);
  const std::span<const std::size_t> all(idx);
  return {subset(d, all.first(n_train)), subset(d, all.subspan(n_train))};
}

}  // namespace ctnn::data
