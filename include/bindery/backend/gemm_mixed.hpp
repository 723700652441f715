// bindery/backend/gemm_mixed.hpp — pieces shared by the backends' 16-bit GEMMs.
//
// Two kinds of reduced-precision GEMM, both accumulating in float:
// - storage GEMM: A, B and C are bfloat16 or float16 arrays (Tensor<bfloat16, B> matmul / linear);
// - rounded GEMM (autocast): A, B and C are float arrays, and A's and B's values are rounded to
//   bfloat16 or float16 before they are multiplied, which is exactly what a tensor-core GEMM on 16-bit
//   copies of the operands computes (products of 16-bit values are exact in float).
// A backend without 16-bit hardware converts the operands to float and runs its float GEMM; these
// functors and the span arithmetic let it do so for strided and batched operands.
#pragma once

#include <cstdint>

#include "bindery/core/float16.hpp"

namespace bindery::detail {

/// Elements from an operand's first element to its last, over a batch of `batch` matrices that
/// start `stride` elements apart. op(X) is (rows, cols); in memory X is (cols, rows) when `trans`.
inline int64_t gemm_operand_span(bool trans, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                                 int64_t batch) {
  const int64_t memory_rows = trans ? cols : rows, memory_cols = trans ? rows : cols;
  if (memory_rows <= 0 || memory_cols <= 0 || batch <= 0) return 0;
  return (batch - 1) * stride + (memory_rows - 1) * ld + memory_cols;
}

/// out[i] = float(Low(in[i])): a float rounded to a 16-bit type and back (exact on the way back).
template <class Low>
struct RoundThroughFunctor {
  float* out;
  const float* in;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { out[i] = static_cast<float>(Low(in[i])); }
};

/// out[i] = To(float(in[i])): widening (16-bit -> float, exact) or rounding (float -> 16-bit).
template <class To, class From>
struct ConvertThroughFloat {
  To* out;
  const From* in;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const {
    out[i] = static_cast<To>(static_cast<float>(in[i]));
  }
};

/// Row r of a batch of (m, n) matrices with leading dimension ld and batch stride `stride`, to or
/// from a contiguous (batch·m, n) float buffer. `To`/`From` convert by value.
template <class To, class From>
struct GemmRowsCopy {
  To* out;
  const From* in;
  int64_t m, n, out_ld, out_stride, in_ld, in_stride;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    const int64_t b = row / m, r = row - b * m;
    To* o = out + b * out_stride + r * out_ld;
    const From* x = in + b * in_stride + r * in_ld;
    for (int64_t j = 0; j < n; ++j) o[j] = static_cast<To>(static_cast<float>(x[j]));
  }
};

}  // namespace bindery::detail
