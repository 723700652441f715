// bindery/ops/attention.hpp — scaled dot-product attention: softmax(scale · q kᵀ + mask) v.
//
// Two implementations with one contract:
// - attention_composite: matmul, softmax and matmul ops; its gradient comes from theirs. It is the
//   reference the fused path is tested against, what to read to learn the math, and what
//   scaled_dot_product_attention runs on a backend without an AttentionKernel specialization.
// - scaled_dot_product_attention: the fused CPU path. Query rows are processed in blocks of
//   kRowBlock; each block streams over the keys in blocks with an online softmax (running max m
//   and sum l, the partial output rescaled by exp(m_old - m_new)), so only a (rows × key block)
//   score tile is ever stored, never the (Lq × Lk) matrix. The logsumexp m + log l of every query
//   row is saved; backward recomputes the probabilities P = exp(S - lse) tile by tile
//   (FlashAttention-2's scheme):
//     dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP - rowsum(dO ∘ O)),  dQ = scale dS K,  dK = scale dSᵀ Q,
//   and dMask = dS (summed over the axes the mask was broadcast along).
// Masks are ADDITIVE (0 keeps, -inf removes): a -inf logit gets exactly zero weight. A query row
// whose logits are all -inf attends to nothing: the fused path returns zeros for it (and zero
// gradients), where the composite (like PyTorch's math path) returns NaN.
// q, k and v are read in place when their last axis has unit stride (views of a fused qkv
// projection need no copy); their batch axes broadcast.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/concat.hpp"
#include "bindery/ops/linear.hpp"
#include "bindery/ops/simd_math.hpp"
#include "bindery/ops/softmax.hpp"

namespace bindery::ops {

/// Where one attention call's operands live: plain data (pointers, Indexers, extents) so that a
/// device kernel can take it by value. Each matrix has a unit-stride last axis; `*_batch` maps a
/// linear batch index to the element offset of that batch item's matrix.
template <class T>
struct AttentionArgs {
  const T* q = nullptr;  // (Lq, D) per batch item, rows q_row apart
  const T* k = nullptr;  // (Lk, D), rows k_row apart
  const T* v = nullptr;  // (Lk, Dv), rows v_row apart
  // (Lq, Lk) additive, rows mask_row apart, columns mask_col (0 or 1) apart; null for no mask
  const T* mask = nullptr;
  Indexer q_batch, k_batch, v_batch, mask_batch;
  int64_t q_row = 0, k_row = 0, v_row = 0, mask_row = 0, mask_col = 0;
  int64_t batch = 0, lq = 0, lk = 0, d = 0, dv = 0;
  T scale = T(1);
  // One more key and value after the Lk - 1 that k and v hold (nn::MultiheadAttention's bias_k and
  // bias_v tokens), read from here instead of a concatenated copy: (batch, D) and (batch, Dv)
  // contiguous. forward_bf16 only; null everywhere else.
  const T* extra_k = nullptr;
  const T* extra_v = nullptr;
};

/// Fused attention kernels; specialized per backend. Outputs are contiguous:
/// out (batch, Lq, Dv), lse (batch, Lq); gradients dq (batch, Lq, D), dk (batch, Lk, D),
/// dv (batch, Lk, Dv), dmask (batch, Lq, Lk), each null when not wanted.
/// A backend without a specialization gets the primary template, which only says so (kFallback):
/// scaled_dot_product_attention then runs attention_composite (matmul, softmax, matmul).
template <class B>
struct AttentionKernel {
  static constexpr bool kFallback = true;
};

/// Whether backend B has a fused attention kernel (Cpu and Cuda do).
template <class B>
inline constexpr bool kHasAttentionKernel = !requires {
  AttentionKernel<B>::kFallback;
};

template <>
struct AttentionKernel<Cpu> {
  static constexpr int64_t kRowBlock = 64;   // query rows per tile
  static constexpr int64_t kKeyBlock = 512;  // most keys per tile
  static constexpr int64_t kMinTasks = 16;   // backward splits query blocks when the batch is small

  /// Balanced key tiles of at most kKeyBlock keys.
  static int64_t key_block(int64_t lk) {
    const int64_t tiles = std::max<int64_t>(1, (lk + kKeyBlock - 1) / kKeyBlock);
    return std::max<int64_t>(1, (lk + tiles - 1) / tiles);
  }

  /// max(start, s[0..n)): 16 lanes for float (simd::max_of), Eigen otherwise.
  template <class T>
  static T row_max(const T* s, int64_t n, T start) {
    if constexpr (std::is_same_v<T, float>) {
      return simd::max_of(s, n, start);
    } else {
      return std::max(start, detail::cpu::ConstRowMap<T>(s, n).maxCoeff());
    }
  }

  /// s[i] = exp(s[i] - shift) in place, entries below the smallest normal exactly 0 (masked keys
  /// get no weight, and no denormal reaches the P·V product); returns their sum. float: one 16-lane
  /// pass (simd::exp_shifted_sum); the 4-lane Eigen passes it replaced took a tenth of a bf16
  /// IMU forward.
  template <class T>
  static T exp_shifted_sum(T* s, int64_t n, T shift) {
    if constexpr (std::is_same_v<T, float>) {
      return simd::exp_shifted_sum(s, n, shift);
    } else {
      detail::cpu::RowMap<T> row(s, n);
      row = (row - shift).exp();
      detail::cpu::flush_tiny(s, n);
      return row.sum();
    }
  }

  /// Adds the mask rows of one tile to the scores s (rows × width, row-major).
  template <class T>
  static void add_mask(T* s, const T* mask, int64_t rows, int64_t width, int64_t mask_row, int64_t mask_col) {
    using namespace detail::cpu;
    for (int64_t r = 0; r < rows; ++r) {
      RowMap<T> sr(s + r * width, width);
      if (mask_col == 0) {
        sr += mask[r * mask_row];
      } else {
        sr += ConstRowMap<T>(mask + r * mask_row, width);
      }
    }
  }

  /// One key tile of the online softmax, in place: the scores s (rows × width, row-major) become
  /// exp(s - new max) (a row with every key so far masked out stays all zero), each row's running
  /// max and sum are updated, and its partial output (row r of ob, dv wide) is rescaled by
  /// exp(old max - new max).
  template <class T>
  static void online_softmax_tile(T* s, int64_t rows, int64_t width, T* max, T* sum, T* ob, int64_t dv) {
    using namespace detail::cpu;
    const T neg_inf = -std::numeric_limits<T>::infinity();
    for (int64_t r = 0; r < rows; ++r) {
      RowMap<T> sr(s + r * width, width);
      const T new_max = row_max(sr.data(), width, max[r]);
      if (new_max == neg_inf) {  // every key so far masked out: no weight yet
        sr.setZero();
        continue;
      }
      const T rescale = std::exp(max[r] - new_max);  // 0 when the old max was -inf
      sum[r] = sum[r] * rescale + exp_shifted_sum(sr.data(), width, new_max);
      if (rescale != T(1)) RowMap<T>(ob + r * dv, dv) *= rescale;
      max[r] = new_max;
    }
  }

  /// After the last key tile: each output row divided by its sum, and the row's logsumexp.
  template <class T>
  static void finish_rows(T* ob, T* lse, const T* max, const T* sum, int64_t rows, int64_t dv) {
    using namespace detail::cpu;
    for (int64_t r = 0; r < rows; ++r) {
      if (sum[r] > T(0)) {
        RowMap<T>(ob + r * dv, dv) *= T(1) / sum[r];
        lse[r] = max[r] + std::log(sum[r]);
      } else {  // a fully masked row: zero output, and +inf makes every recomputed P zero
        RowMap<T>(ob + r * dv, dv).setZero();
        lse[r] = std::numeric_limits<T>::infinity();
      }
    }
  }

  template <class T>
  static void forward(const AttentionArgs<T>& a, T* out, T* lse) {
    using namespace detail::cpu;
    const int64_t blocks = (a.lq + kRowBlock - 1) / kRowBlock, bc = key_block(a.lk);
    const T neg_inf = -std::numeric_limits<T>::infinity();
    Cpu::for_each(
        a.batch * blocks,
        [&](int64_t task) {
          const int64_t b = task / blocks, r0 = (task % blocks) * kRowBlock;
          const int64_t rows = std::min(kRowBlock, a.lq - r0);
          const T* qb = a.q + a.q_batch(b) + r0 * a.q_row;
          const T* kb = a.k + a.k_batch(b);
          const T* vb = a.v + a.v_batch(b);
          const T* mb = a.mask != nullptr ? a.mask + a.mask_batch(b) + r0 * a.mask_row : nullptr;
          T* ob = out + (b * a.lq + r0) * a.dv;  // (rows, Dv), accumulated unnormalized
          std::vector<T> scores(static_cast<size_t>(rows * bc));
          std::vector<T> max(static_cast<size_t>(rows), neg_inf), sum(static_cast<size_t>(rows), T(0));
          std::fill(ob, ob + rows * a.dv, T(0));
          for (int64_t j0 = 0; j0 < a.lk; j0 += bc) {
            const int64_t width = std::min(bc, a.lk - j0);
            T* s = scores.data();
            Cpu::gemm(false, true, rows, width, a.d, a.scale, qb, a.q_row, kb + j0 * a.k_row, a.k_row, T(0),
                      s,
                      width);  // S = scale Q Kᵀ: (rows, width)
            if (mb != nullptr) add_mask(s, mb + j0 * a.mask_col, rows, width, a.mask_row, a.mask_col);
            online_softmax_tile(s, rows, width, max.data(), sum.data(), ob, a.dv);
            Cpu::gemm(false, false, rows, a.dv, width, T(1), s, width, vb + j0 * a.v_row, a.v_row, T(1), ob,
                      a.dv);  // O += P V
          }
          finish_rows(ob, lse + b * a.lq + r0, max.data(), sum.data(), rows, a.dv);
        },
        1);
  }

  /// forward with bf16 GEMMs (inference): S = scale·Q·Kᵀ and O += P·V multiply bf16-rounded
  /// operands with fp32 sums (backend/cpu_gemm_lowp.hpp's gemm_bf16_nn); the mask, the online
  /// softmax, the rescaling and the normalization stay fp32, as in forward. Kᵀ and V are rounded
  /// and packed once per batch item; Q once per query block, P once per key tile. Key tiles have an
  /// even width (the pairs of V's rows never straddle two tiles). `kernel`: the AVX512_BF16 tiles,
  /// else the same arithmetic in loops. Same bits on any thread count.
  static void forward_bf16(const AttentionArgs<float>& a, float* out, float* lse, bool kernel) {
    using namespace detail::cpu;
    using ::bindery::detail::Bf16Pairs;
    using ::bindery::detail::LowpA;
    const int64_t blocks = (a.lq + kRowBlock - 1) / kRowBlock, bc = (key_block(a.lk) + 1) / 2 * 2;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    std::vector<Bf16Pairs> kt(static_cast<size_t>(a.batch)), vp(static_cast<size_t>(a.batch));
    Cpu::for_each(
        a.batch,
        [&](int64_t b) {
          // key j's row; with extra_k / extra_v, the last key comes from there
          const float *kb = a.k + a.k_batch(b), *vb = a.v + a.v_batch(b);
          const int64_t stored = a.extra_k != nullptr ? a.lk - 1 : a.lk, k_row = a.k_row, v_row = a.v_row;
          const float* ek = a.extra_k != nullptr ? a.extra_k + b * a.d : nullptr;
          const float* ev = a.extra_v != nullptr ? a.extra_v + b * a.dv : nullptr;
          ::bindery::detail::pack_bf16_pairs_kt(
              a.d, a.lk, [=](int64_t j) { return j < stored ? kb + j * k_row : ek; }, kernel,
              kt[static_cast<size_t>(b)]);
          ::bindery::detail::pack_bf16_pairs_v(
              a.lk, a.dv, [=](int64_t j) { return j < stored ? vb + j * v_row : ev; }, kernel,
              vp[static_cast<size_t>(b)]);
        },
        1);
    Cpu::for_each(
        a.batch * blocks,
        [&](int64_t task) {
          const int64_t b = task / blocks, r0 = (task % blocks) * kRowBlock;
          const int64_t rows = std::min(kRowBlock, a.lq - r0);
          const Bf16Pairs& kb = kt[static_cast<size_t>(b)];
          const Bf16Pairs& vb = vp[static_cast<size_t>(b)];
          const float* mb = a.mask != nullptr ? a.mask + a.mask_batch(b) + r0 * a.mask_row : nullptr;
          float* ob = out + (b * a.lq + r0) * a.dv;  // (rows, Dv), accumulated unnormalized
          LowpA qa, pa;
          ::bindery::detail::prepare_a_bf16(rows, a.d, a.q + a.q_batch(b) + r0 * a.q_row, a.q_row, qa,
                                            kernel);
          std::vector<float> scores(static_cast<size_t>(rows * bc));
          std::vector<float> max(static_cast<size_t>(rows), neg_inf), sum(static_cast<size_t>(rows), 0.0f);
          std::fill(ob, ob + rows * a.dv, 0.0f);
          for (int64_t j0 = 0; j0 < a.lk; j0 += bc) {
            const int64_t width = std::min(bc, a.lk - j0);
            float* s = scores.data();
            ::bindery::detail::gemm_bf16_nn(kernel, rows, width, kb.pairs(), a.scale, qa.bf16.data(), qa.ld,
                                            kb.row(0) + j0, kb.ld, 0.0f, s, width);  // S = scale Q Kᵀ
            if (mb != nullptr) add_mask(s, mb + j0 * a.mask_col, rows, width, a.mask_row, a.mask_col);
            online_softmax_tile(s, rows, width, max.data(), sum.data(), ob, a.dv);
            ::bindery::detail::prepare_a_bf16(rows, width, s, width, pa, kernel);
            ::bindery::detail::gemm_bf16_nn(kernel, rows, a.dv, (width + 1) / 2, 1.0f, pa.bf16.data(), pa.ld,
                                            vb.row(j0 / 2), vb.ld, 1.0f, ob, a.dv);  // O += P V
          }
          finish_rows(ob, lse + b * a.lq + r0, max.data(), sum.data(), rows, a.dv);
        },
        1);
  }

  template <class T>
  static void backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                       T* dv, T* dmask) {
    using namespace detail::cpu;
    const int64_t blocks = (a.lq + kRowBlock - 1) / kRowBlock, bc = key_block(a.lk);
    // Few batch items: split each one's query blocks over several tasks, each with its own dK/dV
    // partial sums (added in a fixed order below, so results do not depend on the thread count).
    const int64_t splits = std::max<int64_t>(
        1, std::min<int64_t>(blocks, (kMinTasks + a.batch - 1) / std::max<int64_t>(a.batch, 1)));
    const int64_t blocks_per_split = (blocks + splits - 1) / splits;
    const bool need_kv = dk != nullptr || dv != nullptr;
    std::vector<T> partial_k, partial_v;
    if (splits > 1 && dk != nullptr) partial_k.resize(static_cast<size_t>(a.batch * splits * a.lk * a.d));
    if (splits > 1 && dv != nullptr) partial_v.resize(static_cast<size_t>(a.batch * splits * a.lk * a.dv));
    Cpu::for_each(
        a.batch * splits,
        [&](int64_t task) {
          const int64_t b = task / splits, split = task % splits;
          const T* kb = a.k + a.k_batch(b);
          const T* vb = a.v + a.v_batch(b);
          T* dk_b = dk == nullptr ? nullptr
                    : splits > 1  ? partial_k.data() + task * a.lk * a.d
                                  : dk + b * a.lk * a.d;
          T* dv_b = dv == nullptr ? nullptr
                    : splits > 1  ? partial_v.data() + task * a.lk * a.dv
                                  : dv + b * a.lk * a.dv;
          if (dk_b != nullptr) std::fill(dk_b, dk_b + a.lk * a.d, T(0));
          if (dv_b != nullptr) std::fill(dv_b, dv_b + a.lk * a.dv, T(0));
          std::vector<T> probs(static_cast<size_t>(kRowBlock * bc)), dscores(probs.size());
          Column<T> row_dot(kRowBlock);
          const int64_t first = split * blocks_per_split, last = std::min(blocks, first + blocks_per_split);
          for (int64_t block = first; block < last; ++block) {
            const int64_t r0 = block * kRowBlock, rows = std::min(kRowBlock, a.lq - r0);
            const T* qb = a.q + a.q_batch(b) + r0 * a.q_row;
            const T* mb = a.mask != nullptr ? a.mask + a.mask_batch(b) + r0 * a.mask_row : nullptr;
            const T* ob = out + (b * a.lq + r0) * a.dv;
            const T* gb = dout + (b * a.lq + r0) * a.dv;
            const T* lb = lse + b * a.lq + r0;
            T* dq_b = dq != nullptr ? dq + (b * a.lq + r0) * a.d : nullptr;
            if (dq_b != nullptr) std::fill(dq_b, dq_b + rows * a.d, T(0));
            for (int64_t r = 0; r < rows; ++r) {  // rowsum(dO ∘ O)
              row_dot[r] = (ConstRowMap<T>(gb + r * a.dv, a.dv) * ConstRowMap<T>(ob + r * a.dv, a.dv)).sum();
            }
            for (int64_t j0 = 0; j0 < a.lk; j0 += bc) {
              const int64_t width = std::min(bc, a.lk - j0);
              T* p = probs.data();
              T* ds = dscores.data();
              Cpu::gemm(false, true, rows, width, a.d, a.scale, qb, a.q_row, kb + j0 * a.k_row, a.k_row, T(0),
                        p,
                        width);  // S = scale Q Kᵀ
              if (mb != nullptr) add_mask(p, mb + j0 * a.mask_col, rows, width, a.mask_row, a.mask_col);
              for (int64_t r = 0; r < rows; ++r)
                exp_shifted_sum(p + r * width, width, lb[r]);  // P = exp(S - lse)
              if (dv_b != nullptr) {
                Cpu::gemm(true, false, width, a.dv, rows, T(1), p, width, gb, a.dv, T(1), dv_b + j0 * a.dv,
                          a.dv);  // dV += Pᵀ dO
              }
              Cpu::gemm(false, true, rows, width, a.dv, T(1), gb, a.dv, vb + j0 * a.v_row, a.v_row, T(0), ds,
                        width);  // dP = dO Vᵀ
              for (int64_t r = 0; r < rows; ++r) {
                RowMap<T> dsr(ds + r * width, width);
                dsr = ConstRowMap<T>(p + r * width, width) * (dsr - row_dot[r]);  // dS = P ∘ (dP - rowsum)
                if (dmask != nullptr) RowMap<T>(dmask + (b * a.lq + r0 + r) * a.lk + j0, width) = dsr;
              }
              if (dq_b != nullptr) {
                Cpu::gemm(false, false, rows, a.d, width, a.scale, ds, width, kb + j0 * a.k_row, a.k_row,
                          T(1), dq_b, a.d);  // dQ += scale dS K
              }
              if (dk_b != nullptr) {
                Cpu::gemm(true, false, width, a.d, rows, a.scale, ds, width, qb, a.q_row, T(1),
                          dk_b + j0 * a.d,
                          a.d);  // dK += scale dSᵀ Q
              }
            }
          }
        },
        1);
    if (splits == 1 || !need_kv) return;
    auto reduce = [&](const std::vector<T>& partial, T* target, int64_t width) {
      if (target == nullptr) return;
      const int64_t per_batch = a.lk * width;
      Cpu::for_each(
          a.batch,
          [&](int64_t b) {
            RowMap<T> total(target + b * per_batch, per_batch);
            total = ConstRowMap<T>(partial.data() + b * splits * per_batch, per_batch);
            for (int64_t s = 1; s < splits; ++s) {
              total += ConstRowMap<T>(partial.data() + (b * splits + s) * per_batch, per_batch);
            }
          },
          1);
    };
    reduce(partial_k, dk, a.d);
    reduce(partial_v, dv, a.dv);
  }
};

namespace detail {

/// x itself when its last axis has unit stride and its rows do not overlap, else a contiguous copy.
template <class T, class B>
Tensor<T, B> unit_stride_rows(const Tensor<T, B>& x) {
  const int64_t rows = x.size(-2), cols = x.size(-1);
  const bool ok =
      (cols <= 1 || x.stride(-1) == 1) && (rows <= 1 || x.stride(-2) >= std::max<int64_t>(cols, 1));
  return ok ? x : x.contiguous();
}
template <class T, class B>
int64_t row_stride(const Tensor<T, B>& x) {
  return x.size(-2) <= 1 ? std::max<int64_t>(x.size(-1), 1) : x.stride(-2);
}

template <class T, class B>
struct AttentionPlan {
  Tensor<T, B> q, k, v, mask;  // the operands as the kernel reads them
  Shape batch;                 // broadcast batch shape
  AttentionArgs<T> args;       // pointers filled in
};

/// `extra_keys` (0 or 1): keys past k's and v's Lk that the caller supplies itself (AttentionArgs's
/// extra_k / extra_v); the mask and args.lk count them.
template <class T, class B>
AttentionPlan<T, B> plan_attention(const Tensor<T, B>& q, const Tensor<T, B>& k, const Tensor<T, B>& v,
                                   const Tensor<T, B>& mask, double scale, int64_t extra_keys = 0) {
  BINDERY_CHECK(q.defined() && k.defined() && v.defined(), ValueError, "attention: q, k or v is undefined");
  BINDERY_CHECK(
      q.rank() >= 2 && k.rank() >= 2 && v.rank() >= 2 && q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
      ShapeError, "attention: q of shape ", q.shape(), ", k of shape ", k.shape(), " and v of shape ",
      v.shape(), ": need q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv)");
  AttentionPlan<T, B> plan;
  std::vector<int64_t> batch;
  for (const Tensor<T, B>* x : {&q, &k, &v}) {
    const Shape xb = leading_shape(x->shape());
    const int64_t rank = std::max<int64_t>(static_cast<int64_t>(batch.size()), xb.rank());
    std::vector<int64_t> merged(static_cast<size_t>(rank));
    for (int64_t i = 0; i < rank; ++i) {
      const int64_t ia = i - (rank - static_cast<int64_t>(batch.size())), ib = i - (rank - xb.rank());
      const int64_t da = ia >= 0 ? batch[static_cast<size_t>(ia)] : 1, db = ib >= 0 ? xb[ib] : 1;
      BINDERY_CHECK(da == db || da == 1 || db == 1, ShapeError, "attention: q of shape ", q.shape(),
                    ", k of shape ", k.shape(), " and v of shape ", v.shape(),
                    ": batch axes do not broadcast");
      merged[static_cast<size_t>(i)] = da == 1 ? db : da;
    }
    batch = merged;
  }
  plan.batch = Shape(batch);
  const int64_t lq = q.size(-2), lk = k.size(-2) + extra_keys;
  std::vector<int64_t> logits_dims = batch;
  logits_dims.insert(logits_dims.end(), {lq, lk});
  const Shape logits_shape(logits_dims);
  plan.q = unit_stride_rows(q);
  plan.k = unit_stride_rows(k);
  plan.v = unit_stride_rows(v);
  AttentionArgs<T>& a = plan.args;
  a.batch = plan.batch.numel();
  a.lq = lq;
  a.lk = lk;
  a.d = q.size(-1);
  a.dv = v.size(-1);
  a.scale =
      static_cast<T>(scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(a.d, 1))));
  a.q = plan.q.data();
  a.k = plan.k.data();
  a.v = plan.v.data();
  a.q_row = row_stride(plan.q);
  a.k_row = row_stride(plan.k);
  a.v_row = row_stride(plan.v);
  Strides mask_strides(batch.size(), 0);
  if (mask.defined()) {
    bool fits = mask.rank() <= logits_shape.rank();
    for (int64_t i = 0; fits && i < mask.rank(); ++i) {
      const int64_t extent = mask.shape()[mask.rank() - 1 - i];
      fits = extent == 1 || extent == logits_shape[logits_shape.rank() - 1 - i];
    }
    BINDERY_CHECK(fits, ShapeError, "attention: mask of shape ", mask.shape(),
                  " does not broadcast to the logits ", logits_shape, " of q of shape ", q.shape(),
                  " and k of shape ", k.shape());
    Tensor<T, B> expanded = mask.expand(logits_shape);
    if (lk > 1 && expanded.stride(-1) != 0 && expanded.stride(-1) != 1) {
      expanded = mask.contiguous().expand(logits_shape);
    }
    plan.mask = expanded;
    a.mask = expanded.data();
    a.mask_row = lq > 1 ? expanded.stride(-2) : 0;
    a.mask_col = lk > 1 ? expanded.stride(-1) : 0;
    for (size_t i = 0; i < batch.size(); ++i) mask_strides[i] = expanded.strides()[i];
  }
  const Strides sq = batch_strides(plan.q, plan.batch), sk = batch_strides(plan.k, plan.batch);
  const Strides sv = batch_strides(plan.v, plan.batch);
  const Strides* strides[4] = {&sq, &sk, &sv, &mask_strides};
  Indexer indexers[4];
  make_indexers(plan.batch, strides, indexers);
  a.q_batch = indexers[0];
  a.k_batch = indexers[1];
  a.v_batch = indexers[2];
  a.mask_batch = indexers[3];
  return plan;
}

/// batch + (a, b).
inline Shape with_trailing(const Shape& batch, int64_t a, int64_t b) {
  std::vector<int64_t> dims(batch.begin(), batch.end());
  dims.push_back(a);
  dims.push_back(b);
  return Shape(dims);
}

}  // namespace detail

// ---- composite (the reference, and the fallback of backends without AttentionKernel) ---------

/// The reference composition: softmax(scale · q kᵀ + mask) v with matmul and softmax ops; shapes
/// as scaled_dot_product_attention. Stores the (..., Lq, Lk) probabilities for backward.
template <class T, class B>
Var<T, B> attention_composite(const Var<T, B>& q, const Var<T, B>& k, const Var<T, B>& v,
                              const Var<T, B>& mask = Var<T, B>(), double scale = 0.0) {
  const double s =
      scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(q.size(-1), 1)));
  Var<T, B> logits = matmul(q, k, false, true) * static_cast<T>(s);  // (..., Lq, Lk)
  if (mask.defined()) logits = logits + mask;
  return matmul(softmax(logits, -1), v);  // (..., Lq, Dv)
}

// ---- tensor level ------------------------------------------------------------------------------

/// q: (..., Lq, D), k: (..., Lk, D), v: (..., Lk, Dv), batch axes broadcast; mask: additive,
/// broadcastable to (..., Lq, Lk), or undefined -> (..., Lq, Dv). scale 0 means 1/sqrt(D).
template <class T, class B>
Tensor<T, B> scaled_dot_product_attention_forward(const Tensor<T, B>& q, const Tensor<T, B>& k,
                                                  const Tensor<T, B>& v,
                                                  const Tensor<T, B>& mask = Tensor<T, B>(),
                                                  double scale = 0.0) {
  if constexpr (!kHasAttentionKernel<B>) {
    const NoGrad no_grad;
    return attention_composite(Var<T, B>(q, false), Var<T, B>(k, false), Var<T, B>(v, false),
                               mask.defined() ? Var<T, B>(mask, false) : Var<T, B>(), scale)
        .value();
  } else {
    const detail::AttentionPlan<T, B> plan = detail::plan_attention(q, k, v, mask, scale);
    const AttentionArgs<T>& a = plan.args;
    Tensor<T, B> out = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lq, a.dv));
    Tensor<T, B> lse = Tensor<T, B>::empty(Shape{a.batch, a.lq});
    AttentionKernel<B>::forward(a, out.data(), lse.data());
    return out;
  }
}

// ---- differentiable ----------------------------------------------------------------------------

/// Fused attention: softmax(scale · q kᵀ + mask) v.
/// q: (..., Lq, D), k: (..., Lk, D), v: (..., Lk, Dv) (batch axes broadcast); mask: ADDITIVE,
/// broadcastable to (..., Lq, Lk) (e.g. a causal (Lq, Lk) mask with -inf above the diagonal, or
/// (B, 1, 1, Lk) key padding), or an undefined Var; scale 0 means 1/sqrt(D) -> (..., Lq, Dv).
/// The mask receives a gradient when it requires one (a learnable bias); rows whose logits are all
/// -inf give zeros. Saves only the output and one logsumexp per query row for backward.
template <class T, class B>
Var<T, B> scaled_dot_product_attention(const Var<T, B>& q, const Var<T, B>& k, const Var<T, B>& v,
                                       const Var<T, B>& mask = Var<T, B>(), double scale = 0.0) {
  if constexpr (!kHasAttentionKernel<B>) {
    return attention_composite(q, k, v, mask, scale);
  } else {
    const Tensor<T, B> mask_value = mask.defined() ? mask.value() : Tensor<T, B>();
    detail::AttentionPlan<T, B> plan =
        detail::plan_attention(q.value(), k.value(), v.value(), mask_value, scale);
    const AttentionArgs<T>& a = plan.args;
    Tensor<T, B> out = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lq, a.dv));  // (..., Lq, Dv)
    Tensor<T, B> lse = Tensor<T, B>::empty(Shape{a.batch, a.lq});
    AttentionKernel<B>::forward(a, out.data(), lse.data());
    const bool need_q = needs_grad(q), need_k = needs_grad(k), need_v = needs_grad(v),
               need_mask = needs_grad(mask);
    return make_result<T, B>(
        out, "scaled_dot_product_attention", {q, k, v, mask},
        [plan, out, lse, q_shape = q.shape(), k_shape = k.shape(), v_shape = v.shape(),
         mask_shape = mask.defined() ? mask.shape() : Shape{}, need_q, need_k, need_v,
         need_mask](const Tensor<T, B>& dL_dy) {
          const AttentionArgs<T>& a = plan.args;
          const Tensor<T, B> g = dL_dy.contiguous();
          Tensor<T, B> dq, dk, dv, dmask;
          if (need_q) dq = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lq, a.d));
          if (need_k) dk = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lk, a.d));
          if (need_v) dv = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lk, a.dv));
          if (need_mask) dmask = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lq, a.lk));
          AttentionKernel<B>::backward(a, out.data(), lse.data(), g.data(), need_q ? dq.data() : nullptr,
                                       need_k ? dk.data() : nullptr, need_v ? dv.data() : nullptr,
                                       need_mask ? dmask.data() : nullptr);
          // Gradients are computed on the broadcast batch; fold them back onto each input's shape.
          return std::vector{need_q ? sum_to_shape(dq, q_shape) : dq, need_k ? sum_to_shape(dk, k_shape) : dk,
                             need_v ? sum_to_shape(dv, v_shape) : dv,
                             need_mask ? sum_to_shape(dmask, mask_shape) : dmask};
        });
  }
}

// ---- inference in bf16 ------------------------------------------------------------------------

/// Inference attention with bf16 GEMMs: as scaled_dot_product_attention_forward, but Q·Kᵀ and P·V
/// multiply bf16-rounded operands with fp32 sums (the softmax stays fp32). It runs on the Cpu in
/// float where AVX512_BF16 runs (or always, with `force_loops`: the same arithmetic in plain loops,
/// for tests); anywhere else it is the fp32 forward. MultiheadAttention uses it once quantize()
/// has made the module inference-only. No gradient.
///
/// extra_k (..., 1, D) and extra_v (..., 1, Dv), both or neither: one more key and value after k's
/// and v's (torch's add_bias_kv tokens), as if concatenated along Lk, which the kernel does not do:
/// it packs them with the rest (the mask then has Lk + 1 columns).
template <class T, class B>
Tensor<T, B> scaled_dot_product_attention_bf16(const Tensor<T, B>& q, const Tensor<T, B>& k,
                                               const Tensor<T, B>& v,
                                               const Tensor<T, B>& mask = Tensor<T, B>(), double scale = 0.0,
                                               bool force_loops = false,
                                               const Tensor<T, B>& extra_k = Tensor<T, B>(),
                                               const Tensor<T, B>& extra_v = Tensor<T, B>()) {
  const bool extra = extra_k.defined();
  BINDERY_CHECK(extra == extra_v.defined(), ValueError,
                "scaled_dot_product_attention_bf16: give both extra_k and extra_v, or neither");
  if (extra) {
    BINDERY_CHECK(extra_k.rank() >= 2 && extra_k.size(-2) == 1 && extra_k.size(-1) == k.size(-1) &&
                      extra_v.rank() >= 2 && extra_v.size(-2) == 1 && extra_v.size(-1) == v.size(-1),
                  ShapeError, "scaled_dot_product_attention_bf16: extra_k of shape ", extra_k.shape(),
                  " and extra_v of shape ", extra_v.shape(),
                  " must be (..., 1, D) and (..., 1, Dv) for k of shape ", k.shape(), " and v of shape ",
                  v.shape());
  }
  if constexpr (std::is_same_v<T, float> && std::is_same_v<B, Cpu>) {
    const bool kernel = ::bindery::detail::gemm_bf16_kernel_supported();
    if (kernel || force_loops) {
      const detail::AttentionPlan<T, B> plan = detail::plan_attention(q, k, v, mask, scale, extra ? 1 : 0);
      AttentionArgs<T> a = plan.args;
      Tensor<T, B> ek, ev;  // (batch, D), (batch, Dv)
      if (extra) {
        ek = extra_k.expand(detail::with_trailing(plan.batch, 1, a.d)).contiguous();
        ev = extra_v.expand(detail::with_trailing(plan.batch, 1, a.dv)).contiguous();
        a.extra_k = ek.data();
        a.extra_v = ev.data();
      }
      Tensor<T, B> out = Tensor<T, B>::empty(detail::with_trailing(plan.batch, a.lq, a.dv));
      Tensor<T, B> lse = Tensor<T, B>::empty(Shape{a.batch, a.lq});
      AttentionKernel<Cpu>::forward_bf16(a, out.data(), lse.data(), kernel && !force_loops);
      return out;
    }
  }
  (void)force_loops;
  if (!extra) return scaled_dot_product_attention_forward(q, k, v, mask, scale);
  const auto append = [](const Tensor<T, B>& x, const Tensor<T, B>& token) {  // along Lk
    Shape full = x.shape();
    full[full.rank() - 2] = 1;
    return concat_forward(std::vector<Tensor<T, B>>{x, token.expand(full)}, x.rank() - 2);
  };
  return scaled_dot_product_attention_forward(q, append(k, extra_k), append(v, extra_v), mask, scale);
}

}  // namespace bindery::ops
