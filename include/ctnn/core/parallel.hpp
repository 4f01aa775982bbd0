// ctnn/core/parallel.hpp: the one place ctnn uses OpenMP.
//
// parallel_for_range(n, f) splits [0, n) into one contiguous chunk per thread (static schedule) and
// calls f(begin, end) on each. It runs serially when n is small, when `worth_it` is false, or when
// called from inside an OpenMP parallel region (a user's `#pragma omp parallel` calling ctnn does
// not nest teams). Called from several std::threads at once, each call opens its own team (libgomp
// keeps one thread pool per calling thread): correct, but up to threads x max_threads() busy
// threads; a server predicting from many threads calls set_num_threads(1) in each of them (it sets
// the calling thread's count only) or runs with OMP_NUM_THREADS=1. Kernels make every output
// element the work of exactly one chunk and never sum across chunks, so results do not depend on
// the thread count (tests/core/test_concurrency.cpp checks the bits).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ctnn {

// Number of threads ctnn's parallel regions use.
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Sets the thread count for later parallel regions started by the calling thread (like
// OMP_NUM_THREADS, which sets it for every thread).
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// The largest team any ctnn parallel region has run with since the last reset_widest_team(): lets
// a test check that a run "at n threads" really used n, and that a call from inside a parallel
// region opened no team of its own. One relaxed atomic per region, next to a region's microseconds.
inline std::atomic<int>& widest_team_counter() {
  static std::atomic<int> widest{1};
  return widest;
}
inline int widest_team() { return widest_team_counter().load(std::memory_order_relaxed); }
inline void reset_widest_team() { widest_team_counter().store(1, std::memory_order_relaxed); }

// Work (in multiply-adds or elements) below which a parallel region costs more than it saves:
// waking a second thread and the closing barrier take microseconds, more under load.
inline constexpr std::size_t kParallelWork = std::size_t{1} << 16;

template <class F>
void parallel_for_range(std::size_t n, F&& f, bool worth_it = true) {
  if (n == 0) return;
#ifdef _OPENMP
  const int threads = max_threads();
  if (worth_it && n > 1 && threads > 1 && !in_parallel_region()) {
    const std::size_t chunks = std::min<std::size_t>(n, static_cast<std::size_t>(threads));
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(chunks))
    for (std::size_t c = 0; c < chunks; ++c) {
      if (c == 0) {
        const int team = omp_get_num_threads();
        auto& widest = widest_team_counter();
        int seen = widest.load(std::memory_order_relaxed);
        while (team > seen && !widest.compare_exchange_weak(seen, team, std::memory_order_relaxed)) {
        }
      }
      const std::size_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      f(begin, end);
    }
    return;
  }
#endif
  (void)worth_it;
  f(std::size_t{0}, n);
}

// Calls f(i) for each i in [0, n), in parallel chunks.
template <class F>
void parallel_for(std::size_t n, F&& f, bool worth_it = true) {
  parallel_for_range(
      n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) f(i);
      },
      worth_it);
}

}  // namespace ctnn
