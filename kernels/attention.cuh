// kernels/attention.cuh — AttentionKernel<Cuda>: fused scaled dot-product attention (ops/attention.hpp).
//
// The Cpu kernel's contract (AttentionArgs: broadcast batch Indexers, unit-stride rows, additive
// mask with its gradient, logsumexp saved per query row; a fully masked row gives zeros, lse = +inf
// and zero gradients) with FlashAttention-2's schedule on CUDA cores (fp32 or fp64 math, no tensor
// cores), written against the Block policy of common.cuh so that tests run it on the host:
// - Thread layout: 256 threads as a 16 × 16 grid, ty = thread / 16, tx = thread % 16. In every tile
//   product a thread owns the rows ty + 16 i and the columns tx + 16 j, so a warp reads two rows of
//   the left operand (broadcasts) and 16 consecutive columns, or 16 rows, of the right one. Tiles
//   in shared memory have an odd row stride (width | 1): 16 rows read at one column hit 16 banks.
// - Forward (AttentionForwardTiles): a block per (batch item, Br query rows), Br = 64 (fp32) or 32
//   (fp64); K and V stream through shared memory in tiles of Bc = 32 keys. Per key tile, three
//   phases (its member functions scores, online_softmax, accumulate): (1) S = scale Q Kᵀ + mask (-inf past
//   the ends) into shared memory, each thread's row maxima, and V staged; (2) online softmax, 256 / Br
//   threads per row: m_new = max(m, rowmax S), P = exp(S - m_new), partial row sums, rescale exp(m - m_new);
//   (3) O = rescale O + P V in registers (kMaxHead / 16 columns × Br / 16 rows per thread), l updated, the
//   next K tile staged. Finally O / l and lse = m + log l (zeros and +inf where l = 0, i.e. a fully masked
//   row: write_rows).
// - Backward, P recomputed as exp(S - lse), dS = P ∘ (dO Vᵀ - D), three launches, each output
//   element with exactly one writer (no atomics, deterministic):
//     AttentionRowDot        one warp per query row: D = rowsum(dO ∘ O);
//     AttentionBackwardQueryTiles  a block per (batch item, 32 query rows), Q, dO, lse and D staged
//                            once, K and V streamed in tiles of 32 keys: dQ = scale dS K in
//                            registers, dMask = dS written as it is formed;
//     AttentionBackwardKeyTiles    a block per (batch item, 32 keys), K and V staged once, Q, dO,
//                            lse and D streamed in tiles of 32 rows: dV = Pᵀ dO and dK = scale dSᵀ Q
//                            in registers.
// - Shared memory (dynamic; bytes for D = Dv = 64 / 128): forward fp32 47,872 / 80,640, fp64
//   65,536 / 114,688; backward query pass fp32 37,760 / 70,528, key pass fp32 41,984 / 74,752 (fp64
//   twice those). Mostly the staged tiles (Br + 2 Bc rows of D or Dv), then the (Br × Bc) score
//   tile; fp32 blocks with D = 128 still fit at least twice per H100 multiprocessor (228 KiB), fp64
//   ones once. launch_blocks opts in above 48 KiB; a device whose limit is lower gets the fallback.
// - Register accumulators are sized by a compile-time head bound, kMaxHead = 64 or 128 (the larger
//   of D and Dv rounded up; any D and Dv up to it work). __launch_bounds__(256, 2) keeps the fp32
//   kernels at <= 128 registers a thread (ptxas for sm_90: no spills), two blocks per multiprocessor. Beyond
//   128, or when a block's shared memory exceeds the device's limit, the thread-per-row kernels below take
//   over: one thread per query row streaming keys with an online softmax (forward), one per query row (D, dQ,
//   dMask) and one per key row (dK, dV) for backward.
// Why: the thread-per-row kernels read every key and value once per query row from global memory;
// a tile staged in shared memory is reused by Br rows, and the work per block is a small GEMM.
// AttentionKernel<Cuda> picks the kernels through attention_forward / attention_backward, written
// against a Launch policy (CudaLaunch here; tests/cuda/test_kernels_host.cu runs them with
// HostLaunch, every block emulated phase by phase). Only a GPU run checks the barriers' placement
// against real concurrency, the launches and the speed (scripts/gpu-check.sh).
#pragma once

#include <algorithm>
#include <cmath>

#include "bindery/ops/attention.hpp"
#include "common.cuh"

namespace bindery::kernels {

// ---- the thread-per-row kernels (fallback for heads over 128) ------------------------------------

/// Keys (forward, backward pass 1) or query rows (backward pass 2) per tile.
inline constexpr int kAttentionTile = 32;

template <class T>
struct AttentionForwardRows {  // one query row (b, i) per call
  ops::AttentionArgs<T> a;
  T* out;  // (batch, Lq, Dv)
  T* lse;  // (batch, Lq)
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t b = item / a.lq, i = item - b * a.lq;
    const T* qi = a.q + a.q_batch(b) + i * a.q_row;
    const T* kb = a.k + a.k_batch(b);
    const T* vb = a.v + a.v_batch(b);
    const T* mi = a.mask != nullptr ? a.mask + a.mask_batch(b) + i * a.mask_row : nullptr;
    T* oi = out + item * a.dv;
    for (int64_t d = 0; d < a.dv; ++d) oi[d] = T(0);
    const T neg_inf = -infinity_of<T>();
    T max = neg_inf, sum = T(0);
    T p[kAttentionTile];
    for (int64_t j0 = 0; j0 < a.lk; j0 += kAttentionTile) {
      const int width = static_cast<int>(min_of<int64_t>(kAttentionTile, a.lk - j0));
      T tile_max = neg_inf;
      for (int t = 0; t < width; ++t) {
        const T* kj = kb + (j0 + t) * a.k_row;
        T dot = T(0);
        for (int64_t d = 0; d < a.d; ++d) dot += qi[d] * kj[d];
        T s = a.scale * dot;
        if (mi != nullptr) s += mi[(j0 + t) * a.mask_col];
        p[t] = s;
        tile_max = max_of(tile_max, s);
      }
      const T new_max = max_of(max, tile_max);
      if (new_max == neg_inf) continue;           // every key so far masked out: no weight yet
      const T rescale = std::exp(max - new_max);  // 0 when the old max was -inf
      T tile_sum = T(0);
      for (int t = 0; t < width; ++t) {
        p[t] = std::exp(p[t] - new_max);
        tile_sum += p[t];
      }
      sum = sum * rescale + tile_sum;
      max = new_max;
      for (int64_t d = 0; d < a.dv; ++d) {
        T acc = oi[d] * rescale;
        for (int t = 0; t < width; ++t) acc += p[t] * vb[(j0 + t) * a.v_row + d];
        oi[d] = acc;
      }
    }
    if (sum > T(0)) {
      const T inverse = T(1) / sum;
      for (int64_t d = 0; d < a.dv; ++d) oi[d] *= inverse;
      lse[item] = max + std::log(sum);
    } else {  // a fully masked row: zero output, and +inf makes every recomputed P zero
      for (int64_t d = 0; d < a.dv; ++d) oi[d] = T(0);
      lse[item] = infinity_of<T>();
    }
  }
};

/// P and dS of one (query row i, key j) pair, recomputed from lse: the heart of both passes.
template <class T>
BINDERY_HOST_DEVICE inline void attention_recompute(const ops::AttentionArgs<T>& a, const T* qi, const T* kj,
                                                    const T* vj, const T* gi, T mask, T lse_i, T dot_i, T& p,
                                                    T& ds) {
  T s = T(0);
  for (int64_t d = 0; d < a.d; ++d) s += qi[d] * kj[d];
  s = a.scale * s + mask;
  p = std::exp(s - lse_i);  // P = exp(S - lse): 0 for a masked key or a fully masked row
  T dp = T(0);
  for (int64_t d = 0; d < a.dv; ++d) dp += gi[d] * vj[d];
  ds = p * (dp - dot_i);  // dS = P ∘ (dP - rowsum(dO ∘ O))
}

template <class T>
struct AttentionBackwardQueryRows {  // pass 1: one query row (b, i) per call
  ops::AttentionArgs<T> a;
  const T* out;
  const T* lse;
  const T* dout;
  T* row_dot;  // (batch, Lq): rowsum(dO ∘ O), read by pass 2
  T* dq;       // (batch, Lq, D) or null
  T* dmask;    // (batch, Lq, Lk) or null
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t b = item / a.lq, i = item - b * a.lq;
    const T* gi = dout + item * a.dv;
    const T* oi = out + item * a.dv;
    T dot = T(0);
    for (int64_t d = 0; d < a.dv; ++d) dot += gi[d] * oi[d];
    row_dot[item] = dot;
    if (dq == nullptr && dmask == nullptr) return;
    const T* qi = a.q + a.q_batch(b) + i * a.q_row;
    const T* kb = a.k + a.k_batch(b);
    const T* vb = a.v + a.v_batch(b);
    const T* mi = a.mask != nullptr ? a.mask + a.mask_batch(b) + i * a.mask_row : nullptr;
    T* dqi = dq != nullptr ? dq + item * a.d : nullptr;
    if (dqi != nullptr) {
      for (int64_t d = 0; d < a.d; ++d) dqi[d] = T(0);
    }
    const T lse_i = lse[item];
    T ds[kAttentionTile];
    for (int64_t j0 = 0; j0 < a.lk; j0 += kAttentionTile) {
      const int width = static_cast<int>(min_of<int64_t>(kAttentionTile, a.lk - j0));
      for (int t = 0; t < width; ++t) {
        const int64_t j = j0 + t;
        T p;
        attention_recompute(a, qi, kb + j * a.k_row, vb + j * a.v_row, gi,
                            mi != nullptr ? mi[j * a.mask_col] : T(0), lse_i, dot, p, ds[t]);
        if (dmask != nullptr) dmask[item * a.lk + j] = ds[t];
      }
      if (dqi == nullptr) continue;
      for (int64_t d = 0; d < a.d; ++d) {
        T acc = T(0);
        for (int t = 0; t < width; ++t) acc += ds[t] * kb[(j0 + t) * a.k_row + d];
        dqi[d] += a.scale * acc;  // dQ += scale dS K
      }
    }
  }
};

template <class T>
struct AttentionBackwardKeyRows {  // pass 2: one key row (b, j) per call
  ops::AttentionArgs<T> a;
  const T* lse;
  const T* dout;
  const T* row_dot;
  T* dk;  // (batch, Lk, D) or null
  T* dv;  // (batch, Lk, Dv) or null
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t b = item / a.lk, j = item - b * a.lk;
    const T* qb = a.q + a.q_batch(b);
    const T* kj = a.k + a.k_batch(b) + j * a.k_row;
    const T* vj = a.v + a.v_batch(b) + j * a.v_row;
    const T* mb = a.mask != nullptr ? a.mask + a.mask_batch(b) + j * a.mask_col : nullptr;
    T* dkj = dk != nullptr ? dk + item * a.d : nullptr;
    T* dvj = dv != nullptr ? dv + item * a.dv : nullptr;
    if (dkj != nullptr) {
      for (int64_t d = 0; d < a.d; ++d) dkj[d] = T(0);
    }
    if (dvj != nullptr) {
      for (int64_t d = 0; d < a.dv; ++d) dvj[d] = T(0);
    }
    T p[kAttentionTile], ds[kAttentionTile];
    for (int64_t i0 = 0; i0 < a.lq; i0 += kAttentionTile) {
      const int height = static_cast<int>(min_of<int64_t>(kAttentionTile, a.lq - i0));
      for (int t = 0; t < height; ++t) {
        const int64_t i = i0 + t, row = b * a.lq + i;
        attention_recompute(a, qb + i * a.q_row, kj, vj, dout + row * a.dv,
                            mb != nullptr ? mb[i * a.mask_row] : T(0), lse[row], row_dot[row], p[t], ds[t]);
      }
      if (dvj != nullptr) {
        for (int64_t d = 0; d < a.dv; ++d) {
          T acc = T(0);
          for (int t = 0; t < height; ++t) acc += p[t] * dout[(b * a.lq + i0 + t) * a.dv + d];
          dvj[d] += acc;  // dV += Pᵀ dO
        }
      }
      if (dkj != nullptr) {
        for (int64_t d = 0; d < a.d; ++d) {
          T acc = T(0);
          for (int t = 0; t < height; ++t) acc += ds[t] * qb[(i0 + t) * a.q_row + d];
          dkj[d] += a.scale * acc;  // dK += scale dSᵀ Q
        }
      }
    }
  }
};

// ---- the tiled kernels ---------------------------------------------------------------------------

/// The thread grid of every tiled kernel: kThreads = kSide × kSide threads (see the file comment).
inline constexpr int kAttentionThreads = 256;
inline constexpr int kAttentionSide = 16;
/// Blocks per multiprocessor the registers are budgeted for (__launch_bounds__): 2 (128 registers a
/// thread) for fp32, 1 for fp64.
template <class T>
inline constexpr int kAttentionMinBlocks = sizeof(T) == 4 ? 2 : 1;

/// Row stride of a tile in shared memory: the width made odd (bank-conflict free column reads).
BINDERY_HOST_DEVICE inline int attention_stride(int64_t width) {
  return static_cast<int>(width) | 1;
}

/// Stages rows [first, first + rows) of a (len, width) matrix whose rows are `stride` apart into
/// shared memory rows `ld` apart; rows at or past len become zeros. Consecutive threads copy
/// consecutive elements of a row (coalesced reads).
template <class T>
BINDERY_HOST_DEVICE inline void attention_stage(T* dst, int ld, const T* src, int64_t stride, int64_t first,
                                                int64_t len, int rows, int width, int thread) {
  for (int e = thread; e < rows * width; e += kAttentionThreads) {
    const int r = e / width, c = e - r * width;
    dst[r * ld + c] = first + r < len ? src[(first + r) * stride + c] : T(0);
  }
}

/// Stages values [first, first + count) of a vector; entries at or past len become `fill`.
template <class T>
BINDERY_HOST_DEVICE inline void attention_stage_values(T* dst, const T* src, int64_t first, int64_t len,
                                                       int count, T fill, int thread) {
  for (int e = thread; e < count; e += kAttentionThreads) dst[e] = first + e < len ? src[first + e] : fill;
}

/// Forward: one block per (batch item, kBr query rows); see the file comment for the phases.
template <class T, int kMaxHead>
struct AttentionForwardTiles {
  static constexpr int kThreads = kAttentionThreads, kSide = kAttentionSide;
  static constexpr int kMinBlocks = kAttentionMinBlocks<T>;
  static constexpr int kRows = sizeof(T) == 4 ? 4 : 2;  // query rows per thread
  static constexpr int kBr = kSide * kRows;             // query rows per block
  static constexpr int kKeys = 2;                       // keys per thread in a score tile
  static constexpr int kBc = kSide * kKeys;             // keys per tile
  static constexpr int kCols = kMaxHead / kSide;        // output columns per thread
  static constexpr int kSplit = kThreads / kBr;         // threads per row in the softmax phase
  static constexpr int kSpan = kBc / kSplit;            // keys per thread there
  static_assert(kMaxHead % kSide == 0 && kThreads % kBr == 0 && kBc % kSplit == 0);

  struct Registers {
    T o[kRows][kCols];  // unnormalized output, rows ty + 16 i, columns tx + 16 j
  };

  /// Offsets into shared memory, in elements of T.
  struct Layout {
    int ld_qk, ld_v, ld_s;
    int q, k, v, s, part_max, part_sum, max, sum, rescale, size;
    BINDERY_HOST_DEVICE Layout(int64_t d, int64_t dv)
        : ld_qk(attention_stride(d)), ld_v(attention_stride(dv)), ld_s(attention_stride(kBc)) {
      q = 0;                              // (kBr, ld_qk)
      k = q + kBr * ld_qk;                // (kBc, ld_qk)
      v = k + kBc * ld_qk;                // (kBc, ld_v)
      s = v + kBc * ld_v;                 // (kBr, ld_s): scores, then probabilities
      part_max = s + kBr * ld_s;          // (kBr, kSide): each tx's maximum of a row
      part_sum = part_max + kBr * kSide;  // (kBr, kSplit): each softmax thread's sum of a row
      max = part_sum + kBr * kSplit;      // (2, kBr): running max, by key tile parity
      sum = max + 2 * kBr;                // (kBr): running sum l
      rescale = sum + kBr;                // (kBr): exp(m_old - m_new) of the current tile
      size = rescale + kBr;
    }
  };
  static size_t shared_bytes(int64_t d, int64_t dv) {
    return static_cast<size_t>(Layout(d, dv).size) * sizeof(T);
  }
  static int64_t tiles(const ops::AttentionArgs<T>& a) { return a.batch * ((a.lq + kBr - 1) / kBr); }

  ops::AttentionArgs<T> a;
  T* out;  // (batch, Lq, Dv)
  T* lse;  // (batch, Lq)

  /// One block's pointers: its batch item b and first query row i0, the shared-memory arrays (see
  /// Layout) and the batch item's rows of Q, K, V and the mask (null when there is none).
  struct Tile {
    int64_t b, i0;
    int d, dv, ld_qk, ld_v, ld_s;
    T *qs, *ks, *vs, *ss, *part_max, *part_sum, *row_max, *row_sum, *rescale;
    const T *qb, *kb, *vb, *mb;
  };

  template <class Block>
  BINDERY_HOST_DEVICE void operator()(Block& block, int64_t index) const {
    const Tile tile = tile_at(block, index);
    stage_first_tiles(block, tile);
    int parity = 0;  // row_max + parity * kBr holds the running max before the current key tile
    for (int64_t j0 = 0; j0 < a.lk; j0 += kBc, parity ^= 1) {
      scores(block, tile, j0);
      online_softmax(block, tile, parity);
      accumulate(block, tile, j0);
    }
    write_rows(block, tile, parity);
  }

  /// The pointers of block `index` (batch item index / row tiles, query row tile index % row tiles).
  template <class Block>
  BINDERY_HOST_DEVICE Tile tile_at(Block& block, int64_t index) const {
    const int64_t row_tiles = (a.lq + kBr - 1) / kBr;
    const int64_t b = index / row_tiles, i0 = (index - b * row_tiles) * kBr;
    const Layout l(a.d, a.dv);
    T* const shared = static_cast<T*>(block.shared());
    return Tile{b,
                i0,
                static_cast<int>(a.d),
                static_cast<int>(a.dv),
                l.ld_qk,
                l.ld_v,
                l.ld_s,
                shared + l.q,
                shared + l.k,
                shared + l.v,
                shared + l.s,
                shared + l.part_max,
                shared + l.part_sum,
                shared + l.max,
                shared + l.sum,
                shared + l.rescale,
                a.q + a.q_batch(b),
                a.k + a.k_batch(b),
                a.v + a.v_batch(b),
                a.mask != nullptr ? a.mask + a.mask_batch(b) : nullptr};
  }

  /// Stage the query tile and the first key tile; reset the row statistics and the output.
  template <class Block>
  BINDERY_HOST_DEVICE void stage_first_tiles(Block& block, const Tile& tile) const {
    const T neg_inf = -infinity_of<T>();
    block.each([=, this](int t, Registers& r) {
      attention_stage(tile.qs, tile.ld_qk, tile.qb, a.q_row, tile.i0, a.lq, kBr, tile.d, t);
      attention_stage(tile.ks, tile.ld_qk, tile.kb, a.k_row, 0, a.lk, kBc, tile.d, t);
      if (t < kBr) {
        tile.row_max[t] = neg_inf;
        tile.row_sum[t] = T(0);
      }
      for (int i = 0; i < kRows; ++i) {
        for (int j = 0; j < kCols; ++j) r.o[i][j] = T(0);
      }
    });
    block.sync();
  }

  /// Phase (1) of key tile j0: S = scale Q Kᵀ + mask (-inf past the ends), each thread's row maxima;
  /// stage V.
  template <class Block>
  BINDERY_HOST_DEVICE void scores(Block& block, const Tile& tile, int64_t j0) const {
    const T neg_inf = -infinity_of<T>();
    block.each([=, this](int t, Registers&) {
      attention_stage(tile.vs, tile.ld_v, tile.vb, a.v_row, j0, a.lk, kBc, tile.dv, t);
      const int ty = t / kSide, tx = t % kSide;
      T acc[kRows][kKeys] = {};
      for (int c = 0; c < tile.d; ++c) {
        T qv[kRows], kv[kKeys];
        for (int i = 0; i < kRows; ++i) qv[i] = tile.qs[(ty + kSide * i) * tile.ld_qk + c];
        for (int j = 0; j < kKeys; ++j) kv[j] = tile.ks[(tx + kSide * j) * tile.ld_qk + c];
        for (int i = 0; i < kRows; ++i) {
          for (int j = 0; j < kKeys; ++j) acc[i][j] += qv[i] * kv[j];
        }
      }
      for (int i = 0; i < kRows; ++i) {
        const int row = ty + kSide * i;
        const int64_t gi = tile.i0 + row;
        T m = neg_inf;
        for (int j = 0; j < kKeys; ++j) {
          const int col = tx + kSide * j;
          const int64_t gj = j0 + col;
          T s = neg_inf;
          if (gi < a.lq && gj < a.lk) {
            s = a.scale * acc[i][j];
            if (tile.mb != nullptr) s += tile.mb[gi * a.mask_row + gj * a.mask_col];
          }
          tile.ss[row * tile.ld_s + col] = s;
          m = max_of(m, s);
        }
        tile.part_max[row * kSide + tx] = m;
      }
    });
    block.sync();
  }

  /// Phase (2): online softmax, kSplit threads per row, kSpan keys each: P = exp(S - m_new) in
  /// place of S, partial row sums, the new running max (by `parity`) and the rescale factor.
  template <class Block>
  BINDERY_HOST_DEVICE void online_softmax(Block& block, const Tile& tile, int parity) const {
    const T neg_inf = -infinity_of<T>();
    block.each([=](int t, Registers&) {
      const int row = t / kSplit, part = t % kSplit;
      T tile_max = neg_inf;
      for (int x = 0; x < kSide; ++x) tile_max = max_of(tile_max, tile.part_max[row * kSide + x]);
      const T old_max = tile.row_max[parity * kBr + row], new_max = max_of(old_max, tile_max);
      T* const sr = tile.ss + row * tile.ld_s + part * kSpan;
      T sum = T(0);
      if (new_max == neg_inf) {  // every key so far masked out: no weight yet
        for (int c = 0; c < kSpan; ++c) sr[c] = T(0);
      } else {
        for (int c = 0; c < kSpan; ++c) {
          const T p = std::exp(sr[c] - new_max);
          sr[c] = p;
          sum += p;
        }
      }
      tile.part_sum[row * kSplit + part] = sum;
      if (part == 0) {
        tile.row_max[(parity ^ 1) * kBr + row] = new_max;
        tile.rescale[row] = new_max == neg_inf ? T(1) : std::exp(old_max - new_max);  // 0 after a -inf max
      }
    });
    block.sync();
  }

  /// Phase (3) of key tile j0: O = rescale O + P V, l = rescale l + rowsum P; stage the next K tile.
  template <class Block>
  BINDERY_HOST_DEVICE void accumulate(Block& block, const Tile& tile, int64_t j0) const {
    block.each([=, this](int t, Registers& r) {
      const int ty = t / kSide, tx = t % kSide;
      for (int i = 0; i < kRows; ++i) {
        const T f = tile.rescale[ty + kSide * i];
        for (int j = 0; j < kCols; ++j) r.o[i][j] *= f;
      }
      for (int c = 0; c < kBc; ++c) {
        T p[kRows];
        for (int i = 0; i < kRows; ++i) p[i] = tile.ss[(ty + kSide * i) * tile.ld_s + c];
        for (int j = 0; j < kCols; ++j) {
          const int col = tx + kSide * j;
          if (col < tile.dv) {
            const T v = tile.vs[c * tile.ld_v + col];
            for (int i = 0; i < kRows; ++i) r.o[i][j] += p[i] * v;
          }
        }
      }
      if (tx == 0) {
        for (int i = 0; i < kRows; ++i) {
          const int row = ty + kSide * i;
          T sum = T(0);
          for (int x = 0; x < kSplit; ++x) sum += tile.part_sum[row * kSplit + x];
          tile.row_sum[row] = tile.row_sum[row] * tile.rescale[row] + sum;
        }
      }
      if (j0 + kBc < a.lk)
        attention_stage(tile.ks, tile.ld_qk, tile.kb, a.k_row, j0 + kBc, a.lk, kBc, tile.d, t);
    });
    block.sync();
  }

  /// Normalize and write the rows (O / l) and their logsumexp (m + log l, with the max by `parity`);
  /// zeros and +inf for a fully masked row (l = 0).
  template <class Block>
  BINDERY_HOST_DEVICE void write_rows(Block& block, const Tile& tile, int parity) const {
    const int64_t lq = a.lq;
    block.each([=, this](int t, Registers& r) {
      const int ty = t / kSide, tx = t % kSide;
      for (int i = 0; i < kRows; ++i) {
        const int row = ty + kSide * i;
        if (tile.i0 + row >= lq) continue;
        const T sum = tile.row_sum[row];
        const T inverse = sum > T(0) ? T(1) / sum : T(0);
        T* const orow = out + (tile.b * lq + tile.i0 + row) * tile.dv;
        for (int j = 0; j < kCols; ++j) {
          const int col = tx + kSide * j;
          if (col < tile.dv) orow[col] = sum > T(0) ? r.o[i][j] * inverse : T(0);
        }
      }
      if (t < kBr && tile.i0 + t < lq) {  // a fully masked row: +inf makes every recomputed P zero
        const T sum = tile.row_sum[t];
        lse[tile.b * lq + tile.i0 + t] =
            sum > T(0) ? tile.row_max[parity * kBr + t] + std::log(sum) : infinity_of<T>();
      }
    });
    block.sync();
  }
};

/// One (query tile × key tile) pair of a backward pass, staged in shared memory: query rows (Q, dO,
/// lse, D) and key rows (K, V).
template <class T>
struct AttentionStagedPair {
  const T* q;    // (query rows, ld_qk)
  const T* g;    // dO: (query rows, ld_v)
  const T* lse;  // (query rows)
  const T* dot;  // D = rowsum(dO ∘ O): (query rows)
  const T* k;    // (key rows, ld_qk)
  const T* v;    // (key rows, ld_v)
  int ld_qk, ld_v;
};

/// P = exp(S - lse) and dS = P ∘ (dO Vᵀ - D) of a thread's entries: query rows ty + 16 i, keys
/// tx + 16 j of the tile pair at (i0, j0); zero past the ends.
template <int kRows, int kKeys, class T>
BINDERY_HOST_DEVICE inline void attention_tile_grads(const ops::AttentionArgs<T>& a, const T* mb,
                                                     const AttentionStagedPair<T>& st, int64_t i0, int64_t j0,
                                                     int ty, int tx, T (&p)[kRows][kKeys],
                                                     T (&ds)[kRows][kKeys]) {
  constexpr int kSide = kAttentionSide;
  T s[kRows][kKeys] = {}, dp[kRows][kKeys] = {};
  for (int c = 0; c < a.d; ++c) {  // Q Kᵀ
    T x[kRows], y[kKeys];
    for (int i = 0; i < kRows; ++i) x[i] = st.q[(ty + kSide * i) * st.ld_qk + c];
    for (int j = 0; j < kKeys; ++j) y[j] = st.k[(tx + kSide * j) * st.ld_qk + c];
    for (int i = 0; i < kRows; ++i) {
      for (int j = 0; j < kKeys; ++j) s[i][j] += x[i] * y[j];
    }
  }
  for (int c = 0; c < a.dv; ++c) {  // dP = dO Vᵀ
    T x[kRows], y[kKeys];
    for (int i = 0; i < kRows; ++i) x[i] = st.g[(ty + kSide * i) * st.ld_v + c];
    for (int j = 0; j < kKeys; ++j) y[j] = st.v[(tx + kSide * j) * st.ld_v + c];
    for (int i = 0; i < kRows; ++i) {
      for (int j = 0; j < kKeys; ++j) dp[i][j] += x[i] * y[j];
    }
  }
  for (int i = 0; i < kRows; ++i) {
    const int row = ty + kSide * i;
    const int64_t gi = i0 + row;
    for (int j = 0; j < kKeys; ++j) {
      const int64_t gj = j0 + tx + kSide * j;
      p[i][j] = T(0);
      ds[i][j] = T(0);
      if (gi < a.lq && gj < a.lk) {
        T logit = a.scale * s[i][j];
        if (mb != nullptr) logit += mb[gi * a.mask_row + gj * a.mask_col];
        p[i][j] = std::exp(logit - st.lse[row]);  // 0 for a masked key or a fully masked row
        ds[i][j] = p[i][j] * (dp[i][j] - st.dot[row]);
      }
    }
  }
}

/// D = rowsum(dO ∘ O): one warp per query row (launch_rows).
template <class T>
struct AttentionRowDot {
  const T* out;   // (rows, Dv)
  const T* dout;  // (rows, Dv)
  T* row_dot;     // (rows)
  int64_t dv;
  template <class Lanes>
  BINDERY_HOST_DEVICE void operator()(int64_t row, Lanes lanes) const {
    const T* o = out + row * dv;
    const T* g = dout + row * dv;
    T acc = T(0);
    for (int64_t c = lanes.index(); c < dv; c += lanes.count()) acc += o[c] * g[c];
    acc = lanes.sum(acc);
    if (lanes.index() == 0) row_dot[row] = acc;
  }
};

/// Backward, query side: one block per (batch item, kBr query rows) streams over the key tiles;
/// dQ = scale dS K accumulates in registers, dMask = dS is written as it is formed.
template <class T, int kMaxHead>
struct AttentionBackwardQueryTiles {
  static constexpr int kThreads = kAttentionThreads, kSide = kAttentionSide;
  static constexpr int kMinBlocks = kAttentionMinBlocks<T>;
  static constexpr int kRows = 2, kBr = kSide * kRows;  // query rows per thread, per block
  static constexpr int kKeys = 2, kBc = kSide * kKeys;  // keys per thread, per tile
  static constexpr int kCols = kMaxHead / kSide;        // dQ columns per thread
  static_assert(kMaxHead % kSide == 0);

  struct Registers {
    T dq[kRows][kCols];  // rows ty + 16 i, columns tx + 16 j
  };
  struct Layout {
    int ld_qk, ld_v, ld_s;
    int q, g, k, v, ds, lse, dot, size;
    BINDERY_HOST_DEVICE Layout(int64_t d, int64_t dv)
        : ld_qk(attention_stride(d)), ld_v(attention_stride(dv)), ld_s(attention_stride(kBc)) {
      q = 0;                  // (kBr, ld_qk)
      g = q + kBr * ld_qk;    // dO: (kBr, ld_v)
      k = g + kBr * ld_v;     // (kBc, ld_qk)
      v = k + kBc * ld_qk;    // (kBc, ld_v)
      ds = v + kBc * ld_v;    // (kBr, ld_s)
      lse = ds + kBr * ld_s;  // (kBr)
      dot = lse + kBr;        // (kBr)
      size = dot + kBr;
    }
  };
  static size_t shared_bytes(int64_t d, int64_t dv) {
    return static_cast<size_t>(Layout(d, dv).size) * sizeof(T);
  }
  static int64_t tiles(const ops::AttentionArgs<T>& a) { return a.batch * ((a.lq + kBr - 1) / kBr); }

  ops::AttentionArgs<T> a;
  const T* lse;      // (batch, Lq)
  const T* dout;     // (batch, Lq, Dv)
  const T* row_dot;  // (batch, Lq)
  T* dq;             // (batch, Lq, D) or null
  T* dmask;          // (batch, Lq, Lk) or null

  template <class Block>
  BINDERY_HOST_DEVICE void operator()(Block& block, int64_t tile) const {
    const int64_t lq = a.lq, lk = a.lk, row_tiles = (lq + kBr - 1) / kBr;
    const int64_t b = tile / row_tiles, i0 = (tile - b * row_tiles) * kBr;
    const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
    const Layout l(a.d, a.dv);
    T* const shared = static_cast<T*>(block.shared());
    const AttentionStagedPair<T> st{shared + l.q, shared + l.g, shared + l.lse, shared + l.dot,
                                    shared + l.k, shared + l.v, l.ld_qk,        l.ld_v};
    T* const qs = shared + l.q;
    T* const gs = shared + l.g;
    T* const ks = shared + l.k;
    T* const vs = shared + l.v;
    T* const dss = shared + l.ds;
    const int ld_qk = l.ld_qk, ld_v = l.ld_v, ld_s = l.ld_s;
    const T* const kb = a.k + a.k_batch(b);
    const T* const vb = a.v + a.v_batch(b);
    const T* const mb = a.mask != nullptr ? a.mask + a.mask_batch(b) : nullptr;

    block.each([=, this](int t, Registers& r) {
      attention_stage(qs, ld_qk, a.q + a.q_batch(b), a.q_row, i0, lq, kBr, d, t);
      attention_stage(gs, ld_v, dout + b * lq * dv, int64_t(dv), i0, lq, kBr, dv, t);
      attention_stage_values(shared + l.lse, lse + b * lq, i0, lq, kBr, infinity_of<T>(), t);
      attention_stage_values(shared + l.dot, row_dot + b * lq, i0, lq, kBr, T(0), t);
      attention_stage(ks, ld_qk, kb, a.k_row, 0, lk, kBc, d, t);
      attention_stage(vs, ld_v, vb, a.v_row, 0, lk, kBc, dv, t);
      for (int i = 0; i < kRows; ++i) {
        for (int j = 0; j < kCols; ++j) r.dq[i][j] = T(0);
      }
    });
    block.sync();
    for (int64_t j0 = 0; j0 < lk; j0 += kBc) {
      // (1) dS of the tile pair into shared memory (and dMask).
      block.each([=, this](int t, Registers&) {
        const int ty = t / kSide, tx = t % kSide;
        T p[kRows][kKeys], ds[kRows][kKeys];
        attention_tile_grads(a, mb, st, i0, j0, ty, tx, p, ds);
        for (int i = 0; i < kRows; ++i) {
          const int row = ty + kSide * i;
          for (int j = 0; j < kKeys; ++j) {
            const int col = tx + kSide * j;
            dss[row * ld_s + col] = ds[i][j];
            if (dmask != nullptr && i0 + row < lq && j0 + col < lk) {
              dmask[(b * lq + i0 + row) * lk + j0 + col] = ds[i][j];
            }
          }
        }
      });
      block.sync();
      // (2) dQ += dS K; stage the next V tile.
      block.each([=, this](int t, Registers& r) {
        const int ty = t / kSide, tx = t % kSide;
        if (dq != nullptr) {
          for (int c = 0; c < kBc; ++c) {
            T x[kRows];
            for (int i = 0; i < kRows; ++i) x[i] = dss[(ty + kSide * i) * ld_s + c];
            for (int j = 0; j < kCols; ++j) {
              const int col = tx + kSide * j;
              if (col < d) {
                const T y = ks[c * ld_qk + col];
                for (int i = 0; i < kRows; ++i) r.dq[i][j] += x[i] * y;
              }
            }
          }
        }
        if (j0 + kBc < lk) attention_stage(vs, ld_v, vb, a.v_row, j0 + kBc, lk, kBc, dv, t);
      });
      block.sync();
      if (j0 + kBc < lk) {  // (3) stage the next K tile
        block.each([=, this](int t, Registers&) {
          attention_stage(ks, ld_qk, kb, a.k_row, j0 + kBc, lk, kBc, d, t);
        });
        block.sync();
      }
    }
    block.each([=, this](int t, Registers& r) {
      if (dq == nullptr) return;
      const int ty = t / kSide, tx = t % kSide;
      for (int i = 0; i < kRows; ++i) {
        const int row = ty + kSide * i;
        if (i0 + row >= lq) continue;
        T* const dqr = dq + (b * lq + i0 + row) * d;
        for (int j = 0; j < kCols; ++j) {
          const int col = tx + kSide * j;
          if (col < d) dqr[col] = a.scale * r.dq[i][j];
        }
      }
    });
    block.sync();
  }
};

/// Backward, key side: one block per (batch item, kBc keys) streams over the query tiles;
/// dV = Pᵀ dO and dK = scale dSᵀ Q accumulate in registers.
template <class T, int kMaxHead>
struct AttentionBackwardKeyTiles {
  static constexpr int kThreads = kAttentionThreads, kSide = kAttentionSide;
  static constexpr int kMinBlocks = kAttentionMinBlocks<T>;
  static constexpr int kKeyRows = 2, kBc = kSide * kKeyRows;  // key rows per thread (dK, dV), per block
  static constexpr int kRows = 2, kBr = kSide * kRows;        // query rows per thread (P, dS), per tile
  static constexpr int kKeys = kKeyRows;                      // keys per thread in a score tile
  static constexpr int kCols = kMaxHead / kSide;              // dK, dV columns per thread
  static_assert(kMaxHead % kSide == 0);

  struct Registers {
    T dk[kKeyRows][kCols];  // key rows ty + 16 i, columns tx + 16 j
    T dv[kKeyRows][kCols];
  };
  struct Layout {
    int ld_qk, ld_v, ld_s;
    int k, v, q, g, p, ds, lse, dot, size;
    BINDERY_HOST_DEVICE Layout(int64_t d, int64_t dv)
        : ld_qk(attention_stride(d)), ld_v(attention_stride(dv)), ld_s(attention_stride(kBc)) {
      k = 0;                  // (kBc, ld_qk)
      v = k + kBc * ld_qk;    // (kBc, ld_v)
      q = v + kBc * ld_v;     // (kBr, ld_qk)
      g = q + kBr * ld_qk;    // dO: (kBr, ld_v)
      p = g + kBr * ld_v;     // (kBr, ld_s)
      ds = p + kBr * ld_s;    // (kBr, ld_s)
      lse = ds + kBr * ld_s;  // (kBr)
      dot = lse + kBr;        // (kBr)
      size = dot + kBr;
    }
  };
  static size_t shared_bytes(int64_t d, int64_t dv) {
    return static_cast<size_t>(Layout(d, dv).size) * sizeof(T);
  }
  static int64_t tiles(const ops::AttentionArgs<T>& a) { return a.batch * ((a.lk + kBc - 1) / kBc); }

  ops::AttentionArgs<T> a;
  const T* lse;      // (batch, Lq)
  const T* dout;     // (batch, Lq, Dv)
  const T* row_dot;  // (batch, Lq)
  T* dk;             // (batch, Lk, D) or null
  T* dv;             // (batch, Lk, Dv) or null

  template <class Block>
  BINDERY_HOST_DEVICE void operator()(Block& block, int64_t tile) const {
    const int64_t lq = a.lq, lk = a.lk, key_tiles = (lk + kBc - 1) / kBc;
    const int64_t b = tile / key_tiles, j0 = (tile - b * key_tiles) * kBc;
    const int d = static_cast<int>(a.d), dvw = static_cast<int>(a.dv);
    const Layout l(a.d, a.dv);
    T* const shared = static_cast<T*>(block.shared());
    const AttentionStagedPair<T> st{shared + l.q, shared + l.g, shared + l.lse, shared + l.dot,
                                    shared + l.k, shared + l.v, l.ld_qk,        l.ld_v};
    T* const qs = shared + l.q;
    T* const gs = shared + l.g;
    T* const ps = shared + l.p;
    T* const dss = shared + l.ds;
    const int ld_qk = l.ld_qk, ld_v = l.ld_v, ld_s = l.ld_s;
    const T* const qb = a.q + a.q_batch(b);
    const T* const gb = dout + b * lq * dvw;
    const T* const mb = a.mask != nullptr ? a.mask + a.mask_batch(b) : nullptr;
    // Stages the query-side rows of the tile at i0.
    auto stage_queries = [=, this](int64_t i0, int t) {
      attention_stage(qs, ld_qk, qb, a.q_row, i0, lq, kBr, d, t);
      attention_stage(gs, ld_v, gb, int64_t(dvw), i0, lq, kBr, dvw, t);
      attention_stage_values(shared + l.lse, lse + b * lq, i0, lq, kBr, infinity_of<T>(), t);
      attention_stage_values(shared + l.dot, row_dot + b * lq, i0, lq, kBr, T(0), t);
    };

    block.each([=, this](int t, Registers& r) {
      attention_stage(shared + l.k, ld_qk, a.k + a.k_batch(b), a.k_row, j0, lk, kBc, d, t);
      attention_stage(shared + l.v, ld_v, a.v + a.v_batch(b), a.v_row, j0, lk, kBc, dvw, t);
      stage_queries(0, t);
      for (int i = 0; i < kKeyRows; ++i) {
        for (int j = 0; j < kCols; ++j) {
          r.dk[i][j] = T(0);
          r.dv[i][j] = T(0);
        }
      }
    });
    block.sync();
    for (int64_t i0 = 0; i0 < lq; i0 += kBr) {
      // (1) P and dS of the tile pair into shared memory.
      block.each([=, this](int t, Registers&) {
        const int ty = t / kSide, tx = t % kSide;
        T p[kRows][kKeys], ds[kRows][kKeys];
        attention_tile_grads(a, mb, st, i0, j0, ty, tx, p, ds);
        for (int i = 0; i < kRows; ++i) {
          for (int j = 0; j < kKeys; ++j) {
            const int at = (ty + kSide * i) * ld_s + tx + kSide * j;
            ps[at] = p[i][j];
            dss[at] = ds[i][j];
          }
        }
      });
      block.sync();
      // (2) dV += Pᵀ dO, dK += dSᵀ Q.
      block.each([=, this](int t, Registers& r) {
        const int ty = t / kSide, tx = t % kSide;
        for (int row = 0; row < kBr; ++row) {
          T x[kKeyRows], y[kKeyRows];
          for (int i = 0; i < kKeyRows; ++i) {
            x[i] = ps[row * ld_s + ty + kSide * i];
            y[i] = dss[row * ld_s + ty + kSide * i];
          }
          for (int j = 0; j < kCols; ++j) {
            const int col = tx + kSide * j;
            if (dv != nullptr && col < dvw) {
              const T g = gs[row * ld_v + col];
              for (int i = 0; i < kKeyRows; ++i) r.dv[i][j] += x[i] * g;
            }
            if (dk != nullptr && col < d) {
              const T q = qs[row * ld_qk + col];
              for (int i = 0; i < kKeyRows; ++i) r.dk[i][j] += y[i] * q;
            }
          }
        }
      });
      block.sync();
      if (i0 + kBr < lq) {  // (3) stage the next query tile
        block.each([=](int t, Registers&) { stage_queries(i0 + kBr, t); });
        block.sync();
      }
    }
    block.each([=, this](int t, Registers& r) {
      const int ty = t / kSide, tx = t % kSide;
      for (int i = 0; i < kKeyRows; ++i) {
        const int64_t gj = j0 + ty + kSide * i;
        if (gj >= lk) continue;
        T* const dkr = dk != nullptr ? dk + (b * lk + gj) * d : nullptr;
        T* const dvr = dv != nullptr ? dv + (b * lk + gj) * dvw : nullptr;
        for (int j = 0; j < kCols; ++j) {
          const int col = tx + kSide * j;
          if (dkr != nullptr && col < d) dkr[col] = a.scale * r.dk[i][j];
          if (dvr != nullptr && col < dvw) dvr[col] = r.dv[i][j];
        }
      }
    });
    block.sync();
  }
};

// ---- the schedule -------------------------------------------------------------------------------

/// The head bound whose tiled kernels take (D, Dv): 64, 128, or 0 for the thread-per-row kernels.
inline int attention_head_bound(int64_t d, int64_t dv) {
  const int64_t head = std::max(d, dv);
  return head <= 64 ? 64 : head <= 128 ? 128 : 0;
}

template <int kMaxHead, class Launch, class T>
bool attention_forward_tiled(Launch& launch, const ops::AttentionArgs<T>& a, T* out, T* lse) {
  using Forward = AttentionForwardTiles<T, kMaxHead>;
  const size_t bytes = Forward::shared_bytes(a.d, a.dv);
  if (bytes > launch.shared_limit()) return false;
  launch.blocks(Forward::tiles(a), bytes, Forward{a, out, lse});
  return true;
}

/// AttentionKernel::forward's work as launches on `launch` (CudaLaunch, or HostLaunch in tests).
template <class Launch, class T>
void attention_forward(Launch& launch, const ops::AttentionArgs<T>& a, T* out, T* lse) {
  if (a.batch * a.lq <= 0) return;
  const int head = attention_head_bound(a.d, a.dv);
  if (head == 64 && attention_forward_tiled<64>(launch, a, out, lse)) return;
  if (head == 128 && attention_forward_tiled<128>(launch, a, out, lse)) return;
  launch.items(a.batch * a.lq, AttentionForwardRows<T>{a, out, lse});
}

template <int kMaxHead, class Launch, class T>
bool attention_backward_tiled(Launch& launch, const ops::AttentionArgs<T>& a, const T* out, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv, T* dmask) {
  using Queries = AttentionBackwardQueryTiles<T, kMaxHead>;
  using Keys = AttentionBackwardKeyTiles<T, kMaxHead>;
  const bool query_side = dq != nullptr || dmask != nullptr, key_side = dk != nullptr || dv != nullptr;
  const size_t query_bytes = Queries::shared_bytes(a.d, a.dv), key_bytes = Keys::shared_bytes(a.d, a.dv);
  if ((query_side && query_bytes > launch.shared_limit()) ||
      (key_side && key_bytes > launch.shared_limit())) {
    return false;
  }
  typename Launch::template Scratch<T> row_dot(a.batch * a.lq);
  launch.rows(a.batch * a.lq, AttentionRowDot<T>{out, dout, row_dot.get(), a.dv});
  if (query_side)
    launch.blocks(Queries::tiles(a), query_bytes, Queries{a, lse, dout, row_dot.get(), dq, dmask});
  if (key_side) launch.blocks(Keys::tiles(a), key_bytes, Keys{a, lse, dout, row_dot.get(), dk, dv});
  return true;
}

/// AttentionKernel::backward's work as launches on `launch`.
template <class Launch, class T>
void attention_backward(Launch& launch, const ops::AttentionArgs<T>& a, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, T* dmask) {
  if (a.batch <= 0 || (dq == nullptr && dk == nullptr && dv == nullptr && dmask == nullptr)) return;
  const int head = attention_head_bound(a.d, a.dv);
  if (head == 64 && attention_backward_tiled<64>(launch, a, out, lse, dout, dq, dk, dv, dmask)) return;
  if (head == 128 && attention_backward_tiled<128>(launch, a, out, lse, dout, dq, dk, dv, dmask)) return;
  typename Launch::template Scratch<T> row_dot(a.batch * a.lq);
  launch.items(a.batch * a.lq, AttentionBackwardQueryRows<T>{a, out, lse, dout, row_dot.get(), dq, dmask});
  if (dk != nullptr || dv != nullptr) {
    launch.items(a.batch * a.lk, AttentionBackwardKeyRows<T>{a, lse, dout, row_dot.get(), dk, dv});
  }
}

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct AttentionKernel<Cuda> {
  template <class T>
  static void forward(const AttentionArgs<T>& a, T* out, T* lse) {
    kernels::CudaLaunch launch;
    kernels::attention_forward(launch, a, out, lse);
  }

  template <class T>
  static void backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                       T* dv, T* dmask) {
    kernels::CudaLaunch launch;
    kernels::attention_backward(launch, a, out, lse, dout, dq, dk, dv, dmask);
  }
};

}  // namespace bindery::ops
