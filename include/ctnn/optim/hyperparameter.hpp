// ctnn/optim/hyperparameter.hpp: range checks of optimizer hyperparameters, one sentence each.
//
// An optimizer checks its hyperparameters when it is constructed and at every step (a few
// compares per step; a user or a callback may change them between steps), and fit() checks them
// before its first step. set_hyperparameters() (checkpoint loading) does not: load_checkpoint
// changes nothing once it has started changing things, and the next step checks.
#pragma once
#include <cmath>
#include <limits>

#include "ctnn/core/error.hpp"

namespace ctnn::detail {

// Fails unless v lies in [lo, hi) (hi_closed: [lo, hi]; hi infinite: any finite v >= lo, or
// v > lo when lo_open), e.g. "Adam's beta_1 must be a number in [0, 1); it is 1.5.".
inline void check_hyperparameter(const char* optimizer, const char* what, double v, double lo,
                                 bool lo_open = false,
                                 double hi = std::numeric_limits<double>::infinity(),
                                 bool hi_closed = false) {
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = std::isinf(hi) ? std::isfinite(v) : (hi_closed ? v <= hi : v < hi);
  if (above && below) return;
  if (std::isinf(hi))
    fail(optimizer, "'s ", what, " must be a finite number ", lo_open ? "> " : ">= ", lo,
         "; it is ", v, ".");
  fail(optimizer, "'s ", what, " must be a number in ", lo_open ? "(" : "[", lo, ", ", hi,
       hi_closed ? "]" : ")", "; it is ", v, ".");
}

}  // namespace ctnn::detail
