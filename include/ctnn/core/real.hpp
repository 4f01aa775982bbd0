// ctnn/core/real.hpp: a real number usable as a template argument.
//
// clang 14 does not accept float template parameters, so rates such as Dropout<0.5> or
// LeakyReLU<0.3> are stored in millionths in this structural type. The implicit constructor makes
// Dropout<0.5> read as a user expects.
#pragma once

namespace ctnn {

struct Real {
  long long micros;
  constexpr Real(double v) : micros(static_cast<long long>(v * 1e6 + (v >= 0 ? 0.5 : -0.5))) {}
  constexpr double value() const { return static_cast<double>(micros) / 1e6; }
};

}  // namespace ctnn
