// ctnn/core/rng.hpp: the one random number generator ctnn uses (shuffling, splits, weight init).
//
// ctnn::Rng is splitmix64 (Steele, Lea, Flood 2014): 64 bits of state, one add and a 3-step mix per
// output, and it passes BigCrush. Every operation here uses only integer arithmetic and exact
// power-of-two scaling, so a seed gives the same sequence, shuffles and splits on every platform
// and compiler (std::mt19937 is portable but std::uniform_int_distribution and std::shuffle are
// not). Not for cryptography.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "ctnn/core/error.hpp"

namespace ctnn {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : state_(seed) {}

  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);  // golden-ratio increment
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform double in [0, 1): the top 53 bits, the most a double holds exactly.
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform float in [lo, hi) for lo < hi; returns lo when lo == hi.
  float uniform(float lo, float hi) {
    const float u = static_cast<float>(next_u64() >> 40) * 0x1.0p-24f;  // 24 bits: float's mantissa
    // One rounding, always: written as lo + (hi - lo) * u, the compiler may or may not contract it
    // into a fused multiply-add (GCC does under -std=gnu++20's -ffp-contract=fast, depending on
    // how it inlined the call), and the same seed gave weights a bit apart in two programs.
    const float r = std::fma(hi - lo, u, lo);
    // It can round up to hi; clamp to keep the interval half-open.
    return lo < hi ? std::min(r, std::nextafter(hi, lo)) : lo;
  }

  // Uniform integer in [0, n), without modulo bias: draws below 2^64 mod n are rejected so the
  // accepted range is a whole number of copies of [0, n). Throws ctnn::Error when n == 0.
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) fail("Rng::below(n) needs n >= 1, got 0.");
    const std::uint64_t reject_under = (0 - n) % n;  // == 2^64 mod n
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= reject_under) return r % n;
    }
  }

 private:
  std::uint64_t state_;
};

// Fisher-Yates shuffle: every permutation equally likely, the same one for the same Rng state.
template <class T>
void shuffle(std::span<T> items, Rng& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.below(i));
    using std::swap;
    swap(items[i - 1], items[j]);
  }
}

template <class T>
void shuffle(std::vector<T>& items, Rng& rng) {
  shuffle(std::span<T>(items), rng);
}

}  // namespace ctnn
