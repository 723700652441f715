// bindery/core/indexer.hpp — linear index -> element offset for strided (non-contiguous) tensors.
//
// Kernels walk their OUTPUT in row-major order; every strided input gets an Indexer that turns the
// output's linear index into that input's element offset. Broadcast axes simply have stride 0.
// Plain data (no pointers, no std containers) so a copy can be passed by value to a CUDA kernel.
#pragma once

#include <cstdint>

#include "bindery/config.hpp"
#include "bindery/core/shape.hpp"

namespace bindery {

/// Highest rank a strided kernel handles after merging adjacent axes (collapse_axes below).
inline constexpr int kMaxKernelRank = 8;

struct Indexer {
  int32_t rank = 0;
  int64_t sizes[kMaxKernelRank] = {};
  int64_t strides[kMaxKernelRank] = {};

  BINDERY_HOST_DEVICE int64_t operator()(int64_t linear) const {
    int64_t offset = 0;
    for (int32_t d = rank - 1; d >= 0; --d) {
      const int64_t index = linear % sizes[d];
      linear /= sizes[d];
      offset += index * strides[d];
    }
    return offset;
  }
};

/// Builds Indexers for several tensors that share one logical `shape`, merging adjacent axes that
/// are contiguous with each other in EVERY tensor (fewer divisions per element, and rank <= 8 for
/// almost any real view). Throws ShapeError when more than kMaxKernelRank axes remain.
template <size_t N>
inline void make_indexers(const Shape& shape, const Strides* const (&strides)[N], Indexer (&out)[N]) {
  int64_t sizes[64];
  int64_t merged[N][64];
  int rank = 0;
  BINDERY_CHECK(shape.rank() <= 64, ShapeError, "rank ", shape.rank(), " of shape ", shape, " exceeds 64");
  for (int64_t d = 0; d < shape.rank(); ++d) {
    if (shape[d] == 1) continue;  // a size-1 axis never moves the offset
    bool can_merge = rank > 0;
    for (size_t t = 0; t < N && can_merge; ++t) {
      can_merge = merged[t][rank - 1] == (*strides[t])[static_cast<size_t>(d)] * shape[d];
    }
    if (can_merge) {
      sizes[rank - 1] *= shape[d];
      for (size_t t = 0; t < N; ++t) merged[t][rank - 1] = (*strides[t])[static_cast<size_t>(d)];
    } else {
      sizes[rank] = shape[d];
      for (size_t t = 0; t < N; ++t) merged[t][rank] = (*strides[t])[static_cast<size_t>(d)];
      ++rank;
    }
  }
  BINDERY_CHECK(rank <= kMaxKernelRank, ShapeError, "strided view of shape ", shape, " needs ", rank,
                " axes after merging; kernels support ", kMaxKernelRank, " (call contiguous() first)");
  for (size_t t = 0; t < N; ++t) {
    out[t].rank = rank;
    for (int d = 0; d < rank; ++d) {
      out[t].sizes[d] = sizes[d];
      out[t].strides[d] = merged[t][d];
    }
  }
}

/// An Indexer split into rows: `outer` walks the rows (all axes but the innermost merged one) and
/// each row is `inner` elements `inner_stride` apart. Kernels that loop over rows pay the index
/// divisions once per row instead of once per element, and the inner loop vectorizes.
struct RowIndexer {
  Indexer outer;
  int64_t inner = 1;
  int64_t inner_stride = 0;
};

inline RowIndexer split_rows(const Indexer& index) {
  RowIndexer rows;
  if (index.rank == 0) return rows;
  rows.outer.rank = index.rank - 1;
  for (int32_t d = 0; d + 1 < index.rank; ++d) {
    rows.outer.sizes[d] = index.sizes[d];
    rows.outer.strides[d] = index.strides[d];
  }
  rows.inner = index.sizes[index.rank - 1];
  rows.inner_stride = index.strides[index.rank - 1];
  return rows;
}

}  // namespace bindery
