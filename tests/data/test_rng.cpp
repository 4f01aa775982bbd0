// Tests for ctnn/core/rng.hpp (kept with the data tests, its first user).
#include "ctnn/core/rng.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

TEST_CASE("Rng is splitmix64: fixed outputs for a seed, on every platform", "[core][rng]") {
  // Reference values computed independently (Python) from the published splitmix64 algorithm.
  ctnn::Rng r(0);
  CHECK(r.next_u64() == 0xE220A8397B1DCDAFull);
  CHECK(r.next_u64() == 0x6E789E6AA1B965F4ull);

  ctnn::Rng a(42), b(42), c(43);
  std::vector<std::uint64_t> sa, sb, sc;
  for (int i = 0; i < 100; ++i) {
    sa.push_back(a.next_u64());
    sb.push_back(b.next_u64());
    sc.push_back(c.next_u64());
  }
  CHECK(sa == sb);
  CHECK(sa != sc);
}

TEST_CASE("Rng::below stays in range and is roughly uniform", "[core][rng]") {
  ctnn::Rng r(7);
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{10},
                          std::uint64_t{1000}, (std::uint64_t{1} << 63) + 1, kMax}) {
    for (int i = 0; i < 1000; ++i) REQUIRE(r.below(n) < n);
  }
  CHECK(r.below(1) == 0);
  CHECK_THROWS_AS(r.below(0), ctnn::Error);

  // 100000 draws over 10 bins: each bin's count has standard deviation about 95.
  std::array<int, 10> bins{};
  for (int i = 0; i < 100000; ++i) ++bins[r.below(10)];
  for (int count : bins) CHECK(std::abs(count - 10000) < 600);
}

TEST_CASE("Rng::uniform01 and uniform stay in their half-open ranges", "[core][rng]") {
  ctnn::Rng r(1);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform01();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(sum / 100000 == Approx(0.5).margin(0.01));  // standard error about 0.001
  for (int i = 0; i < 100000; ++i) {
    const float f = r.uniform(-0.25f, 0.75f);
    REQUIRE(f >= -0.25f);
    REQUIRE(f < 0.75f);
    const float tiny = r.uniform(1.0f, 1.0000001f);  // two adjacent floats: always lo
    REQUIRE(tiny == 1.0f);
  }
  CHECK(r.uniform(3.0f, 3.0f) == 3.0f);
}

TEST_CASE("shuffle permutes, is seeded, and handles short inputs", "[core][rng]") {
  std::vector<int> base(50);
  std::iota(base.begin(), base.end(), 0);
  const auto shuffled = [&base](std::uint64_t seed) {
    std::vector<int> v = base;
    ctnn::Rng r(seed);
    ctnn::shuffle(v, r);
    return v;
  };
  const std::vector<int> a = shuffled(5);
  CHECK(a != base);
  CHECK(std::is_permutation(a.begin(), a.end(), base.begin()));
  CHECK(shuffled(5) == a);
  CHECK(shuffled(6) != a);

  ctnn::Rng r(0);
  std::vector<int> empty, one{7};
  ctnn::shuffle(empty, r);
  ctnn::shuffle(std::span<int>(one), r);
  CHECK(one == std::vector<int>{7});
}
