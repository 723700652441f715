// bindery/ops/detail/cpu_rows.hpp — the Cpu kernels' shared row / column-slab traversal.
//
// Axis-wise kernels (softmax, log_softmax, L2 normalization, the symmetric cross-entropy's column
// pass) see their data as (outer, len, inner) around one axis. When the axis is the last one
// (inner == 1) each of the `outer` rows is contiguous and is mapped as one Eigen array; otherwise
// the data is walked in column slabs: up to kColumnSlab adjacent columns at once, all `len` entries
// of each, vectorized across the slab — no transpose copy either way. The traversal lives here once;
// the kernels supply only what they compute per row and per slab.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include <Eigen/Core>

#include "bindery/backend/cpu.hpp"

namespace bindery::ops::detail::cpu {

template <class T>
using Column = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using RowVector = Eigen::Array<T, 1, Eigen::Dynamic>;
template <class T>
using ConstRowMap = Eigen::Map<const Column<T>>;
template <class T>
using RowMap = Eigen::Map<Column<T>>;
/// (rows, cols) row-major block whose rows are `stride` elements apart.
template <class T>
using ConstBlockMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                                 Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using BlockMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                            Eigen::Unaligned, Eigen::OuterStride<>>;

/// Sets the entries below the smallest normal number to exactly 0. Eigen's vectorized exp returns
/// a tiny denormal rather than 0 for exp(-inf): weights of masked (-inf) logits must be exactly 0,
/// and denormals would slow down the GEMMs that read them. One cheap vectorized pass.
template <class T>
inline void flush_tiny(T* y, int64_t n) {
  const T tiny = std::numeric_limits<T>::min();
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] < tiny ? T(0) : y[i];
}

/// Rows per parallel task so one task touches about `work` elements.
inline int64_t row_grain(int64_t row_length, int64_t work = 16384) {
  return std::max<int64_t>(1, work / std::max<int64_t>(row_length, 1));
}

/// Columns per task when the axis is not the last one: 64 floats are four AVX-512 vectors per row.
inline constexpr int64_t kColumnSlab = 64;

/// One column slab of (outer, len, inner) data: `width` columns from column `column` of outer block
/// `outer`; its entry (j, c) (j < len, c < width) is at `base + j * inner + c`.
struct Slab {
  int64_t outer, column, width, base;
};

/// row(r) for each of `outer` contiguous rows of `len` elements, about 16384 elements per task.
template <class RowFn>
void for_each_row(int64_t outer, int64_t len, const RowFn& row) {
  Cpu::for_each(outer, row, row_grain(len));
}

/// slab(Slab) for every column slab of (outer, len, inner) data, slabs of one outer block in order.
template <class SlabFn>
void for_each_slab(int64_t outer, int64_t len, int64_t inner, const SlabFn& slab) {
  const int64_t slabs = (inner + kColumnSlab - 1) / kColumnSlab;
  Cpu::for_each(
      outer * slabs,
      [&](int64_t task) {
        const int64_t o = task / slabs, c0 = (task % slabs) * kColumnSlab;
        slab(Slab{o, c0, std::min(kColumnSlab, inner - c0), o * len * inner + c0});
      },
      row_grain(len * kColumnSlab));
}

/// The axis-wise traversal: rows when the axis is the last one (inner == 1), column slabs otherwise.
template <class RowFn, class SlabFn>
void for_each_row_or_slab(int64_t outer, int64_t len, int64_t inner, const RowFn& row, const SlabFn& slab) {
  if (inner == 1) {
    for_each_row(outer, len, row);
  } else {
    for_each_slab(outer, len, inner, slab);
  }
}

}  // namespace bindery::ops::detail::cpu
