// ctnn/data/stats.hpp: the fill statistics shared by clean.hpp's impute (on a table) and
// preprocess.hpp's SimpleImputer (fitted on a training split), so both fill a gap alike.
// Each takes the non-missing values of one column, at least one.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

namespace ctnn::data::stats {

// The mean, summed in the order given.
inline double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// The median (of an even count, the mean of the middle two); sorts v.
inline double median(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// The most frequent value; of a tie, the smallest (the first longest run once sorted); sorts v.
inline double most_frequent(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  double best = v[0];
  std::size_t best_n = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j < v.size() && v[j] == v[i]) ++j;
    if (j - i > best_n) best = v[i], best_n = j - i;
    i = j;
  }
  return best;
}

}  // namespace ctnn::data::stats
