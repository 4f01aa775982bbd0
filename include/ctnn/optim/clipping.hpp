// ctnn/optim/clipping.hpp: gradient clipping, Keras's clipnorm, global_clipnorm and clipvalue.
//
// Every optimizer has a public member `clipping` (all off by default), e.g.
//     ctnn::Adam opt;  opt.clipping.global_clipnorm = 1.0;
// Represents, before the optimizer's update (and before AdamW's weight decay, as Keras orders
// them: clip, decay, update), with c the option that is set:
//   clipnorm         g_t = g_t * c / max(||g_t||, c) for each parameter tensor t on its own
//   global_clipnorm  g   = g * c / max(||g||, c) with ||g|| over every tensor
//   clipvalue        g   = min(max(g, -c), c) elementwise
// At most one may be set (Keras uses only the first set of the three; a second would be ignored
// silently, so ctnn refuses it). A parameter tensor is a layer's kernel or its bias (Keras's
// variables); the Trainer tells the optimizer where they lie in the arena (set_tensors). An
// optimizer used without a Trainer and without set_tensors treats the arena as one tensor.
// The norms are summed in double in arena order by one thread, so the clipped gradient is the
// same at any thread count. A NaN gradient gives a NaN norm and NaN clipped gradients.
// Clipping is configuration, like the loss: checkpoints do not store it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "ctnn/core/buffer.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/optim/hyperparameter.hpp"

namespace ctnn {

// Where one parameter tensor (a kernel, a bias) lies in the parameter arena.
struct ParamTensor {
  std::size_t offset = 0, size = 0;
};

struct GradientClipping {
  double clipnorm = 0;         // 0: off
  double global_clipnorm = 0;  // 0: off
  double clipvalue = 0;        // 0: off

  bool active() const { return clipnorm > 0 || global_clipnorm > 0 || clipvalue > 0; }

  // Fails with a sentence unless each option is a finite number >= 0 (0 is off) and at most one
  // is set.
  void check(const char* optimizer) const {
    detail::check_hyperparameter(optimizer, "clipnorm", clipnorm, 0);
    detail::check_hyperparameter(optimizer, "global_clipnorm", global_clipnorm, 0);
    detail::check_hyperparameter(optimizer, "clipvalue", clipvalue, 0);
    const int set = int(clipnorm > 0) + int(global_clipnorm > 0) + int(clipvalue > 0);
    if (set > 1)
      fail(optimizer, " may clip gradients in one way only, but clipnorm is ", clipnorm,
           ", global_clipnorm ", global_clipnorm, " and clipvalue ", clipvalue,
           ": set one of them and leave the others 0.");
  }
};

namespace detail {

template <class T>
double sum_of_squares(const T* g, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
  return s;
}

// The clipped copy of a gradient and the tensor layout it is clipped by; one per optimizer.
template <class T>
class Clipper {
 public:
  void set_tensors(std::vector<ParamTensor> t) { tensors_ = std::move(t); }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }

  // g itself when `c` clips nothing; otherwise the clipped copy (allocated at the first call).
  std::span<const T> apply(const GradientClipping& c, std::span<const T> g) {
    if (!c.active()) return g;
    if (buf_.size() != g.size()) buf_ = AlignedBuffer<T>(g.size());
    T* out = buf_.data();
    std::copy(g.begin(), g.end(), out);
    const ParamTensor whole{0, g.size()};
    const std::span<const ParamTensor> ts =
        tensors_.empty() ? std::span<const ParamTensor>(&whole, 1) : std::span<const ParamTensor>(tensors_);
    for (const ParamTensor& t : ts)
      if (t.offset + t.size > g.size())
        fail("A parameter tensor at ", t.offset, " of ", t.size, " values lies outside the ",
             g.size(), " gradients given to the optimizer.");
    if (c.clipvalue > 0) {
      const T v = T(c.clipvalue);
      for (std::size_t i = 0; i < g.size(); ++i)
        out[i] = std::isnan(out[i]) ? out[i] : std::clamp(out[i], -v, v);
    } else if (c.clipnorm > 0) {
      for (const ParamTensor& t : ts) scale(out + t.offset, t.size, sum_of_squares(out + t.offset, t.size), c.clipnorm);
    } else {
      double s = 0;
      for (const ParamTensor& t : ts) s += sum_of_squares(out + t.offset, t.size);
      for (const ParamTensor& t : ts) scale(out + t.offset, t.size, s, c.global_clipnorm);
    }
    return {out, g.size()};
  }

 private:
  // g *= c / max(sqrt(sum_sq), c): unchanged when the norm is at most c.
  static void scale(T* g, std::size_t n, double sum_sq, double c) {
    const double norm = std::sqrt(sum_sq);
    if (norm <= c) return;
    const T f = std::isnan(norm) ? T(norm) : T(c / norm);
    for (std::size_t i = 0; i < n; ++i) g[i] *= f;
  }

  std::vector<ParamTensor> tensors_;
  AlignedBuffer<T> buf_;
};

}  // namespace detail
}  // namespace ctnn
