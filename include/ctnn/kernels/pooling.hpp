// ctnn/kernels/pooling.hpp: reductions over the positions of a channels-last tensor (global
// pooling): x is rows x cols (positions x channels), the result one value per column.
//
// Vectors run along the channels, contiguous in memory; each column's values are combined in row
// order, one row after another, so a result does not depend on the vector width or the thread
// count (and equals the scalar loop over rows bit for bit). Full vectors use the native tag and
// the tail a one-lane tag: the same code for both, no scalar copy of the math.
#pragma once
#include <cstddef>

#include "ctnn/kernels/highway.hpp"

HWY_BEFORE_NAMESPACE();
namespace ctnn::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[j] = f(d, column j's accumulator over rows) for every column, the accumulator starting at
// row 0 and folding each later row r in with acc = step(d, acc, x[r][j]).
template <class T, class Step, class Finish>
HWY_INLINE void fold_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x,
                          T* HWY_RESTRICT out, Step step, Finish finish) {
  const auto one_column_block = [&](auto d, std::size_t j) {
    auto acc = hn::LoadU(d, x + j);
    for (std::size_t r = 1; r < rows; ++r) acc = step(d, acc, hn::LoadU(d, x + r * cols + j));
    hn::StoreU(finish(d, acc), d, out + j);
  };
  const hn::ScalableTag<T> d;
  const std::size_t L = hn::Lanes(d);
  const std::size_t full = cols - cols % L;  // (j + L <= cols) trips a false g++ 12 warning
  std::size_t j = 0;
  for (; j < full; j += L) one_column_block(d, j);
  const hn::CappedTag<T, 1> d1;
  for (; j < cols; ++j) one_column_block(d1, j);
}

// out[j] = (x[0][j] + x[1][j] + ... + x[rows-1][j]) / rows, summed in row order. rows >= 1.
template <class T>
void mean_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  const T count = T(rows);
  fold_rows(rows, cols, x, out, [](auto, auto acc, auto v) { return hn::Add(acc, v); },
            [count](auto d, auto acc) { return hn::Div(acc, hn::Set(d, count)); });
}

// out[j] = max over rows of x[r][j]; a NaN anywhere in the column makes it NaN (as PyTorch's
// max pooling). Not Max(acc, v): on x86 it returns the second operand when either is NaN, so a
// NaN met early would be lost. The compare + blend keeps acc unless v is greater or NaN; once acc
// is NaN, no comparison is true and it stays NaN. (IsNaN, not Ne(v, v): Highway's Ne is the
// ordered compare on x86, false for NaN.) rows >= 1.
template <class T>
void max_rows(std::size_t rows, std::size_t cols, const T* HWY_RESTRICT x, T* HWY_RESTRICT out) {
  fold_rows(rows, cols, x, out,
            [](auto, auto acc, auto v) {
              return hn::IfThenElse(hn::Or(hn::Gt(v, acc), hn::IsNaN(v)), v, acc);
            },
            [](auto, auto acc) { return acc; });
}

}  // namespace ctnn::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace ctnn::kernels {
using ctnn::HWY_NAMESPACE::max_rows;
using ctnn::HWY_NAMESPACE::mean_rows;
}  // namespace ctnn::kernels
