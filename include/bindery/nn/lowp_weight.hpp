// bindery/nn/lowp_weight.hpp — an inference-only copy of a Linear-style weight: fp32 packed, bf16
// or int8.
//
// Linear::freeze and MultiheadAttention::freeze (nn/quantize.hpp does a whole module tree) convert
// their fp32 (out, in) weights once into a LowpWeight and drop the (out, in) storage; forward then
// runs the inference kernels with the bias in their epilogue:
//   - fp32: the same values packed for backend/cpu_gemm_f32_packed.hpp's x·Wᵀ tile (1.03-1.16×
//     the in-place fp32 kernel that training needs);
//   - bf16 / int8: backend/cpu_gemm_lowp.hpp's kernels (bf16: bf16-rounded activations, fp32 sums;
//     int8: per-output-channel weight scales, per-row dynamic activation scales). A bf16 / int8
//     MultiheadAttention also runs attention's Q·Kᵀ and P·V in bf16
//     (ops::scaled_dot_product_attention_bf16, where AVX512_BF16 runs).
// Everything else in the model (layer norms, softmax, residuals, GELU) stays fp32.
// CPU and float only: there are no gradients through it and no CUDA kernels for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "bindery/backend/cpu.hpp"
#include "bindery/backend/cpu_gemm_f32_packed.hpp"
#include "bindery/backend/cpu_gemm_lowp.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery::nn {

using ::bindery::detail::GemmActivation;

/// How an inference weight is stored: fp32 (the values, packed), bf16 or int8
/// (backend/cpu_gemm_lowp.hpp).
enum class WeightPrecision { kFloat32, kBFloat16, kInt8 };

/// "fp32", "bf16" or "int8".
inline const char* to_string(WeightPrecision precision) {
  switch (precision) {
    case WeightPrecision::kBFloat16:
      return "bf16";
    case WeightPrecision::kInt8:
      return "int8";
    default:
      return "fp32";
  }
}

/// Parses "fp32", "bf16" or "int8" (what to_string writes); throws ValueError naming the choices.
inline WeightPrecision parse_weight_precision(std::string_view text) {
  if (text == "fp32") return WeightPrecision::kFloat32;
  if (text == "bf16") return WeightPrecision::kBFloat16;
  if (text == "int8") return WeightPrecision::kInt8;
  throw ValueError(::bindery::detail::concat("unknown weight precision '", std::string(text),
                                             "': use fp32, bf16 or int8"));
}

/// A weight W (out, in) converted once for inference (packed fp32, bf16 or int8; no (out, in) copy
/// kept), applied as y = x·Wᵀ + bias by the inference CPU kernels.
class LowpWeight {
 public:
  /// Converts rows × cols floats with row stride ld (PyTorch's (out, in) layout) to `precision`
  /// (fp32: packed, the values unchanged). int8 throws ValueError for a non-finite weight.
  LowpWeight(WeightPrecision precision, const float* w, int64_t rows, int64_t cols, int64_t ld)
      : precision_(precision) {
    if (precision == WeightPrecision::kFloat32) {
      f32_ = F32Weight(w, rows, cols, ld);
    } else if (precision == WeightPrecision::kBFloat16) {
      bf16_ = Bf16Weight(w, rows, cols, ld);
    } else {
      i8_ = Int8Weight(w, rows, cols, ld);
    }
  }

  /// Takes weights already in bf16 or int8 (a checkpoint written by nn::save_lowp_safetensors).
  explicit LowpWeight(Bf16Weight w) : precision_(WeightPrecision::kBFloat16), bf16_(std::move(w)) {}
  explicit LowpWeight(Int8Weight w) : precision_(WeightPrecision::kInt8), i8_(std::move(w)) {}

  WeightPrecision precision() const { return precision_; }
  /// The packed fp32, bf16 or int8 weight (each for its precision only): what a checkpoint writer
  /// stores.
  const F32Weight& f32() const {
    BINDERY_CHECK(precision_ == WeightPrecision::kFloat32, ValueError, "LowpWeight::f32: the weight is ",
                  to_string(precision_));
    return f32_;
  }
  const Bf16Weight& bf16() const {
    BINDERY_CHECK(precision_ == WeightPrecision::kBFloat16, ValueError, "LowpWeight::bf16: the weight is ",
                  to_string(precision_));
    return bf16_;
  }
  const Int8Weight& int8() const {
    BINDERY_CHECK(precision_ == WeightPrecision::kInt8, ValueError, "LowpWeight::int8: the weight is ",
                  to_string(precision_));
    return i8_;
  }
  int64_t rows() const {
    return select([](const auto& w) { return w.rows(); });
  }
  int64_t cols() const {
    return select([](const auto& w) { return w.cols(); });
  }
  /// Bytes held (the weight and, for int8, its per-row scales and sums).
  size_t bytes() const {
    return select([](const auto& w) { return w.bytes(); });
  }

  /// y[i, 0..rows()) = act(x[i, :]·Wᵀ + bias) for m rows: x with row stride lda, y with row stride
  /// ldc (so several weights can fill column blocks of one output); bias (rows() floats) may be
  /// null; act: nothing or GELU, applied by the kernel to each tile it stores.
  void apply(int64_t m, const float* x, int64_t lda, float* y, int64_t ldc, const float* bias,
             GemmActivation act = GemmActivation::kNone) const {
    const int threads = Cpu::num_threads();
    if (precision_ == WeightPrecision::kFloat32) {
      ::bindery::detail::gemm_nt_f32_packed(m, 1.0f, x, lda, f32_, 0.0f, y, ldc, bias, threads, act);
    } else if (precision_ == WeightPrecision::kBFloat16) {
      ::bindery::detail::gemm_nt_bf16(m, 1.0f, x, lda, bf16_, 0.0f, y, ldc, bias, threads, act);
    } else {
      ::bindery::detail::gemm_nt_i8(m, 1.0f, x, lda, i8_, 0.0f, y, ldc, bias, threads, act);
    }
  }

  /// apply() for `count` weights side by side in one output: weight b fills columns
  /// [offset_b, offset_b + ws[b]->rows()) of y (offset_b: the rows of the weights before it), with
  /// biases[b] (may be null). Weights of one precision run as one product
  /// (gemm_nt_*_blocks: A rounded or quantized once, one parallel region; the bits of one apply()
  /// per weight); mixed precisions run one by one.
  static void apply_blocks(int count, const LowpWeight* const* ws, int64_t m, const float* x, int64_t lda,
                           float* y, int64_t ldc, const float* const* biases) {
    const WeightPrecision precision = ws[0]->precision();
    bool same = true;
    for (int b = 0; b < count; ++b) same = same && ws[b]->precision() == precision;
    if (!same) {
      for (int64_t b = 0, offset = 0; b < count; offset += ws[b]->rows(), ++b)
        ws[b]->apply(m, x, lda, y + offset, ldc, biases[b]);
      return;
    }
    const int threads = Cpu::num_threads();
    const auto run = [&](auto member, auto kernel) {
      using W = std::remove_cvref_t<decltype(ws[0]->*member)>;
      std::vector<const W*> typed(static_cast<size_t>(count));
      for (int b = 0; b < count; ++b) typed[static_cast<size_t>(b)] = &(ws[b]->*member);
      kernel(count, typed.data(), biases, m, 1.0f, x, lda, 0.0f, y, ldc, threads, GemmActivation::kNone);
    };
    if (precision == WeightPrecision::kFloat32) {
      run(&LowpWeight::f32_, [](auto... args) { ::bindery::detail::gemm_nt_f32_packed_blocks(args...); });
    } else if (precision == WeightPrecision::kBFloat16) {
      run(&LowpWeight::bf16_, [](auto... args) { ::bindery::detail::gemm_nt_bf16_blocks(args...); });
    } else {
      run(&LowpWeight::i8_, [](auto... args) { ::bindery::detail::gemm_nt_i8_blocks(args...); });
    }
  }

 private:
  /// fn(the weight held).
  template <class Fn>
  std::invoke_result_t<Fn, const F32Weight&> select(Fn&& fn) const {
    if (precision_ == WeightPrecision::kFloat32) return fn(f32_);
    if (precision_ == WeightPrecision::kBFloat16) return fn(bf16_);
    return fn(i8_);
  }

  WeightPrecision precision_;
  F32Weight f32_;
  Bf16Weight bf16_;
  Int8Weight i8_;
};

}  // namespace bindery::nn
