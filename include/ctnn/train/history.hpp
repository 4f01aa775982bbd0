// ctnn/train/history.hpp: what fit() records per epoch, and reading a monitored quantity from it.
//
// A History is the list of EpochLogs of one fit() call. Quantities are named as Keras names them:
// "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate" (accuracy is NaN for losses
// without one, val_* NaN without validation data). Monitors (early stopping, plateaus, search)
// read them through value_of(), which turns an unknown name into an error listing the known ones.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/core/error.hpp"

namespace ctnn {

struct EpochLog {
  std::size_t epoch = 0;  // 1-based
  double loss = 0, accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double learning_rate = std::numeric_limits<double>::quiet_NaN();  // during this epoch
  double seconds = 0;
};

// The quantity `monitor` of an epoch; throws ctnn::Error for an unknown name.
inline double value_of(const EpochLog& e, std::string_view monitor) {
  if (monitor == "loss") return e.loss;
  if (monitor == "accuracy") return e.accuracy;
  if (monitor == "val_loss") return e.val_loss;
  if (monitor == "val_accuracy") return e.val_accuracy;
  if (monitor == "learning_rate") return e.learning_rate;
  fail("Unknown quantity to monitor: \"", monitor,
       "\"; use one of loss, accuracy, val_loss, val_accuracy, learning_rate.");
}

// Whether larger is better for `monitor` (accuracies) or smaller (losses), as Keras's mode="auto".
inline bool higher_is_better(std::string_view monitor) {
  (void)value_of(EpochLog{}, monitor);  // validates the name
  return monitor.find("accuracy") != std::string_view::npos;
}

struct History {
  std::vector<EpochLog> epochs;
  bool stopped_early = false;  // a callback ended training before options.epochs

  const EpochLog& last() const {
    if (epochs.empty()) fail("The history is empty: fit() ran no epoch.");
    return epochs.back();
  }
  // The epoch with the best value of `monitor` (first one on ties); NaN values are skipped.
  // Throws ctnn::Error if no epoch has a value (e.g. val_loss without validation data).
  const EpochLog& best(std::string_view monitor) const {
    const bool up = higher_is_better(monitor);
    const EpochLog* best = nullptr;
    for (const EpochLog& e : epochs) {
      const double v = value_of(e, monitor);
      if (std::isnan(v)) continue;
      if (!best || (up ? v > value_of(*best, monitor) : v < value_of(*best, monitor))) best = &e;
    }
    if (!best)
      fail("No epoch of the history has a value for \"", monitor, "\" (", epochs.size(),
           " epochs; val_* quantities need validation data, accuracy a classification loss).");
    return *best;
  }
};

}  // namespace ctnn
