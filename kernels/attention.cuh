// kernels/attention.cuh — AttentionKernel<Cuda>: fused scaled dot-product attention (ops/attention.hpp).
//
// The Cpu kernel's contract (AttentionArgs: broadcast batch Indexers, unit-stride rows, additive
// mask, logsumexp saved per query row) with a thread-per-row schedule:
// - forward: one thread per query row streams over the keys in tiles of kTile with an online
//   softmax (running max m and sum l; the output row, kept in `out`, is rescaled by exp(m_old -
//   m_new) once per tile). Neighbouring threads are neighbouring query rows of one batch item, so
//   every key and value element a warp reads is the same address for all its lanes (a broadcast).
//   Never stores the (Lq × Lk) scores; saves lse = m + log l (+inf for a fully masked row, whose
//   output is zeros, as on the Cpu).
// - backward, FlashAttention-2's equations with P recomputed from lse:
//     pass 1, one thread per query row: D_i = rowsum(dO ∘ O), dS = P ∘ (dO Vᵀ - D_i), dQ = scale dS K
//             (and dMask = dS);
//     pass 2, one thread per key row: dV = Pᵀ dO, dK = scale dSᵀ Q, streaming over query tiles.
//   Each output row has exactly one writer: no atomics, deterministic.
// This is the simple, correct schedule; a shared-memory tiled kernel is the next step for speed
// (scripts/gpu-check.sh prints its throughput against PyTorch's).
#pragma once

#include <cmath>

#include "bindery/ops/attention.hpp"
#include "common.cuh"

namespace bindery::kernels {

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

}  // namespace bindery::kernels

namespace bindery::ops {

template <>
struct AttentionKernel<Cuda> {
  template <class T>
  static void forward(const AttentionArgs<T>& a, T* out, T* lse) {
    Cuda::for_each(a.batch * a.lq, kernels::AttentionForwardRows<T>{a, out, lse});
  }

  template <class T>
  static void backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                       T* dv, T* dmask) {
    kernels::DeviceBuffer<T> row_dot(a.batch * a.lq);
    Cuda::for_each(a.batch * a.lq,
                   kernels::AttentionBackwardQueryRows<T>{a, out, lse, dout, row_dot.get(), dq, dmask});
    if (dk != nullptr || dv != nullptr) {
      Cuda::for_each(a.batch * a.lk,
                     kernels::AttentionBackwardKeyRows<T>{a, lse, dout, row_dot.get(), dk, dv});
    }
  }
};

}  // namespace bindery::ops
